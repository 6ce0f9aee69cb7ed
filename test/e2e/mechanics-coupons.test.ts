import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Issue #17: coupons together with the mechanics. A coupon is priced on the eligible part of the
// check (excluded goods such as tobacco are never discounted) and comes off before the mechanic's
// discount and points; the quote lists the card's usable coupons with what the till would charge and
// answers the same numbers as the purchase; a stamp reward issues the program's reward coupon and a
// refund of the purchase that earned it voids it.

const RUB = 100;
const name = (ru: string, en: string) => ({ ru, en });
type Headers = Record<string, string>;

describe(`mechanics with coupons (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let phone = 7_770_000;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  async function ok(res: Promise<LightMyRequestResponse>, status = 201) {
    const r = await res;
    expect(r.statusCode, r.body).toBe(status);
    return r.json();
  }
  const post = (headers: Headers, url: string, payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url, headers, payload });
  async function issueCard(headers: Headers) {
    phone += 1;
    return ok(post(headers, '/api/v1/cards', { holder: { name: 'Анна', phone: `+7916${phone}` } }));
  }
  const couponsOf = async (headers: Headers, cardId: string) =>
    (await ok(t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/coupons`, headers }), 200)) as Array<{ code: string; status: string; source: string }>;

  it('a discount card with a coupon: the coupon skips tobacco, comes off before the discount, and the quote equals the purchase', async () => {
    const { as } = await createProgramWithKeys(t.app, 'mc-clothing', {
      rules: {
        mechanic: 'discount',
        welcomeBonus: 0,
        tiers: [
          { code: 'base', name: name('Базовая', 'Base'), accrualPercent: 0, threshold: 0, discountPercent: 5 },
          { code: 'gold', name: name('Золотая', 'Gold'), accrualPercent: 0, threshold: 50_000 * RUB, discountPercent: 10 },
        ],
        categories: [{ category: 'tobacco', exclude: true }],
      },
    });
    const definition = await ok(post(as('marketer'), '/api/v1/coupons/definitions', { title: name('Скидка 10%', '10% off'), kind: 'percent', percent: 10, validDays: 30 }));
    const card = await issueCard(as('pos'));
    const coupon = await ok(post(as('admin'), `/api/v1/cards/${card.id}/coupons`, { definitionId: definition.id }));
    const items = [
      { sku: 'shirt', category: 'clothes', quantity: 1, price: 2_000 * RUB },
      { sku: 'cigarettes', category: 'tobacco', quantity: 1, price: 300 * RUB },
    ];

    // Without choosing: the quote offers the coupon — 10 % of the 2,000.00 of clothes (not of the
    // tobacco), then 5 % of the remaining 1,800.00 — and charges as without it.
    const offered = await ok(post(as('pos'), `/api/v1/cards/${card.id}/quote`, { items }), 200);
    expect(offered).toMatchObject({ amount: 2_300 * RUB, eligibleAmount: 2_000 * RUB, couponDiscount: 0, discount: 100 * RUB, payable: 2_200 * RUB });
    expect(offered.coupons).toEqual([{ code: coupon.code, title: name('Скидка 10%', '10% off'), discount: 200 * RUB, payableAfter: 2_010 * RUB }]);

    const quoted = await ok(post(as('pos'), `/api/v1/cards/${card.id}/quote`, { items, couponCode: coupon.code }), 200);
    expect(quoted).toMatchObject({ couponDiscount: 200 * RUB, discount: 90 * RUB, payable: 2_010 * RUB });
    const bought = await ok(post(as('pos'), `/api/v1/cards/${card.id}/purchases`, { items, couponCode: coupon.code }));
    expect(bought).toMatchObject({ amount: quoted.amount, discount: quoted.discount, payable: quoted.payable, coupon: { code: coupon.code, discount: 200 * RUB } });
    expect((await couponsOf(as('pos'), card.id))[0]).toMatchObject({ status: 'redeemed' });
    // Used: the next quote offers nothing, and naming it again is the purchase's own 409.
    expect((await ok(post(as('pos'), `/api/v1/cards/${card.id}/quote`, { items }), 200)).coupons).toEqual([]);
    const again = await post(as('pos'), `/api/v1/cards/${card.id}/quote`, { items, couponCode: coupon.code });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('coupon_already_used');

    // A check of tobacco alone: nothing for the coupon to take off (422, as the purchase would say).
    const second = await ok(post(as('admin'), `/api/v1/cards/${card.id}/coupons`, { definitionId: definition.id }));
    const tobacco = await post(as('pos'), `/api/v1/cards/${card.id}/purchases`, { items: [items[1]], couponCode: second.code });
    expect(tobacco.statusCode, tobacco.body).toBe(422);
    expect((await couponsOf(as('pos'), card.id)).find((c) => c.code === second.code)).toMatchObject({ status: 'issued' });
  });

  it('a stamp card issues its reward coupon with the reward; a refund of that purchase voids the unused coupon', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'mc-coffee', {
      rules: { mechanic: 'stamps', welcomeBonus: 0, stamps: { perReward: 2, reward: { name: name('Кофе в подарок', 'A free coffee') } } },
    });
    const freeCoffee = await ok(post(as('marketer'), '/api/v1/coupons/definitions', { title: name('Кофе в подарок', 'A free coffee'), kind: 'free_item', sku: 'coffee', validDays: 14 }));
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/programs/${program.id}`,
      headers: as('admin'),
      payload: { rules: { ...program.rules, stamps: { perReward: 2, reward: { name: name('Кофе в подарок', 'A free coffee'), coupon: freeCoffee.id } } } },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const card = await issueCard(as('pos'));
    const coffee = [{ sku: 'coffee', category: 'coffee', quantity: 1, price: 250 * RUB }];

    await ok(post(as('pos'), `/api/v1/cards/${card.id}/purchases`, { items: coffee }));
    expect(await couponsOf(as('pos'), card.id)).toEqual([]);
    const rewarded = await ok(post(as('pos'), `/api/v1/cards/${card.id}/purchases`, { items: coffee }));
    expect(rewarded).toMatchObject({ rewardsEarned: 1, stamps: 0 });
    const [reward] = await couponsOf(as('pos'), card.id);
    expect(reward).toMatchObject({ status: 'issued', source: 'stamps' });

    // The till offers it on the next coffee: the free item is the coffee's price.
    const offered = await ok(post(as('pos'), `/api/v1/cards/${card.id}/quote`, { items: [...coffee, { sku: 'cake', quantity: 1, price: 300 * RUB }] }), 200);
    expect(offered.coupons).toMatchObject([{ code: reward!.code, discount: 250 * RUB, payableAfter: 300 * RUB }]);

    const refund = await ok(post(as('pos'), `/api/v1/purchases/${rewarded.purchaseId}/refund`, {}), 200);
    expect(refund).toMatchObject({ rewardsRevoked: 1 });
    expect((await couponsOf(as('pos'), card.id))[0]).toMatchObject({ code: reward!.code, status: 'void' });
    const used = await post(as('pos'), `/api/v1/cards/${card.id}/purchases`, { items: coffee, couponCode: reward!.code });
    expect(used.statusCode).toBe(422);
    expect(used.json().code).toBe('coupon_void');
  });
});
