/**
 * `BENCH_AB_OTHER=<other checkout> npx tsx scripts/bench-pos-ab.ts`: purchases through HTTP from this
 * checkout's app and another checkout's app (e.g. a worktree of main), both as child processes on
 * ONE PostgreSQL database, measured in interleaved slices (A B B A …) so that the load of a shared
 * machine falls on both alike (issue #14: comparing a change against its baseline when single runs
 * swing by 2×). Both apps must agree on the schema (same migrations). Prints purchases/s and CPU per
 * purchase (app process, PostgreSQL backends, load client) for each side and the ratios. Not a test.
 *
 * Environment: BENCH_AB_OTHER (required: the other checkout's root), BENCH_SECONDS (20 measured
 * seconds per side), BENCH_WARMUP_SECONDS (3), BENCH_CARDS (1000), BENCH_PURCHASE_CLIENTS (16).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
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
  PostgresCpuMeter,
  runInterleaved,
  type ChildHandle,
} from './bench-support/harness.js';
import { seedProgramViaApi } from './bench-support/seed.js';

const other = process.env.BENCH_AB_OTHER;
if (!other) throw new Error('set BENCH_AB_OTHER to the root of the checkout to compare with');
const seconds = envNumber('BENCH_SECONDS', 20);
const warmUpSeconds = envNumber('BENCH_WARMUP_SECONDS', 3);
const cardCount = Math.floor(envNumber('BENCH_CARDS', 1000));
const clients = Math.floor(envNumber('BENCH_PURCHASE_CLIENTS', 16));
const adminKey = `bench-admin-${randomBytes(16).toString('hex')}`;

const database = await createBenchDatabase();
const postgresMeter = new PostgresCpuMeter(database.url, database.name);
const children: Array<ChildHandle<PosServerMessage>> = [];
try {
  const migrating = new Kysely<Database>({ dialect: new PostgresDialect({ pool: benchPool({ connectionString: database.url, max: 1 }) }) });
  await migrateToLatest(migrating);
  await migrating.destroy();
  const serverOf = (root: string) => path.join(root, 'scripts/bench-support/pos-server.ts');
  const sides = [
    { label: `this checkout (${path.basename(process.cwd())})`, server: fileURLToPath(new URL('./bench-support/pos-server.ts', import.meta.url)) },
    { label: `other (${path.basename(path.resolve(other))})`, server: serverOf(path.resolve(other)) },
  ];
  const started = [];
  for (const side of sides) {
    const child = forkChild<PosServerMessage>(side.server, { env: { BENCH_DATABASE_URL: database.url, BENCH_ADMIN_KEY: adminKey } });
    children.push(child);
    started.push({ ...side, child, port: (await child.next('ready')).port });
  }
  const seed = await seedProgramViaApi(started[0]!.port, adminKey, cardCount);
  const headers = { authorization: `Bearer ${seed.posKey}`, 'content-type': 'application/json' };
  const body = JSON.stringify({ amount: 125_050 });
  const runTag = randomBytes(4).toString('hex');
  let keyCounter = 0;
  const randomCard = () => seed.cards[Math.floor(Math.random() * seed.cards.length)]!.id;
  console.log(`A/B purchases, ${clients} clients each, ${seconds} s per side in 2-second slices, ${seed.cards.length} cards, database ${database.name}`);
  const results = await runInterleaved(
    started.map((side) => {
      const agent = keepAliveAgent(clients);
      return {
        label: side.label,
        concurrency: clients,
        meters: { app: childCpuMeter(side.child), postgres: postgresMeter },
        operation: () =>
          expectStatus(
            httpRequest(agent, side.port, 'POST', `/api/v1/cards/${randomCard()}/purchases`, { ...headers, 'idempotency-key': `ab-${runTag}-${keyCounter++}` }, body),
            201,
          ).then(() => undefined),
      };
    }),
    { warmUpSeconds, seconds, sliceSeconds: 2 },
  );
  for (const result of results) console.log(formatResult(result));
  const [a, b] = results as [(typeof results)[0], (typeof results)[0]];
  const ratio = (x: number | undefined, y: number | undefined) => (x !== undefined && y ? (x / y).toFixed(2) : '—');
  console.log(
    `this / other: purchases/s ${ratio(a.perSecond, b.perSecond)}, CPU per purchase app ${ratio(a.cpuMsPerOp.app, b.cpuMsPerOp.app)}, ` +
      `PostgreSQL ${ratio(a.cpuMsPerOp.postgres, b.cpuMsPerOp.postgres)}, client ${ratio(a.cpuMsPerOp.client, b.cpuMsPerOp.client)}`,
  );
} finally {
  await postgresMeter.close();
  for (const child of children) await child.stop();
  await database.drop().catch(() => undefined);
}
