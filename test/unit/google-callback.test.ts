/**
 * Verification of Google Wallet save/delete callbacks (reference google-wallet.md section 4, checklist
 * 32–34), with genuine payloads signed by throwaway P-256 root and intermediate keys and root keys served
 * by the fake's issuer-keys endpoint.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCallbackVerifier, intermediateSignedData, lv, messageSignedData, type CallbackVerifierOptions } from '../../src/wallets/google/callback.js';
import {
  createCallbackKeys,
  createP256KeyPair,
  createTestServiceAccount,
  issuerKeysDocument,
  signCallback,
  startGoogleFake,
  type CallbackKeys,
  type GoogleFake,
  type SignCallbackOptions,
} from '../support/google-fake.js';

const ISSUER = '3388000000012345678';
const T0 = Date.UTC(2026, 0, 10, 12);
let fake: GoogleFake;
let keys: CallbackKeys;
let now: number;

beforeAll(async () => {
  const account = createTestServiceAccount();
  fake = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email });
});
afterAll(() => fake.close());

beforeEach(() => {
  now = T0;
  keys = createCallbackKeys({ now: T0 });
  fake.issuerKeys = issuerKeysDocument([{ publicKeyB64: keys.root.publicKeyB64, expiration: keys.rootExpiration }]);
  fake.calls.length = 0;
});

const keyRequests = () => fake.callsTo('issuerKeys').length;

function verifier(extra: Partial<CallbackVerifierOptions> = {}) {
  return createCallbackVerifier({ issuerId: ISSUER, keysUrl: fake.issuerKeysUrl, now: () => now, ...extra });
}

function body(extra: Partial<SignCallbackOptions> = {}) {
  return signCallback({
    keys,
    issuerId: ISSUER,
    eventType: 'save',
    classId: `${ISSUER}.blokpost.standard`,
    objectId: `${ISSUER}.blokpost.card-1`,
    nonce: '40a8e5af-0000-4000-8000-000000000001',
    expTimeMillis: T0 + 60_000,
    ...extra,
  });
}

describe('LV encoding', () => {
  it('is a 4-byte little-endian length followed by the UTF-8 bytes', () => {
    expect(lv('ab')).toEqual(Buffer.from([2, 0, 0, 0, 0x61, 0x62]));
    expect(lv('я').subarray(0, 4)).toEqual(Buffer.from([2, 0, 0, 0]));
    expect(lv('x'.repeat(258)).subarray(0, 4)).toEqual(Buffer.from([2, 1, 0, 0]));
    expect(intermediateSignedData('GooglePayPasses', 'k')).toEqual(Buffer.concat([lv('GooglePayPasses'), lv('ECv2SigningOnly'), lv('k')]));
    expect(messageSignedData('GooglePayPasses', ISSUER, 'm')).toEqual(Buffer.concat([lv('GooglePayPasses'), lv(ISSUER), lv('ECv2SigningOnly'), lv('m')]));
  });
});

describe('verify', () => {
  it('accepts a genuine save and del callback and returns the message', async () => {
    const v = verifier();
    expect(await v.verify(body())).toEqual({
      ok: true,
      message: {
        classId: `${ISSUER}.blokpost.standard`,
        objectId: `${ISSUER}.blokpost.card-1`,
        eventType: 'save',
        expTimeMillis: T0 + 60_000,
        count: 1,
        nonce: '40a8e5af-0000-4000-8000-000000000001',
      },
    });
    expect(await v.verify(body({ eventType: 'del' }))).toMatchObject({ ok: true, message: { eventType: 'del' } });
  });

  it('accepts the body after a JSON round trip (signatures cover the string fields)', async () => {
    expect(await verifier().verify(JSON.parse(JSON.stringify(body())))).toMatchObject({ ok: true });
  });

  it.each<[string, () => unknown, RegExp]>([
    ['a wrong protocolVersion', () => body({ protocolVersion: 'ECv2' }), /unsupported protocolVersion/],
    ['a missing protocolVersion', () => ({ ...body(), protocolVersion: undefined }), /missing protocolVersion/],
    ['an intermediate key signed by an unknown root', () => body({ rootSigner: createP256KeyPair().privateKey }), /not signed by a current root key/],
    ['an expired intermediate key', () => body({ intermediateExpiration: T0 - 1 }), /intermediate signing key expired/],
    ['a message signed by another key', () => body({ messageSigner: createP256KeyPair().privateKey }), /message signature does not verify/],
    ['a message signed for another issuer', () => body({ recipientId: '1234' }), /message signature does not verify/],
    ['a tampered message', () => body({ tamper: (m) => m.replace('"save"', '"del"') }), /message signature does not verify/],
    ['an expired message', () => body({ expTimeMillis: T0 }), /message expired/],
    ['ids of another issuer (correctly signed)', () => body({ objectId: '1234.x', classId: '1234.y' }), /another issuer/],
    ['an unknown eventType', () => body({ eventType: 'update' }), /unknown eventType update/],
    ['a missing nonce', () => body({ message: { nonce: undefined } }), /lacks classId, objectId, eventType or nonce/],
    ['a missing expTimeMillis', () => body({ message: { expTimeMillis: undefined } }), /lacks expTimeMillis/],
    ['a missing count', () => body({ message: { count: undefined } }), /lacks count/],
    ['no signatures', () => ({ ...body(), intermediateSigningKey: { signedKey: body().intermediateSigningKey.signedKey, signatures: [] } }), /malformed intermediateSigningKey/],
    ['a non-object body', () => 'hello', /not a JSON object/],
    ['a missing signature', () => ({ ...body(), signature: undefined }), /missing signature/],
  ])('rejects %s (checklist 33)', async (_label, make, reason) => {
    const result = await verifier().verify(make());
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(reason);
    expect(!result.ok && result.retryable).toBeFalsy();
  });

  it('ignores root keys of another protocol version or already expired', async () => {
    fake.issuerKeys = issuerKeysDocument([
      { publicKeyB64: keys.root.publicKeyB64, expiration: keys.rootExpiration, protocolVersion: 'ECv1' },
      { publicKeyB64: keys.root.publicKeyB64, expiration: T0 - 1 },
      { publicKeyB64: createP256KeyPair().publicKeyB64, expiration: T0 + 1_000_000 },
    ]);
    const result = await verifier().verify(body());
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/not signed by a current root key/) });
  });
});

describe('root key cache (checklist 34)', () => {
  it('fetches the root keys once and reuses them until the earliest expiry', async () => {
    const v = verifier();
    for (let i = 0; i < 3; i++) expect((await v.verify(body())).ok).toBe(true);
    expect(keyRequests()).toBe(1);
    now = keys.rootExpiration; // the only root key is now expired: reload
    const later = createCallbackKeys({ now });
    keys = later;
    fake.issuerKeys = issuerKeysDocument([{ publicKeyB64: later.root.publicKeyB64, expiration: later.rootExpiration }]);
    expect((await v.verify(body({ expTimeMillis: now + 60_000 }))).ok).toBe(true);
    expect(keyRequests()).toBe(2);
  });

  it('concurrent first verifications share one key request', async () => {
    const v = verifier();
    const results = await Promise.all(Array.from({ length: 10 }, () => v.verify(body())));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(keyRequests()).toBe(1);
  });

  it('rotation: a root not in the cache causes one reload, then verifies', async () => {
    const v = verifier();
    expect((await v.verify(body())).ok).toBe(true);
    const rotated = createCallbackKeys({ now: T0 });
    fake.issuerKeys = issuerKeysDocument([
      { publicKeyB64: keys.root.publicKeyB64, expiration: keys.rootExpiration },
      { publicKeyB64: rotated.root.publicKeyB64, expiration: rotated.rootExpiration },
    ]);
    now += 61_000;
    keys = rotated;
    expect((await v.verify(body({ expTimeMillis: now + 60_000 }))).ok).toBe(true);
    expect(keyRequests()).toBe(2);
  });

  it('an unknown root causes exactly one reload, and forged callbacks cannot force reloads more often than the interval', async () => {
    const v = verifier({ minReloadIntervalMs: 60_000 });
    expect((await v.verify(body())).ok).toBe(true);
    now += 61_000;
    const forged = () => body({ rootSigner: createP256KeyPair().privateKey, expTimeMillis: now + 60_000 });
    expect(await v.verify(forged())).toMatchObject({ ok: false });
    expect(keyRequests()).toBe(2);
    for (let i = 0; i < 5; i++) expect((await v.verify(forged())).ok).toBe(false);
    expect(keyRequests()).toBe(2);
    now += 61_000;
    expect((await v.verify(forged())).ok).toBe(false);
    expect(keyRequests()).toBe(3);
  });

  it('unreachable root keys give a retryable failure (the route may answer 503 so Google retries)', async () => {
    fake.addFault({ route: 'issuerKeys', status: 500, times: 1 });
    const v = verifier();
    expect(await v.verify(body())).toEqual({ ok: false, reason: 'root keys unavailable', retryable: true });
    expect((await v.verify(body())).ok).toBe(true);
  });

  it('uses the configured sender id (the staging docs say GoogleWalletPasses)', async () => {
    expect((await verifier({ senderId: 'GoogleWalletPasses' }).verify(body({ senderId: 'GoogleWalletPasses' }))).ok).toBe(true);
    expect((await verifier().verify(body({ senderId: 'GoogleWalletPasses' }))).ok).toBe(false);
  });
});
