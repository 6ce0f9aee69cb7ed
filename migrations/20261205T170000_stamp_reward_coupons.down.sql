DROP INDEX IF EXISTS stamp_rewards_coupon_idx;
ALTER TABLE stamp_rewards DROP COLUMN IF EXISTS coupon_id;
