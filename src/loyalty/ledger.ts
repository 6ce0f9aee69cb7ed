import { sql, type Insertable, type QueryCreator } from 'kysely';
import type { Executor } from '../db/database.js';
import type { CardRow, Database, LedgerKind, PurchaseTable, StampEntryKind } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import { CompiledStatementsByShape } from '../db/compiled-statement.js';
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
  let entryIds: number[] = [];
  if (nonZero.length > 0) {
    const inserted = await trx
      .insertInto('ledger_entry')
      .values(nonZero.map(ledgerRow))
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
      .set(cardColumnsMoved(delta, cardChange, stampPostings))
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
  await emitLedgerEvents(trx, { cardId, programId: updated.program_id, number: updated.number, balance: updated.balance, pendingPoints: updated.pending_points, tier: updated.tier }, nonZero, tierBefore);
  return {
    balance: updated.balance,
    tier: updated.tier,
    lifetimeSpend: updated.lifetime_spend,
    pendingPoints: updated.pending_points,
    stamps: updated.stamps,
    entryIds,
  };
}

const ledgerRow = (p: LedgerPosting) => ({
  program_id: p.programId,
  card_id: p.cardId,
  kind: p.kind,
  points: p.points,
  purchase_id: p.purchaseId ?? null,
  idempotency_key: p.idempotencyKey ?? null,
  actor: p.actor,
  reason: p.reason ?? null,
});

/** The card columns a posting moves, all in the one UPDATE of the card. */
function cardColumnsMoved(delta: number, cardChange: CardBalanceChange, stampPostings: StampPosting[]) {
  const stampsDelta = stampPostings.reduce((sum, p) => sum + p.stamps, 0);
  const stamped = stampPostings.some((p) => p.kind === 'stamp');
  return {
    balance: sql<number>`balance + ${delta}`,
    lifetime_spend: sql<number>`lifetime_spend + ${cardChange.lifetimeSpendDelta ?? 0}`,
    ...(cardChange.pendingPointsDelta ? { pending_points: sql<number>`pending_points + ${cardChange.pendingPointsDelta}` } : {}),
    ...(cardChange.tier !== undefined ? { tier: cardChange.tier } : {}),
    ...(stampPostings.length > 0 ? { stamps: sql<number>`stamps + ${stampsDelta}` } : {}),
    ...(stamped ? { last_stamp_at: cardChange.stampedAt ?? sql<Date>`now()` } : {}),
    ...cardChangedColumns(),
  };
}

/** balance.changed (when points moved) and tier.changed (when the tier did), in the caller's transaction. */
async function emitLedgerEvents(
  trx: Executor,
  card: { cardId: string; programId: string; number: string; balance: number; pendingPoints: number; tier: string },
  nonZero: LedgerPosting[],
  tierBefore: string | undefined,
) {
  const { cardId, programId, number } = card;
  const delta = nonZero.reduce((sum, p) => sum + p.points, 0);
  if (delta !== 0) {
    await emitEvent(trx, {
      programId,
      type: 'balance.changed',
      data: {
        cardId,
        number,
        oldBalance: card.balance - delta,
        newBalance: card.balance,
        delta,
        pendingPoints: card.pendingPoints,
        entries: nonZero.map((p) => ({ kind: p.kind, points: p.points, reason: p.reason ?? null })),
        purchaseId: nonZero.find((p) => p.purchaseId)?.purchaseId ?? null,
      },
    });
  }
  if (tierBefore !== undefined && tierBefore !== card.tier) {
    await emitEvent(trx, { programId, type: 'tier.changed', data: { cardId, number, oldTier: tierBefore, newTier: card.tier } });
  }
}

/**
 * A purchase's writes in ONE statement (issue #14: three round trips became one): the purchase row,
 * its ledger entries, the card's balance/spend/tier/update tag and, when given, the Idempotency-Key
 * answer, as data-modifying CTEs; then the wallet-update job and the webhook events, as
 * `postToLedger` does them. For the common purchase only — no stamps, no coupon, no bonus, no
 * receipt (whose unique index can refuse the insert) — on a card the caller holds locked
 * (`lockCard…`), so the balance after is known before the statement and cannot go negative (the
 * caller checks; the CHECK constraint stays the backstop: a violation here is a server error).
 * The foreign key of the ledger rows to the purchase row is checked at the end of the statement,
 * when the purchase row exists.
 */
export async function postPurchaseInOneStatement(
  trx: Executor,
  cardChanges: CardChangeRecorder,
  write: {
    purchase: Insertable<PurchaseTable> & { id: string };
    postings: LedgerPosting[];
    lifetimeSpendDelta: number;
    tier?: string;
    /** The card as locked by the caller. */
    card: Pick<CardRow, 'id' | 'program_id' | 'number' | 'balance' | 'tier' | 'pending_points'>;
    /** The Idempotency-Key record to answer in the same statement (IdempotentWork.record). */
    answer?: { scope: string; key: string; status: number; body: unknown };
  },
): Promise<void> {
  const { card } = write;
  const nonZero = write.postings.filter((p) => p.points !== 0);
  if (nonZero.some((p) => p.cardId !== card.id)) throw new Error('postPurchaseInOneStatement posts to one card');
  const delta = nonZero.reduce((sum, p) => sum + p.points, 0);
  const balanceAfter = card.balance + delta;
  if (balanceAfter < 0) throw new Error('postPurchaseInOneStatement: the caller must refuse an overdraft first');
  const answer = write.answer;
  const params: PurchaseWriteSlots = {
    cardId: card.id,
    delta,
    lifetimeSpendDelta: write.lifetimeSpendDelta,
    tier: write.tier,
    answerStatus: answer?.status,
    answerResponse: answer ? JSON.stringify(answer.body) : undefined,
    answerScope: answer?.scope,
    answerKey: answer?.key,
  };
  const purchaseColumns = Object.keys(write.purchase).filter((column) => (write.purchase as Record<string, unknown>)[column] !== undefined);
  for (const column of purchaseColumns) params[`purchase.${column}`] = (write.purchase as Record<string, unknown>)[column];
  nonZero.forEach((posting, i) => {
    for (const [column, value] of Object.entries(ledgerRow(posting))) params[`ledger${i}.${column}`] = value;
  });
  const { rows } = await purchaseWriteStatement.execute(trx, { purchaseColumns, ledgerRows: nonZero.length, answer: answer !== undefined, tier: write.tier !== undefined }, params);
  const updated = rows[0];
  if (!updated) throw new Error(`card ${card.id} not found by its purchase's write`);
  // The answer (already stored) was computed from the locked row: it must be what the card says now.
  if (updated.balance !== balanceAfter || updated.tier !== (write.tier ?? card.tier)) {
    throw new Error(`card ${card.id} changed under its lock: balance ${updated.balance}, expected ${balanceAfter}`);
  }
  await cardChanges.enqueue(trx, [card.id]);
  await emitLedgerEvents(
    trx,
    { cardId: card.id, programId: card.program_id, number: card.number, balance: balanceAfter, pendingPoints: card.pending_points, tier: updated.tier },
    nonZero,
    write.tier !== undefined ? card.tier : undefined,
  );
}

interface PurchaseWriteShape {
  purchaseColumns: string[];
  ledgerRows: number;
  answer: boolean;
  tier: boolean;
}

/** The write's named values; the purchase row's columns as `purchase.<column>`, the ledger rows' as `ledger<i>.<column>`. */
type PurchaseWriteSlots = {
  cardId: string;
  delta: number;
  lifetimeSpendDelta: number;
  tier?: string;
  answerStatus?: number;
  answerResponse?: string;
  answerScope?: string;
  answerKey?: string;
} & Record<string, unknown>;

/**
 * `postPurchaseInOneStatement`'s statement, built by kysely once per shape (purchase columns, how
 * many ledger rows, with or without the answer and the tier) and then only run with new values
 * (src/db/compiled-statement.ts): rebuilding this statement of CTEs was most of kysely's ~17 % of
 * the app's CPU per purchase (docs/benchmarks.md, POS hot paths).
 */
const purchaseWriteStatement = new CompiledStatementsByShape(
  (shape: PurchaseWriteShape) => `${shape.purchaseColumns.join(',')}|${shape.ledgerRows}|${shape.answer}|${shape.tier}`,
  (executor, slots: PurchaseWriteSlots, shape) => {
    const row = (prefix: string, columns: readonly string[]) => Object.fromEntries(columns.map((column) => [column, slots[`${prefix}.${column}`]]));
    // Each CTE has to be named and return something for kysely; PostgreSQL runs every data-modifying
    // CTE whether or not the main statement reads it.
    let query = executor.with('purchase_row', (qc) =>
      qc.insertInto('purchase').values(row('purchase', shape.purchaseColumns) as Insertable<PurchaseTable>).returning('id'),
    ) as unknown as QueryCreator<Database>;
    if (shape.ledgerRows > 0) {
      const ledgerColumns = Object.keys(ledgerRow({ programId: '', cardId: '', kind: 'accrual', points: 0, actor: '' }));
      const rows = Array.from({ length: shape.ledgerRows }, (_, i) => row(`ledger${i}`, ledgerColumns) as ReturnType<typeof ledgerRow>);
      query = query.with('ledger_rows', (qc) => qc.insertInto('ledger_entry').values(rows).returning('id')) as unknown as QueryCreator<Database>;
    }
    if (shape.answer) {
      query = query.with('answer', (qc) =>
        qc
          .updateTable('idempotency_record')
          .set({ status_code: slots.answerStatus, response: slots.answerResponse })
          .where('scope', '=', slots.answerScope!)
          .where('key', '=', slots.answerKey!)
          .returning('key'),
      ) as unknown as QueryCreator<Database>;
    }
    return query
      .updateTable('card')
      .set(cardColumnsMoved(slots.delta, { lifetimeSpendDelta: slots.lifetimeSpendDelta, tier: shape.tier ? slots.tier : undefined }, []))
      .where('id', '=', slots.cardId)
      .returning(['balance', 'tier']);
  },
);
