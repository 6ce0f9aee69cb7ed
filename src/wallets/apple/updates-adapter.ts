import type { Db } from '../../db/database.js';
import type { PublishOutcome, WalletAdapter } from '../../updates/card-changes.js';
import { recordWalletEvent } from '../../enrollment/funnel.js';
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
      if (cardIds.length === 0) return [];
      // The cards' passes, and the voided passes of taken-over cards until their devices fetched
      // them (retired_apple_pass; enrollment/takeover.ts).
      const serials = db
        .selectFrom('card')
        .select(['id as card_id', 'apple_serial as serial'])
        .where('id', 'in', cardIds)
        .unionAll(
          db.selectFrom('retired_apple_pass').select(['card_id', 'serial_number as serial']).where('card_id', 'in', cardIds).where('fetched_at', 'is', null),
        );
      const rows = await db
        .selectFrom('apple_registration as r')
        .innerJoin(serials.as('s'), 's.serial', 'r.serial_number')
        .select(['s.card_id', 'r.push_token'])
        .where('r.pass_type_identifier', '=', passTypeIdentifier)
        .execute();
      const perCard = new Map<string, PublishOutcome>(cardIds.map((cardId) => [cardId, { cardId, pushesAccepted: 0, pushesFailed: 0 }]));
      if (rows.length === 0) return [...perCard.values()];
      // apns.push de-duplicates: one push per distinct token, however many changed cards it holds.
      const outcomes = await apns.push(
        rows.map((r) => r.push_token),
        passTypeIdentifier,
      );
      const stats = await applyOutcomes(db, passTypeIdentifier, outcomes, logger);
      onPushed?.(stats);
      // Each card is credited with the pushes to its own devices (a shared token counts for each).
      const delivered = new Map(outcomes.map((o) => [o.token, classifyPushOutcome(o) === 'delivered']));
      for (const row of rows) {
        const outcome = perCard.get(row.card_id)!;
        if (delivered.get(row.push_token)) outcome.pushesAccepted! += 1;
        else outcome.pushesFailed! += 1;
      }
      return [...perCard.values()];
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
  const touchedSerials = new Set<string>();
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
      const removed = await query.returning('serial_number').execute();
      stats.registrationsRemoved += removed.length;
      for (const row of removed) touchedSerials.add(row.serial_number);
    } else if (disposition === 'bad-token') {
      const removed = await db
        .deleteFrom('apple_registration')
        .where('push_token', '=', outcome.token)
        .where('pass_type_identifier', '=', passTypeIdentifier)
        .returning('serial_number')
        .execute();
      stats.registrationsRemoved += removed.length;
      for (const row of removed) touchedSerials.add(row.serial_number);
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
  // A pass whose last device APNs declared dead is no longer installed anywhere: the install
  // funnel counts that as a removal, like a device unregistering itself.
  for (const serial of touchedSerials) {
    const card = await db.selectFrom('card').select(['id', 'program_id']).where('apple_serial', '=', serial).executeTakeFirst();
    const left = await db.selectFrom('apple_registration').select('serial_number').where('serial_number', '=', serial).limit(1).executeTakeFirst();
    if (card && !left) await recordWalletEvent(db, { programId: card.program_id, cardId: card.id, wallet: 'apple', kind: 'removed' });
  }
  if (stats.registrationsRemoved > 0) logger.info({ removed: stats.registrationsRemoved }, 'removed dead Apple registrations');
  return stats;
}
