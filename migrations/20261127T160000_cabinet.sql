-- The cabinet (issue: cashier screen and marketer dashboard in the browser): staff members sign in
-- with an email and a password (argon2id) or a one-time link an owner created; sessions live in
-- the database as hashes of the cookie value; failed sign-ins are counted per IP and per account.

ALTER TABLE staff_member ADD COLUMN email text;
ALTER TABLE staff_member ADD COLUMN password_hash text;
ALTER TABLE staff_member ADD COLUMN password_changed_at timestamptz;
ALTER TABLE staff_member ADD COLUMN last_sign_in_at timestamptz;
-- Sign-in is by email alone (no program picker), so an email names one active staff member of the
-- instance. Stored lower-cased.
CREATE UNIQUE INDEX staff_member_email_idx ON staff_member (email) WHERE email IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE staff_session (
  -- SHA-256 (hex) of the random cookie value; the value itself is never stored.
  token_hash text PRIMARY KEY,
  staff_id uuid NOT NULL REFERENCES staff_member(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  -- The synchronizer token every cabinet form carries (CSRF); random, per session.
  csrf_token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  -- Sliding (idle) expiry; the absolute limit is created_at + the maximum session age.
  expires_at timestamptz NOT NULL,
  method text NOT NULL CHECK (method IN ('password', 'link')),
  user_agent text
);
CREATE INDEX staff_session_staff_idx ON staff_session (staff_id);
CREATE INDEX staff_session_expires_idx ON staff_session (expires_at);

CREATE TABLE staff_sign_in_link (
  token_hash text PRIMARY KEY,
  staff_id uuid NOT NULL REFERENCES staff_member(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz
);
CREATE INDEX staff_sign_in_link_staff_idx ON staff_sign_in_link (staff_id);

-- Failed sign-in attempts for the per-IP and per-account limits (rows older than the window are
-- deleted as new ones arrive). `subject` is 'ip:<address>' or 'account:<email>'.
CREATE TABLE sign_in_failure (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subject text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failure_subject_idx ON sign_in_failure (subject, at);
CREATE INDEX sign_in_failure_at_idx ON sign_in_failure (at);
