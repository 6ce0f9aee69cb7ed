/**
 * `bench:campaign` child process: the whole walletcards service wired as `src/server.ts` wires it
 * (PostgreSQL pool, real pass packager and signer, APNs sender, every worker on), listening on
 * 127.0.0.1 port 0, with APNs pointed at the stand-in in the devices child. What it measures about
 * itself: peak RSS (`process.resourceUsage().maxRSS`), event-loop delay (`monitorEventLoopDelay`,
 * plus a 10 ms ticker that counts stalls over 100 ms), and every pass it signs.
 *
 * Environment: BENCH_DATABASE_URL, BENCH_ADMIN_KEY, BENCH_APNS_PORT (required); CAMPAIGN_* and
 * PASS_UPDATE_DEBOUNCE_SECONDS pass through to the configuration.
 *
 * IPC: sends `ready`; on `mark` resets the event-loop and signing figures (campaign start); on
 * `stats` answers with them; on `close` shuts down like server.ts and exits.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { createApnsSender } from '../../src/wallets/apple/apns.js';
import { loadAppleCertificates } from '../../src/wallets/apple/certificates.js';
import { createPassPackager, loadDefaultImages } from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import type { PassPackager } from '../../src/wallets/apple/pass-service.js';
import { DEFAULT_PASS_IMAGES_DIR } from '../../src/wallets/apple/runtime.js';
import { getTestCertificates } from '../../test/support/test-certificates.js';

export interface ServiceStats {
  type: 'stats';
  maxRssMb: number;
  rssMb: number;
  heapUsedMb: number;
  eventLoop: { maxMs: number; p99Ms: number; meanMs: number; stallsOver100Ms: number; maxTickerGapMs: number };
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
  if (!databaseUrl || !adminKey || !apnsPort) throw new Error('BENCH_DATABASE_URL, BENCH_ADMIN_KEY and BENCH_APNS_PORT are required');
  const certs = await getTestCertificates();
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
  const app = await buildApp({ config, database, adminKey, apple: { material, packager, apns } });
  app.server.keepAliveTimeout = 65_000;
  await app.ready();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  // A 10 ms ticker: a gap well over 10 ms is the event loop blocked for that long.
  let stalls = 0;
  let maxGap = 0;
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const gap = now - last - 10;
    last = now;
    if (gap > maxGap) maxGap = gap;
    if (gap > 100) stalls++;
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
      stalls = 0;
      maxGap = 0;
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
        eventLoop: {
          maxMs: histogram.max / 1e6,
          p99Ms: histogram.percentile(99) / 1e6,
          meanMs: histogram.mean / 1e6,
          stallsOver100Ms: stalls,
          maxTickerGapMs: maxGap,
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
