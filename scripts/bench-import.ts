/**
 * `npm run bench:import`: a 250,000-row card base imported through HTTP into real PostgreSQL, with
 * the POS API under load at the same time. Prints figures and ratios; it is not a test.
 *
 * Setup: a new database `walletcards_bench_<random>` on DATABASE_URL's server (default
 * postgres://postgres@127.0.0.1:5432/postgres), dropped at the end. The service runs as it does in
 * production: the compiled `node dist/server.js` (built first when src/ changed), NODE_ENV=production,
 * one process with the workers ON (the import job runs there), test certificates and the APNs
 * stand-in instead of Apple's (no device registers, so nothing is pushed). Under tsx the same
 * service takes ~85 MB more at rest (the TypeScript loader), which is not what a business runs.
 * One program with BENCH_CARDS cards for the tills, seeded
 * through the API; a generated file (scripts/generate-import-file.ts: Windows-1251, `;`, mixed
 * phone, date and amount formats, quoted notes with line breaks, 2 % bad rows) of BENCH_IMPORT_ROWS
 * rows.
 *
 *   POS alone     BENCH_POS_CLIENTS keep-alive clients POST purchases on random seeded cards for
 *                 BENCH_SECONDS: the baseline p50/p99, measured in the same run.
 *   dry run       POST /api/v1/imports?dryRun=true with the file streamed: seconds, rows/s.
 *   apply         POST /api/v1/imports (stream → parse → stage, 202) then the import job until
 *                 GET /api/v1/imports/{id} says finished, with the same POS load running throughout:
 *                 seconds, rows/s (valid rows applied / seconds from the upload's first byte), and the
 *                 POS p50/p99 during the import against the baseline.
 *   memory        the service process's resident set (VmRSS), sampled every 100 ms: at rest before
 *                 the import, and the peak of each phase (dry run, upload + stage, the import job).
 *
 * Targets (issue #12): apply ≥ 5,000 rows/s; peak RSS < 250 MB; POS p99 < 100 ms during the import.
 *
 * Environment: BENCH_IMPORT_ROWS (250000), BENCH_CARDS (1000), BENCH_POS_CLIENTS (4),
 * BENCH_SECONDS (10), BENCH_CHUNK_SIZE (the app's IMPORT_CHUNK_SIZE, default 1000), BENCH_RUN_SECONDS (the app's
 * IMPORT_RUN_SECONDS; 0 = one chunk per job, as before chunk runs), BENCH_APP_STDOUT=1 (the
 * service's output on stdout at the end).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeImportFile } from './generate-import-file.js';
import { spawnSync } from 'node:child_process';
import { openDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { startApnsStandIn } from '../test/support/apns-stand-in.js';
import { startInstance } from '../test/support/cluster.js';
import { getTestCertificates } from '../test/support/test-certificates.js';
import { createBenchDatabase, envNumber, expectStatus, httpRequest, keepAliveAgent, percentile } from './bench-support/harness.js';
import { seedProgramViaApi } from './bench-support/seed.js';

const ROWS = envNumber('BENCH_IMPORT_ROWS', 250_000);
const CARDS = envNumber('BENCH_CARDS', 1000);
const CLIENTS = envNumber('BENCH_POS_CLIENTS', 4);
const SECONDS = envNumber('BENCH_SECONDS', 10);
const here = path.dirname(fileURLToPath(import.meta.url));

/** The peak resident set of a process over a phase, sampled every 100 ms (VmHWM only keeps the all-time peak). */
function rssSampler(pid: number) {
  let peak = 0;
  const sample = () => (peak = Math.max(peak, procStatus(pid, 'VmRSS') ?? 0));
  const timer = setInterval(sample, 100);
  timer.unref();
  return {
    /** The peak since the last call (MB), and a new phase begins. */
    phase(): number {
      sample();
      const value = peak;
      peak = 0;
      return value;
    },
    stop: () => clearInterval(timer),
  };
}

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** POSTs a file as a stream (never read whole here either). */
function upload(port: number, url: string, headers: Record<string, string>, file: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: url, headers: { ...headers, 'content-type': 'text/csv', 'content-length': String(statSync(file).size) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.setTimeout(600_000, () => request.destroy(new Error('upload: no answer within 10 minutes')));
    createReadStream(file).pipe(request);
  });
}

/** Closed-loop POS purchases until `until()` says stop; returns latencies (ms). */
async function posLoad(port: number, posKey: string, cards: Array<{ id: string }>, until: () => boolean) {
  const agent = keepAliveAgent(CLIENTS);
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${posKey}` };
  const latencies: number[] = [];
  let failures = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (!until()) {
        const card = cards[Math.floor(Math.random() * cards.length)]!;
        const started = performance.now();
        try {
          const answer = await httpRequest(agent, port, 'POST', `/api/v1/cards/${card.id}/purchases`, { ...headers, 'idempotency-key': randomBytes(12).toString('hex') }, JSON.stringify({ amount: 125_050 }));
          if (answer.status !== 201) failures++;
        } catch {
          failures++;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        latencies.push(performance.now() - started);
      }
    }),
  );
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  return { n: latencies.length, failures, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

async function main() {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-import-'));
  const file = path.join(dir, 'base.csv');
  let started = performance.now();
  await writeImportFile(file, { rows: ROWS, seed: 7, delimiter: ';', encoding: 'windows-1251', bom: false, badShare: 0.02 });
  const bytes = statSync(file).size;
  console.log(`file: ${ROWS} rows, ${(bytes / 1024 / 1024).toFixed(1)} MB (Windows-1251, ';'), generated in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const build = spawnSync(process.execPath, [path.join(here, 'build.mjs'), '--if-stale'], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
  const database = await createBenchDatabase();
  const handle = openDatabase({ databaseUrl: database.url, poolSize: 2 });
  await migrateToLatest(handle.db);
  await handle.close();
  const adminKey = `bench-admin-${randomBytes(12).toString('hex')}`;
  const metricsToken = randomBytes(16).toString('hex');
  const certs = await getTestCertificates();
  const pem = (name: string) => readFileSync(path.join(certs.dir, name), 'utf8');
  const apns = await startApnsStandIn({ keyPem: pem('apns-server.key'), certPem: pem('apns-server.pem'), caPem: pem('root.pem') + pem('wwdr.pem'), expectedTopic: certs.passTypeIdentifier });
  const service = await startInstance('walletcards', {
    NODE_ENV: 'production',
    DATABASE_URL: database.url,
    ADMIN_KEY: adminKey,
    PUBLIC_URL: 'https://wallet.bench',
    APPLE_CERT_DIR: certs.dir,
    APNS_HOST: '127.0.0.1',
    APNS_PORT: String(apns.port),
    APNS_CA_FILE: path.join(certs.dir, 'root.pem'),
    DEMO_PROGRAM: 'false',
    LOG_LEVEL: 'info',
    METRICS_TOKEN: metricsToken,
    // BENCH_NODE_OPTIONS: V8 flags for the service (e.g. --max-semi-space-size=2), to compare memory settings.
    ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
    ...(process.env.BENCH_CHUNK_SIZE ? { IMPORT_CHUNK_SIZE: process.env.BENCH_CHUNK_SIZE } : {}),
    // BENCH_RUN_SECONDS=0: one chunk per job (the behaviour before chunk runs), to compare.
    ...(process.env.BENCH_RUN_SECONDS ? { IMPORT_RUN_SECONDS: process.env.BENCH_RUN_SECONDS } : {}),
  });
  try {
    const port = Number(new URL(service.url).port);
    const pid = service.child.pid!;
    const rss = rssSampler(pid);
    /** The V8 heap (used / total) and memory outside it, from the service's own /metrics: what the resident set is made of. */
    const heap = async () => {
      const text = (await httpRequest(keepAliveAgent(1), port, 'GET', '/metrics', { authorization: `Bearer ${metricsToken}` })).body;
      const mb = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1024 / 1024;
      return `heap ${mb('nodejs_heap_size_used_bytes').toFixed(0)}/${mb('nodejs_heap_size_total_bytes').toFixed(0)} MB, external ${mb('nodejs_external_memory_bytes').toFixed(0)} MB`;
    };
    const seeded = await seedProgramViaApi(port, adminKey, CARDS);
    const agent = keepAliveAgent(2);
    const key = JSON.parse(
      (
        await expectStatus(
          httpRequest(agent, port, 'POST', `/api/v1/programs/${seeded.programId}/keys`, { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, JSON.stringify({ role: 'admin', name: 'bench import' })),
          201,
        )
      ).body,
    ) as { key: string };
    const admin = { authorization: `Bearer ${key.key}` };
    console.log(`app: pid ${pid}, ${CARDS} cards seeded; POS load: ${CLIENTS} clients`);

    // 1. POS alone (the baseline of this run).
    let deadline = Date.now() + SECONDS * 1000;
    const alone = await posLoad(port, seeded.posKey, seeded.cards, () => Date.now() > deadline);
    console.log(`POS alone:          ${alone.n} purchases, p50 ${alone.p50.toFixed(1)} ms, p99 ${alone.p99.toFixed(1)} ms${alone.failures ? `, ${alone.failures} FAILED` : ''}`);
    const rssBefore = procStatus(pid, 'VmRSS');
    const heapBefore = await heap();
    rss.phase();

    // 2. Dry run.
    started = performance.now();
    const dry = await upload(port, '/api/v1/imports?dryRun=true', admin, file);
    const drySeconds = (performance.now() - started) / 1000;
    const rssDry = rss.phase();
    const heapDry = await heap();
    if (dry.status !== 200) throw new Error(`dry run: ${dry.status} ${dry.body.slice(0, 300)}`);
    const report = JSON.parse(dry.body) as { rowsRead: number; rowsValid: number; rowsFailed: number; byReason: Record<string, number> };
    console.log(
      `dry run:            ${drySeconds.toFixed(1)} s, ${Math.round(report.rowsRead / drySeconds)} rows/s; read ${report.rowsRead}, valid ${report.rowsValid}, failed ${report.rowsFailed} ${JSON.stringify(report.byReason)}`,
    );

    // 3. Apply, with the POS load running.
    let importDone = false;
    const during = posLoad(port, seeded.posKey, seeded.cards, () => importDone);
    started = performance.now();
    const created = await upload(port, '/api/v1/imports?fileName=bench.csv', admin, file).catch((error) => {
      importDone = true;
      throw error;
    });
    if (created.status !== 202) {
      importDone = true;
      throw new Error(`import: ${created.status} ${created.body.slice(0, 300)}`);
    }
    const stagedSeconds = (performance.now() - started) / 1000;
    const rssStage = rss.phase();
    const heapStage = await heap();
    const id = (JSON.parse(created.body) as { id: string }).id;
    let last: { status: string; progress: { rowsValid: number; created: number; updated: number; unchanged: number; failed: number; done: number } };
    for (;;) {
      last = JSON.parse((await expectStatus(httpRequest(agent, port, 'GET', `/api/v1/imports/${id}`, admin), 200)).body);
      if (last.status === 'finished' || last.status === 'cancelled') break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const applySeconds = (performance.now() - started) / 1000;
    importDone = true;
    const pos = await during;
    const rssJob = rss.phase();
    const heapJob = await heap();
    const peak = procStatus(pid, 'VmHWM');
    const rate = Math.round(last.progress.rowsValid / applySeconds);
    console.log(`apply:              ${applySeconds.toFixed(1)} s (upload + parse + stage ${stagedSeconds.toFixed(1)} s, job ${(applySeconds - stagedSeconds).toFixed(1)} s), ${rate} rows/s; ${JSON.stringify(last.progress)}`);
    console.log(`POS during import:  ${pos.n} purchases, p50 ${pos.p50.toFixed(1)} ms, p99 ${pos.p99.toFixed(1)} ms${pos.failures ? `, ${pos.failures} FAILED` : ''}; p99 ×${(pos.p99 / alone.p99).toFixed(2)} of POS alone`);
    console.log(
      `service memory:     RSS ${rssBefore?.toFixed(0) ?? '?'} MB at rest (after the POS baseline); peak ${rssDry.toFixed(0)} MB in the dry run, ${rssStage.toFixed(0)} MB in upload + stage, ${rssJob.toFixed(0)} MB in the job; all-time peak ${peak?.toFixed(0) ?? '?'} MB (VmHWM)`,
    );
    console.log(`  after each phase: rest ${heapBefore}; dry run ${heapDry}; stage ${heapStage}; job ${heapJob}`);
    console.log(
      `targets:            apply ≥ 5000 rows/s ${rate >= 5000 ? 'MET' : 'MISSED'}; peak RSS < 250 MB ${peak !== undefined && peak < 250 ? 'MET' : 'MISSED'}; POS p99 < 100 ms during import ${pos.p99 < 100 ? 'MET' : 'MISSED'}`,
    );
    agent.destroy();
  } finally {
    await service.stop();
    if (process.env.BENCH_APP_STDOUT === '1') console.log(service.output());
    await apns.close();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
