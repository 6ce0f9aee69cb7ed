/**
 * The pending-delivery state of the update path (src/updates/pending-deliveries.ts), on the test
 * database: backoff and Retry-After, claims that exclude each other, and the rule that a delivery
 * clears a pending row only if no newer change wanted the target while it was under way.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.js';
import {
  claimDueDeliveries,
  deferDeliveries,
  markWanted,
  pendingDeliverySummary,
  retryDelayMs,
  settleDeliveries,
  type DeliveryRetryPolicy,
} from '../../src/updates/pending-deliveries.js';
import { createTestDatabase, TEST_DATABASE_KIND, type TestDatabase } from '../support/database.js';

const policy: DeliveryRetryPolicy = { baseDelayMs: 1_000, maxDelayMs: 60_000 };

describe(`pending wallet deliveries (${TEST_DATABASE_KIND} database)`, () => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.handle.db;
  });
  afterAll(async () => {
    await database?.drop();
  });
  beforeEach(async () => {
    await db.deleteFrom('wallet_delivery_pending').execute();
  });

  /**
   * Each target's delay: seconds from its last attempt (or claim) to its next attempt, both set by one
   * statement, so exact whatever the machine's speed; and whether it is due now.
   */
  async function dueIn(wallet: 'apple' | 'google') {
    const { rows } = await sql<{ target: string; s: number; due: boolean; attempts: number; wanted: number }>`
      select target, extract(epoch from next_attempt_at - last_attempt_at)::float8 as s, next_attempt_at <= now() as due, attempts, wanted
      from wallet_delivery_pending where wallet = ${wallet} order by target
    `.execute(db);
    return rows.map((r) => ({ target: r.target, s: Number(r.s), due: r.due, attempts: Number(r.attempts), wanted: Number(r.wanted) }));
  }
  /** Makes every row due now. */
  const makeDue = () => sql`update wallet_delivery_pending set next_attempt_at = now() - interval '1 second'`.execute(db);

  it('backs off exponentially with jitter, capped, and never sooner than Retry-After', () => {
    const low = () => 0;
    const high = () => 0.999_999;
    expect(retryDelayMs(policy, 1, undefined, low)).toBe(500);
    expect(retryDelayMs(policy, 1, undefined, high)).toBe(1_000);
    expect(retryDelayMs(policy, 4, undefined, low)).toBe(4_000);
    expect(retryDelayMs(policy, 30, undefined, high)).toBe(60_000);
    expect(retryDelayMs(policy, 1, 30_000, high)).toBe(30_000);
    // Retry-After beyond the cap is honoured (up to a day: a longer one is a broken header).
    expect(retryDelayMs(policy, 1, 3_600_000, low)).toBe(3_600_000);
    expect(retryDelayMs(policy, 1, 10 * 86_400_000, low)).toBe(86_400_000);
  });

  it('a failure becomes a row due after its backoff or Retry-After; a second failure of a pending target keeps its schedule and is wanted again', async () => {
    await deferDeliveries(db, 'apple', [{ target: 'a', status: 503, reason: 'ServiceUnavailable' }, { target: 'b', status: 429, reason: 'TooManyRequests', retryAfterMs: 120_000 }], policy);
    let rows = await dueIn('apple');
    expect(rows.map((r) => r.target)).toEqual(['a', 'b']);
    expect(rows[0]!.s).toBeGreaterThanOrEqual(0.5);
    expect(rows[0]!.s).toBeLessThanOrEqual(1);
    expect(rows[1]!.s).toBe(120);
    expect(rows.some((r) => r.due)).toBe(false);
    await deferDeliveries(db, 'apple', [{ target: 'b', status: 500 }], policy);
    rows = await dueIn('apple');
    expect(rows[1]).toMatchObject({ target: 'b', attempts: 1, wanted: 1, due: false });
    // Its schedule is kept (the 120 s Retry-After still counts from the first failure).
    const { rows: next } = await sql<{ s: number }>`select extract(epoch from next_attempt_at - first_failed_at)::float8 as s from wallet_delivery_pending where target = 'b'`.execute(db);
    expect(Number(next[0]!.s)).toBe(120);
    const stored = await db.selectFrom('wallet_delivery_pending').select(['last_status', 'last_reason']).where('target', '=', 'b').executeTakeFirstOrThrow();
    expect(stored).toEqual({ last_status: 500, last_reason: null });
  });

  it('only due rows are claimed; a claim holds them for its lease, so a second claim gets none', async () => {
    await deferDeliveries(db, 'google', [{ target: 'x', status: 500 }, { target: 'y', status: 500 }], policy);
    expect(await claimDueDeliveries(db, 'google', 10, 60_000)).toEqual([]);
    await makeDue();
    const first = await claimDueDeliveries(db, 'google', 1, 60_000);
    const second = await claimDueDeliveries(db, 'google', 10, 60_000);
    expect([...first, ...second].map((c) => c.target).sort()).toEqual(['x', 'y']);
    expect(first).toHaveLength(1);
    expect(await claimDueDeliveries(db, 'google', 10, 60_000)).toEqual([]);
    expect(await claimDueDeliveries(db, 'apple', 10, 60_000)).toEqual([]);
    expect((await dueIn('google')).every((r) => r.s === 60 && !r.due)).toBe(true);
  });

  it('settles: delivered rows go, retries back off further, finished targets go', async () => {
    await deferDeliveries(db, 'apple', ['d', 'r', 'f'].map((target) => ({ target, status: 503 })), policy);
    await makeDue();
    const claimed = await claimDueDeliveries(db, 'apple', 10, 60_000);
    const by = new Map(claimed.map((c) => [c.target, c]));
    await settleDeliveries(
      db,
      'apple',
      [
        { target: 'd', result: 'delivered', wanted: by.get('d')!.wanted },
        { target: 'r', result: 'retry', attempts: by.get('r')!.attempts, status: 429, reason: 'TooManyRequests' },
        { target: 'f', result: 'done' },
      ],
      policy,
    );
    const rows = await dueIn('apple');
    expect(rows.map((r) => r.target)).toEqual(['r']);
    expect(rows[0]!.attempts).toBe(2);
    expect(rows[0]!.s).toBeGreaterThanOrEqual(1); // attempt 2: between 1 and 2 s
    expect(rows[0]!.s).toBeLessThanOrEqual(2);
    expect(rows[0]!.due).toBe(false);
  });

  it('a delivery that began before a newer change wanted the target does not clear it: it is due again at once', async () => {
    await deferDeliveries(db, 'apple', [{ target: 't', status: 503 }], policy);
    await makeDue();
    const [claimed] = await claimDueDeliveries(db, 'apple', 10, 60_000);
    // Meanwhile a change reaches the update path: the target is pending, so the job leaves it to the retry.
    expect([...(await markWanted(db, 'apple', ['t', 'other']))]).toEqual(['t']);
    await settleDeliveries(db, 'apple', [{ target: 't', result: 'delivered', wanted: claimed!.wanted }], policy);
    const rows = await dueIn('apple');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.due).toBe(true);
    // The next round delivers it again (after the change) and now it goes.
    const [again] = await claimDueDeliveries(db, 'apple', 10, 60_000);
    await settleDeliveries(db, 'apple', [{ target: 't', result: 'delivered', wanted: again!.wanted }], policy);
    expect(await dueIn('apple')).toEqual([]);
  });

  it('a target cleared by a retry between the job\'s read and its mark is not pending any more: the job delivers it itself', async () => {
    await deferDeliveries(db, 'google', [{ target: 'card-1', status: 500 }], policy);
    await makeDue();
    const [claimed] = await claimDueDeliveries(db, 'google', 10, 60_000);
    await settleDeliveries(db, 'google', [{ target: 'card-1', result: 'delivered', wanted: claimed!.wanted }], policy);
    expect(await markWanted(db, 'google', ['card-1'])).toEqual(new Set());
  });

  it('summarises pending deliveries per wallet for /metrics', async () => {
    expect(await pendingDeliverySummary(db)).toEqual([]);
    await deferDeliveries(db, 'apple', [{ target: 'a', status: 0, reason: 'Timeout' }, { target: 'b', status: 0, reason: 'ConnectionError' }], policy);
    await deferDeliveries(db, 'google', [{ target: 'c', status: 503 }], policy);
    await sql`update wallet_delivery_pending set first_failed_at = now() - interval '90 seconds' where target = 'a'`.execute(db);
    const summary = (await pendingDeliverySummary(db)).sort((x, y) => x.wallet.localeCompare(y.wallet));
    expect(summary.map((s) => [s.wallet, s.pending])).toEqual([
      ['apple', 2],
      ['google', 1],
    ]);
    expect(summary[0]!.oldestSeconds).toBeGreaterThanOrEqual(90);
  });
});
