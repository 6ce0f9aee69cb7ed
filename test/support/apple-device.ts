/**
 * Helpers for tests that play an Apple Wallet device against the PassKit web service
 * (reference /work/shared/reference/apple-wallet.md, sections 1 and 7).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { waitFor, type TestApp } from './app.js';

export type RoleHeaders = (role: 'admin' | 'marketer' | 'pos') => { authorization: string };

export interface IssuedCard {
  id: string;
  serial: string;
  /** The pass's authenticationToken. */
  token: string;
  auth: { authorization: string };
}

let phoneCounter = 0;

/** Issues a card through the API and reads its Apple serial and authentication token from the database. */
export async function issueCard(t: TestApp, as: RoleHeaders): Promise<IssuedCard> {
  phoneCounter += 1;
  const phone = `+7916${String(1_000_000 + phoneCounter).slice(-7)}`;
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/v1/cards',
    headers: as('pos'),
    payload: { holder: { name: `Holder ${phoneCounter}`, phone } },
  });
  if (res.statusCode !== 201) throw new Error(`card issue failed: ${res.statusCode} ${res.body}`);
  const id: string = res.json().id;
  const row = await t.database.handle.db
    .selectFrom('card')
    .select(['apple_serial', 'apple_auth_token'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return { id, serial: row.apple_serial, token: row.apple_auth_token, auth: { authorization: `ApplePass ${row.apple_auth_token}` } };
}

/** Adds (or removes) points through the admin API; each call is a new operation. */
export async function adjust(t: TestApp, as: RoleHeaders, cardId: string, points: number, idempotencyKey: string = randomUUID()) {
  return t.app.inject({
    method: 'POST',
    url: `/api/v1/cards/${cardId}/adjustments`,
    headers: { ...as('admin'), 'idempotency-key': idempotencyKey },
    payload: { points, reason: 'test adjustment' },
  });
}

export async function adjustOk(t: TestApp, as: RoleHeaders, cardId: string, points: number) {
  const res = await adjust(t, as, cardId, points);
  if (res.statusCode !== 201) throw new Error(`adjustment failed: ${res.statusCode} ${res.body}`);
  return res.json() as { balance: number };
}

export const registrationUrl = (device: string, ptid: string, serial: string, prefix = '/apple') =>
  `${prefix}/v1/devices/${device}/registrations/${ptid}/${serial}`;
export const listUrl = (device: string, ptid: string, tag?: string) =>
  `/apple/v1/devices/${device}/registrations/${ptid}${tag === undefined ? '' : `?passesUpdatedSince=${encodeURIComponent(tag)}`}`;
export const passUrl = (ptid: string, serial: string) => `/apple/v1/passes/${ptid}/${serial}`;

/** POST register; throws unless 200/201. */
export async function register(t: TestApp, device: string, card: IssuedCard, pushToken: string) {
  const res = await t.app.inject({
    method: 'POST',
    url: registrationUrl(device, t.material.passTypeIdentifier, card.serial),
    headers: card.auth,
    payload: { pushToken },
  });
  if (res.statusCode !== 201 && res.statusCode !== 200) throw new Error(`register failed: ${res.statusCode} ${res.body}`);
  return res.statusCode;
}

export function registrations(t: TestApp, where: { device?: string; serial?: string; pushToken?: string } = {}) {
  let query = t.database.handle.db.selectFrom('apple_registration').selectAll();
  if (where.device !== undefined) query = query.where('device_library_identifier', '=', where.device);
  if (where.serial !== undefined) query = query.where('serial_number', '=', where.serial);
  if (where.pushToken !== undefined) query = query.where('push_token', '=', where.pushToken);
  return query.orderBy('device_library_identifier').orderBy('serial_number').execute();
}

export function cardRow(t: TestApp, serial: string) {
  return t.database.handle.db.selectFrom('card').selectAll().where('apple_serial', '=', serial).executeTakeFirstOrThrow();
}

/** Card-changed jobs not yet finished (waiting for their debounce, retrying or running). */
export async function pendingCardJobs(t: TestApp): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from pgboss.job where name like 'wallet-update-%' and state in ('created', 'retry', 'active')
  `.execute(t.database.handle.db);
  return Number(rows[0]!.n);
}

/**
 * Waits until every card-changed job has run to its end. A job's pushes and the registration
 * changes they cause happen inside the job, so after this the stand-in has seen every push that
 * the changes so far will ever cause: counting pushes needs no sleeping.
 */
export async function waitForCardJobsIdle(t: TestApp, timeoutMs = 30_000) {
  await waitFor(async () => (await pendingCardJobs(t)) === 0, { what: 'card-changed jobs to finish', timeoutMs });
}

/** A 64-hex-digit push token, distinct per `n` (the stand-in rejects anything else as BadDeviceToken). */
export const pushToken = (n: number) => n.toString(16).padStart(64, '0');

export const pushesTo = (t: TestApp, token: string) => t.apnsStandIn.received.filter((p) => p.token === token);
