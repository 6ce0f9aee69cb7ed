import type { Db } from '../../db/database.js';
import type { WalletAdapter } from '../../updates/card-changes.js';
import { classifyPushOutcome, type ApnsSender, type PushOutcome } from './apns.js';

export interface AppleAdapterLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface PushStats {
  attempted: number;
  delivered: number;
  failed: number;
  registrationsRemoved: number;
}

/**
 * Apple's side of the update path: for changed cards, one empty push per distinct push token
 * registered for them. The device then lists its changed serials and fetches the new passes
 * (Apple: "Adding a Web Service to Update Passes"). One token can hold several changed cards
 * (one device, many passes); one push makes it fetch all of them, so tokens are de-duplicated.
 */
export function createAppleUpdatesAdapter(
  db: Db,
  apns: ApnsSender,
  passTypeIdentifier: string,
  logger: AppleAdapterLogger,
  onPushed?: (stats: PushStats) => void,
): WalletAdapter {
  return {
    wallet: 'apple',
    async publish(cardIds) {
      if (cardIds.length === 0) return;
      const rows = await db
        .selectFrom('apple_registration as r')
        .innerJoin('card as c', 'c.apple_serial', 'r.serial_number')
        .select('r.push_token')
        .distinct()
        .where('r.pass_type_identifier', '=', passTypeIdentifier)
        .where('c.id', 'in', cardIds)
        .execute();
      if (rows.length === 0) return;
      const outcomes = await apns.push(
        rows.map((r) => r.push_token),
        passTypeIdentifier,
      );
      const stats = await applyOutcomes(db, passTypeIdentifier, outcomes, logger);
      onPushed?.(stats);
    },
  };
}

/** What APNs said decides what happens to the registrations (reference section 2's table). */
export async function applyOutcomes(
  db: Db,
  passTypeIdentifier: string,
  outcomes: PushOutcome[],
  logger: AppleAdapterLogger,
): Promise<PushStats> {
  const stats: PushStats = { attempted: outcomes.length, delivered: 0, failed: 0, registrationsRemoved: 0 };
  // One log line per kind of failure with a count, not one per token: a bad certificate fails a
  // whole 50,000-token batch.
  const failures = new Map<string, { count: number; example: string; status: number; reason?: string }>();
  for (const outcome of outcomes) {
    const disposition = classifyPushOutcome(outcome);
    if (disposition === 'delivered') {
      stats.delivered++;
      continue;
    }
    stats.failed++;
    const summaryKey = `${disposition}:${outcome.status}:${outcome.reason ?? ''}`;
    const summary = failures.get(summaryKey) ?? { count: 0, example: `${outcome.token.slice(0, 8)}…`, status: outcome.status, reason: outcome.reason };
    summary.count++;
    failures.set(summaryKey, summary);
    if (disposition === 'unregistered') {
      // Only registrations older than APNs' timestamp: a device that re-registered after the
      // token became invalid has a new, valid registration (the re-registration race).
      let query = db
        .deleteFrom('apple_registration')
        .where('push_token', '=', outcome.token)
        .where('pass_type_identifier', '=', passTypeIdentifier);
      if (outcome.timestamp !== undefined) query = query.where('updated_at', '<', new Date(outcome.timestamp));
      const result = await query.executeTakeFirst();
      stats.registrationsRemoved += Number(result.numDeletedRows);
    } else if (disposition === 'bad-token') {
      const result = await db
        .deleteFrom('apple_registration')
        .where('push_token', '=', outcome.token)
        .where('pass_type_identifier', '=', passTypeIdentifier)
        .executeTakeFirst();
      stats.registrationsRemoved += Number(result.numDeletedRows);
    }
  }
  for (const [key, summary] of failures) {
    const disposition = key.split(':')[0];
    const entry = { disposition, status: summary.status, reason: summary.reason, count: summary.count, exampleToken: summary.example };
    if (disposition === 'auth-error' || disposition === 'config-error') {
      // Certificate or topic problems are ours, not the devices': every registration is kept.
      logger.error(entry, 'APNs refused pushes: check the Pass Type ID certificate and topic');
    } else {
      logger.warn(entry, 'APNs pushes failed');
    }
  }
  if (stats.registrationsRemoved > 0) logger.info({ removed: stats.registrationsRemoved }, 'removed dead Apple registrations');
  return stats;
}
