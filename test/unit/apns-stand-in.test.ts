/**
 * The APNs stand-in itself (test/support/apns-stand-in.ts), driven by a bare node:http2 client so that
 * its rules (reference section 8.3) do not depend on the sender under test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDevCertificates } from '../../src/wallets/apple/certificates.js';
import { startApnsStandIn, type ApnsStandIn } from '../support/apns-stand-in.js';
import { getTestCertificates } from '../support/test-certificates.js';

let pem: (file: string) => string;
let topic: string;
let standIn: ApnsStandIn;
let client: http2.ClientHttp2Session;
const TOKEN = 'ab'.repeat(32);

beforeAll(async () => {
  const certs = await getTestCertificates();
  pem = (file) => readFileSync(path.join(certs.dir, file), 'utf8');
  topic = certs.passTypeIdentifier;
  standIn = await startApnsStandIn({
    keyPem: pem('apns-server.key'),
    certPem: pem('apns-server.pem'),
    caPem: pem('root.pem') + pem('wwdr.pem'),
    expectedTopic: topic,
  });
  client = http2.connect(`https://localhost:${standIn.port}`, {
    cert: pem('signerCert.pem'),
    key: pem('signerKey.pem'),
    ca: pem('root.pem'),
  });
});

afterAll(async () => {
  client?.destroy();
  await standIn?.close();
});

function request(
  headers: http2.OutgoingHttpHeaders,
  body?: string,
  session: http2.ClientHttp2Session = client,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', 'apns-topic': topic, ...headers });
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let text = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => resolve({ status, headers: responseHeaders, body: text }));
    stream.on('error', reject);
    stream.end(body);
  });
}

describe('APNs stand-in', () => {
  it('answers 200 with an apns-id and records the push', async () => {
    const before = standIn.received.length;
    const res = await request({ ':path': `/3/device/${TOKEN}`, 'apns-priority': '10', 'apns-expiration': '123' }, '{}');
    expect(res.status).toBe(200);
    expect(res.headers['apns-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body).toBe('');
    expect(standIn.received.slice(before)).toEqual([
      {
        method: 'POST',
        path: `/3/device/${TOKEN}`,
        token: TOKEN,
        topic,
        priority: '10',
        expiration: '123',
        pushType: undefined,
        body: '{}',
        clientCertSubjectUid: topic,
        status: 200,
        session: 1,
        apnsId: res.headers['apns-id'],
        at: expect.any(Number),
      },
    ]);
  });

  it('echoes the apns-id the client sent', async () => {
    const id = '123e4567-e89b-12d3-a456-426614174000';
    const res = await request({ ':path': `/3/device/${TOKEN}`, 'apns-id': id }, '{}');
    expect(res.headers['apns-id']).toBe(id);
  });

  it.each([
    ['GET', `/3/device/${'ab'.repeat(32)}`, {}, '', 405, 'MethodNotAllowed'],
    ['POST', '/2/device/x', {}, '{}', 404, 'BadPath'],
    ['POST', '/3/device/xyz', {}, '{}', 400, 'BadDeviceToken'],
    ['POST', `/3/device/${'ab'.repeat(31)}`, {}, '{}', 400, 'BadDeviceToken'],
    ['POST', `/3/device/${'ab'.repeat(32)}`, { 'apns-topic': 'pass.other' }, '{}', 400, 'DeviceTokenNotForTopic'],
    ['POST', `/3/device/${'ab'.repeat(32)}`, {}, '', 400, 'PayloadEmpty'],
  ])('%s %s %o body=%j → %i %s', async (method, urlPath, extra, body, status, reason) => {
    const res = await request({ ':method': method, ':path': urlPath, ...extra }, method === 'GET' ? undefined : body);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body)).toEqual({ reason });
    expect(res.headers['apns-id']).toBeTruthy();
  });

  it('takes the topic from the client certificate UID when apns-topic is absent', async () => {
    const res = await request({ ':path': `/3/device/${TOKEN}`, 'apns-topic': undefined }, '{}');
    expect(res.status).toBe(200);
    expect(standIn.received.at(-1)?.topic).toBe(topic);
  });

  it('answers 410 Unregistered with the timestamp for dead tokens', async () => {
    const dead = 'cd'.repeat(32);
    standIn.deadTokens.set(dead, 1_700_000_000_000);
    const res = await request({ ':path': `/3/device/${dead}` }, '{}');
    expect(res.status).toBe(410);
    expect(JSON.parse(res.body)).toEqual({ reason: 'Unregistered', timestamp: 1_700_000_000_000 });
  });

  it('lets a responder override the answer per token, and falls through on undefined', async () => {
    const special = 'ef'.repeat(32);
    standIn.setResponder((token) => (token === special ? { status: 429, reason: 'TooManyRequests' } : undefined));
    try {
      expect((await request({ ':path': `/3/device/${special}` }, '{}')).status).toBe(429);
      expect((await request({ ':path': `/3/device/${TOKEN}` }, '{}')).status).toBe(200);
    } finally {
      standIn.setResponder(undefined);
    }
  });

  it('counts sessions and sends GOAWAY on goawayAll()', async () => {
    const own = await startApnsStandIn({
      keyPem: pem('apns-server.key'),
      certPem: pem('apns-server.pem'),
      caPem: pem('root.pem') + pem('wwdr.pem'),
      expectedTopic: topic,
    });
    const session = http2.connect(`https://localhost:${own.port}`, {
      cert: pem('signerCert.pem'),
      key: pem('signerKey.pem'),
      ca: pem('root.pem'),
    });
    try {
      const goaway = new Promise<{ code: number; reason: string }>((resolve) =>
        session.once('goaway', (code, _last, data) => resolve({ code, reason: String(data) })),
      );
      expect((await request({ ':path': `/3/device/${TOKEN}` }, '{}', session)).status).toBe(200);
      expect(own.sessions).toBe(1);
      own.goawayAll();
      expect(await goaway).toEqual({ code: http2.constants.NGHTTP2_NO_ERROR, reason: '{"reason":"Shutdown"}' });
    } finally {
      session.destroy();
      await own.close();
    }
  });

  it.each([
    ['signed by another root', 'rogue'],
    ['missing', 'none'],
  ])('rejects a client certificate that is %s', async (_label, kind) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'apns-stand-in-rogue-'));
    try {
      let options: http2.SecureClientSessionOptions = { ca: pem('root.pem') };
      if (kind === 'rogue') {
        // A chain shaped exactly like the trusted one (same pass type ID) but from a different root.
        await generateDevCertificates(dir, { passTypeIdentifier: topic, teamIdentifier: 'ROGUE12345' });
        options = {
          ...options,
          cert: readFileSync(path.join(dir, 'signerCert.pem'), 'utf8'),
          key: readFileSync(path.join(dir, 'signerKey.pem'), 'utf8'),
        };
      }
      const sessionsBefore = standIn.sessions;
      const receivedBefore = standIn.received.length;
      const session = http2.connect(`https://localhost:${standIn.port}`, options);
      const outcome = await new Promise<string>((resolve) => {
        session.on('error', (error) => resolve(`error: ${error.message}`));
        session.on('close', () => resolve('closed'));
        // With TLS 1.3 the client's handshake completes before the server has checked the certificate;
        // the rejection arrives when the connection is used (the stream is cancelled, the session closes).
        session.on('connect', () => {
          const stream = session.request({ ':method': 'POST', ':path': `/3/device/${TOKEN}`, 'apns-topic': topic });
          stream.on('error', (error) => resolve(`error: ${error.message}`));
          stream.on('response', (h) => resolve(`answered ${h[':status']}`));
          stream.on('close', () => resolve('closed'));
          stream.end('{}');
        });
      });
      session.destroy();
      expect(outcome).not.toMatch(/^answered/);
      expect(standIn.sessions).toBe(sessionsBefore);
      expect(standIn.received.length).toBe(receivedBefore);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
