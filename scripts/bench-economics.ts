/**
 * `npm run bench:economics`: the economics report, its rollups, segment movement and a campaign's
 * effect at BENCH_CARDS cards (250,000) and BENCH_PURCHASES purchases (5,000,000) over three years,
 * on real PostgreSQL. Prints every statement's time; the target (issue #16) is every economics
 * query under 1 s. Not a test: figures and ratios against baselines measured in the same run.
 *
 * Setup: a new database `walletcards_bench_<random>` on DATABASE_URL's server (default the local
 * postgres://postgres@127.0.0.1:5432/postgres), migrated, seeded with SQL (scripts/bench-support/
 * economics-seed.ts), dropped at the end. The report runs through the app's own code
 * (src/economics) on a kysely instance that logs each statement with its duration; statements over
 * BENCH_EXPLAIN_MS (300) are run again with EXPLAIN (ANALYZE, BUFFERS) and their plans printed.
 *
 * Baselines of the same run: a count of the program's purchases (how fast this machine reads the
 * purchase table now), and the same report with nothing rolled up (every figure from the raw
 * tables: what the report would cost without the rollups).
 *
 * Environment: BENCH_CARDS, BENCH_PURCHASES, BENCH_RUNS (5), BENCH_EXPLAIN_MS (300),
 * BENCH_SKIP_RAW=1 (skip the no-rollup baseline, which takes about a minute), BENCH_KEEP=1 (keep the
 * database and print its name), BENCH_DB=<name> (measure a kept database again, without seeding).
 */
import { performance } from 'node:perf_hooks';
import { Kysely, PostgresDialect, sql, type LogEvent } from 'kysely';
import pg from 'pg';
import type { Database, ProgramRow } from '../src/db/schema.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { createProgram } from '../src/programs/service.js';
import { economicsReport } from '../src/economics/report.js';
import { economicsPeriod, type Period } from '../src/economics/period.js';
import { EconomicsRollup } from '../src/economics/rollup.js';
import { computeWeekFlows } from '../src/campaigns/segment-flow.js';
import { campaignEffect } from '../src/campaigns/effect.js';
import { CampaignService } from '../src/campaigns/service.js';
import { JobQueue } from '../src/jobs/queue.js';
import { createCardChangeRecorder } from '../src/updates/card-changes.js';
import { localDay } from '../src/enrollment/funnel.js';
import { benchPool, createBenchDatabase, envNumber } from './bench-support/harness.js';
import { seedEconomics } from './bench-support/economics-seed.js';

const TARGET_MS = 1000;
const INT8_OID = 20;

interface Logged {
  sql: string;
  parameters: readonly unknown[];
  ms: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};
const fmt = (ms: number) => `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;

async function main() {
  const cards = Math.round(envNumber('BENCH_CARDS', 250_000));
  const purchases = Math.round(envNumber('BENCH_PURCHASES', 5_000_000));
  const runs = Math.round(envNumber('BENCH_RUNS', 5));
  const explainMs = envNumber('BENCH_EXPLAIN_MS', 300);
  const reuse = process.env.BENCH_DB;
  const database = reuse ? reusedDatabase(reuse) : await createBenchDatabase();
  const pool = benchPool({ connectionString: database.url, max: 4 });
  const logged: Logged[] = [];
  let logging = false;
  const pgPool = new pg.Pool({
    connectionString: database.url,
    max: 4,
    types: { getTypeParser: ((oid: number, format?: any) => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as any },
  });
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: pgPool }),
    log: (event: LogEvent) => {
      if (logging && event.level === 'query') logged.push({ sql: event.query.sql, parameters: event.query.parameters, ms: event.queryDurationMillis });
    },
  });
  let jobs: JobQueue | undefined;
  const cleanup = async () => {
    await jobs?.stop().catch(() => {});
    await db.destroy().catch(() => {});
    await pool.end().catch(() => {});
    if (process.env.BENCH_KEEP === '1' || reuse) console.log(`kept database ${database.name} (BENCH_DB=${database.name} to measure it again)`);
    else await database.drop();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  try {
    await migrateToLatest(db);
    console.log(`Economics benchmark: Node ${process.version}, ${(await import('node:os')).availableParallelism()} CPUs, PostgreSQL database ${database.name}`);
    let program = await db.selectFrom('program').selectAll().where('slug', '=', 'bench-economics').executeTakeFirst();
    let seeded;
    if (!program) {
      program = await createProgram(db, { slug: 'bench-economics', name: 'Bench economics', defaultLanguage: 'ru', currency: 'RUB', timeZone: 'Europe/Moscow' } as never);
      console.log(`seeding ${cards} cards and about ${purchases} purchases over three years…`);
      const seedStarted = performance.now();
      seeded = await seedEconomics(pool, program.id, { cards, purchases, years: 3, log: (line) => console.log(line) });
      await pool.query('VACUUM ANALYZE');
      console.log(`seeded in ${Math.round((performance.now() - seedStarted) / 1000)} s`);
    } else {
      const counts = await pool.query<{ cards: number; purchases: number; ledger: number; checks: number }>(
        `SELECT (SELECT count(*) FROM card)::int AS cards, (SELECT count(*) FROM purchase)::int AS purchases,
                (SELECT count(*) FROM ledger_entry)::int AS ledger, (SELECT count(*) FROM anonymous_check)::int AS checks`,
      );
      const c = counts.rows[0]!;
      seeded = { cards: c.cards, purchases: c.purchases, ledgerEntries: c.ledger, anonymousChecks: c.checks };
    }
    console.log(`${seeded.cards} cards, ${seeded.purchases} purchases, ${seeded.ledgerEntries} ledger entries, ${seeded.anonymousChecks} checks without a card\n`);

    const now = new Date();
    const tz = program.time_zone;
    const periods: Array<[string, Period]> = [
      ['12 months by month (the cabinet default)', economicsPeriod({}, now, tz) as Period],
      ['3 years by month', economicsPeriod({ from: addMonthsDay(localDay(now, tz), -35), groupBy: 'month' }, now, tz) as Period],
      ['12 months by week', economicsPeriod({ groupBy: 'week' }, now, tz) as Period],
      ['last 30 days by day', economicsPeriod({ from: addDaysDay(localDay(now, tz), -29), groupBy: 'day' }, now, tz) as Period],
    ];

    // ---- baselines ----------------------------------------------------------------------------
    const countStarted = performance.now();
    await sql`SELECT count(*) FROM purchase WHERE program_id = ${program.id}`.execute(db);
    const countMs = performance.now() - countStarted;
    console.log(`baseline: count(*) of the program's ${seeded.purchases} purchases: ${fmt(countMs)}`);
    let rawMs: number | undefined;
    if (process.env.BENCH_SKIP_RAW !== '1') {
      const started = performance.now();
      await economicsReport(db, program, periods[0]![1], now);
      rawMs = performance.now() - started;
      console.log(`baseline: the report (${periods[0]![0]}) with nothing rolled up, every figure from the raw tables: ${fmt(rawMs)}`);
    }

    // ---- rollups ------------------------------------------------------------------------------
    const rollup = new EconomicsRollup(db, () => now);
    let started = performance.now();
    const rolled = await rollup.run(program.id);
    const firstRollupMs = performance.now() - started;
    console.log(`\nrollup, first run (the whole history: ${rolled.days} days, ${rolled.months} months): ${(firstRollupMs / 1000).toFixed(1)} s (background job)`);
    // The open month's days rolled up again (per day what the ten-minute tick does after midnight).
    await sql`DELETE FROM economics_card_month WHERE program_id = ${program.id}`.execute(db);
    await sql`UPDATE economics_rollup SET days_through = (SELECT months_through + interval '1 month' - interval '1 day' FROM economics_rollup WHERE program_id = ${program.id}) WHERE program_id = ${program.id}`.execute(db);
    started = performance.now();
    const month = await rollup.run(program.id);
    console.log(`rollup, the open month's days again (${month.days} days, per card): ${fmt(performance.now() - started)}`);
    started = performance.now();
    await rollup.run(program.id);
    console.log(`rollup, nothing to do: ${fmt(performance.now() - started)}`);
    const sizes = await sql<{ name: string; rows: number; size: string }>`
      SELECT relname AS name, n_live_tup::bigint AS rows, pg_size_pretty(pg_total_relation_size(relid)) AS size
      FROM pg_stat_user_tables WHERE relname LIKE 'economics%' ORDER BY relname`.execute(db);
    await sql`ANALYZE`.execute(db);
    console.log(`rollup tables: ${sizes.rows.map((r) => `${r.name} ${r.size}`).join(', ')}`);

    // ---- the report -----------------------------------------------------------------------------
    const slow: Logged[] = [];
    const summary: string[] = [];
    for (const [label, period] of periods) {
      const groups = new Map<string, number[]>();
      const totals: number[] = [];
      for (let run = 0; run < runs; run++) {
        logged.length = 0;
        logging = true;
        const t0 = performance.now();
        await economicsReport(db, program as ProgramRow, period, now, {
          onQuery: (name, ms) => groups.set(name, [...(groups.get(name) ?? []), ms]),
        });
        totals.push(performance.now() - t0);
        logging = false;
        if (run === runs - 1) for (const q of logged) if (q.ms >= explainMs) slow.push(q);
      }
      console.log(`\nreport ${label} (${period.from} … ${period.to}), median of ${runs} runs: ${fmt(median(totals))} in all`);
      for (const [name, times] of groups) {
        const ms = median(times);
        console.log(`  ${name.padEnd(48)} ${fmt(ms).padStart(8)}  ${ms < TARGET_MS ? 'under 1 s' : 'OVER 1 s'}`);
      }
      const worst = Math.max(...[...groups.values()].map(median));
      summary.push(`${label}: whole report ${fmt(median(totals))}, slowest query ${fmt(worst)}`);
    }

    // ---- segment movement -----------------------------------------------------------------------
    const weekStart = addDaysDay(mondayOf(localDay(now, tz)), -7);
    started = performance.now();
    const flows = await computeWeekFlows(db, program as ProgramRow, weekStart, tz);
    const flowMs = performance.now() - started;
    console.log(`\nsegment movement of one week (${weekStart}: two RFM statements, background job): ${fmt(flowMs)}; ${flows.filter((f) => f.from !== f.to).reduce((s, f) => s + f.cards, 0)} cards moved`);

    // ---- a campaign's control group and effect ---------------------------------------------------
    jobs = new JobQueue(db, { logger: { warn() {}, error() {}, info() {} } as never });
    await jobs.start();
    const campaigns = new CampaignService({
      db,
      jobs,
      cardChanges: createCardChangeRecorder(jobs, { debounceSeconds: 0, wallets: ['apple'] }),
      clock: () => now,
      wallets: ['apple'],
      passTypeIdentifier: 'pass.dev.walletcards.bench',
    });
    await campaigns.ensureQueues();
    // Baseline of the same run: the same audience written without a control group.
    const plain = await campaigns.create(program as ProgramRow, { name: 'Bench, no control', message: { ru: 'Привет', en: 'Hello' }, audience: { all: true }, controlShare: 0 }, 'bench');
    await campaigns.send(program.id, plain.id);
    started = performance.now();
    await campaigns.runStart(plain.id);
    const plainMs = performance.now() - started;
    await sql`UPDATE campaign SET status = 'cancelled' WHERE id = ${plain.id}`.execute(db);
    const campaign = await campaigns.create(program as ProgramRow, { name: 'Bench', message: { ru: 'Привет', en: 'Hello' }, audience: { all: true }, controlShare: 10 }, 'bench');
    await campaigns.send(program.id, campaign.id);
    started = performance.now();
    await campaigns.runStart(campaign.id);
    const splitMs = performance.now() - started;
    const row = await db.selectFrom('campaign').selectAll().where('id', '=', campaign.id).executeTakeFirstOrThrow();
    console.log(
      `campaign to everyone with consent: audience written in ${fmt(plainMs)} without a control group; with 10 % held back ${fmt(splitMs)} ` +
        `(${row.targeted} recipients, ${row.held_out} control; ${(splitMs / plainMs).toFixed(2)}× the baseline; the campaign-start job, in the background)`,
    );
    // Measured as if it had started 14 days ago: the window is the last 14 days of purchases.
    await sql`UPDATE campaign SET started_at = ${new Date(now.getTime() - 14 * 86_400_000)} WHERE id = ${campaign.id}`.execute(db);
    const started14 = await db.selectFrom('campaign').selectAll().where('id', '=', campaign.id).executeTakeFirstOrThrow();
    const effectTimes: number[] = [];
    let effect;
    for (let run = 0; run < runs; run++) {
      logged.length = 0;
      logging = true;
      const t0 = performance.now();
      effect = await campaignEffect(db, started14, now);
      effectTimes.push(performance.now() - t0);
      logging = false;
      if (run === runs - 1) for (const q of logged) if (q.ms >= explainMs) slow.push(q);
    }
    console.log(
      `campaign effect over ${row.targeted + row.held_out} holders and 14 days of purchases, median of ${runs}: ${fmt(median(effectTimes))}  ` +
        `${median(effectTimes) < TARGET_MS ? 'under 1 s' : 'OVER 1 s'}; conversion ${effect?.treated.conversion} vs ${effect?.control?.conversion}`,
    );
    summary.push(`campaign effect at ${row.targeted + row.held_out} holders: ${fmt(median(effectTimes))}`);

    console.log(`\nsummary (target: every economics query under 1 s):`);
    for (const line of summary) console.log(`  ${line}`);
    console.log(`  baseline count(*) of all purchases: ${fmt(countMs)}${rawMs ? `; the default report without rollups: ${fmt(rawMs)} (${(rawMs / countMs).toFixed(1)}× the count)` : ''}`);

    // ---- plans of the slow statements --------------------------------------------------------------
    if (slow.length > 0) {
      console.log(`\nplans of the statements over ${explainMs} ms (last run):`);
      const seen = new Set<string>();
      for (const q of slow) {
        if (seen.has(q.sql)) continue;
        seen.add(q.sql);
        // With the settings the statement ran under (the report's and the effect's SET LOCALs).
        const plan = await db.transaction().execute(async (trx) => {
          await sql`SET LOCAL jit = off`.execute(trx);
          await sql`SET LOCAL work_mem = '64MB'`.execute(trx);
          if (/^\s*WITH (pc|c) AS/.test(q.sql)) await sql`SET LOCAL max_parallel_workers_per_gather = 0`.execute(trx);
          return trx.executeQuery({ sql: `EXPLAIN (ANALYZE, BUFFERS) ${q.sql}`, parameters: q.parameters, query: { kind: 'RawNode' } } as never);
        });
        console.log(`\n-- ${fmt(q.ms)}: ${q.sql.replace(/\s+/g, ' ').slice(0, 160)}…`);
        console.log((plan.rows as Array<Record<string, string>>).map((r) => r['QUERY PLAN']).join('\n'));
      }
    }
  } finally {
    await cleanup();
  }
}

function reusedDatabase(name: string) {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: async () => {} };
}

function addDaysDay(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}
function addMonthsDay(day: string, months: number): string {
  const d = new Date(`${day.slice(0, 7)}-01T00:00:00Z`);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1)).toISOString().slice(0, 10);
}
function mondayOf(day: string): string {
  return addDaysDay(day, -((new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
