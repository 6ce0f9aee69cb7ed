import PgBoss from 'pg-boss';
import type { Db, Executor } from '../db/database.js';
import { sqlExecutor } from '../db/database.js';

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

  constructor(
    private readonly db: Db,
    private readonly options: { pollingIntervalSeconds?: number; logger?: QueueLogger } = {},
  ) {
    this.boss = new PgBoss({
      db: sqlExecutor(db),
      schema: 'pgboss',
      // Maintenance and monitoring are cheap; keep the defaults but never crash on their errors.
    } as PgBoss.ConstructorOptions);
    this.boss.on('error', (error) => options.logger?.error({ err: error }, 'job queue error'));
  }

  async start() {
    await this.boss.start();
  }

  async ensureQueue(name: string, options: Omit<PgBoss.Queue, 'name'>) {
    const existing = await this.boss.getQueue(name);
    if (!existing) await this.boss.createQueue(name, { name, ...options });
  }

  /** Sends a job inside `executor`'s transaction. Returns null when a stately queue coalesced it. */
  send(executor: Executor, name: string, data: object, options: PgBoss.SendOptions = {}) {
    return this.boss.send(name, data, { ...options, db: sqlExecutor(executor) } as PgBoss.SendOptions);
  }

  work<T extends object>(name: string, options: PgBoss.WorkOptions, handler: PgBoss.WorkHandler<T>) {
    return this.boss.work<T>(name, { pollingIntervalSeconds: this.options.pollingIntervalSeconds ?? 0.5, ...options }, handler);
  }

  async stop() {
    // graceful: let running handlers finish; close: false because the database belongs to the app.
    await this.boss.stop({ graceful: true, wait: true, close: false, timeout: 20_000 });
  }
}
