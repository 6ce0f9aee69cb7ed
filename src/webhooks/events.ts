import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Executor } from '../db/database.js';
import type { Database, WalletKind } from '../db/schema.js';
import { sendJobIn } from '../jobs/queue.js';
import type { Notifications } from '../db/notifications.js';
import { NotifiedCache } from '../db/notified-cache.js';

/**
 * Webhook events: what a program can subscribe to, and the one function that emits them.
 *
 * `emitEvent` is called INSIDE the transaction that caused the event (the outbox guarantee): the
 * event row, one delivery row per subscribed endpoint and one pg-boss job per delivery commit with
 * the change or not at all. A program with no subscribed endpoint costs one indexed query (once
 * per transaction: later emits in the same transaction reuse it). A webhook problem never fails
 * the business transaction: the writes run under a savepoint and a failure rolls back only them
 * (and is reported to `onEmitFailure` listeners).
 */

export const WEBHOOK_EVENT_TYPES = [
  'card.issued',
  'card.installed',
  'card.removed',
  'balance.changed',
  'tier.changed',
  'purchase.created',
  'purchase.refunded',
  'campaign.finished',
  'import.finished',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const WEBHOOK_DELIVERY_QUEUE = 'webhook-delivery';

/** A job of the delivery queue: one attempt of one delivery (idempotent: `attempt` must be next). */
export interface WebhookDeliveryJob {
  deliveryId: number;
  attempt: number;
}

/** Payloads by event type. Card events carry ids, never the holder's personal data. */
export interface WebhookEventData {
  'card.issued': {
    cardId: string;
    number: string;
    tier: string;
    balance: number;
    /** Bonuses shown but not spendable yet (self-service cards until verified). */
    pendingPoints: number;
    /** 'staff' or 'self_service'. */
    channel: string;
    referredBy: string | null;
    staffId: string | null;
    source: string | null;
    externalId: string | null;
    createdAt: string;
  };
  'card.installed': { cardId: string; wallet: WalletKind };
  'card.removed': { cardId: string; wallet: WalletKind };
  'balance.changed': {
    cardId: string;
    number: string;
    oldBalance: number;
    newBalance: number;
    delta: number;
    /** Bonuses of the card still pending (not spendable) after this change. */
    pendingPoints: number;
    /** The ledger entries that moved the balance, e.g. redemption −100 and accrual +57. */
    entries: Array<{ kind: string; points: number; reason: string | null }>;
    purchaseId: string | null;
  };
  'tier.changed': { cardId: string; number: string; oldTier: string; newTier: string };
  'purchase.created': {
    purchaseId: string;
    cardId: string;
    amount: number;
    redeemed: number;
    accrued: number;
    payable: number;
    /** Absent for a whole-check purchase in a points program (as before); else: money off (mechanic "discount"), minor units. */
    discount?: number;
    /** Stamps the purchase added and stamp cards it completed (mechanic "stamps"); absent like `discount`. */
    stampsAdded?: number;
    rewardsEarned?: number;
    storeId: string | null;
    receiptId: string | null;
    balance: number;
    tier: string;
    tierChanged: boolean;
  };
  'purchase.refunded': {
    purchaseId: string;
    cardId: string;
    pointsReturned: number;
    pointsReversed: number;
    /** Of pointsReversed: welcome and referral bonuses the purchase had caused. */
    bonusesReversed: number;
    shortfall: number;
    /** The inviter's referral bonus paid because of this purchase, taken back. */
    referral: { inviterCardId: string; pointsReversed: number; shortfall: number } | null;
    balance: number;
    tier: string;
    tierChanged: boolean;
    /** Stamps programs only: how the card's stamps moved and the stamp rewards revoked. */
    stampsDelta?: number;
    rewardsRevoked?: number;
  };
  /** Defined by the campaigns module. */
  'campaign.finished': Record<string, unknown>;
  /** One per card-base import (src/imports): no card.issued / balance.changed per imported card. */
  'import.finished': {
    importId: string;
    mode: string;
    rowsRead: number;
    rowsValid: number;
    created: number;
    updated: number;
    unchanged: number;
    failed: number;
    finishedAt: string;
  };
}

export interface WebhookEvent<T extends WebhookEventType = WebhookEventType> {
  programId: string;
  type: T;
  data: WebhookEventData[T];
}

type EmitFailureListener = (error: unknown, event: { programId: string; type: string }) => void;
const failureListeners = new Set<EmitFailureListener>();

/** Listens to emits that failed (and were rolled back to their savepoint); returns the unsubscribe. */
export function onEmitFailure(listener: EmitFailureListener): () => void {
  failureListeners.add(listener);
  return () => failureListeners.delete(listener);
}

/**
 * Emits a webhook event for every enabled endpoint of the program subscribed to its type, inside
 * `executor`'s transaction. Returns the event id, or null when nobody is subscribed (or emitting
 * failed). Never throws for a webhook problem.
 */
export async function emitEvent<T extends WebhookEventType>(executor: Executor, event: WebhookEvent<T>): Promise<string | null> {
  const endpoints = (await enabledEndpoints(executor, event.programId)).filter((endpoint) => endpoint.events.includes(event.type));
  if (endpoints.length === 0) return null;

  // No transaction to join (a caller outside one): the event gets its own.
  if (!executor.isTransaction) return executor.transaction().execute((trx) => emitUnderSavepoint(trx, event, endpoints));
  return emitUnderSavepoint(executor as Transaction<Database>, event, endpoints);
}

// A transaction's emits share one read of the program's endpoints: a purchase that emits
// balance.changed, tier.changed and purchase.created pays one query, not three.
const endpointsByTransaction = new WeakMap<Executor, Map<string, Promise<EndpointRef[]>>>();

interface EndpointRef {
  id: string;
  events: string[];
}

/**
 * Enabled endpoints by program, across transactions (issue #14: every purchase read them, and most
 * programs have none). Creating, changing, enabling, disabling or deleting an endpoint notifies
 * `webhook_endpoints_changed` with the program id (migrations/20261205T155500_cache_invalidation.sql),
 * and the changing process forgets at once (`forgetWebhookEndpoints`). Filled from business
 * transactions, which never write endpoints.
 */
const endpointsByProgram = new NotifiedCache<string, EndpointRef[]>({ maxAgeMs: 5 * 60_000, maxEntries: 10_000 });

export function attachWebhookEndpointCache(notifications: Notifications): () => void {
  return endpointsByProgram.attach(notifications, 'webhook_endpoints_changed', (programId) => endpointsByProgram.forget(programId));
}

export function forgetWebhookEndpoints(programId: string): void {
  endpointsByProgram.forget(programId);
}

/** The program's enabled endpoints: from the cache, else one query (webhook_endpoint_program_idx) per program per transaction. */
function enabledEndpoints(executor: Executor, programId: string): Promise<EndpointRef[]> {
  const read = () =>
    endpointsByProgram.get(programId, () =>
      executor.selectFrom('webhook_endpoint').select(['id', 'events']).where('program_id', '=', programId).where('enabled', '=', true).execute(),
    );
  if (!executor.isTransaction) return read();
  let perProgram = endpointsByTransaction.get(executor);
  if (!perProgram) endpointsByTransaction.set(executor, (perProgram = new Map()));
  let endpoints = perProgram.get(programId);
  if (!endpoints) perProgram.set(programId, (endpoints = read()));
  return endpoints;
}

async function emitUnderSavepoint(trx: Transaction<Database>, event: WebhookEvent, endpoints: EndpointRef[]): Promise<string | null> {
  await sql`SAVEPOINT webhook_emit`.execute(trx);
  try {
    const eventId = randomUUID();
    await trx
      .insertInto('webhook_event')
      .values({ id: eventId, program_id: event.programId, type: event.type, data: JSON.stringify(event.data) })
      .execute();
    const deliveries = await trx
      .insertInto('webhook_delivery')
      .values(endpoints.map((endpoint) => ({ endpoint_id: endpoint.id, event_id: eventId })))
      .returning('id')
      .execute();
    for (const delivery of deliveries) {
      const job = await sendJobIn(trx, WEBHOOK_DELIVERY_QUEUE, { deliveryId: Number(delivery.id), attempt: 1 } satisfies WebhookDeliveryJob);
      if (job === null) throw new Error(`pg-boss queue ${WEBHOOK_DELIVERY_QUEUE} does not exist`);
    }
    await sql`RELEASE SAVEPOINT webhook_emit`.execute(trx);
    return eventId;
  } catch (error) {
    await sql`ROLLBACK TO SAVEPOINT webhook_emit`.execute(trx);
    await sql`RELEASE SAVEPOINT webhook_emit`.execute(trx);
    for (const listener of failureListeners) {
      try {
        listener(error, { programId: event.programId, type: event.type });
      } catch {
        // a listener's own failure must not reach the business transaction either
      }
    }
    return null;
  }
}
