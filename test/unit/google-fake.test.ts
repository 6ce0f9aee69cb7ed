/**
 * The local Google Wallet fake itself (test/support/google-fake.ts): the rules other tests rely on
 * (reference google-wallet.md section 10), exercised with plain fetch.
 */
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestServiceAccount, GOOGLE_TOKEN_URL, startGoogleFake, WALLET_SCOPE, type GoogleFake, type TestServiceAccount } from '../support/google-fake.js';

const ISSUER = '3388000000012345678';
let account: TestServiceAccount;
let fake: GoogleFake;
let token: string;

beforeAll(async () => {
  account = createTestServiceAccount();
  fake = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email });
  token = await getToken();
});
afterAll(() => fake.close());

function assertion(claims: Record<string, unknown> = {}, key = account.serviceAccount.private_key): string {
  const iat = Math.floor(Date.now() / 1000);
  return jwt.sign({ iss: account.serviceAccount.client_email, scope: WALLET_SCOPE, aud: GOOGLE_TOKEN_URL, iat, exp: iat + 3600, ...claims }, key, { algorithm: 'RS256' });
}

async function tokenResponse(form: Record<string, string>) {
  return fetch(fake.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
}

async function getToken(): Promise<string> {
  const response = await tokenResponse({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertion() });
  return ((await response.json()) as { access_token: string }).access_token;
}

async function api(method: string, path: string, body?: unknown, auth = `Bearer ${token}`) {
  const response = await fetch(`${fake.apiBaseUrl}${path}`, {
    method,
    headers: { authorization: auth, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

const cls = (suffix: string, extra: Record<string, unknown> = {}) => ({
  id: `${ISSUER}.${suffix}`,
  issuerName: 'Shop',
  programName: 'Bonus',
  programLogo: { sourceUri: { uri: 'https://cdn.example.com/l.png' } },
  reviewStatus: 'UNDER_REVIEW',
  ...extra,
});
const obj = (suffix: string, classSuffix: string, extra: Record<string, unknown> = {}) => ({
  id: `${ISSUER}.${suffix}`,
  classId: `${ISSUER}.${classSuffix}`,
  state: 'ACTIVE',
  loyaltyPoints: { label: 'Points', balance: { int: 5 } },
  ...extra,
});

describe('token endpoint', () => {
  it.each<[string, Record<string, string>, string]>([
    ['a wrong grant type', { grant_type: 'client_credentials', assertion: 'x' }, 'unsupported_grant_type'],
    ['an assertion signed by another key', { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: '' }, 'invalid_grant'],
    ['a wrong audience', { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: '' }, 'invalid_grant'],
    ['a missing scope', { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: '' }, 'invalid_scope'],
    ['a 2 h lifetime', { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: '' }, 'invalid_grant'],
  ])('rejects %s', async (label, form, error) => {
    const other = label.includes('another') ? createTestServiceAccount().serviceAccount.private_key : undefined;
    const iat = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> =
      label.includes('audience') ? { aud: fake.tokenUrl } : label.includes('scope') ? { scope: 'email' } : label.includes('lifetime') ? { iat, exp: iat + 7200 } : {};
    if (form['assertion'] === '') form['assertion'] = assertion(claims, other);
    const response = await tokenResponse(form);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe(error);
  });
});

describe('Wallet Objects rules', () => {
  it('requires a valid bearer token', async () => {
    expect((await api('GET', `/loyaltyClass/${ISSUER}.x`, undefined, 'Bearer nope')).status).toBe(401);
    expect((await api('GET', `/loyaltyClass/${ISSUER}.x`, undefined, '')).body).toMatchObject({ error: { code: 401, status: 'UNAUTHENTICATED' } });
  });

  it('class insert: required fields, id format and issuer, reviewStatus, 409 duplicates; stored as APPROVED', async () => {
    expect((await api('POST', '/loyaltyClass', { ...cls('a'), programLogo: undefined })).status).toBe(400);
    expect((await api('POST', '/loyaltyClass', cls('a b'))).status).toBe(400);
    expect((await api('POST', '/loyaltyClass', { ...cls('a'), id: '999.a' })).status).toBe(403);
    expect((await api('POST', '/loyaltyClass', cls('a', { reviewStatus: 'APPROVED' }))).status).toBe(400);
    expect((await api('POST', '/loyaltyClass', cls('a'))).body['reviewStatus']).toBe('APPROVED');
    expect((await api('POST', '/loyaltyClass', cls('a'))).body).toMatchObject({ error: { code: 409, status: 'ALREADY_EXISTS' } });
    expect((await api('POST', '/loyaltyClass', cls('draft', { reviewStatus: 'DRAFT' }))).body['reviewStatus']).toBe('DRAFT');
  });

  it('class PATCH: 404 when unknown, APPROVED rejected, top-level merge', async () => {
    expect((await api('PATCH', `/loyaltyClass/${ISSUER}.nope`, { programName: 'x' })).status).toBe(404);
    expect((await api('PATCH', `/loyaltyClass/${ISSUER}.a`, { reviewStatus: 'APPROVED' })).status).toBe(400);
    const patched = await api('PATCH', `/loyaltyClass/${ISSUER}.a`, { programName: 'New', reviewStatus: 'UNDER_REVIEW' });
    expect(patched.body).toMatchObject({ programName: 'New', issuerName: 'Shop', reviewStatus: 'APPROVED' });
  });

  it('object insert: class must exist and be approved; balance and barcode rules; no class-only fields', async () => {
    expect((await api('POST', '/loyaltyObject', obj('o1', 'missing'))).status).toBe(404);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'draft'))).status).toBe(404);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a', { loyaltyPoints: { balance: { int: 1, string: '1' } } }))).status).toBe(400);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a', { loyaltyPoints: { balance: { int: 2 ** 31 } } }))).status).toBe(400);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a', { loyaltyPoints: { balance: { money: { currencyCode: 'RUB', micros: 1 } } } }))).status).toBe(400);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a', { barcode: { type: 'qrCode', value: '1' } }))).status).toBe(400);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a', { barcode: { type: 'TEXT_ONLY', value: '1', alternateText: '1' } }))).status).toBe(400);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a', { textModulesData: [{ id: 'a.b', header: 'h', body: 'b' }] }))).status).toBe(400);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a', { hexBackgroundColor: '#fff' }))).status).toBe(400);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a', { state: 'DELETED' }))).status).toBe(400);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a'))).status).toBe(200);
    expect((await api('POST', '/loyaltyObject', obj('o1', 'a'))).status).toBe(409);
  });

  it('object PATCH merges, replaces arrays, and never stores notifyPreference', async () => {
    await api('PATCH', `/loyaltyObject/${ISSUER}.o1`, { textModulesData: [{ id: 'a', header: 'h', body: 'b' }, { id: 'b', header: 'h', body: 'b' }] });
    const patched = await api('PATCH', `/loyaltyObject/${ISSUER}.o1`, { textModulesData: [{ id: 'c', header: 'h', body: 'b' }], notifyPreference: 'NOTIFY_ON_UPDATE' });
    expect(patched.body['textModulesData']).toEqual([{ id: 'c', header: 'h', body: 'b' }]);
    expect(patched.body['loyaltyPoints']).toEqual({ label: 'Points', balance: { int: 5 } });
    expect(patched.body).not.toHaveProperty('notifyPreference');
    expect(fake.notificationsInWindow(`${ISSUER}.o1`)).toBe(1);
  });

  it('lists with pagination', async () => {
    for (const s of ['o2', 'o3']) await api('POST', '/loyaltyObject', obj(s, 'a'));
    const first = await api('GET', `/loyaltyObject?classId=${ISSUER}.a&maxResults=2`);
    expect(first.body['resources'].map((r: { id: string }) => r.id)).toEqual([`${ISSUER}.o1`, `${ISSUER}.o2`]);
    const second = await api('GET', `/loyaltyObject?classId=${ISSUER}.a&maxResults=2&token=${first.body['pagination'].nextPageToken}`);
    expect(second.body['resources'].map((r: { id: string }) => r.id)).toEqual([`${ISSUER}.o3`]);
    expect(second.body['pagination'].nextPageToken).toBeUndefined();
  });

  it("accepts the Wallet samples' bare batch format too", async () => {
    const boundary = 'batch_createobjectbatch';
    const body =
      `--${boundary}\nContent-Type: application/json\n\nPOST /walletobjects/v1/loyaltyObject/\n\n${JSON.stringify(obj('b1', 'a'))}\n\n` +
      `--${boundary}\nContent-Type: application/json\n\nPOST /walletobjects/v1/loyaltyObject/\n\n${JSON.stringify(obj('b1', 'a'))}\n\n--${boundary}--`;
    const response = await fetch(`${fake.url}/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/mixed; boundary=${boundary}` }, body });
    const text = await response.text();
    expect(response.status).toBe(200);
    expect([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(['200', '409']);
  });

  it('injects 429s at a configured rate, deterministically', async () => {
    const remove = fake.addFault({ route: 'getObject', status: 429, rate: 0.5 });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await api('GET', `/loyaltyObject/${ISSUER}.o1`)).status);
    remove();
    const limited = statuses.filter((s) => s === 429).length;
    expect(limited).toBeGreaterThan(0);
    expect(limited).toBeLessThan(40);
    expect(statuses.filter((s) => s === 200).length).toBe(40 - limited);
  });
});
