-- Issue #11: staff e-mail checks gave a cross-program oracle (409 "already used" for another
-- tenant's owner e-mail), and five wrong passwords locked a real staff member out.
--
-- 1. A sign-in e-mail is unique within its program, no longer across the instance: an owner learns
--    nothing about other programs' staff. Sign-in by e-mail alone tries each active staff member
--    with that e-mail (src/cabinet/auth.ts, signInCandidates).
DROP INDEX IF EXISTS staff_member_email_idx;
CREATE UNIQUE INDEX staff_member_program_email_idx ON staff_member (program_id, email) WHERE email IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX staff_member_email_lookup_idx ON staff_member (email) WHERE email IS NOT NULL AND deleted_at IS NULL;

-- 2. Where an account last signed in successfully: from such an address only its own failures slow
--    it down (per address + account backoff), never the account-wide throttle an attacker elsewhere
--    causes. Rows older than 90 days are deleted as new ones arrive.
CREATE TABLE sign_in_known_address (
  email text NOT NULL,
  ip text NOT NULL,
  last_success_at timestamptz NOT NULL,
  PRIMARY KEY (email, ip)
);
CREATE INDEX sign_in_known_address_at_idx ON sign_in_known_address (last_success_at);
