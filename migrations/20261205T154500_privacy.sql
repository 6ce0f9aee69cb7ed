-- The holder's rights (issue #12, part B): erasure of a holder's personal data on request (152-FZ,
-- GDPR art. 17). Frozen in time: never edit an applied migration.

-- An erased card keeps its row (id, number, balance, tier, ledger and purchases stay for the program's
-- accounting) with every personal field removed; 'erased' tells the till, the wallets and the
-- campaigns that it is gone (docs/privacy.md).
ALTER TABLE card DROP CONSTRAINT card_status_check;
ALTER TABLE card ADD CONSTRAINT card_status_check CHECK (status IN ('active', 'blocked', 'erased'));
ALTER TABLE card ADD COLUMN erased_at timestamptz;

-- Who erased which card and when: the accountability an erasure needs, without any of the data it removed.
CREATE TABLE card_erasure (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  -- 'key:<api key id>' (the program admin key that asked).
  actor text NOT NULL,
  erased_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (program_id, card_id)
);

-- The exports read a program's cards in primary-key order, a page at a time (privacy/export.ts): with
-- many programs in one table, the keyset scan should not walk the other programs' cards.
CREATE INDEX card_program_id_idx ON card (program_id, id);
