/**
 * Skinny "Add to Google Wallet" links (reference google-wallet.md section 2, checklist 26–31).
 */
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceAccountTokenProvider } from '../../src/wallets/google/auth.js';
import { GoogleWalletClient } from '../../src/wallets/google/client.js';
import { buildLoyaltyClass, buildLoyaltyObject, classIdFor, objectIdFor } from '../../src/wallets/google/payloads.js';
import { createTokenBucket } from '../../src/wallets/google/rate-limiter.js';
import { buildSaveJwt, buildSaveUrl, MAX_SAVE_JWT_LENGTH, SaveLinkTooLongError, type SaveJwtClaims } from '../../src/wallets/google/save-link.js';
import { createTestServiceAccount, startGoogleFake, type GoogleFake, type TestServiceAccount } from '../support/google-fake.js';

const ISSUER = '3388000000012345678';
const PREFIX = 'https://pay.google.com/gp/v/save/';
let account: TestServiceAccount;
beforeAll(() => {
  account = createTestServiceAccount();
});

const ids = { objectId: objectIdFor(ISSUER, 'blokpost', '6f1c2a8e-5b1d-4a57-9a53-0d2a7c1e9b11'), classId: classIdFor(ISSUER, 'blokpost', 'standard') };

describe('buildSaveJwt / buildSaveUrl', () => {
  it('is an RS256 JWT with iss, aud google, typ savetowallet, iat, origins and only loyaltyObjects [{id, classId}] (checklist 26, 27, 31)', () => {
    const token = buildSaveJwt({ serviceAccount: account.serviceAccount, origins: ['https://cards.example.com'], ...ids });
    const { header } = jwt.decode(token, { complete: true })!;
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT', kid: account.serviceAccount.private_key_id });
    const claims = jwt.verify(token, account.publicKeyPem, {
      algorithms: ['RS256'],
      audience: 'google',
      issuer: account.serviceAccount.client_email,
    }) as SaveJwtClaims;
    expect(claims.typ).toBe('savetowallet');
    expect(claims.origins).toEqual(['https://cards.example.com']);
    expect(Math.abs(claims.iat - Date.now() / 1000)).toBeLessThan(60);
    expect(claims.payload).toEqual({ loyaltyObjects: [{ id: ids.objectId, classId: ids.classId }] });
    expect(Object.keys(claims).sort()).toEqual(['aud', 'iat', 'iss', 'origins', 'payload', 'typ']);
  });

  it('keeps origins present when empty (plain links)', () => {
    const claims = jwt.decode(buildSaveJwt({ serviceAccount: account.serviceAccount, origins: [], ...ids })) as SaveJwtClaims;
    expect(claims.origins).toEqual([]);
  });

  it('a tampered token does not verify', () => {
    const token = buildSaveJwt({ serviceAccount: account.serviceAccount, origins: [], ...ids });
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as SaveJwtClaims;
    claims.payload.loyaltyObjects[0]!.id = `${ISSUER}.someone-else`;
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    expect(() => jwt.verify(forged, account.publicKeyPem, { algorithms: ['RS256'] })).toThrow(/invalid signature/);
    const other = createTestServiceAccount();
    expect(() => jwt.verify(token, other.publicKeyPem, { algorithms: ['RS256'] })).toThrow(/invalid signature/);
  });

  it('URL = prefix + token, not re-encoded, ≤ 1800 characters for realistic ids (checklist 28, 29)', () => {
    const url = buildSaveUrl({ serviceAccount: account.serviceAccount, origins: ['https://cards.example.com'], saveUrlPrefix: PREFIX, ...ids });
    expect(url.startsWith(PREFIX)).toBe(true);
    const token = url.slice(PREFIX.length);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(encodeURIComponent(token)).toBe(token);
    expect(token.length).toBeLessThanOrEqual(MAX_SAVE_JWT_LENGTH);
  });

  it('throws above 1800 characters instead of issuing a link browsers truncate', () => {
    const origins = Array.from({ length: 40 }, (_, i) => `https://shop-${i}.example.com`);
    expect(() => buildSaveJwt({ serviceAccount: account.serviceAccount, origins, ...ids })).toThrow(SaveLinkTooLongError);
  });

  it('issuing twice for one card gives the same object id (checklist 30)', () => {
    const a = jwt.decode(buildSaveJwt({ serviceAccount: account.serviceAccount, origins: [], ...ids })) as SaveJwtClaims;
    const b = jwt.decode(
      buildSaveJwt({ serviceAccount: account.serviceAccount, origins: [], objectId: objectIdFor(ISSUER, 'blokpost', '6f1c2a8e-5b1d-4a57-9a53-0d2a7c1e9b11'), classId: ids.classId }),
    ) as SaveJwtClaims;
    expect(b.payload.loyaltyObjects).toEqual(a.payload.loyaltyObjects);
  });
});

describe('skinny flow against the fake (checklist 28)', () => {
  let fake: GoogleFake;
  afterAll(() => fake?.close());

  it('class and object exist in the fake before the link that names them is issued', async () => {
    fake = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email });
    const client = new GoogleWalletClient({
      apiBaseUrl: fake.apiBaseUrl,
      tokens: createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }),
      limiter: createTokenBucket({ ratePerSecond: 1000, burst: 1000 }),
    });
    const name = { ru: 'Базовый', en: 'Base' };
    const cls = buildLoyaltyClass({
      issuerId: ISSUER, programSlug: 'blokpost', defaultLanguage: 'ru', issuerName: name, programName: name,
      logoUrl: 'https://cdn.example.com/l.png', backgroundColor: '#123456', tier: { code: 'standard', name }, callbackUrl: 'https://x.example/cb',
    });
    const obj = buildLoyaltyObject({
      issuerId: ISSUER, programSlug: 'blokpost', cardId: '6f1c2a8e-5b1d-4a57-9a53-0d2a7c1e9b11', classId: cls.id!, state: 'ACTIVE',
      defaultLanguage: 'ru', cardNumber: '100', holderName: 'A', balance: 0, pointsLabel: { ru: 'Баллы', en: 'Points' },
    });
    await client.ensureObject(obj, { cls });
    const url = buildSaveUrl({ serviceAccount: account.serviceAccount, origins: [], saveUrlPrefix: PREFIX, objectId: obj.id!, classId: obj.classId! });
    const claims = jwt.verify(url.slice(PREFIX.length), account.publicKeyPem, { algorithms: ['RS256'] }) as SaveJwtClaims;
    for (const ref of claims.payload.loyaltyObjects) {
      expect(fake.objects.get(ref.id)?.classId).toBe(ref.classId);
      expect(fake.classes.get(ref.classId)?.reviewStatus).toBe('APPROVED');
    }
  });
});
