import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { IdempotentWork } from '../http/idempotency.js';
import type { Database } from '../db/schema.js';
import { AppError, cardErased, conflict, notFound } from '../http/errors.js';
import { lockCardInProgram, lockCardWithProgramVersion } from '../cards/repository.js';
import { cachedProgramOr404 } from '../programs/cache.js';
import { getProgramOr404 } from '../programs/service.js';
import type { CardChangeRecorder } from '../updates/card-changes.js';
import type { CardRow } from '../db/schema.js';
import type { Executor } from '../db/database.js';
import { findCardInProgram } from '../cards/repository.js';
import { postPurchaseInOneStatement, postToLedger, type LedgerPosting, type StampPosting } from './ledger.js';
import {
  mechanicOf,
  quoteCheck,
  eligibleCheck,
  quoteRefund,
  quoteStampRefund,
  referralBonuses,
  RuleViolation,
  type CheckQuote,
  type LineItem,
  type LoyaltyRules,
} from './rules.js';
import { onStampRewardsEarned, revokeStampRewards } from './stamps.js';
import { lockReferral, payInviter, verifyCard } from './bonuses.js';
import { confirmClaimByPurchase } from '../enrollment/claim.js';
import { violatesConstraint } from '../db/constraints.js';
import { emitEvent } from '../webhooks/events.js';
import { couponForPurchase, couponsForQuote, issueStampRewardCoupons, redeemCouponInPurchase, reverseCouponRedemption, voidStampRewardCoupons } from '../coupons/service.js';
import { applicableCoupons } from '../coupons/logic.js';

type Trx = Transaction<Database>;

/** Rule violations are the client's to fix: 422 with the rule's own code. */
function asProblem(error: unknown): never {
  if (error instanceof RuleViolation) throw new AppError(422, error.code, error.message, error.details);
  throw error;
}

/** The check as the till sends it to a quote or a purchase. */
export interface CheckCommand {
  /** A coupon of this card to apply (src/coupons): priced on the eligible part, before the mechanic. */
  couponCode?: string;
  /** Minor units; may be omitted when items are given (then it is their sum). */
  amount?: number;
  items?: LineItem[];
  redeemPoints: number;
  /** The moment of the check (stamps expiry); the app clock. */
  now: Date;
}

export interface PurchaseCommand extends CheckCommand {
  programId: string;
  cardId: string;
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
export async function recordPurchase(
  trx: Trx,
  cardChanges: CardChangeRecorder,
  command: PurchaseCommand,
  /** From `runIdempotent({ declaresWrites: true })`, with the status the caller answers (201). */
  idempotent?: { work: IdempotentWork; status: number },
) {
  // One statement locks the card and reads the program's version; the program row itself comes
  // from the cache when that version is cached (issue #14: one round trip less per purchase).
  const locked = await lockCardWithProgramVersion(trx, command.programId, command.cardId);
  if (!locked) {
    await getProgramOr404(trx, command.programId);
    throw notFound('card');
  }
  const { program_version: programVersion, ...card } = locked;
  const program = await cachedProgramOr404(trx, command.programId, programVersion);
  const rules = program.rules as LoyaltyRules;
  if (card.status === 'erased') throw cardErased();
  if (card.status !== 'active') throw new AppError(422, 'card_blocked', 'This card is blocked');

  // ---- coupons (src/coupons, docs/coupons.md): priced on the eligible part of the check, it comes
  // off before the mechanic's discount and points (quoteCheck's couponDiscount).
  const coupon = command.couponCode
    ? await couponForPurchase(trx, { programId: command.programId, cardId: card.id, code: command.couponCode, check: eligibleCheckOrProblem(rules, command), now: command.now })
    : null;
  // ---- end coupons
  const quote = priceCheck(card, rules, command, coupon?.discount ?? 0);

  if (command.receiptId) {
    const seen = await trx
      .selectFrom('purchase')
      .select('id')
      .where('program_id', '=', command.programId)
      .where('receipt_id', '=', command.receiptId)
      .executeTakeFirst();
    if (seen) throw conflict('receipt_already_recorded', `Receipt ${command.receiptId} was already recorded as purchase ${seen.id}`);
  }
  // Only a referred card's first purchase can pay anything extra; other cards skip the look-up.
  const isFirstPurchase = card.referred_by
    ? !(await trx.selectFrom('purchase').select('id').where('card_id', '=', card.id).limit(1).executeTakeFirst())
    : false;

  const purchaseRow = {
    program_id: command.programId,
    card_id: card.id,
    amount: quote.amount,
    redeemed: quote.redeemed,
    accrued: quote.accrued,
    payable: quote.payable,
    discount: quote.discount,
    items: command.items && command.items.length > 0 ? JSON.stringify(command.items) : null,
    stamps_added: quote.stampsAdded,
    rewards_earned: quote.rewardsEarned,
    store_id: command.storeId ?? null,
    receipt_id: command.receiptId ?? null,
  };
  // A whole-check purchase in a points program answers (and tells webhooks) exactly what it always
  // did; any other check also says what its mechanic did (the numbers its quote gave).
  const plainPoints = quote.mechanic === 'points' && !(command.items && command.items.length > 0);

  // The common purchase (issue #14): nothing after its writes can refuse it, so it needs no
  // savepoint, and its answer is known before it writes (the card is locked): purchase, ledger,
  // card and the Idempotency-Key answer go as one statement. Everything that can still be refused
  // once writing has begun — a receipt (unique index), a coupon (single-use UPDATE), a balance the
  // CHECK would refuse — and everything with more writes (stamps, rewards, pending bonuses, a
  // referral, a plastic card's claim) takes the general path below, under the savepoint.
  const delta = quote.accrued - quote.redeemed;
  if (
    !command.receiptId &&
    !coupon &&
    !card.referred_by &&
    !card.external_number &&
    card.verified_at &&
    quote.stampsExpired === 0 &&
    quote.stampsAdded === 0 &&
    quote.rewardsEarned === 0 &&
    card.balance + delta >= 0
  ) {
    const purchaseId = randomUUID();
    const answer = purchaseAnswer(quote, purchaseId, { balance: card.balance + delta, tier: quote.tierChanged ? quote.tierAfter : card.tier, stamps: card.stamps }, plainPoints, null);
    const record = idempotent?.work.record;
    const base = { programId: command.programId, cardId: card.id, actor: command.actor, purchaseId, idempotencyKey: command.idempotencyKey };
    try {
      await postPurchaseInOneStatement(trx, cardChanges, {
        purchase: { ...purchaseRow, id: purchaseId },
        postings: [
          { ...base, kind: 'redemption', points: -quote.redeemed },
          { ...base, kind: 'accrual', points: quote.accrued },
        ],
        lifetimeSpendDelta: quote.payable,
        tier: quote.tierChanged ? quote.tierAfter : undefined,
        card,
        answer: record && idempotent ? { ...record, status: idempotent.status, body: answer } : undefined,
      });
      if (record && idempotent) idempotent.work.answered(idempotent.status, answer);
      await emitPurchaseCreated(trx, command, card.id, quote, answer, plainPoints);
    } catch (error) {
      // Nothing here refuses a purchase; if something did, its refusal must not be stored over
      // writes no savepoint can undo: the whole transaction goes instead (a server error).
      if (error instanceof AppError && error.status < 500) throw new Error(`unexpected refusal after a purchase's writes: ${error.code}`, { cause: error });
      throw error;
    }
    return answer;
  }

  await idempotent?.work.beforeRefusableWrites();
  let purchase;
  try {
    purchase = await trx.insertInto('purchase').values(purchaseRow).returning(['id']).executeTakeFirstOrThrow();
  } catch (error) {
    // The same receipt recorded at the same moment on another card: the check above could not see
    // it (not committed yet); the unique index waited for it and refuses this one.
    if (command.receiptId && violatesConstraint(error, 'purchase_receipt_idx')) {
      throw conflict('receipt_already_recorded', `Receipt ${command.receiptId} was already recorded`);
    }
    throw error;
  }
  // ---- coupons: single use, enforced by one conditional UPDATE (409 coupon_already_used)
  if (coupon) await redeemCouponInPurchase(trx, { programId: command.programId, cardId: card.id, coupon, purchaseId: purchase.id, now: command.now });
  // ---- end coupons

  const base = { programId: command.programId, cardId: card.id, actor: command.actor, purchaseId: purchase.id, idempotencyKey: command.idempotencyKey };
  const postings: LedgerPosting[] = [
    { ...base, kind: 'redemption', points: -quote.redeemed },
    { ...base, kind: 'accrual', points: quote.accrued },
  ];

  // Referral bonuses granted at the invitee's first purchase (program setting), once: the referral
  // row says whether they are still due (a card enrolled while the program granted them at
  // enrollment has them paid already; switching the setting later pays nothing twice).
  const referral = card.referred_by ? await lockReferral(trx, card.id) : undefined;
  const dueNow =
    isFirstPurchase && referral?.status === 'pending' && referral.grant_on === 'first_purchase' ? referralBonuses(rules, 'first_purchase') : null;
  if (dueNow && dueNow.invitee > 0) postings.push({ ...base, kind: 'referral', points: dueNow.invitee, reason: 'referral: first purchase' });

  let after = await postToLedger(trx, cardChanges, postings, {
    lifetimeSpendDelta: quote.payable,
    tier: quote.tierChanged ? quote.tierAfter : undefined,
    stamps: stampPostings(base, quote, rules),
    stampedAt: command.now,
  });
  if (quote.rewardsEarned > 0) {
    const rewardIds = await onStampRewardsEarned(trx, { programId: command.programId, cardId: card.id, count: quote.rewardsEarned, purchaseId: purchase.id });
    const rewardCoupon = rules.stamps?.reward.coupon;
    if (rewardCoupon) {
      await issueStampRewardCoupons(trx, cardChanges, { programId: command.programId, cardId: card.id, definitionId: rewardCoupon, rewardIds, actor: command.actor, now: command.now });
    }
  }
  // An unverified self-service card becomes real with its first completed purchase: its pending
  // bonuses are released now, after this purchase was priced, so they are spendable from the next
  // purchase on (a made-up card cannot pay with its own welcome bonus).
  if (!card.verified_at) {
    await verifyCard(trx, cardChanges, { card, rules, via: 'purchase', actor: command.actor, purchaseId: purchase.id });
  }
  // A plastic card claimed on the join page without a code: this purchase at the till confirms it
  // (enrollment/claim.ts). Only cards with a plastic number can have a claim, so other cards' purchases
  // pay no extra round trip; for those, one primary-key update that finds no open claim most times.
  if (card.external_number) await confirmClaimByPurchase(trx, command.programId, card.id);
  if (dueNow && referral) {
    await payInviter(trx, cardChanges, {
      referral,
      rules,
      invitee: card,
      inviteePoints: dueNow.invitee,
      actor: command.actor,
      purchaseId: purchase.id,
    });
  }
  if (!card.verified_at || dueNow) {
    const now = await trx.selectFrom('card').select(['balance', 'tier', 'lifetime_spend', 'pending_points']).where('id', '=', card.id).executeTakeFirstOrThrow();
    after = { ...after, balance: now.balance, tier: now.tier, lifetimeSpend: now.lifetime_spend, pendingPoints: now.pending_points };
  }
  const answer = purchaseAnswer(quote, purchase.id, after, plainPoints, coupon);
  await emitPurchaseCreated(trx, command, card.id, quote, answer, plainPoints);
  return answer;
}

/** What POST /purchases answers (and stores under its Idempotency-Key). */
function purchaseAnswer(
  quote: CheckQuote,
  purchaseId: string,
  after: { balance: number; tier: string; stamps: number },
  plainPoints: boolean,
  coupon: { code: string; discount: number } | null,
) {
  return {
    purchaseId,
    amount: quote.amount,
    redeemed: quote.redeemed,
    accrued: quote.accrued,
    payable: quote.payable,
    balance: after.balance,
    tier: after.tier,
    tierChanged: quote.tierChanged,
    ...(plainPoints
      ? {}
      : {
          mechanic: quote.mechanic,
          eligibleAmount: quote.eligibleAmount,
          discountPercent: quote.discountPercent,
          discount: quote.discount,
          stampsAdded: quote.stampsAdded,
          rewardsEarned: quote.rewardsEarned,
          stamps: after.stamps,
        }),
    ...(coupon ? { coupon: { code: coupon.code, discount: coupon.discount, checkAmount: quote.amount } } : {}),
  };
}

function emitPurchaseCreated(
  trx: Trx,
  command: PurchaseCommand,
  cardId: string,
  quote: CheckQuote,
  answer: { purchaseId: string; balance: number; tier: string },
  plainPoints: boolean,
) {
  return emitEvent(trx, {
    programId: command.programId,
    type: 'purchase.created',
    data: {
      purchaseId: answer.purchaseId,
      cardId,
      amount: quote.amount,
      redeemed: quote.redeemed,
      accrued: quote.accrued,
      payable: quote.payable,
      ...(plainPoints ? {} : { discount: quote.discount, stampsAdded: quote.stampsAdded, rewardsEarned: quote.rewardsEarned }),
      storeId: command.storeId ?? null,
      receiptId: command.receiptId ?? null,
      balance: answer.balance,
      tier: answer.tier,
      tierChanged: quote.tierChanged,
    },
  });
}

/** The card's state and the check, through the one pure function (purchase and quote alike). */
function priceCheck(
  card: Pick<CardRow, 'balance' | 'lifetime_spend' | 'tier' | 'stamps' | 'last_stamp_at'>,
  rules: LoyaltyRules,
  check: CheckCommand,
  couponDiscount = 0,
): CheckQuote {
  try {
    return quoteCheck({
      amount: check.amount,
      items: check.items,
      couponDiscount,
      redeemPoints: check.redeemPoints,
      balance: card.balance,
      lifetimeSpend: card.lifetime_spend,
      tierCode: card.tier,
      stamps: card.stamps,
      lastStampAt: card.last_stamp_at,
      now: check.now,
      rules,
    });
  } catch (error) {
    asProblem(error);
  }
}

/** The eligible part of the check a coupon is priced on (422 for a check the rules refuse). */
function eligibleCheckOrProblem(rules: LoyaltyRules, check: CheckCommand) {
  try {
    return eligibleCheck(check.amount, check.items, rules);
  } catch (error) {
    asProblem(error);
  }
}

function stampPostings(
  base: { programId: string; cardId: string; actor: string; purchaseId: string },
  quote: CheckQuote,
  rules: LoyaltyRules,
): StampPosting[] {
  const perReward = rules.stamps?.perReward ?? 0;
  const common = { programId: base.programId, cardId: base.cardId, actor: base.actor, purchaseId: base.purchaseId };
  return [
    { ...common, kind: 'expiry' as const, stamps: -quote.stampsExpired },
    { ...common, kind: 'stamp' as const, stamps: quote.stampsAdded },
    { ...common, kind: 'reward' as const, stamps: -quote.rewardsEarned * perReward },
  ].filter((posting) => posting.stamps !== 0);
}

/**
 * What a purchase with this check would do to the card now, writing nothing (the till asks before
 * it closes the check). The same function prices the purchase, so a purchase with the same input on
 * an unchanged card answers the same numbers. `coupons` is filled by the coupons module.
 */
export async function quoteForCard(executor: Executor, command: CheckCommand & { programId: string; cardId: string }) {
  const card = await findCardInProgram(executor, command.programId, command.cardId);
  if (!card) {
    await getProgramOr404(executor, command.programId);
    throw notFound('card');
  }
  if (card.status === 'erased') throw cardErased();
  if (card.status !== 'active') throw new AppError(422, 'card_blocked', 'This card is blocked');
  const program = await cachedProgramOr404(executor, command.programId);
  const rules = program.rules as LoyaltyRules;
  // Coupons: the one the till chose (priced as the purchase will price it), and every usable
  // coupon of the card this check could use, each with what the till would then charge.
  const eligible = eligibleCheckOrProblem(rules, command);
  const cardCoupons = await couponsForQuote(executor, command.programId, card.id, command.now);
  const chosen = command.couponCode
    ? await couponForPurchase(executor, { programId: command.programId, cardId: card.id, code: command.couponCode, check: eligible, now: command.now })
    : null;
  const quote = priceCheck(card, rules, command, chosen?.discount ?? 0);
  const coupons = applicableCoupons(eligible, cardCoupons, command.now).map((coupon) => ({
    code: coupon.code,
    title: coupon.title,
    discount: coupon.discount,
    payableAfter: priceCheck(card, rules, { ...command, redeemPoints: 0 }, coupon.discount).payable,
  }));
  return {
    cardId: card.id,
    mechanic: quote.mechanic,
    amount: quote.amount,
    eligibleAmount: quote.eligibleAmount,
    discountPercent: quote.discountPercent,
    discount: quote.discount,
    balance: card.balance,
    maxRedeemablePoints: quote.maxRedeemablePoints,
    redeemed: quote.redeemed,
    redeemedValue: quote.redeemedValue,
    payable: quote.payable,
    accrued: quote.accrued,
    accrualPercent: quote.accrualPercent,
    tier: card.tier,
    tierAfter: quote.tierAfter,
    tierChanged: quote.tierChanged,
    stamps: card.stamps,
    stampsExpired: quote.stampsExpired,
    stampsAdded: quote.stampsAdded,
    rewardsEarned: quote.rewardsEarned,
    stampsAfter: quote.stampsAfter,
    perReward: rules.stamps?.perReward ?? null,
    couponDiscount: quote.couponDiscount,
    coupons,
  };
}

/**
 * Refunds a purchase: exactly undoes it. The redeemed points come back; the accrued points are taken
 * back, and so is every bonus the purchase caused — the referral bonuses its first purchase paid
 * (the invitee's on this card, the inviter's on theirs) and the pending bonuses it released. What a
 * holder already spent cannot be taken back (balances never go below zero): it is reported as
 * `shortfall` (this card) and `referral.shortfall` (the inviter) and recorded on the purchase
 * (`refund_shortfall`, both together). Spend goes down, and the tier follows the program's refund
 * policy (`tierPolicy.downgradeOnRefund`).
 */
export async function refundPurchase(
  trx: Trx,
  cardChanges: CardChangeRecorder,
  // now: the moment of the refund, from the app clock like a purchase's (coupon validity, refunded_at).
  command: { programId: string; purchaseId: string; actor: string; idempotencyKey?: string; now: Date },
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
  // The holder is gone: a refund would move points on a card no one holds (docs/privacy.md).
  if (card.status === 'erased') throw cardErased();
  // Re-read under the card lock: a concurrent refund of the same purchase has finished by now.
  const current = await trx.selectFrom('purchase').select('status').where('id', '=', purchase.id).executeTakeFirstOrThrow();
  if (current.status === 'refunded') throw conflict('purchase_already_refunded', 'This purchase was already refunded');
  const rules = program.rules as LoyaltyRules;

  let quote;
  try {
    quote = quoteRefund({
      purchase: { payable: purchase.payable, redeemed: purchase.redeemed, accrued: purchase.accrued },
      balance: card.balance,
      lifetimeSpend: card.lifetime_spend,
      tierCode: card.tier,
      rules,
    });
  } catch (error) {
    asProblem(error);
  }

  // The bonuses this purchase caused on this card: ledger entries of the purchase that are bonuses
  // (the first-purchase referral, released welcome/referral bonuses of a self-service card).
  const bonuses = await trx
    .selectFrom('ledger_entry')
    .select(['kind', 'points'])
    .where('purchase_id', '=', purchase.id)
    .where('card_id', '=', card.id)
    .where('kind', 'in', ['welcome', 'referral'])
    .where('points', '>', 0)
    .orderBy('id')
    .execute();
  // What is left on the card after the redeemed points come back and the accrual goes.
  let available = card.balance + quote.pointsReturned - quote.pointsReversed;
  let bonusesReversed = 0;
  let bonusShortfall = 0;
  const base = { programId: command.programId, cardId: card.id, actor: command.actor, purchaseId: purchase.id, idempotencyKey: command.idempotencyKey, kind: 'reversal' as const };
  const postings: LedgerPosting[] = [
    { ...base, points: quote.pointsReturned, reason: 'refund: redeemed points returned' },
    { ...base, points: -quote.pointsReversed, reason: 'refund: accrued points taken back' },
  ];
  for (const bonus of bonuses) {
    const taken = Math.min(bonus.points, available);
    available -= taken;
    bonusesReversed += taken;
    bonusShortfall += bonus.points - taken;
    postings.push({ ...base, points: -taken, reason: `refund: ${bonus.kind} bonus taken back` });
  }

  // Stamps: the purchase's own 'stamp' and 'reward' entries are undone (not an expiry it applied:
  // those stamps had run out anyway), and the rewards it completed are revoked.
  let stampsReversal: { delta: number; shortfall: number; rewardsRevoked: number } = { delta: 0, shortfall: 0, rewardsRevoked: 0 };
  const stampPostingsOfRefund: StampPosting[] = [];
  if (purchase.stamps_added > 0 || purchase.rewards_earned > 0) {
    const entries = await trx
      .selectFrom('stamp_entry')
      .select(['kind', 'stamps'])
      .where('program_id', '=', command.programId)
      .where('purchase_id', '=', purchase.id)
      .where('kind', 'in', ['stamp', 'reward'])
      .execute();
    const added = entries.filter((e) => e.kind === 'stamp').reduce((sum, e) => sum + e.stamps, 0);
    const usedByRewards = -entries.filter((e) => e.kind === 'reward').reduce((sum, e) => sum + e.stamps, 0);
    const undo = quoteStampRefund({ added, usedByRewards, stamps: card.stamps });
    const rewardsRevoked = await revokeStampRewards(trx, { programId: command.programId, purchaseId: purchase.id });
    // Their coupons go too, unless already used (that purchase happened).
    await voidStampRewardCoupons(trx, { programId: command.programId, purchaseId: purchase.id, now: command.now });
    stampsReversal = { delta: undo.delta, shortfall: undo.shortfall, rewardsRevoked };
    if (undo.delta !== 0) {
      stampPostingsOfRefund.push({ programId: command.programId, cardId: card.id, actor: command.actor, purchaseId: purchase.id, kind: 'reversal', stamps: undo.delta });
    }
  }

  await trx.updateTable('purchase').set({ status: 'refunded', refunded_at: command.now }).where('id', '=', purchase.id).execute();
  // ---- coupons: the purchase's coupon is usable again while still valid (docs/coupons.md)
  const coupon = await reverseCouponRedemption(trx, { programId: command.programId, purchaseId: purchase.id, now: command.now });
  // ---- end coupons
  const after = await postToLedger(trx, cardChanges, postings, {
    lifetimeSpendDelta: quote.lifetimeSpendAfter - card.lifetime_spend,
    tier: quote.tierChanged ? quote.tierAfter : undefined,
    stamps: stampPostingsOfRefund,
  });

  // The inviter's side of a referral that this purchase paid.
  let referral: { inviterCardId: string; pointsReversed: number; shortfall: number } | null = null;
  const paid = await trx
    .selectFrom('referral')
    .selectAll()
    .where('purchase_id', '=', purchase.id)
    .where('status', '=', 'paid')
    .forUpdate()
    .executeTakeFirst();
  if (paid) {
    const inviter = await lockCardInProgram(trx, command.programId, paid.inviter_card_id);
    const taken = inviter ? Math.min(paid.inviter_points, inviter.balance) : 0;
    if (taken > 0) {
      await postToLedger(trx, cardChanges, [
        { ...base, cardId: paid.inviter_card_id, purchaseId: null, points: -taken, reason: `refund: referral bonus for ${card.number} taken back` },
      ]);
    }
    await trx.updateTable('referral').set({ status: 'reversed', reversed_at: sql<Date>`now()` }).where('invitee_card_id', '=', paid.invitee_card_id).execute();
    referral = { inviterCardId: paid.inviter_card_id, pointsReversed: taken, shortfall: paid.inviter_points - taken };
  }
  const shortfall = quote.shortfall + bonusShortfall;
  await trx
    .updateTable('purchase')
    .set({ refund_shortfall: shortfall + (referral?.shortfall ?? 0) })
    .where('id', '=', purchase.id)
    .execute();

  const pointsReversed = quote.pointsReversed + bonusesReversed;
  const hasStamps = mechanicOf(rules) === 'stamps' || purchase.stamps_added > 0 || purchase.rewards_earned > 0;
  await emitEvent(trx, {
    programId: command.programId,
    type: 'purchase.refunded',
    data: {
      purchaseId: purchase.id,
      cardId: card.id,
      pointsReturned: quote.pointsReturned,
      pointsReversed,
      bonusesReversed,
      shortfall,
      referral,
      balance: after.balance,
      tier: after.tier,
      tierChanged: quote.tierChanged,
      ...(hasStamps ? { stampsDelta: stampsReversal.delta, rewardsRevoked: stampsReversal.rewardsRevoked } : {}),
    },
  });
  return {
    purchaseId: purchase.id,
    status: 'refunded' as const,
    pointsReturned: quote.pointsReturned,
    pointsReversed,
    bonusesReversed,
    shortfall,
    referral,
    balance: after.balance,
    tier: after.tier,
    tierChanged: quote.tierChanged,
    // The stamps side only where there are stamps: a points refund answers what it always did.
    ...(hasStamps
      ? { stampsDelta: stampsReversal.delta, stampsShortfall: stampsReversal.shortfall, rewardsRevoked: stampsReversal.rewardsRevoked, stamps: after.stamps }
      : {}),
    ...(coupon ? { coupon } : {}),
  };
}
