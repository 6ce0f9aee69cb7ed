/**
 * `npm run bench:cluster`: the service as several processes on one PostgreSQL (issue #13), started
 * from the compiled build (`node dist/server.js`, built first when stale) with roles. Prints figures
 * and ratios against baselines measured in the same run; it is not a test.
 *
 *   1. POS purchases through 1 vs 2 `api` instances: the same closed-loop clients (BENCH_CONCURRENCY)
 *      send purchases to one instance, or round-robin to two; the two sides take turns in 2-second
 *      slices (scripts/bench-support/harness.ts), so the machine's other load falls on both alike.
 *   2. Pushes per second with 1 vs 2 `worker` instances: a campaign to BENCH_PUSH_CARDS cards with a
 *      device each (no pacing), send → last push at the APNs stand-in; 1 worker before and after 2.
 *   3. Google Wallet requests per second across 2 workers (and the 2 API instances): BENCH_GOOGLE_CARDS
 *      cards are saved to Google (through the API instances) and then changed (the workers patch
 *      them); the Google fake records every arrival and answers 429 above 20 in any second, as Google
 *      does. Must be ≤ 20.
 *   4. What the PostgreSQL limiter could hold: grants per second of its schedule with 4 processes
 *      asking as fast as they can, against Google's 20.
 *
 * Every phase prints the CPU of each process as a share of the machine (all cores) over the phase:
 * the instances, the PostgreSQL backends of the bench database, and this process (load clients, the
 * APNs stand-in and the Google fake).
 *
 * Environment: DATABASE_URL (server for the bench database; local only), BENCH_SECONDS (8 measured
 * seconds per side of phase 1), BENCH_CONCURRENCY (32), BENCH_PUSH_CARDS (20000),
 * BENCH_GOOGLE_CARDS (200).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { JobQueue } from '../src/jobs/queue.js';
import { walletUpdateQueue } from '../src/updates/card-changes.js';
import { createDatabaseRateLimiter } from '../src/wallets/google/rate-limiter.js';
import { startApnsStandIn } from '../test/support/apns-stand-in.js';
import { startInstance, type ServiceInstance } from '../test/support/cluster.js';
import { createTestServiceAccount, startGoogleFake } from '../test/support/google-fake.js';
import { getTestCertificates } from '../test/support/test-certificates.js';
import {
  createBenchDatabase,
  envNumber,
  expectStatus,
  formatResult,
  httpRequest,
  keepAliveAgent,
  PostgresCpuMeter,
  runInterleaved,
  type CpuMeter,
} from './bench-support/harness.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ADMIN_KEY = 'bench-cluster-admin-key-0123456789';
const ISSUER = '3388000000012345678';
const CLOCK_TICKS = 100;

function pidCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

function pidMeter(pid: number): CpuMeter {
  let before = 0;
  return {
    start: () => void (before = pidCpuMs(pid)),
    stop: async () => pidCpuMs(pid) - before,
  };
}

/** CPU of named processes over a phase, as shares of the whole machine. */
async function cpuSplit<T>(label: string, meters: Record<string, CpuMeter>, work: () => Promise<T>): Promise<T> {
  const cores = availableParallelism();
  for (const meter of Object.values(meters)) await meter.start();
  const self = process.cpuUsage();
  const t0 = performance.now();
  const result = await work();
  const wallMs = performance.now() - t0;
  const selfUsage = process.cpuUsage(self);
  const selfMs = (selfUsage.user + selfUsage.system) / 1000;
  const parts: string[] = [];
  for (const [name, meter] of Object.entries(meters)) {
    const ms = await meter.stop();
    parts.push(`${name} ${ms === undefined ? '?' : ((ms / (wallMs * cores)) * 100).toFixed(0)} %`);
  }
  parts.push(`bench process ${((selfMs / (wallMs * cores)) * 100).toFixed(0)} %`);
  console.log(`    CPU (${label}, share of ${cores} cores over ${(wallMs / 1000).toFixed(1)} s): ${parts.join(', ')}`);
  return result;
}

async function main() {
  const seconds = envNumber('BENCH_SECONDS', 8);
  const concurrency = envNumber('BENCH_CONCURRENCY', 32);
  const pushCards = envNumber('BENCH_PUSH_CARDS', 20_000);
  const googleCards = envNumber('BENCH_GOOGLE_CARDS', 200);

  const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--if-stale'], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');

  const database = await createBenchDatabase();
  const handle = openDatabase({ databaseUrl: database.url, poolSize: 8 });
  const instances: ServiceInstance[] = [];
  const pgMeter = new PostgresCpuMeter(database.url, database.name);
  const certs = await getTestCertificates();
  const pem = (name: string) => readFileSync(path.join(certs.dir, name), 'utf8');
  const apns = await startApnsStandIn({ keyPem: pem('apns-server.key'), certPem: pem('apns-server.pem'), caPem: pem('root.pem') + pem('wwdr.pem'), expectedTopic: certs.passTypeIdentifier });
  const account = createTestServiceAccount();
  const google = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email, requestsPerSecondLimit: 20 });
  const accountFile = path.join(mkdtempSync(path.join(tmpdir(), 'walletcards-bench-')), 'service-account.json');
  writeFileSync(accountFile, JSON.stringify(account.serviceAccount), { mode: 0o600 });

  try {
    await migrateToLatest(handle.db);
    const env = {
      NODE_ENV: 'production',
      DATABASE_URL: database.url,
      ADMIN_KEY,
      PUBLIC_URL: 'https://wallet.bench',
      APPLE_CERT_DIR: certs.dir,
      APNS_HOST: '127.0.0.1',
      APNS_PORT: String(apns.port),
      APNS_CA_FILE: path.join(certs.dir, 'root.pem'),
      GOOGLE_ISSUER_ID: ISSUER,
      GOOGLE_SERVICE_ACCOUNT_FILE: accountFile,
      GOOGLE_WALLET_API_URL: google.apiBaseUrl,
      GOOGLE_TOKEN_URL: google.tokenUrl,
      GOOGLE_ISSUER_KEYS_URL: google.issuerKeysUrl,
      DEMO_PROGRAM: 'false',
      // As in production (request logs included); the instances announce their port at info.
      LOG_LEVEL: 'info',
    };
    console.log(`bench:cluster on ${availableParallelism()} cores, PostgreSQL database ${database.name}`);

    // ---- 1. POS purchases: 1 vs 2 api instances ----------------------------------------------
    const [apiA, apiB] = await Promise.all([startInstance('api-a', { ...env, ROLE: 'api' }), startInstance('api-b', { ...env, ROLE: 'api' })]);
    instances.push(apiA, apiB);
    const admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
    const program = await (await fetch(`${apiA.url}/api/v1/programs`, { method: 'POST', headers: admin, body: JSON.stringify({ slug: 'bench', name: 'Bench' }) })).json();
    const pos = (await (await fetch(`${apiA.url}/api/v1/programs/${program.id}/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ role: 'pos', name: 'till' }) })).json()).key;
    const CARDS = 1000 + pushCards + googleCards;
    await sql`
      INSERT INTO card (program_id, number, holder_name, phone, tier, consent, consent_at, referral_code, public_token, apple_serial, apple_auth_token)
      SELECT ${program.id}::uuid, lpad(i::text, 12, '0'), 'Holder ' || i, '+7902' || lpad(i::text, 7, '0'), 'standard', true, now(),
        'R' || i, 'pt' || md5(i::text), 'as' || md5(i::text || 's'), md5(i::text || 'a')
      FROM generate_series(1, ${CARDS}) AS i
    `.execute(handle.db);
    const cardIds = (await handle.db.selectFrom('card').select('id').orderBy('number').execute()).map((r) => r.id);
    const posCards = cardIds.slice(0, 1000);
    const port = (instance: ServiceInstance) => Number(new URL(instance.url).port);
    const agent = keepAliveAgent(concurrency * 2);
    let n = 0;
    const purchase = (target: () => ServiceInstance) => async () => {
      const i = n++;
      const card = posCards[i % posCards.length]!;
      await expectStatus(
        httpRequest(agent, port(target()), 'POST', `/api/v1/cards/${card}/purchases`, { authorization: `Bearer ${pos}`, 'content-type': 'application/json', 'idempotency-key': `b-${i}` }, JSON.stringify({ amount: 10_000 + (i % 500) })),
        201,
      );
    };
    let turn = 0;
    const meters = { 'api-a': pidMeter(apiA.child.pid!), 'api-b': pidMeter(apiB.child.pid!), postgres: pgMeter };
    console.log(`\n1. POS purchases, ${concurrency} clients, ${seconds} s per side in 2 s slices taking turns`);
    const [one, two] = await runInterleaved(
      [
        { label: '1 api instance', concurrency, operation: purchase(() => apiA), meters },
        { label: '2 api instances (round robin)', concurrency, operation: purchase(() => (turn++ % 2 ? apiB : apiA)), meters },
      ],
      { warmUpSeconds: 2, seconds, sliceSeconds: 2 },
    );
    console.log(`  ${formatResult(one!)}`);
    console.log(`  ${formatResult(two!)}`);
    console.log(`  → 2 instances / 1 instance: ${(two!.perSecond / one!.perSecond).toFixed(2)}×`);

    // ---- 2. pushes per second: 1 vs 2 workers --------------------------------------------------
    // A campaign to every card of a program with a device each, the way bulk pushes happen: chunks
    // of CAMPAIGN_CHUNK_SIZE recipients (one at a time, whichever worker takes it), each turning into
    // update jobs of 250 cards that any worker may take. No pacing: devices here never fetch.
    const pushProgram = await (await fetch(`${apiA.url}/api/v1/programs`, { method: 'POST', headers: admin, body: JSON.stringify({ slug: 'bench-push', name: 'Bench push' }) })).json();
    const marketer = (await (await fetch(`${apiA.url}/api/v1/programs/${pushProgram.id}/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ role: 'marketer', name: 'm' }) })).json()).key;
    await sql`UPDATE card SET program_id = ${pushProgram.id}::uuid WHERE id = ANY(${cardIds.slice(1000, 1000 + pushCards)}::uuid[])`.execute(handle.db);
    await sql`
      INSERT INTO apple_registration (device_library_identifier, pass_type_identifier, serial_number, push_token)
      SELECT 'dev-' || c.number, ${certs.passTypeIdentifier}, c.apple_serial, lpad(to_hex(c.number::int), 64, '0')
      FROM card c WHERE c.program_id = ${pushProgram.id}::uuid
    `.execute(handle.db);
    const jobs = new JobQueue(handle.db, { maintenance: false });
    await jobs.start();
    const idle = async () => {
      for (;;) {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pgboss.job WHERE name LIKE 'wallet-update-%' AND state IN ('created', 'retry', 'active')`.execute(handle.db);
        if (rows[0]!.n === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const workerEnv = { ...env, ROLE: 'worker', CAMPAIGN_PUSH_RATE: '100000', CAMPAIGN_FETCH_WINDOW_SECONDS: '0' };
    // The purchases of phase 1 (no worker ran then) drain before anything is measured.
    const workerA = await startInstance('worker-a', workerEnv);
    instances.push(workerA);
    await idle();
    let runs = 0;
    const pushRun = async (label: string, workerMeters: Record<string, CpuMeter>) => {
      apns.received.length = 0;
      const marketerHeaders = { authorization: `Bearer ${marketer}`, 'content-type': 'application/json' };
      const created = await (
        await fetch(`${apiB.url}/api/v1/campaigns`, { method: 'POST', headers: marketerHeaders, body: JSON.stringify({ name: `bench ${++runs}`, message: { ru: 'Акция', en: 'Offer' }, audience: { all: true } }) })
      ).json();
      const t0 = performance.now();
      return cpuSplit(label, { ...workerMeters, postgres: pgMeter }, async () => {
        const sent = await fetch(`${apiB.url}/api/v1/campaigns/${created.id}/send`, { method: 'POST', headers: { authorization: marketerHeaders.authorization } });
        if (sent.status !== 202) throw new Error(`campaign send: ${sent.status}`);
        while (apns.received.length < pushCards) await new Promise((resolve) => setTimeout(resolve, 50));
        const elapsed = (performance.now() - t0) / 1000;
        await idle();
        const bySession = new Map<number, number>();
        for (const push of apns.received) bySession.set(push.session, (bySession.get(push.session) ?? 0) + 1);
        console.log(
          `  ${label.padEnd(10)} ${pushCards} pushes in ${elapsed.toFixed(1)} s (send → last push): ${(pushCards / elapsed).toFixed(0)} pushes/s; per APNs connection: ${[...bySession.values()].join(' + ')}`,
        );
        return pushCards / elapsed;
      });
    };
    console.log(`\n2. A campaign to ${pushCards} devices (chunks of 1000, update jobs of 250 cards) to the APNs stand-in`);
    const oneWorker = await pushRun('1 worker', { 'worker-a': pidMeter(workerA.child.pid!) });
    const workerB = await startInstance('worker-b', workerEnv);
    instances.push(workerB);
    const twoWorkers = await pushRun('2 workers', { 'worker-a': pidMeter(workerA.child.pid!), 'worker-b': pidMeter(workerB.child.pid!) });
    await workerB.stop('SIGTERM');
    instances.splice(instances.indexOf(workerB), 1);
    const oneAgain = await pushRun('1 worker', { 'worker-a': pidMeter(workerA.child.pid!) });
    console.log(`  → 2 workers / 1 worker: ${(twoWorkers / ((oneWorker + oneAgain) / 2)).toFixed(2)}× (1 worker measured before and after)`);
    const workerB2 = await startInstance('worker-b', workerEnv);
    instances.push(workerB2);

    // ---- 3. Google requests per second across the processes ------------------------------------
    const googleSlice = cardIds.slice(1000 + pushCards);
    const tokens = await handle.db.selectFrom('card').select(['id', 'public_token']).where('id', 'in', googleSlice).execute();
    console.log(`\n3. Google Wallet: ${tokens.length} cards saved through the 2 API instances, then changed (2 workers patch them); the fake enforces 20/s`);
    google.arrivals.length = 0;
    const saveStart = performance.now();
    await cpuSplit('saves', { 'api-a': pidMeter(apiA.child.pid!), 'api-b': pidMeter(apiB.child.pid!), postgres: pgMeter }, () =>
      Promise.all(tokens.map((t, i) => fetch(`${(i % 2 ? apiB : apiA).url}/c/${t.public_token}/google`, { redirect: 'manual' }).then((r) => r.status))),
    );
    const saveSeconds = (performance.now() - saveStart) / 1000;
    const saveArrivals = google.arrivals.length;
    console.log(
      `  saves: ${saveArrivals} requests in ${saveSeconds.toFixed(1)} s = ${(saveArrivals / saveSeconds).toFixed(1)}/s; most in any 1 s window: ${google.maxArrivalsPerSecond()}; 429s: ${google.rateLimited}`,
    );
    google.arrivals.length = 0;
    const limitedBefore = google.rateLimited;
    const patchStart = performance.now();
    await cpuSplit('patches', { 'worker-a': pidMeter(workerA.child.pid!), 'worker-b': pidMeter(workerB2.child.pid!), postgres: pgMeter }, async () => {
      await handle.db.updateTable('card').set({ balance: sql<number>`balance + 7` }).where('id', 'in', googleSlice).execute();
      await jobs.insert(handle.db, googleSlice.map((cardId) => ({ name: walletUpdateQueue('google'), data: { cardId }, singletonKey: cardId })));
      await idle();
    });
    const patchSeconds = (performance.now() - patchStart) / 1000;
    console.log(
      `  patches: ${google.arrivals.length} requests in ${patchSeconds.toFixed(1)} s = ${(google.arrivals.length / patchSeconds).toFixed(1)}/s across 2 workers; most in any 1 s window: ${google.maxArrivalsPerSecond()} (limit 20); 429s: ${google.rateLimited - limitedBefore}`,
    );
    await jobs.stop();

    // ---- 4. what the PostgreSQL limiter could hold -----------------------------------------------
    console.log('\n4. The PostgreSQL limiter schedule, 4 processes (pools) asking as fast as they can (rate set to 100,000/s)');
    const pools = Array.from({ length: 4 }, () => openDatabase({ databaseUrl: database.url, poolSize: 2 }));
    try {
      const limiters = pools.map((p) => createDatabaseRateLimiter(p.db, { name: 'bench-capacity', ratePerSecond: 100_000 }));
      let grants = 0;
      const t0 = performance.now();
      const deadline = t0 + 3_000;
      await cpuSplit('limiter', { postgres: pgMeter }, () =>
        Promise.all(
          limiters.map(async (limiter) => {
            while (performance.now() < deadline) {
              await limiter.acquire();
              grants++;
            }
          }),
        ),
      );
      const perSecond = grants / ((performance.now() - t0) / 1000);
      console.log(`  ${perSecond.toFixed(0)} grants/s = ${(perSecond / 20).toFixed(0)}× Google's 20/s: PostgreSQL holds the schedule, no Redis needed`);
    } finally {
      for (const p of pools) await p.close();
    }
  } finally {
    await Promise.all(instances.map((i) => i.stop('SIGTERM')));
    await pgMeter.close();
    await google.close();
    await apns.close();
    await handle.close();
    await database.drop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
