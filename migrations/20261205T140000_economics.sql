-- Program economics, campaign control groups and segment movement (issue #16: "Does the program
-- pay?"). Frozen in time: never edit an applied migration.

-- ---- Economics (src/economics) -----------------------------------------------------------------
-- The report reads closed days and months from small rollup tables and only the open tail (today,
-- this month) from the ledger and purchases, through these indexes: a range of time of one program.
CREATE INDEX ledger_entry_program_time_idx ON ledger_entry (program_id, created_at) INCLUDE (kind, points);
-- Bonuses only (not accruals, redemptions or reversals, the bulk of the ledger): which cards got which.
CREATE INDEX ledger_entry_bonus_idx ON ledger_entry (program_id, created_at) INCLUDE (kind, card_id, points)
  WHERE kind IN ('welcome', 'referral', 'birthday', 'campaign_bonus', 'adjustment');
CREATE INDEX purchase_program_time_idx ON purchase (program_id, created_at) INCLUDE (card_id, amount, payable, status);
CREATE INDEX purchase_refund_time_idx ON purchase (program_id, refunded_at) INCLUDE (card_id, amount, payable)
  WHERE refunded_at IS NOT NULL;

-- Checks of customers without a card, reported by the till (optional, `POST /checks`): only for the
-- members' share of revenue. No personal data.
CREATE TABLE anonymous_check (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  amount bigint NOT NULL CHECK (amount > 0),
  store_id text,
  receipt_id text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anonymous_check_program_time_idx ON anonymous_check (program_id, created_at) INCLUDE (amount);
-- One receipt is one check (like purchase_receipt_idx): a till resending it is refused.
CREATE UNIQUE INDEX anonymous_check_receipt_idx ON anonymous_check (program_id, receipt_id) WHERE receipt_id IS NOT NULL;

-- Rollups of closed local days and months (program time zone), written by the economics-rollup job.
-- Everything in them is append-only at the source (ledger entries, purchases and refunds are dated
-- when they happen), so a closed day never changes. A time zone change rebuilds them.
CREATE TABLE economics_rollup (
  program_id uuid PRIMARY KEY REFERENCES program(id) ON DELETE CASCADE,
  time_zone text NOT NULL,
  -- The last local day (inclusive) and the last month (its first day) rolled up; null = none yet.
  days_through date,
  months_through date,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE economics_day (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  day date NOT NULL,
  cards_enrolled integer NOT NULL DEFAULT 0,
  -- Purchases made that day (whatever happened to them later) and refunds made that day.
  purchases integer NOT NULL DEFAULT 0,
  amount bigint NOT NULL DEFAULT 0,
  paid bigint NOT NULL DEFAULT 0,
  refunds integer NOT NULL DEFAULT 0,
  refunded_amount bigint NOT NULL DEFAULT 0,
  refunded_paid bigint NOT NULL DEFAULT 0,
  checks integer NOT NULL DEFAULT 0,
  check_amount bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (program_id, day)
);

CREATE TABLE economics_ledger_day (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  day date NOT NULL,
  kind text NOT NULL,
  points_in bigint NOT NULL,
  points_out bigint NOT NULL,
  PRIMARY KEY (program_id, day, kind)
);

-- The open month so far, per card (purchases, refunds, bonus kinds of the days rolled up), so the
-- report reads one row per buying card instead of every purchase. bonus_kinds: bit 1 welcome,
-- 2 referral, 4 birthday, 8 campaign_bonus, 16 adjustment (positive). Deleted when the month closes.
CREATE TABLE economics_card_month (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  month date NOT NULL,
  -- No foreign key to card: cards go only with their program, and the rollup writes many rows at once.
  card_id uuid NOT NULL,
  -- The card's enrolment month (its retention cohort).
  cohort date NOT NULL,
  purchases integer NOT NULL,
  amount bigint NOT NULL,
  paid bigint NOT NULL,
  refunds integer NOT NULL,
  refunded_amount bigint NOT NULL,
  refunded_paid bigint NOT NULL,
  bonus_kinds smallint NOT NULL,
  -- The card's purchases before this month, capped at 2 (economics_card when the row was written:
  -- every earlier month is closed by then): new buyers and repeat buyers without another join.
  prior smallint NOT NULL,
  PRIMARY KEY (program_id, month, card_id)
);

-- Per card: the months of its first and second purchase (as of the last month rolled up), for the
-- repeat-purchase rate and the new buyers of a month.
CREATE TABLE economics_card (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL,
  first_month date NOT NULL,
  second_month date,
  PRIMARY KEY (program_id, card_id)
);

-- Closed months: members who bought, of them first-time buyers, purchases, and (as of the month's
-- end) members who ever bought and who bought at least twice.
CREATE TABLE economics_month (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  month date NOT NULL,
  active_cards integer NOT NULL,
  new_buyers integer NOT NULL,
  purchases integer NOT NULL,
  ever_buyers integer NOT NULL,
  repeat_buyers integer NOT NULL,
  PRIMARY KEY (program_id, month)
);

-- Retention cohorts of closed months: per enrolment month, the cohort's buying cards and money.
CREATE TABLE economics_cohort_month (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  cohort date NOT NULL,
  month date NOT NULL,
  active_cards integer NOT NULL,
  purchases integer NOT NULL,
  amount bigint NOT NULL,
  paid bigint NOT NULL,
  refunded_amount bigint NOT NULL,
  refunded_paid bigint NOT NULL,
  PRIMARY KEY (program_id, cohort, month)
);

-- Program cost of closed months: per bonus kind, the cards that received it that month and the
-- money they paid that month (less refunds).
CREATE TABLE economics_bonus_month (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  month date NOT NULL,
  kind text NOT NULL,
  cards integer NOT NULL,
  paid bigint NOT NULL,
  PRIMARY KEY (program_id, month, kind)
);

-- ---- Campaign control groups (src/campaigns) ---------------------------------------------------
-- A campaign holds back a share of its audience (percent, 0-50; 0 for the campaigns sent before
-- control groups existed) and measures its effect over a window after it started.
ALTER TABLE campaign ADD COLUMN control_share smallint NOT NULL DEFAULT 0 CHECK (control_share BETWEEN 0 AND 50);
ALTER TABLE campaign ADD COLUMN effect_window_days smallint NOT NULL DEFAULT 14 CHECK (effect_window_days BETWEEN 1 AND 90);
ALTER TABLE campaign ADD COLUMN held_out integer NOT NULL DEFAULT 0;

-- The held-back cards, written in the transaction that writes the recipients. Never messaged: the
-- chunks read campaign_recipient only.
CREATE TABLE campaign_control (
  campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  -- The Citus path (docs/architecture.md): every per-program table carries program_id.
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  PRIMARY KEY (campaign_id, card_id)
);

-- ---- Segment movement --------------------------------------------------------------------------
-- Per program and week (Monday, program time zone): how many cards went from which RFM segment at
-- the week's start to which at its end ([{from, to, cards}]; from 'new' = enrolled during the week).
CREATE TABLE segment_week (
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  week_start date NOT NULL,
  flows jsonb NOT NULL,
  thresholds jsonb NOT NULL,
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (program_id, week_start)
);
