DROP TABLE sign_in_failure, staff_sign_in_link, staff_session;
DROP INDEX IF EXISTS staff_member_email_idx;
ALTER TABLE staff_member DROP COLUMN last_sign_in_at;
ALTER TABLE staff_member DROP COLUMN password_changed_at;
ALTER TABLE staff_member DROP COLUMN password_hash;
ALTER TABLE staff_member DROP COLUMN email;
