/**
 * `npx tsx scripts/bench-outbox.ts`: what the purchase's outbox write costs PostgreSQL (issue #14,
 * candidate 4): pg-boss's job insert of one wallet-update job (the statement `queue.insert` sends,
 * with its foreign-key check on `pgboss.queue`) against an INSERT of one row into a narrow outbox
 * table (id, card id, wallet, time; no foreign key), each in its own transaction, interleaved one
 * after the other on one connection so both see the same load. Prints the statement time from
 * pg_stat_statements (execution + planning, the FK check included) and the client's round-trip time,
 * medians and means. It is not a test; it measures before anything is built.
 *
 * Setup: a new database on DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432),
 * migrated, pg-boss started in it with the wallet-update queue as the app creates it; dropped at the
 * end. Environment: BENCH_ROUNDS (2000 pairs), BENCH_PREPARED (1: named statements, as the app).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { JobQueue } from '../src/jobs/queue.js';
import { ensureWalletUpdateQueues, walletUpdateQueue } from '../src/updates/card-changes.js';
import { createBenchDatabase, envNumber } from './bench-support/harness.js';

const rounds = Math.floor(envNumber('BENCH_ROUNDS', 2000));
const database = await createBenchDatabase();
const handle = openDatabase({ databaseUrl: database.url, poolSize: 2, preparedStatements: process.env.BENCH_PREPARED !== '0' });
const db = handle.db;
const queue = new JobQueue(db, { maintenance: false });
try {
  await migrateToLatest(db);
  await queue.start();
  await ensureWalletUpdateQueues(queue, ['apple']);
  await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`.execute(db);
  await sql`
    CREATE TABLE outbox_probe (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      card_id uuid NOT NULL,
      wallet text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  const name = walletUpdateQueue('apple');
  const pgBoss = async () =>
    db.transaction().execute((trx) => queue.insert(trx, [{ name, data: { cardId: randomUUID() }, singletonKey: randomUUID(), startAfter: '5' } as never]));
  const narrow = async () =>
    db.transaction().execute((trx) => sql`INSERT INTO outbox_probe (card_id, wallet) VALUES (${randomUUID()}, 'apple')`.execute(trx));
  // Warm both (plans, caches), then reset this database's counters.
  for (let i = 0; i < 50; i++) {
    await pgBoss();
    await narrow();
  }
  await sql`SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)`.execute(db);
  const times = { pgBoss: [] as number[], narrow: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? (['pgBoss', 'narrow'] as const) : (['narrow', 'pgBoss'] as const);
    for (const which of order) {
      const started = process.hrtime.bigint();
      await (which === 'pgBoss' ? pgBoss() : narrow());
      times[which].push(Number(process.hrtime.bigint() - started) / 1000);
    }
  }
  const rows = (
    await sql<{ query: string; calls: string; total: number }>`
      SELECT query, calls::text, total_exec_time + total_plan_time AS total
      FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total DESC`.execute(db)
  ).rows;
  const perCall = (match: (query: string) => boolean) =>
    (rows.filter((row) => match(row.query)).reduce((sum, row) => sum + row.total, 0) * 1000) / rounds;
  const jobInsert = perCall((q) => q.includes('INSERT INTO pgboss.job') || (q.startsWith('WITH defaults') && q.includes('pgboss')));
  const fkCheck = perCall((q) => q.includes('"pgboss"."queue"') && q.includes('FOR KEY SHARE'));
  const probe = perCall((q) => q.includes('INSERT INTO outbox_probe'));
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  console.log(`outbox write, ${rounds} interleaved pairs, one connection (${process.env.BENCH_PREPARED !== '0' ? 'named' : 'unnamed'} statements)`);
  console.log(`  pg-boss job insert: statement ${jobInsert.toFixed(0)} µs + FK check ${fkCheck.toFixed(0)} µs; transaction round trip median ${median(times.pgBoss).toFixed(0)} µs, mean ${mean(times.pgBoss).toFixed(0)} µs`);
  console.log(`  narrow-table insert: statement ${probe.toFixed(0)} µs; transaction round trip median ${median(times.narrow).toFixed(0)} µs, mean ${mean(times.narrow).toFixed(0)} µs`);
  console.log(`  narrow / pg-boss statement time: ${(probe / (jobInsert + fkCheck)).toFixed(2)}`);
  console.log('  statements:');
  for (const row of rows.slice(0, 8)) console.log(`    ${row.calls.padStart(6)} calls ${((row.total * 1000) / Number(row.calls)).toFixed(0).padStart(6)} µs  ${row.query.replace(/\s+/g, ' ').slice(0, 110)}`);
} finally {
  await queue.boss.stop({ graceful: false, wait: true }).catch(() => undefined);
  await handle.close();
  await database.drop();
}
