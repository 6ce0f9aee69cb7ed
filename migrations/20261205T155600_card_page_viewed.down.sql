ALTER TABLE card DROP COLUMN page_viewed_at;
