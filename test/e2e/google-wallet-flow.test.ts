import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, createProgramWithKeys, waitFor, type TestApp } from '../support/app.js';
import { signCallback } from '../support/google-fake.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Issue #4's end-to-end test, through HTTP with the real Google client talking to a local fake of
// the Wallet Objects API, its OAuth token endpoint and the callback issuer-keys endpoint:
// issue card → save link → save callback → purchase → the object's balance is patched once with a
// notification → four notifying changes in a day → the fourth is silent.
describe(`Google Wallet end to end (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ google: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('issues a skinny save link, records the save callback, and patches balance with at most 3 notifications a day', async () => {
    const { app } = t;
    const { fake, account, callbackKeys, issuerId } = t.google!;
    const { as } = await createProgramWithKeys(app, 'pizza', { design: { backgroundColor: '#aa2200', foregroundColor: '#ffffff', labelColor: '#ffeecc' } });
    const card = (
      await app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Пётр', phone: '+79163334455' } } })
    ).json();
    expect(card.googleSaveUrl).toBe(`https://wallet.test/c/${new URL(card.installUrl).pathname.split('/').pop()}/google`);

    // Save link: 302 to Google with a skinny RS256 JWT; the object exists before the link does.
    const link = await app.inject({ method: 'GET', url: new URL(card.googleSaveUrl).pathname });
    expect(link.statusCode).toBe(302);
    const location = String(link.headers.location);
    expect(location.startsWith('https://pay.google.com/gp/v/save/')).toBe(true);
    const token = location.slice('https://pay.google.com/gp/v/save/'.length);
    expect(token.length).toBeLessThanOrEqual(1800);
    const claims = jwt.verify(token, account.publicKeyPem, { algorithms: ['RS256'], audience: 'google', issuer: account.serviceAccount.client_email }) as any;
    expect(claims.typ).toBe('savetowallet');
    expect(Array.isArray(claims.origins)).toBe(true);
    const [{ id: objectId, classId }] = claims.payload.loyaltyObjects;
    expect(objectId.startsWith(`${issuerId}.`)).toBe(true);
    expect(fake.objects.get(objectId)).toMatchObject({ classId, state: 'ACTIVE', accountId: card.number, loyaltyPoints: { balance: { int: 1000 } } });
    expect(fake.objects.get(objectId)!.barcode).toMatchObject({ type: 'QR_CODE', value: card.number });
    expect(fake.classes.get(classId)).toMatchObject({ hexBackgroundColor: '#aa2200', callbackOptions: { url: 'https://wallet.test/google/callback' } });
    // A second click reuses the same object.
    const again = await app.inject({ method: 'GET', url: new URL(card.googleSaveUrl).pathname });
    expect(again.statusCode).toBe(302);
    expect(fake.callsTo('insertObject').filter((c) => c.status === 200)).toHaveLength(1);

    // The holder saves it: Google calls back (signed ECv2SigningOnly); duplicates and forgeries are handled.
    const saveEvent = signCallback({ keys: callbackKeys, issuerId, eventType: 'save', objectId, classId, nonce: 'nonce-1' });
    const saved = await app.inject({ method: 'POST', url: '/google/callback', payload: saveEvent });
    expect(saved.statusCode).toBe(200);
    expect(saved.json()).toEqual({ status: 'recorded' });
    expect((await app.inject({ method: 'POST', url: '/google/callback', payload: saveEvent })).json()).toEqual({ status: 'duplicate' });
    const forged = signCallback({ keys: callbackKeys, issuerId, eventType: 'save', objectId, classId, tamper: (m) => m.replace('save', 'del') });
    const forgedRes = await app.inject({ method: 'POST', url: '/google/callback', payload: forged });
    expect(forgedRes.statusCode).toBe(400);
    expect(forgedRes.headers['content-type']).toContain('application/problem+json');
    const expired = signCallback({ keys: callbackKeys, issuerId, eventType: 'del', objectId, classId, expTimeMillis: Date.now() - 1000 });
    expect((await app.inject({ method: 'POST', url: '/google/callback', payload: expired })).statusCode).toBe(400);
    const wrongIssuer = signCallback({ keys: callbackKeys, issuerId, eventType: 'del', objectId, classId, recipientId: '1111111111' });
    expect((await app.inject({ method: 'POST', url: '/google/callback', payload: wrongIssuer })).statusCode).toBe(400);
    const cardNow = (await app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}`, headers: as('pos') })).json();
    expect(cardNow.wallet.googleSaved).toBe(true);
    const events = await t.database.handle.db.selectFrom('wallet_event').selectAll().where('card_id', '=', card.id).execute();
    expect(events.map((e) => `${e.wallet}:${e.kind}`)).toEqual(['google:installed']);

    // Purchases: each balance change patches the object; the first three notify, the fourth is silent.
    const patches = () => fake.callsTo('patchObject').filter((c) => c.status === 200);
    let balance = 1000;
    for (let i = 1; i <= 4; i++) {
      const res = await app.inject({
        method: 'POST',
        url: `/api/v1/cards/${card.id}/purchases`,
        headers: { ...as('pos'), 'idempotency-key': `g-${i}` },
        payload: { amount: 100_000 },
      });
      expect(res.statusCode).toBe(201);
      balance = res.json().balance;
      await waitFor(() => (fake.objects.get(objectId)!.loyaltyPoints as any)?.balance?.int === balance, { what: `balance ${balance} at Google` });
      expect(patches()).toHaveLength(i);
    }
    const sent = patches().map((c) => (c.body as any).notifyPreference ?? null);
    expect(sent).toEqual(['NOTIFY_ON_UPDATE', 'NOTIFY_ON_UPDATE', 'NOTIFY_ON_UPDATE', null]);
    expect(fake.notificationsInWindow(objectId)).toBe(3);
    const counted = await t.database.handle.db.selectFrom('google_notification').selectAll().where('object_id', '=', objectId).execute();
    expect(counted).toHaveLength(3);
    // PATCHes carry the points, never a wiping full resource.
    expect(Object.keys(patches()[0].body as object)).toContain('loyaltyPoints');
    expect(Object.keys(patches()[0].body as object)).not.toContain('barcode');

    // A tier upgrade moves the object to the tier's class.
    const big = await app.inject({
      method: 'POST',
      url: `/api/v1/cards/${card.id}/purchases`,
      headers: { ...as('pos'), 'idempotency-key': 'g-big' },
      payload: { amount: 6_000_000 },
    });
    expect(big.json().tierChanged).toBe(true);
    await waitFor(() => fake.objects.get(objectId)!.classId !== classId, { what: 'the class change' });
    const newClassId = fake.objects.get(objectId)!.classId!;
    expect(newClassId).toMatch(/general/);
    expect(fake.classes.get(newClassId)).toBeDefined();

    // The holder removes the pass.
    const del = signCallback({ keys: callbackKeys, issuerId, eventType: 'del', objectId, classId: newClassId, nonce: 'nonce-2' });
    expect((await app.inject({ method: 'POST', url: '/google/callback', payload: del })).json()).toEqual({ status: 'recorded' });
    expect((await app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}`, headers: as('pos') })).json().wallet.googleSaved).toBe(false);
  });

  it('says Google is disabled where it is not configured', async () => {
    const plain = await startTestApp();
    try {
      const { as } = await createProgramWithKeys(plain.app, 'plain');
      const card = (await plain.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'A', phone: '+79160001122' } } })).json();
      expect(card.googleSaveUrl).toBeNull();
      const res = await plain.app.inject({ method: 'GET', url: `/c/${new URL(card.installUrl).pathname.split('/').pop()}/google` });
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('google_wallet_disabled');
    } finally {
      await plain.close();
    }
  });
});
