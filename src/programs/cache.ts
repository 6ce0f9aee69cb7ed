import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import type { Notifications } from '../db/notifications.js';
import { NotifiedCache } from '../db/notified-cache.js';
import type { ProgramRow } from '../db/schema.js';
import { notFound } from '../http/errors.js';

/**
 * Program rows for the hot paths (a purchase and a card issue read the program's rules and
 * currency every time; issue #14). Each entry carries the row's version (`xmin`: the transaction
 * that last wrote it), so a caller that read the version in a statement it runs anyway (the
 * purchase's card lock) gets exactly the committed row; other callers rely on the
 * `program_changed` notification (migrations/20261205T130100_cluster.sql) reaching this process.
 *
 * Only paths that never write the program row use it (see NotifiedCache). Writers call
 * `forgetProgram` after their change so this process never waits for the notification.
 */
interface VersionedProgram {
  row: ProgramRow;
  version: string;
}

const programs = new NotifiedCache<string, VersionedProgram | undefined>({ maxAgeMs: 5 * 60_000, maxEntries: 10_000 });

export function attachProgramCache(notifications: Notifications): () => void {
  return programs.attach(notifications, 'program_changed', (programId) => programs.forget(programId));
}

export function forgetProgram(programId: string): void {
  programs.forget(programId);
}

/**
 * The program row (404 if there is none). With `version` (the program's `xmin::text` read in the
 * same transaction), a cached row of another version is never answered.
 */
export async function cachedProgramOr404(executor: Executor, programId: string, version?: string): Promise<ProgramRow> {
  const found = await programs.get(
    programId,
    async () => {
      const row = await executor
        .selectFrom('program')
        .selectAll()
        .select(sql<string>`xmin::text`.as('row_version'))
        .where('id', '=', programId)
        .executeTakeFirst();
      if (!row) return undefined;
      const { row_version, ...program } = row;
      return { row: program as ProgramRow, version: row_version };
    },
    (entry) => version === undefined || entry?.version === version,
  );
  if (!found) throw notFound('program');
  return found.row;
}
