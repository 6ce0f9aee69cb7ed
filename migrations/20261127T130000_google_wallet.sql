-- Google Wallet: the loyalty object of each card that has one, the classes (one per program
-- tier), notifying sends for the 3-per-24h limit, and callback nonces for de-duplication.
CREATE TABLE google_class (
  class_id text PRIMARY KEY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  tier_code text NOT NULL,
  -- Hash of the class payload last sent: unchanged classes are not re-sent.
  content_hash text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE google_object (
  card_id uuid PRIMARY KEY REFERENCES card(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  object_id text NOT NULL UNIQUE,
  class_id text NOT NULL,
  -- What the object shows now, to decide what a change must patch and whether it notifies.
  published_balance bigint NOT NULL,
  published_tier text NOT NULL,
  content_hash text NOT NULL,
  saved boolean NOT NULL DEFAULT false,
  saved_changed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX google_object_program_idx ON google_object (program_id);

CREATE TABLE google_notification (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  object_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('update', 'message')),
  sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX google_notification_object_idx ON google_notification (object_id, sent_at);

CREATE TABLE google_callback_nonce (
  nonce text PRIMARY KEY,
  event_type text NOT NULL,
  object_id text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
