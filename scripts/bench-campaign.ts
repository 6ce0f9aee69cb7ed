/**
 * `npm run bench:campaign`: one campaign to a quarter of a million cards on real PostgreSQL, as the
 * small production machine (2 cores) would run it. Prints figures and the targets; not a test.
 *
 * Setup: a new database `walletcards_bench_<random>` on DATABASE_URL's server (default the local
 * postgres://postgres@127.0.0.1:5432/postgres), migrated, dropped at the end. Three processes:
 *   - this one: seeds with INSERT … SELECT generate_series (BENCH_CARDS cards with marketing
 *     consent, every other one installed on a device, two purchases per card for the RFM figure),
 *     drives the API and watches;
 *   - the service (bench-support/campaign-service.ts): the whole app as server.ts wires it, every
 *     worker on; it measures its own peak RSS, event-loop delay and the passes it signs;
 *   - the devices (bench-support/campaign-devices.ts): the APNs stand-in, and for every push a
 *     device that lists its changed passes and downloads the new one from the service.
 * Then `POST /api/v1/campaigns {audience: {all: true}}` + `/send`, and the clock runs until the
 * campaign is sent, every device was pushed and every device fetched its pass.
 *
 * Targets (issue): the whole fan-out (send → last push) under 2 minutes, peak RSS of the service
 * under 300 MB, no event-loop stall over 100 ms.
 *
 * Environment: BENCH_CARDS (250000), BENCH_FETCH_CONCURRENCY (32), BENCH_TIMEOUT_SECONDS (900),
 * BENCH_SERVICE_NODE_FLAGS (node flags for the service process only),
 * CAMPAIGN_PUSH_RATE / CAMPAIGN_CHUNK_SIZE (the service's configuration; defaults as in production).
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { generateDevCertificates } from '../src/wallets/apple/certificates.js';
import { openDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { loadConfig } from '../src/config.js';
import { readFileSync } from 'node:fs';
import {
  benchPool,
  createBenchDatabase,
  envNumber,
  forkChild,
  httpRequest,
  keepAliveAgent,
  PostgresCpuMeter,
  type ChildHandle,
} from './bench-support/harness.js';
import { StatementStats } from './bench-support/statements.js';
import type { CampaignServiceMessage, ServiceStats } from './bench-support/campaign-service.js';
import type { CampaignDevicesMessage, DevicesStats } from './bench-support/campaign-devices.js';

const TARGET_FANOUT_SECONDS = 120;
const TARGET_RSS_MB = 300;
const TARGET_STALL_MS = 100;
const PASS_TYPE_IDENTIFIER = 'pass.dev.walletcards.bench';

/**
 * CPU milliseconds of one raw RSA-2048 signature (the pass signer's key, SHA-1 over a payload the
 * size of a pass's signed attributes, as bench:passes section 1's floor), measured in this process
 * for about `seconds` of CPU: the one cost every re-signed pass must pay (issue #14's target: service
 * CPU per pushed and re-fetched device ≤ 2× this, measured in the same run).
 */
function rsaSignCpuMs(key: KeyObject, seconds = 1): number {
  const payload = randomBytes(95);
  const started = process.cpuUsage();
  let signatures = 0;
  let spentMs = 0;
  while (spentMs < seconds * 1000) {
    for (let i = 0; i < 20; i++) sign('sha1', payload, key);
    signatures += 20;
    const used = process.cpuUsage(started);
    spentMs = (used.user + used.system) / 1000;
  }
  return spentMs / signatures;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

/** Busy and total CPU milliseconds of the whole machine since boot (/proc/stat), Linux only. */
function machineCpuMs(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const total = fields.reduce((sum, value) => sum + value, 0);
    return { busy: ((total - idle) * 1000) / 100, total: (total * 1000) / 100 };
  } catch {
    return undefined;
  }
}

async function main() {
  const cards = Math.round(envNumber('BENCH_CARDS', 250_000));
  const timeoutMs = envNumber('BENCH_TIMEOUT_SECONDS', 900) * 1000;
  const defaults = loadConfig({});
  const pushRate = process.env.CAMPAIGN_PUSH_RATE ?? String(defaults.CAMPAIGN_PUSH_RATE);
  const chunkSize = process.env.CAMPAIGN_CHUNK_SIZE ?? String(defaults.CAMPAIGN_CHUNK_SIZE);
  const adminKey = `bench-admin-${randomBytes(16).toString('hex')}`;

  // One certificate chain for both children: the service's client certificate and the stand-in's server certificate.
  const certDir = mkdtempSync(path.join(tmpdir(), 'walletcards-bench-campaign-'));
  await generateDevCertificates(certDir, { passTypeIdentifier: PASS_TYPE_IDENTIFIER, teamIdentifier: 'BENCH12345' });
  const database = await createBenchDatabase();
  const pool = benchPool({ connectionString: database.url, max: 4 });
  let service: ChildHandle<CampaignServiceMessage> | undefined;
  let devices: ChildHandle<CampaignDevicesMessage> | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      await service?.stop();
      await devices?.stop();
      await pool.end();
      await database.drop();
      rmSync(certDir, { recursive: true, force: true });
    })());
  // Ctrl-C (or a timeout's SIGTERM) still drops the database and stops the children.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  }
  try {
    const migrating = openDatabase({ databaseUrl: database.url, poolSize: 2 });
    await migrateToLatest(migrating.db);
    await migrating.close();

    devices = forkChild<CampaignDevicesMessage>(path.join(here, 'bench-support/campaign-devices.ts'), {
      env: { BENCH_CERT_DIR: certDir, BENCH_PASS_TYPE_ID: PASS_TYPE_IDENTIFIER },
    });
    const { port: apnsPort } = await devices.next('ready');
    service = forkChild<CampaignServiceMessage>(path.join(here, 'bench-support/campaign-service.ts'), {
      // BENCH_SERVICE_NODE_FLAGS: node flags for the service only (e.g. --max-semi-space-size=4).
      extraExecArgv: (process.env.BENCH_SERVICE_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
      env: {
        BENCH_DATABASE_URL: database.url,
        BENCH_ADMIN_KEY: adminKey,
        BENCH_APNS_PORT: String(apnsPort),
        BENCH_CERT_DIR: certDir,
        CAMPAIGN_PUSH_RATE: pushRate,
        CAMPAIGN_CHUNK_SIZE: chunkSize,
      },
    });
    const { port, passTypeIdentifier } = await service.next('ready');
    const signerKey = createPrivateKey(readFileSync(path.join(certDir, 'signerKey.pem'), 'utf8'));
    const rsaBefore = rsaSignCpuMs(signerKey);
    service.send({ type: 'stats' });
    const idle = (await service.next('stats')) as ServiceStats;
    const agent = keepAliveAgent(4);
    const api = async (method: string, url: string, key: string, body?: unknown) => {
      const answer = await httpRequest(agent, port, method, url, { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body ? JSON.stringify(body) : undefined);
      if (answer.status >= 300) throw new Error(`${method} ${url} answered ${answer.status}: ${answer.body}`);
      return JSON.parse(answer.body || 'null');
    };

    // ---- seed ------------------------------------------------------------------------------
    const program = await api('POST', '/api/v1/programs', adminKey, { slug: 'bench-campaign', name: 'Bench campaign' });
    const { key: marketerKey } = await api('POST', `/api/v1/programs/${program.id}/keys`, adminKey, { role: 'marketer', name: 'bench' });
    const seedStarted = performance.now();
    await pool.query(
      `INSERT INTO card (program_id, number, holder_name, phone, tier, consent, consent_at, referral_code, public_token, apple_serial,
                         apple_auth_token, created_at)
       SELECT $1, lpad(i::text, 12, '0'), 'Holder ' || i, '+7900' || lpad(i::text, 7, '0'), 'standard', true, now(), 'R' || i,
              'pt' || md5(i::text), 'as' || md5(i::text || 's'), md5(i::text || 'a'), now() - (i % 700) * interval '1 day'
       FROM generate_series(1, $2::int) AS i`,
      [program.id, cards],
    );
    const registered = await pool.query(
      `INSERT INTO apple_registration (device_library_identifier, pass_type_identifier, serial_number, push_token)
       SELECT 'dev' || md5(c.apple_serial), $2, c.apple_serial, md5(c.apple_serial || 'x') || md5(c.apple_serial || 'y')
       FROM card c WHERE c.program_id = $1 AND c.number::bigint % 2 = 0`,
      [program.id, passTypeIdentifier],
    );
    await pool.query(
      `INSERT INTO purchase (program_id, card_id, amount, redeemed, accrued, payable, created_at)
       SELECT $1, c.id, a.amount, 0, 0, a.amount, now() - (((c.number::bigint * 7 + k * 13) % 400) || ' days')::interval
       FROM card c CROSS JOIN generate_series(1, 2) AS k
       CROSS JOIN LATERAL (SELECT 1000 + ((c.number::bigint * 31 + k) % 100000)::int AS amount) a
       WHERE c.program_id = $1`,
      [program.id],
    );
    await pool.query('VACUUM ANALYZE');
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const expectedPushes = registered.rowCount ?? 0;
    devices.send({ type: 'load', databaseUrl: database.url, passTypeIdentifier, servicePort: port });
    await devices.next('loaded');

    // ---- RFM at this size ------------------------------------------------------------------
    const segmentTimes: number[] = [];
    let segments: Array<{ code: string; cards: number }> = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      segments = (await api('GET', '/api/v1/segments', marketerKey)).segments;
      segmentTimes.push(performance.now() - started);
    }

    // ---- the campaign ------------------------------------------------------------------------
    service.send({ type: 'mark' });
    await service.next('marked');
    // Statements per pushed device and where PostgreSQL's time goes (pg_stat_statements, when preloaded).
    const statements = await StatementStats.open(pool, database.name);
    const statementsBefore = await statements.snapshot();
    const postgresCpu = new PostgresCpuMeter(database.url, database.name);
    await postgresCpu.start();
    devices.send({ type: 'stats' });
    const devicesCpuBefore = (await devices.next('stats')).cpuMs;
    const parentCpuBefore = process.cpuUsage();
    const machineBefore = machineCpuMs();
    const campaign = await api('POST', '/api/v1/campaigns', marketerKey, {
      name: 'Bench: everyone',
      message: { ru: 'Скидка 20% на всё до воскресенья', en: '20% off everything until Sunday' },
      audience: { all: true },
      // Every card, as before control groups existed: the fan-out's figures stay comparable.
      controlShare: 0,
    });
    const sentAt = Date.now();
    await api('POST', `/api/v1/campaigns/${campaign.id}/send`, marketerKey);
    let maxBacklog = 0;
    let lastBacklog = 0;
    let last: { status: string; processed: number; targeted: number } = { status: 'sending', processed: 0, targeted: 0 };
    let deviceStats: DevicesStats | undefined;
    let lastPrint = 0;
    for (let round = 0; ; round++) {
      await sleep(500);
      const row = await pool.query<{ status: string; processed: number; skipped: number; targeted: number }>(
        'SELECT status, processed, skipped, targeted FROM campaign WHERE id = $1',
        [campaign.id],
      );
      last = { status: row.rows[0]!.status, processed: row.rows[0]!.processed + row.rows[0]!.skipped, targeted: row.rows[0]!.targeted };
      // Every 2 s, the count the backpressure uses (cards in waiting jobs; the partial index of waiting jobs).
      if (round % 4 === 0) {
        const backlog = await pool.query<{ n: number }>(
          `SELECT coalesce(sum(coalesce(jsonb_array_length(data -> 'cardIds'), 1)), 0)::int AS n FROM pgboss.job WHERE name = 'wallet-update-apple' AND state < 'active'`,
        );
        lastBacklog = backlog.rows[0]!.n;
        maxBacklog = Math.max(maxBacklog, lastBacklog);
      }
      devices.send({ type: 'stats' });
      deviceStats = await devices.next('stats');
      const elapsed = Date.now() - sentAt;
      if (elapsed - lastPrint >= 10_000) {
        lastPrint = elapsed;
        console.log(
          `  t+${Math.round(elapsed / 1000)}s  campaign ${last.status} ${last.processed}/${last.targeted}  pushes ${deviceStats.answered}/${expectedPushes}` +
            `  passes fetched ${deviceStats.fetched} (queue ${deviceStats.queued})  update backlog ${lastBacklog}`,
        );
      }
      const devicesDone = deviceStats.answered >= expectedPushes && deviceStats.fetched + deviceStats.fetchErrors >= expectedPushes && deviceStats.queued === 0;
      if (last.status === 'sent' && devicesDone) break;
      if (elapsed > timeoutMs) {
        console.log(`  timed out after ${Math.round(elapsed / 1000)} s`);
        const metrics = await httpRequest(agent, port, 'GET', '/metrics');
        console.log(metrics.body.split('\n').filter((line) => /^(apple_pushes|google_wallet)/.test(line)).join('\n'));
        break;
      }
    }
    service.send({ type: 'stats' });
    const stats = (await service.next('stats')) as ServiceStats;
    const machineAfter = machineCpuMs();
    const postgresMs = await postgresCpu.stop();
    await postgresCpu.close();
    const parentCpu = process.cpuUsage(parentCpuBefore);
    const cpu = {
      service: stats.cpuMs,
      devices: deviceStats!.cpuMs - devicesCpuBefore,
      postgres: postgresMs ?? 0,
      bench: (parentCpu.user + parentCpu.system) / 1000,
    };
    const statementsAfter = await statements.snapshot();
    const rsaAfter = rsaSignCpuMs(signerKey);
    await sleep(1500); // the service writes pass-fetch counts once a second
    const figures = await api('GET', `/api/v1/campaigns/${campaign.id}`, marketerKey);
    const times = await pool.query<{ started_at: Date; finished_at: Date | null }>('SELECT started_at, finished_at FROM campaign WHERE id = $1', [campaign.id]);

    // ---- report ------------------------------------------------------------------------------
    const d = deviceStats!;
    const fanOutSeconds = d.lastPushAt ? (d.lastPushAt - sentAt) / 1000 : Number.NaN;
    const pushSpan = d.firstPushAt && d.lastPushAt ? (d.lastPushAt - d.firstPushAt) / 1000 : Number.NaN;
    const chunksSeconds = times.rows[0]?.finished_at ? (times.rows[0].finished_at.getTime() - sentAt) / 1000 : Number.NaN;
    const refetchSeconds = d.lastFetchAt ? (d.lastFetchAt - sentAt) / 1000 : Number.NaN;
    const signSpan = stats.signFirstAt && stats.signLastAt ? (stats.signLastAt - stats.signFirstAt) / 1000 : Number.NaN;
    const verdict = (ok: boolean) => (ok ? 'meets target' : 'MISSES target');
    console.log(`\nCampaign fan-out benchmark: Node ${process.version}, ${(await import('node:os')).availableParallelism()} CPUs, PostgreSQL ${database.name}`);
    console.log(`  seed: ${cards} cards (marketing consent), ${expectedPushes} installed on a device, ${cards * 2} purchases, in ${round(seedSeconds)} s`);
    console.log(`  service configuration: CAMPAIGN_PUSH_RATE=${pushRate} devices/s, CAMPAIGN_CHUNK_SIZE=${chunkSize}; devices fetch with ${process.env.BENCH_FETCH_CONCURRENCY ?? 32} connections\n`);
    console.log(`  GET /segments (RFM of ${cards} cards, one SQL statement): ${segmentTimes.map((ms) => `${Math.round(ms)} ms`).join(', ')}`);
    console.log(`    ${segments.map((s) => `${s.code} ${s.cards}`).join(', ')}`);
    console.log(`  recipients: ${last.targeted}, processed ${last.processed}, status ${last.status}`);
    console.log(`  chunks (send → campaign sent):          ${round(chunksSeconds)} s`);
    console.log(`  fan-out (send → last push):             ${round(fanOutSeconds)} s   target < ${TARGET_FANOUT_SECONDS} s: ${verdict(fanOutSeconds < TARGET_FANOUT_SECONDS)}`);
    console.log(`  pushes: ${d.answered} accepted by the stand-in, ${round(d.answered / pushSpan, 0)} pushes/s over ${round(pushSpan)} s (first to last push)`);
    console.log(`  re-fetched passes: ${d.fetched} (${d.fetchErrors} errors${d.firstFetchError ? `, first: ${d.firstFetchError}` : ''}), last at send + ${round(refetchSeconds)} s`);
    console.log(`  passes signed by the service: ${stats.signed}, ${round(stats.signed / signSpan, 0)} per second over ${round(signSpan)} s`);
    console.log(`  wallet-update backlog (Apple card updates waiting), max: ${maxBacklog}`);
    console.log(`  service peak RSS: ${round(stats.maxRssMb)} MB (${round(idle.rssMb)} MB when it was ready, ${round(stats.rssMb)} MB at the end: heap ${round(stats.heapUsedMb)} of ${round(stats.heapTotalMb)} MB, external ${round(stats.externalMb)} MB; ready: heap ${round(idle.heapUsedMb)} of ${round(idle.heapTotalMb)} MB, external ${round(idle.externalMb)} MB)   target < ${TARGET_RSS_MB} MB: ${verdict(stats.maxRssMb < TARGET_RSS_MB)}`);
    const e = stats.eventLoop;
    console.log(
      `  service event loop: delay max ${round(e.maxMs)} ms, p99 ${round(e.p99Ms)} ms, mean ${round(e.meanMs, 2)} ms; ` +
        `10 ms ticker: ${e.stallsOver100Ms} gaps over 100 ms (largest ${round(e.maxTickerGapMs)} ms)`,
    );
    console.log(
      `    with the main thread's wait for a CPU taken out: ${e.blockedOver100Ms} over 100 ms (largest ${round(e.maxBlockedMs)} ms)` +
        `   target none over ${TARGET_STALL_MS} ms: ${verdict(e.blockedOver100Ms === 0)}`,
    );
    if (machineBefore && machineAfter) {
      const wall = machineAfter.total - machineBefore.total;
      const busy = machineAfter.busy - machineBefore.busy;
      const ours = cpu.service + cpu.devices + cpu.postgres + cpu.bench;
      const share = (ms: number) => `${Math.round((ms / wall) * 100)} %`;
      console.log(
        `  machine CPU during the campaign (share of all cores): busy ${share(busy)} = service ${share(cpu.service)}, devices + stand-in ${share(cpu.devices)}, ` +
          `PostgreSQL backends ${share(cpu.postgres)}, this script ${share(cpu.bench)}, everything else (other processes, PostgreSQL background) ${share(Math.max(0, busy - ours))}`,
      );
    }
    console.log(`  service CPU during the campaign: ${round(stats.cpuMs / 1000)} s (${round(stats.cpuMs / Math.max(1, d.answered), 2)} ms per pushed device)`);
    // Issue #14's target: service CPU per pushed and re-fetched device ≤ 2× one raw RSA-2048 signature, same run.
    const perDevice = stats.cpuMs / Math.max(1, d.answered);
    const rsaMs = (rsaBefore + rsaAfter) / 2;
    console.log(
      `  raw RSA-2048 signature (crypto.sign sha1, this process): ${round(rsaBefore, 3)} ms before the campaign, ${round(rsaAfter, 3)} ms after; ` +
        `service CPU per device = ${round(perDevice / rsaMs, 2)} × their mean   target ≤ 2 ×: ${verdict(perDevice <= 2 * rsaMs)}`,
    );
    console.log(
      `  PostgreSQL CPU per pushed device: ${round(cpu.postgres / Math.max(1, d.answered), 2)} ms; devices + stand-in ${round(cpu.devices / Math.max(1, d.answered), 2)} ms; ` +
        `everything measured per device: ${round((cpu.service + cpu.postgres + cpu.devices + cpu.bench) / Math.max(1, d.answered), 2)} ms`,
    );
    if (statements.available) {
      console.log('  PostgreSQL statements per pushed device (the campaign, its wallet updates and pushes, the devices\' re-fetches):');
      statements.print(statementsBefore, statementsAfter, d.answered, Math.round(envNumber('BENCH_TOP_STATEMENTS', 12)));
    }
    console.log(`  GET /campaigns/{id} delivery: ${JSON.stringify(figures.delivery)}`);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
