import pg from 'pg';
import type { DatabaseHandle } from './database.js';

/**
 * An arbitrary constant naming the start-up lock among PostgreSQL's advisory locks (kysely's
 * migration lock and pg-boss's own use other keys).
 */
export const BOOT_LOCK_KEY = 7_261_205_013;

interface Logger {
  info(obj: object, msg?: string): void;
}

/**
 * Runs `work` while holding the deployment-wide start-up lock, so that instances starting together
 * on one database migrate it, create pg-boss's schema and queues and seed the demo program one after
 * the other instead of racing (issue #13: concurrent `createQueue`s deadlocked; two empty-database
 * starts could both seed). The lock is a session-level advisory lock on a connection of its own:
 * if the process dies, PostgreSQL ends the session and the lock goes with it.
 *
 * The embedded database belongs to one process: `work` simply runs.
 */
export async function withBootLock<T>(database: DatabaseHandle, work: () => Promise<T>, logger?: Logger): Promise<T> {
  if (database.kind !== 'postgres' || !database.connectionString) return work();
  const client = new pg.Client({ connectionString: database.connectionString });
  // A connection error after connecting surfaces on the query below; never as an unhandled event.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [BOOT_LOCK_KEY]);
    if (!rows[0]?.locked) {
      logger?.info({}, 'another instance is starting on this database; waiting for it');
      await client.query('SELECT pg_advisory_lock($1)', [BOOT_LOCK_KEY]);
    }
    try {
      return await work();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [BOOT_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
