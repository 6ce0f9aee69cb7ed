-- Initial schema: programs, keys, staff, cards, purchases, the points ledger, idempotency
-- records and Apple Wallet registrations. Frozen in time: never edit an applied migration.
CREATE SEQUENCE card_update_tag_seq;

CREATE TABLE program (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name text NOT NULL,
  default_language text NOT NULL DEFAULT 'ru' CHECK (default_language IN ('ru', 'en')),
  currency text NOT NULL DEFAULT 'RUB' CHECK (currency ~ '^[A-Z]{3}$'),
  time_zone text NOT NULL DEFAULT 'Europe/Moscow',
  design jsonb NOT NULL DEFAULT '{}',
  apple jsonb NOT NULL DEFAULT '{}',
  google jsonb NOT NULL DEFAULT '{}',
  texts jsonb NOT NULL DEFAULT '{}',
  locations jsonb NOT NULL DEFAULT '[]',
  rules jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE program_image (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  name text NOT NULL,
  png bytea NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (program_id, name)
);

CREATE TABLE api_key (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('admin', 'marketer', 'pos')),
  name text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX api_key_program_idx ON api_key (program_id);

CREATE TABLE staff_member (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('owner', 'marketer', 'cashier')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_member_program_idx ON staff_member (program_id);

CREATE TABLE card (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  number text NOT NULL,
  holder_name text NOT NULL,
  phone text NOT NULL,
  email text,
  birthday date,
  consent boolean NOT NULL DEFAULT false,
  consent_at timestamptz,
  tier text NOT NULL,
  balance bigint NOT NULL DEFAULT 0 CONSTRAINT card_balance_not_negative CHECK (balance >= 0),
  lifetime_spend bigint NOT NULL DEFAULT 0 CHECK (lifetime_spend >= 0),
  referral_code text NOT NULL,
  referred_by uuid REFERENCES card(id),
  staff_id uuid REFERENCES staff_member(id) ON DELETE SET NULL,
  source text,
  external_id text,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
  public_token text NOT NULL UNIQUE,
  apple_serial text NOT NULL UNIQUE,
  apple_auth_token text NOT NULL CHECK (length(apple_auth_token) >= 16),
  google_object_id text,
  promo jsonb,
  update_tag bigint NOT NULL DEFAULT nextval('card_update_tag_seq'),
  updated_at timestamptz NOT NULL DEFAULT date_trunc('second', now()),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (program_id, number),
  UNIQUE (program_id, phone),
  UNIQUE (program_id, referral_code)
);
CREATE INDEX card_update_tag_idx ON card (update_tag);
CREATE INDEX card_holder_name_idx ON card (program_id, lower(holder_name) text_pattern_ops);

CREATE TABLE purchase (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  amount bigint NOT NULL CHECK (amount > 0),
  redeemed bigint NOT NULL CHECK (redeemed >= 0),
  accrued bigint NOT NULL CHECK (accrued >= 0),
  payable bigint NOT NULL CHECK (payable >= 0),
  store_id text,
  receipt_id text,
  status text NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'refunded')),
  created_at timestamptz NOT NULL DEFAULT now(),
  refunded_at timestamptz
);
CREATE INDEX purchase_card_idx ON purchase (card_id, created_at);
-- One receipt is one purchase: a till that resends a check under a new Idempotency-Key is refused.
CREATE UNIQUE INDEX purchase_receipt_idx ON purchase (program_id, receipt_id) WHERE receipt_id IS NOT NULL;

CREATE TABLE ledger_entry (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('welcome', 'referral', 'accrual', 'redemption', 'adjustment',
    'expiry', 'reversal', 'birthday', 'campaign_bonus')),
  points bigint NOT NULL CHECK (points <> 0),
  purchase_id uuid REFERENCES purchase(id),
  idempotency_key text,
  actor text NOT NULL,
  reason text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entry_card_idx ON ledger_entry (card_id, id);

-- Idempotency-Key records, scoped per program (or the instance for admin calls).
CREATE TABLE idempotency_record (
  scope text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  status_code integer,
  response jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);

-- PassKit web service registrations (Apple: Wallet Passes web service; reference 1.5).
CREATE TABLE apple_registration (
  device_library_identifier text NOT NULL,
  pass_type_identifier text NOT NULL,
  serial_number text NOT NULL,
  push_token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_library_identifier, pass_type_identifier, serial_number)
);
CREATE INDEX apple_registration_pass_idx ON apple_registration (pass_type_identifier, serial_number);
CREATE INDEX apple_registration_token_idx ON apple_registration (push_token);
