import { sql } from 'kysely';
import type { Executor } from '../db/database.js';

/**
 * Wallet deliveries kept for a retry (table `wallet_delivery_pending`, issue #11): a card change whose
 * push or object update failed in a way a later attempt can fix stays pending, with a backoff, until
 * it is delivered or the target is known dead. Nothing here bounds the number of attempts: an APNs or
 * Google outage can last hours, and the device must still end with the card's latest state.
 *
 * Targets: Apple, the push token (an APNs push carries no data; one accepted push after recovery makes
 * the device list and fetch every pass that changed meanwhile, so several changes during an outage
 * coalesce into one push per device). Google, the card id (a retry PATCHes the card's latest state).
 *
 * Who writes what:
 *   - the update path's job (`publish`) reads the pending rows of its targets together with the
 *     registrations (no extra statement while nothing is pending), leaves targets that are pending
 *     to the retry worker (marking them wanted again, `markWanted`), and records its own retryable
 *     failures (`deferDeliveries`). It never deletes a row: only a delivery that began after the row's
 *     last change may clear it.
 *   - the retry worker (`redelivery.ts`) claims due rows (`claimDueDeliveries`, a lease, SKIP LOCKED:
 *     one process per row), delivers, and settles them (`settleDeliveries`): delivered rows are deleted
 *     only if no newer change wanted them meanwhile (`wanted` unchanged since the claim), otherwise they
 *     are due again at once; retryable failures back off; dead or permanently failed targets go.
 */
export type DeliveryWallet = 'apple' | 'google';

export interface DeliveryRetryPolicy {
  /** The first retry comes after about this long; the delay doubles per failed attempt (equal jitter). */
  baseDelayMs: number;
  /** No retry waits longer than this, unless the wallet asked for more with Retry-After. */
  maxDelayMs: number;
}

/** 5 s, 10 s, 20 s … capped at 5 minutes: after an outage every device has its update within minutes. */
export const DEFAULT_DELIVERY_RETRY_POLICY: DeliveryRetryPolicy = { baseDelayMs: 5_000, maxDelayMs: 300_000 };

/** A Retry-After beyond a day is a broken header, not a plan. */
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/** The delay before attempt `attempts + 1`, never sooner than the wallet's Retry-After. */
export function retryDelayMs(policy: DeliveryRetryPolicy, attempts: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempts - 1));
  const delay = ceiling / 2 + random() * (ceiling / 2);
  return Math.round(Math.max(delay, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS)));
}

export interface DeliveryFailure {
  target: string;
  /** HTTP status of the last answer; 0 when there was none. */
  status: number;
  reason?: string;
  retryAfterMs?: number;
}

export interface ClaimedDelivery {
  target: string;
  /** Failed attempts so far. */
  attempts: number;
  /** The row's `wanted` when claimed: a delivery clears the row only if it is still this. */
  wanted: number;
}

export type Settlement =
  /** Delivered: the row goes, unless a newer change wanted the target since the claim. */
  | { target: string; result: 'delivered'; wanted: number }
  /** Failed again in a way a later attempt can fix: back off. */
  | ({ result: 'retry'; attempts: number } & DeliveryFailure)
  /** Nothing left to deliver: the token is dead, the device unregistered, or the wallet refused it for good. */
  | { target: string; result: 'done' };

const unique = (values: string[]) => [...new Set(values)];

/**
 * Marks pending targets as wanted by a newer change and returns those that are (still) pending. The
 * caller delivers every other target itself: one whose row a retry cleared between the caller's read
 * and this statement has had its delivery already, but possibly before the newer change.
 */
export async function markWanted(executor: Executor, wallet: DeliveryWallet, targets: string[]): Promise<Set<string>> {
  if (targets.length === 0) return new Set();
  const rows = await executor
    .updateTable('wallet_delivery_pending')
    .set({ wanted: sql`wanted + 1` })
    .where('wallet', '=', wallet)
    .where('target', 'in', unique(targets))
    .returning('target')
    .execute();
  return new Set(rows.map((row) => row.target));
}

/**
 * Records retryable failures of the update path. A new row is due after the first backoff (or the
 * Retry-After); a row that exists already (a concurrent failure) keeps its schedule, at least the new
 * Retry-After, and is marked wanted again.
 */
export async function deferDeliveries(executor: Executor, wallet: DeliveryWallet, failures: DeliveryFailure[], policy: DeliveryRetryPolicy): Promise<void> {
  const byTarget = new Map(failures.map((failure) => [failure.target, failure]));
  if (byTarget.size === 0) return;
  const list = [...byTarget.values()];
  await sql`
    INSERT INTO wallet_delivery_pending AS p (wallet, target, attempts, next_attempt_at, last_status, last_reason)
    SELECT ${wallet}, f.target, 1, now() + f.delay_ms * interval '1 millisecond', f.status, f.reason
    FROM unnest(${list.map((f) => f.target)}::text[], ${list.map((f) => retryDelayMs(policy, 1, f.retryAfterMs))}::float8[],
                ${list.map((f) => f.status)}::int[], ${list.map((f) => f.reason ?? null)}::text[]) AS f(target, delay_ms, status, reason)
    ON CONFLICT (wallet, target) DO UPDATE SET
      wanted = p.wanted + 1,
      next_attempt_at = greatest(p.next_attempt_at, excluded.next_attempt_at),
      last_status = excluded.last_status,
      last_reason = excluded.last_reason,
      last_attempt_at = now()
  `.execute(executor);
}

/**
 * Claims up to `limit` due rows of a wallet for `leaseMs` (their next attempt moves to the end of the
 * lease, so a process that dies mid-delivery gives them back then). SKIP LOCKED: concurrent workers in
 * other processes claim other rows.
 */
export async function claimDueDeliveries(executor: Executor, wallet: DeliveryWallet, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const { rows } = await sql<{ target: string; attempts: number; wanted: number }>`
    UPDATE wallet_delivery_pending p
    SET next_attempt_at = now() + ${leaseMs}::float8 * interval '1 millisecond', last_attempt_at = now()
    FROM (
      SELECT wallet, target FROM wallet_delivery_pending
      WHERE wallet = ${wallet} AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ) due
    WHERE p.wallet = due.wallet AND p.target = due.target
    RETURNING p.target, p.attempts, p.wanted
  `.execute(executor);
  return rows.map((row) => ({ target: row.target, attempts: Number(row.attempts), wanted: Number(row.wanted) }));
}

/** Applies the results of a retry round (see {@link Settlement}). */
export async function settleDeliveries(executor: Executor, wallet: DeliveryWallet, settlements: Settlement[], policy: DeliveryRetryPolicy): Promise<void> {
  const delivered = settlements.filter((s): s is Extract<Settlement, { result: 'delivered' }> => s.result === 'delivered');
  const retry = settlements.filter((s): s is Extract<Settlement, { result: 'retry' }> => s.result === 'retry');
  const done = unique(settlements.filter((s) => s.result === 'done').map((s) => s.target));
  if (delivered.length > 0) {
    const { rows: cleared } = await sql<{ target: string }>`
      DELETE FROM wallet_delivery_pending p
      USING unnest(${delivered.map((s) => s.target)}::text[], ${delivered.map((s) => s.wanted)}::int[]) AS d(target, wanted)
      WHERE p.wallet = ${wallet} AND p.target = d.target AND p.wanted = d.wanted
      RETURNING p.target
    `.execute(executor);
    // A newer change wanted these while they were being delivered: deliver once more, now.
    const clearedSet = new Set(cleared.map((row) => row.target));
    const again = delivered.filter((s) => !clearedSet.has(s.target)).map((s) => s.target);
    if (again.length > 0) {
      await executor
        .updateTable('wallet_delivery_pending')
        .set({ next_attempt_at: sql`now()` })
        .where('wallet', '=', wallet)
        .where('target', 'in', again)
        .execute();
    }
  }
  if (retry.length > 0) {
    await sql`
      UPDATE wallet_delivery_pending p
      SET attempts = p.attempts + 1, next_attempt_at = now() + r.delay_ms * interval '1 millisecond',
        last_status = r.status, last_reason = r.reason, last_attempt_at = now()
      FROM unnest(${retry.map((s) => s.target)}::text[], ${retry.map((s) => retryDelayMs(policy, s.attempts + 1, s.retryAfterMs))}::float8[],
                  ${retry.map((s) => s.status)}::int[], ${retry.map((s) => s.reason ?? null)}::text[]) AS r(target, delay_ms, status, reason)
      WHERE p.wallet = ${wallet} AND p.target = r.target
    `.execute(executor);
  }
  if (done.length > 0) {
    await executor.deleteFrom('wallet_delivery_pending').where('wallet', '=', wallet).where('target', 'in', done).execute();
  }
}

export interface PendingSummary {
  wallet: DeliveryWallet;
  pending: number;
  /** Seconds since the oldest pending delivery first failed (0 when none). */
  oldestSeconds: number;
}

/** Pending deliveries per wallet, for `/metrics`. */
export async function pendingDeliverySummary(executor: Executor): Promise<PendingSummary[]> {
  const { rows } = await sql<{ wallet: DeliveryWallet; pending: number; oldest_seconds: number | null }>`
    SELECT wallet, count(*)::int AS pending, extract(epoch FROM now() - min(first_failed_at))::float8 AS oldest_seconds
    FROM wallet_delivery_pending GROUP BY wallet
  `.execute(executor);
  return rows.map((row) => ({ wallet: row.wallet, pending: Number(row.pending), oldestSeconds: Math.max(0, Number(row.oldest_seconds ?? 0)) }));
}
