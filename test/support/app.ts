import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp, type App, type AppDeps } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createApnsSender, type ApnsSender, type ApnsSenderOptions } from '../../src/wallets/apple/apns.js';
import type { RetryPolicy } from '../../src/wallets/google/client.js';
import { loadAppleCertificates, type AppleSigningMaterial } from '../../src/wallets/apple/certificates.js';
import { createPassPackager, loadDefaultImages } from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import { DEFAULT_PASS_IMAGES_DIR } from '../../src/wallets/apple/pass/build-pkpass.js';
import { startApnsStandIn, type ApnsStandIn } from './apns-stand-in.js';
import { createGoogleRuntime } from '../../src/wallets/google/runtime.js';
import {
  createCallbackKeys,
  createTestServiceAccount,
  issuerKeysDocument,
  startGoogleFake,
  type CallbackKeys,
  type GoogleFake,
  type TestServiceAccount,
} from './google-fake.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { getTestCertificates } from './test-certificates.js';

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef';
export const TEST_PUBLIC_URL = 'https://wallet.test';

export interface TestApp {
  app: App;
  database: TestDatabase;
  apnsStandIn: ApnsStandIn;
  apns: ApnsSender;
  material: AppleSigningMaterial;
  certDir: string;
  /** Present when started with `google: true`: the local fake of Google's APIs and the callback keys it publishes. */
  google?: { fake: GoogleFake; account: TestServiceAccount; callbackKeys: CallbackKeys; issuerId: string };
  close(): Promise<void>;
}

export const TEST_GOOGLE_ISSUER_ID = '3388000000012345678';

/**
 * The whole service as production wires it — real database (embedded or PostgreSQL), real pass
 * signer, real APNs client over HTTP/2 TLS — pointed at a local APNs stand-in.
 */
export async function startTestApp(
  options: {
    env?: Record<string, string>;
    runWorkers?: boolean;
    /** A pino logger for the app (default: none). */
    logger?: AppDeps['logger'];
    /** The app's clock (join views, wallet events, the join form's timing check). */
    clock?: AppDeps['clock'];
    /** Join-form timing and rate limit overrides. */
    joinForm?: AppDeps['joinForm'];
    /** Enable Google Wallet against a local fake of its REST, OAuth and issuer-keys endpoints. */
    google?: boolean;
    /** Webhook retry delays, disable span and timeout overrides. */
    webhooks?: AppDeps['webhooks'];
    /** Cabinet session, link and sign-in limit overrides. */
    cabinet?: AppDeps['cabinet'];
    /** One-time code settings (limits) overrides. */
    verification?: AppDeps['verification'];
    /** APNs client options (fault tests shorten timeouts and retries). */
    apns?: Partial<ApnsSenderOptions>;
    /** Retry worker of pending wallet deliveries: poll, lease, backoff overrides. */
    redelivery?: AppDeps['redelivery'];
    /** The Google client's own retry policy (fault tests shorten it). */
    googleRetry?: Partial<RetryPolicy>;
    /** Cross-instance notifications (default: the real ones over the test database). */
    notifications?: AppDeps['notifications'];
    /** Import chunk size, file limit, stall watchdog overrides. */
    imports?: AppDeps['imports'];
    /** Invitation pacing (messages per second). */
    invitations?: AppDeps['invitations'];
  } = {},
): Promise<TestApp> {
  const certs = await getTestCertificates();
  const file = (name: string) => readFileSync(path.join(certs.dir, name), 'utf8');
  const apnsStandIn = await startApnsStandIn({
    keyPem: file('apns-server.key'),
    certPem: file('apns-server.pem'),
    caPem: file('root.pem') + file('wwdr.pem'),
    expectedTopic: certs.passTypeIdentifier,
  });
  let google: TestApp['google'];
  const googleEnv: Record<string, string> = {};
  if (options.google) {
    const account = createTestServiceAccount();
    const fake = await startGoogleFake({ issuerId: TEST_GOOGLE_ISSUER_ID, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email });
    const callbackKeys = createCallbackKeys();
    fake.issuerKeys = issuerKeysDocument([{ publicKeyB64: callbackKeys.root.publicKeyB64, expiration: callbackKeys.rootExpiration }]);
    const accountFile = path.join(mkdtempSync(path.join(tmpdir(), 'walletcards-google-')), 'service-account.json');
    writeFileSync(accountFile, JSON.stringify(account.serviceAccount), { mode: 0o600 });
    Object.assign(googleEnv, {
      GOOGLE_ISSUER_ID: TEST_GOOGLE_ISSUER_ID,
      GOOGLE_SERVICE_ACCOUNT_FILE: accountFile,
      GOOGLE_WALLET_API_URL: fake.apiBaseUrl,
      GOOGLE_TOKEN_URL: fake.tokenUrl,
      GOOGLE_ISSUER_KEYS_URL: fake.issuerKeysUrl,
      GOOGLE_REQUESTS_PER_SECOND: '500',
    });
    google = { fake, account, callbackKeys, issuerId: TEST_GOOGLE_ISSUER_ID };
  }
  const config = loadConfig({
    NODE_ENV: 'test',
    ADMIN_KEY: TEST_ADMIN_KEY,
    PUBLIC_URL: TEST_PUBLIC_URL,
    PASS_UPDATE_DEBOUNCE_SECONDS: '0',
    APPLE_CERT_DIR: certs.dir,
    APNS_HOST: '127.0.0.1',
    APNS_PORT: String(apnsStandIn.port),
    ...googleEnv,
    ...options.env,
  });
  const material = loadAppleCertificates(certs.dir);
  const apns = createApnsSender({
    certPem: material.signerCertPem,
    keyPem: material.signerKeyPem,
    host: config.APNS_HOST,
    port: config.APNS_PORT,
    caPem: file('root.pem'),
    retryBaseDelayMs: 10,
    ...options.apns,
  });
  const packager = createPassPackager({ signer: new PassSigner(material), defaultImages: loadDefaultImages(DEFAULT_PASS_IMAGES_DIR) });
  const database = await createTestDatabase();
  const app = await buildApp({
    config,
    database: database.handle,
    adminKey: TEST_ADMIN_KEY,
    apple: { material, packager, apns },
    runWorkers: options.runWorkers,
    logger: options.logger,
    clock: options.clock,
    joinForm: options.joinForm,
    webhooks: options.webhooks,
    cabinet: options.cabinet,
    verification: options.verification,
    redelivery: options.redelivery,
    notifications: options.notifications,
    imports: options.imports,
    invitations: options.invitations,
    // On PostgreSQL the deployment-wide limiter in the database, as server.ts builds it.
    google: createGoogleRuntime(config, { warn() {}, error() {} }, {
      database: database.handle,
      ...(options.googleRetry ? { clientOptions: { retry: options.googleRetry } } : {}),
    }),
    pollingIntervalSeconds: 0.5,
  });
  await app.ready();
  return {
    app,
    database,
    apnsStandIn,
    apns,
    material,
    certDir: certs.dir,
    google,
    async close() {
      await app.close();
      await google?.fake.close();
      await apns.close();
      await apnsStandIn.close();
      await database.drop();
    },
  };
}

export const adminHeaders = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

/** Creates a program and a key of each role through the API. */
export async function createProgramWithKeys(app: App, slug: string, body: Record<string, unknown> = {}) {
  const created = await app.inject({ method: 'POST', url: '/api/v1/programs', headers: adminHeaders, payload: { slug, name: `Program ${slug}`, ...body } });
  if (created.statusCode !== 201) throw new Error(`program create failed: ${created.statusCode} ${created.body}`);
  const program = created.json();
  const keys: Record<'admin' | 'marketer' | 'pos', string> = { admin: '', marketer: '', pos: '' };
  for (const role of ['admin', 'marketer', 'pos'] as const) {
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/programs/${program.id}/keys`,
      headers: adminHeaders,
      payload: { role, name: `${role} key` },
    });
    if (res.statusCode !== 201) throw new Error(`key create failed: ${res.statusCode} ${res.body}`);
    keys[role] = res.json().key;
  }
  const as = (role: 'admin' | 'marketer' | 'pos') => ({ authorization: `Bearer ${keys[role]}` });
  return { program, keys, as };
}

/** Polls until `check` returns a truthy value (background jobs run on their own schedule). */
export async function waitFor<T>(check: () => T | Promise<T>, options: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'condition'}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
