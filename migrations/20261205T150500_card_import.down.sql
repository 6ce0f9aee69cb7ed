DROP TABLE card_import_row;
ALTER TABLE card DROP COLUMN import_id, DROP COLUMN store, DROP COLUMN notes;
DROP TABLE card_import;
DELETE FROM ledger_entry WHERE kind = 'import';
ALTER TABLE ledger_entry DROP CONSTRAINT ledger_entry_kind_check;
ALTER TABLE ledger_entry ADD CONSTRAINT ledger_entry_kind_check CHECK (kind IN ('welcome', 'referral', 'accrual', 'redemption',
  'adjustment', 'expiry', 'reversal', 'birthday', 'campaign_bonus'));
DROP INDEX card_external_number_idx;
ALTER TABLE card DROP COLUMN external_number;
