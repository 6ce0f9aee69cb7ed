-- Program mechanics, line items and stamps (issue #17). Frozen in time: never edit an applied migration.
-- A purchase keeps what it did so its refund can undo exactly that: the discount it gave, the
-- items it carried (the till's lines, as sent), and the stamps and rewards it caused.
ALTER TABLE purchase
  ADD COLUMN discount bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),
  ADD COLUMN items jsonb,
  ADD COLUMN stamps_added integer NOT NULL DEFAULT 0 CHECK (stamps_added >= 0),
  ADD COLUMN rewards_earned integer NOT NULL DEFAULT 0 CHECK (rewards_earned >= 0);

-- The card's stamps are a cache of its stamp entries, like its balance of the ledger.
ALTER TABLE card
  ADD COLUMN stamps integer NOT NULL DEFAULT 0 CONSTRAINT card_stamps_not_negative CHECK (stamps >= 0),
  ADD COLUMN last_stamp_at timestamptz;

-- Append-only, like ledger_entry: 'stamp' (+ added by a purchase), 'reward' (− perReward per
-- reward completed), 'expiry' (− stamps lost to inactivity), 'reversal' (a refund's undo).
CREATE TABLE stamp_entry (
  id bigint GENERATED ALWAYS AS IDENTITY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  purchase_id uuid REFERENCES purchase(id),
  kind text NOT NULL CHECK (kind IN ('stamp', 'reward', 'expiry', 'reversal')),
  stamps integer NOT NULL CHECK (stamps <> 0),
  actor text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (program_id, id)
);
CREATE INDEX stamp_entry_card_idx ON stamp_entry (card_id, id);
CREATE INDEX stamp_entry_purchase_idx ON stamp_entry (purchase_id) WHERE purchase_id IS NOT NULL;

-- One row per completed stamp card: what the coupons module turns into a coupon. 'revoked' when the
-- purchase that completed it is refunded.
CREATE TABLE stamp_rewards (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  purchase_id uuid NOT NULL REFERENCES purchase(id),
  status text NOT NULL DEFAULT 'earned' CHECK (status IN ('earned', 'revoked')),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  PRIMARY KEY (program_id, id)
);
CREATE INDEX stamp_rewards_card_idx ON stamp_rewards (card_id, created_at);
CREATE INDEX stamp_rewards_purchase_idx ON stamp_rewards (purchase_id);
