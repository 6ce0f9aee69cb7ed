import type { PGlite } from '@electric-sql/pglite';
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from 'kysely';

/**
 * Kysely dialect for the embedded PGlite database.
 *
 * PGlite is one connection. Kysely holds a connection from `acquireConnection` to
 * `releaseConnection` — one query, or a whole transaction — so a mutex around that span is what
 * guarantees a transaction never interleaves with other requests' queries on the shared
 * connection. (Third-party PGlite dialects only serialise single queries.)
 */
export class PGliteDialect implements Dialect {
  /** A PGlite instance, or a function that opens one when the first query comes (lazy loading). */
  constructor(private readonly pglite: PGlite | (() => Promise<PGlite>)) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pglite);
  }
  createIntrospector(db: Kysely<any>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}

class Mutex {
  #tail: Promise<void> = Promise.resolve();
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const ready = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => next);
    return ready;
  }
}

class PGliteDriver implements Driver {
  readonly #mutex = new Mutex();
  readonly #open: () => Promise<PGlite>;
  #pglite: PGlite | undefined;
  #connection: PGliteConnection | undefined;
  #release: (() => void) | undefined;

  constructor(source: PGlite | (() => Promise<PGlite>)) {
    this.#open = typeof source === 'function' ? source : async () => source;
  }
  async init() {
    this.#pglite = await this.#open();
    await this.#pglite.waitReady;
    this.#connection = new PGliteConnection(this.#pglite);
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    this.#release = await this.#mutex.lock();
    return this.#connection!;
  }
  async beginTransaction(connection: DatabaseConnection) {
    await connection.executeQuery(CompiledQuery.raw('begin'));
  }
  async commitTransaction(connection: DatabaseConnection) {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }
  async rollbackTransaction(connection: DatabaseConnection) {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }
  async releaseConnection() {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
  async destroy() {
    if (this.#pglite && !this.#pglite.closed) await this.#pglite.close();
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(private readonly pglite: PGlite) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    // Statements without parameters may hold several commands (migrations, pg-boss DDL); only the
    // simple protocol (`exec`) accepts those. The result of the last command is what callers want.
    const result =
      compiled.parameters.length > 0
        ? await this.pglite.query<R>(compiled.sql, compiled.parameters as unknown[])
        : ((await this.pglite.exec(compiled.sql)).at(-1) ?? { rows: [], affectedRows: 0 });
    return {
      rows: (result.rows ?? []) as R[],
      numAffectedRows: result.affectedRows !== undefined ? BigInt(result.affectedRows) : undefined,
    };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('Streaming is not supported on the embedded database');
  }
}
