ALTER TABLE campaign DROP COLUMN coupon_definition_id;
ALTER TABLE card DROP COLUMN coupons;
DROP TABLE card_coupons;
DROP TABLE coupon_definitions;
