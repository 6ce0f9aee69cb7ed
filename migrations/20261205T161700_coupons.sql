-- Coupons (issue #17, item 3): definitions per program, coupons issued to cards, single use at the
-- till. Both tables are keyed by (program_id, id) so they distribute by program as they are (the
-- Citus path, docs/architecture.md); the definition foreign key includes program_id, so a coupon can
-- never point at another program's definition.
-- Frozen in time: never edit an applied migration.
CREATE TABLE coupon_definitions (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  title jsonb NOT NULL,
  kind text NOT NULL CHECK (kind IN ('percent', 'amount', 'free_item')),
  percent integer CHECK (percent BETWEEN 1 AND 100),
  amount bigint CHECK (amount > 0),
  sku text,
  min_check bigint NOT NULL DEFAULT 0 CHECK (min_check >= 0),
  categories jsonb,
  valid_days integer CHECK (valid_days > 0),
  valid_until timestamptz,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (program_id, id),
  CONSTRAINT coupon_definition_kind_value CHECK (
    (kind = 'percent' AND percent IS NOT NULL AND amount IS NULL AND sku IS NULL)
    OR (kind = 'amount' AND amount IS NOT NULL AND percent IS NULL AND sku IS NULL)
    OR (kind = 'free_item' AND sku IS NOT NULL AND percent IS NULL AND amount IS NULL)
  ),
  CONSTRAINT coupon_definition_validity CHECK ((valid_days IS NULL) <> (valid_until IS NULL))
);

CREATE TABLE card_coupons (
  program_id uuid NOT NULL,
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  definition_id uuid NOT NULL,
  code text NOT NULL,
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'redeemed', 'expired', 'void')),
  redeemed_purchase_id uuid REFERENCES purchase(id),
  redeemed_at timestamptz,
  -- The discount the redemption gave (minor units); null while not redeemed.
  discount bigint CHECK (discount >= 0),
  source text NOT NULL CHECK (source IN ('admin', 'campaign', 'automation', 'stamps')),
  campaign_id uuid,
  actor text NOT NULL,
  PRIMARY KEY (program_id, id),
  FOREIGN KEY (program_id, definition_id) REFERENCES coupon_definitions(program_id, id),
  CONSTRAINT card_coupons_code_key UNIQUE (program_id, code),
  CONSTRAINT card_coupons_redeemed CHECK ((status = 'redeemed') = (redeemed_purchase_id IS NOT NULL))
);
CREATE INDEX card_coupons_card_idx ON card_coupons (card_id, status);
CREATE INDEX card_coupons_purchase_idx ON card_coupons (redeemed_purchase_id) WHERE redeemed_purchase_id IS NOT NULL;
-- A campaign issues at most one coupon per recipient, also when a chunk is retried.
CREATE UNIQUE INDEX card_coupons_campaign_card_key ON card_coupons (program_id, campaign_id, card_id) WHERE campaign_id IS NOT NULL;

-- What the wallets show: the card's usable coupons, kept by src/coupons in the transaction that
-- changes them (the pass and the Google object are built from the card row alone).
ALTER TABLE card ADD COLUMN coupons jsonb NOT NULL DEFAULT '{"active": []}';

-- A campaign (or automation) may hand every recipient a coupon.
ALTER TABLE campaign ADD COLUMN coupon_definition_id uuid;
