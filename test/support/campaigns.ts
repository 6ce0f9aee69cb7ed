/**
 * Helpers for campaign tests: cards with consent, crafted purchase dates, devices, Google objects,
 * and waiting for a campaign to finish.
 */
import { expect } from 'vitest';
import { waitFor, type TestApp } from './app.js';
import { register, waitForCardJobsIdle, type IssuedCard, type RoleHeaders } from './apple-device.js';

const DAY = 86_400_000;
let phones = 0;

export interface TestCard extends IssuedCard {
  publicToken: string;
  objectId?: string;
}

/** Issues a card through the API (marketing consent as given) and reads its wallet identifiers. */
export async function issueConsentingCard(t: TestApp, as: RoleHeaders, options: { consent?: boolean; name?: string; birthday?: string } = {}): Promise<TestCard> {
  phones += 1;
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/v1/cards',
    headers: as('pos'),
    payload: {
      holder: { name: options.name ?? `Holder ${phones}`, phone: `+7917${String(1_000_000 + phones).slice(-7)}`, ...(options.birthday ? { birthday: options.birthday } : {}) },
      consent: options.consent ?? true,
    },
  });
  if (res.statusCode !== 201) throw new Error(`card issue failed: ${res.statusCode} ${res.body}`);
  const id: string = res.json().id;
  const row = await t.database.handle.db
    .selectFrom('card')
    .select(['apple_serial', 'apple_auth_token', 'public_token'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return { id, serial: row.apple_serial, token: row.apple_auth_token, auth: { authorization: `ApplePass ${row.apple_auth_token}` }, publicToken: row.public_token };
}

/** Registers a device (push token) for the card's pass. */
export async function installOnDevice(t: TestApp, card: TestCard, pushToken: string) {
  await register(t, `device-${pushToken.slice(-12)}`, card, pushToken);
}

/** "Add to Google Wallet": the save link creates the card's loyalty object at the fake. */
export async function saveToGoogle(t: TestApp, card: TestCard): Promise<string> {
  const res = await t.app.inject({ method: 'GET', url: `/c/${card.publicToken}/google` });
  expect(res.statusCode).toBe(302);
  const row = await t.database.handle.db.selectFrom('google_object').select('object_id').where('card_id', '=', card.id).executeTakeFirstOrThrow();
  card.objectId = row.object_id;
  return row.object_id;
}

/** Enrollment and completed purchases at chosen moments (days before `now`). */
export async function setHistory(t: TestApp, programId: string, cardId: string, now: Date, enrolledDaysAgo: number, purchaseDaysAgo: number[], amount = 10_000) {
  const db = t.database.handle.db;
  await db.updateTable('card').set({ created_at: new Date(now.getTime() - enrolledDaysAgo * DAY) }).where('id', '=', cardId).execute();
  // The enrollment's ledger entries (welcome bonus) date from the enrollment: expiry counts positive
  // ledger entries as activity.
  await db.updateTable('ledger_entry').set({ created_at: new Date(now.getTime() - enrolledDaysAgo * DAY) }).where('card_id', '=', cardId).execute();
  for (const daysAgo of purchaseDaysAgo) {
    await db
      .insertInto('purchase')
      .values({ program_id: programId, card_id: cardId, amount, redeemed: 0, accrued: 0, payable: amount, created_at: new Date(now.getTime() - daysAgo * DAY) })
      .execute();
  }
}

export async function getCampaign(t: TestApp, as: RoleHeaders, id: string) {
  const res = await t.app.inject({ method: 'GET', url: `/api/v1/campaigns/${id}`, headers: as('marketer') });
  expect(res.statusCode).toBe(200);
  return res.json();
}

/** Waits until the campaign is sent and every wallet update it caused has run and reported. */
export async function waitForCampaignDelivered(t: TestApp, as: RoleHeaders, id: string, timeoutMs = 30_000) {
  await waitFor(async () => (await getCampaign(t, as, id)).status === 'sent', { what: `campaign ${id} sent`, timeoutMs });
  await waitForCardJobsIdle(t, timeoutMs);
  await waitFor(async () => (await getCampaign(t, as, id)).delivery.awaitingReports === 0, { what: 'wallet reports', timeoutMs });
  return getCampaign(t, as, id);
}

export const DAYS = DAY;
