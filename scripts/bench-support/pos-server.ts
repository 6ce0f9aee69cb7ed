/**
 * Benchmark child process: the whole walletcards service, wired as `src/server.ts` wires it
 * (PostgreSQL pool, pino logger, real pass packager and signer, APNs sender, background workers
 * ON), listening on 127.0.0.1 port 0. Used by `bench:pos` and section 2 of `bench:passes`.
 *
 * Differences from production, all outside the measured paths: test certificates
 * (test/support/test-certificates.ts) instead of ./certs, and APNs pointed at the local stand-in
 * (test/support/apns-stand-in.ts), which no push reaches unless a device registers.
 *
 * Environment (set by the parent):
 *   BENCH_DATABASE_URL  the migrated bench database (required)
 *   BENCH_ADMIN_KEY     instance admin key (required)
 *   BENCH_LOG_LEVEL     pino level, default `info` as in production (stdout is /dev/null)
 *   BENCH_RUN_WORKERS   `0` turns the card-changed worker off (default on)
 *   BENCH_POOL_SIZE     pg pool size (default: openDatabase's default, as server.ts)
 *   BENCH_PREPARED      `0`: PG_PREPARED_STATEMENTS=false (unnamed statements, as behind an old
 *                       PgBouncer); default the app's default (named, prepared statements)
 *
 * IPC: sends `{type:'ready', port, passTypeIdentifier}`; answers `{type:'stats'}` with the process's
 * CPU time; `{type:'profile-start'}` / `{type:'profile-stop', file}` write a CPU profile of what ran
 * in between (answered `profile-started` / `profile-stopped`); `{type:'close'}` closes like server.ts's shutdown and exits 0 (so --cpu-prof is written).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createApnsSender } from '../../src/wallets/apple/apns.js';
import { loadAppleCertificates } from '../../src/wallets/apple/certificates.js';
import { createPassPackager, loadDefaultImages } from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import { DEFAULT_PASS_IMAGES_DIR } from '../../src/wallets/apple/runtime.js';
import { startApnsStandIn } from '../../test/support/apns-stand-in.js';
import { getTestCertificates } from '../../test/support/test-certificates.js';

export type PosServerMessage =
  | { type: 'ready'; port: number; passTypeIdentifier: string }
  | { type: 'stats'; cpuMs: number; eventLoopActiveMs: number; eventLoopIdleMs: number }
  | { type: 'profile-started' }
  | { type: 'profile-stopped' };

async function main() {
  const databaseUrl = process.env.BENCH_DATABASE_URL;
  const adminKey = process.env.BENCH_ADMIN_KEY;
  if (!databaseUrl || !adminKey) throw new Error('BENCH_DATABASE_URL and BENCH_ADMIN_KEY are required');

  const certs = await getTestCertificates();
  const file = (name: string) => readFileSync(path.join(certs.dir, name), 'utf8');
  const apnsStandIn = await startApnsStandIn({
    keyPem: file('apns-server.key'),
    certPem: file('apns-server.pem'),
    caPem: file('root.pem') + file('wwdr.pem'),
    expectedTopic: certs.passTypeIdentifier,
    record: false,
  });
  const config = loadConfig({
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    PUBLIC_URL: 'https://wallet.bench.invalid',
    DATABASE_URL: databaseUrl,
    ADMIN_KEY: adminKey,
    APPLE_CERT_DIR: certs.dir,
    APNS_HOST: '127.0.0.1',
    APNS_PORT: String(apnsStandIn.port),
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
    DEMO_PROGRAM: 'false',
    // bench:import may set the import chunk size.
    ...(process.env.IMPORT_CHUNK_SIZE ? { IMPORT_CHUNK_SIZE: process.env.IMPORT_CHUNK_SIZE } : {}),
    // bench:passes measures the 304 map against the database path (APPLE_NOT_MODIFIED_MAP=false).
    ...(process.env.APPLE_NOT_MODIFIED_MAP ? { APPLE_NOT_MODIFIED_MAP: process.env.APPLE_NOT_MODIFIED_MAP } : {}),
  });
  const logger = pino({
    level: config.LOG_LEVEL,
    redact: ['req.headers.authorization', 'req.headers.cookie', '*.apple_auth_token', '*.key_hash'],
  });
  const material = loadAppleCertificates(certs.dir);
  const apns = createApnsSender({
    certPem: material.signerCertPem,
    keyPem: material.signerKeyPem,
    host: config.APNS_HOST,
    port: config.APNS_PORT,
    caPem: file('root.pem'),
    logger,
  });
  const packager = createPassPackager({ signer: new PassSigner(material), defaultImages: loadDefaultImages(DEFAULT_PASS_IMAGES_DIR) });
  const poolSize = process.env.BENCH_POOL_SIZE ? Number(process.env.BENCH_POOL_SIZE) : undefined;
  const database = openDatabase({ databaseUrl: config.DATABASE_URL, poolSize, preparedStatements: process.env.BENCH_PREPARED !== '0' });
  await migrateToLatest(database.db);

  const app = await buildApp({
    config,
    database,
    adminKey,
    apple: { material, packager, apns },
    logger,
    runWorkers: process.env.BENCH_RUN_WORKERS !== '0',
  });
  app.server.requestTimeout = 30_000;
  app.server.headersTimeout = 15_000;
  app.server.keepAliveTimeout = 65_000;
  await app.ready();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const send = (message: PosServerMessage) => process.send?.(message);
  send({ type: 'ready', port, passTypeIdentifier: material.passTypeIdentifier });

  let cpuBase = process.cpuUsage();
  let eluBase = performance.eventLoopUtilization();
  let closing = false;
  let profiler: inspector.Session | undefined;
  const close = async () => {
    if (closing) return;
    closing = true;
    try {
      await app.close();
      await apns.close();
      await apnsStandIn.close();
      await database.close();
    } finally {
      process.exit(0);
    }
  };
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'stats') {
      // CPU and event-loop use since the previous `stats` (or start).
      const cpu = process.cpuUsage(cpuBase);
      const elu = performance.eventLoopUtilization(eluBase);
      cpuBase = process.cpuUsage();
      eluBase = performance.eventLoopUtilization();
      send({ type: 'stats', cpuMs: (cpu.user + cpu.system) / 1000, eventLoopActiveMs: elu.active, eventLoopIdleMs: elu.idle });
    } else if (message?.type === 'profile-start') {
      // A CPU profile of one measured phase only (bench:pos BENCH_CPU_PROF), not of start-up and seeding.
      profiler ??= new inspector.Session();
      profiler.connect();
      profiler.post('Profiler.enable', () => profiler!.post('Profiler.start', () => send({ type: 'profile-started' })));
    } else if (message?.type === 'profile-stop') {
      const file = (message as { file?: string }).file;
      profiler?.post('Profiler.stop', (error, result) => {
        if (!error && file) writeFileSync(file, JSON.stringify(result.profile));
        profiler?.disconnect();
        send({ type: 'profile-stopped' });
      });
    } else if (message?.type === 'close') {
      void close();
    }
  });
  // Never outlive the parent.
  process.on('disconnect', () => void close());
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
