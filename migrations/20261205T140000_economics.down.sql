DROP TABLE segment_week, campaign_control, economics_bonus_month, economics_cohort_month, economics_month, economics_card,
  economics_card_month, economics_ledger_day, economics_day, economics_rollup, anonymous_check;
ALTER TABLE campaign DROP COLUMN held_out;
ALTER TABLE campaign DROP COLUMN effect_window_days;
ALTER TABLE campaign DROP COLUMN control_share;
DROP INDEX IF EXISTS purchase_refund_time_idx;
DROP INDEX IF EXISTS purchase_program_time_idx;
DROP INDEX IF EXISTS ledger_entry_bonus_idx;
DROP INDEX IF EXISTS ledger_entry_program_time_idx;
