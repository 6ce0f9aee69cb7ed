import crypto, { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { computeSignature, newWebhookSecret, signatureHeaders, verifySignature } from '../../src/webhooks/signing.js';

describe('webhook signatures', () => {
  const secret = 'whsec_test-secret-value';
  const body = '{"id":"7f1c","type":"card.issued","data":{"cardId":"c-1","name":"Пётр"}}';
  const at = new Date('2026-11-27T12:00:00.900Z');

  it('signs "{timestamp}.{body}" with HMAC-SHA256 of the secret string, as hex, under v1=', () => {
    const headers = signatureHeaders(secret, 'evt-1', body, at);
    expect(headers['webhook-id']).toBe('evt-1');
    expect(headers['webhook-timestamp']).toBe('1795780800'); // whole seconds, rounded down
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(`1795780800.${body}`, 'utf8')).digest('hex');
    expect(headers['webhook-signature']).toBe(`v1=${expected}`);
    expect(computeSignature(secret, 1795780800, body)).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
  });

  it('matches a fixed test vector', () => {
    // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_vector'
    expect(computeSignature('whsec_vector', 1700000000, '{"a":1}')).toBe('5d485af0d9ddc3522d7a396ce60598f0d5fbb3bacdb1924001168092bc407c18');
  });

  it('verifies what it signs and refuses tampering, other secrets, stale or malformed headers', () => {
    const h = signatureHeaders(secret, 'evt-1', body, at);
    const headers = { timestamp: h['webhook-timestamp'], signature: h['webhook-signature'] };
    expect(verifySignature(secret, headers, body, { now: at })).toBe(true);
    expect(verifySignature(secret, headers, body.replace('c-1', 'c-2'), { now: at })).toBe(false);
    expect(verifySignature('whsec_other', headers, body, { now: at })).toBe(false);
    expect(verifySignature(secret, headers, body, { now: new Date(at.getTime() + 301_000) })).toBe(false);
    expect(verifySignature(secret, headers, body, { now: new Date(at.getTime() + 299_000) })).toBe(true);
    expect(verifySignature(secret, { ...headers, timestamp: '1795780801' }, body, { now: at })).toBe(false);
    expect(verifySignature(secret, { ...headers, timestamp: '17957808e2' }, body, { now: at })).toBe(false);
    expect(verifySignature(secret, { ...headers, timestamp: undefined }, body, { now: at })).toBe(false);
    expect(verifySignature(secret, { ...headers, signature: headers.signature.replace('v1=', 'v0=') }, body, { now: at })).toBe(false);
    expect(verifySignature(secret, { ...headers, signature: 'v1=abc' }, body, { now: at })).toBe(false);
    expect(verifySignature(secret, { ...headers, signature: undefined }, body, { now: at })).toBe(false);
    // Several signatures (a future rotation): any one valid is enough.
    expect(verifySignature(secret, { ...headers, signature: `v1=${'0'.repeat(64)} ${headers.signature}` }, body, { now: at })).toBe(true);
  });

  it("verifies with the README's snippet (kept verbatim)", () => {
    function verifyWalletcards(secret: string, headers: Record<string, string | undefined>, rawBody: Buffer | string) {
      const timestamp = headers['webhook-timestamp'];
      if (!/^\d+$/.test(timestamp ?? '') || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
      const expected = crypto.createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
      return (headers['webhook-signature'] ?? '').split(' ').some((part) => {
        const [version, hex] = part.split('=');
        return version === 'v1' && /^[0-9a-f]{64}$/.test(hex) && crypto.timingSafeEqual(Buffer.from(hex, 'hex'), expected);
      });
    }
    const headers = signatureHeaders(secret, 'evt-1', body);
    expect(verifyWalletcards(secret, headers, Buffer.from(body, 'utf8'))).toBe(true);
    expect(verifyWalletcards(secret, headers, body)).toBe(true);
    expect(verifyWalletcards(secret, headers, body + ' ')).toBe(false);
    expect(verifyWalletcards('whsec_other', headers, body)).toBe(false);
  });

  it('generates 32 random bytes per secret', () => {
    const a = newWebhookSecret();
    const b = newWebhookSecret();
    expect(a).not.toBe(b);
    expect(Buffer.from(a.slice('whsec_'.length), 'base64url')).toHaveLength(32);
  });
});
