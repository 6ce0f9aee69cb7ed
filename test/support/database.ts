import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';

/** Which database this run tests: real PostgreSQL when DATABASE_URL is set, else the embedded one. */
export const TEST_DATABASE_KIND: 'postgres' | 'embedded' = process.env.DATABASE_URL ? 'postgres' : 'embedded';

export interface TestDatabase {
  handle: DatabaseHandle;
  /** The PostgreSQL database's URL (for child processes); undefined for the embedded database. */
  url?: string;
  /** Closes the connection and drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file: a new PostgreSQL database (created from
 * DATABASE_URL's server, dropped afterwards) or a new in-memory embedded database.
 */
export async function createTestDatabase(options: { poolSize?: number; /** false: an empty database (nothing migrated). */ migrate?: boolean } = {}): Promise<TestDatabase> {
  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) {
    const handle = openDatabase({});
    if (options.migrate !== false) await migrateToLatest(handle.db);
    return { handle, drop: () => handle.close() };
  }
  const name = `wc_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const handle = openDatabase({ databaseUrl: url.toString(), poolSize: options.poolSize });
  if (options.migrate !== false) await migrateToLatest(handle.db);
  return {
    handle,
    url: url.toString(),
    async drop() {
      await handle.close();
      const client = new pg.Client({ connectionString: baseUrl });
      await client.connect();
      // pg-pool's end() resolves before its clients have finished disconnecting; a FORCE drop
      // then terminates them mid-goodbye and the FATAL 57P01 surfaces as an unhandled error that
      // fails the run. Wait (bounded) for the backends to go first; FORCE stays the fallback.
      for (let i = 0; i < 100; i++) {
        const { rows } = await client.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
        if (rows[0].n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * Skips a test when the environment lacks what it needs, saying why. CI sets CI=true and must
 * never skip: there the missing requirement is an error instead.
 */
export function requirePostgres(): { skip: boolean; reason: string } {
  if (TEST_DATABASE_KIND === 'postgres') return { skip: false, reason: '' };
  if (process.env.REQUIRE_POSTGRES === '1') throw new Error('REQUIRE_POSTGRES=1 but DATABASE_URL is not set');
  return { skip: true, reason: 'needs real PostgreSQL: set DATABASE_URL' };
}
