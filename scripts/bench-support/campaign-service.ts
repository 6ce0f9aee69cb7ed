/**
 * `bench:campaign` child process: the whole walletcards service wired as `src/server.ts` wires it
 * (PostgreSQL pool, real pass packager and signer, APNs sender, every worker on), listening on
 * 127.0.0.1 port 0, with APNs pointed at the stand-in in the devices child. What it measures about
 * itself: peak RSS (`process.resourceUsage().maxRSS`), event-loop delay (`monitorEventLoopDelay`,
 * plus a 10 ms ticker that counts stalls over 100 ms), and every pass it signs.
 *
 * Environment: BENCH_DATABASE_URL, BENCH_ADMIN_KEY, BENCH_APNS_PORT, BENCH_CERT_DIR (the chain the
 * stand-in trusts; required); CAMPAIGN_* and
 * PASS_UPDATE_DEBOUNCE_SECONDS pass through to the configuration; BENCH_LOG_LEVEL (e.g. warn) logs to stderr.
 *
 * IPC: sends `ready`; on `mark` resets the event-loop and signing figures (campaign start); on
 * `stats` answers with them; on `close` shuts down like server.ts and exits.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pino from 'pino';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { createApnsSender } from '../../src/wallets/apple/apns.js';
import { loadAppleCertificates } from '../../src/wallets/apple/certificates.js';
import { createPassPackager, loadDefaultImages } from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import type { PassPackager } from '../../src/wallets/apple/pass-service.js';
import { DEFAULT_PASS_IMAGES_DIR } from '../../src/wallets/apple/runtime.js';

export interface ServiceStats {
  type: 'stats';
  maxRssMb: number;
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  eventLoop: {
    maxMs: number;
    p99Ms: number;
    meanMs: number;
    /** Gaps of the 10 ms ticker over 100 ms, and those left over 100 ms once the main thread's wait for a CPU is taken out. */
    stallsOver100Ms: number;
    blockedOver100Ms: number;
    maxTickerGapMs: number;
    maxBlockedMs: number;
  };
  signed: number;
  signFirstAt: number | null;
  signLastAt: number | null;
  cpuMs: number;
}

export type CampaignServiceMessage = { type: 'ready'; port: number; passTypeIdentifier: string } | { type: 'marked' } | ServiceStats;

async function main() {
  const databaseUrl = process.env.BENCH_DATABASE_URL;
  const adminKey = process.env.BENCH_ADMIN_KEY;
  const apnsPort = process.env.BENCH_APNS_PORT;
  const certDir = process.env.BENCH_CERT_DIR;
  if (!databaseUrl || !adminKey || !apnsPort || !certDir) throw new Error('BENCH_DATABASE_URL, BENCH_ADMIN_KEY, BENCH_APNS_PORT and BENCH_CERT_DIR are required');
  const certs = { dir: certDir };
  const file = (name: string) => readFileSync(path.join(certs.dir, name), 'utf8');
  const passthrough = Object.fromEntries(
    Object.entries(process.env).filter(([key, value]) => value !== undefined && /^(CAMPAIGN_|PASS_UPDATE_DEBOUNCE_SECONDS$)/.test(key)),
  ) as Record<string, string>;
  const config = loadConfig({
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    PUBLIC_URL: 'https://wallet.bench.invalid',
    DATABASE_URL: databaseUrl,
    ADMIN_KEY: adminKey,
    APPLE_CERT_DIR: certs.dir,
    APNS_HOST: '127.0.0.1',
    APNS_PORT: apnsPort,
    LOG_LEVEL: 'silent',
    DEMO_PROGRAM: 'false',
    ...passthrough,
  });
  const material = loadAppleCertificates(certs.dir);
  const apns = createApnsSender({
    certPem: material.signerCertPem,
    keyPem: material.signerKeyPem,
    host: config.APNS_HOST,
    port: config.APNS_PORT,
    caPem: file('root.pem'),
    logger: process.env.BENCH_LOG_LEVEL ? pino({ level: process.env.BENCH_LOG_LEVEL }, pino.destination(2)) : undefined,
  });

  // Every signed pass is counted (the rate devices' re-fetches are served at).
  let signed = 0;
  let signFirstAt: number | null = null;
  let signLastAt: number | null = null;
  const inner = createPassPackager({ signer: new PassSigner(material), defaultImages: loadDefaultImages(DEFAULT_PASS_IMAGES_DIR) });
  const packager: PassPackager = {
    async build(input, signingTime) {
      const pass = await inner.build(input, signingTime);
      signed++;
      signLastAt = Date.now();
      signFirstAt ??= signLastAt;
      return pass;
    },
  };

  const database = openDatabase({ databaseUrl: config.DATABASE_URL });
  // BENCH_LOG_LEVEL=warn shows the service's warnings on stderr (default: no logs).
  const logger = process.env.BENCH_LOG_LEVEL ? pino({ level: process.env.BENCH_LOG_LEVEL }, pino.destination(2)) : undefined;
  const app = await buildApp({ config, database, adminKey, apple: { material, packager, apns }, logger });
  app.server.keepAliveTimeout = 65_000;
  await app.ready();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  // A 10 ms ticker: a gap well over 10 ms is the event loop held up for that long, either by our
  // own code (blocked) or because the main thread waited for a CPU (other processes on a busy
  // machine). Linux reports the thread's run-queue wait in /proc/self/task/<pid>/schedstat (ns).
  const schedstat = `/proc/self/task/${process.pid}/schedstat`;
  const runQueueWaitNs = () => {
    try {
      return Number(readFileSync(schedstat, 'utf8').split(' ')[1]);
    } catch {
      return Number.NaN;
    }
  };
  let stalls = 0;
  let blockedStalls = 0;
  let maxGap = 0;
  let maxBlocked = 0;
  let last = performance.now();
  let lastWait = runQueueWaitNs();
  setInterval(() => {
    const now = performance.now();
    const gap = now - last - 10;
    last = now;
    const wait = runQueueWaitNs();
    const waitedMs = (wait - lastWait) / 1e6;
    lastWait = wait;
    const blocked = Number.isNaN(waitedMs) ? gap : gap - waitedMs;
    if (gap > maxGap) maxGap = gap;
    if (blocked > maxBlocked) maxBlocked = blocked;
    if (gap > 100) stalls++;
    if (blocked > 100) blockedStalls++;
  }, 10).unref();
  let cpuBase = process.cpuUsage();

  const send = (message: CampaignServiceMessage) => process.send?.(message);
  send({ type: 'ready', port, passTypeIdentifier: material.passTypeIdentifier });

  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    try {
      await app.close();
      await apns.close();
      await database.close();
    } finally {
      process.exit(0);
    }
  };
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'mark') {
      histogram.reset();
      stalls = blockedStalls = 0;
      maxGap = maxBlocked = 0;
      signed = 0;
      signFirstAt = signLastAt = null;
      cpuBase = process.cpuUsage();
      send({ type: 'marked' });
    } else if (message?.type === 'stats') {
      const memory = process.memoryUsage();
      const cpu = process.cpuUsage(cpuBase);
      send({
        type: 'stats',
        maxRssMb: process.resourceUsage().maxRSS / 1024,
        rssMb: memory.rss / 1024 / 1024,
        heapUsedMb: memory.heapUsed / 1024 / 1024,
        heapTotalMb: memory.heapTotal / 1024 / 1024,
        externalMb: memory.external / 1024 / 1024,
        eventLoop: {
          maxMs: histogram.max / 1e6,
          p99Ms: histogram.percentile(99) / 1e6,
          meanMs: histogram.mean / 1e6,
          stallsOver100Ms: stalls,
          blockedOver100Ms: blockedStalls,
          maxTickerGapMs: maxGap,
          maxBlockedMs: maxBlocked,
        },
        signed,
        signFirstAt,
        signLastAt,
        cpuMs: (cpu.user + cpu.system) / 1000,
      });
    } else if (message?.type === 'close') {
      void close();
    }
  });
  process.on('disconnect', () => void close());
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
