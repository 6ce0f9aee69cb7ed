-- Nothing to undo; the trigger of this migration's unreleased first version is removed wherever a
-- development database still has it.
DROP TRIGGER IF EXISTS apple_pass_changed_truncate ON card;
DROP TRIGGER IF EXISTS apple_pass_changed_delete ON card;
DROP TRIGGER IF EXISTS apple_pass_changed_update ON card;
DROP FUNCTION IF EXISTS walletcards_notify_apple_pass_changed();
