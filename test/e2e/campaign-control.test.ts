import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { passUrl, pushToken, waitForCardJobsIdle } from '../support/apple-device.js';
import { getCampaign, installOnDevice, issueConsentingCard, saveToGoogle, setHistory, waitForCampaignDelivered, type TestCard } from '../support/campaigns.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf } from '../support/pkpass.js';
import { twoProportions, welch, moments } from '../../src/economics/statistics.js';

// Control groups end to end: the real APNs client against the APNs stand-in and the real Google
// client against the Google fake. The held-back cards must receive nothing at all — no push, no
// object message, no class message, no promo on the pass — and the effect must come out of the
// purchases exactly as the statistics say.
const DAY = 86_400_000;

describe(`campaign control groups (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let now = new Date('2026-06-01T09:00:00Z');
  beforeAll(async () => {
    t = await startTestApp({ google: true, clock: () => now });
  });
  afterAll(async () => {
    await t?.close();
  });

  const md5 = (value: string) => createHash('md5').update(value).digest('hex');

  // Retried: in whole-suite runs on a loaded 2-core machine this test has twice timed out waiting for
  // a recipient's Google message while it passes alone and beside the other campaign and Google
  // tests; a retry starts over with a new program. The guarantee itself (held-back cards get nothing)
  // is asserted in full on every attempt.
  let attempt = 0;
  it('holds back the share reproducibly, never messages it, and measures the effect against it', { retry: 2, timeout: 180_000 }, async () => {
    now = new Date('2026-06-01T09:00:00Z');
    attempt += 1;
    const { program, as } = await createProgramWithKeys(t.app, attempt === 1 ? 'control' : `control-${attempt}`);
    const tokenBase = 0x5000 + (attempt - 1) * 0x100; // a retry's devices are new devices
    const cards: TestCard[] = [];
    for (let i = 0; i < 30; i++) {
      const c = await issueConsentingCard(t, as);
      await installOnDevice(t, c, pushToken(tokenBase + i));
      if (i % 3 === 0) await saveToGoogle(t, c);
      cards.push(c);
    }
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;
    t.google!.fake.calls.length = 0;

    const create = (payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: as('marketer'), payload });
    const message = { ru: 'Новинка недели', en: 'New this week' };
    for (const bad of [{ controlShare: 51 }, { controlShare: -1 }, { controlShare: 12.5 }, { effectWindowDays: 0 }, { effectWindowDays: 91 }]) {
      const res = await create({ name: 'x', message, audience: { all: true }, ...bad });
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
    }
    expect(await t.database.handle.db.selectFrom('campaign').select('id').where('program_id', '=', program.id).execute()).toEqual([]);

    const created = await create({ name: 'Everyone, 20 % held back', message, audience: { all: true }, controlShare: 20, effectWindowDays: 7 });
    expect(created.statusCode).toBe(201);
    expect(created.json().control).toEqual({ share: 20, heldOut: 0, windowDays: 7 });
    const id: string = created.json().id;
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${id}/send`, headers: as('marketer') })).statusCode).toBe(202);
    const done = await waitForCampaignDelivered(t, as, id);
    expect(done.control).toEqual({ share: 20, heldOut: 6, windowDays: 7 });
    expect(done.progress).toEqual({ targeted: 24, processed: 24, delivered: 24, skipped: 0 });

    // Reproducible: the first 20 % of the audience in the order of md5(campaign id, card id).
    const expected = [...cards].sort((a, b) => md5(id + a.id).localeCompare(md5(id + b.id)) || a.id.localeCompare(b.id)).slice(0, 6);
    const held = await t.database.handle.db.selectFrom('campaign_control').select('card_id').where('campaign_id', '=', id).execute();
    expect(held.map((r) => r.card_id).sort()).toEqual(expected.map((c) => c.id).sort());
    const control = new Set(held.map((r) => r.card_id));
    const treated = cards.filter((c) => !control.has(c.id));

    // Never messaged: no push to a held-back device, no Google message, no class message, no promo.
    const pushed = new Set(t.apnsStandIn.received.map((p) => p.token));
    cards.forEach((c, i) => expect(pushed.has(pushToken(tokenBase + i)), c.id).toBe(!control.has(c.id)));
    const ownTokens = new Set(cards.map((_, i) => pushToken(tokenBase + i)));
    expect(t.apnsStandIn.received.filter((p) => ownTokens.has(p.token))).toHaveLength(24);
    // Google: every recipient's object carries the message (the update path may still be retrying
    // on a busy machine), no held-back object was ever called with one.
    const hasMessage = (c: TestCard) => (t.google!.fake.objects.get(c.objectId!)?.messages ?? []).some((m) => m.body === message.ru);
    // A redelivery after a failed attempt waits out its backoff: allow a minute on a loaded machine.
    await waitFor(() => cards.filter((c) => c.objectId && !control.has(c.id)).every(hasMessage), { what: 'every recipient object messaged', timeoutMs: 60_000 });
    for (const c of cards.filter((x) => x.objectId && control.has(x.id))) {
      expect(t.google!.fake.callsTo('addObjectMessage').filter((call) => call.path.includes(encodeURIComponent(c.objectId!))), c.id).toEqual([]);
      expect(hasMessage(c), c.id).toBe(false);
    }
    expect(t.google!.fake.callsTo('addClassMessage')).toHaveLength(0);
    const promos = await t.database.handle.db.selectFrom('card').select(['id', 'promo']).where('program_id', '=', program.id).execute();
    for (const p of promos) expect(p.promo === null, p.id).toBe(control.has(p.id));
    const heldCard = expected[0]!;
    const pass = passJsonOf((await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, heldCard.serial), headers: heldCard.auth })).rawPayload);
    expect(JSON.stringify(pass)).not.toContain('promo');

    // A crafted outcome: in the 7-day window, 12 of 24 recipients buy (1,000.00 each, the first
    // four twice) and 1 of 6 control cards (500.00). Outside the window, and refunded, does not count.
    const start = new Date(done.startedAt).getTime();
    const buy = (c: TestCard, at: number, amount: number, status: 'completed' | 'refunded' = 'completed') =>
      t.database.handle.db.insertInto('purchase').values({ program_id: program.id, card_id: c.id, amount, redeemed: 0, accrued: 0, payable: amount, status, created_at: new Date(at) }).execute();
    for (const [i, c] of treated.slice(0, 12).entries()) {
      await buy(c, start + DAY, 100_000);
      if (i < 4) await buy(c, start + 2 * DAY, 100_000);
    }
    await buy(treated[20]!, start - DAY, 100_000); // before the campaign
    await buy(treated[21]!, start + 8 * DAY, 100_000); // after the window
    await buy(treated[22]!, start + DAY, 100_000, 'refunded');
    const [c0, c1] = [...control];
    await buy(cards.find((c) => c.id === c0)!, start + 3 * DAY, 50_000);
    await buy(cards.find((c) => c.id === c1)!, start + 10 * DAY, 50_000); // after the window

    now = new Date(start + 3 * DAY);
    const measuring = (await getCampaign(t, as, id)).effect;
    expect(measuring.window).toEqual({ start: done.startedAt, end: new Date(start + 7 * DAY).toISOString(), days: 7, complete: false });

    now = new Date(start + 20 * DAY);
    const effect = (await getCampaign(t, as, id)).effect;
    expect(effect.window.complete).toBe(true);
    expect(effect.treated).toEqual({ holders: 24, buyers: 12, conversion: 0.5, purchases: 16, purchasesPerHolder: 0.67, revenue: 1_600_000, revenuePerHolder: 66_666.67, averageCheck: 100_000 });
    expect(effect.control).toEqual({ holders: 6, buyers: 1, conversion: 0.1667, purchases: 1, purchasesPerHolder: 0.17, revenue: 50_000, revenuePerHolder: 8333.33, averageCheck: 50_000 });
    const conversion = twoProportions(12, 24, 1, 6)!;
    expect(effect.conversion).toEqual({
      difference: 0.3333,
      low: Math.round(conversion.low * 1e4) / 1e4,
      high: Math.round(conversion.high * 1e4) / 1e4,
      pValue: Math.round(conversion.pValue * 1e4) / 1e4,
      significant: conversion.significant,
      method: 'two-proportion z-test (Wald interval)',
    });
    // Per-holder revenue, zeros included: 4 × 2,000.00, 8 × 1,000.00, 12 × 0 against 500.00 and five zeros.
    const revenue = welch(moments([...Array(4).fill(200_000), ...Array(8).fill(100_000), ...Array(12).fill(0)]), moments([50_000, 0, 0, 0, 0, 0]))!;
    expect(effect.revenuePerHolder).toMatchObject({ difference: 58_333.33, low: Math.round(revenue.low * 100) / 100, high: Math.round(revenue.high * 100) / 100, significant: revenue.significant });
    expect(effect.incremental.buyers.estimate).toBeCloseTo(8, 5);
    expect(effect.incremental.revenue.estimate).toBeCloseTo(1_400_000, 1);
    expect(effect.averageCheck).toEqual({ difference: 50_000 });
    expect(effect.reactivated).toBeNull(); // not a win-back audience

    // Control cards held back by one campaign are ordinary recipients of the next.
    now = new Date(start + 21 * DAY);
    const next = await create({ name: 'Second', message: { ru: 'Ещё', en: 'More' }, audience: { all: true }, controlShare: 0 });
    await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${next.json().id}/send`, headers: as('marketer') });
    const second = await waitForCampaignDelivered(t, as, next.json().id);
    expect(second.progress.targeted).toBe(30);
    expect(second.control.heldOut).toBe(0);
    expect(second.effect.control).toBeNull();
    expect(second.effect.conversion).toBeNull();
  });

  it('reports reactivated holders for a win-back audience, and defaults to a 10 % control group', async () => {
    now = new Date('2026-07-01T09:00:00Z');
    const { program, as } = await createProgramWithKeys(t.app, 'control-winback');
    const sleepers: TestCard[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await issueConsentingCard(t, as);
      await setHistory(t, program.id, c.id, now, 400, [90]);
      sleepers.push(c);
    }
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/campaigns',
      headers: as('marketer'),
      payload: { name: 'Come back', message: { ru: 'Возвращайтесь', en: 'Come back' }, audience: { segments: ['sleeping'] } },
    });
    expect(created.json().control).toEqual({ share: 10, heldOut: 0, windowDays: 14 });
    await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${created.json().id}/send`, headers: as('marketer') });
    const done = await waitForCampaignDelivered(t, as, created.json().id);
    expect(done.control.heldOut).toBe(2);
    const held = new Set((await t.database.handle.db.selectFrom('campaign_control').select('card_id').where('campaign_id', '=', done.id).execute()).map((r) => r.card_id));
    const start = new Date(done.startedAt).getTime();
    let bought = 0;
    for (const c of sleepers) {
      if (held.has(c.id) || bought >= 9) continue;
      bought += 1;
      await t.database.handle.db.insertInto('purchase').values({ program_id: program.id, card_id: c.id, amount: 30_000, redeemed: 0, accrued: 0, payable: 30_000, created_at: new Date(start + DAY) }).execute();
    }
    now = new Date(start + 15 * DAY);
    const effect = (await getCampaign(t, as, done.id)).effect;
    expect(effect.reactivated).toMatchObject({ treated: 9, control: 0 });
    expect(effect.reactivated.share.difference).toBe(0.5);
    expect(effect.treated).toMatchObject({ holders: 18, buyers: 9, conversion: 0.5 });
  });

  it('keeps a standing control group for the automations: held-back cards use up their occasion and get nothing', async () => {
    now = new Date('2027-03-15T08:00:00Z'); // 11:00 in Moscow, after the send hour
    const { program, as } = await createProgramWithKeys(t.app, 'control-birthday');
    const put = await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: { birthday: { enabled: true, controlShare: 50, bonusPoints: 100 } } });
    expect(put.statusCode).toBe(200);
    expect(put.json().birthday).toMatchObject({ controlShare: 50 });
    expect((await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: { winback: { enabled: true, controlShare: 60 } } })).statusCode).toBe(400);
    const cards: TestCard[] = [];
    for (let i = 0; i < 16; i++) {
      const c = await issueConsentingCard(t, as, { birthday: '1990-03-15' });
      await installOnDevice(t, c, pushToken(0x6000 + i));
      cards.push(c);
    }
    await t.database.handle.db.updateTable('card').set({ created_at: new Date('2026-01-01T00:00:00Z') }).where('program_id', '=', program.id).execute();
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;

    const created = await t.app.automations.tick();
    const birthday = created.find((c) => c.programId === program.id && c.automation === 'birthday')!;
    const done = await waitForCampaignDelivered(t, as, birthday.campaignId);
    const held = new Set((await t.database.handle.db.selectFrom('campaign_control').select('card_id').where('campaign_id', '=', birthday.campaignId).execute()).map((r) => r.card_id));
    // Each card is held back by md5(campaign id, card id) < 50 %: reproducible, whatever the batch size.
    const expectedHeld = cards.filter((c) => parseInt(md5(birthday.campaignId + c.id).slice(0, 8), 16) % 10000 < 5000).map((c) => c.id);
    expect([...held].sort()).toEqual(expectedHeld.sort());
    expect(held.size).toBeGreaterThan(0);
    expect(done.control.heldOut).toBe(held.size);
    expect(done.progress.targeted).toBe(16 - held.size);
    // Every card's occasion is used up; only the recipients got the greeting, the push and the points.
    const deliveries = await t.database.handle.db.selectFrom('automation_delivery').select('card_id').where('program_id', '=', program.id).execute();
    expect(deliveries).toHaveLength(16);
    const pushed = new Set(t.apnsStandIn.received.map((p) => p.token));
    const bonuses = new Set((await t.database.handle.db.selectFrom('ledger_entry').select('card_id').where('kind', '=', 'birthday').where('program_id', '=', program.id).execute()).map((r) => r.card_id));
    cards.forEach((c, i) => {
      expect(pushed.has(pushToken(0x6000 + i)), c.id).toBe(!held.has(c.id));
      expect(bonuses.has(c.id), c.id).toBe(!held.has(c.id));
    });
    // The next tick does not pick the held-back cards up again.
    expect((await t.app.automations.tick()).filter((c) => c.programId === program.id)).toEqual([]);

    const pooled = await t.app.inject({ method: 'GET', url: '/api/v1/automations/effect?automation=birthday&days=30', headers: as('marketer') });
    expect(pooled.statusCode).toBe(200);
    expect(pooled.json()).toMatchObject({ automation: 'birthday', days: 30, effect: { campaigns: 1, treated: { holders: 16 - held.size }, control: { holders: held.size } } });
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/automations/effect?automation=tier_upgrade', headers: as('marketer') })).statusCode).toBe(400);
  });
});
