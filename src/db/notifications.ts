import { sql } from 'kysely';
import pg from 'pg';
import type { DatabaseHandle, Executor } from './database.js';

/**
 * Cross-instance notifications through PostgreSQL `LISTEN/NOTIFY` (issue #13): one process changes
 * something, every process hears of it after the change commits. For caches that are not keyed by a
 * row version and for in-memory state that other instances keep (e.g. a 304 map).
 *
 * - `notify(executor, channel, payload)` inside the transaction that made the change: PostgreSQL
 *   delivers it at COMMIT, to every listening session (the sender's own too), and never on ROLLBACK.
 * - `subscribe(channel, handler)` in each process: one dedicated connection for all channels,
 *   outside the pool (a pooled connection cannot stay in LISTEN).
 * - Notifications are at most once: while the listening connection is down (database restart, a
 *   network cut, the session killed) they are lost. After it comes back (reconnecting with backoff
 *   and re-LISTENing every channel) the `onReset` handlers run: whatever the notifications kept
 *   current must be dropped or rebuilt then.
 *
 * PostgreSQL's own limits: a payload is at most 8,000 bytes (send ids, not rows), and identical
 * notifications of one transaction are folded into one.
 *
 * On the embedded database (one process) the same calls work through PGlite's LISTEN; it has no
 * connection to lose, so `onReset` never fires there.
 */
export interface Notifications {
  /** Calls `handler` with the payload of every notification on `channel`. Returns the unsubscribe. */
  subscribe(channel: string, handler: (payload: string) => void): () => void;
  /** Calls `handler` after the listening connection was re-established (notifications may have been missed). */
  onReset(handler: () => void): () => void;
  /** Resolves once every channel subscribed so far is being listened to (tests; start-up). */
  ready(): Promise<void>;
  /**
   * Whether a notification on `channel` committed now would reach this process: the connection is
   * up and its LISTEN has completed. State that must never be stale (the 304 map) is used only then.
   * Optional: a source without it counts as always listening.
   */
  isListening?(channel: string): boolean;
  /** Calls `handler` as soon as the listening connection is found lost (before any reconnect). Returns the removal. */
  onLost?(handler: () => void): () => void;
  close(): Promise<void>;
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

/** The listening connection's application_name (visible in pg_stat_activity). */
export const NOTIFICATIONS_APPLICATION_NAME = 'walletcards-notifications';

function checkChannel(channel: string) {
  if (!CHANNEL.test(channel)) throw new Error(`Invalid notification channel ${JSON.stringify(channel)}: use lower-case letters, digits and _`);
}

/** Queues a notification in `executor`'s transaction (delivered at commit; at once outside a transaction). */
export async function notify(executor: Executor, channel: string, payload: string): Promise<void> {
  checkChannel(channel);
  await sql`SELECT pg_notify(${channel}, ${payload})`.execute(executor);
}

interface Logger {
  info?(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface NotificationOptions {
  logger?: Logger;
  /** Reconnect backoff: first delay and ceiling (ms). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How often the listening connection proves it is alive with a query (ms); a silent cut is noticed within two of these. */
  healthCheckMs?: number;
}

/** Notifications over the database's own means: a dedicated pg connection, or PGlite's LISTEN. */
export function createNotifications(database: DatabaseHandle, options: NotificationOptions = {}): Notifications {
  if (database.kind === 'postgres') {
    if (!database.connectionString) throw new Error('createNotifications: the PostgreSQL handle has no connection string');
    return new PgNotifications(database.connectionString, options);
  }
  return new EmbeddedNotifications(database, options.logger);
}

class Subscribers {
  readonly byChannel = new Map<string, Set<(payload: string) => void>>();
  readonly resets = new Set<() => void>();
  readonly losses = new Set<() => void>();
  constructor(private readonly logger?: Logger) {}

  /** Adds a handler of the channel; returns its removal. */
  add(channel: string, handler: (payload: string) => void): () => void {
    checkChannel(channel);
    let handlers = this.byChannel.get(channel);
    if (!handlers) this.byChannel.set(channel, (handlers = new Set()));
    handlers.add(handler);
    return () => {
      handlers.delete(handler);
    };
  }

  addReset(handler: () => void): () => void {
    this.resets.add(handler);
    return () => {
      this.resets.delete(handler);
    };
  }

  addLost(handler: () => void): () => void {
    this.losses.add(handler);
    return () => {
      this.losses.delete(handler);
    };
  }

  lost() {
    for (const handler of this.losses) {
      try {
        handler();
      } catch (error) {
        this.logger?.error({ err: error }, 'notification loss handler failed');
      }
    }
  }

  deliver(channel: string, payload: string) {
    for (const handler of this.byChannel.get(channel) ?? []) {
      try {
        handler(payload);
      } catch (error) {
        this.logger?.error({ err: error, channel }, 'notification handler failed');
      }
    }
  }

  reset() {
    for (const handler of this.resets) {
      try {
        handler();
      } catch (error) {
        this.logger?.error({ err: error }, 'notification reset handler failed');
      }
    }
  }
}

class PgNotifications implements Notifications {
  readonly #subscribers: Subscribers;
  readonly #logger: Logger | undefined;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #healthMs: number;
  #client: pg.Client | undefined;
  /** The current connection attempt (or the connected state), so concurrent callers share it. */
  #connecting: Promise<void> | undefined;
  #listening = new Set<string>();
  /** Channels whose LISTEN has completed on the current connection (#listening also holds those in flight). */
  #confirmed = new Set<string>();
  #closed = false;
  #everConnected = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #delay: number;

  constructor(
    private readonly connectionString: string,
    options: NotificationOptions,
  ) {
    this.#logger = options.logger;
    this.#subscribers = new Subscribers(options.logger);
    this.#minMs = options.reconnectMinMs ?? 100;
    this.#maxMs = options.reconnectMaxMs ?? 5_000;
    this.#healthMs = options.healthCheckMs ?? 15_000;
    this.#delay = this.#minMs;
  }

  subscribe(channel: string, handler: (payload: string) => void): () => void {
    const unsubscribe = this.#subscribers.add(channel, handler);
    void this.ready().catch(() => undefined);
    return unsubscribe;
  }

  onReset(handler: () => void): () => void {
    return this.#subscribers.addReset(handler);
  }

  onLost(handler: () => void): () => void {
    return this.#subscribers.addLost(handler);
  }

  isListening(channel: string): boolean {
    return this.#client !== undefined && this.#confirmed.has(channel);
  }

  async ready(): Promise<void> {
    if (this.#closed) return;
    await this.#connect();
    // Channels subscribed after the connection came up.
    const client = this.#client;
    if (!client) return;
    for (const channel of this.#subscribers.byChannel.keys()) {
      if (this.#listening.has(channel)) continue;
      this.#listening.add(channel);
      try {
        await client.query(`LISTEN "${channel}"`);
        if (this.#client === client) this.#confirmed.add(channel);
      } catch (error) {
        this.#listening.delete(channel);
        throw error;
      }
    }
  }

  #connect(): Promise<void> {
    if (this.#client) return Promise.resolve();
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, keepAlive: true, application_name: NOTIFICATIONS_APPLICATION_NAME });
    client.on('notification', (message) => this.#subscribers.deliver(message.channel, message.payload ?? ''));
    // Errors after connecting (the server went away, the session was terminated) end the client.
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client));
    try {
      await client.connect();
      for (const channel of this.#subscribers.byChannel.keys()) await client.query(`LISTEN "${channel}"`);
    } catch (error) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
      this.#scheduleRetry(error);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#listening = new Set(this.#subscribers.byChannel.keys());
    this.#confirmed = new Set(this.#listening);
    this.#delay = this.#minMs;
    this.#healthTimer = setInterval(() => {
      // A silent cut (no FIN, no RST) can leave the query waiting for minutes of TCP retries: no
      // answer within one interval counts as lost too, so a cut is noticed within two intervals.
      const timeout = setTimeout(() => this.#lost(client, new Error('notification health check timed out')), this.#healthMs);
      timeout.unref();
      client.query('SELECT 1').then(
        () => clearTimeout(timeout),
        (error: unknown) => {
          clearTimeout(timeout);
          this.#lost(client, error);
        },
      );
    }, this.#healthMs);
    this.#healthTimer.unref();
    if (this.#everConnected) {
      this.#logger?.warn({}, 'notification connection re-established; caches fed by notifications are reset');
      this.#subscribers.reset();
    }
    this.#everConnected = true;
  }

  #lost(client: pg.Client, error?: unknown) {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#listening.clear();
    this.#confirmed.clear();
    if (this.#healthTimer) clearInterval(this.#healthTimer);
    client.removeAllListeners();
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    if (this.#closed) return;
    // Notifications may be missed from now on: state fed by them stops being trusted at once.
    this.#subscribers.lost();
    this.#logger?.warn({ err: error instanceof Error ? error.message : undefined }, 'notification connection lost; reconnecting');
    this.#scheduleRetry(error);
  }

  #scheduleRetry(_error: unknown) {
    if (this.#closed || this.#retryTimer) return;
    const delay = this.#delay;
    this.#delay = Math.min(this.#maxMs, this.#delay * 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connect().catch(() => undefined);
    }, delay);
    this.#retryTimer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#healthTimer) clearInterval(this.#healthTimer);
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}

class EmbeddedNotifications implements Notifications {
  readonly #subscribers: Subscribers;
  readonly #listening = new Map<string, Promise<() => Promise<void>>>();
  readonly #confirmed = new Set<string>();
  #closed = false;

  constructor(
    private readonly database: DatabaseHandle,
    logger?: Logger,
  ) {
    this.#subscribers = new Subscribers(logger);
  }

  subscribe(channel: string, handler: (payload: string) => void): () => void {
    const unsubscribe = this.#subscribers.add(channel, handler);
    void this.ready().catch(() => undefined);
    return unsubscribe;
  }

  onReset(handler: () => void): () => void {
    return this.#subscribers.addReset(handler);
  }

  async ready(): Promise<void> {
    if (this.#closed || !this.database.listen) return;
    for (const channel of this.#subscribers.byChannel.keys()) {
      if (!this.#listening.has(channel)) {
        const listening = this.database.listen(channel, (payload) => this.#subscribers.deliver(channel, payload));
        this.#listening.set(channel, listening);
        listening.then(
          () => {
            if (!this.#closed) this.#confirmed.add(channel);
          },
          () => undefined,
        );
      }
    }
    await Promise.all(this.#listening.values());
  }

  isListening(channel: string): boolean {
    return this.#confirmed.has(channel);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#confirmed.clear();
    const stops = await Promise.allSettled(this.#listening.values());
    this.#listening.clear();
    for (const stop of stops) if (stop.status === 'fulfilled') await stop.value().catch(() => undefined);
  }
}
