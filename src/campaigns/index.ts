/**
 * Campaigns, RFM segments and automations, wired for the composition root (`buildApp`) and for
 * processes that only run campaign workers.
 */
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';
import type { CardChangeRecorder, PublishListener } from '../updates/card-changes.js';
import { PassFetchRecorder } from '../wallets/apple/pass-fetches.js';
import type { GoogleWalletService } from '../wallets/google/service.js';
import { emitEvent } from '../webhooks/events.js';
import { AutomationService } from './automations.js';
import { CampaignService } from './service.js';

export { CampaignService, CAMPAIGN_QUEUES, DEFAULT_CAMPAIGN_SETTINGS, type CampaignSettings } from './service.js';
export { AutomationService, AUTOMATIONS_TICK_QUEUE } from './automations.js';
export { campaignRoutes } from './routes.js';
export { segmentOfCard } from './segments.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The campaign service (tests call `tick()` and read figures through it). */
    campaigns: CampaignService;
    automations: AutomationService;
  }
}

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export function createCampaignModule(deps: {
  config: Pick<Config, 'CAMPAIGN_CHUNK_SIZE' | 'CAMPAIGN_PUSH_RATE' | 'CAMPAIGN_STALL_SECONDS' | 'CAMPAIGN_FETCH_WINDOW_SECONDS'>;
  db: Db;
  jobs: JobQueue;
  cardChanges: CardChangeRecorder;
  clock: () => Date;
  wallets: readonly string[];
  passTypeIdentifier: string;
  google?: GoogleWalletService;
  logger?: Logger;
}) {
  const campaigns = new CampaignService({
    db: deps.db,
    jobs: deps.jobs,
    cardChanges: deps.cardChanges,
    clock: deps.clock,
    wallets: deps.wallets,
    passTypeIdentifier: deps.passTypeIdentifier,
    google: deps.google,
    logger: deps.logger,
    settings: {
      chunkSize: deps.config.CAMPAIGN_CHUNK_SIZE,
      pushRatePerSecond: deps.config.CAMPAIGN_PUSH_RATE,
      stallSeconds: deps.config.CAMPAIGN_STALL_SECONDS,
      fetchWindowIdleSeconds: deps.config.CAMPAIGN_FETCH_WINDOW_SECONDS,
    },
    onFinished: (trx, event) => emitEvent(trx, { programId: event.programId, type: 'campaign.finished', data: { ...event } }),
  });
  const automations = new AutomationService(deps.db, campaigns, deps.clock, deps.logger);
  const passFetches = new PassFetchRecorder(deps.db, { logger: deps.logger });
  const onPublished: PublishListener = (wallet, outcomes) => campaigns.recordOutcomes(wallet, outcomes);
  return {
    campaigns,
    automations,
    passFetches,
    onPublished,
    /** Creates the queues; with `runWorkers`, starts the campaign and automation workers and schedules. */
    async start(runWorkers: boolean) {
      await campaigns.ensureQueues();
      if (!runWorkers) return;
      await campaigns.startWorkers();
      await automations.startWorkers(deps.jobs);
    },
    async close() {
      campaigns.stopWorkers();
      await passFetches.flush();
    },
  };
}
