/**
 * `npm run bench:pos`: purchases per second through HTTP on real PostgreSQL, against the same SQL
 * issued directly with `pg` in the same run. Prints figures and ratios; it is not a test.
 *
 * Setup: a new database `walletcards_bench_<random>` on DATABASE_URL's server (default
 * postgres://postgres@127.0.0.1:5432/postgres), migrated, dropped at the end. The whole app runs in
 * a CHILD process (scripts/bench-support/pos-server.ts: wired like src/server.ts, pino at `info`
 * into /dev/null, card-changed workers ON) listening on 127.0.0.1; seeding goes through its API
 * (one program, a pos key, BENCH_CARDS cards).
 *
 *   HTTP      N keep-alive clients in this process, each POSTing /api/v1/cards/:id/purchases on a
 *             random card with a unique Idempotency-Key, as fast as answers come back.
 *   baseline  the statements one such purchase issues, captured from an in-process app (a pg
 *             client subclass records what kysely sends: the key lookup, BEGIN, the idempotency
 *             record, the program read, the card lock, the inserts, the card update, pg-boss's job
 *             insert, the idempotency update, COMMIT), replayed per purchase with `pg` on a pool
 *             of the app's size: same statements, same protocol (parameterised, unnamed), fresh
 *             card, key, fingerprint and purchase id each time, BEGIN…COMMIT on one client.
 *
 * Both use the same closed-loop driver (scripts/bench-support/harness.ts) at each concurrency:
 * after a warm-up each, the two sides take turns in 2-second slices (HTTP, baseline, baseline,
 * HTTP, …), so load from other processes on a shared machine and the growing tables fall on both
 * alike. Besides purchases/s and latency, each side prints CPU microseconds per purchase of the load
 * client (this process), the app process and the PostgreSQL backends of the bench database (/proc):
 * on a small machine they share the cores, so throughput follows their sum.
 *
 * Target (issue): HTTP ≥ 50 % of the baseline.
 *
 * Environment: BENCH_SECONDS (10 measured seconds per side), BENCH_SLICE_SECONDS (2),
 * BENCH_WARMUP_SECONDS (2), BENCH_CONCURRENCY ("16,32"), BENCH_CARDS (1000), BENCH_LOG_LEVEL (the
 * app's pino level, default info as in production), BENCH_POOL_SIZE (both pools; default the
 * app's, 20), BENCH_CPU_PROF=<dir> (write a --cpu-prof of the app process there), BENCH_PREPARED=1
 * (what-if: app and baseline send parameterised statements as named, i.e. prepared, statements;
 * the app does not do this).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import type { DatabaseHandle } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';
import { requestFingerprint } from '../src/http/idempotency.js';
import { createApnsSender } from '../src/wallets/apple/apns.js';
import { loadAppleCertificates } from '../src/wallets/apple/certificates.js';
import { createPassPackager, loadDefaultImages } from '../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../src/wallets/apple/pass/signer.js';
import { DEFAULT_PASS_IMAGES_DIR } from '../src/wallets/apple/runtime.js';
import { getTestCertificates } from '../test/support/test-certificates.js';
import type { PosServerMessage } from './bench-support/pos-server.js';
import {
  benchPool,
  childCpuMeter,
  createBenchDatabase,
  envNumber,
  expectStatus,
  forkChild,
  formatResult,
  httpRequest,
  keepAliveAgent,
  machineBusyOver,
  PostgresCpuMeter,
  preparedStatementName,
  runInterleaved,
  totalCpuMsPerOp,
  type ChildHandle,
  type LoadResult,
} from './bench-support/harness.js';
import { seedProgramViaApi, type SeededProgram } from './bench-support/seed.js';

const TARGET_RATIO = 0.5;
/** openDatabase's default pool size (src/db/database.ts), which src/server.ts uses. */
const APP_DEFAULT_POOL_SIZE = 20;
const PURCHASE_BODY = { amount: 125_050 };
const INT8_OID = 20;
/** What-if: app and baseline send parameterised statements as named (prepared) statements. */
const PREPARED = process.env.BENCH_PREPARED === '1';

// ---------------------------------------------------------------------------------------------
// Capturing the statements of one purchase
// ---------------------------------------------------------------------------------------------

interface RecordedStatement {
  client: number;
  text: string;
  values: unknown[];
  rows?: Record<string, unknown>[];
}

/** Where RecordingClient writes while a capture is on (undefined: not recording). */
let capturing: RecordedStatement[] | undefined;
let nextClientId = 1;

/**
 * A pg client that records what it is asked to run while `capturing` is set. (An
 * AsyncLocalStorage scope would be neater, but Fastify's inject() does not carry the caller's
 * async context into the request, so the capture is a time window, filtered afterwards.)
 */
class RecordingClient extends pg.Client {
  readonly benchId = nextClientId++;
  override query(...args: any[]): any {
    const log = capturing;
    const result = (super.query as (...a: any[]) => any)(...args);
    if (log && typeof args[0] === 'string') {
      const entry: RecordedStatement = { client: this.benchId, text: args[0], values: Array.isArray(args[1]) ? [...args[1]] : [] };
      log.push(entry);
      if (result && typeof result.then === 'function') {
        result.then((r: pg.QueryResult) => (entry.rows = r.rows), () => {});
      }
    }
    return result;
  }
}

/**
 * pg-boss's own background statements (maintenance, monitoring) share the pool and may fall into
 * the capture window. They never run on the purchase's transaction connection (it is checked out),
 * and outside the transaction the purchase path does not touch pg-boss (jobs are sent inside it).
 */
function isJobQueueStatement(text: string): boolean {
  return /\bpgboss\./i.test(text);
}

function poolConfig(connectionString: string, max: number): pg.PoolConfig {
  return {
    connectionString,
    max,
    // As openDatabase: int8 as numbers.
    types: {
      getTypeParser: ((oid: number, format?: any) => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as any,
    },
  };
}

interface CapturedPurchase {
  statements: RecordedStatement[];
  cardId: string;
  idempotencyKey: string;
  fingerprint: string;
  purchaseId: string;
}

/**
 * Builds the app in this process on a recording pool (workers off), makes one warm-up purchase and
 * records every statement of a second one.
 */
async function capturePurchase(databaseUrl: string, adminKey: string, seed: SeededProgram, poolSize: number): Promise<CapturedPurchase> {
  const certs = await getTestCertificates();
  const material = loadAppleCertificates(certs.dir);
  const config = loadConfig({
    NODE_ENV: 'production',
    PUBLIC_URL: 'https://wallet.bench.invalid',
    DATABASE_URL: databaseUrl,
    ADMIN_KEY: adminKey,
    APPLE_CERT_DIR: certs.dir,
    APNS_HOST: '127.0.0.1',
    APNS_PORT: '9', // never contacted: no device is registered and the workers are off
    DEMO_PROGRAM: 'false',
  });
  const pool = benchPool({ ...poolConfig(databaseUrl, poolSize), Client: RecordingClient } as pg.PoolConfig);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const database: DatabaseHandle = { db, kind: 'postgres', connectionString: databaseUrl, close: () => db.destroy() };
  const apns = createApnsSender({ certPem: material.signerCertPem, keyPem: material.signerKeyPem, host: '127.0.0.1', port: 9 });
  const app = await buildApp({
    config,
    database,
    adminKey,
    apple: { material, apns, packager: createPassPackager({ signer: new PassSigner(material), defaultImages: loadDefaultImages(DEFAULT_PASS_IMAGES_DIR) }) },
    runWorkers: false,
  });
  try {
    await app.ready();
    const tag = randomBytes(6).toString('hex');
    const purchase = (cardId: string, key: string) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/cards/${cardId}/purchases`,
        headers: { authorization: `Bearer ${seed.posKey}`, 'idempotency-key': key },
        payload: PURCHASE_BODY,
      });
    const warmUp = await purchase(seed.cards[1]!.id, `bench-capture-warmup-${tag}`);
    if (warmUp.statusCode !== 201) throw new Error(`warm-up purchase failed: ${warmUp.statusCode} ${warmUp.body}`);

    const cardId = seed.cards[0]!.id;
    const idempotencyKey = `bench-capture-${tag}`;
    const recorded: RecordedStatement[] = [];
    capturing = recorded;
    let answer;
    try {
      answer = await purchase(cardId, idempotencyKey);
    } finally {
      capturing = undefined;
    }
    if (answer.statusCode !== 201) throw new Error(`captured purchase failed: ${answer.statusCode} ${answer.body}`);
    await new Promise((resolve) => setImmediate(resolve));
    return {
      statements: recorded,
      cardId,
      idempotencyKey,
      fingerprint: requestFingerprint(`purchase:${cardId}`, PURCHASE_BODY),
      purchaseId: (answer.json() as { purchaseId: string }).purchaseId,
    };
  } finally {
    await app.close();
    await apns.close();
    await database.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Replaying them with pg
// ---------------------------------------------------------------------------------------------

interface Fresh {
  cardId: string;
  idempotencyKey: string;
  fingerprint: string;
  purchaseId?: string;
}

type ParamTemplate = (fresh: Fresh) => unknown;

interface PlannedStatement {
  text: string;
  params: ParamTemplate[];
  /** This statement's RETURNING id is the new purchase id (used by later statements). */
  yieldsPurchaseId: boolean;
}

type PlannedStep = { kind: 'single'; statement: PlannedStatement } | { kind: 'transaction'; statements: PlannedStatement[] };

function paramTemplate(value: unknown, captured: CapturedPurchase): ParamTemplate {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value !== null && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) text = JSON.stringify(value); // what pg sends for objects
  else return () => value;
  const tokens = [captured.cardId, captured.idempotencyKey, captured.fingerprint, captured.purchaseId].filter((t) => text.includes(t));
  if (tokens.length === 0) return () => text;
  return (fresh) =>
    text
      .replaceAll(captured.cardId, fresh.cardId)
      .replaceAll(captured.idempotencyKey, fresh.idempotencyKey)
      .replaceAll(captured.fingerprint, fresh.fingerprint)
      .replaceAll(captured.purchaseId, fresh.purchaseId ?? captured.purchaseId);
}

/** Groups the recorded statements the way kysely ran them: BEGIN…COMMIT on one client, the rest one checkout each. */
function planReplay(captured: CapturedPurchase): PlannedStep[] {
  const steps: PlannedStep[] = [];
  let transaction: PlannedStatement[] | undefined;
  let transactionClient = 0;
  for (const recorded of captured.statements) {
    const statement: PlannedStatement = {
      text: recorded.text,
      params: recorded.values.map((v) => paramTemplate(v, captured)),
      yieldsPurchaseId: recorded.rows?.[0]?.id === captured.purchaseId && /insert\s+into\s+"?purchase"?/i.test(recorded.text),
    };
    const verb = recorded.text.trim().toLowerCase();
    if (transaction) {
      if (recorded.client === transactionClient) {
        // Everything on the transaction's connection is the purchase's, pg-boss's job insert included.
        transaction.push(statement);
        if (verb === 'commit' || verb === 'rollback') {
          steps.push({ kind: 'transaction', statements: transaction });
          transaction = undefined;
        }
      } else if (!isJobQueueStatement(recorded.text)) {
        throw new Error(`a statement ran on another connection during the transaction, the capture is ambiguous: ${describeStatement(recorded.text)}`);
      }
    } else if (verb === 'begin' || verb.startsWith('start transaction')) {
      transaction = [statement];
      transactionClient = recorded.client;
    } else if (!isJobQueueStatement(recorded.text)) {
      steps.push({ kind: 'single', statement });
    }
  }
  if (transaction) throw new Error('captured transaction has no COMMIT');
  if (!steps.some((s) => s.kind === 'transaction')) throw new Error('captured purchase ran no transaction');
  if (!steps.some((s) => s.kind === 'transaction' && s.statements.some((st) => st.yieldsPurchaseId))) {
    throw new Error('could not find the purchase insert in the capture');
  }
  return steps;
}

async function replayPurchase(pool: pg.Pool, steps: PlannedStep[], fresh: Fresh): Promise<void> {
  const run = async (client: pg.Pool | pg.PoolClient, statement: PlannedStatement) => {
    const values = statement.params.map((p) => p(fresh));
    const name = PREPARED ? preparedStatementName(statement.text, values) : undefined;
    const result = await client.query(name ? { name, text: statement.text, values } : { text: statement.text, values });
    if (statement.yieldsPurchaseId) fresh.purchaseId = result.rows[0].id;
  };
  for (const step of steps) {
    if (step.kind === 'single') {
      await run(pool, step.statement);
      continue;
    }
    const client = await pool.connect();
    try {
      for (const statement of step.statements) await run(client, statement);
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
}

function describeStatement(text: string): string {
  const compact = text.replace(/\s+/g, ' ').trim();
  return compact.length > 120 ? `${compact.slice(0, 117)}...` : compact;
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const seconds = envNumber('BENCH_SECONDS', 10);
  const warmUpSeconds = envNumber('BENCH_WARMUP_SECONDS', 2);
  const cardCount = Math.max(2, Math.floor(envNumber('BENCH_CARDS', 1000)));
  const poolSize = Math.floor(envNumber('BENCH_POOL_SIZE', APP_DEFAULT_POOL_SIZE));
  const sliceSeconds = envNumber('BENCH_SLICE_SECONDS', 2);
  const concurrencies = (process.env.BENCH_CONCURRENCY ?? '16,32').split(',').map((c) => Number.parseInt(c, 10));
  if (concurrencies.some((c) => !Number.isInteger(c) || c < 1 || c > 256)) throw new Error('BENCH_CONCURRENCY: comma-separated integers 1–256');
  const cpuProfDir = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;
  const adminKey = `bench-admin-${randomBytes(16).toString('hex')}`;

  const database = await createBenchDatabase();
  let child: ChildHandle<PosServerMessage> | undefined;
  let pool: pg.Pool | undefined;
  const postgresMeter = new PostgresCpuMeter(database.url, database.name);
  try {
    {
      const migrating = new Kysely<Database>({ dialect: new PostgresDialect({ pool: benchPool(poolConfig(database.url, 1)) }) });
      await migrateToLatest(migrating);
      await migrating.destroy();
    }
    if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
    child = forkChild<PosServerMessage>(fileURLToPath(new URL('./bench-support/pos-server.ts', import.meta.url)), {
      env: {
        BENCH_DATABASE_URL: database.url,
        BENCH_ADMIN_KEY: adminKey,
        ...(process.env.BENCH_POOL_SIZE ? { BENCH_POOL_SIZE: String(poolSize) } : {}),
      },
      extraExecArgv: cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [],
    });
    const { port } = await child.next('ready');
    const app = child;

    console.log(
      `POS purchase benchmark: Node ${process.version}, ${availableParallelism()} CPUs, database ${database.name}, ` +
        `${PREPARED ? 'WHAT-IF BENCH_PREPARED=1 (named statements, app and baseline), ' : ''}app in child process ${child.process.pid} on 127.0.0.1:${port} (pino ${process.env.BENCH_LOG_LEVEL ?? 'info'} → /dev/null, workers on), ` +
        `pool ${poolSize} connections (app and baseline); each side ${warmUpSeconds} s warm-up, then ${seconds} s measured in ${sliceSeconds} s slices, taking turns`,
    );
    const seedStart = performance.now();
    const seed = await seedProgramViaApi(port, adminKey, cardCount);
    console.log(`Seeded 1 program, 1 pos key, ${seed.cards.length} cards through the API in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);

    const captured = await capturePurchase(database.url, adminKey, seed, poolSize);
    const steps = planReplay(captured);
    console.log(`\nStatements of one purchase (captured from the app, replayed by the baseline):`);
    let n = 0;
    for (const step of steps) {
      const statements = step.kind === 'single' ? [step.statement] : step.statements;
      for (const statement of statements) {
        n++;
        const where = step.kind === 'single' ? 'own checkout' : 'transaction ';
        console.log(`  ${String(n).padStart(2)}. [${where}] ${describeStatement(statement.text)}${statement.params.length ? `  (${statement.params.length} params)` : ''}`);
      }
    }
    console.log(`  = ${n} round trips per purchase`);

    pool = benchPool(poolConfig(database.url, poolSize));
    const baselinePool = pool;
    // One replay, checked: exactly one purchase, its ledger entry and its idempotency record appear.
    {
      const fresh: Fresh = { cardId: seed.cards[2 % seed.cards.length]!.id, idempotencyKey: `bench-check-${randomBytes(4).toString('hex')}`, fingerprint: 'x' };
      fresh.fingerprint = requestFingerprint(`purchase:${fresh.cardId}`, PURCHASE_BODY);
      await replayPurchase(baselinePool, steps, fresh);
      const check = await baselinePool.query(
        `select (select count(*) from purchase where id = $1)::int as purchases,
                (select count(*) from ledger_entry where purchase_id = $1)::int as ledger,
                (select count(*) from idempotency_record where key = $2 and status_code = 201)::int as records`,
        [fresh.purchaseId, fresh.idempotencyKey],
      );
      const row = check.rows[0] as { purchases: number; ledger: number; records: number };
      if (row.purchases !== 1 || row.ledger < 1 || row.records !== 1) throw new Error(`baseline replay check failed: ${JSON.stringify(row)}`);
    }

    const runTag = randomBytes(4).toString('hex');
    let keyCounter = 0;
    const randomCard = () => seed.cards[Math.floor(Math.random() * seed.cards.length)]!.id;
    const body = JSON.stringify(PURCHASE_BODY);

    // The app process stays up during the baseline (its pg-boss workers process the jobs the
    // baseline enqueues, as they do for HTTP purchases), so it is metered on both sides.
    const appMeter = childCpuMeter(app);
    const appMeterDuringBaseline = childCpuMeter(app);

    console.log('');
    const busy = await machineBusyOver(1000);
    if (busy !== undefined) {
      console.log(`Machine ${(busy * 100).toFixed(0)} % busy before the runs (other processes)${busy > 0.15 ? ': figures will be noisy' : ''}`);
    }
    const results: Array<{ concurrency: number; http: LoadResult; baseline: LoadResult }> = [];
    for (const concurrency of concurrencies) {
      const agent = keepAliveAgent(concurrency);
      const headers = { authorization: `Bearer ${seed.posKey}`, 'content-type': 'application/json' };
      appMeter.reset();
      appMeterDuringBaseline.reset();
      try {
        const [http, baseline] = await runInterleaved(
          [
            {
              label: 'HTTP POST …/purchases',
              concurrency,
              meters: { app: appMeter, postgres: postgresMeter },
              operation: async () => {
                await expectStatus(
                  httpRequest(agent, port, 'POST', `/api/v1/cards/${randomCard()}/purchases`, { ...headers, 'idempotency-key': `bench-${runTag}-${keyCounter++}` }, body),
                  201,
                );
              },
            },
            {
              label: 'baseline: same SQL over pg',
              concurrency,
              meters: { app: appMeterDuringBaseline, postgres: postgresMeter },
              operation: async () => {
                const cardId = randomCard();
                await replayPurchase(baselinePool, steps, {
                  cardId,
                  idempotencyKey: `bench-${runTag}-${keyCounter++}`,
                  fingerprint: requestFingerprint(`purchase:${cardId}`, PURCHASE_BODY),
                });
              },
            },
          ],
          { warmUpSeconds, seconds, sliceSeconds },
        );
        const elu = appMeter.eventLoopUtilization();
        console.log(formatResult(http!, elu === undefined ? '' : `app event loop ${(elu * 100).toFixed(0)} % busy`));
        if (http!.firstFailure) console.log(`    first failure: ${http!.firstFailure}`);
        console.log(formatResult(baseline!));
        if (baseline!.firstFailure) console.log(`    first failure: ${baseline!.firstFailure}`);
        results.push({ concurrency, http: http!, baseline: baseline! });
      } finally {
        agent.destroy();
      }
    }
    console.log(`\nHTTP / baseline (target ≥ ${TARGET_RATIO * 100} %)`);
    let failed = false;
    for (const { concurrency, http, baseline } of results) {
      if (http.failures || baseline.failures) failed = true;
      const ratio = http.perSecond / baseline.perSecond;
      console.log(
        `  c=${String(concurrency).padStart(2)}: ${http.perSecond.toFixed(0)} / ${baseline.perSecond.toFixed(0)} purchases/s = ${(ratio * 100).toFixed(1)} %  ` +
          `${ratio >= TARGET_RATIO ? 'meets target' : 'BELOW TARGET'}   ` +
          `p50 ${http.p50Ms.toFixed(2)} vs ${baseline.p50Ms.toFixed(2)} ms, p99 ${http.p99Ms.toFixed(2)} vs ${baseline.p99Ms.toFixed(2)} ms`,
      );
      const httpCpu = totalCpuMsPerOp(http);
      const baselineCpu = totalCpuMsPerOp(baseline);
      if (httpCpu !== undefined && baselineCpu !== undefined) {
        console.log(
          `        CPU per purchase, all processes: ${(httpCpu * 1000).toFixed(0)} vs ${(baselineCpu * 1000).toFixed(0)} µs ` +
            `(what the ratio tends to when the cores are the limit: ${((baselineCpu / httpCpu) * 100).toFixed(1)} %)`,
        );
      }
    }
    if (failed) {
      console.error('\nSome operations failed: the figures above are not valid.');
      process.exitCode = 1;
    }
  } finally {
    await postgresMeter.close();
    await child?.stop();
    await pool?.end();
    await database.drop();
    if (cpuProfDir) console.log(`\nCPU profile of the app process written to ${cpuProfDir}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
