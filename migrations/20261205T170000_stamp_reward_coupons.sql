-- Issue #17: a stamp reward issues a coupon of the program's reward definition; the reward row
-- keeps which one, so a refund of the purchase that earned it can void it.
ALTER TABLE stamp_rewards ADD COLUMN coupon_id uuid;
CREATE INDEX stamp_rewards_coupon_idx ON stamp_rewards (program_id, coupon_id) WHERE coupon_id IS NOT NULL;
