/**
 * A process that runs only the campaign workers against a PostgreSQL database (DATABASE_URL),
 * as a second service instance would: for the crash test, which kills it with SIGKILL in the
 * middle of a campaign and starts another one.
 *
 * Run with `node --import tsx test/support/campaign-worker-process.ts` (one process: a SIGKILL
 * reaches the worker itself). Prints `ready` on stdout once the workers are polling.
 *
 * Environment: DATABASE_URL, CAMPAIGN_CHUNK_SIZE (500), CAMPAIGN_STALL_SECONDS (2),
 * WALLETS (apple), PASS_TYPE_ID.
 */
import { openDatabase } from '../../src/db/database.js';
import { JobQueue } from '../../src/jobs/queue.js';
import { createCardChangeRecorder } from '../../src/updates/card-changes.js';
import { CampaignService } from '../../src/campaigns/service.js';
import { emitEvent } from '../../src/webhooks/events.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;

async function main() {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is required');
  const database = openDatabase({ databaseUrl, poolSize: 5 });
  const logger = {
    info() {},
    warn(obj: object, msg?: string) {
      process.stderr.write(`warn: ${msg ?? ''} ${JSON.stringify(obj)}\n`);
    },
    error(obj: object, msg?: string) {
      process.stderr.write(`error: ${msg ?? ''} ${JSON.stringify(obj, Object.getOwnPropertyNames(obj))}\n`);
    },
  };
  const jobs = new JobQueue(database.db, { pollingIntervalSeconds: 0.5, logger });
  const wallets = env('WALLETS', 'apple').split(',');
  const cardChanges = createCardChangeRecorder(jobs, { debounceSeconds: 0, wallets });
  const campaigns = new CampaignService({
    db: database.db,
    jobs,
    cardChanges,
    clock: () => new Date(),
    wallets,
    passTypeIdentifier: env('PASS_TYPE_ID', 'pass.test.walletcards'),
    logger,
    settings: {
      chunkSize: Number(env('CAMPAIGN_CHUNK_SIZE', '500')),
      pushRatePerSecond: 100_000,
      stallSeconds: Number(env('CAMPAIGN_STALL_SECONDS', '2')),
      // No process runs the wallet workers in the crash test: their queue only grows.
      maxUpdateBacklog: 0,
      backpressureWallets: ['apple'],
      // Nor does any device fetch: no fetch window.
      fetchWindowIdleSeconds: 0,
    },
    onFinished: (trx, event) => emitEvent(trx, { programId: event.programId, type: 'campaign.finished', data: { ...event } }),
  });
  await jobs.start();
  await campaigns.startWorkers({ watchdogSeconds: 1 });
  process.stdout.write('ready\n');
  const stop = async () => {
    campaigns.stopWorkers();
    await jobs.stop();
    await database.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
