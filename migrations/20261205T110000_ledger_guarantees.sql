-- Issue #11, parts 2, 3 and 6: ledger guarantees, self-service bonuses that wait for a real person,
-- phone verification by one-time code, takeover of a claimed phone, retention of idempotency records.

-- ---- Cards: how they were enrolled and whether the holder is known to be real -------------------
-- `channel`: 'staff' (POS/admin key, cabinet: the holder was at the till) or 'self_service' (the
-- public join page). `verified_at`/`verified_via`: when and how the card stopped being a made-up
-- one — 'staff' (issued by staff), 'otp' (the phone answered a one-time code), 'purchase' (a first
-- purchase at the till completed), 'legacy' (enrolled before this migration, bonuses already paid).
-- `pending_points`: bonuses shown but not spendable yet; the sum of the card's unreleased
-- pending_bonus rows (the balance stays the sum of the ledger).
ALTER TABLE card ADD COLUMN channel text NOT NULL DEFAULT 'staff' CHECK (channel IN ('staff', 'self_service'));
ALTER TABLE card ADD COLUMN verified_at timestamptz;
ALTER TABLE card ADD COLUMN verified_via text CHECK (verified_via IN ('staff', 'otp', 'purchase', 'legacy'));
ALTER TABLE card ADD COLUMN pending_points bigint NOT NULL DEFAULT 0 CONSTRAINT card_pending_not_negative CHECK (pending_points >= 0);
-- Bumped when the card is taken over: the Google object id of the new holder differs from the old one.
ALTER TABLE card ADD COLUMN google_generation integer NOT NULL DEFAULT 0;
UPDATE card SET verified_at = created_at, verified_via = 'legacy';
UPDATE card SET channel = 'self_service'
  WHERE EXISTS (SELECT 1 FROM ledger_entry e WHERE e.card_id = card.id AND e.actor = 'join-form');

-- ---- Refunds record what they could not take back --------------------------------------------------
ALTER TABLE purchase ADD COLUMN refund_shortfall bigint CHECK (refund_shortfall >= 0);

-- ---- Referrals as structured data (was: inferred from ledger `reason` text with LIKE) ----------------
-- One row per invited card. status: 'pending' (bonus not paid yet: granted at the first purchase, or
-- the invitee is an unverified self-service card), 'paid', 'capped' (the inviter had reached the
-- program's referrals-per-day cap when it became due: never paid), 'reversed' (the purchase that
-- paid it was refunded). purchase_id: the purchase that caused the payment, so its refund reverses it.
CREATE TABLE referral (
  invitee_card_id uuid PRIMARY KEY REFERENCES card(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  inviter_card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  status text NOT NULL CHECK (status IN ('pending', 'paid', 'capped', 'reversed')),
  -- When the program granted referral bonuses as the card enrolled (rules.referral.grantOn then).
  grant_on text NOT NULL CHECK (grant_on IN ('enrollment', 'first_purchase')),
  invitee_points bigint NOT NULL DEFAULT 0 CHECK (invitee_points >= 0),
  inviter_points bigint NOT NULL DEFAULT 0 CHECK (inviter_points >= 0),
  purchase_id uuid REFERENCES purchase(id),
  paid_at timestamptz,
  reversed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX referral_inviter_paid_idx ON referral (inviter_card_id, paid_at);
CREATE INDEX referral_purchase_idx ON referral (purchase_id) WHERE purchase_id IS NOT NULL;

-- Backfill, the last time the old reason texts are read: paid at enrollment ('invited by …' on the
-- invitee, 'invited <number>' on the inviter) or at the first purchase ('referral: first purchase' on
-- the invitee, '… made a first purchase' on the inviter).
INSERT INTO referral (invitee_card_id, program_id, inviter_card_id, status, grant_on, invitee_points, inviter_points, purchase_id, paid_at, created_at)
SELECT c.id, c.program_id, c.referred_by,
  CASE WHEN coalesce(ie.points, 0) + coalesce(re.points, 0) > 0 THEN 'paid' ELSE 'pending' END,
  CASE WHEN coalesce(ie.points, 0) + coalesce(re.points, 0) > 0 AND ie.purchase_id IS NULL AND NOT coalesce(re.first_purchase, false)
    THEN 'enrollment' ELSE 'first_purchase' END,
  coalesce(ie.points, 0), coalesce(re.points, 0), ie.purchase_id,
  CASE WHEN coalesce(ie.points, 0) + coalesce(re.points, 0) > 0 THEN least(ie.created_at, re.created_at) END,
  c.created_at
FROM card c
LEFT JOIN LATERAL (
  SELECT sum(e.points) AS points, min(e.created_at) AS created_at, (array_agg(e.purchase_id))[1] AS purchase_id
  FROM ledger_entry e
  WHERE e.card_id = c.id AND e.kind = 'referral' AND (e.reason LIKE 'invited by %' OR e.reason = 'referral: first purchase')
) ie ON true
LEFT JOIN LATERAL (
  SELECT sum(e.points) AS points, min(e.created_at) AS created_at, bool_or(e.reason LIKE '% made a first purchase') AS first_purchase
  FROM ledger_entry e
  WHERE e.card_id = c.referred_by AND e.kind = 'referral'
    AND (e.reason = 'invited ' || c.number OR e.reason = 'referral: ' || c.number || ' made a first purchase')
) re ON true
WHERE c.referred_by IS NOT NULL;

-- ---- Pending bonuses of self-service cards ------------------------------------------------------------
-- Not ledger entries: nothing here is spendable. Released = posted to the ledger (ledger_entry_id),
-- by the phone's one-time code or by the card's first purchase (release_purchase_id, so a refund of
-- that purchase takes them back).
CREATE TABLE pending_bonus (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('welcome', 'referral')),
  points bigint NOT NULL CHECK (points > 0),
  actor text NOT NULL,
  reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz,
  release_purchase_id uuid REFERENCES purchase(id),
  ledger_entry_id bigint REFERENCES ledger_entry(id)
);
CREATE INDEX pending_bonus_card_idx ON pending_bonus (card_id, id);
CREATE INDEX pending_bonus_purchase_idx ON pending_bonus (release_purchase_id) WHERE release_purchase_id IS NOT NULL;

-- ---- One-time codes ----------------------------------------------------------------------------------
-- No personal data: the phone and the client IP are stored as HMACs (key derived from ADMIN_KEY), the
-- code as an HMAC of the row id and the code (never the code itself). `purpose` separates flows (card verification, takeover, plastic card …).
CREATE TABLE phone_verification (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  phone_hash text NOT NULL,
  purpose text NOT NULL CHECK (purpose ~ '^[a-z][a-z0-9_]{0,31}$'),
  code_hash text NOT NULL,
  ip_hash text NOT NULL,
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  sent_at timestamptz,
  consumed_at timestamptz
);
-- The per-phone send limit counts across programs (it protects the phone's owner from SMS floods).
CREATE INDEX phone_verification_phone_idx ON phone_verification (phone_hash, created_at);
CREATE INDEX phone_verification_ip_idx ON phone_verification (ip_hash, created_at);

-- ---- Passes of a taken-over card ------------------------------------------------------------------------
-- Apple: a pass's serial and token never change, so the new holder gets a new serial and token and
-- the old pair keeps answering — with a voided pass — until the old devices have fetched it.
CREATE TABLE retired_apple_pass (
  serial_number text PRIMARY KEY,
  auth_token text NOT NULL CHECK (length(auth_token) >= 16),
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  number text NOT NULL,
  update_tag bigint NOT NULL DEFAULT nextval('card_update_tag_seq'),
  retired_at timestamptz NOT NULL DEFAULT date_trunc('second', now()),
  fetched_at timestamptz
);
CREATE INDEX retired_apple_pass_card_idx ON retired_apple_pass (card_id);

-- Google: the old object is set INACTIVE by the update path (expired_at once done); the card's next
-- object gets a new id (card.google_generation).
CREATE TABLE retired_google_object (
  object_id text PRIMARY KEY,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  retired_at timestamptz NOT NULL DEFAULT now(),
  expired_at timestamptz
);
CREATE INDEX retired_google_object_card_idx ON retired_google_object (card_id) WHERE expired_at IS NULL;

-- ---- Retention ----------------------------------------------------------------------------------------------
CREATE INDEX idempotency_record_created_idx ON idempotency_record (created_at);
-- Expiry counts positive ledger entries as activity.
CREATE INDEX ledger_entry_positive_idx ON ledger_entry (card_id, created_at) WHERE points > 0;
