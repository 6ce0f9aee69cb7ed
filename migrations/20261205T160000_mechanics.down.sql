DROP TABLE stamp_rewards;
DROP TABLE stamp_entry;
ALTER TABLE card DROP COLUMN last_stamp_at, DROP COLUMN stamps;
ALTER TABLE purchase DROP COLUMN rewards_earned, DROP COLUMN stamps_added, DROP COLUMN items, DROP COLUMN discount;
