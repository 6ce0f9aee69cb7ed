/**
 * Client-side rate limit for the Wallet Objects API: one for the whole deployment on PostgreSQL
 * (createDatabaseRateLimiter), one per process on the embedded database (processRateLimiter).
 *
 * Reference: /work/shared/reference/google-wallet.md, section 5 ("Calls to the Google Wallet API are
 * rate limited to 20 requests per second", Google: Wallet FAQ; no rate-limit headers published) and
 * checklist 38.
 *
 * A token bucket: `ratePerSecond` tokens per second, at most `burst` stored. Waiters are served strictly
 * in arrival order (FIFO): a caller that arrives while others wait queues behind them even if a token has
 * just become free. One timer is armed for the moment the next token exists; nothing polls.
 *
 * Default burst is 1, i.e. calls are spaced 1/rate apart. Why: a bucket with burst b lets b + rate·W calls
 * through in any window of W seconds, so the common "burst = rate" would allow 40 calls within one
 * second. Google does not say how its 20/s window is measured; with burst 1 no 1-second window ever sees
 * more than `ratePerSecond` calls, whatever the window. A single call still goes out at once when the
 * API is idle.
 */

import { sql } from 'kysely';
import type { Db } from '../../db/database.js';

/**
 * Share of Google's limit the limiter hands out. Google counts requests as they arrive; ours leave a
 * little after their slot (the event loop of a busy process runs timers late, by tens of ms on a
 * loaded 2-core machine), so slots spaced exactly 1/20 s apart can arrive as 21 within one second.
 * At 90 % (18/s for 20/s) the 21st request of any second is ≥ 1.1 s after the first, which absorbs
 * up to ~100 ms of such jitter (test/cluster/cluster.test.ts measures the arrivals at the Google fake).
 */
export const LIMITER_SHARE = 0.9;

/** The rate the limiter runs at for a published limit of `requestsPerSecond`. */
export const limiterRate = (requestsPerSecond: number) => requestsPerSecond * LIMITER_SHARE;

export interface RateLimiter {
  /** Resolves when the caller may send one request. */
  acquire(): Promise<void>;
  /** Callers currently waiting. */
  readonly waiting: number;
}

export interface TokenBucketOptions {
  ratePerSecond: number;
  /** Tokens that may accumulate while idle (default 1, see the module comment). */
  burst?: number;
  /** Milliseconds clock (monotonic by default). */
  now?: () => number;
  setTimer?: (callback: () => void, ms: number) => unknown;
}

export function createTokenBucket(opts: TokenBucketOptions): RateLimiter {
  const rate = opts.ratePerSecond;
  const burst = opts.burst ?? 1;
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`ratePerSecond must be positive, got ${rate}`);
  if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError(`burst must be >= 1, got ${burst}`);
  const now = opts.now ?? (() => performance.now());
  const setTimer = opts.setTimer ?? ((callback: () => void, ms: number) => setTimeout(callback, ms));

  let tokens = burst;
  let refilledAt = now();
  let timerArmed = false;
  const queue: Array<() => void> = [];

  function refill(): void {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - refilledAt) * rate) / 1000);
    refilledAt = t;
  }

  function drain(): void {
    refill();
    while (queue.length > 0 && tokens >= 1) {
      tokens -= 1;
      queue.shift()!();
    }
    if (queue.length > 0 && !timerArmed) {
      timerArmed = true;
      // Math.ceil (at least 1 ms): waking up a hair early would only re-arm the timer, never spin.
      const wait = Math.max(1, Math.ceil(((1 - tokens) * 1000) / rate));
      setTimer(() => {
        timerArmed = false;
        drain();
      }, wait);
    }
  }

  return {
    acquire() {
      return new Promise<void>((resolve) => {
        queue.push(resolve);
        drain();
      });
    },
    get waiting() {
      return queue.length;
    },
  };
}

/**
 * One limiter for every process on the database (issue #13: four processes with a limiter each sent
 * Google 75–80 requests in one second). The schedule is one row, `api_rate_slot`: a request may go
 * when the row's `next_at` has passed, and taking it moves `next_at` on by 1/rate in the same atomic
 * UPDATE. Times are the database's clock, so the processes' clocks never matter.
 *
 * A slot is granted only when it is due and the request leaves right away, never reserved ahead:
 * with reservations, a process that the machine did not schedule for a few hundred milliseconds
 * (two busy cores) woke with several slots due at once and sent them together, above the limit at
 * Google's end (test/cluster/cluster.test.ts saw it). Each process also asks for one slot at a time
 * (its waiters queue in order locally), so a stalled process can hold back at most one request.
 * A caller told to wait sleeps until `next_at` and asks again; processes that ask at the same moment
 * race for the slot, and the loser asks again for the next one.
 *
 * One statement per Google request (and per lost race); PostgreSQL runs thousands of those a
 * second (`npm run bench:cluster` measures it), far above Google's 20/s, so no Redis is needed.
 */
export function createDatabaseRateLimiter(
  db: Db,
  options: {
    name: string;
    ratePerSecond: number;
    sleep?: (ms: number) => Promise<void>;
    /** Called with each slot granted (ms since the epoch, database clock): tests and benchmarks. */
    onGrant?: (slotMs: number) => void;
  },
): RateLimiter {
  const rate = options.ratePerSecond;
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`ratePerSecond must be positive, got ${rate}`);
  const spacingSeconds = Math.max(1, Math.round(1_000_000 / rate)) / 1_000_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let waiting = 0;
  let turn: Promise<void> = Promise.resolve();

  /** Takes the slot if it is due; otherwise says how long until it is (ms). */
  const tryTake = async (): Promise<{ granted: boolean; waitMs: number; slotMs: number }> => {
    // The UPDATE takes the slot when due. The SELECT (the statement's snapshot, i.e. the row before
    // any concurrent taker committed) answers when it was not; a race lost to a concurrent taker
    // reads as "due" there and is simply asked again after a millisecond.
    const { rows } = await sql<{ granted: boolean; wait_ms: number; slot_ms: number }>`
      WITH taken AS (
        UPDATE api_rate_slot SET next_at = clock_timestamp() + make_interval(secs => ${spacingSeconds}::float8)
        WHERE name = ${options.name} AND next_at <= clock_timestamp()
        RETURNING next_at
      )
      SELECT true AS granted, 0::float8 AS wait_ms, (extract(epoch FROM next_at - make_interval(secs => ${spacingSeconds}::float8)) * 1000)::float8 AS slot_ms FROM taken
      UNION ALL
      SELECT false, greatest(1, extract(epoch FROM next_at - clock_timestamp()) * 1000)::float8, 0
      FROM api_rate_slot WHERE name = ${options.name} AND NOT EXISTS (SELECT 1 FROM taken)
    `.execute(db);
    const row = rows[0];
    if (!row) {
      // First use of this name: create the row (due now) and ask again.
      await sql`INSERT INTO api_rate_slot (name, next_at) VALUES (${options.name}, clock_timestamp()) ON CONFLICT (name) DO NOTHING`.execute(db);
      return { granted: false, waitMs: 0, slotMs: 0 };
    }
    return { granted: row.granted, waitMs: Number(row.wait_ms), slotMs: Number(row.slot_ms) };
  };

  const takeSlot = async () => {
    for (;;) {
      const attempt = await tryTake();
      if (attempt.granted) {
        options.onGrant?.(attempt.slotMs);
        return;
      }
      if (attempt.waitMs > 0) await sleep(Math.ceil(attempt.waitMs));
    }
  };

  return {
    acquire() {
      waiting++;
      const mine = turn.then(takeSlot).finally(() => {
        waiting--;
      });
      // The next waiter of this process asks only once this one has its slot (or failed).
      turn = mine.catch(() => undefined);
      return mine;
    },
    get waiting() {
      return waiting;
    },
  };
}

let shared: { limiter: RateLimiter; ratePerSecond: number } | undefined;

/**
 * The one limiter of this process (checklist 38 is "per process": every client instance must share it).
 * The first caller's rate wins; a later, different rate is ignored and reported through `onMismatch`.
 */
export function processRateLimiter(ratePerSecond: number, onMismatch?: (active: number) => void): RateLimiter {
  if (!shared) shared = { limiter: createTokenBucket({ ratePerSecond }), ratePerSecond };
  else if (shared.ratePerSecond !== ratePerSecond) onMismatch?.(shared.ratePerSecond);
  return shared.limiter;
}
