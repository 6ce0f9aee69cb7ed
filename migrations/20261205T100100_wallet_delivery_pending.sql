-- Wallet deliveries that failed in a way a later attempt can fix (APNs 429/5xx, timeouts, resets,
-- GOAWAY, connection failures; Google 429/5xx/network), kept until they are delivered or known dead.
-- Apple: one row per push token (a push carries no data: one push after recovery makes the device
-- fetch every pass that changed meanwhile). Google: one row per card (a retry PATCHes the card's
-- latest state). A row exists only while something is pending: the healthy path writes nothing here.
CREATE TABLE wallet_delivery_pending (
  wallet text NOT NULL CHECK (wallet IN ('apple', 'google')),
  -- Apple: the push token; Google: the card id.
  target text NOT NULL,
  -- Failed attempts so far (drives the backoff).
  attempts integer NOT NULL DEFAULT 1,
  -- Due for the next attempt; a claim moves it forward by a lease so one process has it at a time.
  next_attempt_at timestamptz NOT NULL,
  -- Bumped whenever a newer change wants this target while it is pending: a delivery that started
  -- before the bump does not clear the row (the newer change must reach the device too).
  wanted integer NOT NULL DEFAULT 0,
  first_failed_at timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- Last answer: HTTP status (0 = none) and reason (APNs reason / Google error status).
  last_status integer NOT NULL,
  last_reason text,
  PRIMARY KEY (wallet, target)
);
CREATE INDEX wallet_delivery_pending_due_idx ON wallet_delivery_pending (wallet, next_attempt_at);

-- Campaign figures: pushes / object updates of a recipient still pending, and Google updates that
-- failed for good (a non-retryable 4xx).
ALTER TABLE campaign_recipient
  ADD COLUMN apple_pushes_pending integer,
  ADD COLUMN google_pending boolean,
  ADD COLUMN google_failed boolean;
-- A retry's report finds the recipients still waiting for it by card id.
CREATE INDEX campaign_recipient_apple_pending_idx ON campaign_recipient (card_id) WHERE apple_pushes_pending > 0;
CREATE INDEX campaign_recipient_google_pending_idx ON campaign_recipient (card_id) WHERE google_pending;
