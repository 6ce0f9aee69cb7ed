DROP INDEX IF EXISTS campaign_recipient_google_pending_idx;
DROP INDEX IF EXISTS campaign_recipient_apple_pending_idx;
ALTER TABLE campaign_recipient
  DROP COLUMN IF EXISTS google_failed,
  DROP COLUMN IF EXISTS google_pending,
  DROP COLUMN IF EXISTS apple_pushes_pending;
DROP TABLE IF EXISTS wallet_delivery_pending;
