-- Invitations to the wallet by SMS and e-mail (issue #12, item 3): a batch per request, one row per
-- card and channel it tried (ids only, no personal data). Frozen in time: never edit an applied migration.
CREATE TABLE invitation_batch (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  channels text[] NOT NULL,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'finished')),
  -- The last card done (keyset order): a job restarted after a crash goes on from here.
  cursor_card_id uuid,
  -- Cards on no wallet seen so far, and those of them without marketing consent (sent nothing).
  cards integer NOT NULL DEFAULT 0,
  skipped_no_consent integer NOT NULL DEFAULT 0,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (program_id, id)
);
-- One running batch per program at a time.
CREATE UNIQUE INDEX invitation_batch_running_idx ON invitation_batch (program_id) WHERE status <> 'finished';

CREATE TABLE invitation (
  program_id uuid NOT NULL,
  batch_id uuid NOT NULL,
  card_id uuid NOT NULL REFERENCES card(id) ON DELETE CASCADE,
  channel text NOT NULL CHECK (channel IN ('sms', 'email')),
  -- 'sending' is written before the send: a crash after it never sends twice (at most once per batch).
  status text NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'no_address')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (program_id, batch_id, card_id, channel),
  FOREIGN KEY (program_id, batch_id) REFERENCES invitation_batch (program_id, id) ON DELETE CASCADE
);
CREATE INDEX invitation_card_idx ON invitation (card_id);
