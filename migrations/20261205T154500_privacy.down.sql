DROP INDEX IF EXISTS card_program_id_idx;
DROP TABLE card_erasure;
ALTER TABLE card DROP COLUMN erased_at;
ALTER TABLE card DROP CONSTRAINT card_status_check;
ALTER TABLE card ADD CONSTRAINT card_status_check CHECK (status IN ('active', 'blocked'));
