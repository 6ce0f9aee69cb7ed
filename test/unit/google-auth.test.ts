/**
 * Access tokens for the Wallet API through google-auth-library against the local fake token endpoint
 * (reference google-wallet.md section 6 and checklist 3–5).
 */
import jwt from 'jsonwebtoken';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServiceAccountTokenProvider, GoogleAuthError, WALLET_SCOPE } from '../../src/wallets/google/auth.js';
import { GoogleApiError, GoogleWalletClient } from '../../src/wallets/google/client.js';
import { createTokenBucket } from '../../src/wallets/google/rate-limiter.js';
import { createTestServiceAccount, startGoogleFake, type GoogleFake, type TestServiceAccount } from '../support/google-fake.js';

const ISSUER = '3388000000012345678';
let account: TestServiceAccount;
let fake: GoogleFake;

beforeAll(() => {
  account = createTestServiceAccount();
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function startFake(extra: Partial<Parameters<typeof startGoogleFake>[0]> = {}): Promise<GoogleFake> {
  const started = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email, ...extra });
  cleanups.push(() => started.close());
  return started;
}

function clientFor(tokens: ReturnType<typeof createServiceAccountTokenProvider>, logs: unknown[] = []) {
  return new GoogleWalletClient({
    apiBaseUrl: fake.apiBaseUrl,
    tokens,
    limiter: createTokenBucket({ ratePerSecond: 10_000, burst: 10_000 }),
    sleep: async () => {},
    logger: { warn: (obj, msg) => logs.push([obj, msg]), error: (obj, msg) => logs.push([obj, msg]) },
  });
}

describe('token assertion (checklist 3–4)', () => {
  it('POSTs a jwt-bearer grant with an RS256 assertion for the wallet scope, exp − iat = 3600', async () => {
    fake = await startFake();
    const tokens = createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl });
    expect(await tokens.getAccessToken()).toBe('fake-1');

    const [call] = fake.callsTo('token');
    expect(call!.method).toBe('POST');
    expect(String(call!.headers['content-type'])).toMatch(/application\/x-www-form-urlencoded/);
    const form = new URLSearchParams(call!.body as string);
    expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const assertion = form.get('assertion')!;
    const decoded = jwt.decode(assertion, { complete: true })!;
    expect(decoded.header.alg).toBe('RS256');
    // Verified against the service account's public key, not just decoded.
    const claims = jwt.verify(assertion, account.publicKeyPem, { algorithms: ['RS256'] }) as jwt.JwtPayload;
    expect(claims.iss).toBe(account.serviceAccount.client_email);
    // google-auth-library addresses Google's token URL even when the request goes elsewhere; the fake
    // accepts exactly that audience (real Google requires it).
    expect(claims.aud).toBe('https://oauth2.googleapis.com/token');
    expect(claims['scope']).toBe(WALLET_SCOPE);
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(Math.abs(claims.iat! - Date.now() / 1000)).toBeLessThan(120);
  });

  it('sends Authorization: Bearer <token> on API calls', async () => {
    fake = await startFake();
    const client = clientFor(createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }));
    expect(await client.getObject(`${ISSUER}.missing`)).toBeNull();
    const [call] = fake.callsTo('getObject');
    expect(call!.headers['authorization']).toBe('Bearer fake-1');
  });

  it('reports a rejected assertion as GoogleAuthError without the assertion itself', async () => {
    const other = createTestServiceAccount();
    fake = await startFake({ serviceAccountPublicKey: other.publicKeyPem });
    const logs: unknown[] = [];
    const tokens = createServiceAccountTokenProvider({
      serviceAccount: account.serviceAccount,
      tokenUrl: fake.tokenUrl,
      logger: { warn: (obj, msg) => logs.push([obj, msg]) },
    });
    const error = await tokens.getAccessToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GoogleAuthError);
    expect((error as GoogleAuthError).status).toBe(400);
    expect((error as Error).message).toMatch(/invalid_grant/);
    const assertion = new URLSearchParams(fake.callsTo('token')[0]!.body as string).get('assertion')!;
    expect(JSON.stringify(logs) + (error as Error).message).not.toContain(assertion.split('.')[2]);
    expect(JSON.stringify(logs)).not.toContain('PRIVATE KEY');
  });
});

describe('token cache (checklist 5)', () => {
  it('10 concurrent callers → 1 token request; later calls use the cache', async () => {
    fake = await startFake();
    const tokens = createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl });
    const results = await Promise.all(Array.from({ length: 10 }, () => tokens.getAccessToken()));
    expect(new Set(results)).toEqual(new Set(['fake-1']));
    await tokens.getAccessToken();
    expect(fake.callsTo('token')).toHaveLength(1);
  });

  it('10 concurrent API calls through the client → 1 token request', async () => {
    fake = await startFake();
    const client = clientFor(createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }));
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.getObject(`${ISSUER}.card-${i}`)));
    expect(fake.callsTo('token')).toHaveLength(1);
    expect(fake.callsTo('getObject')).toHaveLength(10);
  });

  it('refreshes 5 minutes before expiry, not earlier, and concurrent callers then share one refresh', async () => {
    fake = await startFake({ tokenExpiresIn: 3600 });
    let now = 1_000_000;
    const tokens = createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl, now: () => now });
    expect(await tokens.getAccessToken()).toBe('fake-1');
    // 3600 s lifetime (measured a few ms short): at 54 min 50 s the token is still > 5 min from expiry.
    now += (3600 - 310) * 1000;
    expect(await tokens.getAccessToken()).toBe('fake-1');
    expect(fake.callsTo('token')).toHaveLength(1);
    // At 55 min it is within 5 min of expiry: refresh, once for ten callers.
    now += 10 * 1000;
    const results = await Promise.all(Array.from({ length: 10 }, () => tokens.getAccessToken()));
    expect(new Set(results)).toEqual(new Set(['fake-2']));
    expect(fake.callsTo('token')).toHaveLength(2);
  });

  it('a failed token request is not cached: the next caller tries again', async () => {
    fake = await startFake();
    // 400 is not retried by google-auth-library's transporter, so exactly one request fails.
    fake.addFault({ route: 'token', status: 400, times: 1 });
    const tokens = createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl });
    await expect(tokens.getAccessToken()).rejects.toBeInstanceOf(GoogleAuthError);
    expect(await tokens.getAccessToken()).toBe('fake-1');
  });

  it('after a 401 the client refreshes the token and retries once', async () => {
    fake = await startFake();
    const client = clientFor(createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }));
    await client.getObject(`${ISSUER}.a`);
    fake.revokeTokens();
    expect(await client.getObject(`${ISSUER}.a`)).toBeNull();
    expect(fake.calls.map((c) => `${c.route} ${c.status}`)).toEqual(['token 200', 'getObject 404', 'getObject 401', 'token 200', 'getObject 404']);
    expect(fake.callsTo('getObject')[2]!.headers['authorization']).toBe('Bearer fake-2');
  });

  it('retries only once: a second 401 is returned as an error', async () => {
    fake = await startFake();
    const client = clientFor(createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }));
    fake.addFault({ route: 'getObject', status: 401 });
    const error = await client.getObject(`${ISSUER}.a`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GoogleApiError);
    expect((error as GoogleApiError).status).toBe(401);
    expect(fake.callsTo('getObject')).toHaveLength(2);
    expect(fake.callsTo('token')).toHaveLength(2);
  });

  it('five concurrent 401s for one token cause one refresh', async () => {
    fake = await startFake();
    const client = clientFor(createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }));
    await client.getObject(`${ISSUER}.warm`);
    fake.revokeTokens();
    await Promise.all(Array.from({ length: 5 }, (_, i) => client.getObject(`${ISSUER}.c${i}`)));
    expect(fake.callsTo('token')).toHaveLength(2);
  });

  it('never logs the access token or the key', async () => {
    fake = await startFake();
    const logs: unknown[] = [];
    const client = clientFor(createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }), logs);
    fake.addFault({ route: 'getObject', status: 500 });
    fake.addFault({ route: 'insertObject', status: 403 });
    await client.getObject(`${ISSUER}.a`).catch(() => undefined);
    await client.insertObject({ id: `${ISSUER}.a`, classId: `${ISSUER}.c`, state: 'ACTIVE' }).catch(() => undefined);
    expect(logs.length).toBeGreaterThan(0);
    const text = JSON.stringify(logs);
    expect(text).not.toMatch(/fake-\d/);
    expect(text).not.toMatch(/Bearer|PRIVATE KEY/);
    expect(text).toContain(`${ISSUER}.a`);
  });
});
