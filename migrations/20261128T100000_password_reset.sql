-- Password reset by email for cabinet staff (issue #7). A request at /app/reset creates a row and,
-- in the same transaction, a mail job. The job mints the random 256-bit token when it sends the
-- mail and stores only its SHA-256 here, so neither this table nor pg-boss's job table ever holds
-- a usable token. Requests are counted for the limits in sign_in_failure under the subjects
-- 'reset-ip:<address>' and 'reset-account:<email>'.

CREATE TABLE staff_password_reset (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  staff_id uuid NOT NULL REFERENCES staff_member(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  -- The (lower-cased) address the request named: the mail goes out only while it is still the
  -- staff member's sign-in email.
  email text NOT NULL,
  -- SHA-256 (hex) of the token in the mail; null until the mail job has minted it.
  token_hash text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  sent_at timestamptz,
  -- Set when the token is used, or when another reset of the same staff member succeeded.
  used_at timestamptz
);
CREATE INDEX staff_password_reset_staff_idx ON staff_password_reset (staff_id);
CREATE INDEX staff_password_reset_expires_idx ON staff_password_reset (expires_at);
