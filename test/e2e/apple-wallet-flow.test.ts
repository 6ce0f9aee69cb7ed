import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, createProgramWithKeys, waitFor, type TestApp } from '../support/app.js';
import { passJsonOf, verifyPkpassWithOpenssl } from '../support/pkpass.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { waitForCardJobsIdle } from '../support/apple-device.js';

// The Apple Wallet path end to end, over HTTP, with the real pass signer and the real APNs client
// talking HTTP/2 TLS to a local APNs stand-in (issue #2's end-to-end test; reference 8.4).
describe(`Apple Wallet end to end (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('issues a card, serves a verified pass, registers, pushes on change, serves the new pass, and forgets dead tokens', async () => {
    const { app, apnsStandIn } = t;
    const { as } = await createProgramWithKeys(app, 'coffee');
    const ptid = t.material.passTypeIdentifier;
    const pushToken = 'a'.repeat(64);
    const device = 'device-0001';

    // 1. Issue a card.
    const issued = await app.inject({
      method: 'POST',
      url: '/api/v1/cards',
      headers: as('pos'),
      payload: { holder: { name: 'Мария Иванова', phone: '+7 916 123-45-67' } },
    });
    expect(issued.statusCode).toBe(201);
    const card = issued.json();
    expect(card.balance).toBe(1000);

    // 2. Download and verify the pass.
    const download = await app.inject({ method: 'GET', url: new URL(card.applePassUrl).pathname });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-type']).toBe('application/vnd.apple.pkpass');
    expect(verifyPkpassWithOpenssl(download.rawPayload, path.join(t.certDir, 'root.pem'))).toEqual({ ok: true });
    const pass = passJsonOf(download.rawPayload);
    expect(pass.passTypeIdentifier).toBe(ptid);
    expect(pass.webServiceURL).toBe('https://wallet.test/apple');
    expect(JSON.stringify(pass.storeCard)).toContain('1000');
    const serial: string = pass.serialNumber;
    const auth = { authorization: `ApplePass ${pass.authenticationToken}` };
    const registrationUrl = `/apple/v1/devices/${device}/registrations/${ptid}/${serial}`;

    // Jobs from the enrollment (welcome bonus) finish before the device exists, so every push the
    // stand-in sees from here on is caused by what follows.
    await waitForCardJobsIdle(t);

    // 3. The device registers.
    const registered = await app.inject({ method: 'POST', url: registrationUrl, headers: auth, payload: { pushToken } });
    expect(registered.statusCode).toBe(201);
    const list = await app.inject({ method: 'GET', url: `/apple/v1/devices/${device}/registrations/${ptid}` });
    expect(list.statusCode).toBe(200);
    const { serialNumbers, lastUpdated } = list.json();
    expect(serialNumbers).toEqual([serial]);
    expect(typeof lastUpdated).toBe('string');
    const firstFetch = await app.inject({ method: 'GET', url: `/apple/v1/passes/${ptid}/${serial}`, headers: auth });
    expect(firstFetch.statusCode).toBe(200);
    const unchanged = await app.inject({ method: 'GET', url: `/apple/v1/devices/${device}/registrations/${ptid}?passesUpdatedSince=${lastUpdated}` });
    expect(unchanged.statusCode).toBe(204);
    expect(apnsStandIn.received).toHaveLength(0);

    // 4. The balance changes: exactly one push reaches the device's token.
    const adjusted = await app.inject({
      method: 'POST',
      url: `/api/v1/cards/${card.id}/adjustments`,
      headers: { ...as('admin'), 'idempotency-key': 'adj-1' },
      payload: { points: 250, reason: 'goodwill' },
    });
    expect(adjusted.statusCode).toBe(201);
    expect(adjusted.json().balance).toBe(1250);
    await waitForCardJobsIdle(t);
    expect(apnsStandIn.received).toHaveLength(1);
    expect(apnsStandIn.received[0]).toMatchObject({ path: `/3/device/${pushToken}`, topic: ptid, body: '{}', priority: '10' });

    // 5. The device lists the changed serial with a later tag, then fetches the new pass.
    const changed = await app.inject({ method: 'GET', url: `/apple/v1/devices/${device}/registrations/${ptid}?passesUpdatedSince=${lastUpdated}` });
    expect(changed.statusCode).toBe(200);
    expect(changed.json().serialNumbers).toEqual([serial]);
    expect(BigInt(changed.json().lastUpdated)).toBeGreaterThan(BigInt(lastUpdated));
    const fetched = await app.inject({ method: 'GET', url: `/apple/v1/passes/${ptid}/${serial}`, headers: auth });
    expect(fetched.statusCode).toBe(200);
    expect(fetched.headers['content-type']).toBe('application/vnd.apple.pkpass');
    expect(verifyPkpassWithOpenssl(fetched.rawPayload, path.join(t.certDir, 'root.pem'))).toEqual({ ok: true });
    const newPass = passJsonOf(fetched.rawPayload);
    expect(JSON.stringify(newPass.storeCard)).toContain('1250');
    expect(newPass.serialNumber).toBe(serial);
    expect(newPass.authenticationToken).toBe(pass.authenticationToken);
    const lastModified = fetched.headers['last-modified'] as string;
    expect(new Date(lastModified).getTime()).toBeGreaterThan(new Date(firstFetch.headers['last-modified'] as string).getTime());

    // 6. Refetch with If-Modified-Since: 304, no body.
    const notModified = await app.inject({
      method: 'GET',
      url: `/apple/v1/passes/${ptid}/${serial}`,
      headers: { ...auth, 'if-modified-since': lastModified },
    });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBe('');

    // 7. APNs says the token is gone (410 + timestamp): the registration is removed.
    apnsStandIn.deadTokens.set(pushToken, Date.now() + 1000);
    const again = await app.inject({
      method: 'POST',
      url: `/api/v1/cards/${card.id}/adjustments`,
      headers: { ...as('admin'), 'idempotency-key': 'adj-2' },
      payload: { points: -50, reason: 'correction' },
    });
    expect(again.statusCode).toBe(201);
    await waitFor(() => apnsStandIn.received.length >= 2, { what: 'the second push' });
    await waitFor(
      async () => (await app.inject({ method: 'GET', url: `/apple/v1/devices/${device}/registrations/${ptid}` })).statusCode === 204,
      { what: 'the registration to be removed' },
    );
    const rows = await t.database.handle.db.selectFrom('apple_registration').selectAll().execute();
    expect(rows).toHaveLength(0);
    // The install funnel saw the install and, with the last device gone, the removal.
    const events = await t.database.handle.db.selectFrom('wallet_event').select(['wallet', 'kind']).where('card_id', '=', card.id).orderBy('id').execute();
    expect(events).toEqual([
      { wallet: 'apple', kind: 'installed' },
      { wallet: 'apple', kind: 'removed' },
    ]);
  });
});
