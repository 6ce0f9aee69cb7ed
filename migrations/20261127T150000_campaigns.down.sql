DROP TRIGGER IF EXISTS card_tier_changed ON card;
DROP FUNCTION IF EXISTS record_card_tier_change();
DROP TABLE card_tier_change, automation_delivery, apple_pass_fetch, campaign_recipient, campaign;
ALTER TABLE google_object DROP COLUMN published_promo_hash;
DROP INDEX IF EXISTS purchase_rfm_idx;
ALTER TABLE program DROP COLUMN automations;
ALTER TABLE program DROP COLUMN segments;
