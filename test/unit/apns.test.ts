/**
 * The APNs sender against the local stand-in, over real HTTP/2 + TLS with client-certificate
 * authentication (reference section 8.3). Protocol rules: reference section 2.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  classifyPushOutcome,
  createApnsSender,
  isRetryablePushOutcome,
  parseRetryAfterMs,
  type ApnsSender,
  type ApnsSenderOptions,
  type PushOutcome,
} from '../../src/wallets/apple/apns.js';
import { startApnsStandIn, type ApnsStandIn, type ApnsStandInOptions } from '../support/apns-stand-in.js';
import { getTestCertificates } from '../support/test-certificates.js';

let pem: (file: string) => string;
let topic: string;

beforeAll(async () => {
  const certs = await getTestCertificates();
  pem = (file) => readFileSync(path.join(certs.dir, file), 'utf8');
  topic = certs.passTypeIdentifier;
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function token(): string {
  return randomBytes(32).toString('hex');
}

async function standIn(extra: Partial<ApnsStandInOptions> = {}): Promise<ApnsStandIn> {
  const s = await startApnsStandIn({
    keyPem: pem('apns-server.key'),
    certPem: pem('apns-server.pem'),
    caPem: pem('root.pem') + pem('wwdr.pem'),
    expectedTopic: topic,
    ...extra,
  });
  cleanups.push(() => s.close());
  return s;
}

interface Logged {
  level: 'warn' | 'error';
  obj: object;
  msg?: string;
}

function sender(s: ApnsStandIn, extra: Partial<ApnsSenderOptions> = {}): { apns: ApnsSender; logs: Logged[] } {
  const logs: Logged[] = [];
  const apns = createApnsSender({
    certPem: pem('signerCert.pem'),
    keyPem: pem('signerKey.pem'),
    host: 'localhost',
    port: s.port,
    caPem: pem('root.pem'),
    retryBaseDelayMs: 5,
    logger: {
      warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }),
      error: (obj, msg) => logs.push({ level: 'error', obj, msg }),
    },
    ...extra,
  });
  cleanups.push(() => apns.close());
  return { apns, logs };
}

describe('classifyPushOutcome (reference section 2 table)', () => {
  const t = 'a'.repeat(64);
  it.each<[PushOutcome, string]>([
    [{ token: t, status: 200 }, 'delivered'],
    [{ token: t, status: 410, reason: 'Unregistered', timestamp: 1 }, 'unregistered'],
    [{ token: t, status: 410, reason: 'ExpiredToken' }, 'unregistered'],
    [{ token: t, status: 400, reason: 'BadDeviceToken' }, 'bad-token'],
    [{ token: t, status: 400, reason: 'DeviceTokenNotForTopic' }, 'config-error'],
    [{ token: t, status: 400, reason: 'BadTopic' }, 'config-error'],
    [{ token: t, status: 400, reason: 'MissingTopic' }, 'config-error'],
    [{ token: t, status: 400, reason: 'TopicDisallowed' }, 'config-error'],
    [{ token: t, status: 403, reason: 'BadCertificate' }, 'auth-error'],
    [{ token: t, status: 403, reason: 'BadCertificateEnvironment' }, 'auth-error'],
    [{ token: t, status: 403, reason: 'Forbidden' }, 'auth-error'],
    [{ token: t, status: 429, reason: 'TooManyRequests' }, 'retry-exhausted'],
    [{ token: t, status: 500, reason: 'InternalServerError' }, 'retry-exhausted'],
    [{ token: t, status: 503, reason: 'ServiceUnavailable' }, 'retry-exhausted'],
    [{ token: t, status: 400, reason: 'IdleTimeout' }, 'retry-exhausted'],
    [{ token: t, status: 0, reason: 'Timeout' }, 'retry-exhausted'],
    [{ token: t, status: 0, reason: 'ConnectionError' }, 'retry-exhausted'],
    [{ token: t, status: 400, reason: 'PayloadEmpty' }, 'client-error'],
    [{ token: t, status: 400, reason: 'BadExpirationDate' }, 'client-error'],
    [{ token: t, status: 404, reason: 'BadPath' }, 'client-error'],
    [{ token: t, status: 405, reason: 'MethodNotAllowed' }, 'client-error'],
    [{ token: t, status: 413, reason: 'PayloadTooLarge' }, 'client-error'],
  ])('%o → %s', (outcome, expected) => {
    expect(classifyPushOutcome(outcome)).toBe(expected);
  });
});

describe('isRetryablePushOutcome: what stays pending until delivered (issue #11)', () => {
  const t = 'a'.repeat(64);
  it.each<[PushOutcome, boolean]>([
    [{ token: t, status: 429, reason: 'TooManyRequests', retryAfterMs: 30_000 }, true],
    [{ token: t, status: 500, reason: 'InternalServerError' }, true],
    [{ token: t, status: 502 }, true],
    [{ token: t, status: 503, reason: 'ServiceUnavailable' }, true],
    [{ token: t, status: 503, reason: 'Shutdown' }, true],
    [{ token: t, status: 504 }, true],
    [{ token: t, status: 400, reason: 'IdleTimeout' }, true],
    [{ token: t, status: 0, reason: 'Timeout' }, true],
    [{ token: t, status: 0, reason: 'StreamError' }, true],
    [{ token: t, status: 0, reason: 'RefusedStream' }, true],
    [{ token: t, status: 0, reason: 'ConnectionError' }, true],
    [{ token: t, status: 0, reason: 'Closed' }, true],
    [{ token: t, status: 200 }, false],
    [{ token: t, status: 410, reason: 'Unregistered', timestamp: 1 }, false],
    [{ token: t, status: 400, reason: 'BadDeviceToken' }, false],
    [{ token: t, status: 400, reason: 'DeviceTokenNotForTopic' }, false],
    [{ token: t, status: 403, reason: 'BadCertificate' }, false],
    [{ token: t, status: 400, reason: 'PayloadEmpty' }, false],
    [{ token: t, status: 404, reason: 'BadPath' }, false],
    [{ token: t, status: 413, reason: 'PayloadTooLarge' }, false],
  ])('%o → %s', (outcome, expected) => {
    expect(isRetryablePushOutcome(outcome)).toBe(expected);
    // Everything retryable is what classifyPushOutcome calls retry-exhausted, and nothing else is.
    expect(classifyPushOutcome(outcome) === 'retry-exhausted').toBe(expected);
  });

  it('parses Retry-After as delay-seconds or an HTTP date', () => {
    expect(parseRetryAfterMs('120')).toBe(120_000);
    expect(parseRetryAfterMs(' 0 ')).toBe(0);
    const now = Date.parse('2026-12-05T10:00:00Z');
    expect(parseRetryAfterMs('Sat, 05 Dec 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfterMs('Sat, 05 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfterMs('soon')).toBeUndefined();
  });
});

describe('createApnsSender over HTTP/2 + TLS to the stand-in', () => {
  it('POSTs {} to /3/device/<token> with topic, priority 10 and a 24 h expiration, authenticated by the pass certificate', async () => {
    const s = await standIn();
    const { apns } = sender(s);
    const t = token();
    const before = Math.floor(Date.now() / 1000);
    const [outcome] = await apns.push([t], topic);
    const after = Math.floor(Date.now() / 1000);

    expect(outcome).toMatchObject({ token: t, status: 200 });
    expect(outcome!.apnsId).toMatch(/^[0-9a-f-]{36}$/);
    expect(classifyPushOutcome(outcome!)).toBe('delivered');
    expect(s.received).toHaveLength(1);
    const push = s.received[0]!;
    expect(push).toMatchObject({
      method: 'POST',
      path: `/3/device/${t}`,
      token: t,
      topic,
      priority: '10',
      pushType: undefined,
      clientCertSubjectUid: topic,
    });
    // Apple: "an empty JSON dictionary for the payload": exactly these two bytes, not {"aps":{}}.
    expect(push.body).toBe('{}');
    const expiration = Number(push.expiration);
    expect(expiration).toBeGreaterThanOrEqual(before + 86_400);
    expect(expiration).toBeLessThanOrEqual(after + 86_400);
  });

  it('reuses one connection for many pushes and calls', async () => {
    const s = await standIn();
    const { apns } = sender(s, { concurrency: 20, chunkSize: 50 });
    const first = await apns.push(Array.from({ length: 300 }, token), topic);
    const second = await apns.push(Array.from({ length: 10 }, token), topic);
    expect([...first, ...second].every((o) => o.status === 200)).toBe(true);
    expect(s.received).toHaveLength(310);
    expect(s.sessions).toBe(1);
  });

  it('opens a new connection after GOAWAY', async () => {
    const s = await standIn();
    const { apns } = sender(s);
    expect((await apns.push([token(), token()], topic)).map((o) => o.status)).toEqual([200, 200]);
    expect(s.sessions).toBe(1);

    s.goawayAll();
    const after = await apns.push([token(), token(), token()], topic);
    expect(after.map((o) => o.status)).toEqual([200, 200, 200]);
    expect(s.sessions).toBe(2);
  });

  it('loses no push when GOAWAY arrives in the middle of a batch', async () => {
    const s = await standIn();
    const { apns } = sender(s, { concurrency: 50 });
    let seen = 0;
    s.setResponder(() => {
      if (++seen === 100) s.goawayAll();
      return undefined;
    });
    const tokens = Array.from({ length: 1000 }, token);
    const outcomes = await apns.push(tokens, topic);
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(new Set(s.received.filter((p) => p.status === 200).map((p) => p.token)).size).toBe(1000);
    // Streams the server accepted before its GOAWAY are still answered on the old connection, so nothing
    // is sent twice (@parse/node-apn destroys the session instead and loses them); the rest is retried.
    expect(s.received).toHaveLength(1000);
    expect(s.sessions).toBe(2);
  });

  it('reports 410 Unregistered with its timestamp as "unregistered"', async () => {
    const s = await standIn();
    const { apns } = sender(s);
    const dead = token();
    const alive = token();
    s.deadTokens.set(dead, 1_700_000_000_123);
    const outcomes = await apns.push([dead, alive], topic);
    expect(outcomes[0]).toMatchObject({ token: dead, status: 410, reason: 'Unregistered', timestamp: 1_700_000_000_123 });
    expect(classifyPushOutcome(outcomes[0]!)).toBe('unregistered');
    expect(outcomes[1]).toMatchObject({ token: alive, status: 200 });
    // 410 is final: no retry.
    expect(s.received.filter((p) => p.token === dead)).toHaveLength(1);
  });

  it('reports BadDeviceToken as "bad-token" without retrying', async () => {
    const s = await standIn();
    const { apns } = sender(s);
    const [outcome] = await apns.push(['not-a-token'], topic);
    expect(outcome).toMatchObject({ token: 'not-a-token', status: 400, reason: 'BadDeviceToken' });
    expect(classifyPushOutcome(outcome!)).toBe('bad-token');
    expect(s.received).toHaveLength(1);
  });

  it('reports a topic that is not the certificate\'s as "config-error" and logs it as an error', async () => {
    const s = await standIn();
    const { apns, logs } = sender(s);
    const [outcome] = await apns.push([token()], 'pass.com.example.other');
    expect(outcome).toMatchObject({ status: 400, reason: 'DeviceTokenNotForTopic' });
    expect(classifyPushOutcome(outcome!)).toBe('config-error');
    expect(logs.some((l) => l.level === 'error' && (l.obj as { reason?: string }).reason === 'DeviceTokenNotForTopic')).toBe(true);
  });

  it('reports 403 as "auth-error", logs an error once per reason, and does not retry', async () => {
    const s = await standIn({ respond: () => ({ status: 403, reason: 'BadCertificateEnvironment' }) });
    const { apns, logs } = sender(s);
    const tokens = [token(), token(), token()];
    const outcomes = await apns.push(tokens, topic);
    expect(outcomes.map((o) => [o.status, o.reason, classifyPushOutcome(o)])).toEqual(
      tokens.map(() => [403, 'BadCertificateEnvironment', 'auth-error']),
    );
    expect(s.received).toHaveLength(3);
    const errors = logs.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.obj).toMatchObject({ status: 403, reason: 'BadCertificateEnvironment', count: 3 });
    // Never a full token in logs: only a short prefix.
    const logged = JSON.stringify(logs);
    for (const t of tokens) {
      expect(logged).not.toContain(t);
    }
    expect(logged).toContain(tokens[0]!.slice(0, 8));
  });

  it('retries 429 and delivers', async () => {
    const s = await standIn();
    const { apns } = sender(s);
    const t = token();
    let calls = 0;
    s.setResponder(() => (++calls === 1 ? { status: 429, reason: 'TooManyRequests' } : undefined));
    const [outcome] = await apns.push([t], topic);
    expect(outcome).toMatchObject({ token: t, status: 200 });
    expect(s.received.map((p) => p.status)).toEqual([429, 200]);
  });

  it('gives up on a 500 that never ends after maxRetries retries, on the same connection', async () => {
    const s = await standIn({ respond: () => ({ status: 500, reason: 'InternalServerError' }) });
    const { apns, logs } = sender(s, { maxRetries: 2 });
    const [outcome] = await apns.push([token()], topic);
    expect(outcome).toMatchObject({ status: 500, reason: 'InternalServerError' });
    expect(classifyPushOutcome(outcome!)).toBe('retry-exhausted');
    expect(s.received).toHaveLength(3); // first attempt + 2 retries
    expect(s.sessions).toBe(1);
    expect(logs.some((l) => l.level === 'warn' && (l.obj as { status?: number }).status === 500)).toBe(true);
  });

  it('retries 503 on a new connection', async () => {
    const s = await standIn();
    const { apns } = sender(s);
    let calls = 0;
    s.setResponder(() => (++calls === 1 ? { status: 503, reason: 'ServiceUnavailable' } : undefined));
    const [outcome] = await apns.push([token()], topic);
    expect(outcome).toMatchObject({ status: 200 });
    expect(s.received.map((p) => [p.status, p.session])).toEqual([
      [503, 1],
      [200, 2],
    ]);
  });

  it('pushes each distinct token once per call', async () => {
    const s = await standIn();
    const { apns } = sender(s);
    const a = token();
    const b = token();
    const outcomes = await apns.push([a, b, a, a, b], topic);
    expect(outcomes.map((o) => o.token)).toEqual([a, b]);
    expect(s.received.map((p) => p.token).sort()).toEqual([a, b].sort());
  });

  it('never has more than `concurrency` requests in flight', async () => {
    const s = await standIn();
    const { apns } = sender(s, { concurrency: 3 });
    let open = 0;
    let maxOpen = 0;
    s.setResponder(async () => {
      open += 1;
      maxOpen = Math.max(maxOpen, open);
      await new Promise((resolve) => setTimeout(resolve, 20));
      open -= 1;
      return undefined;
    });
    const outcomes = await apns.push(Array.from({ length: 30 }, token), topic);
    expect(outcomes.every((o) => o.status === 200)).toBe(true);
    expect(maxOpen).toBe(3);
    expect(s.maxOpenStreams).toBeLessThanOrEqual(3);
  });

  it('respects the server\'s MAX_CONCURRENT_STREAMS and does not count waiting for a stream against the timeout', async () => {
    // 60 pushes, 2 streams at a time, 50 ms per answer: about 1.5 s in total. A client that started the
    // 1 s timeout when a push was queued (node:http2 queues above the server's limit silently) would time
    // out the later pushes; the timeout must start when the push gets a stream, where it is 20x one answer.
    const s = await standIn({ maxConcurrentStreams: 2 });
    const { apns } = sender(s, { concurrency: 50, requestTimeoutMs: 1_000, maxRetries: 0 });
    s.setResponder(async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return undefined;
    });
    const outcomes = await apns.push(Array.from({ length: 60 }, token), topic);
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(s.maxOpenStreams).toBeLessThanOrEqual(2);
    expect(s.sessions).toBe(1);
  });

  it('times out a request that is never answered, retries it, and still returns', async () => {
    const s = await standIn();
    const { apns, logs } = sender(s, { requestTimeoutMs: 200, maxRetries: 1 });
    const stuck = token();
    const fine = token();
    s.setResponder((t) => (t === stuck ? new Promise(() => {}) : undefined));
    const outcomes = await apns.push([stuck, fine], topic);
    expect(outcomes[0]).toEqual({ token: stuck, status: 0, reason: 'Timeout' });
    expect(classifyPushOutcome(outcomes[0]!)).toBe('retry-exhausted');
    expect(outcomes[1]).toMatchObject({ token: fine, status: 200 });
    expect(s.received.filter((p) => p.token === stuck)).toHaveLength(2);
    // The connection itself still answers PING, so it is kept.
    expect(s.sessions).toBe(1);
    expect(logs.some((l) => l.level === 'warn' && (l.obj as { reason?: string }).reason === 'Timeout')).toBe(true);
  });

  it('returns connection failures as outcomes when the server rejects the client certificate', async () => {
    const s = await standIn();
    // A complete chain from another test root: the stand-in does not trust it.
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { generateDevCertificates } = await import('../../src/wallets/apple/certificates.js');
    const dir = mkdtempSync(path.join(tmpdir(), 'apns-rogue-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    await generateDevCertificates(dir, { passTypeIdentifier: topic, teamIdentifier: 'ROGUE12345' });
    const { apns, logs } = sender(s, {
      certPem: readFileSync(path.join(dir, 'signerCert.pem'), 'utf8'),
      keyPem: readFileSync(path.join(dir, 'signerKey.pem'), 'utf8'),
      concurrency: 50,
      maxRetries: 2,
      maxConnectAttempts: 3,
      retryBaseDelayMs: 50,
    });
    const outcomes = await apns.push(Array.from({ length: 300 }, token), topic);
    expect(outcomes).toHaveLength(300);
    expect(outcomes.every((o) => o.status === 0 && o.reason === 'ConnectionError')).toBe(true);
    expect(classifyPushOutcome(outcomes[0]!)).toBe('retry-exhausted');
    expect(s.received).toHaveLength(0);
    expect(s.sessions).toBe(0);
    // Connection attempts are shared by all waiting pushes and stop after maxConnectAttempts failures in
    // a row (not 300 tokens x 3 attempts); one more may start while the last failure is being reported.
    expect(s.rejectedConnections).toBeGreaterThanOrEqual(3);
    expect(s.rejectedConnections).toBeLessThanOrEqual(4);
    expect(logs.some((l) => l.level === 'error' && l.msg === 'APNs connection failed')).toBe(true);
  });

  it('fails at creation for a key that does not match or a wrong passphrase, without echoing the key', async () => {
    const create = (keyPem: string, passphrase?: string) => () =>
      createApnsSender({ certPem: pem('signerCert.pem'), keyPem, passphrase, host: 'localhost', port: 1 });
    const messageOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as Error).message;
      }
      return 'no error';
    };
    const mismatched = messageOf(create(pem('wwdr.key')));
    expect(mismatched).toMatch(/APNs client certificate or key unusable/);
    expect(mismatched).not.toContain(pem('wwdr.key').split('\n')[1]!);

    const encrypted = createPrivateKey(pem('signerKey.pem'))
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'right-passphrase' })
      .toString();
    expect(messageOf(create(encrypted, 'wrong-passphrase'))).toMatch(/APNs client certificate or key unusable/);

    // The right passphrase works end to end.
    const s = await standIn();
    const { apns } = sender(s, { keyPem: encrypted, passphrase: 'right-passphrase' });
    expect((await apns.push([token()], topic))[0]).toMatchObject({ status: 200 });
  });

  it('a failed connect does not fail the rest of the batch: every token is still tried and delivered', async () => {
    // The reproduced defect: with maxRetries connection failures in a row, every remaining token of the
    // batch failed at once without being sent. Here the first connection is reset at accept and the
    // sender may not retry anything (maxRetries 0): waiting for the reconnect must cost no token its attempt.
    const s = await standIn();
    s.refuseConnections(1);
    const { apns } = sender(s, { maxRetries: 0, concurrency: 50 });
    const tokens = Array.from({ length: 300 }, token);
    const outcomes = await apns.push(tokens, topic);
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(s.refusedConnections).toBe(1);
    expect(s.sessions).toBe(1);
    expect(new Set(s.received.map((p) => p.token)).size).toBe(300);
    expect(s.received).toHaveLength(300);
  });

  it('a connection lost mid-batch, then refused twice, still delivers every token, each accepted once', async () => {
    const s = await standIn();
    const { apns } = sender(s, { maxRetries: 1, concurrency: 50, maxConnectAttempts: 3 });
    let seen = 0;
    s.setResponder(() => {
      // The 200th request: drop every connection (its streams die unanswered) and refuse the next two.
      if (++seen === 200) s.refuseConnections(2);
      return undefined;
    });
    const tokens = Array.from({ length: 1000 }, token);
    const outcomes = await apns.push(tokens, topic);
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(s.refusedConnections).toBe(2);
    expect(s.sessions).toBe(2);
    const accepted = s.received.filter((p) => p.status === 200).map((p) => p.token);
    expect(new Set(accepted).size).toBe(1000);
  });

  it('an outage: a call gives up after maxConnectAttempts failed connects, the next call probes once, recovery delivers', async () => {
    const s = await standIn();
    s.refuseConnections(true);
    const { apns } = sender(s, { maxRetries: 3, maxConnectAttempts: 3, concurrency: 20 });
    const first = await apns.push(Array.from({ length: 200 }, token), topic);
    expect(first.every((o) => o.status === 0 && o.reason === 'ConnectionError' && isRetryablePushOutcome(o))).toBe(true);
    expect(s.refusedConnections).toBe(3);
    // Still down: a new call makes one connection attempt of its own, not three, and returns.
    const second = await apns.push(Array.from({ length: 50 }, token), topic);
    expect(second.every((o) => o.reason === 'ConnectionError')).toBe(true);
    expect(s.refusedConnections).toBe(4);
    expect(s.received).toHaveLength(0);
    // APNs is back: the next call connects and delivers everything.
    s.refuseConnections(false);
    const third = await apns.push(Array.from({ length: 50 }, token), topic);
    expect(third.every((o) => o.status === 200)).toBe(true);
    expect(s.sessions).toBe(1);
  });

  it('a reset stream is retried and delivered', async () => {
    const s = await standIn();
    const { apns } = sender(s, { maxRetries: 1 });
    const reset = new Set<string>();
    s.setResponder((t) => {
      if (reset.has(t)) return undefined;
      reset.add(t);
      return { status: 0, reset: true };
    });
    const tokens = Array.from({ length: 20 }, token);
    const outcomes = await apns.push(tokens, topic);
    expect(outcomes.every((o) => o.status === 200)).toBe(true);
    for (const t of tokens) expect(s.received.filter((p) => p.token === t).map((p) => p.status)).toEqual([0, 200]);
  });

  it('a reset stream that never recovers comes back as a retryable StreamError', async () => {
    const s = await standIn({ respond: () => ({ status: 0, reset: true }) });
    const { apns } = sender(s, { maxRetries: 1 });
    const [outcome] = await apns.push([token()], topic);
    expect(outcome).toMatchObject({ status: 0, reason: 'StreamError' });
    expect(isRetryablePushOutcome(outcome!)).toBe(true);
    expect(s.received).toHaveLength(2);
  });

  it('429 with a Retry-After within maxRetryAfterMs is retried no sooner than asked', async () => {
    const s = await standIn();
    const { apns } = sender(s, { maxRetryAfterMs: 5_000 });
    const t = token();
    const at: number[] = [];
    s.setResponder(() => {
      at.push(Date.now());
      return at.length === 1 ? { status: 429, reason: 'TooManyRequests', retryAfter: '1' } : undefined;
    });
    const [outcome] = await apns.push([t], topic);
    expect(outcome).toMatchObject({ status: 200 });
    expect(at).toHaveLength(2);
    // A lower bound only (a busy machine can only make the gap longer): the retry waited out Retry-After.
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(990);
  });

  it('429 with a Retry-After beyond maxRetryAfterMs returns at once with retryAfterMs for the caller to schedule', async () => {
    const s = await standIn({ respond: () => ({ status: 429, reason: 'TooManyRequests', retryAfter: '3600' }) });
    const { apns } = sender(s, { maxRetries: 5, maxRetryAfterMs: 5_000 });
    const [outcome] = await apns.push([token()], topic);
    expect(outcome).toMatchObject({ status: 429, reason: 'TooManyRequests', retryAfterMs: 3_600_000 });
    expect(isRetryablePushOutcome(outcome!)).toBe(true);
    expect(s.received).toHaveLength(1);
  });

  it('rejects pushes after close()', async () => {
    const s = await standIn();
    const { apns } = sender(s);
    await apns.push([token()], topic);
    await apns.close();
    await expect(apns.push([token()], topic)).rejects.toThrow(/closed/);
  });
});
