DROP TABLE scheduled_task;
DROP TABLE api_rate_slot;
DROP TABLE rate_limit_counter;
DROP TRIGGER program_changed ON program;
DROP FUNCTION notify_program_changed();
ALTER TABLE program DROP COLUMN image_version;
