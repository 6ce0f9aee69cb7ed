import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, sleep, startTestApp, type TestApp } from '../support/app.js';
import {
  adjust,
  adjustOk,
  issueCard,
  listUrl,
  pushesTo,
  pushToken,
  register,
  registrations,
  waitForCardJobsIdle,
  type RoleHeaders,
} from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { loadConfig } from '../../src/config.js';
import { APNS_PRODUCTION_HOST } from '../../src/wallets/apple/apns.js';

// Card change → APNs push, end to end: adjustment over HTTP → card-changed job → Apple adapter →
// real APNs client → local HTTP/2 APNs stand-in (reference section 2, checklist "Push").
// Every push count is taken after the job queue has drained (waitForCardJobsIdle), so "exactly
// one" means no further push can still arrive; nothing depends on how fast the machine is.

/** The pushes the stand-in received since `from` (an index into `received`). */
const since = (t: TestApp, from: number) => t.apnsStandIn.received.slice(from);
const tokensOf = (pushes: { token: string }[]) => pushes.map((p) => p.token).sort();

describe(`Apple pushes on card changes (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let ptid: string;
  let as: RoleHeaders;
  beforeAll(async () => {
    t = await startTestApp();
    ptid = t.material.passTypeIdentifier;
    ({ as } = await createProgramWithKeys(t.app, 'push'));
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A card whose issuance job has run (so it causes no push of its own), registered as given. */
  async function registeredCard(devices: [device: string, token: string][]) {
    const card = await issueCard(t, as);
    await waitForCardJobsIdle(t);
    for (const [device, token] of devices) await register(t, device, card, token);
    return card;
  }

  it('one change → exactly one push per distinct registered token, as POST /3/device/<token> with topic and {}', async () => {
    const t1 = pushToken(0x101);
    const t2 = pushToken(0x102);
    // Two devices with their own tokens, and a third registration that shares t1.
    const card = await registeredCard([
      ['push-dev-1', t1],
      ['push-dev-2', t2],
      ['push-dev-3', t1],
    ]);
    const from = t.apnsStandIn.received.length;
    await adjustOk(t, as, card.id, 5);
    await waitForCardJobsIdle(t);
    const pushes = since(t, from);
    expect(tokensOf(pushes)).toEqual([t1, t2].sort());
    for (const push of pushes) {
      expect(push).toMatchObject({ method: 'POST', path: `/3/device/${push.token}`, topic: ptid, body: '{}', priority: '10', status: 200 });
    }
    // Delivered: every registration stays.
    expect(await registrations(t, { serial: card.serial })).toHaveLength(3);
  });

  it('pushes go to the production APNs host unless configured otherwise (never the sandbox)', () => {
    // Over HTTP the pushes above reach the local stand-in; what production talks to is configuration.
    const config = loadConfig({ NODE_ENV: 'production', ADMIN_KEY: 'x'.repeat(32), PUBLIC_URL: 'https://wallet.example' });
    expect({ host: config.APNS_HOST, port: config.APNS_PORT }).toEqual({ host: APNS_PRODUCTION_HOST, port: 443 });
    expect(APNS_PRODUCTION_HOST).toBe('api.push.apple.com');
  });

  it('one device with two cards changed together → one push to its token', async () => {
    // A program of its own: changing its name changes both of its cards in one transaction.
    const { program, as: asOwn } = await createProgramWithKeys(t.app, 'push-two-cards');
    const token = pushToken(0x201);
    const device = 'push-dev-two-cards';
    const x = await issueCard(t, asOwn);
    const y = await issueCard(t, asOwn);
    await waitForCardJobsIdle(t);
    await register(t, device, x, token);
    await register(t, device, y, token);
    const { lastUpdated } = (await t.app.inject({ method: 'GET', url: listUrl(device, ptid) })).json();

    const from = t.apnsStandIn.received.length;
    const renamed = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/programs/${program.id}`,
      headers: asOwn('admin'),
      payload: { name: 'Renamed program' },
    });
    expect(renamed.statusCode).toBe(200);
    await waitForCardJobsIdle(t);
    expect(tokensOf(since(t, from))).toEqual([token]);
    // That one push is enough: the device's list call returns both changed serials.
    const changed = await t.app.inject({ method: 'GET', url: listUrl(device, ptid, lastUpdated) });
    expect(changed.statusCode).toBe(200);
    expect([...changed.json().serialNumbers].sort()).toEqual([x.serial, y.serial].sort());
  });

  it('no push for a card without registrations, nor for requests that change nothing', async () => {
    const lonely = await issueCard(t, as);
    await waitForCardJobsIdle(t);
    const token = pushToken(0x301);
    const watched = await registeredCard([['push-dev-unchanged', token]]);

    const from = t.apnsStandIn.received.length;
    await adjustOk(t, as, lonely.id, 5);
    await waitForCardJobsIdle(t);
    expect(since(t, from)).toEqual([]);

    // Requests that leave the watched card as it is: a refused adjustment, an idempotent replay,
    // reads, a repeated registration.
    const key = 'unchanged-replay-key';
    expect((await adjust(t, as, watched.id, 1, key)).statusCode).toBe(201);
    await waitForCardJobsIdle(t);
    const afterRealChange = t.apnsStandIn.received.length;
    expect(pushesTo(t, token)).toHaveLength(1);
    const replay = await adjust(t, as, watched.id, 1, key);
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect((await adjust(t, as, watched.id, -1_000_000)).statusCode).toBe(422);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/cards/${watched.id}`, headers: as('admin') })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: `/apple/v1/passes/${ptid}/${watched.serial}`, headers: watched.auth })).statusCode).toBe(200);
    expect(await register(t, 'push-dev-unchanged', watched, token)).toBe(200);
    await waitForCardJobsIdle(t);
    expect(since(t, afterRealChange)).toEqual([]);
  });

  it('400 BadDeviceToken → every registration with that token is deleted, others kept', async () => {
    const bad = pushToken(0x401);
    const good = pushToken(0x402);
    const card = await registeredCard([
      ['push-dev-bad', bad],
      ['push-dev-good', good],
    ]);
    const otherCard = await registeredCard([['push-dev-bad', bad]]);
    expect((await registrations(t, { pushToken: bad })).map((r) => r.serial_number).sort()).toEqual([card.serial, otherCard.serial].sort());
    t.apnsStandIn.setResponder((token) => (token === bad ? { status: 400, reason: 'BadDeviceToken' } : undefined));
    try {
      const from = t.apnsStandIn.received.length;
      await adjustOk(t, as, card.id, 5);
      await waitForCardJobsIdle(t);
      expect(since(t, from).map((p) => [p.token, p.status]).sort()).toEqual([[bad, 400], [good, 200]].sort());
    } finally {
      t.apnsStandIn.setResponder(undefined);
    }
    expect(await registrations(t, { pushToken: bad })).toEqual([]);
    expect(await registrations(t, { device: 'push-dev-good' })).toHaveLength(1);
    expect((await t.app.inject({ method: 'GET', url: listUrl('push-dev-bad', ptid) })).statusCode).toBe(204);
  });

  it('403 → the push is not retried and no registration is deleted', async () => {
    const token = pushToken(0x501);
    const card = await registeredCard([['push-dev-403', token]]);
    t.apnsStandIn.setResponder((tok) => (tok === token ? { status: 403, reason: 'BadCertificate' } : undefined));
    try {
      const from = t.apnsStandIn.received.length;
      await adjustOk(t, as, card.id, 5);
      await waitForCardJobsIdle(t);
      expect(since(t, from).map((p) => [p.token, p.status])).toEqual([[token, 403]]);
    } finally {
      t.apnsStandIn.setResponder(undefined);
    }
    expect(await registrations(t, { device: 'push-dev-403' })).toHaveLength(1);
  });

  it('410 with a timestamp older than the registration (device re-registered since) → kept; newer → deleted', async () => {
    const revived = pushToken(0x601);
    const dead = pushToken(0x602);
    const card = await registeredCard([
      ['push-dev-revived', revived],
      ['push-dev-dead', dead],
    ]);
    await sleep(20); // so the re-registration's updated_at is distinguishable from created_at
    expect(await register(t, 'push-dev-revived', card, revived)).toBe(200);
    const [row] = await registrations(t, { device: 'push-dev-revived' });
    const [deadRow] = await registrations(t, { device: 'push-dev-dead' });
    // APNs: the token became invalid after the first registration but before the re-registration.
    const invalidSince = row!.updated_at.getTime() - 1;
    expect(row!.created_at.getTime()).toBeLessThan(invalidSince);
    t.apnsStandIn.deadTokens.set(revived, invalidSince);
    t.apnsStandIn.deadTokens.set(dead, deadRow!.updated_at.getTime() + 1000);
    try {
      const from = t.apnsStandIn.received.length;
      await adjustOk(t, as, card.id, 5);
      await waitForCardJobsIdle(t);
      expect(since(t, from).map((p) => [p.token, p.status]).sort()).toEqual([[dead, 410], [revived, 410]].sort());
    } finally {
      t.apnsStandIn.deadTokens.clear();
    }
    expect(await registrations(t, { device: 'push-dev-revived' })).toHaveLength(1);
    expect(await registrations(t, { device: 'push-dev-dead' })).toEqual([]);
  });

  it('429 and 503 are retried with backoff and then delivered; registrations kept', async () => {
    const throttled = pushToken(0x701);
    const unavailable = pushToken(0x702);
    const card = await registeredCard([
      ['push-dev-429', throttled],
      ['push-dev-503', unavailable],
    ]);
    const answered = new Set<string>();
    t.apnsStandIn.setResponder((token) => {
      if (answered.has(token)) return undefined;
      answered.add(token);
      if (token === throttled) return { status: 429, reason: 'TooManyRequests' };
      if (token === unavailable) return { status: 503, reason: 'ServiceUnavailable' };
      return undefined;
    });
    try {
      const from = t.apnsStandIn.received.length;
      await adjustOk(t, as, card.id, 5);
      await waitForCardJobsIdle(t);
      const pushes = since(t, from);
      expect(pushes.filter((p) => p.token === throttled).map((p) => p.status)).toEqual([429, 200]);
      expect(pushes.filter((p) => p.token === unavailable).map((p) => p.status)).toEqual([503, 200]);
    } finally {
      t.apnsStandIn.setResponder(undefined);
    }
    expect(await registrations(t, { serial: card.serial })).toHaveLength(2);
  });

  it('reuses one HTTP/2 connection across changes and opens a new one after GOAWAY', async () => {
    const token = pushToken(0x801);
    const card = await registeredCard([['push-dev-conn', token]]);
    await adjustOk(t, as, card.id, 1);
    await waitForCardJobsIdle(t);
    const sessionsBefore = t.apnsStandIn.sessions;
    const firstSession = pushesTo(t, token)[0]!.session;
    await adjustOk(t, as, card.id, 1);
    await waitForCardJobsIdle(t);
    await adjustOk(t, as, card.id, 1);
    await waitForCardJobsIdle(t);
    expect(pushesTo(t, token).map((p) => p.session)).toEqual([firstSession, firstSession, firstSession]);
    expect(t.apnsStandIn.sessions).toBe(sessionsBefore);

    t.apnsStandIn.goawayAll();
    await adjustOk(t, as, card.id, 1);
    await waitForCardJobsIdle(t);
    const last = pushesTo(t, token)[3]!;
    expect(last.status).toBe(200);
    expect(last.session).toBe(sessionsBefore + 1);
    expect(t.apnsStandIn.sessions).toBe(sessionsBefore + 1);
  });
});

describe(`Apple pushes coalesce within the debounce window (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let as: RoleHeaders;
  beforeAll(async () => {
    t = await startTestApp({ env: { PASS_UPDATE_DEBOUNCE_SECONDS: '1' } });
    ({ as } = await createProgramWithKeys(t.app, 'debounce'));
  });
  afterAll(async () => {
    await t?.close();
  });

  const jobsFor = async (cardId: string) => {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pgboss.job where name like 'wallet-update-%' and singleton_key = ${cardId}
    `.execute(t.database.handle.db);
    return Number(rows[0]!.n);
  };

  async function rapidChanges(devices: [string, string][]) {
    const card = await issueCard(t, as);
    await waitForCardJobsIdle(t);
    for (const [device, token] of devices) await register(t, device, card, token);
    const jobsBefore = await jobsFor(card.id);
    const from = t.apnsStandIn.received.length;
    for (let i = 1; i <= 5; i++) {
      await adjustOk(t, as, card.id, i);
      if (i === 1) {
        // The first change's job waits out the debounce window before any worker may take it.
        const { rows } = await sql<{ delayed: boolean }>`
          select (start_after - created_on) >= interval '1 second' as delayed
          from pgboss.job where name like 'wallet-update-%' and singleton_key = ${card.id}
          order by created_on desc limit 1
        `.execute(t.database.handle.db);
        expect(rows[0]?.delayed).toBe(true);
      }
    }
    // The five changes became one queued job (at most one waiting job per card).
    expect(await jobsFor(card.id)).toBe(jobsBefore + 1);
    await waitForCardJobsIdle(t);
    return { card, pushes: since(t, from) };
  }

  it('five rapid adjustments → exactly one push', async () => {
    const token = pushToken(0x901);
    const { pushes } = await rapidChanges([['debounce-dev-1', token]]);
    expect(tokensOf(pushes)).toEqual([token]);
  });

  it('five rapid adjustments on a card with two devices → one push per token', async () => {
    const t1 = pushToken(0xa01);
    const t2 = pushToken(0xa02);
    const { pushes } = await rapidChanges([
      ['debounce-dev-2', t1],
      ['debounce-dev-3', t2],
    ]);
    expect(tokensOf(pushes)).toEqual([t1, t2].sort());
  });
});
