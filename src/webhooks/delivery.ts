import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { sql } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Db, Executor } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';
import { WEBHOOK_DELIVERY_QUEUE, type WebhookDeliveryJob } from './events.js';
import { signatureHeaders } from './signing.js';
import { addressAllowed, bareHost, guardedLookup, RefusedAddressError, type UrlPolicy } from './url-policy.js';

/**
 * Webhook delivery: a pg-boss queue with one job per attempt of a delivery (one delivery per event
 * per endpoint). Each attempt POSTs the signed event; the outcome is written to the delivery log
 * and, on failure, the next attempt is scheduled in the same transaction (our own backoff
 * schedule, so `next_attempt_at` is exact). An endpoint that keeps failing is disabled.
 */

export interface WebhookSettings {
  /** Seconds before the 2nd, 3rd, … attempt; a delivery gets `length + 1` attempts. */
  retryDelaysSeconds: number[];
  /** An endpoint failing for this long without one successful delivery is disabled. */
  disableAfterSeconds: number;
  /** Deadline of one attempt: connect, response and body. */
  timeoutMs: number;
  /** Deliveries attempted in parallel per poll. */
  batchSize: number;
  /** Settled events (and their delivery log) older than this are deleted by a daily job. */
  logRetentionDays: number;
}

/**
 * 8 attempts spread over 24 h 11 min: immediately, then after 10 s, 1 min, 10 min, 1 h, 3 h, 6 h
 * and 14 h. An endpoint down for a day has failed every attempt for 24 h: it is disabled.
 */
export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  retryDelaysSeconds: [10, 60, 600, 3600, 3 * 3600, 6 * 3600, 14 * 3600],
  disableAfterSeconds: 24 * 3600,
  timeoutMs: 10_000,
  batchSize: 16,
  logRetentionDays: 30,
};

export const WEBHOOK_PRUNE_QUEUE = 'webhook-log-prune';

/**
 * Deletes events older than `days` with no delivery still pending (their deliveries go with them),
 * in chunks so one run never holds a huge transaction. Returns the number of events deleted.
 */
export async function pruneWebhookLog(db: Db, days: number, chunk = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await db
      .deleteFrom('webhook_event')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('webhook_event as ev')
          .select('ev.id')
          .where('ev.created_at', '<', sql<Date>`now() - make_interval(days => ${days})`)
          .where((w) => w.not(w.exists(w.selectFrom('webhook_delivery as d').select('d.id').whereRef('d.event_id', '=', 'ev.id').where('d.status', '=', 'pending'))))
          .limit(chunk),
      )
      .executeTakeFirst();
    const n = Number(deleted.numDeletedRows);
    total += n;
    if (n < chunk) return total;
  }
}

/** Seconds until the next attempt after `attemptsMade` failed attempts, or null: give up. */
export function nextRetryDelay(attemptsMade: number, settings: Pick<WebhookSettings, 'retryDelaysSeconds'>): number | null {
  return settings.retryDelaysSeconds[attemptsMade - 1] ?? null;
}

export interface AttemptResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
}

const MAX_ERROR_LENGTH = 500;
const USER_AGENT = 'walletcards-webhooks/1';

/**
 * POSTs one body to one URL. Never follows redirects (a 3xx is a failure), refuses addresses
 * outside the policy at connect time, and gives up after `timeoutMs`.
 */
export function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: { timeoutMs: number; policy: UrlPolicy; agents?: { http: http.Agent; https: https.Agent } },
): Promise<AttemptResult> {
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, error: result.error?.slice(0, MAX_ERROR_LENGTH) ?? null });
    };
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return resolve({ ok: false, statusCode: null, error: 'invalid URL' });
    }
    const host = bareHost(target.hostname);
    if (isIP(host) && !addressAllowed(host, options.policy)) {
      return resolve({ ok: false, statusCode: null, error: new RefusedAddressError(host).message });
    }
    const secure = target.protocol === 'https:';
    let request: http.ClientRequest;
    try {
      request = (secure ? https : http).request(target, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': USER_AGENT },
        lookup: guardedLookup(options.policy),
        agent: options.agents ? (secure ? options.agents.https : options.agents.http) : undefined,
      });
    } catch (error) {
      return resolve({ ok: false, statusCode: null, error: String((error as Error).message ?? error).slice(0, MAX_ERROR_LENGTH) });
    }
    timer = setTimeout(() => {
      request.destroy(new Error(`timed out after ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      // The body is not used; read it to the end so the connection can be reused (the timer still
      // bounds an endless one).
      response.resume();
      response.on('end', () => {
        if (status >= 200 && status < 300) return finish({ ok: true, statusCode: status, error: null });
        const location = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
        finish({ ok: false, statusCode: status, error: `HTTP ${status}${location}` });
      });
      response.on('error', (error) => finish({ ok: false, statusCode: status, error: error.message }));
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      finish({ ok: false, statusCode: null, error: error.code && !error.message.includes(error.code) ? `${error.code}: ${error.message}` : error.message });
    });
    request.end(body);
  });
}

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WebhookDeliveryDeps {
  db: Db;
  jobs: JobQueue;
  settings: WebhookSettings;
  policy: UrlPolicy;
  logger: Logger;
  registry?: Registry;
}

/** The delivery queue and its worker. */
export function createWebhookDelivery(deps: WebhookDeliveryDeps) {
  const { db, jobs, settings, policy, logger } = deps;
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 8 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 8 }),
  };
  const attempts = new Counter({
    name: 'webhook_delivery_attempts_total',
    help: 'Webhook delivery attempts by outcome',
    labelNames: ['outcome'],
    registers: deps.registry ? [deps.registry] : [],
  });

  async function attempt(job: WebhookDeliveryJob) {
    const row = await db
      .selectFrom('webhook_delivery as d')
      .innerJoin('webhook_endpoint as e', 'e.id', 'd.endpoint_id')
      .innerJoin('webhook_event as ev', 'ev.id', 'd.event_id')
      .select([
        'd.id',
        'd.status',
        'd.attempts',
        'e.id as endpointId',
        'e.url',
        'e.secret',
        'e.enabled',
        'ev.id as eventId',
        'ev.type',
        'ev.program_id as programId',
        'ev.created_at as createdAt',
        // The payload's own text, so every attempt signs and sends the same bytes.
        sql<string>`ev.data::text`.as('dataText'),
      ])
      .where('d.id', '=', job.deliveryId)
      .executeTakeFirst();
    // Gone with its endpoint, already settled, or a duplicate of an attempt that already ran.
    if (!row || row.status !== 'pending' || row.attempts !== job.attempt - 1) return;
    if (!row.enabled) {
      await db
        .updateTable('webhook_delivery')
        .set({ status: 'failed', next_attempt_at: null, last_error: sql<string>`coalesce(last_error || '; ', '') || 'endpoint disabled'` })
        .where('id', '=', row.id)
        .where('status', '=', 'pending')
        .execute();
      return;
    }

    const body =
      `{"id":${JSON.stringify(row.eventId)},"type":${JSON.stringify(row.type)},"createdAt":${JSON.stringify(new Date(row.createdAt).toISOString())},` +
      `"programId":${JSON.stringify(row.programId)},"data":${row.dataText}}`;
    const result = await postWebhook(row.url, signatureHeaders(row.secret, row.eventId, body), body, { timeoutMs: settings.timeoutMs, policy, agents });
    attempts.inc({ outcome: result.ok ? 'success' : 'failure' });
    if (!result.ok) {
      logger.warn({ webhookId: row.endpointId, deliveryId: row.id, attempt: job.attempt, statusCode: result.statusCode, error: result.error }, 'webhook delivery attempt failed');
    }
    await record(job, row.endpointId, result);
  }

  /** Writes the attempt's outcome, the endpoint's health and the next attempt, in one transaction. */
  async function record(job: WebhookDeliveryJob, endpointId: string, result: AttemptResult) {
    await db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('webhook_delivery').select(['status', 'attempts']).where('id', '=', job.deliveryId).forUpdate().executeTakeFirst();
      if (!current || current.status !== 'pending' || current.attempts !== job.attempt - 1) return;
      const outcome = {
        attempts: job.attempt,
        last_status_code: result.statusCode,
        last_error: result.error,
        last_attempt_at: sql<Date>`now()`,
      };
      if (result.ok) {
        await trx
          .updateTable('webhook_delivery')
          .set({ ...outcome, status: 'delivered', next_attempt_at: null, delivered_at: sql<Date>`now()` })
          .where('id', '=', job.deliveryId)
          .execute();
        await trx
          .updateTable('webhook_endpoint')
          .set({ failing_since: null, consecutive_failures: 0, last_success_at: sql<Date>`now()` })
          .where('id', '=', endpointId)
          .execute();
        return;
      }

      const endpoint = await trx
        .updateTable('webhook_endpoint')
        .set({
          consecutive_failures: sql<number>`consecutive_failures + 1`,
          failing_since: sql<Date>`coalesce(failing_since, now())`,
        })
        .where('id', '=', endpointId)
        .returning([
          'enabled',
          'failing_since',
          'consecutive_failures',
          sql<boolean>`failing_since <= now() - make_interval(secs => ${settings.disableAfterSeconds})`.as('overdue'),
        ])
        .executeTakeFirst();
      if (endpoint?.enabled && endpoint.overdue) {
        // Failing without a single success for the whole span: disable, and settle what waits.
        await trx
          .updateTable('webhook_endpoint')
          .set({
            enabled: false,
            disabled_at: sql<Date>`now()`,
            disabled_reason: `every delivery attempt failed since ${endpoint.failing_since!.toISOString()} (${endpoint.consecutive_failures} attempts; last: ${result.error})`.slice(0, MAX_ERROR_LENGTH),
            updated_at: sql<Date>`now()`,
          })
          .where('id', '=', endpointId)
          .execute();
        await trx.updateTable('webhook_delivery').set({ ...outcome, status: 'failed', next_attempt_at: null }).where('id', '=', job.deliveryId).execute();
        await cancelPendingDeliveries(trx, endpointId);
        logger.error({ webhookId: endpointId, failingSince: endpoint.failing_since, attempts: endpoint.consecutive_failures }, 'webhook endpoint disabled after repeated failure');
        return;
      }
      const delay = nextRetryDelay(job.attempt, settings);
      if (delay === null) {
        await trx.updateTable('webhook_delivery').set({ ...outcome, status: 'failed', next_attempt_at: null }).where('id', '=', job.deliveryId).execute();
        return;
      }
      await trx
        .updateTable('webhook_delivery')
        .set({ ...outcome, next_attempt_at: sql<Date>`now() + make_interval(secs => ${delay})` })
        .where('id', '=', job.deliveryId)
        .execute();
      await jobs.send(trx, WEBHOOK_DELIVERY_QUEUE, { deliveryId: job.deliveryId, attempt: job.attempt + 1 } satisfies WebhookDeliveryJob, {
        startAfter: delay,
      });
    });
  }

  return {
    /** Creates the queue (always: events are enqueued even where no worker runs) and, if asked, the worker. */
    async start(runWorker: boolean) {
      await jobs.ensureQueue(WEBHOOK_DELIVERY_QUEUE, {
        policy: 'standard',
        // These retries only cover a crash or a database error while recording an attempt; HTTP
        // failures are retried by our own schedule (attempts are idempotent by number).
        retryLimit: 5,
        retryDelay: 30,
        retryBackoff: true,
        expireInSeconds: 120,
      });
      if (!runWorker) return;
      await jobs.ensureQueue(WEBHOOK_PRUNE_QUEUE, { policy: 'singleton', retryLimit: 2, expireInSeconds: 900 });
      await jobs.boss.schedule(WEBHOOK_PRUNE_QUEUE, '23 3 * * *');
      await jobs.work(WEBHOOK_PRUNE_QUEUE, {}, async () => {
        const deleted = await pruneWebhookLog(db, settings.logRetentionDays);
        if (deleted > 0) logger.info({ deleted, days: settings.logRetentionDays }, 'webhook events pruned');
      });
      await jobs.work<WebhookDeliveryJob>(WEBHOOK_DELIVERY_QUEUE, { batchSize: settings.batchSize }, async (batch) => {
        const outcomes = await Promise.allSettled(batch.map((job) => attempt(job.data)));
        const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed.length > 0) {
          // The batch is retried by pg-boss; attempts already recorded are skipped then.
          logger.error({ err: failed[0].reason, failed: failed.length }, 'webhook delivery could not be recorded; it will be retried');
          throw failed[0].reason;
        }
      });
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/** Settles an endpoint's waiting deliveries when it is disabled (by failure or by PATCH). */
export async function cancelPendingDeliveries(executor: Executor, endpointId: string) {
  await executor
    .updateTable('webhook_delivery')
    .set({ status: 'failed', next_attempt_at: null, last_error: sql<string>`coalesce(last_error || '; ', '') || 'endpoint disabled'` })
    .where('endpoint_id', '=', endpointId)
    .where('status', '=', 'pending')
    .execute();
}
