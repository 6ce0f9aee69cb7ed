/**
 * Issue #11, object updates through Google Wallet 429/500 storms: the real Google client against the
 * local fake of the Wallet Objects API, first down for every call (500, 429 with Retry-After), then
 * flaky (429s, 500s, connection resets, addMessage answers lost after Google applied them), then well.
 * Meanwhile a campaign (a promo message to every object) and two balance changes per card happen on
 * 100 objects. Every object must end with the card's latest state, no update lost; addMessage is never
 * sent twice; the 3-notifications-per-24h rule holds and our count of notifications equals Google's;
 * an object Google refuses with a non-retryable 400 is recorded as failed and not retried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { adjustOk, waitForCardJobsIdle, type RoleHeaders } from '../support/apple-device.js';
import { getCampaign, issueConsentingCard, saveToGoogle, type TestCard } from '../support/campaigns.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { metric, pendingTargets, waitForDeliveriesSettled, walletJobStates } from '../support/deliveries.js';

const OBJECTS = 100;

async function pool<T>(items: T[], width: number, task: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

describe(`Google Wallet 429/500 storms: every object ends current, nothing lost (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let as: RoleHeaders;
  beforeAll(async () => {
    t = await startTestApp({
      google: true,
      // The client's own retries are short, so the storm reaches the update path's pending state.
      googleRetry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 100 },
      redelivery: { pollMs: 100, leaseMs: 60_000, policy: { baseDelayMs: 200, maxDelayMs: 1_500 } },
    });
    ({ as } = await createProgramWithKeys(t.app, 'faults-google'));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('an outage, then a flaky storm, then recovery: latest state everywhere, messages once, quota kept', { timeout: 240_000 }, async () => {
    const db = t.database.handle.db;
    const fake = t.google!.fake;

    const cards: TestCard[] = [];
    await pool(Array.from({ length: OBJECTS }, (_, i) => i), 4, async () => {
      const card = await issueConsentingCard(t, as);
      await saveToGoogle(t, card);
      cards.push(card);
    });
    // A holder without marketing consent in the class: the campaign messages objects one by one.
    await saveToGoogle(t, await issueConsentingCard(t, as, { consent: false }));
    await waitForCardJobsIdle(t);
    const refused = cards[0]!; // Google refuses every PATCH of this object with 400: failed for good.
    const refusedPath = encodeURIComponent(refused.objectId!);
    const refusedBalance = (fake.objects.get(refused.objectId!)!.loyaltyPoints!.balance!.int)!;
    fake.addFault({ route: 'patchObject', pathIncludes: refusedPath, status: 400, reason: 'INVALID_ARGUMENT' });
    const callsBefore = fake.calls.length;

    // ---- the outage: every call to Google fails (429 with Retry-After, or 500), the token endpoint too ----
    const outage = [fake.addFault({ route: '*', status: 429, retryAfter: '1', rate: 0.5 }), fake.addFault({ route: '*', status: 500 })];
    const message = { ru: 'Скидка 15% на десерты', en: '15% off desserts' };
    const created = await t.app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: as('marketer'), payload: { name: 'Storm', message, audience: { all: true }, controlShare: 0 } });
    expect(created.statusCode).toBe(201);
    const campaignId: string = created.json().id;
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${campaignId}/send`, headers: as('marketer') })).statusCode).toBe(202);
    await waitFor(async () => (await getCampaign(t, as, campaignId)).status === 'sent', { what: 'the campaign to be sent', timeoutMs: 60_000 });
    await pool(cards, 4, (card) => adjustOk(t, as, card.id, 7));
    // Every update is pending (the refused object too: its message could not even be read), no job failed.
    const cardIds = cards.map((c) => c.id).sort();
    await waitFor(async () => (await pendingTargets(t, 'google')).length === OBJECTS && (await jobsIdle()), { what: 'every object pending', timeoutMs: 120_000 });
    expect(await pendingTargets(t, 'google')).toEqual(cardIds);
    expect((await walletJobStates(t)).failed ?? 0).toBe(0);
    expect(fake.calls.slice(callsBefore).filter((c) => c.status === 200)).toEqual([]);
    expect(await metric(t, 'wallet_deliveries_pending', { wallet: 'google' })).toBe(OBJECTS);
    const during = (await getCampaign(t, as, campaignId)).delivery.google;
    expect(during).toMatchObject({ objectsPending: OBJECTS, objectsFailed: 0, objectsUpdated: 0 });

    // ---- a flaky storm: some calls go through; answers to addMessage lost after Google applied them ----
    for (const remove of outage) remove();
    const storm = [
      fake.addFault({ route: 'addObjectMessage', status: 503, afterProcessing: true, rate: 0.5 }),
      fake.addFault({ route: 'getObject', reset: true, rate: 0.2 }),
      fake.addFault({ route: 'patchObject', status: 429, retryAfter: '1', rate: 0.3 }),
      fake.addFault({ route: '*', status: 500, rate: 0.3 }),
    ];
    // A second balance change per card while the storm lasts.
    await pool(cards, 4, (card) => adjustOk(t, as, card.id, 3));
    await waitFor(async () => (await jobsIdle()) && fake.calls.some((c) => c.route === 'addObjectMessage' && c.status === 503), {
      what: 'the storm to reach addMessage',
      timeoutMs: 60_000,
    });

    // ---- recovery ----
    for (const remove of storm) remove();
    await waitForDeliveriesSettled(t, 120_000);

    // Every object shows the card's latest balance and the promo; nothing lost.
    for (const card of cards.slice(1)) {
      const row = await db.selectFrom('card').select(['balance', 'promo']).where('id', '=', card.id).executeTakeFirstOrThrow();
      const object = fake.objects.get(card.objectId!)!;
      expect(object.loyaltyPoints!.balance!.int).toBe(Number(row.balance));
      expect(JSON.stringify(object.textModulesData)).toContain(message.ru);
      const published = await db.selectFrom('google_object').select('published_balance').where('card_id', '=', card.id).executeTakeFirstOrThrow();
      expect(Number(published.published_balance)).toBe(Number(row.balance));
    }
    // addMessage never sent twice: one promo message per object, one call that Google applied.
    for (const card of cards) {
      const path = encodeURIComponent(card.objectId!);
      const applied = fake.callsTo('addObjectMessage').filter((c) => c.path.includes(path) && (c.status === 200 || c.status === 503));
      expect(applied).toHaveLength(1);
      const ids = (fake.objects.get(card.objectId!)!.messages ?? []).map((m) => m.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toHaveLength(1);
    }
    expect(fake.callsTo('addObjectMessage').filter((c) => c.status === 503).length).toBeGreaterThan(0);
    // 3 notifications per object per 24 h at most, and our own count equals Google's (a message whose
    // answer was lost is found on the retry and counted).
    for (const card of cards) {
      const ours = await db.selectFrom('google_notification').select('id').where('object_id', '=', card.objectId!).execute();
      expect(ours.length).toBe(fake.notificationsInWindow(card.objectId!));
      expect(ours.length).toBeLessThanOrEqual(3);
    }
    // The refused object: recorded as failed, not pending, never updated, and not retried forever
    // (one refused PATCH per change that reached it, none after the last).
    expect(await pendingTargets(t, 'google')).toEqual([]);
    expect(fake.objects.get(refused.objectId!)!.loyaltyPoints!.balance!.int).toBe(refusedBalance);
    const refusedPatches = fake.callsTo('patchObject').filter((c) => c.path.includes(refusedPath));
    expect(refusedPatches.filter((c) => c.status === 400).length).toBeGreaterThanOrEqual(1);
    expect(refusedPatches.filter((c) => c.status === 400).length).toBeLessThanOrEqual(3);
    expect(await metric(t, 'wallet_deliveries_failed_total', { wallet: 'google', reason: 'http-400' })).toBeGreaterThanOrEqual(1);
    expect((await walletJobStates(t)).failed ?? 0).toBe(0);
    expect(await metric(t, 'wallet_deliveries_pending', { wallet: 'google' })).toBe(0);
    const after = (await getCampaign(t, as, campaignId)).delivery.google;
    expect(after).toMatchObject({ objectsPending: 0, objectsFailed: 1, objectsUpdated: OBJECTS - 1 });
    console.log(
      `Google storm (${TEST_DATABASE_KIND}): ${OBJECTS} objects, ${OBJECTS * 3} changes, ${fake.calls.length - callsBefore} API calls ` +
        `(${fake.calls.slice(callsBefore).filter((c) => c.status !== 200).length} failed); after recovery ${OBJECTS - 1} objects current, 1 refused (400), 0 lost`,
    );
  });

  async function jobsIdle() {
    const states = await walletJobStates(t);
    return (states.created ?? 0) + (states.retry ?? 0) + (states.active ?? 0) === 0;
  }
});
