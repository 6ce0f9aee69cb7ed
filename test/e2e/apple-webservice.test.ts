import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import {
  adjustOk,
  cardRow,
  issueCard,
  listUrl,
  passUrl,
  register,
  registrations,
  registrationUrl,
  type IssuedCard,
  type RoleHeaders,
} from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf, verifyPkpassWithOpenssl } from '../support/pkpass.js';

// The PassKit web service over HTTP: reference section 1 and the checklist in section 7
// ("Register", "Unregister", "List", "Get pass"). Log and Push are in apple-webservice-log/-push.
describe(`PassKit web service (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let ptid: string;
  let as: RoleHeaders;
  beforeAll(async () => {
    t = await startTestApp();
    ptid = t.material.passTypeIdentifier;
    ({ as } = await createProgramWithKeys(t.app, 'webservice'));
  });
  afterAll(async () => {
    await t?.close();
  });

  const OTHER_PTID = 'pass.com.example.other';
  const TOKEN_A = 'a'.repeat(64);
  const TOKEN_B = 'b'.repeat(64);

  /** Every way to be unauthorized for `card`'s pass at `ptid`/`serial` (checklist "Register" item 1). */
  /** The token with its last character changed (a token that already ends in "x" gets "y"; "…x" → "…x" was the right token). */
  const wrongToken = (token: string) => `${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`;

  function unauthorizedVariants(card: IssuedCard, other: IssuedCard) {
    return [
      { name: 'no Authorization', serial: card.serial, type: ptid, headers: {} as Record<string, string> },
      { name: 'Bearer scheme with the right token', serial: card.serial, type: ptid, headers: { authorization: `Bearer ${card.token}` } },
      { name: 'bare token without a scheme', serial: card.serial, type: ptid, headers: { authorization: card.token } },
      { name: 'ApplePass with nothing after it', serial: card.serial, type: ptid, headers: { authorization: 'ApplePass ' } },
      { name: 'wrong token', serial: card.serial, type: ptid, headers: { authorization: `ApplePass ${wrongToken(card.token)}` } },
      { name: "another pass's token", serial: card.serial, type: ptid, headers: other.auth },
      { name: 'unknown serial', serial: 'no-such-serial-000', type: ptid, headers: card.auth },
      { name: 'wrong passTypeIdentifier', serial: card.serial, type: OTHER_PTID, headers: card.auth },
    ];
  }

  describe('Register', () => {
    let card: IssuedCard;
    let other: IssuedCard;
    beforeAll(async () => {
      card = await issueCard(t, as);
      other = await issueCard(t, as);
    });

    it('answers 401 with an empty body, and stores nothing, for every bad credential', async () => {
      for (const v of unauthorizedVariants(card, other)) {
        const res = await t.app.inject({
          method: 'POST',
          url: registrationUrl('dev-reg-401', v.type, v.serial),
          headers: v.headers,
          payload: { pushToken: TOKEN_A },
        });
        expect({ variant: v.name, status: res.statusCode, body: res.body }).toEqual({ variant: v.name, status: 401, body: '' });
      }
      expect(await registrations(t, { device: 'dev-reg-401' })).toEqual([]);
    });

    it('answers 401 before validating the body (wrong token + missing or invalid pushToken)', async () => {
      const wrong = { authorization: `ApplePass ${other.token}` };
      for (const payload of [{}, { pushToken: '' }, { pushToken: 'not a token!' }, { pushToken: { a: 1 } }]) {
        const res = await t.app.inject({ method: 'POST', url: registrationUrl('dev-reg-401', ptid, card.serial), headers: wrong, payload });
        expect({ payload, status: res.statusCode }).toEqual({ payload, status: 401 });
      }
      const noBody = await t.app.inject({ method: 'POST', url: registrationUrl('dev-reg-401', ptid, card.serial) });
      expect(noBody.statusCode).toBe(401);
    });

    it('first POST → 201 and stores (device, ptid, serial, pushToken); repeat → 200 and replaces the push token', async () => {
      const device = 'dev-reg-1';
      const url = registrationUrl(device, ptid, card.serial);
      const first = await t.app.inject({ method: 'POST', url, headers: card.auth, payload: { pushToken: TOKEN_A } });
      expect(first.statusCode).toBe(201);
      expect(first.body).toBe('');
      const stored = await registrations(t, { device });
      expect(stored).toHaveLength(1);
      expect(stored[0]).toMatchObject({ device_library_identifier: device, pass_type_identifier: ptid, serial_number: card.serial, push_token: TOKEN_A });

      const repeat = await t.app.inject({ method: 'POST', url, headers: card.auth, payload: { pushToken: TOKEN_B } });
      expect(repeat.statusCode).toBe(200);
      expect(repeat.body).toBe('');
      const replaced = await registrations(t, { device });
      expect(replaced).toHaveLength(1);
      expect(replaced[0]).toMatchObject({ serial_number: card.serial, push_token: TOKEN_B });
      expect(replaced[0]!.updated_at.getTime()).toBeGreaterThanOrEqual(stored[0]!.updated_at.getTime());
      expect(await registrations(t, { pushToken: TOKEN_A, device })).toEqual([]);

      // Same token again: still 200, still one row.
      const same = await t.app.inject({ method: 'POST', url, headers: card.auth, payload: { pushToken: TOKEN_B } });
      expect(same.statusCode).toBe(200);
      expect(await registrations(t, { device })).toHaveLength(1);

      // The same device registering a second pass is a new registration (201), the first one stays.
      const second = await t.app.inject({
        method: 'POST',
        url: registrationUrl(device, ptid, other.serial),
        headers: other.auth,
        payload: { pushToken: TOKEN_B },
      });
      expect(second.statusCode).toBe(201);
      expect((await registrations(t, { device })).map((r) => r.serial_number).sort()).toEqual([card.serial, other.serial].sort());
    });

    it('missing or invalid pushToken → 400 problem (not 500), nothing stored', async () => {
      const device = 'dev-reg-400';
      const url = registrationUrl(device, ptid, card.serial);
      const bodies: { name: string; payload?: string }[] = [
        { name: 'empty object', payload: '{}' },
        { name: 'empty string token', payload: '{"pushToken":""}' },
        { name: 'token with spaces and punctuation', payload: '{"pushToken":"not a token!"}' },
        { name: 'token is an object', payload: '{"pushToken":{"a":1}}' },
        { name: 'token is null', payload: '{"pushToken":null}' },
        // Fastify's validator coerces scalars: these must not become the stored tokens "12345", "true", "abc".
        { name: 'token is a number', payload: '{"pushToken":12345}' },
        { name: 'token is a boolean', payload: '{"pushToken":true}' },
        { name: 'token is an array', payload: '{"pushToken":["abc"]}' },
        { name: 'token too long', payload: JSON.stringify({ pushToken: 'a'.repeat(1000) }) },
        { name: 'body is null', payload: 'null' },
        { name: 'body is an array', payload: '[]' },
        { name: 'no body', payload: undefined },
        { name: 'empty body', payload: '' },
      ];
      for (const b of bodies) {
        const res = await t.app.inject({
          method: 'POST',
          url,
          headers: { ...card.auth, 'content-type': 'application/json' },
          ...(b.payload === undefined ? {} : { payload: b.payload }),
        });
        expect({ body: b.name, status: res.statusCode, type: res.headers['content-type'] }).toEqual({
          body: b.name,
          status: 400,
          type: expect.stringMatching(/^application\/problem\+json(;|$)/),
        });
        expect(res.json()).toMatchObject({ status: 400, code: 'validation_failed' });
      }
      const invalidJson = await t.app.inject({
        method: 'POST',
        url,
        headers: { ...card.auth, 'content-type': 'application/json' },
        payload: '{"pushToken":',
      });
      expect(invalidJson.statusCode).toBe(400);
      expect(invalidJson.headers['content-type']).toMatch(/^application\/problem\+json(;|$)/);
      expect(invalidJson.json()).toMatchObject({ status: 400, code: 'invalid_json' });
      expect(await registrations(t, { device })).toEqual([]);
    });

    it('oversized body → 413 problem, nothing stored', async () => {
      const device = 'dev-reg-413';
      const res = await t.app.inject({
        method: 'POST',
        url: registrationUrl(device, ptid, card.serial),
        headers: { ...card.auth, 'content-type': 'application/json' },
        payload: JSON.stringify({ pushToken: TOKEN_A, padding: 'x'.repeat(100_000) }),
      });
      expect(res.statusCode).toBe(413);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json(;|$)/);
      expect(res.json()).toMatchObject({ status: 413, code: 'body_too_large' });
      expect(await registrations(t, { device })).toEqual([]);
    });

    it('is routed when the device calls //v1/... (webServiceURL with a trailing slash)', async () => {
      const device = 'dev-reg-slash';
      const res = await t.app.inject({
        method: 'POST',
        url: `/apple//v1/devices/${device}/registrations/${ptid}/${card.serial}`,
        headers: card.auth,
        payload: { pushToken: TOKEN_A },
      });
      expect(res.statusCode).toBe(201);
      expect(await registrations(t, { device })).toHaveLength(1);
    });
  });

  describe('Unregister', () => {
    let card: IssuedCard;
    let other: IssuedCard;
    beforeAll(async () => {
      card = await issueCard(t, as);
      other = await issueCard(t, as);
    });

    it('answers 401 for every bad credential and keeps the registration', async () => {
      const device = 'dev-unreg-401';
      await register(t, device, card, TOKEN_A);
      for (const v of unauthorizedVariants(card, other)) {
        const res = await t.app.inject({ method: 'DELETE', url: registrationUrl(device, v.type, v.serial), headers: v.headers });
        expect({ variant: v.name, status: res.statusCode, body: res.body }).toEqual({ variant: v.name, status: 401, body: '' });
      }
      expect(await registrations(t, { device })).toHaveLength(1);
    });

    it('valid DELETE → 200 and the row is removed; a repeat → 200; the device is gone with its last registration', async () => {
      const device = 'dev-unreg-1';
      await register(t, device, card, TOKEN_A);
      await register(t, device, other, TOKEN_A);
      await register(t, 'dev-unreg-bystander', card, TOKEN_B);
      const url = registrationUrl(device, ptid, card.serial);

      const wrongToken = await t.app.inject({ method: 'DELETE', url, headers: other.auth });
      expect(wrongToken.statusCode).toBe(401);
      expect(await registrations(t, { device })).toHaveLength(2);

      const first = await t.app.inject({ method: 'DELETE', url, headers: card.auth });
      expect(first.statusCode).toBe(200);
      expect(first.body).toBe('');
      expect((await registrations(t, { device })).map((r) => r.serial_number)).toEqual([other.serial]);
      // Another device's registration of the same pass is untouched.
      expect(await registrations(t, { device: 'dev-unreg-bystander' })).toHaveLength(1);

      const repeat = await t.app.inject({ method: 'DELETE', url, headers: card.auth });
      expect(repeat.statusCode).toBe(200);
      expect(repeat.body).toBe('');

      // The last registration goes: nothing is left of the device (there is no device table; the list is empty).
      const last = await t.app.inject({ method: 'DELETE', url: registrationUrl(device, ptid, other.serial), headers: other.auth });
      expect(last.statusCode).toBe(200);
      expect(await registrations(t, { device })).toEqual([]);
      const list = await t.app.inject({ method: 'GET', url: listUrl(device, ptid) });
      expect(list.statusCode).toBe(204);
    });

    it('accepts DELETE with Content-Type: application/json and an empty body', async () => {
      const device = 'dev-unreg-json';
      await register(t, device, card, TOKEN_A);
      const res = await t.app.inject({
        method: 'DELETE',
        url: registrationUrl(device, ptid, card.serial),
        headers: { ...card.auth, 'content-type': 'application/json' },
        payload: '',
      });
      expect(res.statusCode).toBe(200);
      expect(await registrations(t, { device })).toEqual([]);
    });

    it('accepts DELETE with Content-Type: application/json and an empty body on a real socket, and //v1', async () => {
      const device = 'dev-unreg-socket';
      await register(t, device, card, TOKEN_A);
      // The app stays listening until afterAll's close().
      const address = new URL(await t.app.listen({ port: 0, host: '127.0.0.1' }));
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          {
            host: address.hostname,
            port: address.port,
            method: 'DELETE',
            path: `/apple//v1/devices/${device}/registrations/${ptid}/${card.serial}`,
            headers: { ...card.auth, 'content-type': 'application/json', 'content-length': '0' },
          },
          (response) => {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (body += chunk));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(res).toEqual({ status: 200, body: '' });
      expect(await registrations(t, { device })).toEqual([]);
    });
  });

  describe('List', () => {
    let cardA: IssuedCard;
    let cardB: IssuedCard;
    let cardC: IssuedCard;
    const device = 'dev-list-1';
    const otherDevice = 'dev-list-2';

    beforeAll(async () => {
      cardA = await issueCard(t, as);
      cardB = await issueCard(t, as);
      cardC = await issueCard(t, as);
      await register(t, device, cardA, TOKEN_A);
      await register(t, device, cardB, TOKEN_A);
      await register(t, otherDevice, cardC, TOKEN_B);
      // A registration of this device for another pass type (e.g. written by an earlier
      // deployment with another certificate): it must never leak into this pass type's list.
      await t.database.handle.db
        .insertInto('apple_registration')
        .values({ device_library_identifier: device, pass_type_identifier: OTHER_PTID, serial_number: cardC.serial, push_token: TOKEN_A })
        .execute();
    });

    const maxTag = async (...cards: IssuedCard[]) =>
      String(Math.max(...(await Promise.all(cards.map((c) => cardRow(t, c.serial)))).map((r) => Number(r.update_tag))));

    it('needs no Authorization and answers JSON: all serials of this device and pass type, lastUpdated a string', async () => {
      const res = await t.app.inject({ method: 'GET', url: listUrl(device, ptid) });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['lastUpdated', 'serialNumbers']);
      expect([...body.serialNumbers].sort()).toEqual([cardA.serial, cardB.serial].sort());
      expect(typeof body.lastUpdated).toBe('string');
      expect(body.lastUpdated).toBe(await maxTag(cardA, cardB));
      // An Authorization header (even a wrong one) changes nothing.
      const withAuth = await t.app.inject({ method: 'GET', url: listUrl(device, ptid), headers: { authorization: 'ApplePass wrong-token-0000000000' } });
      expect(withAuth.statusCode).toBe(200);
      expect(withAuth.json()).toEqual(body);
    });

    it('returned tag with nothing changed → 204 with an empty body', async () => {
      const { lastUpdated } = (await t.app.inject({ method: 'GET', url: listUrl(device, ptid) })).json();
      const res = await t.app.inject({ method: 'GET', url: listUrl(device, ptid, lastUpdated) });
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
    });

    it('one of two passes changed → exactly that serial and a greater tag; then 204 again', async () => {
      const before = (await t.app.inject({ method: 'GET', url: listUrl(device, ptid) })).json();
      await adjustOk(t, as, cardB.id, 10);
      const res = await t.app.inject({ method: 'GET', url: listUrl(device, ptid, before.lastUpdated) });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.serialNumbers).toEqual([cardB.serial]);
      expect(typeof body.lastUpdated).toBe('string');
      expect(BigInt(body.lastUpdated)).toBeGreaterThan(BigInt(before.lastUpdated));
      expect(body.lastUpdated).toBe(String((await cardRow(t, cardB.serial)).update_tag));
      const again = await t.app.inject({ method: 'GET', url: listUrl(device, ptid, body.lastUpdated) });
      expect(again.statusCode).toBe(204);
      // A change to a pass this device did not register (cardC) is not its business.
      await adjustOk(t, as, cardC.id, 10);
      const unrelated = await t.app.inject({ method: 'GET', url: listUrl(device, ptid, body.lastUpdated) });
      expect(unrelated.statusCode).toBe(204);
    });

    it("never returns other devices' or other pass types' serials; unknown device or pass type → 204", async () => {
      const mine = (await t.app.inject({ method: 'GET', url: listUrl(device, ptid) })).json();
      expect(mine.serialNumbers).not.toContain(cardC.serial);
      const theirs = await t.app.inject({ method: 'GET', url: listUrl(otherDevice, ptid) });
      expect(theirs.statusCode).toBe(200);
      expect(theirs.json().serialNumbers).toEqual([cardC.serial]);
      expect(theirs.json().lastUpdated).toBe(await maxTag(cardC));

      const otherType = await t.app.inject({ method: 'GET', url: listUrl(device, OTHER_PTID) });
      expect(otherType.statusCode).toBe(204);
      expect(otherType.body).toBe('');
      const unknown = await t.app.inject({ method: 'GET', url: listUrl('dev-never-registered', ptid) });
      expect(unknown.statusCode).toBe(204);
      expect(unknown.body).toBe('');
      const unknownWithTag = await t.app.inject({ method: 'GET', url: listUrl('dev-never-registered', ptid, '1') });
      expect(unknownWithTag.statusCode).toBe(204);
    });

    it('garbage tags are treated as no tag, never 500', async () => {
      const all = (await t.app.inject({ method: 'GET', url: listUrl(device, ptid) })).json();
      const garbage = ['abc', '-1', '1e5', '1.5', '0x10', ' 1', '', '9'.repeat(16), '9'.repeat(2000), `1${'0'.repeat(300)}`, 'ü"\'<>'];
      for (const tag of garbage) {
        const res = await t.app.inject({ method: 'GET', url: listUrl(device, ptid, tag) });
        expect({ tag: tag.slice(0, 20), status: res.statusCode }).toEqual({ tag: tag.slice(0, 20), status: 200 });
        expect(res.json()).toEqual(all);
      }
    });

    it('is routed at //v1/...', async () => {
      const res = await t.app.inject({ method: 'GET', url: `/apple//v1/devices/${device}/registrations/${ptid}` });
      expect(res.statusCode).toBe(200);
      expect([...res.json().serialNumbers].sort()).toEqual([cardA.serial, cardB.serial].sort());
    });
  });

  describe('Get pass', () => {
    let card: IssuedCard;
    let other: IssuedCard;
    beforeAll(async () => {
      card = await issueCard(t, as);
      other = await issueCard(t, as);
    });

    const get = (headers: Record<string, string> = card.auth, method: 'GET' | 'HEAD' = 'GET', url = passUrl(ptid, card.serial)) =>
      t.app.inject({ method, url, headers });

    it('answers 401 with an empty body for every bad credential, GET and HEAD', async () => {
      for (const method of ['GET', 'HEAD'] as const) {
        for (const v of unauthorizedVariants(card, other)) {
          const res = await get(v.headers, method, passUrl(v.type, v.serial));
          expect({ method, variant: v.name, status: res.statusCode, body: res.body }).toEqual({ method, variant: v.name, status: 401, body: '' });
          expect(res.headers['last-modified']).toBeUndefined();
        }
      }
    });

    it('200: pkpass content type, Last-Modified = stored updated_at in whole seconds, no-cache, a valid signed pass of current data', async () => {
      const { balance } = await adjustOk(t, as, card.id, 77);
      const res = await get();
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/vnd.apple.pkpass');
      expect(res.headers['cache-control']).toBe('no-cache');
      const row = await cardRow(t, card.serial);
      expect(row.updated_at.getMilliseconds()).toBe(0);
      expect(res.headers['last-modified']).toBe(row.updated_at.toUTCString());
      expect(Number(res.headers['content-length'])).toBe(res.rawPayload.length);

      expect(verifyPkpassWithOpenssl(res.rawPayload, path.join(t.certDir, 'root.pem'))).toEqual({ ok: true });
      const pass = passJsonOf(res.rawPayload);
      expect(pass).toMatchObject({
        passTypeIdentifier: ptid,
        serialNumber: card.serial,
        authenticationToken: card.token,
        webServiceURL: 'https://wallet.test/apple',
      });
      const balanceField = pass.storeCard.primaryFields.find((f: { key: string }) => f.key === 'balance');
      expect(balanceField.value).toBe(balance);
      expect(Number(row.balance)).toBe(balance);
    });

    it('If-Modified-Since: equal or later → 304 without a body; older → 200; unparseable → 200', async () => {
      const first = await get();
      const lastModified = first.headers['last-modified'] as string;
      const lm = Date.parse(lastModified);

      const equal = await get({ ...card.auth, 'if-modified-since': lastModified });
      expect(equal.statusCode).toBe(304);
      expect(equal.body).toBe('');
      expect(equal.rawPayload.length).toBe(0);

      const later = await get({ ...card.auth, 'if-modified-since': new Date(lm + 3600_000).toUTCString() });
      expect(later.statusCode).toBe(304);
      expect(later.body).toBe('');

      const older = await get({ ...card.auth, 'if-modified-since': new Date(lm - 1000).toUTCString() });
      expect(older.statusCode).toBe(200);
      expect(older.headers['content-type']).toBe('application/vnd.apple.pkpass');
      expect(passJsonOf(older.rawPayload).serialNumber).toBe(card.serial);

      for (const garbage of ['garbage', '', '0', 'Mon, 99 Foo 2024 99:99:99 GMT']) {
        const res = await get({ ...card.auth, 'if-modified-since': garbage });
        expect({ garbage, status: res.statusCode }).toEqual({ garbage, status: 200 });
        expect(res.headers['content-type']).toBe('application/vnd.apple.pkpass');
      }

      // A wrong token never reaches the 304 shortcut.
      const unauthorized = await get({ authorization: `ApplePass ${other.token}`, 'if-modified-since': lastModified });
      expect(unauthorized.statusCode).toBe(401);
    });

    it('HEAD → 200 with the same headers and no body; HEAD with If-Modified-Since → 304', async () => {
      const full = await get();
      const head = await get(card.auth, 'HEAD');
      expect(head.statusCode).toBe(200);
      expect(head.body).toBe('');
      expect(head.rawPayload.length).toBe(0);
      for (const name of ['content-type', 'last-modified', 'cache-control']) {
        expect({ name, value: head.headers[name] }).toEqual({ name, value: full.headers[name] });
      }
      expect(head.headers['content-type']).toBe('application/vnd.apple.pkpass');
      const headNotModified = await get({ ...card.auth, 'if-modified-since': full.headers['last-modified'] as string }, 'HEAD');
      expect(headNotModified.statusCode).toBe(304);
    });

    it('is routed at //v1/...', async () => {
      const res = await get(card.auth, 'GET', `/apple//v1/passes/${ptid}/${card.serial}`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/vnd.apple.pkpass');
      expect(passJsonOf(res.rawPayload).serialNumber).toBe(card.serial);
    });

    it('two changes within the same second never make a device that fetched after the first get 304 after the second', async () => {
      // Four changes back to back (well within a few seconds): after each, a device that holds the
      // previous Last-Modified must get 200 with the new data and a strictly later Last-Modified.
      let previous = await get();
      let previousLm = previous.headers['last-modified'] as string;
      for (let i = 1; i <= 4; i++) {
        const { balance } = await adjustOk(t, as, card.id, i);
        const res = await get({ ...card.auth, 'if-modified-since': previousLm });
        expect({ change: i, status: res.statusCode }).toEqual({ change: i, status: 200 });
        const lm = res.headers['last-modified'] as string;
        expect(Date.parse(lm)).toBeGreaterThan(Date.parse(previousLm));
        expect(lm).toBe((await cardRow(t, card.serial)).updated_at.toUTCString());
        expect(passJsonOf(res.rawPayload).storeCard.primaryFields[0].value).toBe(balance);
        const settled = await get({ ...card.auth, 'if-modified-since': lm });
        expect(settled.statusCode).toBe(304);
        previous = res;
        previousLm = lm;
      }
    });
  });
});
