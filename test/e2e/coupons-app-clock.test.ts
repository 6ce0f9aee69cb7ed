import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { waitForCardJobsIdle, type RoleHeaders } from '../support/apple-device.js';
import { DAYS, issueConsentingCard, saveToGoogle } from '../support/campaigns.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// A coupon's validity is judged by the app clock (ctx.clock), like every other "now" of a purchase:
// the refund that gives a coupon back and the Google object that lists the usable coupons must not
// read the wall clock. The test moves the app clock past a coupon's expiry while, by the wall
// clock, the coupon is still valid for weeks.
describe(`coupon validity on the app clock (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let now = new Date();
  beforeAll(async () => {
    t = await startTestApp({ google: true, clock: () => now });
  });
  afterAll(async () => {
    await t?.close();
  });

  const thirtyDays = { title: { ru: 'Скидка 10%', en: '10% off' }, kind: 'percent', percent: 10, minCheck: 0, validDays: 30 };
  async function issueCoupon(as: RoleHeaders, cardId: string, definitionId: string) {
    const res = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/coupons`, headers: as('admin'), payload: { definitionId } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { code: string; expiresAt: string };
  }
  const purchase = (as: RoleHeaders, cardId: string, payload: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: as('pos'), payload });

  /** The app clock back at the wall clock, a new program with a 30-day coupon definition, and a card. */
  async function programWithCard(slug: string) {
    now = new Date();
    const { as } = await createProgramWithKeys(t.app, slug);
    const definition = await t.app.inject({ method: 'POST', url: '/api/v1/coupons/definitions', headers: as('marketer'), payload: thirtyDays });
    expect(definition.statusCode, definition.body).toBe(201);
    return { as, card: await issueConsentingCard(t, as), definitionId: definition.json().id as string };
  }

  it('a refund gives back a coupon as expired once the app clock is past its expiry, and records the refund at the app clock', async () => {
    const { as, card, definitionId } = await programWithCard('coupon-clock-refund');
    const coupon = await issueCoupon(as, card.id, definitionId);
    const bought = await purchase(as, card.id, { amount: 10_000, couponCode: coupon.code });
    expect(bought.statusCode, bought.body).toBe(201);

    // 31 days later by the app clock; by the wall clock the coupon has 29 days left.
    now = new Date(now.getTime() + 31 * DAYS);
    expect(Date.parse(coupon.expiresAt)).toBeGreaterThan(Date.now());
    const refund = await t.app.inject({ method: 'POST', url: `/api/v1/purchases/${bought.json().purchaseId}/refund`, headers: as('pos') });
    expect(refund.statusCode, refund.body).toBe(200);
    expect(refund.json().coupon).toEqual({ code: coupon.code, status: 'expired' });
    const row = await t.database.handle.db.selectFrom('purchase').select('refunded_at').where('id', '=', bought.json().purchaseId).executeTakeFirstOrThrow();
    expect(row.refunded_at?.getTime()).toBe(now.getTime());
  });

  it('the Google object leaves out a coupon the app clock has seen expire', async () => {
    const { as, card, definitionId } = await programWithCard('coupon-clock-google');
    await saveToGoogle(t, card);
    const coupon = await issueCoupon(as, card.id, definitionId);
    await waitForCardJobsIdle(t);
    const textModules = () => JSON.stringify(t.google!.fake.objects.get(card.objectId!)!.textModulesData);
    expect(textModules()).toContain(coupon.code);

    // 31 days later by the app clock, a purchase without the coupon changes the balance: the object
    // update that follows no longer lists the coupon, though the wall clock says it is still valid.
    now = new Date(now.getTime() + 31 * DAYS);
    expect(Date.parse(coupon.expiresAt)).toBeGreaterThan(Date.now());
    const bought = await purchase(as, card.id, { amount: 10_000 });
    expect(bought.statusCode, bought.body).toBe(201);
    await waitForCardJobsIdle(t);
    expect(t.google!.fake.objects.get(card.objectId!)!.loyaltyPoints).toMatchObject({ balance: { int: bought.json().balance } });
    expect(textModules()).not.toContain(coupon.code);
  });
});
