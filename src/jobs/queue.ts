import PgBoss from 'pg-boss';
import { sql } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import { sqlExecutor } from '../db/database.js';

/** The Postgres schema pg-boss keeps its tables in. */
export const JOB_SCHEMA = 'pgboss';

// pg-boss builds its job insert from the schema name alone, so an instance that is never started
// and never connects can write a job through any executor passed as `db`.
const jobWriter = new PgBoss({
  db: {
    executeSql: async () => {
      throw new Error('jobWriter has no connection of its own; pass the executor');
    },
  },
  schema: JOB_SCHEMA,
} as PgBoss.ConstructorOptions);

/**
 * Sends a job inside `executor`'s transaction without a JobQueue at hand, for code that only has
 * the transaction (webhooks' `emitEvent`). Same effect as `JobQueue.send`. Returns null when the
 * queue does not exist (yet) or a stately/singleton queue coalesced the job.
 */
export function sendJobIn(executor: Executor, name: string, data: object, options: PgBoss.SendOptions = {}): Promise<string | null> {
  return jobWriter.send(name, data, { ...options, db: sqlExecutor(executor) } as PgBoss.SendOptions);
}

export interface QueueLogger {
  error(obj: object, msg?: string): void;
}

/**
 * pg-boss runs on our own connection (the pg pool, or the embedded database) through its `db`
 * option, so a job can be sent inside the transaction that caused it: the change and its job
 * commit together or not at all (the outbox guarantee).
 */
export class JobQueue {
  readonly boss: PgBoss;
  /** pg-boss statements still running; stop() waits for them before the database may close. */
  #inFlight = new Set<Promise<unknown>>();
  #started = false;
  #stopping = false;

  constructor(
    private readonly db: Db,
    private readonly options: {
      pollingIntervalSeconds?: number;
      logger?: QueueLogger;
      /**
       * pg-boss's maintenance (expiring, archiving, retrying) and cron (schedules) in this process
       * (default true). An `api` instance turns them off: it only sends jobs, the workers keep the
       * queues (pg-boss coordinates several maintaining instances itself).
       */
      maintenance?: boolean;
    } = {},
  ) {
    const executor = sqlExecutor(db);
    this.boss = new PgBoss({
      db: {
        executeSql: (text: string, values?: unknown[]) => {
          const running = executor.executeSql(text, values);
          this.#inFlight.add(running);
          void running.catch(() => undefined).finally(() => this.#inFlight.delete(running));
          return running;
        },
      },
      schema: JOB_SCHEMA,
      // Maintenance and monitoring are cheap; keep the defaults but never crash on their errors.
      ...(options.maintenance === false ? { supervise: false, schedule: false } : {}),
    } as PgBoss.ConstructorOptions);
    this.boss.on('error', (error) => options.logger?.error({ err: error }, 'job queue error'));
  }

  async start() {
    await this.boss.start();
    this.#started = true;
  }

  /**
   * For /readyz: 'ok' when the queue is started and its tables answer; 'stopping' once stop() began;
   * 'not_started' before start(); 'unreachable' when the database does not answer.
   */
  async health(): Promise<'ok' | 'stopping' | 'not_started' | 'unreachable'> {
    if (this.#stopping) return 'stopping';
    if (!this.#started) return 'not_started';
    try {
      await sql`SELECT 1 FROM ${sql.table(`${JOB_SCHEMA}.version`)} LIMIT 1`.execute(this.db);
      return 'ok';
    } catch {
      return 'unreachable';
    }
  }

  async ensureQueue(name: string, options: Omit<PgBoss.Queue, 'name'>) {
    const existing = await this.boss.getQueue(name);
    if (!existing) await this.boss.createQueue(name, { name, ...options });
  }

  /** Sends a job inside `executor`'s transaction. Returns null when a stately queue coalesced it. */
  send(executor: Executor, name: string, data: object, options: PgBoss.SendOptions = {}) {
    return this.boss.send(name, data, { ...options, db: sqlExecutor(executor) } as PgBoss.SendOptions);
  }

  /**
   * Sends many jobs with one statement inside `executor`'s transaction. Same coalescing as `send`
   * (a stately queue's singletonKey conflict skips the job), one round trip instead of one per job.
   */
  async insert(executor: Executor, jobs: PgBoss.JobInsert[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.boss.insert(jobs, { db: sqlExecutor(executor) } as PgBoss.InsertOptions);
  }

  /**
   * The backlog of a queue: what a worker could run now (created or retrying, start time passed),
   * unlike jobs still in their debounce delay; served by pg-boss's index of waiting jobs. A job whose
   * data holds an array under `arrayField` counts as that many items (a batch job of 250 cards is
   * 250 cards of backlog, not one).
   */
  async dueItems(name: string, arrayField: string): Promise<number> {
    const { rows } = await sql<{ n: number }>`
      SELECT coalesce(sum(coalesce(jsonb_array_length(data -> ${arrayField}), 1)), 0)::int AS n
      FROM ${sql.table(`${JOB_SCHEMA}.job`)} WHERE name = ${name} AND state < 'active' AND start_after <= now()
    `.execute(this.db);
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * Starts a worker. pg-boss waits the polling interval after every fetch; when a fetch returned a
   * full batch there is likely more waiting, so the next fetch starts at once and a deep queue drains
   * at the speed of its handler rather than one batch per interval.
   */
  async work<T extends object>(name: string, options: PgBoss.WorkOptions, handler: PgBoss.WorkHandler<T>): Promise<string> {
    const batchSize = options.batchSize ?? 1;
    let workerId: string | undefined;
    workerId = await this.boss.work<T>(
      name,
      { pollingIntervalSeconds: this.options.pollingIntervalSeconds ?? 0.5, ...options },
      async (jobs) => {
        // A fetch that was under way when stop() began may still hand over jobs: refuse them, so
        // they fail (and are retried by the next process) instead of running against a closing database.
        if (this.#stopping) throw new Error('job queue is stopping');
        const result = await handler(jobs);
        if (jobs.length >= batchSize && workerId) this.boss.notifyWorker(workerId);
        return result;
      },
    );
    return workerId;
  }

  async stop() {
    // graceful: let running handlers finish; close: false because the database belongs to the app.
    this.#stopping = true;
    await this.boss.stop({ graceful: true, wait: true, close: false, timeout: 20_000 });
    // pg-boss resolves stop() once no handler is running, but a fetch under way can still return
    // jobs, and a failed handler still records its failure: wait until pg-boss has issued no
    // statement for a moment before the database may close.
    const deadline = Date.now() + 5_000;
    let quietSince = Date.now();
    while (Date.now() < deadline && Date.now() - quietSince < 300) {
      if (this.#inFlight.size > 0) {
        await Promise.allSettled([...this.#inFlight]);
        quietSince = Date.now();
      } else {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}
