-- Stamp cards (issue #17): the stamps a Google object last showed, so a new stamp notifies like a
-- balance change (published_balance, published_tier). Frozen in time: never edit an applied migration.
ALTER TABLE google_object ADD COLUMN published_stamps integer NOT NULL DEFAULT 0;
