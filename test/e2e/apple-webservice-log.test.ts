import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// POST {webServiceURL}/v1/log: unauthenticated device error reports (reference 1.2 "Log",
// section 6 "/v1/log spam", checklist "Log"). The app logs through a stream we read.
describe(`PassKit web service: log endpoint (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  const logLines: Record<string, unknown>[] = [];
  let rawLog = '';

  beforeAll(async () => {
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        const text = chunk.toString('utf8');
        rawLog += text;
        for (const line of text.split('\n')) if (line.trim() !== '') logLines.push(JSON.parse(line));
        callback();
      },
    });
    t = await startTestApp({ logger: pino({ level: 'info' }, stream) });
  });
  afterAll(async () => {
    await t?.close();
  });

  const deviceLogs = () => logLines.filter((l) => 'appleDeviceLog' in l).map((l) => l.appleDeviceLog as string);
  let ipCounter = 0;
  /** Each test posts from its own client address, so the per-client rate limit is the rate-limit test's alone. */
  const nextIp = () => `10.1.0.${++ipCounter}`;

  it('accepts {"logs":[…]} without authentication → 200 with an empty body, and logs each line', async () => {
    const remoteAddress = nextIp();
    const lines = [
      `Get pass task (pass type pass.x, serial 1, if-modified-since (null); with web service url https://wallet.test/apple) encountered error: Unexpected response code 500 ${Date.now()}`,
      `Register task encountered error: Server returned 401 ${Date.now()}`,
    ];
    const res = await t.app.inject({ method: 'POST', url: '/apple/v1/log', remoteAddress, payload: { logs: lines } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(deviceLogs()).toEqual(expect.arrayContaining(lines));

    // Any Authorization header is irrelevant, and //v1 is routed.
    const withAuth = await t.app.inject({
      method: 'POST',
      url: '/apple//v1/log',
      remoteAddress,
      headers: { authorization: 'ApplePass not-a-real-token-000000' },
      payload: { logs: ['with auth'] },
    });
    expect(withAuth.statusCode).toBe(200);
    const empty = await t.app.inject({ method: 'POST', url: '/apple/v1/log', remoteAddress, payload: { logs: [] } });
    expect(empty.statusCode).toBe(200);
  });

  it('truncates a long line in what gets logged', async () => {
    const remoteAddress = nextIp();
    const head = `HEAD-${Date.now()}-`.padEnd(400, 'h');
    const long = `${head}${'m'.repeat(600)}TAIL-MARKER-${Date.now()}`.padEnd(4000, 't');
    const res = await t.app.inject({ method: 'POST', url: '/apple/v1/log', remoteAddress, payload: { logs: [long] } });
    expect(res.statusCode).toBe(200);
    const logged = deviceLogs().filter((l) => l.startsWith(head));
    expect(logged).toHaveLength(1);
    expect(logged[0]!.length).toBeLessThan(long.length);
    expect(long.startsWith(logged[0]!)).toBe(true);
    // Nothing past the cut reaches the log output in any other field either.
    expect(rawLog).not.toContain('TAIL-MARKER');
  });

  it('oversized body (> 64 KB) → 413 problem, nothing logged', async () => {
    const remoteAddress = nextIp();
    const marker = `OVERSIZED-${Date.now()}`;
    const logs = Array.from({ length: 20 }, (_, i) => `${marker}-${i}-`.padEnd(3500, 'x')); // ~70 KB
    const payload = JSON.stringify({ logs });
    expect(Buffer.byteLength(payload)).toBeGreaterThan(64 * 1024);
    const res = await t.app.inject({
      method: 'POST',
      url: '/apple/v1/log',
      remoteAddress,
      headers: { 'content-type': 'application/json' },
      payload,
    });
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json(;|$)/);
    expect(res.json()).toMatchObject({ status: 413, code: 'body_too_large' });
    expect(rawLog).not.toContain(marker);
  });

  it('invalid JSON → 400 problem', async () => {
    const remoteAddress = nextIp();
    for (const payload of ['{"logs": [', 'logs=abc', '{logs: []}']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/apple/v1/log',
        remoteAddress,
        headers: { 'content-type': 'application/json' },
        payload,
      });
      expect({ payload, status: res.statusCode }).toEqual({ payload, status: 400 });
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json(;|$)/);
      expect(res.json()).toMatchObject({ status: 400, code: 'invalid_json' });
    }
  });

  it('enforces a per-client rate limit: the request after the limit → 429 with Retry-After; other clients unaffected', async () => {
    const remoteAddress = nextIp();
    const post = (ip: string) => t.app.inject({ method: 'POST', url: '/apple/v1/log', remoteAddress: ip, payload: { logs: ['rate'] } });
    const first = await post(remoteAddress);
    expect(first.statusCode).toBe(200);
    const limit = Number(first.headers['x-ratelimit-limit']);
    expect(Number.isInteger(limit) && limit > 0).toBe(true);
    expect(Number(first.headers['x-ratelimit-remaining'])).toBe(limit - 1);
    for (let i = 2; i <= limit; i++) {
      const res = await post(remoteAddress);
      expect({ request: i, status: res.statusCode }).toEqual({ request: i, status: 200 });
    }
    const over = await post(remoteAddress);
    expect(over.statusCode).toBe(429);
    expect(over.headers['content-type']).toMatch(/^application\/problem\+json(;|$)/);
    expect(over.json()).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    const elsewhere = await post(nextIp());
    expect(elsewhere.statusCode).toBe(200);
  });
});
