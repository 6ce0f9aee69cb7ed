import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { createDatabaseRateLimiter } from '../../src/wallets/google/rate-limiter.js';
import { createTestDatabase, requirePostgres, type TestDatabase } from '../support/database.js';

// The deployment-wide Google Wallet limiter (rate-limiter.ts, createDatabaseRateLimiter): limiters in
// four "processes" (four connection pools) take slots from one schedule in the database. The grant
// times are what the test checks (the database's clock), so nothing here depends on how fast the
// machine is; test/cluster/cluster.test.ts measures the real arrivals at the Google fake.
const postgres = requirePostgres();

function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe.skipIf(postgres.skip)(`Google Wallet limiter shared through PostgreSQL ${postgres.reason}`, () => {
  let database: TestDatabase;
  const pools: DatabaseHandle[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    for (let i = 0; i < 4; i++) pools.push(openDatabase({ databaseUrl: database.url!, poolSize: 5 }));
  });
  afterAll(async () => {
    for (const pool of pools) await pool.close();
    await database?.drop();
  });

  it('never grants more than the rate in any one-second window across four processes', async () => {
    const RATE = 40;
    const slots: number[] = [];
    const limiters = pools.map((pool) => createDatabaseRateLimiter(pool.db, { name: 'test-google', ratePerSecond: RATE, onGrant: (slot) => slots.push(slot) }));
    // 80 requests at once, 20 from each process: twice what one second allows.
    await Promise.all(Array.from({ length: 80 }, (_, i) => limiters[i % 4]!.acquire()));
    expect(slots).toHaveLength(80);
    // Grant times are the database's clock: no two closer than 1/rate, so no second holds more than the rate.
    const sorted = [...slots].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(1000 / RATE - 0.01);
    expect(maxInWindow(slots, 1000)).toBeLessThanOrEqual(RATE);
    expect(limiters.every((l) => l.waiting === 0)).toBe(true);
  });

  it('a separate schedule per name; an idle limiter grants at once', async () => {
    const slots: number[] = [];
    const waits: number[] = [];
    const limiter = createDatabaseRateLimiter(pools[0]!.db, { name: 'another-api', ratePerSecond: 5, sleep: async (ms) => void waits.push(ms), onGrant: (s) => slots.push(s) });
    await limiter.acquire();
    expect(waits).toEqual([]);
    expect(limiter.waiting).toBe(0);
  });
});
