import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { CompiledQuery, Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { PGliteDialect } from './pglite-dialect.js';

export type Db = Kysely<Database>;
/** A repository function's first argument: the database or an open transaction. */
export type Executor = Kysely<Database> | Transaction<Database>;

/** What pg-boss needs to run its SQL through our connection (and inside our transactions). */
export interface SqlExecutor {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

export interface DatabaseHandle {
  db: Db;
  kind: 'postgres' | 'embedded';
  close(): Promise<void>;
}

// int8 (bigint) columns hold points and minor units; they stay far below 2^53, so numbers are safe
// and much simpler for callers than strings.
const INT8_OID = 20;

export function openDatabase(options: { databaseUrl?: string; dataDir?: string; poolSize?: number }): DatabaseHandle {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 20,
      types: {
        getTypeParser: ((oid: number, format?: any) =>
          oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as any,
      },
    });
    // An idle pooled connection that the server ends (a restart, a failover, pg_terminate_backend)
    // makes the pool emit 'error'; without a listener Node would crash the process. The pool has
    // already dropped that client and the next query opens a new connection, so there is nothing
    // else to do (a query that was running on it fails on its own and is answered as a 500).
    pool.on('error', () => undefined);
    // The same for a connection that is checked out (inside a transaction, between two queries)
    // when the server ends it: pg emits 'error' on the client, and with no listener that too would
    // crash the process. The transaction's next query then fails, and the pool discards the client.
    pool.on('connect', (client) => {
      client.on('error', () => undefined);
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  let dataLocation = 'memory://';
  if (options.dataDir) {
    dataLocation = path.resolve(options.dataDir, 'pgdata');
    mkdirSync(dataLocation, { recursive: true });
  }
  // Loaded on first use: the PGlite module costs ~40 MB of memory that a PostgreSQL deployment
  // should not pay (measured by `npm run bench:campaign`).
  const open = async (): Promise<PGlite> => {
    const { PGlite, types } = await import('@electric-sql/pglite');
    return new PGlite(dataLocation, { parsers: { [types.INT8]: (v: string) => Number(v) } });
  };
  const db = new Kysely<Database>({ dialect: new PGliteDialect(open) });
  return { db, kind: 'embedded', close: () => db.destroy() };
}

/** Adapts a kysely executor for pg-boss's `db` option. */
export function sqlExecutor(executor: Executor): SqlExecutor {
  return {
    async executeSql(text, values) {
      const result = await executor.executeQuery(CompiledQuery.raw(text, values ?? []));
      return { rows: result.rows as any[] };
    },
  };
}
