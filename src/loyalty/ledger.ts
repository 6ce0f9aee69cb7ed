import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import type { LedgerKind, StampEntryKind } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import { cardChangedColumns, type CardChangeRecorder } from '../updates/card-changes.js';
import { emitEvent } from '../webhooks/events.js';

export interface LedgerPosting {
  programId: string;
  cardId: string;
  kind: LedgerKind;
  points: number;
  actor: string;
  purchaseId?: string | null;
  idempotencyKey?: string | null;
  reason?: string | null;
}

export interface CardBalanceChange {
  /** Extra card columns changed in the same statement (spend, tier). */
  lifetimeSpendDelta?: number;
  tier?: string;
  /** Moves the card's pending points too (pending bonuses released into the ledger). */
  pendingPointsDelta?: number;
  /** Stamp entries (stamps mechanic), appended like ledger entries; the card's stamps move by their sum. */
  stamps?: StampPosting[];
  /** When a 'stamp' entry was given (the app clock; the database's now() if absent). */
  stampedAt?: Date;
}

export interface StampPosting {
  programId: string;
  cardId: string;
  kind: StampEntryKind;
  stamps: number;
  actor: string;
  purchaseId?: string | null;
}

/**
 * Appends ledger entries and moves the card's cached balance by their sum, in the caller's
 * transaction, then enqueues the wallet update in that same transaction. The balance can never go
 * negative: the database's CHECK constraint refuses it even if a caller's own check was wrong.
 * Callers that read the balance first must hold the card row lock (`lockCard`).
 * Emits the `balance.changed` and `tier.changed` webhook events in the same transaction.
 * Stamp entries (stamps mechanic) go the same way: appended to stamp_entry, summed into the card's
 * `stamps` (CHECK stamps >= 0), in the same statement and with the same wallet update.
 */
export async function postToLedger(
  trx: Executor,
  cardChanges: CardChangeRecorder,
  postings: LedgerPosting[],
  cardChange: CardBalanceChange = {},
): Promise<{ balance: number; tier: string; lifetimeSpend: number; pendingPoints: number; stamps: number; entryIds: number[] }> {
  const nonZero = postings.filter((p) => p.points !== 0);
  const stampPostings = (cardChange.stamps ?? []).filter((p) => p.stamps !== 0);
  if (
    nonZero.length === 0 &&
    stampPostings.length === 0 &&
    cardChange.lifetimeSpendDelta === undefined &&
    cardChange.tier === undefined &&
    !cardChange.pendingPointsDelta
  ) {
    throw new Error('postToLedger needs at least one change');
  }
  const cardId = (postings[0] ?? cardChange.stamps?.[0])?.cardId;
  if (cardId === undefined) throw new Error('postToLedger needs a card');
  if (postings.some((p) => p.cardId !== cardId) || stampPostings.some((p) => p.cardId !== cardId)) {
    throw new Error('postToLedger posts to one card at a time');
  }
  if (stampPostings.length > 0) {
    await trx
      .insertInto('stamp_entry')
      .values(
        stampPostings.map((p) => ({
          program_id: p.programId,
          card_id: p.cardId,
          purchase_id: p.purchaseId ?? null,
          kind: p.kind,
          stamps: p.stamps,
          actor: p.actor,
        })),
      )
      .execute();
  }
  const stampsDelta = stampPostings.reduce((sum, p) => sum + p.stamps, 0);
  const stamped = stampPostings.some((p) => p.kind === 'stamp');
  let entryIds: number[] = [];
  if (nonZero.length > 0) {
    const inserted = await trx
      .insertInto('ledger_entry')
      .values(
        nonZero.map((p) => ({
          program_id: p.programId,
          card_id: p.cardId,
          kind: p.kind,
          points: p.points,
          purchase_id: p.purchaseId ?? null,
          idempotency_key: p.idempotencyKey ?? null,
          actor: p.actor,
          reason: p.reason ?? null,
        })),
      )
      .returning('id')
      .execute();
    // Multi-row INSERT … RETURNING returns the rows in VALUES order (PostgreSQL keeps it).
    entryIds = inserted.map((row) => Number(row.id));
  }
  const delta = nonZero.reduce((sum, p) => sum + p.points, 0);
  // The tier before, for tier.changed (read only when the caller changes the tier).
  const tierBefore =
    cardChange.tier !== undefined ? (await trx.selectFrom('card').select('tier').where('id', '=', cardId).executeTakeFirst())?.tier : undefined;
  let updated;
  try {
    updated = await trx
      .updateTable('card')
      .set({
        balance: sql<number>`balance + ${delta}`,
        lifetime_spend: sql<number>`lifetime_spend + ${cardChange.lifetimeSpendDelta ?? 0}`,
        ...(cardChange.pendingPointsDelta ? { pending_points: sql<number>`pending_points + ${cardChange.pendingPointsDelta}` } : {}),
        ...(cardChange.tier !== undefined ? { tier: cardChange.tier } : {}),
        ...(stampPostings.length > 0 ? { stamps: sql<number>`stamps + ${stampsDelta}` } : {}),
        ...(stamped ? { last_stamp_at: cardChange.stampedAt ?? sql<Date>`now()` } : {}),
        ...cardChangedColumns(),
      })
      .where('id', '=', cardId)
      .returning(['balance', 'tier', 'lifetime_spend', 'number', 'program_id', 'pending_points', 'stamps'])
      .executeTakeFirstOrThrow();
  } catch (error) {
    if ((error as { constraint?: string }).constraint === 'card_balance_not_negative' || /card_balance_not_negative/.test(String(error))) {
      throw new AppError(422, 'insufficient_points', 'The card does not have enough points');
    }
    throw error;
  }
  await cardChanges.enqueue(trx, [cardId]);
  const programId = updated.program_id;
  if (delta !== 0) {
    await emitEvent(trx, {
      programId,
      type: 'balance.changed',
      data: {
        cardId,
        number: updated.number,
        oldBalance: updated.balance - delta,
        newBalance: updated.balance,
        delta,
        pendingPoints: updated.pending_points,
        entries: nonZero.map((p) => ({ kind: p.kind, points: p.points, reason: p.reason ?? null })),
        purchaseId: nonZero.find((p) => p.purchaseId)?.purchaseId ?? null,
      },
    });
  }
  if (tierBefore !== undefined && tierBefore !== updated.tier) {
    await emitEvent(trx, { programId, type: 'tier.changed', data: { cardId, number: updated.number, oldTier: tierBefore, newTier: updated.tier } });
  }
  return {
    balance: updated.balance,
    tier: updated.tier,
    lifetimeSpend: updated.lifetime_spend,
    pendingPoints: updated.pending_points,
    stamps: updated.stamps,
    entryIds,
  };
}
