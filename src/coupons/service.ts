/**
 * Coupons (issue #17, item 3): definitions per program, coupons issued to cards (by an admin, a
 * campaign, an automation or the stamps mechanic), single use at the till, given back by a refund.
 *
 * The till's purchase calls two functions of this module inside its transaction, after it locked
 * the card: `couponForPurchase` (is the code this card's, usable, and what does it take off this
 * check?) before pricing, and `redeemCouponInPurchase` once the purchase row exists: one
 * conditional UPDATE … WHERE status = 'issued', so of two purchases racing for one coupon exactly
 * one redeems it and the other answers 409 `coupon_already_used`. A refund calls
 * `reverseCouponRedemption`.
 *
 * What the wallets show lives on the card row (`card.coupons`, repository.refreshShownCoupons), kept
 * in the transaction that changes a coupon; every such change goes to the wallets through the one
 * update path (the recorder, or the ledger posting of the same purchase).
 */
import { AppError, cardErased, conflict, notFound } from '../http/errors.js';
import type { Executor } from '../db/database.js';
import type { CardCouponSource } from '../db/schema.js';
import type { CardChangeRecorder } from '../updates/card-changes.js';
import { couponDiscount, couponExpiry, isUsable, newCouponCode, normalizeCouponCode, type CardCouponForQuote, type Check, type CouponTerms } from './logic.js';
import {
  findCardCouponWithTerms,
  findDefinition,
  refreshShownCoupons,
  usableCouponsWithTerms,
  type CardCouponRow,
  type CouponDefinitionRow,
} from './repository.js';
import type { CardCouponDto, CouponDefinitionDto, CreateCouponDefinition, UpdateCouponDefinition } from './schemas.js';

/** A definition in the shape the rules below check (the API's names). */
interface DefinitionFields {
  title: { ru: string; en: string };
  kind: 'percent' | 'amount' | 'free_item';
  percent: number | null;
  amount: number | null;
  sku: string | null;
  minCheck: number;
  categories: string[] | null;
  validDays: number | null;
  validUntil: string | null;
  active: boolean;
}

const invalid = (message: string) => new AppError(422, 'coupon_definition_invalid', message);

/** The definition as a whole: the kind's value field and no other, exactly one validity. */
function checkDefinition(d: DefinitionFields) {
  const values = { percent: d.percent, amount: d.amount, free_item: d.sku } as const;
  const field = { percent: 'percent', amount: 'amount', free_item: 'sku' } as const;
  if (values[d.kind] === null) throw invalid(`A ${d.kind} coupon needs ${field[d.kind]}`);
  for (const kind of ['percent', 'amount', 'free_item'] as const) {
    if (kind !== d.kind && values[kind] !== null) throw invalid(`${field[kind]} belongs to ${kind} coupons, not ${d.kind}`);
  }
  if (d.kind === 'free_item' && d.categories !== null) throw invalid('A free-item coupon names its item (sku); categories apply to percent and amount coupons');
  if ((d.validDays === null) === (d.validUntil === null)) throw invalid('Give exactly one of validDays and validUntil');
}

export async function createDefinition(executor: Executor, programId: string, input: CreateCouponDefinition): Promise<CouponDefinitionRow> {
  const fields: DefinitionFields = {
    title: input.title,
    kind: input.kind,
    percent: input.percent ?? null,
    amount: input.amount ?? null,
    sku: input.sku ?? null,
    minCheck: input.minCheck ?? 0,
    categories: input.categories ?? null,
    validDays: input.validDays ?? null,
    validUntil: input.validUntil ?? null,
    active: input.active ?? true,
  };
  checkDefinition(fields);
  return executor
    .insertInto('coupon_definitions')
    .values({ program_id: programId, ...columnsOf(fields) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

function columnsOf(d: DefinitionFields) {
  return {
    title: JSON.stringify(d.title),
    kind: d.kind,
    percent: d.percent,
    amount: d.amount,
    sku: d.sku,
    min_check: d.minCheck,
    categories: d.categories === null ? null : JSON.stringify(d.categories),
    valid_days: d.validDays,
    valid_until: d.validUntil,
    active: d.active,
  };
}

export async function updateDefinition(executor: Executor, programId: string, definitionId: string, patch: UpdateCouponDefinition): Promise<CouponDefinitionRow> {
  const row = await findDefinition(executor, programId, definitionId);
  if (!row) throw notFound('coupon_definition', 'Coupon definition not found');
  const current = definitionDto(row);
  const next: DefinitionFields = {
    title: patch.title ?? current.title,
    kind: patch.kind ?? (current.kind as DefinitionFields['kind']),
    // A new kind drops the old kind's value field unless the patch sets it again.
    percent: patch.percent ?? (patch.kind ? null : current.percent),
    amount: patch.amount ?? (patch.kind ? null : current.amount),
    sku: patch.sku ?? (patch.kind ? null : current.sku),
    minCheck: patch.minCheck ?? current.minCheck,
    categories: patch.categories === undefined ? current.categories : patch.categories,
    // One validity replaces the other.
    validDays: patch.validDays ?? (patch.validUntil !== undefined ? null : current.validDays),
    validUntil: patch.validUntil ?? (patch.validDays !== undefined ? null : current.validUntil),
    active: patch.active ?? current.active,
  };
  checkDefinition(next);
  return executor
    .updateTable('coupon_definitions')
    .set({ ...columnsOf(next), updated_at: new Date() })
    .where('program_id', '=', programId)
    .where('id', '=', definitionId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function definitionDto(row: CouponDefinitionRow): CouponDefinitionDto {
  return {
    id: row.id,
    title: row.title,
    kind: row.kind,
    percent: row.percent,
    amount: row.amount === null ? null : Number(row.amount),
    sku: row.sku,
    minCheck: Number(row.min_check),
    categories: row.categories,
    validDays: row.valid_days,
    validUntil: row.valid_until?.toISOString() ?? null,
    active: row.active,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** An issued coupon past its expiry reads `expired` (the row is rewritten only when something else touches it). */
export function cardCouponDto(row: CardCouponRow & { title: { ru: string; en: string } }, now: Date): CardCouponDto {
  const status = row.status === 'issued' && row.expires_at.getTime() <= now.getTime() ? 'expired' : row.status;
  return {
    id: row.id,
    code: row.code,
    definitionId: row.definition_id,
    title: row.title,
    status,
    source: row.source,
    issuedAt: row.issued_at.toISOString(),
    expiresAt: row.expires_at.toISOString(),
    redeemedAt: row.redeemed_at?.toISOString() ?? null,
    redeemedPurchaseId: row.redeemed_purchase_id,
    discount: row.discount === null ? null : Number(row.discount),
    campaignId: row.campaign_id,
  };
}

const termsOf = (row: Pick<CouponDefinitionRow, 'kind' | 'percent' | 'amount' | 'sku' | 'min_check' | 'categories'>): CouponTerms => ({
  kind: row.kind,
  percent: row.percent,
  amount: row.amount === null ? null : Number(row.amount),
  sku: row.sku,
  minCheck: Number(row.min_check),
  categories: row.categories,
});

/** A definition that can issue now, and the expiry its coupon gets; 404/422 otherwise. */
async function issuableDefinition(executor: Executor, programId: string, definitionId: string, now: Date) {
  const definition = await findDefinition(executor, programId, definitionId);
  if (!definition) throw notFound('coupon_definition', 'Coupon definition not found');
  if (!definition.active) throw new AppError(422, 'coupon_definition_inactive', 'This coupon definition is switched off');
  const expiresAt = couponExpiry({ validDays: definition.valid_days, validUntil: definition.valid_until }, now);
  if (expiresAt.getTime() <= now.getTime()) throw new AppError(422, 'coupon_definition_expired', 'Coupons of this definition are no longer valid');
  return { definition, expiresAt };
}

/**
 * A campaign or automation that hands out coupons names a definition of its program that can issue
 * now: 422 coupon_definition_not_found / coupon_definition_inactive / coupon_definition_expired.
 * (Should it be switched off before the campaign runs, the campaign goes without coupons.)
 */
export async function checkCouponDefinition(executor: Executor, programId: string, definitionId: string, now: Date): Promise<void> {
  try {
    await issuableDefinition(executor, programId, definitionId, now);
  } catch (error) {
    if (error instanceof AppError && error.status === 404) throw new AppError(422, 'coupon_definition_not_found', 'No such coupon definition in this program');
    throw error;
  }
}

const CODE_ATTEMPTS = 5;

export interface IssueCommand {
  programId: string;
  cardId: string;
  definitionId: string;
  source: CardCouponSource;
  actor: string;
  now: Date;
}

/**
 * Issues one coupon to one card, in the caller's transaction, and records the card change (the pass
 * shows it, with a lock-screen message; the Google object lists it). The stamps mechanic calls this
 * with source 'stamps'. 404 for an unknown card or definition, 410 for an erased card, 422 for a
 * blocked card or a definition that is switched off or over.
 */
export async function issueCoupon(trx: Executor, cardChanges: CardChangeRecorder, command: IssueCommand): Promise<CardCouponDto> {
  const card = await trx.selectFrom('card').select(['id', 'status']).where('id', '=', command.cardId).where('program_id', '=', command.programId).executeTakeFirst();
  if (!card) throw notFound('card');
  if (card.status === 'erased') throw cardErased();
  if (card.status !== 'active') throw new AppError(422, 'card_blocked', 'This card is blocked');
  const { definition, expiresAt } = await issuableDefinition(trx, command.programId, command.definitionId, command.now);
  let row: CardCouponRow | undefined;
  // A fresh code collides with one of the program's (about 2^39 possible) only by bad luck; then
  // another code. ON CONFLICT keeps the transaction usable (a unique violation would abort it).
  for (let attempt = 0; !row && attempt < CODE_ATTEMPTS; attempt++) {
    row = await trx
      .insertInto('card_coupons')
      .values({
        program_id: command.programId,
        card_id: card.id,
        definition_id: definition.id,
        code: newCouponCode(),
        issued_at: command.now,
        expires_at: expiresAt,
        source: command.source,
        actor: command.actor,
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
  }
  if (!row) throw new Error('No free coupon code after several attempts');
  await refreshShownCoupons(trx, [card.id], command.now);
  await cardChanges.record(trx, [card.id]);
  return cardCouponDto({ ...row, title: definition.title }, command.now);
}

/**
 * A campaign's (or automation's) coupons: one per card of a chunk, in the chunk's transaction. The
 * caller records the card change for these cards (the campaign's own update does). A definition
 * that is gone, switched off or over issues nothing (the message still goes); a retried chunk
 * issues nothing twice (unique per campaign and card). Returns how many were issued.
 */
export async function issueCouponsToCards(
  trx: Executor,
  command: { programId: string; definitionId: string; cardIds: readonly string[]; source: 'campaign' | 'automation'; campaignId: string; actor: string; now: Date },
): Promise<number> {
  if (command.cardIds.length === 0) return 0;
  let expiresAt: Date;
  let definitionId: string;
  try {
    ({ expiresAt, definition: { id: definitionId } } = await issuableDefinition(trx, command.programId, command.definitionId, command.now));
  } catch (error) {
    if (error instanceof AppError) return 0;
    throw error;
  }
  let missing = [...command.cardIds];
  let issued = 0;
  for (let attempt = 0; missing.length > 0 && attempt < CODE_ATTEMPTS; attempt++) {
    const rows = await trx
      .insertInto('card_coupons')
      .values(
        missing.map((cardId) => ({
          program_id: command.programId,
          card_id: cardId,
          definition_id: definitionId,
          code: newCouponCode(),
          issued_at: command.now,
          expires_at: expiresAt,
          source: command.source,
          campaign_id: command.campaignId,
          actor: command.actor,
        })),
      )
      .onConflict((oc) => oc.doNothing())
      .returning('card_id')
      .execute();
    issued += rows.length;
    // Skipped rows: the card has this campaign's coupon already (a retried chunk), or its code collided.
    const have = await trx
      .selectFrom('card_coupons')
      .select('card_id')
      .where('program_id', '=', command.programId)
      .where('campaign_id', '=', command.campaignId)
      .where('card_id', 'in', missing)
      .execute();
    const done = new Set(have.map((r) => r.card_id));
    missing = missing.filter((id) => !done.has(id));
  }
  await refreshShownCoupons(trx, command.cardIds, command.now);
  return issued;
}

/** The coupon a purchase will redeem, priced for its check. */
export interface PurchaseCoupon {
  id: string;
  code: string;
  discount: number;
  checkAmount: number;
}

/**
 * Checks a coupon code for a purchase on this card (whose row the caller has locked) and prices it:
 * 404 `coupon_not_found` (unknown, or another card's), 409 `coupon_already_used`, 422
 * `coupon_expired` / `coupon_void` and the refusals of `couponDiscount` (minimum check, categories,
 * item). Writes nothing.
 */
export async function couponForPurchase(
  trx: Executor,
  input: { programId: string; cardId: string; code: string; check: Check; now: Date },
): Promise<PurchaseCoupon> {
  const coupon = await findCardCouponWithTerms(trx, input.programId, input.cardId, normalizeCouponCode(input.code));
  if (!coupon) throw notFound('coupon', 'No such coupon on this card');
  if (coupon.status === 'redeemed') throw conflict('coupon_already_used', 'This coupon was already used');
  if (coupon.status === 'void') throw new AppError(422, 'coupon_void', 'This coupon was cancelled');
  if (!isUsable({ status: coupon.status, expiresAt: coupon.expires_at }, input.now)) {
    throw new AppError(422, 'coupon_expired', `This coupon expired at ${coupon.expires_at.toISOString()}`, { expiresAt: coupon.expires_at.toISOString() });
  }
  const priced = couponDiscount(termsOf(coupon), input.check);
  if (!priced.ok) throw new AppError(422, priced.code, priced.message, priced.details);
  return { id: coupon.id, code: coupon.code, discount: priced.discount, checkAmount: input.check.amount };
}

/**
 * Redeems the coupon for the purchase: ONE conditional UPDATE (status 'issued' → 'redeemed'). Of
 * two transactions redeeming one coupon, the second waits for the first's row lock and then finds
 * the status changed: it updates nothing and answers 409 `coupon_already_used`, and its whole
 * purchase rolls back. The card's shown coupons follow; the purchase's ledger posting in the same
 * transaction records the card change.
 */
export async function redeemCouponInPurchase(trx: Executor, input: { programId: string; cardId: string; coupon: PurchaseCoupon; purchaseId: string; now: Date }) {
  const updated = await trx
    .updateTable('card_coupons')
    .set({ status: 'redeemed', redeemed_purchase_id: input.purchaseId, redeemed_at: input.now, discount: input.coupon.discount })
    .where('program_id', '=', input.programId)
    .where('id', '=', input.coupon.id)
    .where('status', '=', 'issued')
    .where('expires_at', '>', input.now)
    .returning('id')
    .executeTakeFirst();
  if (!updated) throw conflict('coupon_already_used', 'This coupon was already used');
  await refreshShownCoupons(trx, [input.cardId], input.now);
}

/**
 * A refund gives the purchase's coupon back: usable again ('issued') while its validity lasts,
 * 'expired' when it ended meanwhile. Its expiry is not extended. The refund's ledger posting in
 * the same transaction records the card change. Returns null when the purchase used no coupon.
 */
export async function reverseCouponRedemption(trx: Executor, input: { programId: string; purchaseId: string; now: Date }) {
  const coupon = await trx
    .selectFrom('card_coupons')
    .select(['id', 'code', 'card_id', 'expires_at'])
    .where('program_id', '=', input.programId)
    .where('redeemed_purchase_id', '=', input.purchaseId)
    .forUpdate()
    .executeTakeFirst();
  if (!coupon) return null;
  const status = coupon.expires_at.getTime() > input.now.getTime() ? ('issued' as const) : ('expired' as const);
  await trx
    .updateTable('card_coupons')
    .set({ status, redeemed_purchase_id: null, redeemed_at: null, discount: null })
    .where('program_id', '=', input.programId)
    .where('id', '=', coupon.id)
    .execute();
  await refreshShownCoupons(trx, [coupon.card_id], input.now);
  return { code: coupon.code, status };
}

/** The card's usable coupons with their terms, for `applicableCoupons` (the quote endpoint). */
export async function couponsForQuote(executor: Executor, programId: string, cardId: string, now: Date): Promise<CardCouponForQuote[]> {
  const rows = await usableCouponsWithTerms(executor, programId, cardId, now);
  return rows.map((row) => ({ code: row.code, title: row.title, status: row.status, expiresAt: row.expires_at, terms: termsOf(row) }));
}

/**
 * The stamps mechanic's rewards (issue #17): each reward a purchase earned gets one coupon of the
 * program's reward definition (`rules.stamps.reward.coupon`), in the purchase's transaction, linked
 * to its `stamp_rewards` row so a refund of that purchase can take it back. A definition that is
 * gone or switched off does not fail the purchase: the reward stays recorded without a coupon (the
 * till and the history show it) and the owner fixes the definition.
 */
export async function issueStampRewardCoupons(
  trx: Executor,
  cardChanges: CardChangeRecorder,
  command: { programId: string; cardId: string; definitionId: string; rewardIds: readonly string[]; actor: string; now: Date },
): Promise<string[]> {
  const codes: string[] = [];
  for (const rewardId of command.rewardIds) {
    let issued: CardCouponDto;
    try {
      issued = await issueCoupon(trx, cardChanges, { programId: command.programId, cardId: command.cardId, definitionId: command.definitionId, source: 'stamps', actor: command.actor, now: command.now });
    } catch (error) {
      if (error instanceof AppError) return codes;
      throw error;
    }
    await trx
      .updateTable('stamp_rewards')
      .set({ coupon_id: issued.id })
      .where('program_id', '=', command.programId)
      .where('id', '=', rewardId)
      .execute();
    codes.push(issued.code);
  }
  return codes;
}

/**
 * A refund of the purchase that earned stamp rewards voids their coupons that are still unused (a
 * coupon already redeemed stays redeemed: that purchase happened). Returns how many were voided.
 */
export async function voidStampRewardCoupons(trx: Executor, input: { programId: string; purchaseId: string; now: Date }): Promise<number> {
  const voided = await trx
    .updateTable('card_coupons')
    .set({ status: 'void' })
    .where('program_id', '=', input.programId)
    .where('status', '=', 'issued')
    .where('id', 'in', (eb) =>
      eb.selectFrom('stamp_rewards').select('coupon_id').where('program_id', '=', input.programId).where('purchase_id', '=', input.purchaseId).where('coupon_id', 'is not', null),
    )
    .returning('card_id')
    .execute();
  if (voided.length > 0) await refreshShownCoupons(trx, [...new Set(voided.map((row) => row.card_id))], input.now);
  return voided.length;
}
