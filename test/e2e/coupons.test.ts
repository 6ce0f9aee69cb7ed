import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redeemCouponInPurchase } from '../../src/coupons/service.js';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { passUrl, pushesTo, pushToken, waitForCardJobsIdle, type RoleHeaders } from '../support/apple-device.js';
import { installOnDevice, issueConsentingCard, saveToGoogle, waitForCampaignDelivered, type TestCard } from '../support/campaigns.js';
import { requirePostgres, TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf, unpackPkpass } from '../support/pkpass.js';
import { parsePassStrings } from '../support/pkpass-testing.js';

// Coupons end to end (issue #17, item 3), through HTTP: definitions, issue by an admin, a campaign
// and an automation, redemption at the till (single use), refunds, and what the wallets show, with
// the real APNs client against the APNs stand-in and the real Google client against the Google fake.
describe(`coupons (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let now = new Date();
  beforeAll(async () => {
    t = await startTestApp({ google: true, clock: () => now });
  });
  afterAll(async () => {
    await t?.close();
  });

  const tenPercent = { title: { ru: 'Скидка 10%', en: '10% off' }, kind: 'percent', percent: 10, minCheck: 50_000, validDays: 30 };
  async function define(as: RoleHeaders, body: Record<string, unknown> = tenPercent) {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/coupons/definitions', headers: as('marketer'), payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string };
  }
  async function issue(as: RoleHeaders, cardId: string, definitionId: string) {
    const res = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/coupons`, headers: as('admin'), payload: { definitionId } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; code: string; status: string; source: string; expiresAt: string };
  }
  const purchase = (as: RoleHeaders, cardId: string, payload: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: as('pos'), payload });
  const couponsOf = async (as: RoleHeaders, cardId: string) => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/coupons`, headers: as('pos') });
    expect(res.statusCode).toBe(200);
    return res.json() as Array<{ code: string; status: string; source: string; discount: number | null; redeemedPurchaseId: string | null }>;
  };
  /** The pass a device would fetch now: its back fields with their Russian and English texts. */
  async function backFields(card: TestCard) {
    const fetched = await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, card.serial), headers: card.auth });
    expect(fetched.statusCode).toBe(200);
    const pass = passJsonOf(fetched.rawPayload);
    const files = unpackPkpass(fetched.rawPayload);
    const ru = parsePassStrings(files['ru.lproj/pass.strings']!);
    const en = parsePassStrings(files['en.lproj/pass.strings']!);
    return new Map(
      (pass.storeCard.backFields as Array<{ key: string; value: string; changeMessage?: string }>).map((f) => [
        f.key,
        { ru: ru[f.value] ?? f.value, en: en[f.value] ?? f.value, changeMessage: f.changeMessage ? { ru: ru[f.changeMessage], en: en[f.changeMessage] } : undefined },
      ]),
    );
  }

  it('defines coupons with bounded, whole-definition validation; marketer and admin only', async () => {
    const { as } = await createProgramWithKeys(t.app, 'coupon-defs');
    const created = await define(as);
    expect(created).toMatchObject({ kind: 'percent', percent: 10, amount: null, minCheck: 50_000, validDays: 30, validUntil: null, active: true });

    const refused = async (payload: Record<string, unknown>, code = 'coupon_definition_invalid') => {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/coupons/definitions', headers: as('admin'), payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(422);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json().code).toBe(code);
    };
    await refused({ ...tenPercent, percent: undefined }); // percent kind without its percent
    await refused({ ...tenPercent, amount: 500 }); // another kind's value
    await refused({ ...tenPercent, validUntil: '2030-01-01T00:00:00Z' }); // two validities
    await refused({ ...tenPercent, validDays: undefined }); // none
    await refused({ title: tenPercent.title, kind: 'free_item', sku: 'coffee', categories: ['drinks'], validDays: 7 });
    // Out of bounds: the schema refuses before any code runs.
    const tooBig = await t.app.inject({ method: 'POST', url: '/api/v1/coupons/definitions', headers: as('admin'), payload: { ...tenPercent, percent: 101 } });
    expect(tooBig.statusCode).toBe(400);
    const pos = await t.app.inject({ method: 'POST', url: '/api/v1/coupons/definitions', headers: as('pos'), payload: tenPercent });
    expect(pos.statusCode).toBe(403);

    // PATCH: the result is validated as a whole; one validity replaces the other.
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/coupons/definitions/${created.id}`,
      headers: as('marketer'),
      payload: { validUntil: '2030-01-01T00:00:00Z', minCheck: 0 },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({ validDays: null, validUntil: '2030-01-01T00:00:00.000Z', minCheck: 0 });
    const badPatch = await t.app.inject({ method: 'PATCH', url: `/api/v1/coupons/definitions/${created.id}`, headers: as('marketer'), payload: { kind: 'amount' } });
    expect(badPatch.statusCode).toBe(422);
    expect(badPatch.json().code).toBe('coupon_definition_invalid');
    const missing = await t.app.inject({
      method: 'PATCH',
      url: '/api/v1/coupons/definitions/00000000-0000-4000-8000-000000000000',
      headers: as('marketer'),
      payload: { active: false },
    });
    expect(missing.statusCode).toBe(404);

    const list = await t.app.inject({ method: 'GET', url: '/api/v1/coupons/definitions', headers: as('admin') });
    expect(list.json().map((d: { id: string }) => d.id)).toEqual([created.id]);
    // Another program sees nothing of it.
    const other = await createProgramWithKeys(t.app, 'coupon-defs-other');
    const foreign = await t.app.inject({ method: 'GET', url: `/api/v1/coupons/definitions/${created.id}`, headers: other.as('admin') });
    expect(foreign.statusCode).toBe(404);
  });

  it('an admin issues a coupon: listed, pushed to the pass (back field, lock-screen message) and the Google object', async () => {
    const { as } = await createProgramWithKeys(t.app, 'coupon-issue');
    const definition = await define(as);
    const card = await issueConsentingCard(t, as);
    await installOnDevice(t, card, pushToken(0xc0));
    await saveToGoogle(t, card);
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;

    // Only an admin key issues.
    const byMarketer = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${card.id}/coupons`, headers: as('marketer'), payload: { definitionId: definition.id } });
    expect(byMarketer.statusCode).toBe(403);
    const coupon = await issue(as, card.id, definition.id);
    expect(coupon).toMatchObject({ status: 'issued', source: 'admin' });
    expect(coupon.code).toMatch(/^[A-Z0-9]{8}$/);
    expect(Date.parse(coupon.expiresAt) - now.getTime()).toBe(30 * 86_400_000);
    expect((await couponsOf(as, card.id)).map((c) => c.code)).toEqual([coupon.code]);

    await waitForCardJobsIdle(t);
    expect(pushesTo(t, pushToken(0xc0)).length).toBe(1);
    const back = await backFields(card);
    expect(back.get('backCoupons')?.ru).toContain(coupon.code);
    expect(back.get('backCoupons')?.ru).toContain('Скидка 10%');
    expect(back.get('backCoupons')?.en).toContain('10% off');
    expect(back.get('backLatestCoupon')).toMatchObject({ changeMessage: { ru: 'Новый купон: %@', en: 'New coupon: %@' } });
    expect(back.get('backLatestCoupon')?.en).toContain(coupon.code);
    expect(JSON.stringify(t.google!.fake.objects.get(card.objectId!)!.textModulesData)).toContain(coupon.code);
    // The holder's data (right of access) lists it.
    const data = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}/personal-data`, headers: as('admin') });
    expect(data.statusCode).toBe(200);
    expect(data.json().coupons).toMatchObject([{ code: coupon.code, status: 'issued', source: 'admin' }]);

    // A definition switched off issues nothing more.
    await t.app.inject({ method: 'PATCH', url: `/api/v1/coupons/definitions/${definition.id}`, headers: as('admin'), payload: { active: false } });
    const off = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${card.id}/coupons`, headers: as('admin'), payload: { definitionId: definition.id } });
    expect(off.statusCode).toBe(422);
    expect(off.json().code).toBe('coupon_definition_inactive');
    const unknownCard = await t.app.inject({
      method: 'POST',
      url: '/api/v1/cards/00000000-0000-4000-8000-000000000000/coupons',
      headers: as('admin'),
      payload: { definitionId: definition.id },
    });
    expect(unknownCard.statusCode).toBe(404);
  });

  it('redeems once at the till, refuses a second use (409), and a refund makes it usable again', async () => {
    const { as } = await createProgramWithKeys(t.app, 'coupon-redeem');
    const definition = await define(as);
    const card = await issueConsentingCard(t, as);
    await installOnDevice(t, card, pushToken(0xc1));
    const coupon = await issue(as, card.id, definition.id);
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;

    // Below the minimum check: 422, nothing changes.
    const small = await purchase(as, card.id, { amount: 40_000, couponCode: coupon.code });
    expect(small.statusCode).toBe(422);
    expect(small.json()).toMatchObject({ code: 'coupon_min_check_not_met', minCheck: 50_000 });

    // Typed in lower case at the till: the same code. 10 % of 1,000.00 off the check; the holder pays 900.00, and points are earned on that.
    const bought = await purchase(as, card.id, { amount: 100_000, couponCode: ` ${coupon.code.toLowerCase()} ` });
    expect(bought.statusCode, bought.body).toBe(201);
    expect(bought.json()).toMatchObject({ amount: 100_000, payable: 90_000, coupon: { code: coupon.code, discount: 10_000, checkAmount: 100_000 } });
    const plain = await purchase(as, card.id, { amount: 90_000 });
    expect(plain.json().accrued).toBe(bought.json().accrued); // the same as a 900.00 check without a coupon
    let listed = (await couponsOf(as, card.id))[0]!;
    expect(listed).toMatchObject({ status: 'redeemed', discount: 10_000, redeemedPurchaseId: bought.json().purchaseId });

    const again = await purchase(as, card.id, { amount: 100_000, couponCode: coupon.code });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('coupon_already_used');

    // The used coupon left the pass (the last-coupon field stays: it changes only with an issue).
    await waitForCardJobsIdle(t);
    expect(pushesTo(t, pushToken(0xc1)).length).toBeGreaterThan(0);
    let back = await backFields(card);
    expect(back.has('backCoupons')).toBe(false);
    expect(back.get('backLatestCoupon')?.en).toContain(coupon.code);

    const refund = await t.app.inject({ method: 'POST', url: `/api/v1/purchases/${bought.json().purchaseId}/refund`, headers: as('pos') });
    expect(refund.statusCode, refund.body).toBe(200);
    expect(refund.json().coupon).toEqual({ code: coupon.code, status: 'issued' });
    listed = (await couponsOf(as, card.id))[0]!;
    expect(listed).toMatchObject({ status: 'issued', discount: null, redeemedPurchaseId: null });
    back = await backFields(card);
    expect(back.get('backCoupons')?.en).toContain(coupon.code);

    // Usable again, once.
    const second = await purchase(as, card.id, { amount: 60_000, couponCode: coupon.code });
    expect(second.statusCode).toBe(201);
    expect(second.json().coupon.discount).toBe(6_000);
    // A till's retry with the same Idempotency-Key replays the redemption's answer, not a 409.
    const coupon2 = await issue(as, card.id, definition.id);
    const keyed = () =>
      t.app.inject({
        method: 'POST',
        url: `/api/v1/cards/${card.id}/purchases`,
        headers: { ...as('pos'), 'idempotency-key': `coupon-${coupon2.code}` },
        payload: { amount: 50_000, couponCode: coupon2.code },
      });
    const firstTry = await keyed();
    const retry = await keyed();
    expect(firstTry.statusCode).toBe(201);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(firstTry.json());
    // A refund of a purchase without a coupon says nothing of coupons.
    const plainRefund = await t.app.inject({ method: 'POST', url: `/api/v1/purchases/${plain.json().purchaseId}/refund`, headers: as('pos') });
    expect(plainRefund.json().coupon).toBeUndefined();
  });

  it('refuses expired, unknown and other cards\' coupons and coupons the check cannot use; a refund after the expiry leaves it expired', async () => {
    const { as } = await createProgramWithKeys(t.app, 'coupon-refuse');
    const definition = await define(as, { ...tenPercent, minCheck: 0 });
    const drinks = await define(as, { title: { ru: '−100 ₽ на напитки', en: '100 RUB off drinks' }, kind: 'amount', amount: 10_000, categories: ['drinks'], validDays: 5 });
    const card = await issueConsentingCard(t, as);
    const stranger = await issueConsentingCard(t, as);
    const expiring = await issue(as, card.id, definition.id);
    const foreign = await issue(as, stranger.id, definition.id);
    const category = await issue(as, card.id, drinks.id);
    const db = t.database.handle.db;

    const unknown = await purchase(as, card.id, { amount: 10_000, couponCode: 'NOSUCH22' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('coupon_not_found');
    const notMine = await purchase(as, card.id, { amount: 10_000, couponCode: foreign.code });
    expect(notMine.statusCode).toBe(404);
    // Category coupons need the check's lines (the purchase carries none yet: docs/coupons.md).
    const needsItems = await purchase(as, card.id, { amount: 10_000, couponCode: category.code });
    expect(needsItems.statusCode).toBe(422);
    expect(needsItems.json().code).toBe('coupon_needs_items');

    // Redeemed, then its validity ends, then the purchase is refunded: the coupon stays expired.
    const bought = await purchase(as, card.id, { amount: 10_000, couponCode: expiring.code });
    expect(bought.statusCode).toBe(201);
    await db.updateTable('card_coupons').set({ expires_at: new Date(now.getTime() - 60_000) }).where('code', '=', expiring.code).execute();
    const refund = await t.app.inject({ method: 'POST', url: `/api/v1/purchases/${bought.json().purchaseId}/refund`, headers: as('pos') });
    expect(refund.json().coupon).toEqual({ code: expiring.code, status: 'expired' });
    const expired = await purchase(as, card.id, { amount: 10_000, couponCode: expiring.code });
    expect(expired.statusCode).toBe(422);
    expect(expired.json().code).toBe('coupon_expired');

    // An issued coupon past its expiry is refused as expired too, and lists as expired.
    await db.updateTable('card_coupons').set({ expires_at: new Date(now.getTime() - 60_000) }).where('code', '=', category.code).execute();
    const late = await purchase(as, card.id, { amount: 10_000, couponCode: category.code });
    expect(late.statusCode).toBe(422);
    expect(late.json().code).toBe('coupon_expired');
    expect((await couponsOf(as, card.id)).map((c) => c.status).sort()).toEqual(['expired', 'expired']);
    // Nothing of these refusals was recorded.
    const purchases = await db.selectFrom('purchase').select('id').where('card_id', '=', card.id).execute();
    expect(purchases).toHaveLength(1);
  });

  it('a campaign hands every recipient a coupon, shown on both wallets; an unknown definition is refused', async () => {
    const { as } = await createProgramWithKeys(t.app, 'coupon-campaign');
    const definition = await define(as, { title: { ru: 'Кофе в подарок', en: 'A free coffee' }, kind: 'free_item', sku: 'coffee', validDays: 14 });
    const a = await issueConsentingCard(t, as);
    const b = await issueConsentingCard(t, as);
    const noConsent = await issueConsentingCard(t, as, { consent: false });
    await installOnDevice(t, a, pushToken(0xca));
    await saveToGoogle(t, b);
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;

    const body = { name: 'Coffee on us', message: { ru: 'Кофе за наш счёт', en: 'Coffee is on us' }, audience: { all: true }, controlShare: 0 };
    const unknown = await t.app.inject({
      method: 'POST',
      url: '/api/v1/campaigns',
      headers: as('marketer'),
      payload: { ...body, couponDefinitionId: '00000000-0000-4000-8000-000000000000' },
    });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json().code).toBe('coupon_definition_not_found');

    const created = await t.app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: as('marketer'), payload: { ...body, couponDefinitionId: definition.id } });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().couponDefinitionId).toBe(definition.id);
    const id = created.json().id;
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${id}/send`, headers: as('marketer') })).statusCode).toBe(202);
    const done = await waitForCampaignDelivered(t, as, id);
    expect(done.progress).toMatchObject({ delivered: 2 });
    await waitForCardJobsIdle(t);

    const ofA = await couponsOf(as, a.id);
    const ofB = await couponsOf(as, b.id);
    expect(ofA).toHaveLength(1);
    expect(ofB).toHaveLength(1);
    expect(ofA[0]).toMatchObject({ status: 'issued', source: 'campaign' });
    expect(await couponsOf(as, noConsent.id)).toEqual([]);
    expect(pushesTo(t, pushToken(0xca)).length).toBe(1);
    expect((await backFields(a)).get('backCoupons')?.ru).toContain(ofA[0]!.code);
    expect(JSON.stringify(t.google!.fake.objects.get(b.objectId!)!.textModulesData)).toContain(ofB[0]!.code);

    // A free-item coupon needs the check's lines: without them the till is told so.
    const res = await purchase(as, a.id, { amount: 30_000, couponCode: ofA[0]!.code });
    expect(res.statusCode).toBe(422);
    expect(res.json().code).toBe('coupon_needs_items');
  });

  it('the birthday automation hands out its coupon; the setting must name a definition of the program', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'coupon-birthday'); // Europe/Moscow
    const definition = await define(as);
    now = new Date('2027-03-15T09:00:00Z'); // 12:00 in Moscow
    try {
      const bad = await t.app.inject({
        method: 'PUT',
        url: '/api/v1/automations',
        headers: as('marketer'),
        payload: { birthday: { enabled: true, controlShare: 0, bonusPoints: 0, couponDefinitionId: '00000000-0000-4000-8000-000000000000' } },
      });
      expect(bad.statusCode).toBe(422);
      expect(bad.json().code).toBe('coupon_definition_not_found');
      const ok = await t.app.inject({
        method: 'PUT',
        url: '/api/v1/automations',
        headers: as('marketer'),
        payload: { birthday: { enabled: true, controlShare: 0, bonusPoints: 0, couponDefinitionId: definition.id } },
      });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json().birthday.couponDefinitionId).toBe(definition.id);
      const holder = await issueConsentingCard(t, as, { birthday: '1990-03-15' });
      const other = await issueConsentingCard(t, as, { birthday: '1990-03-16' });
      await t.app.automations.tick();
      const db = t.database.handle.db;
      await waitFor(async () => (await db.selectFrom('campaign').select('id').where('program_id', '=', program.id).where('status', '=', 'sending').execute()).length === 0, {
        what: 'the birthday campaign to finish',
      });
      expect(await couponsOf(as, holder.id)).toMatchObject([{ status: 'issued', source: 'automation' }]);
      expect(await couponsOf(as, other.id)).toEqual([]);
      // A second tick the same day hands out nothing more.
      await t.app.automations.tick();
      expect(await couponsOf(as, holder.id)).toHaveLength(1);
    } finally {
      now = new Date();
    }
  });

  const postgres = requirePostgres();
  it.skipIf(postgres.skip)(`10 parallel purchases with one coupon: exactly one redeems it ${postgres.reason}`, async () => {
    const { as } = await createProgramWithKeys(t.app, 'coupon-race');
    const definition = await define(as, { ...tenPercent, minCheck: 0 });
    const card = await issueConsentingCard(t, as);
    const coupon = await issue(as, card.id, definition.id);
    const answers = await Promise.all(Array.from({ length: 10 }, () => purchase(as, card.id, { amount: 20_000, couponCode: coupon.code })));
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses).toEqual([201, ...Array(9).fill(409)]);
    for (const a of answers.filter((x) => x.statusCode === 409)) expect(a.json().code).toBe('coupon_already_used');
    const db = t.database.handle.db;
    const purchases = await db.selectFrom('purchase').select('id').where('card_id', '=', card.id).execute();
    expect(purchases).toHaveLength(1);
    const row = await db.selectFrom('card_coupons').selectAll().where('code', '=', coupon.code).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'redeemed', redeemed_purchase_id: purchases[0]!.id });
  });

  it.skipIf(postgres.skip)(`the conditional UPDATE alone keeps a coupon single use (no card lock taken) ${postgres.reason}`, async () => {
    // The purchase locks the card first, so the race above is decided before the UPDATE; here two
    // transactions redeem directly: the second waits for the first's row lock, then finds it used.
    const { program, as } = await createProgramWithKeys(t.app, 'coupon-race-direct');
    const definition = await define(as, { ...tenPercent, minCheck: 0 });
    const card = await issueConsentingCard(t, as);
    const coupon = await issue(as, card.id, definition.id);
    const db = t.database.handle.db;
    const priced = { id: coupon.id, code: coupon.code, discount: 100, checkAmount: 1_000 };
    const newPurchase = (trx: typeof db) =>
      trx.insertInto('purchase').values({ program_id: program.id, card_id: card.id, amount: 900, redeemed: 0, accrued: 0, payable: 900 }).returning('id').executeTakeFirstOrThrow();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let updated!: () => void;
    const firstUpdated = new Promise<void>((resolve) => (updated = resolve));
    const first = db.transaction().execute(async (trx) => {
      const p = await newPurchase(trx as unknown as typeof db);
      await redeemCouponInPurchase(trx, { programId: program.id, cardId: card.id, coupon: priced, purchaseId: p.id, now: new Date() });
      updated();
      await gate;
    });
    await firstUpdated;
    const second = db.transaction().execute(async (trx) => {
      const p = await newPurchase(trx as unknown as typeof db);
      await redeemCouponInPurchase(trx, { programId: program.id, cardId: card.id, coupon: priced, purchaseId: p.id, now: new Date() });
    });
    const secondOutcome = second.then(
      () => 'redeemed',
      (error: { code?: string }) => error.code,
    );
    // The second really waits on the first's row lock before the first commits.
    await waitFor(async () => {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'update "card_coupons"%'`.execute(db);
      return Number(rows[0]!.n) === 1;
    }, { what: 'the second redemption to wait for the row lock' });
    release();
    await first;
    expect(await secondOutcome).toBe('coupon_already_used');
    const rows = await db.selectFrom('card_coupons').select(['status', 'redeemed_purchase_id']).where('id', '=', coupon.id).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.status).toBe('redeemed');
    expect(await db.selectFrom('purchase').select('id').where('card_id', '=', card.id).execute()).toHaveLength(1); // the loser rolled back
  });
});
