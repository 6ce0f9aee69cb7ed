DROP INDEX IF EXISTS card_program_created_idx;
DROP TABLE wallet_event, join_view, consent_text;
ALTER TABLE staff_member DROP COLUMN deleted_at;
ALTER TABLE card DROP COLUMN consent_version;
