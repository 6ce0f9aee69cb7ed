-- Enrollment and distribution (issue: join page, QR codes, referral and staff links, install funnel).

-- Marketing consent (152-FZ / GDPR): which consent text the holder agreed to. The text itself is
-- kept once per version in consent_text, so the exact wording shown can always be reproduced.
ALTER TABLE card ADD COLUMN consent_version text;

CREATE TABLE consent_text (
  version text PRIMARY KEY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  language text NOT NULL CHECK (language IN ('ru', 'en')),
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Staff members are soft-deleted: cards keep their enrolling staff member for the leaderboard.
ALTER TABLE staff_member ADD COLUMN deleted_at timestamptz;

-- One row per visitor per program per local day (the program's time zone). visitor_hash is an
-- HMAC of a random cookie id and the day: no personal data, and days cannot be linked.
CREATE TABLE join_view (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  day date NOT NULL,
  visitor_hash text NOT NULL,
  source text,
  staff_id uuid REFERENCES staff_member(id) ON DELETE SET NULL,
  referrer_card_id uuid REFERENCES card(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (program_id, day, visitor_hash)
);
CREATE INDEX join_view_program_day_idx ON join_view (program_id, day);

-- Wallet installs and removals: Apple (first device registered / last one gone) and Google
-- (save / delete callbacks).
CREATE TABLE wallet_event (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  wallet text NOT NULL CHECK (wallet IN ('apple', 'google')),
  kind text NOT NULL CHECK (kind IN ('installed', 'removed')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallet_event_program_time_idx ON wallet_event (program_id, created_at);
CREATE INDEX wallet_event_card_idx ON wallet_event (card_id, kind, created_at);

CREATE INDEX card_program_created_idx ON card (program_id, created_at);
