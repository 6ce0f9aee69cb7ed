import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { AppError, conflict, notFound } from '../http/errors.js';
import { lockCardInProgram } from '../cards/repository.js';
import { getProgramOr404 } from '../programs/service.js';
import type { CardChangeRecorder } from '../updates/card-changes.js';
import { postToLedger, type LedgerPosting } from './ledger.js';
import { quotePurchase, quoteRefund, referralBonuses, RuleViolation, type LoyaltyRules } from './rules.js';
import { emitEvent } from '../webhooks/events.js';

type Trx = Transaction<Database>;

/** Rule violations are the client's to fix: 422 with the rule's own code. */
function asProblem(error: unknown): never {
  if (error instanceof RuleViolation) throw new AppError(422, error.code, error.message, error.details);
  throw error;
}

export interface PurchaseCommand {
  programId: string;
  cardId: string;
  amount: number;
  redeemPoints: number;
  storeId?: string;
  receiptId?: string;
  actor: string;
  idempotencyKey?: string;
}

/**
 * A purchase at the till, in the caller's transaction: the card row is locked first, so
 * concurrent purchases on one card run one after another and a redemption can never overdraw.
 * The purchase row, its ledger entries, the new balance/spend/tier and the wallet-update job
 * commit together.
 */
export async function recordPurchase(trx: Trx, cardChanges: CardChangeRecorder, command: PurchaseCommand) {
  const program = await getProgramOr404(trx, command.programId);
  const rules = program.rules as LoyaltyRules;
  const card = await lockCardInProgram(trx, command.programId, command.cardId);
  if (!card) throw notFound('card');
  if (card.status !== 'active') throw new AppError(422, 'card_blocked', 'This card is blocked');

  let quote;
  try {
    quote = quotePurchase({
      amount: command.amount,
      redeemPoints: command.redeemPoints,
      balance: card.balance,
      lifetimeSpend: card.lifetime_spend,
      tierCode: card.tier,
      rules,
    });
  } catch (error) {
    asProblem(error);
  }

  if (command.receiptId) {
    const seen = await trx
      .selectFrom('purchase')
      .select('id')
      .where('program_id', '=', command.programId)
      .where('receipt_id', '=', command.receiptId)
      .executeTakeFirst();
    if (seen) throw conflict('receipt_already_recorded', `Receipt ${command.receiptId} was already recorded as purchase ${seen.id}`);
  }
  const isFirstPurchase = !(await trx.selectFrom('purchase').select('id').where('card_id', '=', card.id).limit(1).executeTakeFirst());

  const purchase = await trx
    .insertInto('purchase')
    .values({
      program_id: command.programId,
      card_id: card.id,
      amount: quote.amount,
      redeemed: quote.redeemed,
      accrued: quote.accrued,
      payable: quote.payable,
      store_id: command.storeId ?? null,
      receipt_id: command.receiptId ?? null,
    })
    .returning(['id'])
    .executeTakeFirstOrThrow();

  const base = { programId: command.programId, cardId: card.id, actor: command.actor, purchaseId: purchase.id, idempotencyKey: command.idempotencyKey };
  const postings: LedgerPosting[] = [
    { ...base, kind: 'redemption', points: -quote.redeemed },
    { ...base, kind: 'accrual', points: quote.accrued },
  ];

  // Referral bonuses granted at the invitee's first purchase (program setting), once. A card that
  // enrolled while the program granted them at enrollment already got them: switching the
  // setting to first_purchase afterwards must not pay the same invitation a second time.
  const referral =
    isFirstPurchase && card.referred_by && !(await referralGrantedAtEnrollment(trx, card))
      ? referralBonuses(rules, 'first_purchase')
      : null;
  if (referral && referral.invitee > 0) postings.push({ ...base, kind: 'referral', points: referral.invitee, reason: 'referral: first purchase' });

  const after = await postToLedger(trx, cardChanges, postings, {
    lifetimeSpendDelta: quote.payable,
    tier: quote.tierChanged ? quote.tierAfter : undefined,
  });
  if (referral && referral.inviter > 0 && card.referred_by) {
    const inviter = await lockCardInProgram(trx, command.programId, card.referred_by);
    if (inviter) {
      await postToLedger(trx, cardChanges, [
        { ...base, cardId: inviter.id, purchaseId: null, kind: 'referral', points: referral.inviter, reason: `referral: ${card.number} made a first purchase` },
      ]);
    }
  }
  await emitEvent(trx, {
    programId: command.programId,
    type: 'purchase.created',
    data: {
      purchaseId: purchase.id,
      cardId: card.id,
      amount: quote.amount,
      redeemed: quote.redeemed,
      accrued: quote.accrued,
      payable: quote.payable,
      storeId: command.storeId ?? null,
      receiptId: command.receiptId ?? null,
      balance: after.balance,
      tier: after.tier,
      tierChanged: quote.tierChanged,
    },
  });
  return {
    purchaseId: purchase.id,
    amount: quote.amount,
    redeemed: quote.redeemed,
    accrued: quote.accrued,
    payable: quote.payable,
    balance: after.balance,
    tier: after.tier,
    tierChanged: quote.tierChanged,
  };
}

/**
 * Whether the enrollment of `card` already paid its referral bonuses (to the invitee, or to the
 * inviter when the invitee bonus was 0). Matches the entries issueCard posts at enrollment.
 */
async function referralGrantedAtEnrollment(trx: Trx, card: { id: string; number: string; referred_by: string | null }) {
  const entry = await trx
    .selectFrom('ledger_entry')
    .select('id')
    .where('kind', '=', 'referral')
    .where((eb) =>
      eb.or([
        eb.and([eb('card_id', '=', card.id), eb('reason', 'like', 'invited by %')]),
        ...(card.referred_by ? [eb.and([eb('card_id', '=', card.referred_by), eb('reason', '=', `invited ${card.number}`)])] : []),
      ]),
    )
    .limit(1)
    .executeTakeFirst();
  return entry !== undefined;
}

/**
 * Refunds a purchase: the redeemed points come back, the accrued points are taken back (never
 * below zero: what was already spent is reported as `shortfall`), spend goes down, and the tier
 * follows the program's refund policy (`tierPolicy.downgradeOnRefund`).
 */
export async function refundPurchase(
  trx: Trx,
  cardChanges: CardChangeRecorder,
  command: { programId: string; purchaseId: string; actor: string; idempotencyKey?: string },
) {
  const purchase = await trx
    .selectFrom('purchase')
    .selectAll()
    .where('id', '=', command.purchaseId)
    .where('program_id', '=', command.programId)
    .executeTakeFirst();
  if (!purchase) throw notFound('purchase');
  const program = await getProgramOr404(trx, command.programId);
  const card = await lockCardInProgram(trx, command.programId, purchase.card_id);
  if (!card) throw notFound('card');
  // Re-read under the card lock: a concurrent refund of the same purchase has finished by now.
  const current = await trx.selectFrom('purchase').select('status').where('id', '=', purchase.id).executeTakeFirstOrThrow();
  if (current.status === 'refunded') throw conflict('purchase_already_refunded', 'This purchase was already refunded');

  let quote;
  try {
    quote = quoteRefund({
      purchase: { payable: purchase.payable, redeemed: purchase.redeemed, accrued: purchase.accrued },
      balance: card.balance,
      lifetimeSpend: card.lifetime_spend,
      tierCode: card.tier,
      rules: program.rules as LoyaltyRules,
    });
  } catch (error) {
    asProblem(error);
  }

  await trx.updateTable('purchase').set({ status: 'refunded', refunded_at: new Date() }).where('id', '=', purchase.id).execute();
  const base = { programId: command.programId, cardId: card.id, actor: command.actor, purchaseId: purchase.id, idempotencyKey: command.idempotencyKey, kind: 'reversal' as const };
  const after = await postToLedger(
    trx,
    cardChanges,
    [
      { ...base, points: quote.pointsReturned, reason: 'refund: redeemed points returned' },
      { ...base, points: -quote.pointsReversed, reason: 'refund: accrued points taken back' },
    ],
    { lifetimeSpendDelta: quote.lifetimeSpendAfter - card.lifetime_spend, tier: quote.tierChanged ? quote.tierAfter : undefined },
  );
  await emitEvent(trx, {
    programId: command.programId,
    type: 'purchase.refunded',
    data: {
      purchaseId: purchase.id,
      cardId: card.id,
      pointsReturned: quote.pointsReturned,
      pointsReversed: quote.pointsReversed,
      shortfall: quote.shortfall,
      balance: after.balance,
      tier: after.tier,
      tierChanged: quote.tierChanged,
    },
  });
  return {
    purchaseId: purchase.id,
    status: 'refunded' as const,
    pointsReturned: quote.pointsReturned,
    pointsReversed: quote.pointsReversed,
    shortfall: quote.shortfall,
    balance: after.balance,
    tier: after.tier,
    tierChanged: quote.tierChanged,
  };
}
