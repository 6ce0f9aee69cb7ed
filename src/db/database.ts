import { createHash } from 'node:crypto';
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
  /**
   * PostgreSQL only: for the few dedicated connections outside the pool (LISTEN, the boot lock).
   * A secret (it may carry the password): never log it.
   */
  connectionString?: string;
  /**
   * Embedded only: LISTEN on the one PGlite connection (between other queries, never inside a
   * transaction). Resolves to the function that stops listening.
   */
  listen?(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

// int8 (bigint) columns hold points and minor units; they stay far below 2^53, so numbers are safe
// and much simpler for callers than strings.
const INT8_OID = 20;

/**
 * Named (prepared) statements (issue #14, PG_PREPARED_STATEMENTS): every parameterised statement is
 * sent under a name derived from its text, so each pooled connection parses and plans it once and
 * afterwards sends only Bind/Execute (`npm run bench:pos` measures the difference).
 *
 * - Statements without parameters (BEGIN, COMMIT, SAVEPOINT …) stay unnamed: nothing to reuse, and
 *   so do LIKE searches (NEEDS_CUSTOM_PLAN).
 * - At most MAX_PREPARED_TEXTS distinct texts get a name per process (kysely builds a new text for
 *   each length of an IN list); the rest run unnamed, so no connection holds unbounded plans.
 * - A schema change under a running instance (a migration adding a column to a `SELECT *` table)
 *   makes PostgreSQL refuse an old prepared statement with "cached plan must not change result
 *   type": that request fails once, and every name changes (a new epoch), so each connection
 *   prepares the new shape on the next use.
 * - PgBouncer in transaction mode before 1.21 cannot route named statements to the connection that
 *   prepared them: set PG_PREPARED_STATEMENTS=false there.
 */
const MAX_PREPARED_TEXTS = 2000;
const preparedNames = new Map<string, string>();
let preparedEpoch = 0;

/**
 * A LIKE on a parameter (the cashier's name-prefix search) can use a prefix index only when the
 * planner sees the value; after five runs a prepared statement may switch to PostgreSQL's generic
 * plan, which cannot, and walked the program's whole name index at a million cards (bench:pos,
 * 3 ms instead of 0.1 ms). Such statements stay unnamed: planned with their values every time.
 */
const NEEDS_CUSTOM_PLAN = /\b(i?like|similar\s+to)\b/i;

function preparedName(text: string): string | undefined {
  // The map first: a text that has a name never needs a custom plan, so the long texts of the hot
  // statements (the purchase's write is ~1.5 KB) are not scanned with the pattern on every call.
  let name = preparedNames.get(text);
  if (name !== undefined) return name;
  if (NEEDS_CUSTOM_PLAN.test(text)) return undefined;
  if (preparedNames.size < MAX_PREPARED_TEXTS) {
    name = `wc${preparedEpoch}_${createHash('sha1').update(text).digest('base64url').slice(0, 22)}`;
    preparedNames.set(text, name);
  }
  return name;
}

class PreparingClient extends pg.Client {
  override query(...args: any[]): any {
    const [text, values, callback] = args;
    if (typeof text === 'string' && Array.isArray(values) && values.length > 0) {
      const name = preparedName(text);
      if (name) {
        const result = (super.query as (...a: any[]) => any)({ name, text, values }, ...(callback ? [callback] : []));
        if (result && typeof result.catch === 'function') {
          result.catch((error: { code?: string; message?: string }) => {
            if (error?.code === '0A000' && /cached plan must not change result type/.test(error.message ?? '')) {
              preparedEpoch++;
              preparedNames.clear();
            }
          });
        }
        return result;
      }
    }
    return (super.query as (...a: any[]) => any)(...args);
  }
}

export function openDatabase(options: { databaseUrl?: string; dataDir?: string; poolSize?: number; preparedStatements?: boolean }): DatabaseHandle {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 20,
      ...(options.preparedStatements === false ? {} : { Client: PreparingClient }),
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
    return { db, kind: 'postgres', connectionString: options.databaseUrl, close: () => db.destroy() };
  }
  let dataLocation = 'memory://';
  if (options.dataDir) {
    dataLocation = path.resolve(options.dataDir, 'pgdata');
    mkdirSync(dataLocation, { recursive: true });
  }
  // Loaded on first use: the PGlite module costs ~40 MB of memory that a PostgreSQL deployment
  // should not pay (measured by `npm run bench:campaign`).
  let instance: Promise<PGlite> | undefined;
  const open = (): Promise<PGlite> =>
    (instance ??= (async () => {
      const { PGlite, types } = await import('@electric-sql/pglite');
      return new PGlite(dataLocation, { parsers: { [types.INT8]: (v: string) => Number(v) } });
    })());
  const db = new Kysely<Database>({ dialect: new PGliteDialect(open) });
  return {
    db,
    kind: 'embedded',
    // Holding kysely's connection (the dialect's mutex) while LISTEN runs keeps it out of any open
    // transaction on the shared connection: a LISTEN inside one would be undone by its rollback.
    listen: (channel, handler) =>
      db.connection().execute(async () => {
        const pglite = await open();
        const stop = await pglite.listen(channel, handler);
        return () => db.connection().execute(() => stop());
      }),
    close: () => db.destroy(),
  };
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
