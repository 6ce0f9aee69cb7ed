import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUTH_SETTINGS } from '../../src/cabinet/auth.js';
import { DEFAULT_JOIN_FORM_SETTINGS } from '../../src/enrollment/guard.js';
import { normalizePng } from '../../src/programs/images.js';
import { PNG } from 'pngjs';
import { startApnsStandIn, type ApnsStandIn } from '../support/apns-stand-in.js';
import { waitFor } from '../support/app.js';
import { pushToken } from '../support/apple-device.js';
import { ensureBuild, logLines, startInstance, type ServiceInstance } from '../support/cluster.js';
import { createTestDatabase, requirePostgres, type TestDatabase } from '../support/database.js';
import { createTestServiceAccount, startGoogleFake, type GoogleFake } from '../support/google-fake.js';
import { unpackPkpass } from '../support/pkpass.js';
import { getTestCertificates } from '../support/test-certificates.js';

// Many instances on one PostgreSQL (issue #13), as production runs them: two `api` and two `worker`
// processes from the compiled build (`node dist/server.js`), started together on an empty database,
// with the real APNs client against the APNs stand-in and the real Google client against the Google
// fake, which enforces Google's 20 requests per second per project like Google would.
const postgres = requirePostgres();
const ADMIN_KEY = 'cluster-admin-key-0123456789abcdef';
const METRICS_TOKEN = 'cluster-metrics-token-0123456789';
const ISSUER = '3388000000012345678';
const GOOGLE_LIMIT = 20;
const CHUNK = 50;

/** Another valid logo: the default one with its colours inverted; and the bytes the service will store for it. */
function invertedLogo(): { upload: Buffer; stored: Buffer } {
  const png = PNG.sync.read(readFileSync('passes/default/logo.png'));
  for (let i = 0; i < png.data.length; i += 4) for (let c = 0; c < 3; c++) png.data[i + c] = 255 - png.data[i + c]!;
  const upload = PNG.sync.write(png);
  return { upload, stored: normalizePng('logo', upload) };
}

describe.skipIf(postgres.skip)(`two api and two worker processes on one database (postgres) ${postgres.reason}`, () => {
  let database: TestDatabase;
  let apns: ApnsStandIn;
  let google: GoogleFake;
  let passTypeIdentifier: string;
  const instances: Record<'apiA' | 'apiB' | 'workerA' | 'workerB', ServiceInstance> = {} as never;
  const all = () => Object.values(instances);
  const db = () => database.handle.db;

  beforeAll(async () => {
    ensureBuild();
    const certs = await getTestCertificates();
    passTypeIdentifier = certs.passTypeIdentifier;
    const pem = (name: string) => readFileSync(path.join(certs.dir, name), 'utf8');
    apns = await startApnsStandIn({ keyPem: pem('apns-server.key'), certPem: pem('apns-server.pem'), caPem: pem('root.pem') + pem('wwdr.pem'), expectedTopic: passTypeIdentifier });
    const account = createTestServiceAccount();
    google = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email, requestsPerSecondLimit: GOOGLE_LIMIT });
    const accountFile = path.join(mkdtempSync(path.join(tmpdir(), 'walletcards-cluster-')), 'service-account.json');
    writeFileSync(accountFile, JSON.stringify(account.serviceAccount), { mode: 0o600 });
    // Nothing migrated: the four processes start together on an empty database.
    database = await createTestDatabase({ migrate: false });
    const env = {
      NODE_ENV: 'production',
      DATABASE_URL: database.url!,
      ADMIN_KEY,
      METRICS_TOKEN,
      PUBLIC_URL: 'https://wallet.test',
      APPLE_CERT_DIR: certs.dir,
      APNS_HOST: '127.0.0.1',
      APNS_PORT: String(apns.port),
      APNS_CA_FILE: path.join(certs.dir, 'root.pem'),
      GOOGLE_ISSUER_ID: ISSUER,
      GOOGLE_SERVICE_ACCOUNT_FILE: accountFile,
      GOOGLE_WALLET_API_URL: google.apiBaseUrl,
      GOOGLE_TOKEN_URL: google.tokenUrl,
      GOOGLE_ISSUER_KEYS_URL: google.issuerKeysUrl,
      GOOGLE_REQUESTS_PER_SECOND: String(GOOGLE_LIMIT),
      PASS_UPDATE_DEBOUNCE_SECONDS: '1',
      CAMPAIGN_CHUNK_SIZE: String(CHUNK),
      CAMPAIGN_FETCH_WINDOW_SECONDS: '0',
      // 300 devices a second: a 1,200-device campaign takes a few seconds, long enough to stop a worker in it.
      CAMPAIGN_PUSH_RATE: '300',
      TRUST_PROXY: '127.0.0.1',
      DEMO_PROGRAM: 'false',
      LOG_LEVEL: 'info',
    };
    const [apiA, apiB, workerA, workerB] = await Promise.all([
      startInstance('api-a', { ...env, ROLE: 'api' }),
      startInstance('api-b', { ...env, ROLE: 'api' }),
      startInstance('worker-a', { ...env, ROLE: 'worker' }),
      startInstance('worker-b', { ...env, ROLE: 'worker' }),
    ]);
    Object.assign(instances, { apiA, apiB, workerA, workerB });
  }, 300_000);

  afterAll(async () => {
    await Promise.all(all().map((instance) => instance.stop('SIGTERM')));
    await google?.close();
    await apns?.close();
    await database?.drop();
  }, 120_000);

  // ---- helpers ----------------------------------------------------------------------------------

  const admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
  async function call(instance: ServiceInstance, method: string, url: string, headers: Record<string, string> = {}, body?: unknown) {
    const res = await fetch(`${instance.url}${url}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body) }),
    });
    const text = Buffer.from(await res.arrayBuffer());
    return { status: res.status, body: text, json: () => JSON.parse(text.toString('utf8')) };
  }
  async function program(slug: string) {
    const created = await call(instances.apiA, 'POST', '/api/v1/programs', admin, { slug, name: `Program ${slug}` });
    expect(created.status, created.body.toString()).toBe(201);
    const id: string = created.json().id;
    const keys: Record<string, string> = {};
    for (const role of ['admin', 'marketer', 'pos']) {
      const key = await call(instances.apiB, 'POST', `/api/v1/programs/${id}/keys`, admin, { role, name: role });
      keys[role] = key.json().key;
    }
    const as = (role: 'admin' | 'marketer' | 'pos') => ({ authorization: `Bearer ${keys[role]}`, 'content-type': 'application/json' });
    return { id, as };
  }
  let phones = 0;
  async function issueCards(instance: (i: number) => ServiceInstance, as: (role: 'pos') => Record<string, string>, count: number) {
    return Promise.all(
      Array.from({ length: count }, async (_, i) => {
        phones++;
        const res = await call(instance(i), 'POST', '/api/v1/cards', as('pos'), { holder: { name: `Holder ${phones}`, phone: `+7918${String(1_000_000 + phones).slice(-7)}` }, consent: true });
        expect(res.status, res.body.toString()).toBe(201);
        const id: string = res.json().id;
        return db().selectFrom('card').select(['id', 'apple_serial', 'apple_auth_token', 'public_token']).where('id', '=', id).executeTakeFirstOrThrow();
      }),
    );
  }
  /** Every wallet update enqueued so far has run (no job waiting, retrying or running). */
  async function walletUpdatesIdle() {
    await waitFor(
      async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pgboss.job WHERE name LIKE 'wallet-update-%' AND state IN ('created', 'retry', 'active')`.execute(db());
        return rows[0]!.n === 0;
      },
      { what: 'wallet updates to finish', timeoutMs: 60_000 },
    );
  }
  const ledgerMismatches = async () =>
    Number(
      (
        await sql<{ n: number }>`SELECT count(*)::int AS n FROM card c WHERE c.balance <> (SELECT coalesce(sum(points), 0) FROM ledger_entry l WHERE l.card_id = c.id)`.execute(db())
      ).rows[0]!.n,
    );

  // ---- tests ------------------------------------------------------------------------------------

  it('four instances starting together on an empty database: migrations once, queues created, no error', async () => {
    const migrated = all().filter((i) => logLines(i.output()).some((l) => l.msg === 'database migrated'));
    expect(migrated).toHaveLength(1);
    const files = readdirSync('migrations').filter((f) => f.endsWith('.sql') && !f.endsWith('.down.sql'));
    const { rows } = await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(db());
    expect(rows.map((r) => r.name).sort()).toEqual(files.map((f) => f.slice(0, -4)).sort());
    const queues = await sql<{ name: string }>`SELECT name FROM pgboss.queue`.execute(db());
    expect(queues.rows.map((r) => r.name)).toEqual(expect.arrayContaining(['wallet-update-apple', 'wallet-update-google', 'campaign-chunk', 'webhook-delivery']));
    for (const instance of all()) {
      const errors = logLines(instance.output()).filter((l) => Number(l.level) >= 50);
      expect(errors, `${instance.name}: ${instance.output()}`).toEqual([]);
    }
    // Roles: a worker serves only health and metrics; every instance reports ready with its role.
    for (const [instance, role] of [[instances.apiA, 'api'], [instances.workerB, 'worker']] as const) {
      const ready = await call(instance, 'GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.json()).toMatchObject({ status: 'ok', role, database: 'postgres', queue: 'ok', certificate: { state: 'ok' } });
      const metrics = (await call(instance, 'GET', '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })).body.toString();
      expect(metrics).toMatch(/apple_certificate_expiry_days\{certificate="pass_type_id"\} \d+/);
    }
    expect((await call(instances.workerA, 'GET', '/api/v1/programs', admin)).status).toBe(404);
    expect((await call(instances.apiB, 'GET', '/api/v1/programs', admin)).status).toBe(200);
  });

  it('a burst of purchases over both API instances: exactly one push per change per device, balances equal ledger sums', async () => {
    const { as } = await program('burst');
    const cards = await issueCards((i) => (i % 2 ? instances.apiA : instances.apiB), as, 40);
    // Each card on its own device, registered through either instance.
    await Promise.all(
      cards.map(async (card, i) => {
        const res = await call(
          i % 2 ? instances.apiB : instances.apiA,
          'POST',
          `/apple/v1/devices/device-${i}/registrations/${passTypeIdentifier}/${card.apple_serial}`,
          { authorization: `ApplePass ${card.apple_auth_token}`, 'content-type': 'application/json' },
          { pushToken: pushToken(0x1000 + i) },
        );
        expect(res.status).toBe(201);
      }),
    );
    await walletUpdatesIdle();
    apns.received.length = 0;

    // One purchase per card, all at once, alternating instances; every third is retried with its
    // Idempotency-Key on the other instance (a replay, not a second purchase).
    await Promise.all(
      cards.map(async (card, i) => {
        const key = `till-${i}`;
        const headers = { ...as('pos'), 'idempotency-key': key };
        const first = await call(i % 2 ? instances.apiA : instances.apiB, 'POST', `/api/v1/cards/${card.id}/purchases`, headers, { amount: 100_000 });
        expect(first.status, first.body.toString()).toBe(201);
        if (i % 3 === 0) {
          const retry = await call(i % 2 ? instances.apiB : instances.apiA, 'POST', `/api/v1/cards/${card.id}/purchases`, headers, { amount: 100_000 });
          expect(retry.json()).toEqual(first.json());
        }
      }),
    );
    await walletUpdatesIdle();

    for (let i = 0; i < cards.length; i++) {
      const pushes = apns.received.filter((p) => p.token === pushToken(0x1000 + i));
      expect(pushes.map((p) => p.status), `device ${i}`).toEqual([200]);
    }
    expect(apns.received).toHaveLength(cards.length);
    const purchases = await db().selectFrom('purchase').select((eb) => eb.fn.countAll<number>().as('n')).where('card_id', 'in', cards.map((c) => c.id)).executeTakeFirstOrThrow();
    expect(Number(purchases.n)).toBe(cards.length);
    expect(await ledgerMismatches()).toBe(0);
  });

  it('Google sees at most 20 requests in any one second from all four processes together, and no 429', async () => {
    const { as } = await program('google');
    const cards = await issueCards((i) => (i % 2 ? instances.apiA : instances.apiB), as, 60);
    google.arrivals.length = 0;
    // "Add to Google Wallet" on every card at once through both API instances: each inserts the
    // card's loyalty object (and the tier's class) through the shared limiter.
    await Promise.all(
      cards.map(async (card, i) => {
        const res = await fetch(`${(i % 2 ? instances.apiB : instances.apiA).url}/c/${card.public_token}/google`, { redirect: 'manual' });
        expect(res.status).toBe(302);
      }),
    );
    // Then a purchase on each: both workers patch the objects.
    await Promise.all(
      cards.map(async (card, i) => {
        const res = await call(i % 2 ? instances.apiA : instances.apiB, 'POST', `/api/v1/cards/${card.id}/purchases`, as('pos'), { amount: 50_000 });
        expect(res.status).toBe(201);
      }),
    );
    await walletUpdatesIdle();

    const patched = google.calls.filter((c) => c.route === 'patchObject' && c.status === 200);
    expect(new Set(patched.map((c) => c.path)).size).toBe(cards.length);
    // Demand was far above the limit (60 concurrent saves); the limiter held all four processes to it.
    expect(google.arrivals.length).toBeGreaterThanOrEqual(2 * cards.length);
    expect(google.rateLimited).toBe(0);
    expect(google.calls.filter((c) => c.status === 429)).toEqual([]);
    expect(google.maxArrivalsPerSecond()).toBeLessThanOrEqual(GOOGLE_LIMIT);
    const balances = await db().selectFrom('card').select(['google_object_id', 'balance']).where('id', 'in', cards.map((c) => c.id)).execute();
    for (const row of balances) expect(google.objects.get(row.google_object_id!)?.loyaltyPoints?.balance?.int).toBe(row.balance);
  });

  it('per-address limits of the join form and the cabinet sign-in count the forwarded client across both instances', async () => {
    await program('limits');
    const post = (instance: ServiceInstance, url: string, client: string) =>
      fetch(`${instance.url}${url}`, { method: 'POST', headers: { 'x-forwarded-for': client, 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=x' }).then((r) => r.status);
    for (const [url, limit] of [
      ['/join/limits', DEFAULT_JOIN_FORM_SETTINGS.postsPerMinute],
      ['/app/sign-in', DEFAULT_AUTH_SETTINGS.postsPerMinute],
    ] as const) {
      const statuses: number[] = [];
      for (let i = 0; i < limit + 6; i++) statuses.push(await post(i % 2 ? instances.apiB : instances.apiA, url, '203.0.113.7'));
      expect(statuses.filter((s) => s === 429), url).toHaveLength(6);
      expect(statuses.slice(0, limit).every((s) => s !== 429), url).toBe(true);
      // Another client behind the same proxy is counted on its own.
      expect(await post(instances.apiB, url, '203.0.113.8')).not.toBe(429);
    }
  });

  it('an image changed through instance A is in the pass served by instance B at once', async () => {
    const { id, as } = await program('images');
    const [card] = await issueCards(() => instances.apiA, as, 1);
    const passFrom = async (instance: ServiceInstance) => {
      const res = await call(instance, 'GET', `/c/${card!.public_token}/card.pkpass`);
      expect(res.status).toBe(200);
      return unpackPkpass(res.body);
    };
    const defaultLogo = readFileSync('passes/default/logo.png');
    // Instance B has signed this program's pass (its image cache holds the default logo).
    expect((await passFrom(instances.apiB))['logo.png']).toEqual(defaultLogo);
    const logo = invertedLogo();
    expect(logo.stored).not.toEqual(defaultLogo);
    const put = await call(instances.apiA, 'PUT', `/api/v1/programs/${id}/images/logo`, { authorization: as('admin').authorization, 'content-type': 'image/png' }, logo.upload);
    expect(put.status, put.body.toString()).toBeLessThan(300);
    expect((await passFrom(instances.apiB))['logo.png']).toEqual(logo.stored);
  });

  it('SIGTERM to one worker in the middle of a campaign: the other finishes it, every recipient once', async () => {
    const { id: programId, as } = await program('campaign');
    const RECIPIENTS = 1200;
    await sql`
      INSERT INTO card (program_id, number, holder_name, phone, tier, consent, consent_at, referral_code, public_token, apple_serial, apple_auth_token)
      SELECT ${programId}::uuid, lpad(i::text, 12, '0'), 'Holder ' || i, '+7901' || lpad(i::text, 7, '0'), 'standard', true, now(),
        'R' || i, 'pt' || md5(i::text || ${programId}), 'as' || md5(i::text || 's' || ${programId}), md5(i::text || 'a')
      FROM generate_series(1, ${RECIPIENTS}) AS i
    `.execute(db());
    await sql`
      INSERT INTO apple_registration (device_library_identifier, pass_type_identifier, serial_number, push_token)
      SELECT 'dev-' || c.number, ${passTypeIdentifier}, c.apple_serial, lpad(to_hex(200000 + c.number::int), 64, '0')
      FROM card c WHERE c.program_id = ${programId}::uuid
    `.execute(db());
    await walletUpdatesIdle();
    apns.received.length = 0;

    const created = await call(instances.apiA, 'POST', '/api/v1/campaigns', as('marketer'), {
      name: 'Drain test',
      message: { ru: 'Бонус всем', en: 'A bonus for everyone' },
      audience: { all: true },
      bonusPoints: 10,
      // Every recipient, no held-back control group: the test counts each card once.
      controlShare: 0,
    });
    expect(created.status, created.body.toString()).toBe(201);
    const campaignId: string = created.json().id;
    expect((await call(instances.apiB, 'POST', `/api/v1/campaigns/${campaignId}/send`, as('marketer'))).status).toBe(202);
    const progress = async () => db().selectFrom('campaign').select(['status', 'processed', 'targeted']).where('id', '=', campaignId).executeTakeFirstOrThrow();
    await waitFor(async () => (await progress()).processed >= 3 * CHUNK, { what: 'the campaign to be under way', timeoutMs: 60_000 });

    const stopped = instances.workerA;
    const exitCode = await stopped.stop('SIGTERM');
    const atStop = await progress();
    expect(exitCode, stopped.output()).toBe(0);
    expect(stopped.output()).toMatch(/shutting down/);
    // The stop happened mid-campaign, not after it.
    expect(atStop.status).toBe('sending');
    expect(atStop.processed).toBeLessThan(RECIPIENTS);

    await waitFor(async () => (await progress()).status === 'sent', { what: 'worker-b to finish the campaign', timeoutMs: 120_000 });
    await walletUpdatesIdle();
    expect(await progress()).toMatchObject({ status: 'sent', targeted: RECIPIENTS, processed: RECIPIENTS });
    const { rows } = await sql<{ once: number; other: number }>`
      SELECT count(*) FILTER (WHERE n = 1)::int AS once, count(*) FILTER (WHERE n <> 1)::int AS other
      FROM (SELECT c.id, (SELECT count(*) FROM ledger_entry l WHERE l.card_id = c.id AND l.kind = 'campaign_bonus') AS n
            FROM card c WHERE c.program_id = ${programId}::uuid) per_card
    `.execute(db());
    expect(rows[0]).toEqual({ once: RECIPIENTS, other: 0 });
    expect(await ledgerMismatches()).toBe(0);
    // One push per device, whichever worker sent it.
    const perToken = new Map<string, number>();
    for (const push of apns.received) perToken.set(push.token, (perToken.get(push.token) ?? 0) + 1);
    expect(perToken.size).toBe(RECIPIENTS);
    expect([...perToken.values()].every((n) => n === 1)).toBe(true);
  });
});
