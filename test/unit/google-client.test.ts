/**
 * GoogleWalletClient against the local fake: create/update (checklist 14–20), retries and quotas
 * (checklist 38–42). Backoff waits go through an injected `sleep` that records the delay and returns at
 * once, so nothing here depends on real time.
 */
import { createServer } from 'node:net';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServiceAccountTokenProvider } from '../../src/wallets/google/auth.js';
import {
  createGoogleWalletClient,
  GoogleApiError,
  GoogleWalletClient,
  MAX_BATCH_PARTS,
  parseRetryAfter,
  type GoogleWalletClientOptions,
  type LoyaltyClass,
  type LoyaltyObject,
} from '../../src/wallets/google/client.js';
import { createGoogleWalletSettings } from '../../src/wallets/google/config.js';
import { buildLoyaltyClass, buildLoyaltyObject, classIdFor } from '../../src/wallets/google/payloads.js';
import { createTokenBucket, type RateLimiter } from '../../src/wallets/google/rate-limiter.js';
import { createTestServiceAccount, startGoogleFake, type GoogleFake, type TestServiceAccount } from '../support/google-fake.js';

const ISSUER = '3388000000012345678';
let account: TestServiceAccount;
beforeAll(() => {
  account = createTestServiceAccount();
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

interface Harness {
  fake: GoogleFake;
  client: GoogleWalletClient;
  sleeps: number[];
  logs: Array<[string, object, string | undefined]>;
  acquisitions: () => number;
}

async function setup(options: Partial<GoogleWalletClientOptions> = {}): Promise<Harness> {
  const fake = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email });
  cleanups.push(() => fake.close());
  const sleeps: number[] = [];
  const logs: Harness['logs'] = [];
  const bucket = createTokenBucket({ ratePerSecond: 10_000, burst: 10_000 });
  let acquired = 0;
  const limiter: RateLimiter = {
    acquire: () => {
      acquired++;
      return bucket.acquire();
    },
    get waiting() {
      return bucket.waiting;
    },
  };
  const client = new GoogleWalletClient({
    apiBaseUrl: fake.apiBaseUrl,
    tokens: createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }),
    limiter,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    logger: { warn: (obj, msg) => logs.push(['warn', obj, msg]), error: (obj, msg) => logs.push(['error', obj, msg]) },
    ...options,
  });
  return { fake, client, sleeps, logs, acquisitions: () => acquired };
}

const TIER = { ru: 'Базовый', en: 'Base' };
function loyaltyClass(tier = 'standard'): LoyaltyClass {
  return buildLoyaltyClass({
    issuerId: ISSUER,
    programSlug: 'blokpost',
    defaultLanguage: 'ru',
    issuerName: { ru: 'БлокПОСТ', en: 'BlokPOST' },
    programName: { ru: 'Бонусы', en: 'Bonus' },
    logoUrl: 'https://cdn.example.com/logo.png',
    backgroundColor: '#112233',
    tier: { code: tier, name: TIER },
    callbackUrl: 'https://cards.example.com/google/callback',
  });
}
function loyaltyObject(cardId = 'card-1', balance = 1000): LoyaltyObject {
  return buildLoyaltyObject({
    issuerId: ISSUER,
    programSlug: 'blokpost',
    cardId,
    classId: classIdFor(ISSUER, 'blokpost', 'standard'),
    state: 'ACTIVE',
    defaultLanguage: 'ru',
    cardNumber: '2000000012348',
    holderName: 'Ада',
    balance,
    pointsLabel: { ru: 'Баллы', en: 'Points' },
  });
}

describe('ensure and update (checklist 14–20)', () => {
  it('ensureClass: insert, then 409 → PATCH of the mutable fields with UNDER_REVIEW and without messages', async () => {
    const { fake, client } = await setup();
    expect((await client.ensureClass(loyaltyClass())).created).toBe(true);
    await client.addClassMessage(loyaltyClass().id!, { id: 'm1', header: 'h', body: 'b' });
    const changed = { ...loyaltyClass(), hexBackgroundColor: '#ffffff', messages: [] };
    const second = await client.ensureClass(changed);
    expect(second.created).toBe(false);
    expect(fake.calls.filter((c) => c.route !== 'token').map((c) => `${c.route} ${c.status}`)).toEqual([
      'insertClass 200',
      'addClassMessage 200',
      'insertClass 409',
      'patchClass 200',
    ]);
    const patch = fake.callsTo('patchClass')[0]!.body as LoyaltyClass;
    expect(patch.reviewStatus).toBe('UNDER_REVIEW');
    expect(patch).not.toHaveProperty('id');
    expect(patch).not.toHaveProperty('messages');
    expect(fake.classes.get(loyaltyClass().id!)!.hexBackgroundColor).toBe('#ffffff');
    expect(fake.classes.get(loyaltyClass().id!)!.messages).toHaveLength(1);
  });

  it('patchClass sends UNDER_REVIEW even when the GET said APPROVED (checklist 9)', async () => {
    const { fake, client } = await setup();
    await client.insertClass(loyaltyClass());
    const current = (await client.getClass(loyaltyClass().id!))!;
    expect(current.reviewStatus).toBe('APPROVED');
    await client.patchClass(current.id!, { ...current, programName: 'Новое' });
    expect((fake.callsTo('patchClass')[0]!.body as LoyaltyClass).reviewStatus).toBe('UNDER_REVIEW');
    expect(fake.classes.get(current.id!)!.programName).toBe('Новое');
  });

  it('insertClass never sends DRAFT or APPROVED (checklist 8)', async () => {
    const { fake, client } = await setup();
    await client.insertClass({ ...loyaltyClass(), reviewStatus: 'DRAFT' });
    expect((fake.callsTo('insertClass')[0]!.body as LoyaltyClass).reviewStatus).toBe('UNDER_REVIEW');
  });

  it('ensureObject: 409 → PATCH; concurrent ensures for one member give one object and no error (checklist 15)', async () => {
    const { fake, client } = await setup();
    await client.ensureClass(loyaltyClass());
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => client.ensureObject(loyaltyObject('card-1', 1000 + i))));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(fake.objects.size).toBe(1);
    expect(fake.callsTo('insertObject').filter((c) => c.status === 409)).toHaveLength(4);
    expect(fake.callsTo('patchObject').every((c) => c.status === 200 && !('notifyPreference' in (c.body as object)))).toBe(true);
  });

  it('ensureObject with the class: IssuerClassNotFound → class ensured, object inserted (checklist 20)', async () => {
    const { fake, client } = await setup();
    const result = await client.ensureObject(loyaltyObject(), { cls: loyaltyClass() });
    expect(result.created).toBe(true);
    expect(fake.calls.filter((c) => c.route !== 'token').map((c) => `${c.route} ${c.status}`)).toEqual([
      'insertObject 404',
      'insertClass 200',
      'insertObject 200',
    ]);
  });

  it('without the class, the 404 is surfaced as a GoogleApiError', async () => {
    const { client } = await setup();
    const error = await client.ensureObject(loyaltyObject()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GoogleApiError);
    expect(error).toMatchObject({ status: 404, reason: 'NOT_FOUND', resourceId: loyaltyObject().id, operation: 'insertObject' });
    expect((error as Error).message).toMatch(/IssuerClassNotFound/);
  });

  it('balance update = PATCH with only loyaltyPoints; patching a missing object → 404 error; no PUT, no DELETE (checklist 16, 17, 19)', async () => {
    const { fake, client } = await setup();
    await client.ensureClass(loyaltyClass());
    await client.ensureObject(loyaltyObject());
    const points = { label: 'Баллы', balance: { int: 20 } };
    await client.patchObject(loyaltyObject().id!, { loyaltyPoints: points });
    expect(fake.callsTo('patchObject')[0]!.body).toEqual({ loyaltyPoints: points });
    expect(fake.objects.get(loyaltyObject().id!)!.barcode).toEqual(loyaltyObject().barcode);
    await client.patchObject(loyaltyObject().id!, { state: 'EXPIRED' });
    expect(fake.objects.get(loyaltyObject().id!)!.state).toBe('EXPIRED');
    await expect(client.patchObject(`${ISSUER}.nobody`, { state: 'INACTIVE' })).rejects.toMatchObject({ status: 404 });
    expect(fake.calls.some((c) => c.method === 'PUT' || c.method === 'DELETE')).toBe(false);
  });

  it('getObject/getClass return null for a missing resource', async () => {
    const { client } = await setup();
    expect(await client.getObject(`${ISSUER}.none`)).toBeNull();
    expect(await client.getClass(`${ISSUER}.none`)).toBeNull();
  });

  it('an invalid resource id fails locally with a 400, without a request', async () => {
    const { fake, client } = await setup();
    await expect(client.getObject('not-an-id')).rejects.toMatchObject({ status: 400, reason: 'INVALID_ARGUMENT' });
    await expect(client.insertObject({ ...loyaltyObject(), id: `${ISSUER}.a b` })).rejects.toMatchObject({ status: 400 });
    expect(fake.calls).toHaveLength(0);
  });

  it('a PATCH of classId that Google does not apply is an error, not a silent no-op', async () => {
    const { client } = await setup({
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (init?.method !== 'PATCH') return response;
        const body = (await response.json()) as LoyaltyObject;
        return new Response(JSON.stringify({ ...body, classId: `${ISSUER}.blokpost.standard` }), { status: 200 });
      },
    });
    await client.ensureClass(loyaltyClass());
    await client.ensureClass(loyaltyClass('general'));
    await client.ensureObject(loyaltyObject());
    await expect(client.patchObject(loyaltyObject().id!, { classId: `${ISSUER}.blokpost.general` })).rejects.toMatchObject({ reason: 'CLASS_ID_NOT_CHANGED' });
  });
});

describe('retries (checklist 39–41)', () => {
  it('429 with Retry-After is retried after at least that long and eventually succeeds, on insert', async () => {
    const { fake, client, sleeps } = await setup();
    await client.insertClass(loyaltyClass());
    fake.addFault({ route: 'insertObject', status: 429, retryAfter: '3', times: 2 });
    const created = await client.insertObject(loyaltyObject());
    expect(created.id).toBe(loyaltyObject().id);
    expect(fake.callsTo('insertObject').map((c) => c.status)).toEqual([429, 429, 200]);
    expect(sleeps).toHaveLength(2);
    for (const ms of sleeps) expect(ms).toBeGreaterThanOrEqual(3000);
  });

  it('5xx on PATCH and GET are retried with growing, capped backoff', async () => {
    const { fake, client, sleeps } = await setup({ retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 400 } });
    await client.ensureClass(loyaltyClass());
    await client.ensureObject(loyaltyObject());
    fake.addFault({ route: 'patchObject', status: 503, times: 5 });
    await client.patchObject(loyaltyObject().id!, { state: 'INACTIVE' });
    // random() = 0.5 → delay = 3/4 of the ceiling: 100·2^(n−1) capped at 400.
    expect(sleeps).toEqual([75, 150, 300, 300, 300]);
    fake.addFault({ route: 'getObject', status: 500, times: 1 });
    expect((await client.getObject(loyaltyObject().id!))!.state).toBe('INACTIVE');
  });

  it('attempts are bounded: a persistent 503 gives up after maxAttempts with the last error', async () => {
    const { fake, client } = await setup({ retry: { maxAttempts: 4 } });
    fake.addFault({ route: 'getClass', status: 503 });
    const error = (await client.getClass(`${ISSUER}.x`).catch((e: unknown) => e)) as GoogleApiError;
    expect(error).toMatchObject({ status: 503, reason: 'UNAVAILABLE', attempts: 4 });
    expect(fake.callsTo('getClass')).toHaveLength(4);
  });

  it('a Retry-After longer than maxRetryAfterMs ends the retries at once', async () => {
    const { fake, client, sleeps } = await setup({ retry: { maxRetryAfterMs: 10_000 } });
    fake.addFault({ route: 'getClass', status: 429, retryAfter: '120' });
    await expect(client.getClass(`${ISSUER}.x`)).rejects.toMatchObject({ status: 429, retryAfterSeconds: 120 });
    expect(fake.callsTo('getClass')).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it.each([400, 403, 404, 409])('%i is not retried', async (status) => {
    const { fake, client } = await setup();
    fake.addFault({ route: 'patchClass', status });
    await expect(client.patchClass(`${ISSUER}.x`, { programName: 'x' })).rejects.toMatchObject({ status });
    expect(fake.callsTo('patchClass')).toHaveLength(1);
  });

  it('addMessage is not retried after a 500 answer (Google may have added it)', async () => {
    const { fake, client } = await setup();
    await client.ensureClass(loyaltyClass());
    await client.ensureObject(loyaltyObject());
    fake.addFault({ route: 'addObjectMessage', status: 500, afterProcessing: true, times: 1 });
    const error = await client.addObjectMessage(loyaltyObject().id!, { id: 'm1', header: 'Акция', body: 'Скидка', messageType: 'TEXT_AND_NOTIFY' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 500, operation: 'addObjectMessage' });
    expect(fake.callsTo('addObjectMessage')).toHaveLength(1);
    expect(fake.objects.get(loyaltyObject().id!)!.messages).toHaveLength(1);
    expect(fake.notificationsInWindow(loyaltyObject().id!)).toBe(1);
  });

  it('addMessage is not retried after a 429 or a connection reset either', async () => {
    const { fake, client } = await setup();
    await client.ensureClass(loyaltyClass());
    await client.ensureObject(loyaltyObject());
    fake.addFault({ route: 'addObjectMessage', status: 503, times: 1 });
    await expect(client.addObjectMessage(loyaltyObject().id!, { id: 'm1', header: 'h', body: 'b' })).rejects.toMatchObject({ status: 503 });
    fake.addFault({ route: 'addObjectMessage', reset: true, times: 1 });
    await expect(client.addObjectMessage(loyaltyObject().id!, { id: 'm2', header: 'h', body: 'b' })).rejects.toMatchObject({ status: 0, reason: 'NETWORK_ERROR' });
    expect(fake.callsTo('addObjectMessage')).toHaveLength(2);
  });

  it('addMessage IS retried when the connection was refused (it never reached Google)', async () => {
    const { fake, client } = await setup({
      fetch: (() => {
        let first = true;
        return async (url: string | URL | Request, init?: RequestInit) => {
          if (first && String(url).endsWith('/addMessage')) {
            first = false;
            return fetch(await closedPortUrl(), init);
          }
          return fetch(url, init);
        };
      })(),
    });
    await client.ensureClass(loyaltyClass());
    await client.ensureObject(loyaltyObject());
    const result = await client.addObjectMessage(loyaltyObject().id!, { id: 'm1', header: 'h', body: 'b' });
    expect(result.resource.messages).toHaveLength(1);
    expect(fake.callsTo('addObjectMessage')).toHaveLength(1);
  });

  it('a connection reset on a GET and on an insert is retried', async () => {
    const { fake, client } = await setup();
    await client.insertClass(loyaltyClass());
    fake.addFault({ route: 'insertObject', reset: true, times: 1, afterProcessing: false });
    fake.addFault({ route: 'getObject', reset: true, times: 1 });
    await client.insertObject(loyaltyObject());
    expect(await client.getObject(loyaltyObject().id!)).not.toBeNull();
    expect(fake.callsTo('insertObject').map((c) => c.status)).toEqual([0, 200]);
    expect(fake.callsTo('getObject').map((c) => c.status)).toEqual([0, 200]);
  });

  it('an insert whose first answer was lost and whose retry finds 409 still ends as "exists" through ensure', async () => {
    const { fake, client } = await setup();
    await client.insertClass(loyaltyClass());
    fake.addFault({ route: 'insertObject', status: 503, afterProcessing: true, times: 1 });
    const result = await client.ensureObject(loyaltyObject());
    expect(result.created).toBe(false);
    expect(fake.callsTo('insertObject').map((c) => c.status)).toEqual([503, 409]);
    expect(fake.objects.size).toBe(1);
  });

  it('a timeout is retried for GET (each attempt gets a fresh timeout)', async () => {
    const { fake, client } = await setup({ timeoutMs: 200 });
    fake.addFault({ route: 'getClass', delayMs: 1_000, times: 1 });
    expect(await client.getClass(`${ISSUER}.x`)).toBeNull();
    // The fake records a call when it answers: the slow first attempt shows up after the retry.
    await vi.waitFor(() => expect(fake.callsTo('getClass')).toHaveLength(2), { timeout: 5_000 });
  });

  it('a timed-out addMessage is not retried (it may have been processed)', async () => {
    const { fake, client } = await setup({ timeoutMs: 200 });
    await client.ensureClass(loyaltyClass());
    await client.ensureObject(loyaltyObject());
    fake.addFault({ route: 'addObjectMessage', delayMs: 1_000, times: 1 });
    await expect(client.addObjectMessage(loyaltyObject().id!, { id: 'm1', header: 'h', body: 'b' })).rejects.toMatchObject({ status: 0, reason: 'TIMEOUT' });
    await vi.waitFor(() => expect(fake.callsTo('addObjectMessage')).toHaveLength(1), { timeout: 5_000 });
    expect(fake.objects.get(loyaltyObject().id!)!.messages).toHaveLength(1);
  });

  it('with 30 % of requests answered 429/503 on every route, 40 ensure/patch/get calls all succeed', async () => {
    const { fake, client } = await setup({ retry: { maxAttempts: 8 } });
    await client.ensureClass(loyaltyClass());
    fake.addFault({ route: '*', status: 429, retryAfter: '1', rate: 0.15 });
    fake.addFault({ route: '*', status: 503, rate: 0.15 });
    const ids = Array.from({ length: 10 }, (_, i) => `card-${i}`);
    await Promise.all(ids.map((id) => client.ensureObject(loyaltyObject(id))));
    await Promise.all(ids.map((id) => client.ensureObject(loyaltyObject(id, 7))));
    await Promise.all(ids.map((id) => client.patchObject(loyaltyObject(id).id!, { loyaltyPoints: { label: 'Баллы', balance: { int: 9 } } })));
    const objects = await Promise.all(ids.map((id) => client.getObject(loyaltyObject(id).id!)));
    expect(objects.map((o) => o!.loyaltyPoints!.balance!.int)).toEqual(ids.map(() => 9));
    expect(fake.calls.filter((c) => c.status === 429 || c.status === 503).length).toBeGreaterThan(0);
  });

  it('every attempt takes a limiter token (checklist 38)', async () => {
    const { fake, client, acquisitions } = await setup();
    fake.addFault({ route: 'getClass', status: 503, times: 2 });
    await client.getClass(`${ISSUER}.x`);
    await client.getObject(`${ISSUER}.y`);
    const apiCalls = fake.calls.filter((c) => c.route !== 'token').length;
    expect(apiCalls).toBe(4);
    expect(acquisitions()).toBe(apiCalls);
  });

  it('errors carry Google status, reason, message and resource id; logs never the token or key (checklist 41)', async () => {
    const { fake, client, logs } = await setup();
    fake.addFault({ route: 'insertObject', status: 403 });
    const error = (await client.insertObject(loyaltyObject()).catch((e: unknown) => e)) as GoogleApiError;
    expect(error).toBeInstanceOf(GoogleApiError);
    expect(error).toMatchObject({ status: 403, reason: 'PERMISSION_DENIED', resourceId: loyaltyObject().id, message: 'Injected fault 403' });
    const [level, fields, msg] = logs.at(-1)!;
    expect(level).toBe('error');
    expect(msg).toMatch(/Pay & Wallet Console/);
    expect(fields).toMatchObject({ status: 403, reason: 'PERMISSION_DENIED', resourceId: loyaltyObject().id });
    expect(JSON.stringify(logs)).not.toMatch(/fake-\d|Bearer|PRIVATE KEY/);
  });

  it('parses Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(new Date(10_000 + 5_000).toUTCString(), 10_000)).toBe(5);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('batch (checklist 42)', () => {
  it('sends multipart/mixed to {origin}/batch and returns each part with its own status, in order', async () => {
    const { fake, client } = await setup();
    await client.ensureClass(loyaltyClass());
    const results = await client.batch([
      { method: 'POST', path: '/loyaltyObject', body: loyaltyObject('a') },
      { method: 'POST', path: '/loyaltyObject', body: loyaltyObject('b') },
      { method: 'GET', path: `/loyaltyObject/${ISSUER}.missing` },
      { method: 'POST', path: '/loyaltyObject', body: loyaltyObject('a') },
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 404, 409]);
    expect((results[1]!.body as LoyaltyObject).id).toBe(loyaltyObject('b').id);
    expect(results[3]!.error).toMatchObject({ status: 409, reason: 'ALREADY_EXISTS' });
    const [outer] = fake.callsTo('batch');
    expect(outer!.path).toBe('/batch');
    expect(String(outer!.headers['content-type'])).toMatch(/^multipart\/mixed; boundary=/);
    expect(outer!.headers['authorization']).toMatch(/^Bearer fake-/);
    expect(fake.calls.filter((c) => c.viaBatch).map((c) => c.path)).toEqual([
      '/walletobjects/v1/loyaltyObject',
      '/walletobjects/v1/loyaltyObject',
      `/walletobjects/v1/loyaltyObject/${ISSUER}.missing`,
      '/walletobjects/v1/loyaltyObject',
    ]);
  });

  it('re-sends parts that got 429/5xx, but never an addMessage part', async () => {
    const { fake, client, acquisitions } = await setup();
    await client.ensureClass(loyaltyClass());
    await client.ensureObject(loyaltyObject('a'));
    fake.addFault({ route: 'getObject', status: 429, times: 1 });
    fake.addFault({ route: 'addObjectMessage', status: 500, times: 1 });
    const before = acquisitions();
    const results = await client.batch([
      { method: 'GET', path: `/loyaltyObject/${loyaltyObject('a').id}` },
      { method: 'POST', path: `/loyaltyObject/${loyaltyObject('a').id}/addMessage`, body: { message: { id: 'm', header: 'h', body: 'b' } } },
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 500]);
    expect(fake.calls.filter((c) => c.viaBatch).map((c) => `${c.route} ${c.status}`)).toEqual(['getObject 429', 'addObjectMessage 500', 'getObject 200']);
    // Each part takes a limiter token: 2 parts, then 1 re-sent part.
    expect(acquisitions() - before).toBe(3);
  });

  it(`refuses more than ${MAX_BATCH_PARTS} parts`, async () => {
    const { client } = await setup();
    const parts = Array.from({ length: MAX_BATCH_PARTS + 1 }, () => ({ method: 'GET' as const, path: `/loyaltyClass/${ISSUER}.x` }));
    await expect(client.batch(parts)).rejects.toThrow(RangeError);
  });
});

describe('createGoogleWalletClient', () => {
  it('builds a working client from settings', async () => {
    const fake = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email });
    cleanups.push(() => fake.close());
    const settings = createGoogleWalletSettings({ issuerId: ISSUER, serviceAccount: account.serviceAccount, apiBaseUrl: fake.apiBaseUrl, tokenUrl: fake.tokenUrl, requestsPerSecond: 1000 });
    const client = createGoogleWalletClient(settings);
    expect((await client.ensureClass(loyaltyClass())).created).toBe(true);
  });
});

/** A URL on 127.0.0.1 where nothing listens (connection refused). */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/walletobjects/v1/x/addMessage`;
}
