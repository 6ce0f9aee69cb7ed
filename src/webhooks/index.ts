import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';
import { createWebhookDelivery, DEFAULT_WEBHOOK_SETTINGS, type WebhookSettings } from './delivery.js';
import { onEmitFailure } from './events.js';
import { urlPolicyFor, type UrlPolicy } from './url-policy.js';

export { emitEvent, WEBHOOK_EVENT_TYPES, type WebhookEventType, type WebhookEventData } from './events.js';
export { webhookRoutes } from './routes.js';
export type { WebhookSettings } from './delivery.js';

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The webhooks module as the composition root wires it: URL policy, delivery worker, emit-failure logging. */
export function createWebhooks(deps: {
  config: Config;
  db: Db;
  jobs: JobQueue;
  logger: Logger;
  registry?: Registry;
  /** Shorter retry delays and disable span for tests (deps only, not configuration). */
  overrides?: Partial<WebhookSettings>;
}) {
  const policy: UrlPolicy = urlPolicyFor(deps.config);
  const settings: WebhookSettings = { ...DEFAULT_WEBHOOK_SETTINGS, ...deps.overrides };
  const delivery = createWebhookDelivery({ db: deps.db, jobs: deps.jobs, settings, policy, logger: deps.logger, registry: deps.registry });
  let unsubscribe: (() => void) | undefined;
  return {
    policy,
    settings,
    async start(runWorker: boolean) {
      unsubscribe = onEmitFailure((error, event) =>
        deps.logger.error({ err: error, programId: event.programId, type: event.type }, 'webhook event not emitted (the change itself went ahead)'),
      );
      await delivery.start(runWorker);
    },
    close() {
      unsubscribe?.();
      delivery.close();
    },
  };
}
