import type { Db } from '../db/database.js';
import { pruneIdempotencyRecords } from '../http/idempotency.js';
import type { JobQueue } from './queue.js';
import { runScheduled } from './scheduled.js';

/**
 * Retention: a pg-boss schedule (`retention-prune`, every hour at minute 17; pg-boss keeps one
 * schedule per name, so several processes still prune once) removes what must not be kept forever:
 *
 * - Idempotency-Key records older than IDEMPOTENCY_RETENTION_DAYS (default 30): a till retries
 *   within minutes, not months; after that the key may be reused (and a receiptId still guards
 *   against a resent check).
 * - one-time code records older than a week (the send limits look back 24 hours at most);
 * - voided Apple passes of taken-over cards 30 days after the takeover, with their devices'
 *   registrations (devices that were offline that long fetch a 401 and keep the voided pass).
 * - the device registrations (push tokens) of erased cards 30 days after the erasure: until then a
 *   device that was offline can still learn that the pass changed and fetch it voided (privacy/erasure.ts).
 */
export const RETENTION_QUEUE = 'retention-prune';
export const RETENTION_SCHEDULE = '17 * * * *';

const DAY_MS = 86_400_000;
const VERIFICATION_KEEP_DAYS = 7;
const RETIRED_PASS_KEEP_DAYS = 30;

export interface RetentionSettings {
  idempotencyDays: number;
}

export interface PruneReport {
  idempotencyRecords: number;
  phoneVerifications: number;
  retiredPasses: number;
}

export async function pruneExpiredData(db: Db, now: Date, settings: RetentionSettings): Promise<PruneReport> {
  const idempotencyRecords = await pruneIdempotencyRecords(db, new Date(now.getTime() - settings.idempotencyDays * DAY_MS));
  const verifications = await db
    .deleteFrom('phone_verification')
    .where('created_at', '<', new Date(now.getTime() - VERIFICATION_KEEP_DAYS * DAY_MS))
    .executeTakeFirst();
  const retiredBefore = new Date(now.getTime() - RETIRED_PASS_KEEP_DAYS * DAY_MS);
  const retired = await db.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('apple_registration')
      .where('serial_number', 'in', trx.selectFrom('retired_apple_pass').select('serial_number').where('retired_at', '<', retiredBefore))
      .execute();
    return trx.deleteFrom('retired_apple_pass').where('retired_at', '<', retiredBefore).executeTakeFirst();
  });
  await db.deleteFrom('retired_google_object').where('expired_at', '<', retiredBefore).execute();
  await db
    .deleteFrom('apple_registration')
    .where('serial_number', 'in', db.selectFrom('card').select('apple_serial').where('status', '=', 'erased').where('erased_at', '<', retiredBefore))
    .execute();
  return {
    idempotencyRecords,
    phoneVerifications: Number(verifications.numDeletedRows ?? 0),
    retiredPasses: Number(retired.numDeletedRows ?? 0),
  };
}

/** Creates the queue and, with workers, the worker and the hourly schedule. */
export async function startRetention(
  jobs: JobQueue,
  db: Db,
  options: { settings: RetentionSettings; runWorkers: boolean; logger: { info(obj: object, msg?: string): void } },
) {
  await jobs.ensureQueue(RETENTION_QUEUE, { retryLimit: 2, retryDelay: 60, expireInSeconds: 900 });
  if (!options.runWorkers) return;
  await jobs.work(RETENTION_QUEUE, { batchSize: 1 }, async () => {
    // Once per tick across all workers, never overlapping a slow run elsewhere (jobs/scheduled.ts).
    await runScheduled(db, RETENTION_QUEUE, { leaseSeconds: 900, minIntervalSeconds: 1800 }, async () => {
      // Wall-clock age: the rows' timestamps come from the database's clock, not the app's.
      const report = await pruneExpiredData(db, new Date(), options.settings);
      if (report.idempotencyRecords + report.phoneVerifications + report.retiredPasses > 0) options.logger.info({ ...report }, 'retention: old records pruned');
    });
  });
  await jobs.boss.schedule(RETENTION_QUEUE, RETENTION_SCHEDULE);
}
