import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

/**
 * The input defects reproduced in issue #11, one by one (the fuzz test in test/faults covers the
 * whole document): each is now a 4xx problem that changes nothing.
 */
function expectProblem(res: LightMyRequestResponse, status: number, code?: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String), requestId: expect.any(String) });
  if (code) expect(body.code).toBe(code);
  return body;
}

describe(`edge input: no 5xx, no coercion, problem details (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let as: (role: 'admin' | 'marketer' | 'pos') => Record<string, string>;
  let cardId: string;
  let webhookId: string;

  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false, env: { METRICS_TOKEN: 'metrics-token-0123456789' } });
    ({ as } = await createProgramWithKeys(t.app, 'edge-input'));
    const card = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Edge', phone: '+79160000042' } } });
    cardId = card.json().id;
    webhookId = (await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: as('admin'), payload: { url: 'https://example.com/h', events: ['card.issued'] } })).json().id;
  });
  afterAll(async () => {
    await t?.close();
  });

  const purchases = () => t.database.handle.db.selectFrom('purchase').select('id').where('card_id', '=', cardId).execute();

  it('takes JSON body types as they are: "100", true and [100] are no amount', async () => {
    for (const amount of ['100', true, [100], '1e3', null]) {
      const res = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: as('pos'), payload: { amount } });
      expectProblem(res, 400, 'validation_failed');
    }
    expect(await purchases()).toEqual([]);
    // …while query strings, text on the wire, are still read as numbers.
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/history?limit=5`, headers: as('pos') })).statusCode).toBe(200);
  });

  it('refuses NUL characters and unpaired surrogates in bodies, paths, queries and headers with 400', async () => {
    const bodies = ['{"holder":{"name":"a\\u0000b","phone":"+79160000043"}}', '{"holder":{"name":"\\ud800","phone":"+79160000043"}}', '{"holder":{"name":"x","phone":"+79160000043"},"source":"\\udfff"}'];
    for (const payload of bodies) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: { ...as('pos'), 'content-type': 'application/json' }, payload });
      expectProblem(res, 400, 'invalid_characters');
    }
    expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/cards?query=%00', headers: as('pos') }), 400, 'invalid_characters');
    expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/cards/by-barcode/12%0034', headers: as('pos') }), 400, 'invalid_characters');
    expectProblem(
      await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: { ...as('pos'), 'idempotency-key': 'k\u0000' }, payload: { amount: 100 } }),
      400,
      'invalid_characters',
    );
    expect(await purchases()).toEqual([]);
    const cards = await t.database.handle.db.selectFrom('card').select('id').where('phone', '=', '+79160000043').execute();
    expect(cards).toEqual([]);
  });

  it('checks Apple paths before the database: /apple/v1/passes/{type}/%00 is a 400 without any auth', async () => {
    const ptid = t.material.passTypeIdentifier;
    expectProblem(await t.app.inject({ method: 'GET', url: `/apple/v1/passes/${ptid}/%00` }), 400);
    expectProblem(await t.app.inject({ method: 'GET', url: `/apple/v1/passes/${ptid}/a%20b` }), 400, 'validation_failed');
    expectProblem(await t.app.inject({ method: 'POST', url: `/apple/v1/devices/d%00/registrations/${ptid}/x`, payload: { pushToken: 'a'.repeat(64) } }), 400);
  });

  it('bounds numbers and dates: deliveries?before=1e20, stats?from=0000-01-01, limit=Infinity', async () => {
    expectProblem(await t.app.inject({ method: 'GET', url: `/api/v1/webhooks/${webhookId}/deliveries?before=1e20`, headers: as('admin') }), 400);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/webhooks/${webhookId}/deliveries?before=9007199254740991`, headers: as('admin') })).statusCode).toBe(200);
    for (const query of ['from=0000-01-01', 'to=9999-12-31', 'from=2026-02-31', 'from=1e20']) {
      expectProblem(await t.app.inject({ method: 'GET', url: `/api/v1/stats?${query}`, headers: as('admin') }), 400);
    }
    for (const limit of ['Infinity', '1e400', '-Infinity']) {
      expectProblem(await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/history?limit=${limit}`, headers: as('pos') }), 400);
    }
    expectProblem(
      await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Old', phone: '+79160000044', birthday: '0000-01-01' } } }),
      400,
      'validation_failed',
    );
    expectProblem(
      await t.app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: as('admin'), payload: { name: 'c', message: { ru: 'a', en: 'a' }, audience: { all: true }, scheduledAt: '0000-01-01T00:00:00Z' } }),
      400,
    );
  });

  it('answers every error as problem details: 404, 413, 414, 415, bad URLs, invalid JSON', async () => {
    expectProblem(await t.app.inject({ method: 'GET', url: '/nope' }), 404, 'route_not_found');
    expectProblem(await t.app.inject({ method: 'PUT', url: '/api/v1/cards', headers: as('pos'), payload: {} }), 404, 'route_not_found');
    expectProblem(await t.app.inject({ method: 'GET', url: `/api/v1/cards/${'a'.repeat(300)}`, headers: as('pos') }), 414, 'uri_too_long');
    expectProblem(await t.app.inject({ method: 'GET', url: `/c/${'a'.repeat(5000)}` }), 414, 'uri_too_long');
    expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/cards/%E0%A4%A', headers: as('pos') }), 400, 'invalid_url');
    expectProblem(
      await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: { ...as('pos'), 'content-type': 'application/json' }, payload: JSON.stringify({ pad: 'x'.repeat(300_000) }) }),
      413,
      'body_too_large',
    );
    expectProblem(await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: { ...as('pos'), 'content-type': 'application/xml' }, payload: '<card/>' }), 415, 'unsupported_media_type');
    expectProblem(
      await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: { ...as('pos'), 'content-type': 'application/json; charset=utf-16' }, payload: '{}' }),
      415,
      'unsupported_media_type',
    );
    expectProblem(await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: { ...as('pos'), 'content-type': 'application/json' }, payload: '{"holder":' }), 400, 'invalid_json');
    expectProblem(
      await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: { ...as('pos'), 'content-type': 'application/json' }, payload: `${'['.repeat(1000)}${']'.repeat(1000)}` }),
      400,
      'too_deeply_nested',
    );
  });

  it("answers what Node's HTTP parser refuses as problem details too (real sockets)", async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (t.app.server.address() as AddressInfo).port;
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        let answer = '';
        const socket = connect(port, '127.0.0.1', () => socket.write(request));
        socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
        socket.on('close', () => resolve(answer));
        socket.on('error', reject);
      });
    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(garbage).toContain('Content-Type: application/problem+json');
    expect(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 400, code: 'bad_request' });
    const huge = await raw(`GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(huge.slice(huge.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 431, code: 'headers_too_large' });
  });

  // Without METRICS_TOKEN, /metrics is off in production (server-process.test.ts) and open in
  // development and test (the fuzz test reads it).
  it('serves /metrics only with METRICS_TOKEN as a bearer token', async () => {
    expectProblem(await t.app.inject({ method: 'GET', url: '/metrics' }), 401, 'unauthorized');
    const wrong = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer metrics-token-wrong-000000' } });
    expectProblem(wrong, 401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="metrics"');
    expectProblem(await t.app.inject({ method: 'GET', url: '/metrics', headers: as('admin') }), 401);
    const ok = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer metrics-token-0123456789' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('http_request_duration_seconds');
  });
});
