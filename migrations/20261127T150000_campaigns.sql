-- Campaigns, RFM segments and automations (issue: wallet pushes at scale).

-- Per-program settings: RFM thresholds and automation switches (both validated by the service;
-- '{}' means "the defaults").
ALTER TABLE program ADD COLUMN segments jsonb NOT NULL DEFAULT '{}';
ALTER TABLE program ADD COLUMN automations jsonb NOT NULL DEFAULT '{}';

-- The RFM statement aggregates a program's completed purchases per card: with this index it is an
-- index-only scan in card order (no sort, no heap visits) whatever the size of the purchase table.
CREATE INDEX purchase_rfm_idx ON purchase (program_id, card_id, created_at) INCLUDE (amount) WHERE status = 'completed';

CREATE TABLE campaign (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  name text NOT NULL,
  -- {ru, en}; may contain {points}, {date}, {tier} placeholders (automations).
  message jsonb NOT NULL,
  -- {all: true} | {tiers?: [...], segments?: [...]} | {automation: kind}
  audience jsonb NOT NULL,
  -- Points granted with the message (ledger kind below), 0 = none.
  bonus_points bigint NOT NULL DEFAULT 0 CHECK (bonus_points >= 0),
  ledger_kind text NOT NULL DEFAULT 'campaign_bonus' CHECK (ledger_kind IN ('campaign_bonus', 'birthday', 'expiry')),
  -- promo: set the card's promo (+ bonus); expire: take the card's points (ledger kind expiry) and set the promo.
  effect text NOT NULL DEFAULT 'promo' CHECK (effect IN ('promo', 'expire')),
  -- Marketing messages need the holder's consent (152-FZ / GDPR); service messages do not.
  requires_consent boolean NOT NULL DEFAULT true,
  -- Which automation generated the campaign (null = created by a marketer).
  automation text,
  status text NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled')),
  scheduled_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  cancelled_at timestamptz,
  -- Recipients written (audience materialized); false until the start job ran.
  materialized boolean NOT NULL DEFAULT false,
  targeted integer NOT NULL DEFAULT 0,
  processed integer NOT NULL DEFAULT 0,
  skipped integer NOT NULL DEFAULT 0,
  -- Fan-out state: the chunk job that may run next (a fence against duplicate and stale jobs), the
  -- last card id done (keyset cursor), the earliest moment of the next chunk (pacing), and when the
  -- fan-out last moved (the stall watchdog).
  next_chunk integer NOT NULL DEFAULT 0,
  cursor_card_id uuid,
  not_before timestamptz,
  progress_at timestamptz,
  -- Google classes that got one class-level message instead of a message per object:
  -- [{classId, tier, objects, sent, notified, downgraded}].
  google_classes jsonb NOT NULL DEFAULT '[]',
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_program_idx ON campaign (program_id, created_at DESC, id DESC);
CREATE INDEX campaign_active_idx ON campaign (status, scheduled_at) WHERE status IN ('scheduled', 'sending');

CREATE TABLE campaign_recipient (
  campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'skipped', 'cancelled')),
  -- Per-recipient message values (automations: {date}).
  params jsonb,
  processed_at timestamptz,
  -- The card's update tag after the campaign's change: "devices that fetched the updated pass".
  update_tag bigint,
  -- Wallet outcomes reported by the update path after the change (null = not yet reported).
  apple_published_at timestamptz,
  apple_pushes_accepted integer,
  apple_pushes_failed integer,
  google_published_at timestamptz,
  google_updated boolean,
  google_notified boolean,
  google_downgraded boolean,
  PRIMARY KEY (campaign_id, card_id)
);
-- Every recipient row is written two or three times within minutes: vacuum early.
ALTER TABLE campaign_recipient SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
-- Outcome recording looks up recipients still waiting for a wallet's report by card id; rows leave
-- these partial indexes as soon as the report is in.
CREATE INDEX campaign_recipient_apple_wait_idx ON campaign_recipient (card_id) WHERE status = 'processed' AND apple_published_at IS NULL;
CREATE INDEX campaign_recipient_google_wait_idx ON campaign_recipient (card_id) WHERE status = 'processed' AND google_published_at IS NULL;

-- Pass downloads per card version (PassKit web service): which devices fetched which update.
CREATE TABLE apple_pass_fetch (
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  update_tag bigint NOT NULL,
  fetches integer NOT NULL,
  first_at timestamptz NOT NULL DEFAULT now(),
  last_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (card_id, update_tag)
);

-- The promo last announced on the object (a message): a new promo is announced once.
ALTER TABLE google_object ADD COLUMN published_promo_hash text;

-- Automations: at most once per card per occasion (birthday:2026, sleeping:<last activity>, ...).
CREATE TABLE automation_delivery (
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  automation text NOT NULL,
  occasion text NOT NULL,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  campaign_id uuid REFERENCES campaign(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (card_id, automation, occasion)
);
CREATE INDEX automation_delivery_campaign_idx ON automation_delivery (campaign_id);

-- Tier history, written by the database whatever changed the tier (purchase, refund, rules edit),
-- so the tier-upgrade automation needs no hook in the loyalty code.
CREATE TABLE card_tier_change (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  from_tier text NOT NULL,
  to_tier text NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX card_tier_change_program_idx ON card_tier_change (program_id, changed_at);

CREATE FUNCTION record_card_tier_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO card_tier_change (program_id, card_id, from_tier, to_tier) VALUES (NEW.program_id, NEW.id, OLD.tier, NEW.tier);
  RETURN NULL;
END
$$;
CREATE TRIGGER card_tier_changed AFTER UPDATE OF tier ON card
  FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM NEW.tier) EXECUTE FUNCTION record_card_tier_change();
