DROP TABLE IF EXISTS sign_in_known_address;
DROP INDEX IF EXISTS staff_member_email_lookup_idx;
DROP INDEX IF EXISTS staff_member_program_email_idx;
CREATE UNIQUE INDEX staff_member_email_idx ON staff_member (email) WHERE email IS NOT NULL AND deleted_at IS NULL;
