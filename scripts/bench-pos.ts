/**
 * `npm run bench:pos`: purchases and card issues per second through HTTP on real PostgreSQL,
 * against what the same PostgreSQL does for pgbench's TPC-B-like transaction in the same run
 * (issue #14). Prints figures and ratios; it is not a test.
 *
 * Setup: a new database `walletcards_bench_<random>` on DATABASE_URL's server (default
 * postgres://postgres@127.0.0.1:5432/postgres), migrated, dropped at the end. The whole app runs in
 * a CHILD process (scripts/bench-support/pos-server.ts: wired like src/server.ts, pino at `info`
 * into /dev/null, card-changed workers ON) listening on 127.0.0.1; seeding goes through its API
 * (one program, a pos key, BENCH_CARDS cards).
 *
 * In this order, so that the baseline brackets the measured paths:
 *   pgbench   (when /usr/bin/pgbench or PGBENCH is installed) `pgbench -i -s SCALE` in a scratch
 *             database, then `-c 16 -j 2 -T N` simple protocol and `-M prepared`;
 *   purchases BENCH_PURCHASE_CLIENTS (16) keep-alive clients POSTing /api/v1/cards/:id/purchases on
 *             a random card with a unique Idempotency-Key, as fast as answers come back;
 *   issue     BENCH_ISSUE_CLIENTS (8) clients POSTing /api/v1/cards with a new phone each time;
 *             purchases and issue are each measured twice: on the app as configured by default
 *             (named, prepared statements) and right after on a second app process with
 *             PG_PREPARED_STATEMENTS=false;
 *   search    BENCH_ISSUE_CLIENTS clients searching by phone, card number and name prefix in turn,
 *             then EXPLAIN (ANALYZE, BUFFERS) of the app's search statement for each;
 *   pgbench   simple protocol again (the baseline is the mean of the two simple runs).
 *
 * Round trips: when pg_stat_statements is loaded (shared_preload_libraries), the calls of every
 * statement in the bench database are read before and after each HTTP phase; calls / requests is
 * the round trips per request (BEGIN, COMMIT and SAVEPOINTs included; pg-boss's own polling of
 * the same database too, listed separately), and the top statements by total time are printed.
 * CPU per request of this process, the app process and the PostgreSQL backends comes from /proc.
 *
 * Targets (issue #14): purchases ≥ 25 %, card issue ≥ 15 % of pgbench's simple-protocol tps.
 *
 * Environment: BENCH_SECONDS (10 measured seconds per HTTP phase and per pgbench run),
 * BENCH_WARMUP_SECONDS (2), BENCH_CARDS (1000), BENCH_PURCHASE_CLIENTS (16), BENCH_ISSUE_CLIENTS (8),
 * BENCH_PGBENCH_CLIENTS (16), BENCH_PREPARED=0 (the app with PG_PREPARED_STATEMENTS=false),
 * BENCH_COMPARE_PREPARED=0 (skip the second app process with PG_PREPARED_STATEMENTS=false whose
 * purchases and issues are measured right after the default app's), BENCH_PGBENCH_SCALE (16: one branch row per client, as pgbench's
 * documentation advises; at scale 1 all clients queue on one branch row), BENCH_LOG_LEVEL (the app's
 * pino level, default info), BENCH_POOL_SIZE (the app's pool), BENCH_CPU_PROF=<dir> (write a CPU
 * profile of the app process during each measured phase there), BENCH_TOP (statements listed, 12), BENCH_SEED_SQL=N (add N
 * cards with SQL before measuring: the "cost must not grow with the base" run).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';
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
  runInterleaved,
  totalCpuMsPerOp,
  type ChildHandle,
  type LoadResult,
} from './bench-support/harness.js';
import { seedProgramViaApi } from './bench-support/seed.js';
import { seedCardsWithSql, sqlCardSearchTerms } from './bench-support/card-seed.js';
import { explainSearches } from './bench-support/search-plans.js';
import { StatementStats } from './bench-support/statements.js';

const run = promisify(execFile);
const PURCHASE_TARGET = 0.25;
const ISSUE_TARGET = 0.15;
const PURCHASE_BODY = { amount: 125_050 };

// ---------------------------------------------------------------------------------------------
// pgbench
// ---------------------------------------------------------------------------------------------

function pgbenchBinary(): string | undefined {
  const candidates = [process.env.PGBENCH, '/usr/bin/pgbench', '/usr/lib/postgresql/15/bin/pgbench', '/usr/local/bin/pgbench'].filter(Boolean) as string[];
  return candidates.find((c) => existsSync(c));
}

interface PgbenchResult {
  tps: number;
  latencyMs: number;
}

async function pgbench(binary: string, url: string, args: string[]): Promise<PgbenchResult> {
  const { stdout } = await run(binary, [...args, url], { maxBuffer: 16 * 1024 * 1024 });
  const tps = /tps = ([\d.]+)/.exec(stdout);
  const latency = /latency average = ([\d.]+) ms/.exec(stdout);
  if (!tps) throw new Error(`pgbench printed no tps:\n${stdout}`);
  return { tps: Number(tps[1]), latencyMs: latency ? Number(latency[1]) : Number.NaN };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const seconds = envNumber('BENCH_SECONDS', 10);
  const warmUpSeconds = envNumber('BENCH_WARMUP_SECONDS', 2);
  const cardCount = Math.max(2, Math.floor(envNumber('BENCH_CARDS', 1000)));
  const purchaseClients = Math.floor(envNumber('BENCH_PURCHASE_CLIENTS', 16));
  const issueClients = Math.floor(envNumber('BENCH_ISSUE_CLIENTS', 8));
  const pgbenchClients = Math.floor(envNumber('BENCH_PGBENCH_CLIENTS', 16));
  const pgbenchScale = Math.floor(envNumber('BENCH_PGBENCH_SCALE', 16));
  const top = Math.floor(envNumber('BENCH_TOP', 12));
  const sqlCards = process.env.BENCH_SEED_SQL ? Math.floor(envNumber('BENCH_SEED_SQL', 1)) : 0;
  const cpuProfDir = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;
  const adminKey = `bench-admin-${randomBytes(16).toString('hex')}`;
  const pgbenchBin = pgbenchBinary();
  const comparePrepared = process.env.BENCH_COMPARE_PREPARED !== '0' && process.env.BENCH_PREPARED !== '0';

  const database = await createBenchDatabase();
  const scratch = pgbenchBin ? await createBenchDatabase() : undefined;
  let child: ChildHandle<PosServerMessage> | undefined;
  let unnamedChild: ChildHandle<PosServerMessage> | undefined;
  const admin = benchPool({ connectionString: database.url, max: 2 });
  const postgresMeter = new PostgresCpuMeter(database.url, database.name);
  try {
    {
      const migrating = new Kysely<Database>({ dialect: new PostgresDialect({ pool: benchPool({ connectionString: database.url, max: 1 }) }) });
      await migrateToLatest(migrating);
      await migrating.destroy();
    }
    const statements = await StatementStats.open(admin, database.name);
    if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
    child = forkChild<PosServerMessage>(fileURLToPath(new URL('./bench-support/pos-server.ts', import.meta.url)), {
      env: {
        BENCH_DATABASE_URL: database.url,
        BENCH_ADMIN_KEY: adminKey,
        ...(process.env.BENCH_POOL_SIZE ? { BENCH_POOL_SIZE: process.env.BENCH_POOL_SIZE } : {}),
      },
    });
    const { port } = await child.next('ready');
    const app = child;
    // The same app with PG_PREPARED_STATEMENTS=false, to measure what named statements bring.
    if (comparePrepared) {
      unnamedChild = forkChild<PosServerMessage>(fileURLToPath(new URL('./bench-support/pos-server.ts', import.meta.url)), {
        env: {
          BENCH_DATABASE_URL: database.url,
          BENCH_ADMIN_KEY: adminKey,
          BENCH_PREPARED: '0',
          ...(process.env.BENCH_POOL_SIZE ? { BENCH_POOL_SIZE: process.env.BENCH_POOL_SIZE } : {}),
        },
      });
    }
    const unnamedPort = unnamedChild ? (await unnamedChild.next('ready')).port : undefined;

    console.log(
      `POS benchmark: Node ${process.version}, ${availableParallelism()} CPUs, database ${database.name}, app in child process ${child.process.pid} ` +
        `(pino ${process.env.BENCH_LOG_LEVEL ?? 'info'} → /dev/null, workers on); ${warmUpSeconds} s warm-up, ${seconds} s measured per phase; ` +
        `pg_stat_statements ${statements.available ? 'on' : 'NOT LOADED (no round-trip counts)'}`,
    );
    const seedStart = performance.now();
    const seed = await seedProgramViaApi(port, adminKey, cardCount);
    console.log(`Seeded 1 program, 1 pos key, ${seed.cards.length} cards through the API in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
    if (sqlCards > 0) {
      const t = performance.now();
      await seedCardsWithSql(admin, seed.programId, sqlCards);
      console.log(`Seeded ${sqlCards.toLocaleString('en')} more cards with SQL in ${((performance.now() - t) / 1000).toFixed(1)} s (VACUUM ANALYZE included)`);
    }
    const cardTotal = Number((await admin.query('select count(*)::int as n from card')).rows[0].n);

    const pgbenchRuns: Array<{ label: string; result: PgbenchResult }> = [];
    const runPgbench = async (label: string, prepared: boolean) => {
      if (!pgbenchBin || !scratch) return;
      const result = await pgbench(pgbenchBin, scratch.url, ['-n', '-c', String(pgbenchClients), '-j', '2', '-T', String(seconds), ...(prepared ? ['-M', 'prepared'] : [])]);
      pgbenchRuns.push({ label, result });
      console.log(`pgbench TPC-B-like ${label.padEnd(22)} c=${pgbenchClients}  ${result.tps.toFixed(0).padStart(6)} tps  latency avg ${result.latencyMs.toFixed(2)} ms`);
    };
    if (pgbenchBin && scratch) {
      const t = performance.now();
      await run(pgbenchBin, ['-i', '-q', '-s', String(pgbenchScale), scratch.url], { maxBuffer: 16 * 1024 * 1024 });
      console.log(`\npgbench -i -s ${pgbenchScale} in ${scratch.name} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    } else {
      console.log('\npgbench is not installed: no TPC-B-like baseline (ratios below are not printed)');
    }

    const busy = await machineBusyOver(1000);
    if (busy !== undefined) console.log(`Machine ${(busy * 100).toFixed(0)} % busy before the runs (other processes)${busy > 0.15 ? ': figures will be noisy' : ''}`);

    await runPgbench('simple (before)', false);
    await runPgbench('-M prepared', true);

    const runTag = randomBytes(4).toString('hex');
    let keyCounter = 0;
    let phoneCounter = 0;
    // Purchases go to cards drawn from the whole base (at a million cards, most are not in shared
    // buffers: that is part of what "cost must not grow with the base" measures).
    const cardIds =
      sqlCards > 0
        ? (await admin.query<{ id: string }>('SELECT id FROM card ORDER BY random() LIMIT 10000')).rows.map((r) => r.id)
        : seed.cards.map((c) => c.id);
    const randomCard = () => cardIds[Math.floor(Math.random() * cardIds.length)]!;
    const purchaseBody = JSON.stringify(PURCHASE_BODY);
    const headers = { authorization: `Bearer ${seed.posKey}`, 'content-type': 'application/json' };
    const appMeters = new Map([[port, childCpuMeter(app)], ...(unnamedChild && unnamedPort ? [[unnamedPort, childCpuMeter(unnamedChild)] as const] : [])]);

    const phase = async (label: string, clients: number, appPort: number, operation: (agent: import('node:http').Agent, port: number) => Promise<void>) => {
      const agent = keepAliveAgent(clients);
      const appMeter = appMeters.get(appPort)!;
      appMeter.reset();
      try {
        // The warm-up runs outside the statement counts; runInterleaved repeats it, harmlessly.
        await runInterleaved([{ label, concurrency: clients, operation: () => operation(agent, appPort) }], { warmUpSeconds, seconds: 0, sliceSeconds: 0.5 }).catch(() => undefined);
        const appChild = appPort === port ? app : unnamedChild!;
        if (cpuProfDir) {
          appChild.send({ type: 'profile-start' });
          await appChild.next('profile-started');
        }
        const before = await statements.snapshot();
        const [result] = await runInterleaved([{ label, concurrency: clients, meters: { app: appMeter, postgres: postgresMeter }, operation: () => operation(agent, appPort) }], {
          warmUpSeconds: 0,
          seconds,
          sliceSeconds: Math.min(2, seconds),
        });
        const after = await statements.snapshot();
        if (cpuProfDir) {
          const file = path.join(cpuProfDir, `${label.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.cpuprofile`);
          appChild.send({ type: 'profile-stop', file });
          await appChild.next('profile-stopped');
        }
        const elu = appMeter.eventLoopUtilization();
        console.log(formatResult(result!, elu === undefined ? '' : `app event loop ${(elu * 100).toFixed(0)} % busy`));
        if (result!.firstFailure) console.log(`    first failure: ${result!.firstFailure}`);
        if (statements.available) statements.print(before, after, result!.operations, top);
        return result!;
      } finally {
        agent.destroy();
      }
    };

    const purchase = (agent: import('node:http').Agent, appPort: number) =>
      expectStatus(
        httpRequest(agent, appPort, 'POST', `/api/v1/cards/${randomCard()}/purchases`, { ...headers, 'idempotency-key': `bench-${runTag}-${keyCounter++}` }, purchaseBody),
        201,
      ).then(() => undefined);
    const issue = (agent: import('node:http').Agent, appPort: number) =>
      expectStatus(
        // +7 926 …: valid Russian mobile numbers, never the seed's +7 916 ….
        httpRequest(agent, appPort, 'POST', '/api/v1/cards', headers, JSON.stringify({ holder: { name: `Issued ${phoneCounter}`, phone: `+7926${String(phoneCounter++).padStart(7, '0')}` } })),
        201,
      ).then(() => undefined);
    // Cashier search: a phone, a card number or a name prefix, as a till types them (the SQL-seeded
    // cards when there are some, else the API-seeded ones).
    const searchTerms = (): string[] => {
      if (sqlCards > 0) {
        return sqlCardSearchTerms(1 + Math.floor(Math.random() * sqlCards));
      }
      const i = Math.floor(Math.random() * seed.cards.length);
      return [`+7916${String(i).padStart(7, '0')}`, seed.cards[i]!.number, `Holder ${i}`];
    };
    let searchKind = 0;
    const search = (agent: import('node:http').Agent, appPort: number) => {
      const term = searchTerms()[searchKind++ % 3]!;
      return expectStatus(httpRequest(agent, appPort, 'GET', `/api/v1/cards?query=${encodeURIComponent(term)}`, { authorization: headers.authorization }), 200).then(() => undefined);
    };
    const preparedLabel = process.env.BENCH_PREPARED === '0' ? 'unnamed statements' : 'prepared statements';
    console.log('');
    const purchases = await phase(`HTTP purchases, ${preparedLabel}`, purchaseClients, port, purchase);
    const unnamedPurchases = unnamedPort ? (console.log(''), await phase('HTTP purchases, unnamed statements', purchaseClients, unnamedPort, purchase)) : undefined;
    console.log('');
    const issues = await phase(`HTTP issue, ${preparedLabel}`, issueClients, port, issue);
    const unnamedIssues = unnamedPort ? (console.log(''), await phase('HTTP issue, unnamed statements', issueClients, unnamedPort, issue)) : undefined;
    console.log('');
    const searches = await phase(`HTTP GET /cards?query= (search), ${preparedLabel}`, issueClients, port, search);
    await explainSearches(admin, seed.programId, searchTerms());
    console.log('');
    await runPgbench('simple (after)', false);

    const summary = (name: string, result: LoadResult, target: number) => {
      const simple = pgbenchRuns.filter((r) => r.label.startsWith('simple')).map((r) => r.result.tps);
      const prepared = pgbenchRuns.find((r) => r.label === '-M prepared')?.result.tps;
      const cpu = totalCpuMsPerOp(result);
      const cpuText = cpu === undefined ? '' : `; CPU per request, all processes ${(cpu * 1000).toFixed(0)} µs (app ${((result.cpuMsPerOp.app ?? 0) * 1000).toFixed(0)}, PostgreSQL ${((result.cpuMsPerOp.postgres ?? 0) * 1000).toFixed(0)})`;
      if (simple.length === 0) {
        console.log(`  ${name}: ${result.perSecond.toFixed(0)}/s (no pgbench baseline)${cpuText}`);
        return;
      }
      const baseline = simple.reduce((a, b) => a + b, 0) / simple.length;
      const ratio = result.perSecond / baseline;
      console.log(
        `  ${name.padEnd(10)} ${result.perSecond.toFixed(0).padStart(5)}/s  vs pgbench ${baseline.toFixed(0)} tps (simple, mean of ${simple.length}) = ${(ratio * 100).toFixed(1)} %` +
          `  target ≥ ${target * 100} %: ${ratio >= target ? 'MET' : 'NOT MET'}` +
          (prepared ? `  (vs -M prepared ${prepared.toFixed(0)} tps: ${((result.perSecond / prepared) * 100).toFixed(1)} %)` : '') +
          cpuText,
      );
    };
    console.log(`Summary (${cardTotal.toLocaleString('en')} cards in the database):`);
    summary('purchases', purchases, PURCHASE_TARGET);
    if (unnamedPurchases) summary('  unnamed', unnamedPurchases, PURCHASE_TARGET);
    summary('issue', issues, ISSUE_TARGET);
    if (unnamedIssues) summary('  unnamed', unnamedIssues, ISSUE_TARGET);
    console.log(`  search     ${searches.perSecond.toFixed(0).padStart(5)}/s  p50 ${searches.p50Ms.toFixed(2)} ms, p99 ${searches.p99Ms.toFixed(2)} ms (phone, number and name prefix in turn)`);
    if ([purchases, issues, unnamedPurchases, unnamedIssues, searches].some((r) => r?.failures)) {
      console.error('\nSome operations failed: the figures above are not valid.');
      process.exitCode = 1;
    }
  } finally {
    await postgresMeter.close();
    await child?.stop();
    await unnamedChild?.stop();
    await admin.end();
    await database.drop();
    await scratch?.drop();
    if (cpuProfDir) console.log(`\nCPU profiles of the app process during each measured phase written to ${cpuProfDir}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
