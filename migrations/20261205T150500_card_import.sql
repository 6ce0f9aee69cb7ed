-- Issue #12 part A: importing a card base from a POS/accounting export (src/imports, docs/import.md).

-- The plastic card's number, kept so the plastic keeps working at the till (by-barcode, search).
-- Unique per program; NULL for cards that never had a plastic one.
ALTER TABLE card ADD COLUMN external_number text;
CREATE UNIQUE INDEX card_external_number_idx ON card (program_id, external_number) WHERE external_number IS NOT NULL;

-- Opening balances (and update-mode deltas) of imported cards are ledger entries of their own kind.
ALTER TABLE ledger_entry DROP CONSTRAINT ledger_entry_kind_check;
ALTER TABLE ledger_entry ADD CONSTRAINT ledger_entry_kind_check CHECK (kind IN ('welcome', 'referral', 'accrual', 'redemption',
  'adjustment', 'expiry', 'reversal', 'birthday', 'campaign_bonus', 'import'));

-- One import of one file. Counters move with each chunk, in the chunk's transaction (the checkpoint).
CREATE TABLE card_import (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  mode text NOT NULL CHECK (mode IN ('create', 'update')),
  status text NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'cancelled')),
  file_name text,
  encoding text NOT NULL,
  delimiter text NOT NULL,
  -- The recognised header → field mapping and the columns that were ignored.
  columns jsonb NOT NULL,
  rows_read integer NOT NULL DEFAULT 0 CHECK (rows_read >= 0),
  rows_valid integer NOT NULL DEFAULT 0 CHECK (rows_valid >= 0),
  created integer NOT NULL DEFAULT 0 CHECK (created >= 0),
  updated integer NOT NULL DEFAULT 0 CHECK (updated >= 0),
  unchanged integer NOT NULL DEFAULT 0 CHECK (unchanged >= 0),
  failed integer NOT NULL DEFAULT 0 CHECK (failed >= 0),
  -- The fence and checkpoint: the next chunk number and the last row number done.
  next_chunk integer NOT NULL DEFAULT 0,
  cursor_row integer NOT NULL DEFAULT 0,
  progress_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  cancelled_at timestamptz
);
CREATE INDEX card_import_program_idx ON card_import (program_id, created_at);
CREATE INDEX card_import_running_idx ON card_import (progress_at) WHERE status IN ('queued', 'running');

-- The file's rows, staged at upload (parsed and validated) so a worker that dies resumes from the
-- checkpoint without the file. `data` (the normalised personal data) is cleared once the row is done;
-- `issues` (column, value, reason) stays for the report.
-- What an imported card came with: which import made it (the migration funnel counts per import),
-- the store and the notes of the old system.
ALTER TABLE card ADD COLUMN import_id uuid REFERENCES card_import(id) ON DELETE SET NULL;
ALTER TABLE card ADD COLUMN store text;
ALTER TABLE card ADD COLUMN notes text;
CREATE INDEX card_import_idx ON card (import_id) WHERE import_id IS NOT NULL;

CREATE TABLE card_import_row (
  import_id uuid NOT NULL REFERENCES card_import(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES program(id) ON DELETE CASCADE,
  row_no integer NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'created', 'updated', 'unchanged', 'failed')),
  data jsonb,
  issues jsonb,
  card_id uuid REFERENCES card(id) ON DELETE SET NULL,
  PRIMARY KEY (import_id, row_no)
);
-- The report (counts by reason, the issue list, report.csv) reads only the failed rows: progress
-- polls must not walk a quarter of a million staged rows.
CREATE INDEX card_import_row_failed_idx ON card_import_row (import_id, row_no) WHERE status = 'failed';
