import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { passUrl, pushToken, pushesTo, register, waitForCardJobsIdle } from '../support/apple-device.js';
import { csvRecords } from '../support/csv.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf } from '../support/pkpass.js';
import { pruneExpiredData } from '../../src/jobs/retention.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const HOLDER = {
  name: 'Ольга Приватова',
  phone: '+79165550101',
  email: 'olga.privatova@example.com',
  birthday: '1987-03-09',
};
// What must be nowhere after the erasure: the phone (also as bare digits), the name and its parts, the e-mail, the birthday.
const NEEDLES = [HOLDER.phone, HOLDER.phone.slice(1), HOLDER.name, 'Приватова', HOLDER.email, 'olga.privatova', HOLDER.birthday, 'CRM-olga-77'];

/** Every row of every table of every schema (ours and pg-boss's), as text, searched for `needle`: where it is found. */
async function whereFound(t: TestApp, needle: string): Promise<string[]> {
  const db = t.database.handle.db;
  const { rows: tables } = await sql<{ schema: string; name: string }>`
    SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    ORDER BY 1, 2
  `.execute(db);
  expect(tables.length).toBeGreaterThan(40);
  const found: string[] = [];
  for (const { schema, name } of tables) {
    // The whole row as text: every column of every type (text, jsonb, dates, arrays) at once.
    const { rows } = await sql<{ n: string }>`
      SELECT count(*) AS n FROM ${sql.table(`${schema}.${name}`)} AS t WHERE position(lower(${needle}) IN lower(t::text)) > 0
    `.execute(db);
    if (Number(rows[0]!.n) > 0) found.push(`${schema}.${name}`);
  }
  return found;
}

async function programTotals(t: TestApp, programId: string) {
  const { rows } = await sql<{ ledger: string; balances: string; entries: string; purchases: string; amount: string }>`
    SELECT (SELECT coalesce(sum(points), 0) FROM ledger_entry WHERE program_id = ${programId}) AS ledger,
      (SELECT coalesce(sum(balance), 0) FROM card WHERE program_id = ${programId}) AS balances,
      (SELECT count(*) FROM ledger_entry WHERE program_id = ${programId}) AS entries,
      (SELECT count(*) FROM purchase WHERE program_id = ${programId}) AS purchases,
      (SELECT coalesce(sum(amount), 0) FROM purchase WHERE program_id = ${programId}) AS amount
  `.execute(t.database.handle.db);
  return rows[0]!;
}

describe(`a holder's data: access and erasure (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let shop: Awaited<ReturnType<typeof createProgramWithKeys>>;
  let other: Awaited<ReturnType<typeof createProgramWithKeys>>;
  let cardId: string;
  let before: { number: string; apple_serial: string; apple_auth_token: string; public_token: string; google_object_id: string | null };
  const token = pushToken(0xa11ce);

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    t = await startTestApp({ google: true, env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' } });
    shop = await createProgramWithKeys(t.app, 'privacy-shop', { defaultLanguage: 'ru' });
    // Webhook events copy the external id (card.issued) and ledger reasons (balance.changed).
    const hook = await t.app.inject({
      method: 'POST',
      url: '/api/v1/webhooks',
      headers: shop.as('admin'),
      payload: { url: receiver.url('/hook'), events: ['card.issued', 'balance.changed'] },
    });
    expect(hook.statusCode, hook.body).toBe(201);
    other = await createProgramWithKeys(t.app, 'privacy-other');
    const issued = await t.app.inject({
      method: 'POST',
      url: '/api/v1/cards',
      headers: shop.as('admin'),
      payload: { holder: HOLDER, consent: true, externalId: 'CRM-olga-77' },
    });
    expect(issued.statusCode, issued.body).toBe(201);
    cardId = issued.json().id;
    // A friend she invited, a purchase, a goodwill adjustment whose reason names her.
    const friend = await t.app.inject({
      method: 'POST',
      url: '/api/v1/cards',
      headers: shop.as('pos'),
      payload: { holder: { name: 'Друг Ольги', phone: '+79165550102' }, referralCode: issued.json().referralCode },
    });
    expect(friend.statusCode, friend.body).toBe(201);
    const bought = await t.app.inject({
      method: 'POST',
      url: `/api/v1/cards/${cardId}/purchases`,
      headers: { ...shop.as('pos'), 'idempotency-key': 'privacy-p1' },
      payload: { amount: 250_000, receiptId: 'privacy-r1' },
    });
    expect(bought.statusCode, bought.body).toBe(201);
    const adjusted = await t.app.inject({
      method: 'POST',
      url: `/api/v1/cards/${cardId}/adjustments`,
      headers: { ...shop.as('admin'), 'idempotency-key': 'privacy-a1' },
      payload: { points: 77, reason: `Goodwill for ${HOLDER.name}, ${HOLDER.phone}` },
    });
    expect(adjusted.statusCode, adjusted.body).toBe(201);
    // A one-time code once sent to her phone (stored as an HMAC of the phone).
    await t.database.handle.db
      .insertInto('phone_verification')
      .values({ program_id: shop.program.id, phone_hash: t.app.ctx.verification.phoneHash(HOLDER.phone), purpose: 'join', code_hash: 'x', ip_hash: 'y', expires_at: new Date(Date.now() + 60_000) })
      .execute();
    // Both wallets.
    const row = await t.database.handle.db.selectFrom('card').selectAll().where('id', '=', cardId).executeTakeFirstOrThrow();
    await register(t, 'privacy-device', { id: cardId, serial: row.apple_serial, token: row.apple_auth_token, auth: { authorization: `ApplePass ${row.apple_auth_token}` } }, token);
    expect((await t.app.inject({ method: 'GET', url: `/c/${row.public_token}/google` })).statusCode).toBe(302);
    await waitForCardJobsIdle(t);
    await waitFor(() => receiver.at('/hook').some((r) => JSON.stringify(r.json).includes(HOLDER.name)), { what: 'the balance.changed webhook with the reason' });
    before = await t.database.handle.db.selectFrom('card').select(['number', 'apple_serial', 'apple_auth_token', 'public_token', 'google_object_id']).where('id', '=', cardId).executeTakeFirstOrThrow();
    expect(before.google_object_id).toBeTruthy();
  });

  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('gives the program admin everything stored about the holder, and no one else', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/personal-data`, headers: shop.as('admin') });
    expect(res.statusCode, res.body).toBe(200);
    const data = res.json();
    expect(data.card).toMatchObject({
      id: cardId,
      number: before.number,
      status: 'active',
      holder: HOLDER,
      consent: { marketing: true },
      externalId: 'CRM-olga-77',
      cardPageUrl: `https://wallet.test/c/${before.public_token}`,
    });
    expect(data.ledger.map((e: { kind: string }) => e.kind)).toEqual(expect.arrayContaining(['welcome', 'accrual', 'adjustment']));
    expect(data.ledger.find((e: { kind: string }) => e.kind === 'adjustment').reason).toContain(HOLDER.name);
    expect(data.purchases).toEqual([expect.objectContaining({ amount: 250_000, receiptId: 'privacy-r1', status: 'completed' })]);
    expect(data.referrals.invited).toHaveLength(1);
    expect(data.wallets.appleDevices).toEqual([expect.objectContaining({ deviceLibraryIdentifier: 'privacy-device' })]);
    expect(data.wallets.google).toMatchObject({ objectId: before.google_object_id });
    expect(data.phoneVerifications).toEqual([expect.objectContaining({ purpose: 'join' })]);
    expect(data.erasure).toBeNull();
    // Secrets that protect the holder are not part of it.
    expect(res.body).not.toContain(before.apple_auth_token);
    expect(res.body).not.toContain(token);

    for (const role of ['pos', 'marketer'] as const) {
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/personal-data`, headers: shop.as(role) })).statusCode).toBe(403);
    }
    // Another program's admin learns nothing about the card.
    const foreign = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/personal-data`, headers: other.as('admin') });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().code).toBe('card_not_found');
  });

  it('refuses an erasure without confirmation, from other roles and from other programs, and changes nothing', async () => {
    const url = `/api/v1/cards/${cardId}/erasure`;
    const noConfirm = await t.app.inject({ method: 'POST', url, headers: shop.as('admin'), payload: {} });
    expect(noConfirm.statusCode).toBe(400);
    expect(noConfirm.headers['content-type']).toContain('application/problem+json');
    expect((await t.app.inject({ method: 'POST', url, headers: shop.as('admin'), payload: { confirm: false } })).statusCode).toBe(400);
    for (const role of ['pos', 'marketer'] as const) {
      expect((await t.app.inject({ method: 'POST', url, headers: shop.as(role), payload: { confirm: true } })).statusCode).toBe(403);
    }
    expect((await t.app.inject({ method: 'POST', url, headers: other.as('admin'), payload: { confirm: true } })).statusCode).toBe(404);
    const row = await t.database.handle.db.selectFrom('card').select(['status', 'holder_name']).where('id', '=', cardId).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'active', holder_name: HOLDER.name });
  });

  it('erases: no table holds her data, the Apple pass is voided and pushed, the Google object expired, totals unchanged, audited', async () => {
    // Before: the scan does find her (the test can fail).
    expect(await whereFound(t, HOLDER.phone)).toContain('public.card');
    expect(await whereFound(t, HOLDER.name)).toEqual(expect.arrayContaining(['public.card', 'public.ledger_entry', 'public.webhook_event']));
    expect(await whereFound(t, 'CRM-olga-77')).toEqual(expect.arrayContaining(['public.card', 'public.webhook_event']));
    const totals = await programTotals(t, shop.program.id);
    const pushesBefore = pushesTo(t, token).length;
    const patchesBefore = t.google!.fake.callsTo('patchObject').length;

    const res = await t.app.inject({
      method: 'POST',
      url: `/api/v1/cards/${cardId}/erasure`,
      headers: { ...shop.as('admin'), 'idempotency-key': 'erase-olga' },
      payload: { confirm: true },
    });
    expect(res.statusCode, res.body).toBe(200);
    const keyId = (await t.database.handle.db.selectFrom('api_key').select('id').where('program_id', '=', shop.program.id).where('role', '=', 'admin').executeTakeFirstOrThrow()).id;
    expect(res.json()).toMatchObject({ cardId, status: 'erased', erasedBy: `key:${keyId}` });
    // The answer itself carries nothing of hers.
    for (const needle of NEEDLES) expect(res.body).not.toContain(needle);

    // Apple: the device is pushed through the update path and fetches a voided pass without her name.
    await waitFor(() => pushesTo(t, token).length > pushesBefore, { what: 'the push to her device' });
    const pass = await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, before.apple_serial), headers: { authorization: `ApplePass ${before.apple_auth_token}` } });
    expect(pass.statusCode).toBe(200);
    const passJson = passJsonOf(pass.rawPayload);
    expect(passJson).toMatchObject({ voided: true, serialNumber: before.apple_serial });
    for (const needle of NEEDLES) expect(JSON.stringify(passJson)).not.toContain(needle);

    // Google: the object is patched to EXPIRED through the adapter, her name gone from it.
    await waitFor(
      () => t.google!.fake.callsTo('patchObject').slice(patchesBefore).some((c) => c.path.includes(before.google_object_id!) && (c.body as { state?: string }).state === 'EXPIRED'),
      { what: 'the Google object expired' },
    );
    const object = t.google!.fake.objects.get(before.google_object_id!)!;
    expect(object.state).toBe('EXPIRED');
    for (const needle of NEEDLES) expect(JSON.stringify(object)).not.toContain(needle);
    await waitForCardJobsIdle(t);

    // No table of any schema holds her phone, name, e-mail, birthday or external id any more.
    for (const needle of NEEDLES) expect(await whereFound(t, needle), needle).toEqual([]);
    const card = await t.database.handle.db.selectFrom('card').selectAll().where('id', '=', cardId).executeTakeFirstOrThrow();
    expect(card).toMatchObject({ status: 'erased', email: null, birthday: null, consent: false, consent_at: null, external_id: null, holder_name: '' });
    expect(await t.database.handle.db.selectFrom('phone_verification').select('id').where('program_id', '=', shop.program.id).execute()).toEqual([]);

    // Accounting: every ledger entry and purchase stays, program totals are the same.
    expect(await programTotals(t, shop.program.id)).toEqual(totals);
    // Audit: who, which card, when.
    const audit = await t.database.handle.db.selectFrom('card_erasure').selectAll().execute();
    expect(audit).toEqual([expect.objectContaining({ program_id: shop.program.id, card_id: cardId, actor: `key:${keyId}` })]);
    expect(new Date(audit[0]!.erased_at).toISOString()).toBe(res.json().erasedAt);
  });

  it('is idempotent: the same key replays, another request answers the first erasure and changes nothing', async () => {
    const url = `/api/v1/cards/${cardId}/erasure`;
    const first = (await t.database.handle.db.selectFrom('card_erasure').select('erased_at').executeTakeFirstOrThrow()).erased_at;
    const replay = await t.app.inject({ method: 'POST', url, headers: { ...shop.as('admin'), 'idempotency-key': 'erase-olga' }, payload: { confirm: true } });
    expect(replay.statusCode).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const again = await t.app.inject({ method: 'POST', url, headers: shop.as('admin'), payload: { confirm: true } });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(replay.json());
    expect(again.json().erasedAt).toBe(new Date(first).toISOString());
    expect(await t.database.handle.db.selectFrom('card_erasure').selectAll().execute()).toHaveLength(1);
  });

  it('is refused by the till and the public links afterwards (410 card_erased); the phone may enrol again as a new card', async () => {
    const pos = shop.as('pos');
    const gone = async (method: 'GET' | 'POST', url: string, payload?: object, headers: Record<string, string> = pos) => {
      const res = await t.app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(410);
      expect(res.json().code).toBe('card_erased');
    };
    await gone('GET', `/api/v1/cards/by-barcode/${before.number}`);
    await gone('GET', `/api/v1/cards/${cardId}`);
    await gone('GET', `/api/v1/cards/${cardId}/history`);
    await gone('POST', `/api/v1/cards/${cardId}/purchases`, { amount: 10_000 }, { ...pos, 'idempotency-key': 'after-erasure' });
    await gone('POST', `/api/v1/cards/${cardId}/adjustments`, { points: 5, reason: 'x' }, { ...shop.as('admin'), 'idempotency-key': 'after-erasure-a' });
    const purchase = await t.database.handle.db.selectFrom('purchase').select('id').where('card_id', '=', cardId).executeTakeFirstOrThrow();
    await gone('POST', `/api/v1/purchases/${purchase.id}/refund`, undefined, { ...pos, 'idempotency-key': 'after-erasure-r' });
    await gone('GET', `/c/${before.public_token}/card.pkpass`, undefined, {});
    expect((await t.app.inject({ method: 'GET', url: `/c/${before.public_token}` })).statusCode).toBe(404);
    const search = await t.app.inject({ method: 'GET', url: `/api/v1/cards?query=${encodeURIComponent(before.number)}`, headers: pos });
    expect(search.json().items).toEqual([]);

    // Her data export now shows what is left: nothing personal, and who erased it.
    const data = (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/personal-data`, headers: shop.as('admin') })).json();
    expect(data.card).toMatchObject({ status: 'erased', holder: { name: '', phone: null, email: null, birthday: null }, cardPageUrl: null });
    expect(data.erasure).toMatchObject({ actor: expect.stringMatching(/^key:/) });
    // The full export lists the card for the accounts, without anything personal.
    const csv = csvRecords((await t.app.inject({ method: 'GET', url: '/api/v1/exports/cards.csv', headers: shop.as('admin') })).body);
    expect(csv.find((r) => r.card_id === cardId)).toMatchObject({ status: 'erased', holder_name: '', phone: '', email: '', birthday: '', card_page_url: '' });

    // The same phone is free again: a new card, nothing carried over.
    const again = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: pos, payload: { holder: { name: 'Ольга', phone: HOLDER.phone } } });
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json().id).not.toBe(cardId);
  });

  it('keeps the erased card\'s device registrations for late devices, and retention removes them 30 days after the erasure', async () => {
    const db = t.database.handle.db;
    // Another card's registration, which must stay.
    const otherCard = await db.selectFrom('card').select(['id', 'apple_serial', 'apple_auth_token']).where('program_id', '=', shop.program.id).where('status', '=', 'active').executeTakeFirstOrThrow();
    await register(t, 'privacy-device-2', { id: otherCard.id, serial: otherCard.apple_serial, token: otherCard.apple_auth_token, auth: { authorization: `ApplePass ${otherCard.apple_auth_token}` } }, pushToken(0xb0b));
    const serials = async () => (await db.selectFrom('apple_registration').select('serial_number').execute()).map((r) => r.serial_number);
    await pruneExpiredData(db, new Date(Date.now() + 29 * 86_400_000), { idempotencyDays: 3650 });
    expect(await serials()).toContain(before.apple_serial);
    await pruneExpiredData(db, new Date(Date.now() + 31 * 86_400_000), { idempotencyDays: 3650 });
    expect(await serials()).not.toContain(before.apple_serial);
    expect(await serials()).toContain(otherCard.apple_serial);
  });
});
