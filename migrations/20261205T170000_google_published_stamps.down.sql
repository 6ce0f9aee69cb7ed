ALTER TABLE google_object DROP COLUMN published_stamps;
