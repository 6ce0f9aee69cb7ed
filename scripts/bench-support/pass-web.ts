/**
 * Section 2 of `npm run bench:passes`: the PassKit web service answering "not modified" — devices
 * poll `GET /apple/v1/passes/{passTypeIdentifier}/{serial}` with `If-Modified-Since`, and most
 * answers are 304 — against a hello-world Fastify route, in the same run. Figures only, not a test.
 *
 * Setup: a new PostgreSQL database `walletcards_bench_<random>` (DATABASE_URL's server, default
 * postgres://postgres@127.0.0.1:5432/postgres), migrated, dropped at the end; the whole app in a
 * child process (pos-server.ts: wired like src/server.ts, pino `info` into /dev/null, workers on);
 * one program and BENCH_WEB_CARDS cards issued through the API; the hello-world Fastify (same
 * Fastify, no logger) in a second child process. The load client in this process keeps one
 * keep-alive connection per concurrent client; each request picks a random card and sends its
 * `Authorization: ApplePass <token>` and `If-Modified-Since: <its Last-Modified>`; anything but
 * 304 counts as a failure. The two sides take turns in 1-second slices (app, hello, hello, app, …)
 * so that load from other processes on a shared machine falls on both alike.
 *
 * Target (issue): 304s per second ≥ 40 % of hello-world's requests per second.
 *
 * Also in the same slices (issue #14): the same 304s from a second app process on the same database
 * with APPLE_NOT_MODIFIED_MAP=false (every check reads the card: the path before the 304 map), and
 * the list-serials call (`GET /apple/v1/devices/{device}/registrations/{type}?passesUpdatedSince=`
 * with the latest tag, answered 204 — a device's "anything new?" poll; one device per card,
 * registered with SQL) on the first app.
 *
 * Besides requests/s and latency, each run prints CPU microseconds per request of the load client
 * (this process), the server process and, for the app, the PostgreSQL backends serving the bench
 * database (/proc): on a small machine the three share the cores, so throughput follows their sum.
 *
 * Environment: BENCH_WEB_SECONDS (10 measured seconds per side), BENCH_WEB_SLICE_SECONDS (1),
 * BENCH_WEB_WARMUP_SECONDS (2), BENCH_WEB_CONCURRENCY ("16,32"), BENCH_WEB_CARDS (1000), BENCH_LOG_LEVEL (the app's pino level, default info),
 * BENCH_CPU_PROF=<dir> (write a --cpu-prof of the app process there), BENCH_PREPARED=0 (the app with
 * PG_PREPARED_STATEMENTS=false: unnamed statements; see pos-server.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import { migrateToLatest } from '../../src/db/migrate.js';
import type { Database } from '../../src/db/schema.js';
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
  type ChildCpuMeter,
  type ChildHandle,
  type LoadResult,
} from './harness.js';
import type { HelloServerMessage } from './hello-server.js';
import type { PosServerMessage } from './pos-server.js';
import { seedProgramViaApi } from './seed.js';
import { seedCardsWithSql } from './card-seed.js';

export const PASS_WEB_TARGET_RATIO = 0.4;

export interface PassWebResult {
  concurrency: number;
  app: LoadResult;
  appWithoutMap: LoadResult;
  list: LoadResult;
  hello: LoadResult;
  ratio: number;
}

interface PassRequest {
  path: string;
  headers: Record<string, string>;
}

export async function runPassWebBenchmark(): Promise<PassWebResult[]> {
  const seconds = envNumber('BENCH_WEB_SECONDS', 10);
  const warmUpSeconds = envNumber('BENCH_WEB_WARMUP_SECONDS', 2);
  const cardCount = Math.max(1, Math.floor(envNumber('BENCH_WEB_CARDS', 1000)));
  const sliceSeconds = envNumber('BENCH_WEB_SLICE_SECONDS', 1);
  const concurrencies = (process.env.BENCH_WEB_CONCURRENCY ?? '16,32').split(',').map((c) => Number.parseInt(c, 10));
  if (concurrencies.some((c) => !Number.isInteger(c) || c < 1 || c > 256)) throw new Error('BENCH_WEB_CONCURRENCY: comma-separated integers 1–256');
  const cpuProfDir = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;
  const adminKey = `bench-admin-${randomBytes(16).toString('hex')}`;

  console.log('\nSection 2: pass web service 304 vs hello-world Fastify');
  const database = await createBenchDatabase();
  let app: ChildHandle<PosServerMessage> | undefined;
  let appWithoutMap: ChildHandle<PosServerMessage> | undefined;
  let hello: ChildHandle<HelloServerMessage> | undefined;
  const postgresMeter = new PostgresCpuMeter(database.url, database.name);
  try {
    const pool = benchPool({ connectionString: database.url, max: 2 });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    let passRequests: PassRequest[];
    let listRequests: PassRequest[];
    let appPort: number;
    let appWithoutMapPort: number;
    try {
      await migrateToLatest(db);
      if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
      app = forkChild<PosServerMessage>(fileURLToPath(new URL('./pos-server.ts', import.meta.url)), {
        env: { BENCH_DATABASE_URL: database.url, BENCH_ADMIN_KEY: adminKey },
        extraExecArgv: cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [],
      });
      const ready = await app.next('ready');
      appPort = ready.port;
      const seedStart = performance.now();
      const seed = await seedProgramViaApi(appPort, adminKey, cardCount);
      const sqlCards = process.env.BENCH_SEED_SQL ? Math.floor(envNumber('BENCH_SEED_SQL', 0)) : 0;
      if (sqlCards > 0) {
        const t = performance.now();
        await seedCardsWithSql(pool, seed.programId, sqlCards);
        console.log(`Seeded ${sqlCards.toLocaleString('en')} more cards with SQL in ${((performance.now() - t) / 1000).toFixed(1)} s (VACUUM ANALYZE included)`);
      }
      const rows = await db
        .selectFrom('card')
        .select(['apple_serial', 'apple_auth_token', 'updated_at'])
        .where('program_id', '=', seed.programId)
        .where('id', 'in', seed.cards.map((card) => card.id))
        .execute();
      // One device per card for the list-serials call.
      await db
        .insertInto('apple_registration')
        .values(rows.map((row, i) => ({ device_library_identifier: `bench-device-${i}`, pass_type_identifier: ready.passTypeIdentifier, serial_number: row.apple_serial, push_token: `benchtoken${i}` })))
        .execute();
      const { tag } = await db.selectFrom('card').select((eb) => eb.fn.max('update_tag').as('tag')).executeTakeFirstOrThrow();
      listRequests = rows.map((_row, i) => ({
        path: `/apple/v1/devices/bench-device-${i}/registrations/${ready.passTypeIdentifier}?passesUpdatedSince=${tag}`,
        headers: {},
      }));
      appWithoutMap = forkChild<PosServerMessage>(fileURLToPath(new URL('./pos-server.ts', import.meta.url)), {
        env: { BENCH_DATABASE_URL: database.url, BENCH_ADMIN_KEY: adminKey, APPLE_NOT_MODIFIED_MAP: 'false', BENCH_RUN_WORKERS: '0' },
      });
      appWithoutMapPort = (await appWithoutMap.next('ready')).port;
      // Exactly what a device that holds the current pass sends: its Last-Modified back.
      passRequests = rows.map((row) => ({
        path: `/apple/v1/passes/${ready.passTypeIdentifier}/${row.apple_serial}`,
        headers: {
          authorization: `ApplePass ${row.apple_auth_token}`,
          'if-modified-since': new Date(Math.floor(row.updated_at.getTime() / 1000) * 1000).toUTCString(),
        },
      }));
      console.log(
        `Database ${database.name}; app in child process ${app.process.pid} on 127.0.0.1:${appPort} ` +
          `(pino ${process.env.BENCH_LOG_LEVEL ?? 'info'} → /dev/null, workers on${process.env.BENCH_PREPARED === '0' ? ', BENCH_PREPARED=0: unnamed statements' : ', named (prepared) statements'}); ${rows.length} cards seeded through the API in ` +
          `${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
      );
    } finally {
      await db.destroy();
    }

    hello = forkChild<HelloServerMessage>(fileURLToPath(new URL('./hello-server.ts', import.meta.url)));
    const helloPort = (await hello.next('ready')).port;
    console.log(`hello-world Fastify in child process ${hello.process.pid} on 127.0.0.1:${helloPort}`);
    console.log(`Each side: ${warmUpSeconds} s warm-up, then ${seconds} s measured in ${sliceSeconds} s slices, taking turns\n`);

    // One request of each kind before measuring: the apps must answer 304, the list 204, hello-world 200.
    {
      const agent = keepAliveAgent(1);
      const first = passRequests[0]!;
      const answer = await expectStatus(httpRequest(agent, appPort, 'GET', first.path, first.headers), 304);
      if (answer.body !== '') throw new Error('304 with a body');
      await expectStatus(httpRequest(agent, appWithoutMapPort, 'GET', first.path, first.headers), 304);
      await expectStatus(httpRequest(agent, appPort, 'GET', listRequests[0]!.path), 204);
      await expectStatus(httpRequest(agent, helloPort, 'GET', '/'), 200);
      agent.destroy();
    }

    const appMeter = childCpuMeter(app);
    const appWithoutMapMeter = childCpuMeter(appWithoutMap!);
    const helloMeter = childCpuMeter(hello);
    const loop = (meter: ChildCpuMeter) => {
      const elu = meter.eventLoopUtilization();
      return elu === undefined ? '' : `server event loop ${(elu * 100).toFixed(0)} % busy`;
    };

    const busy = await machineBusyOver(1000);
    if (busy !== undefined) {
      console.log(`Machine ${(busy * 100).toFixed(0)} % busy before the runs (other processes)${busy > 0.15 ? ': figures will be noisy' : ''}`);
    }
    const results: PassWebResult[] = [];
    for (const concurrency of concurrencies) {
      const appAgent = keepAliveAgent(concurrency);
      const appWithoutMapAgent = keepAliveAgent(concurrency);
      const helloAgent = keepAliveAgent(concurrency);
      appMeter.reset();
      appWithoutMapMeter.reset();
      helloMeter.reset();
      try {
        const [appResult, helloResult, appWithoutMapResult, listResult] = await runInterleaved(
          [
            {
              label: 'GET /apple/v1/passes/… → 304',
              concurrency,
              meters: { app: appMeter, postgres: postgresMeter },
              operation: async () => {
                const pass = passRequests[Math.floor(Math.random() * passRequests.length)]!;
                await expectStatus(httpRequest(appAgent, appPort, 'GET', pass.path, pass.headers), 304);
              },
            },
            {
              label: 'hello-world Fastify GET /',
              concurrency,
              meters: { server: helloMeter },
              operation: async () => {
                await expectStatus(httpRequest(helloAgent, helloPort, 'GET', '/'), 200);
              },
            },
            {
              label: 'GET /apple/v1/passes/… → 304, APPLE_NOT_MODIFIED_MAP=false',
              concurrency,
              meters: { app: appWithoutMapMeter, postgres: postgresMeter },
              operation: async () => {
                const pass = passRequests[Math.floor(Math.random() * passRequests.length)]!;
                await expectStatus(httpRequest(appWithoutMapAgent, appWithoutMapPort, 'GET', pass.path, pass.headers), 304);
              },
            },
            {
              label: 'GET /apple/v1/devices/…/registrations/… → 204 (list serials)',
              concurrency,
              meters: { app: appMeter, postgres: postgresMeter },
              operation: async () => {
                const list = listRequests[Math.floor(Math.random() * listRequests.length)]!;
                await expectStatus(httpRequest(appAgent, appPort, 'GET', list.path), 204);
              },
            },
          ],
          { warmUpSeconds, seconds, sliceSeconds },
        );
        for (const [result, meter] of [[appResult!, appMeter], [appWithoutMapResult!, appWithoutMapMeter], [listResult!, appMeter], [helloResult!, helloMeter]] as const) {
          console.log(formatResult(result, loop(meter)));
          if (result.firstFailure) console.log(`    first failure: ${result.firstFailure}`);
        }
        results.push({
          concurrency,
          app: appResult!,
          appWithoutMap: appWithoutMapResult!,
          list: listResult!,
          hello: helloResult!,
          ratio: appResult!.perSecond / helloResult!.perSecond,
        });
      } finally {
        appAgent.destroy();
        appWithoutMapAgent.destroy();
        helloAgent.destroy();
      }
    }

    console.log(`\n304s / hello-world (target ≥ ${PASS_WEB_TARGET_RATIO * 100} %)`);
    let failed = false;
    for (const r of results) {
      if (r.app.failures || r.hello.failures || r.appWithoutMap.failures || r.list.failures) failed = true;
      console.log(
        `  c=${String(r.concurrency).padStart(2)}: ${r.app.perSecond.toFixed(0)} / ${r.hello.perSecond.toFixed(0)} requests/s = ${(r.ratio * 100).toFixed(1)} %  ` +
          `${r.ratio >= PASS_WEB_TARGET_RATIO ? 'meets target' : 'BELOW TARGET'}   ` +
          `p50 ${r.app.p50Ms.toFixed(2)} vs ${r.hello.p50Ms.toFixed(2)} ms, p99 ${r.app.p99Ms.toFixed(2)} vs ${r.hello.p99Ms.toFixed(2)} ms`,
      );
      const hello = r.hello.perSecond;
      console.log(
        `        same slices: 304 with APPLE_NOT_MODIFIED_MAP=false ${r.appWithoutMap.perSecond.toFixed(0)}/s = ${((r.appWithoutMap.perSecond / hello) * 100).toFixed(1)} % of hello-world ` +
          `(the map: ${(r.app.perSecond / r.appWithoutMap.perSecond).toFixed(2)}×); list serials → 204 ${r.list.perSecond.toFixed(0)}/s = ${((r.list.perSecond / hello) * 100).toFixed(1)} %`,
      );
      const withoutMapCpu = totalCpuMsPerOp(r.appWithoutMap);
      const listCpu = totalCpuMsPerOp(r.list);
      const appCpu = totalCpuMsPerOp(r.app);
      const helloCpu = totalCpuMsPerOp(r.hello);
      if (withoutMapCpu !== undefined && listCpu !== undefined) {
        console.log(`        CPU per request, all processes: 304 without the map ${(withoutMapCpu * 1000).toFixed(0)} µs, list serials ${(listCpu * 1000).toFixed(0)} µs`);
      }
      if (appCpu !== undefined && helloCpu !== undefined) {
        console.log(
          `        CPU per request, all processes: ${(appCpu * 1000).toFixed(0)} vs ${(helloCpu * 1000).toFixed(0)} µs ` +
            `(what the ratio tends to when the cores are the limit: ${((helloCpu / appCpu) * 100).toFixed(1)} %)`,
        );
      }
    }
    if (failed) {
      console.error('\nSome requests failed: the figures above are not valid.');
      process.exitCode = 1;
    }
    return results;
  } finally {
    await postgresMeter.close();
    await hello?.stop();
    await appWithoutMap?.stop();
    await app?.stop();
    await database.drop();
    if (cpuProfDir) console.log(`CPU profile of the app process written to ${cpuProfDir}`);
  }
}
