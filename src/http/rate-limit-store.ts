import { sql } from 'kysely';
import type { Db, Executor } from '../db/database.js';

/**
 * A store for @fastify/rate-limit in the database, so a per-address limit (join form, cabinet
 * sign-in and reset, `/apple/v1/log`, Google callbacks) counts every instance's requests together:
 * with the library's in-memory store two instances let 16 join posts through where one lets 10
 * (issue #13). Same semantics as the library's LocalStore: a fixed window that starts with the first
 * request of a key, counted up to `max`, one atomic upsert per request. The key is the library's:
 * the route (method + URL) and the client address Fastify derives with TRUST_PROXY.
 *
 * The window runs on the database's clock, so the instances' clocks never matter. Rows of expired
 * windows are deleted by the scheduled prune (`pruneRateLimitCounters`); an expired row is also
 * simply restarted by the next request of its key.
 */
interface RouteOptions {
  routeInfo?: { method?: string; url?: string };
}

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

export interface RateLimitStoreClass {
  new (options: RouteOptions): {
    incr(key: string, callback: Callback, timeWindow: number, max: number): void;
    child(options: RouteOptions): unknown;
  };
}

/** The store class for `@fastify/rate-limit`'s `store` option (the library instantiates it). */
export function databaseRateLimitStore(db: Db): RateLimitStoreClass {
  class DatabaseRateLimitStore {
    readonly prefix: string;
    constructor(options: RouteOptions = {}) {
      this.prefix = options.routeInfo ? `${options.routeInfo.method ?? ''}${options.routeInfo.url ?? ''}|` : '';
    }

    incr(key: string, callback: Callback, timeWindow: number, _max: number) {
      incrementCounter(db, this.prefix + key, timeWindow).then(
        (result) => callback(null, result),
        (error: Error) => callback(error),
      );
    }

    child(options: RouteOptions) {
      return new DatabaseRateLimitStore(options);
    }
  }
  return DatabaseRateLimitStore;
}

/** Counts one hit of `key` in its current window; returns the count and the window's remaining ms. */
export async function incrementCounter(executor: Executor, key: string, windowMs: number): Promise<{ current: number; ttl: number }> {
  const { rows } = await sql<{ hits: number; ttl: number }>`
    INSERT INTO rate_limit_counter AS r (key, hits, reset_at)
    VALUES (${key}, 1, clock_timestamp() + make_interval(secs => ${windowMs}::float8 / 1000))
    ON CONFLICT (key) DO UPDATE SET
      hits = CASE WHEN r.reset_at <= clock_timestamp() THEN 1 ELSE r.hits + 1 END,
      reset_at = CASE WHEN r.reset_at <= clock_timestamp() THEN excluded.reset_at ELSE r.reset_at END
    RETURNING hits, greatest(0, ceil(extract(epoch FROM (reset_at - clock_timestamp())) * 1000))::int AS ttl
  `.execute(executor);
  const row = rows[0]!;
  return { current: Number(row.hits), ttl: Number(row.ttl) };
}

/** Deletes the counters of windows that ended (scheduled, once per tick across all workers). */
export async function pruneRateLimitCounters(db: Db): Promise<number> {
  const result = await db.deleteFrom('rate_limit_counter').where('reset_at', '<', sql<Date>`clock_timestamp()`).executeTakeFirst();
  return Number(result.numDeletedRows ?? 0);
}
