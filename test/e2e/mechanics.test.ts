import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf } from '../support/pkpass.js';

// Issue #17 items 1, 2, 4 through HTTP on a real database: the three mechanics (an outdoor retailer's
// points with category multipliers, a clothing store's growing discount, a coffee shop's stamps),
// line items, and the quote that answers the same numbers as the purchase.

type Headers = Record<string, string>;
const RUB = 100;
const name = (ru: string, en: string) => ({ ru, en });

const OUTDOOR_RULES = {
  categories: [
    { category: 'premium', multiplier: 2 },
    { category: 'tobacco', exclude: true },
  ],
};
const CLOTHING_RULES = {
  mechanic: 'discount',
  welcomeBonus: 0,
  tiers: [
    { code: 'base', name: name('Базовая', 'Base'), accrualPercent: 0, threshold: 0, discountPercent: 5 },
    { code: 'gold', name: name('Золотая', 'Gold'), accrualPercent: 0, threshold: 50_000 * RUB, discountPercent: 10 },
  ],
  categories: [{ category: 'tobacco', exclude: true }],
};
const COFFEE_RULES = {
  mechanic: 'stamps',
  welcomeBonus: 0,
  stamps: { perReward: 6, reward: { name: name('Кофе в подарок', 'A free coffee') } },
  categories: [{ category: 'tobacco', exclude: true }],
};

function expectProblem(res: LightMyRequestResponse, status: number, code?: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (code) expect(res.json().code).toBe(code);
  return res.json();
}

describe(`program mechanics, line items and quotes (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let counter = 0;
  let phone = 5_550_000;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });
  const db = () => t.database.handle.db;

  async function program(rules: Record<string, unknown>) {
    counter += 1;
    return createProgramWithKeys(t.app, `mech-${counter}`, { rules });
  }
  async function issue(headers: Headers) {
    phone += 1;
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers, payload: { holder: { name: 'Анна', phone: `+7916${phone}` } } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }
  const quote = (headers: Headers, cardId: string, body: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/quote`, headers, payload: body });
  const purchase = (headers: Headers, cardId: string, body: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers, payload: body });
  async function ok(res: Promise<LightMyRequestResponse>, status = 201) {
    const r = await res;
    expect(r.statusCode, r.body).toBe(status);
    return r.json();
  }
  /** The card's Apple pass still builds (the display of each mechanic on it comes with issue #17 item 5). */
  async function expectPassBuilds(card: { applePassUrl: string }) {
    const download = await t.app.inject({ method: 'GET', url: new URL(card.applePassUrl).pathname });
    expect(download.statusCode).toBe(200);
    expect(passJsonOf(download.rawPayload).storeCard).toBeDefined();
  }
  const getCard = (headers: Headers, cardId: string) => ok(t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}`, headers }), 200);

  /** The card's cached counters equal the sums of its entries (balance: ledger; stamps: stamp entries). */
  async function expectCachesMatch(cardId: string) {
    const card = await db().selectFrom('card').select(['balance', 'stamps']).where('id', '=', cardId).executeTakeFirstOrThrow();
    const points = await db().selectFrom('ledger_entry').select(sql<number>`coalesce(sum(points), 0)::int`.as('s')).where('card_id', '=', cardId).executeTakeFirstOrThrow();
    const stamps = await db().selectFrom('stamp_entry').select(sql<number>`coalesce(sum(stamps), 0)::int`.as('s')).where('card_id', '=', cardId).executeTakeFirstOrThrow();
    expect(Number(card.balance)).toBe(Number(points.s));
    expect(Number(card.stamps)).toBe(Number(stamps.s));
  }

  it('answers the same numbers in the quote as in the purchase, for generated checks in all three mechanics, and the quote writes nothing', async () => {
    const programs = [await program(OUTDOOR_RULES), await program(CLOTHING_RULES), await program(COFFEE_RULES)];
    const item = fc.record({
      sku: fc.constantFrom('tent', 'boots', 'latte', 'cigs'),
      category: fc.constantFrom('premium', 'Tobacco', 'coffee', 'food'),
      quantity: fc.integer({ min: 1, max: 4 }),
      price: fc.integer({ min: 1, max: 2_000_000 }),
    });
    const checks = fc.sample(
      fc.record({
        program: fc.integer({ min: 0, max: 2 }),
        amount: fc.option(fc.integer({ min: 1, max: 5_000_000 }), { nil: undefined }),
        items: fc.option(fc.array(item, { minLength: 1, maxLength: 5 }), { nil: undefined }),
        sendAmountWithItems: fc.boolean(),
        redeemShare: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      { numRuns: 36, seed: 1717 },
    );
    const cards = await Promise.all(programs.map((p) => issue(p.as('pos'))));
    let compared = 0;
    for (const c of checks) {
      const p = programs[c.program];
      const card = cards[c.program];
      const body: Record<string, unknown> = {};
      if (c.items) {
        body.items = c.items;
        if (c.sendAmountWithItems) body.amount = c.items.reduce((sum, i) => sum + i.price * i.quantity, 0);
      } else body.amount = c.amount ?? 10_000;
      const probe = await ok(quote(p.as('pos'), card.id, body), 200);
      body.redeemPoints = Math.floor(probe.maxRedeemablePoints * c.redeemShare);
      const before = await getCard(p.as('admin'), card.id);
      const quoted = await ok(quote(p.as('pos'), card.id, body), 200);
      expect(await getCard(p.as('admin'), card.id)).toEqual(before);
      const bought = await ok(purchase(p.as('pos'), card.id, body));
      for (const field of ['amount', 'redeemed', 'accrued', 'payable', 'tierChanged'] as const) expect(bought[field], field).toEqual(quoted[field]);
      for (const field of ['discount', 'stampsAdded', 'rewardsEarned'] as const) expect(bought[field] ?? 0, field).toEqual(quoted[field]);
      if (bought.mechanic !== undefined) {
        expect(bought).toMatchObject({ mechanic: quoted.mechanic, eligibleAmount: quoted.eligibleAmount, discountPercent: quoted.discountPercent, stamps: quoted.stampsAfter });
      }
      expect(quoted.coupons).toEqual([]);
      compared += 1;
    }
    expect(compared).toBe(36);
    for (const card of cards) await expectCachesMatch(card.id);
  });

  it('runs an outdoor retailer: double points on premium, nothing for tobacco, items kept on the purchase', async () => {
    const p = await program(OUTDOOR_RULES);
    const card = await issue(p.as('pos'));
    const items = [
      { sku: 'tent-1', name: 'Палатка', category: 'Premium', quantity: 1, price: 20_000 * RUB },
      { sku: 'socks', category: 'clothes', quantity: 2, price: 500 * RUB },
      { sku: 'cigs', category: 'tobacco', quantity: 1, price: 300 * RUB },
    ];
    const bought = await ok(purchase(p.as('pos'), card.id, { items }));
    // 5 %: 2 × 1,000 for the tent + 50 for the socks; tobacco earns nothing.
    expect(bought).toMatchObject({ mechanic: 'points', amount: 21_300 * RUB, eligibleAmount: 21_000 * RUB, accrued: 2050, payable: 21_300 * RUB, discount: 0 });
    const history = await ok(t.app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}/history`, headers: p.as('pos') }), 200);
    expect(history.purchases[0].items).toEqual(items);
    // Points may not pay for tobacco: the cap is 30 % of the eligible part.
    const capped = await ok(quote(p.as('pos'), card.id, { items: [{ sku: 'cigs', category: 'TOBACCO', quantity: 10, price: 300 * RUB }] }), 200);
    expect(capped).toMatchObject({ eligibleAmount: 0, maxRedeemablePoints: 0, accrued: 0 });
    expectProblem(await purchase(p.as('pos'), card.id, { items: [{ sku: 'cigs', category: 'tobacco', quantity: 1, price: 300 * RUB }], redeemPoints: 1 }), 422, 'redemption_cap_exceeded');
    const refund = await ok(t.app.inject({ method: 'POST', url: `/api/v1/purchases/${bought.purchaseId}/refund`, headers: p.as('pos') }), 200);
    expect(refund).toMatchObject({ pointsReversed: 2050, balance: 1000 });
    expect(refund.stampsDelta).toBeUndefined();
    await expectCachesMatch(card.id);
  });

  it('runs a clothing store: the discount grows with spend, and the card says how far the next level is', async () => {
    const p = await program(CLOTHING_RULES);
    const card = await issue(p.as('pos'));
    expect(card).toMatchObject({ mechanic: 'discount', discountPercent: 5, nextDiscount: { percent: 10, spendToGo: 50_000 * RUB }, stamps: null });
    const first = await ok(purchase(p.as('pos'), card.id, { amount: 30_000 * RUB }));
    expect(first).toMatchObject({ mechanic: 'discount', discountPercent: 5, discount: 1_500 * RUB, payable: 28_500 * RUB, accrued: 0, balance: 0 });
    expect(await getCard(p.as('pos'), card.id)).toMatchObject({ discountPercent: 5, nextDiscount: { percent: 10, spendToGo: 21_500 * RUB } });
    // This one crosses 50,000 RUB of money paid: still 5 % on it, 10 % from the next one.
    const crossing = await ok(purchase(p.as('pos'), card.id, { amount: 25_000 * RUB }));
    expect(crossing).toMatchObject({ discountPercent: 5, discount: 1_250 * RUB, tierChanged: true, tier: 'gold' });
    expect(await getCard(p.as('pos'), card.id)).toMatchObject({ discountPercent: 10, nextDiscount: null });
    const next = await ok(quote(p.as('pos'), card.id, { amount: 10_000 * RUB }), 200);
    expect(next).toMatchObject({ discountPercent: 10, discount: 1_000 * RUB, payable: 9_000 * RUB });
    // Tobacco in the check: no discount on it.
    const mixed = await ok(quote(p.as('pos'), card.id, { items: [{ sku: 'coat', quantity: 1, price: 10_000 * RUB }, { sku: 'cigs', category: 'tobacco', quantity: 1, price: 300 * RUB }] }), 200);
    expect(mixed).toMatchObject({ discount: 1_000 * RUB, payable: 9_300 * RUB });
    // A refund takes the spend back (the tier stays, by the default refund policy).
    await ok(t.app.inject({ method: 'POST', url: `/api/v1/purchases/${crossing.purchaseId}/refund`, headers: p.as('pos') }), 200);
    expect(await getCard(p.as('admin'), card.id)).toMatchObject({ lifetimeSpend: 28_500 * RUB, tier: { code: 'gold' } });
    await expectPassBuilds(card);
  });

  it('runs a coffee shop: every 6th coffee completes a stamp card, and a refund reverses stamps and reward exactly', async () => {
    const p = await program({ ...COFFEE_RULES, stamps: { ...COFFEE_RULES.stamps, categories: ['coffee'] } });
    const card = await issue(p.as('pos'));
    expect(card).toMatchObject({ mechanic: 'stamps', stamps: { count: 0, perReward: 6 }, discountPercent: null });
    const results = [];
    for (let cup = 1; cup <= 6; cup++) results.push(await ok(purchase(p.as('pos'), card.id, { amount: 250 * RUB })));
    expect(results.map((r) => r.stamps)).toEqual([1, 2, 3, 4, 5, 0]);
    expect(results.map((r) => r.rewardsEarned)).toEqual([0, 0, 0, 0, 0, 1]);
    expect(results.every((r) => r.accrued === 0)).toBe(true);
    const rewards = await db().selectFrom('stamp_rewards').selectAll().where('card_id', '=', card.id).execute();
    expect(rewards.map((r) => [r.purchase_id, r.status])).toEqual([[results[5].purchaseId, 'earned']]);
    expect(await getCard(p.as('pos'), card.id)).toMatchObject({ stamps: { count: 0, perReward: 6 } });

    // Items: only coffee stamps, one per cup; tobacco never.
    const items = [
      { sku: 'latte', category: 'coffee', quantity: 2, price: 250 * RUB },
      { sku: 'bun', category: 'food', quantity: 1, price: 150 * RUB },
      { sku: 'cigs', category: 'tobacco', quantity: 1, price: 300 * RUB },
    ];
    const quoted = await ok(quote(p.as('pos'), card.id, { items }), 200);
    expect(quoted).toMatchObject({ stamps: 0, stampsAdded: 2, stampsAfter: 2, rewardsEarned: 0, perReward: 6 });
    await ok(purchase(p.as('pos'), card.id, { items }));

    // Refunding the 6th coffee: its stamp comes off, the 6 its reward used come back, the reward is revoked.
    const refund = await ok(t.app.inject({ method: 'POST', url: `/api/v1/purchases/${results[5].purchaseId}/refund`, headers: p.as('pos') }), 200);
    expect(refund).toMatchObject({ stampsDelta: 5, stampsShortfall: 0, rewardsRevoked: 1, stamps: 7 });
    const after = await db().selectFrom('stamp_rewards').select('status').where('card_id', '=', card.id).execute();
    expect(after.map((r) => r.status)).toEqual(['revoked']);
    // A second refund of the first coffee: its stamp comes off.
    const second = await ok(t.app.inject({ method: 'POST', url: `/api/v1/purchases/${results[0].purchaseId}/refund`, headers: p.as('pos') }), 200);
    expect(second).toMatchObject({ stampsDelta: -1, rewardsRevoked: 0, stamps: 6 });
    await expectCachesMatch(card.id);
    await expectPassBuilds(card);
  });

  it('refuses to switch the mechanic of a program that has cards, and allows it before the first card', async () => {
    const p = await program({});
    const switchTo = (rules: Record<string, unknown>) =>
      t.app.inject({ method: 'PATCH', url: `/api/v1/programs/${p.program.id}`, headers: p.as('admin'), payload: { rules: { ...p.program.rules, ...rules } } });
    const empty = await switchTo({ mechanic: 'stamps', stamps: COFFEE_RULES.stamps });
    expect(empty.statusCode, empty.body).toBe(200);
    expect(empty.json().rules.mechanic).toBe('stamps');
    await issue(p.as('pos'));
    const refused = expectProblem(await switchTo({ mechanic: 'points', stamps: undefined }), 409, 'mechanic_change_refused');
    expect(refused).toMatchObject({ from: 'stamps', to: 'points' });
    // Other rule changes of the same mechanic still go through.
    const same = await switchTo({ mechanic: 'stamps', stamps: { ...COFFEE_RULES.stamps, perReward: 8 } });
    expect(same.statusCode, same.body).toBe(200);
    // Inconsistent rules are refused as a whole with the existing 400.
    expectProblem(await switchTo({ mechanic: 'stamps', stamps: undefined }), 400, 'invalid_rules');
  });

  it('refuses bad checks with 4xx and changes nothing', async () => {
    const p = await program(OUTDOOR_RULES);
    const card = await issue(p.as('pos'));
    const item = { sku: 'a', quantity: 1, price: 1000 };
    for (const send of [quote, purchase]) {
      expectProblem(await send(p.as('pos'), card.id, {}), 400, 'validation_failed');
      expectProblem(await send(p.as('pos'), card.id, { items: [] }), 400, 'validation_failed');
      expectProblem(await send(p.as('pos'), card.id, { items: [{ ...item, quantity: 0 }] }), 400, 'validation_failed');
      expectProblem(await send(p.as('pos'), card.id, { items: [{ ...item, price: -1 }] }), 400, 'validation_failed');
      expectProblem(await send(p.as('pos'), card.id, { items: [{ ...item, colour: 'red' }] }), 400, 'validation_failed');
      expectProblem(await send(p.as('pos'), card.id, { items: [{ ...item, sku: 'x'.repeat(65) }] }), 400, 'validation_failed');
      expectProblem(await send(p.as('pos'), card.id, { items: Array.from({ length: 201 }, () => item) }), 400, 'validation_failed');
      expectProblem(await send(p.as('pos'), card.id, { items: [item], amount: 1001 }), 422, 'items_amount_mismatch');
      expectProblem(await send(p.as('pos'), card.id, { items: [{ ...item, price: 0 }] }), 422, 'invalid_amount');
      expectProblem(await send(p.as('pos'), card.id, { items: [{ ...item, quantity: 10_000, price: 100_000_000_000 }] }), 422, 'invalid_items');
      expectProblem(await send(p.as('pos'), card.id, { items: [item], redeemPoints: 1001 }), 422, 'insufficient_points');
      expectProblem(await send(p.as('marketer'), card.id, { items: [item] }), 403);
    }
    expectProblem(await quote(p.as('pos'), '00000000-0000-4000-8000-000000000000', { amount: 100 }), 404, 'card_not_found');
    // The quote is documented (so the API fuzz covers it too).
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(Object.keys(doc.paths)).toContain('/api/v1/cards/{cardId}/quote');
    const purchases = await db().selectFrom('purchase').select('id').where('card_id', '=', card.id).execute();
    expect(purchases).toEqual([]);
    expect((await getCard(p.as('pos'), card.id)).balance).toBe(1000);
  });
});
