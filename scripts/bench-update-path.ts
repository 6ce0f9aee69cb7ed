/**
 * `npm run bench:updates`: what the pending-delivery state (issue #11, src/updates/pending-deliveries.ts)
 * costs the update path's hot path, on real PostgreSQL. Prints figures and ratios against the previous
 * statement measured in the same run; it is not a test.
 *
 * The Apple adapter reads the push tokens of the changed cards with one statement. It now LEFT JOINs
 * `wallet_delivery_pending` to see which tokens are pending (those are left to the retry worker), so the
 * healthy path needs no extra round trip. Measured here, per publish of BENCH_BATCH (1,000) random cards
 * out of BENCH_CARDS (100,000) cards with one device each:
 *
 *   before   the statement as it was (registrations ⋈ card, card id IN (…))
 *   now      the same with the LEFT JOIN on the pending table
 *
 * first with nothing pending (the normal case), then during an outage backlog (BENCH_PENDING, 20,000
 * tokens pending). The two statements alternate (before, now, now, before, …) so load from other
 * processes on a shared machine falls on both alike. Also: the retry worker's poll (a claim on an empty
 * table, once a second per wallet and process) and the Google adapter's read, before and now.
 *
 * Setup: a new database `walletcards_bench_<random>` on DATABASE_URL's server (default
 * postgres://postgres@127.0.0.1:5432/postgres), migrated, seeded with SQL, dropped at the end.
 * Environment: BENCH_CARDS (100000), BENCH_BATCH (1000), BENCH_ROUNDS (200 per statement),
 * BENCH_PENDING (20000), BENCH_EXPLAIN=1 (print the Apple statement's plan first).
 */
import { Kysely, PostgresDialect, sql } from 'kysely';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';
import { claimDueDeliveries } from '../src/updates/pending-deliveries.js';
import { benchPool, createBenchDatabase, envNumber } from './bench-support/harness.js';

const CARDS = envNumber('BENCH_CARDS', 100_000);
const BATCH = envNumber('BENCH_BATCH', 1_000);
const ROUNDS = envNumber('BENCH_ROUNDS', 200);
const PENDING = envNumber('BENCH_PENDING', 20_000);
const PTID = 'pass.bench.walletcards';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
function p90(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length * 0.9)]!;
}

async function main() {
  const bench = await createBenchDatabase();
  const pool = benchPool({ connectionString: bench.url, max: 4 });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db);
    console.log(`seeding ${CARDS.toLocaleString('en')} cards with one registered device each, and Google objects …`);
    const { rows } = await sql<{ id: string }>`
      INSERT INTO program (slug, name, rules) VALUES ('bench-updates', 'Bench', '{"tiers":[]}') RETURNING id
    `.execute(db);
    const programId = rows[0]!.id;
    await sql`
      INSERT INTO card (program_id, number, holder_name, phone, tier, referral_code, public_token, apple_serial, apple_auth_token)
      SELECT ${programId}, 'N' || i, 'Holder ' || i, '+7916' || lpad(i::text, 7, '0'), 'standard', 'R' || i,
        md5('p' || i), md5('s' || i), md5('a' || i)
      FROM generate_series(1, ${CARDS}) AS i
    `.execute(db);
    await sql`
      INSERT INTO apple_registration (device_library_identifier, pass_type_identifier, serial_number, push_token)
      SELECT 'device-' || md5(c.apple_serial), ${PTID}, c.apple_serial, md5(c.apple_serial) || md5(c.id::text)
      FROM card c
    `.execute(db);
    await sql`
      INSERT INTO google_object (card_id, program_id, object_id, class_id, published_balance, published_tier, content_hash)
      SELECT c.id, c.program_id, '3388000000012345678.' || c.id, '3388000000012345678.bench-standard', 0, 'standard', md5(c.id::text)
      FROM card c
    `.execute(db);
    await sql`ANALYZE`.execute(db);
    const cardIds = (await db.selectFrom('card').select('id').execute()).map((r) => r.id);
    const batch = () => Array.from({ length: BATCH }, () => cardIds[Math.floor(Math.random() * cardIds.length)]!);

    const appleBefore = (ids: string[]) =>
      db
        .selectFrom('apple_registration as r')
        .innerJoin('card as c', 'c.apple_serial', 'r.serial_number')
        .select(['c.id as card_id', 'r.push_token'])
        .where('r.pass_type_identifier', '=', PTID)
        .where('c.id', 'in', ids)
        .execute();
    // Exactly the adapter's statement (src/wallets/apple/updates-adapter.ts, publish).
    const appleNowQuery = (ids: string[]) =>
      db
        .selectFrom('apple_registration as r')
        .innerJoin('card as c', 'c.apple_serial', 'r.serial_number')
        .leftJoin('wallet_delivery_pending as p', (join) => join.on('p.wallet', '=', 'apple').onRef('p.target', '=', 'r.push_token'))
        .select(['c.id as card_id', 'r.push_token', 'p.target as pending'])
        .where('r.pass_type_identifier', '=', PTID)
        .where('c.id', 'in', ids);
    const appleNow = (ids: string[]) => appleNowQuery(ids).execute();
    const googleBase = (ids: string[]) =>
      db
        .selectFrom('google_object as g')
        .innerJoin('card as c', 'c.id', 'g.card_id')
        .selectAll('c')
        .select(['g.object_id', 'g.class_id', 'g.published_balance', 'g.published_tier', 'g.content_hash as object_hash', 'g.published_promo_hash'])
        .where('g.card_id', 'in', ids);
    const googleBefore = (ids: string[]) => googleBase(ids).execute();
    const googleNow = (ids: string[]) =>
      googleBase(ids)
        .leftJoin('wallet_delivery_pending as p', (join) => join.on('p.wallet', '=', 'google').on(sql<boolean>`p.target = g.card_id::text`))
        .select('p.target as pending')
        .execute();

    /** Alternates the two statements (a b b a …) on the same random batches; microseconds per statement. */
    async function compare(a: (ids: string[]) => Promise<unknown>, b: (ids: string[]) => Promise<unknown>, googleSized = false) {
      const times: { a: number[]; b: number[] } = { a: [], b: [] };
      const size = googleSized ? 200 : BATCH; // the Google worker publishes at most a fetch of 200 single-card jobs
      for (let i = 0; i < 20; i++) {
        const ids = batch().slice(0, size);
        await a(ids);
        await b(ids);
      }
      for (let i = 0; i < ROUNDS; i++) {
        const ids = batch().slice(0, size);
        const order = i % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const);
        for (const which of order) {
          const started = process.hrtime.bigint();
          await (which === 'a' ? a : b)(ids);
          times[which].push(Number(process.hrtime.bigint() - started) / 1000);
        }
      }
      return times;
    }
    const line = (label: string, times: { a: number[]; b: number[] }) => {
      const ratio = median(times.b) / median(times.a);
      console.log(
        `${label.padEnd(44)} before ${median(times.a).toFixed(0).padStart(6)} µs (p90 ${p90(times.a).toFixed(0).padStart(6)})   ` +
          `now ${median(times.b).toFixed(0).padStart(6)} µs (p90 ${p90(times.b).toFixed(0).padStart(6)})   now/before ${ratio.toFixed(2)}`,
      );
    };

    if (process.env.BENCH_EXPLAIN) {
      const compiled = appleNowQuery(batch()).compile();
      const plan = await sql.raw(`EXPLAIN (ANALYZE, BUFFERS) ${compiled.sql.replace(/\$(\d+)/g, (_, n) => `'${String(compiled.parameters[Number(n) - 1])}'`)}`).execute(db);
      console.log((plan.rows as Array<Record<string, string>>).map((r) => Object.values(r)[0]).join('\n'));
    }
    console.log(`\nApple publish read, ${BATCH} cards per statement, ${ROUNDS} rounds each:`);
    line('nothing pending', await compare(appleBefore, appleNow));
    const googleIdle = await compare(googleBefore, googleNow, true);

    // An outage backlog: PENDING tokens and PENDING/5 cards pending (a fifth of those due now).
    await sql`
      INSERT INTO wallet_delivery_pending (wallet, target, next_attempt_at, last_status)
      SELECT 'apple', push_token, now() + (random() * interval '5 minutes'), 503 FROM apple_registration ORDER BY random() LIMIT ${PENDING}
    `.execute(db);
    await sql`
      INSERT INTO wallet_delivery_pending (wallet, target, next_attempt_at, last_status)
      SELECT 'google', card_id::text, now() + (random() * interval '5 minutes'), 503 FROM google_object ORDER BY random() LIMIT ${Math.round(PENDING / 5)}
    `.execute(db);
    await sql`ANALYZE wallet_delivery_pending`.execute(db);
    line(`${PENDING.toLocaleString('en')} tokens pending (an outage)`, await compare(appleBefore, appleNow));

    console.log(`\nGoogle publish read, 200 cards per statement:`);
    line('nothing pending', googleIdle);
    line(`${Math.round(PENDING / 5).toLocaleString('en')} cards pending`, await compare(googleBefore, googleNow, true));

    // The retry worker's poll when nothing is due: one claim statement per wallet per second.
    await sql`DELETE FROM wallet_delivery_pending`.execute(db);
    const polls: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const started = process.hrtime.bigint();
      await claimDueDeliveries(db, 'apple', 1000, 300_000);
      polls.push(Number(process.hrtime.bigint() - started) / 1000);
    }
    console.log(`\nRetry worker poll with nothing pending: ${median(polls).toFixed(0)} µs (p90 ${p90(polls).toFixed(0)}) per wallet per poll (1 s)`);
  } finally {
    await db.destroy();
    await bench.drop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
