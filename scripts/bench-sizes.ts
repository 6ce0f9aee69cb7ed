/**
 * `npm run bench:sizes`: "cost must not grow with the base" (issue #14) — purchases, pass 304s and
 * card searches per second on a small and a large card base, measured in the SAME minutes. Figures
 * only, not a test.
 *
 * Why one run for both sizes: separate `bench:pos` runs at 10,000 and 1,000,000 cards were spoiled
 * by the shared machine's load changing between them (docs/benchmarks.md). Here both bases exist at
 * once and the measuring slices alternate between them (small, large, large, small, …), so a busy
 * minute falls on both alike; every slice is printed, and the verdict uses the median of the
 * per-round ratios large / small.
 *
 * Setup, per size (BENCH_SIZES, default "10000,1000000" cards in total): a new database
 * `walletcards_bench_<random>` on DATABASE_URL's server, migrated; the whole app in its own child
 * process (pos-server.ts: wired like src/server.ts, workers on); one program, a pos key and
 * BENCH_API_CARDS (100) cards through the API, the rest seeded with SQL (card-seed.ts, VACUUM
 * ANALYZE included). Both bases are seeded at the same time; a million cards takes minutes.
 *
 * Per size, from 10,000 cards drawn at random from the whole base (at 10,000 cards: all of them),
 * two disjoint halves: purchases go to one, 304s to the other (a purchase changes the card, and a
 * changed card answers 200, not 304). At a million cards these rows are scattered over a large heap
 * and indexes, not in a few hot pages: that is what the comparison is about.
 *   purchases  BENCH_PURCHASE_CLIENTS (16) clients POSTing /api/v1/cards/:id/purchases, unique
 *              Idempotency-Key each;
 *   304        BENCH_WEB_CLIENTS (16) clients GETting /apple/v1/passes/… with the card's token and
 *              If-Modified-Since = its Last-Modified (the 304 map answers once it knows a serial;
 *              the first ask of each serial reads the card by its unique apple_serial index);
 *   search     BENCH_SEARCH_CLIENTS (8) clients GETting /api/v1/cards?query= with a phone, a card
 *              number and a name prefix in turn (SQL-seeded cards).
 * Each round measures every kind on both sizes for BENCH_SLICE_SECONDS (2) each; BENCH_ROUNDS (8)
 * rounds after a BENCH_WARMUP_SECONDS (2) warm-up of each. CPU per request of the app process and
 * of that database's PostgreSQL backends comes from /proc, per slice. At the end: EXPLAIN (ANALYZE,
 * BUFFERS) of the three searches on every base.
 *
 * Target (issue #14): at the large size, each rate within 10 % of the small size's.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';
import {
  benchPool,
  childCpuMeter,
  createBenchDatabase,
  envNumber,
  expectStatus,
  forkChild,
  httpRequest,
  keepAliveAgent,
  machineBusyOver,
  PostgresCpuMeter,
  runInterleaved,
  type BenchDatabase,
  type ChildCpuMeter,
  type ChildHandle,
  type Contender,
  type LoadResult,
} from './bench-support/harness.js';
import type { PosServerMessage } from './bench-support/pos-server.js';
import { seedCardsWithSql, sqlCardSearchTerms } from './bench-support/card-seed.js';
import { explainSearches } from './bench-support/search-plans.js';
import { seedProgramViaApi } from './bench-support/seed.js';

const TARGET = 0.1;
const SAMPLE = 10_000;
const KINDS = ['purchases', '304', 'search'] as const;
type Kind = (typeof KINDS)[number];

interface Base {
  size: number;
  database: BenchDatabase;
  pool: pg.Pool;
  app: ChildHandle<PosServerMessage>;
  port: number;
  passTypeIdentifier: string;
  appMeter: ChildCpuMeter;
  postgresMeter: PostgresCpuMeter;
  programId: string;
  posKey: string;
  sqlCards: number;
  purchaseCards: string[];
  passRequests: Array<{ path: string; headers: Record<string, string> }>;
  agents: Record<Kind, import('node:http').Agent>;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const elapsed = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
const load = () => loadavg().map((l) => l.toFixed(2)).join(', ');

async function openBase(size: number, apiCards: number, adminKey: string): Promise<Base> {
  const database = await createBenchDatabase();
  const pool = benchPool({ connectionString: database.url, max: 2 });
  const migrating = new Kysely<Database>({ dialect: new PostgresDialect({ pool: benchPool({ connectionString: database.url, max: 1 }) }) });
  await migrateToLatest(migrating);
  await migrating.destroy();
  const app = forkChild<PosServerMessage>(fileURLToPath(new URL('./bench-support/pos-server.ts', import.meta.url)), {
    env: { BENCH_DATABASE_URL: database.url, BENCH_ADMIN_KEY: adminKey },
  });
  const { port, passTypeIdentifier } = await app.next('ready');
  const seed = await seedProgramViaApi(port, adminKey, apiCards);
  return {
    size,
    database,
    pool,
    app,
    port,
    passTypeIdentifier,
    appMeter: childCpuMeter(app),
    postgresMeter: new PostgresCpuMeter(database.url, database.name),
    programId: seed.programId,
    posKey: seed.posKey,
    sqlCards: Math.max(0, size - apiCards),
    purchaseCards: [],
    passRequests: [],
    agents: { purchases: keepAliveAgent(1), '304': keepAliveAgent(1), search: keepAliveAgent(1) },
  };
}

/** Seeds the SQL cards and draws the purchase and 304 samples (disjoint halves of one random draw). */
async function seedBase(base: Base): Promise<void> {
  const t = performance.now();
  await seedCardsWithSql(base.pool, base.programId, base.sqlCards);
  console.log(`  ${base.size.toLocaleString('en')} cards: ${base.sqlCards.toLocaleString('en')} seeded with SQL in ${elapsed(t)} (load average ${load()})`);
  const { rows } = await base.pool.query<{ id: string; apple_serial: string; apple_auth_token: string; updated_at: Date }>(
    'SELECT id, apple_serial, apple_auth_token, updated_at FROM card WHERE program_id = $1 ORDER BY random() LIMIT $2',
    [base.programId, SAMPLE],
  );
  const half = Math.floor(rows.length / 2);
  base.purchaseCards = rows.slice(0, half).map((r) => r.id);
  base.passRequests = rows.slice(half).map((row) => ({
    path: `/apple/v1/passes/${base.passTypeIdentifier}/${row.apple_serial}`,
    headers: {
      authorization: `ApplePass ${row.apple_auth_token}`,
      'if-modified-since': new Date(Math.floor(row.updated_at.getTime() / 1000) * 1000).toUTCString(),
    },
  }));
}

async function main(): Promise<void> {
  const sizes = (process.env.BENCH_SIZES ?? '10000,1000000').split(',').map((s) => Number.parseInt(s, 10));
  const apiCards = Math.floor(envNumber('BENCH_API_CARDS', 100));
  if (sizes.length !== 2 || sizes.some((s) => !Number.isInteger(s) || s <= apiCards)) throw new Error(`BENCH_SIZES: two card counts above BENCH_API_CARDS (${apiCards})`);
  const rounds = Math.floor(envNumber('BENCH_ROUNDS', 8));
  const sliceSeconds = envNumber('BENCH_SLICE_SECONDS', 2);
  const warmUpSeconds = envNumber('BENCH_WARMUP_SECONDS', 2);
  const clients: Record<Kind, number> = {
    purchases: Math.floor(envNumber('BENCH_PURCHASE_CLIENTS', 16)),
    '304': Math.floor(envNumber('BENCH_WEB_CLIENTS', 16)),
    search: Math.floor(envNumber('BENCH_SEARCH_CLIENTS', 8)),
  };
  const adminKey = `bench-admin-${randomBytes(16).toString('hex')}`;
  const bases: Base[] = [];
  try {
    const t0 = performance.now();
    for (const size of sizes) bases.push(await openBase(size, apiCards, adminKey));
    console.log(
      `bench:sizes: Node ${process.version}, ${availableParallelism()} CPUs, load average ${load()}; databases ${bases.map((b) => b.database.name).join(', ')}; ` +
        `${apiCards} cards per base issued through the API (${elapsed(t0)}); seeding the rest with SQL, both at once…`,
    );
    await Promise.all(bases.map((base) => seedBase(base)));
    for (const base of bases) {
      base.agents = { purchases: keepAliveAgent(clients.purchases), '304': keepAliveAgent(clients['304']), search: keepAliveAgent(clients.search) };
    }

    let keyCounter = 0;
    const runTag = randomBytes(4).toString('hex');
    const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)]!;
    const operation = (base: Base, kind: Kind): (() => Promise<void>) => {
      const auth = `Bearer ${base.posKey}`;
      if (kind === 'purchases') {
        const headers = { authorization: auth, 'content-type': 'application/json' };
        const body = JSON.stringify({ amount: 125_050 });
        return () =>
          expectStatus(
            httpRequest(base.agents.purchases, base.port, 'POST', `/api/v1/cards/${pick(base.purchaseCards)}/purchases`, { ...headers, 'idempotency-key': `bench-${runTag}-${keyCounter++}` }, body),
            201,
          ).then(() => undefined);
      }
      if (kind === '304') {
        return () => {
          const pass = pick(base.passRequests);
          return expectStatus(httpRequest(base.agents['304'], base.port, 'GET', pass.path, pass.headers), 304).then(() => undefined);
        };
      }
      let turn = 0;
      return () => {
        const term = sqlCardSearchTerms(1 + Math.floor(Math.random() * base.sqlCards))[turn++ % 3];
        return expectStatus(httpRequest(base.agents.search, base.port, 'GET', `/api/v1/cards?query=${encodeURIComponent(term)}`, { authorization: auth }), 200).then(() => undefined);
      };
    };
    const contender = (base: Base, kind: Kind): Contender => ({
      label: `${kind} @ ${base.size.toLocaleString('en')}`,
      concurrency: clients[kind],
      meters: { app: base.appMeter, postgres: base.postgresMeter },
      operation: operation(base, kind),
    });

    // Every request kind must answer as expected before anything is measured.
    for (const base of bases) for (const kind of KINDS) await operation(base, kind)();

    const busy = await machineBusyOver(1000);
    console.log(
      `\nMachine ${busy === undefined ? '?' : (busy * 100).toFixed(0)} % busy before measuring (other processes), load average ${load()}; ` +
        `${rounds} rounds × (3 kinds × 2 sizes × ${sliceSeconds} s slices), after ${warmUpSeconds} s warm-up each; ` +
        `clients: purchases ${clients.purchases}, 304 ${clients['304']}, search ${clients.search}`,
    );
    for (const base of bases) for (const kind of KINDS) await runInterleaved([contender(base, kind)], { warmUpSeconds, seconds: 0, sliceSeconds: warmUpSeconds }).catch(() => undefined);

    const slices: Record<Kind, LoadResult[][]> = { purchases: [], '304': [], search: [] };
    const cpu = (r: LoadResult) => `app ${((r.cpuMsPerOp.app ?? Number.NaN) * 1000).toFixed(0)} + PostgreSQL ${((r.cpuMsPerOp.postgres ?? Number.NaN) * 1000).toFixed(0)} µs`;
    console.log('\nround  kind        ' + bases.map((b) => `${b.size.toLocaleString('en').padStart(9)} cards: /s, CPU per request`.padEnd(50)).join('') + 'large / small');
    for (let round = 0; round < rounds; round++) {
      for (const kind of KINDS) {
        // Alternate which size goes first, so neither always gets the fresher minute.
        const order = round % 2 === 0 ? bases : [...bases].reverse();
        const results = await runInterleaved(order.map((base) => contender(base, kind)), { warmUpSeconds: 0, seconds: sliceSeconds, sliceSeconds });
        const bySize = bases.map((base) => results[order.indexOf(base)]!);
        slices[kind].push(bySize);
        const failures = bySize.reduce((a, r) => a + r.failures, 0);
        console.log(
          `${String(round + 1).padStart(5)}  ${kind.padEnd(10)}  ` +
            bySize.map((r) => `${r.perSecond.toFixed(0).padStart(9)}/s  ${cpu(r)}  ${((r.machineBusy ?? Number.NaN) * 100).toFixed(0)} % busy`.padEnd(50)).join('') +
            `${(bySize[1]!.perSecond / bySize[0]!.perSecond).toFixed(2)}` +
            (failures ? `  ${failures} FAILED: ${bySize.find((r) => r.firstFailure)?.firstFailure}` : ''),
        );
      }
    }

    console.log(`\nSummary (load average ${load()}); "within 10 %" = median of the per-round ratios large / small ≥ ${1 - TARGET}:`);
    let failed = false;
    for (const kind of KINDS) {
      const perRound = slices[kind];
      const sum = (i: number) => {
        const rs = perRound.map((r) => r[i]!);
        const ops = rs.reduce((a, r) => a + r.operations, 0);
        const secs = rs.reduce((a, r) => a + r.seconds, 0);
        const cpuOf = (name: string) => rs.reduce((a, r) => a + (r.cpuMsPerOp[name] ?? Number.NaN) * r.operations, 0) / Math.max(1, ops);
        if (rs.some((r) => r.failures)) failed = true;
        return { perSecond: ops / secs, medianPerSecond: median(rs.map((r) => r.perSecond)), app: cpuOf('app'), postgres: cpuOf('postgres'), p50: median(rs.map((r) => r.p50Ms)) };
      };
      const [small, large] = [sum(0), sum(1)];
      const ratios = perRound.map((r) => r[1]!.perSecond / r[0]!.perSecond);
      const ratio = median(ratios);
      const fmt = (s: ReturnType<typeof sum>) =>
        `${s.perSecond.toFixed(0)}/s (median slice ${s.medianPerSecond.toFixed(0)}/s, median p50 ${s.p50.toFixed(1)} ms), CPU app ${(s.app * 1000).toFixed(0)} + PostgreSQL ${(s.postgres * 1000).toFixed(0)} µs`;
      console.log(`  ${kind.padEnd(10)} ${sizes[0]!.toLocaleString('en')}: ${fmt(small)}`);
      console.log(`  ${''.padEnd(10)} ${sizes[1]!.toLocaleString('en')}: ${fmt(large)}`);
      console.log(
        `  ${''.padEnd(10)} large / small: median of rounds ${ratio.toFixed(2)} (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}), ` +
          `CPU per request ${((large.app + large.postgres) / (small.app + small.postgres)).toFixed(2)}×: ${ratio >= 1 - TARGET ? 'within 10 %' : 'NOT within 10 %'}`,
      );
    }
    for (const base of bases) {
      console.log(`\nSearch plans at ${base.size.toLocaleString('en')} cards:`);
      await explainSearches(base.pool, base.programId, sqlCardSearchTerms(1 + Math.floor(Math.random() * base.sqlCards)));
    }
    if (failed) {
      console.error('\nSome requests failed: the figures above are not valid.');
      process.exitCode = 1;
    }
  } finally {
    for (const base of bases) {
      for (const agent of Object.values(base.agents)) agent.destroy();
      await base.postgresMeter.close();
      await base.app.stop();
      await base.pool.end();
      await base.database.drop();
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
