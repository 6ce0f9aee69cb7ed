import type { Db } from '../../db/database.js';
import type { PublishOutcome, WalletAdapter } from '../../updates/card-changes.js';
import {
  DEFAULT_DELIVERY_RETRY_POLICY,
  deferDeliveries,
  markWanted,
  settleDeliveries,
  type DeliveryRetryPolicy,
  type Settlement,
} from '../../updates/pending-deliveries.js';
import { recordWalletEvent } from '../../enrollment/funnel.js';
import { notifyApplePassesChanged } from './not-modified-map.js';
import { classifyPushOutcome, isRetryablePushOutcome, type ApnsSender, type PushOutcome } from './apns.js';

export interface AppleAdapterLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface PushStats {
  attempted: number;
  delivered: number;
  /** Retryable failures (429/5xx/timeout/reset/connection): kept pending for a retry. */
  deferred: number;
  /** Final failures: dead tokens (registrations removed), certificate, topic or request errors. */
  failed: number;
  registrationsRemoved: number;
  /** Final failures by disposition (unregistered, bad-token, auth-error, config-error, client-error). */
  failedBy: Record<string, number>;
}

export interface AppleUpdatesAdapterOptions {
  /** Backoff of pending pushes (default DEFAULT_DELIVERY_RETRY_POLICY). */
  retryPolicy?: DeliveryRetryPolicy;
  /** Called after every push round; `retry` tells a retry round from a change's first push. */
  onPushed?: (stats: PushStats, retry: boolean) => void;
}

/**
 * Apple's side of the update path: for changed cards, one empty push per distinct push token
 * registered for them. The device then lists its changed serials and fetches the new passes
 * (Apple: "Adding a Web Service to Update Passes"). One token can hold several changed cards
 * (one device, many passes); one push makes it fetch all of them, so tokens are de-duplicated.
 *
 * Through outages (issue #11): a push that fails in a way a later attempt can fix (reference
 * section 2: 429 "back off", 500/503 "retry with exponential backoff", IdleTimeout, and every
 * transport failure) is kept pending per token in `wallet_delivery_pending` before the job
 * completes, and the retry worker pushes it again with backoff until APNs accepts it or declares the
 * token dead (410 / BadDeviceToken: registrations removed). A token that is pending is left to the
 * retry worker (it will push once, after the latest change); a retry pushes only pending tokens, so
 * a token APNs already accepted is never pushed again for the same change.
 */
export function createAppleUpdatesAdapter(
  db: Db,
  apns: ApnsSender,
  passTypeIdentifier: string,
  logger: AppleAdapterLogger,
  options: AppleUpdatesAdapterOptions = {},
): WalletAdapter {
  const policy = options.retryPolicy ?? DEFAULT_DELIVERY_RETRY_POLICY;
  return {
    wallet: 'apple',
    async publish(cardIds) {
      if (cardIds.length === 0) return [];
      // Every process's 304 map forgets these passes before any device is told to fetch them
      // (issue #14; one statement, in its own transaction). If it fails, the job fails and is retried:
      // no push leaves before the maps were told.
      await notifyApplePassesChanged(db, cardIds);
      // The cards' passes, and the voided passes of taken-over cards until their devices fetched
      // them (retired_apple_pass; enrollment/takeover.ts).
      const serials = db
        .selectFrom('card')
        .select(['id as card_id', 'apple_serial as serial'])
        .where('id', 'in', cardIds)
        .unionAll(
          db.selectFrom('retired_apple_pass').select(['card_id', 'serial_number as serial']).where('card_id', 'in', cardIds).where('fetched_at', 'is', null),
        );
      // The pending row of each token comes with its registration: while nothing is pending this is
      // the same one statement as before, plus a join that finds no row.
      const rows = await db
        .selectFrom('apple_registration as r')
        .innerJoin(serials.as('s'), 's.serial', 'r.serial_number')
        .leftJoin('wallet_delivery_pending as p', (join) => join.on('p.wallet', '=', 'apple').onRef('p.target', '=', 'r.push_token'))
        .select(['s.card_id', 'r.push_token', 'p.target as pending'])
        .where('r.pass_type_identifier', '=', passTypeIdentifier)
        .execute();
      const perCard = new Map<string, PublishOutcome>(
        cardIds.map((cardId) => [cardId, { cardId, pushesAccepted: 0, pushesFailed: 0, pushesPending: 0 }]),
      );
      if (rows.length === 0) return [...perCard.values()];
      const seenPending = [...new Set(rows.filter((r) => r.pending !== null).map((r) => r.push_token))];
      // Pending tokens get their push from the retry worker, after this change. One whose row a retry
      // cleared meanwhile is pushed here: that retry may have gone out before this change.
      const leftToRetry = await markWanted(db, 'apple', seenPending);
      const tokens = [...new Set(rows.map((r) => r.push_token))].filter((token) => !leftToRetry.has(token));
      const outcomes = tokens.length > 0 ? await apns.push(tokens, passTypeIdentifier) : [];
      const stats = await applyOutcomes(db, passTypeIdentifier, outcomes, logger);
      await deferDeliveries(
        db,
        'apple',
        outcomes.filter(isRetryablePushOutcome).map((o) => ({ target: o.token, status: o.status, reason: o.reason, retryAfterMs: o.retryAfterMs })),
        policy,
      );
      options.onPushed?.(stats, false);
      // Each card is credited with the pushes to its own devices (a shared token counts for each).
      const byToken = new Map(outcomes.map((o) => [o.token, o]));
      for (const row of rows) {
        const outcome = perCard.get(row.card_id)!;
        const pushed = byToken.get(row.push_token);
        if (!pushed || isRetryablePushOutcome(pushed)) outcome.pushesPending! += 1;
        else if (classifyPushOutcome(pushed) === 'delivered') outcome.pushesAccepted! += 1;
        else outcome.pushesFailed! += 1;
      }
      return [...perCard.values()];
    },

    async redeliver(claimed) {
      if (claimed.length === 0) return [];
      const tokens = claimed.map((c) => c.target);
      // The cards behind each token, read before pushing (a dead token's registrations go with its answer).
      // A token may hold a voided pass of a taken-over card (retired_apple_pass): it still needs its push.
      const found = await db
        .selectFrom('apple_registration as r')
        .leftJoin('card as c', 'c.apple_serial', 'r.serial_number')
        .leftJoin('retired_apple_pass as rp', 'rp.serial_number', 'r.serial_number')
        .select((eb) => [eb.fn.coalesce('c.id', 'rp.card_id').as('card_id'), 'r.push_token'])
        .where('r.pass_type_identifier', '=', passTypeIdentifier)
        .where('r.push_token', 'in', tokens)
        .execute();
      const rows = found.filter((r): r is { card_id: string; push_token: string } => r.card_id !== null);
      const registered = new Set(rows.map((r) => r.push_token));
      // A device that unregistered all its passes meanwhile needs no push.
      const settlements: Settlement[] = claimed.filter((c) => !registered.has(c.target)).map((c) => ({ target: c.target, result: 'done' }));
      const due = claimed.filter((c) => registered.has(c.target));
      const outcomes = due.length > 0 ? await apns.push(due.map((c) => c.target), passTypeIdentifier) : [];
      const stats = await applyOutcomes(db, passTypeIdentifier, outcomes, logger);
      const byToken = new Map(outcomes.map((o) => [o.token, o]));
      for (const c of due) {
        const outcome = byToken.get(c.target);
        if (!outcome) continue;
        const disposition = classifyPushOutcome(outcome);
        if (disposition === 'delivered') settlements.push({ target: c.target, result: 'delivered', wanted: c.wanted });
        else if (disposition === 'retry-exhausted') {
          settlements.push({ target: c.target, result: 'retry', attempts: c.attempts, status: outcome.status, reason: outcome.reason, retryAfterMs: outcome.retryAfterMs });
        } else settlements.push({ target: c.target, result: 'done' });
      }
      await settleDeliveries(db, 'apple', settlements, policy);
      options.onPushed?.(stats, true);
      // Settled pushes are credited to every card on that device: campaign figures move them from pending.
      const perCard = new Map<string, PublishOutcome>();
      for (const row of rows) {
        const outcome = byToken.get(row.push_token);
        if (!outcome || isRetryablePushOutcome(outcome)) continue;
        const entry = perCard.get(row.card_id) ?? { cardId: row.card_id, pushesAccepted: 0, pushesFailed: 0, retry: true };
        if (classifyPushOutcome(outcome) === 'delivered') entry.pushesAccepted! += 1;
        else entry.pushesFailed! += 1;
        perCard.set(row.card_id, entry);
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
  const stats: PushStats = { attempted: outcomes.length, delivered: 0, deferred: 0, failed: 0, registrationsRemoved: 0, failedBy: {} };
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
    if (disposition === 'retry-exhausted') stats.deferred++;
    else {
      stats.failed++;
      stats.failedBy[disposition] = (stats.failedBy[disposition] ?? 0) + 1;
    }
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
    } else if (disposition === 'retry-exhausted') {
      logger.warn(entry, 'APNs pushes not delivered yet; kept pending for a retry');
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
