import { sql, type Selectable } from 'kysely';
import type { Executor } from '../db/database.js';
import type { CardCouponTable, CouponDefinitionTable } from '../db/schema.js';

export type CouponDefinitionRow = Selectable<CouponDefinitionTable>;
export type CardCouponRow = Selectable<CardCouponTable>;

export function findDefinition(executor: Executor, programId: string, definitionId: string) {
  return executor.selectFrom('coupon_definitions').selectAll().where('program_id', '=', programId).where('id', '=', definitionId).executeTakeFirst();
}

export function listDefinitions(executor: Executor, programId: string, limit: number) {
  return executor
    .selectFrom('coupon_definitions')
    .selectAll()
    .where('program_id', '=', programId)
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** A card's coupons with their definitions' titles, newest first. */
export function listCardCoupons(executor: Executor, programId: string, cardId: string, limit: number) {
  return executor
    .selectFrom('card_coupons as c')
    .innerJoin('coupon_definitions as d', (join) => join.onRef('d.program_id', '=', 'c.program_id').onRef('d.id', '=', 'c.definition_id'))
    .selectAll('c')
    .select('d.title')
    .where('c.program_id', '=', programId)
    .where('c.card_id', '=', cardId)
    .orderBy('c.issued_at', 'desc')
    .orderBy('c.id')
    .limit(limit)
    .execute();
}

/** One coupon of a card by its code, with the terms of its definition (as they are now). */
export function findCardCouponWithTerms(executor: Executor, programId: string, cardId: string, code: string) {
  return executor
    .selectFrom('card_coupons as c')
    .innerJoin('coupon_definitions as d', (join) => join.onRef('d.program_id', '=', 'c.program_id').onRef('d.id', '=', 'c.definition_id'))
    .select(['c.id', 'c.code', 'c.card_id', 'c.status', 'c.expires_at', 'd.title', 'd.kind', 'd.percent', 'd.amount', 'd.sku', 'd.min_check', 'd.categories'])
    .where('c.program_id', '=', programId)
    .where('c.code', '=', code)
    .where('c.card_id', '=', cardId)
    .executeTakeFirst();
}

/** The card's usable coupons with their terms (for applicableCoupons: the quote). */
export function usableCouponsWithTerms(executor: Executor, programId: string, cardId: string, now: Date) {
  return executor
    .selectFrom('card_coupons as c')
    .innerJoin('coupon_definitions as d', (join) => join.onRef('d.program_id', '=', 'c.program_id').onRef('d.id', '=', 'c.definition_id'))
    .select(['c.code', 'c.status', 'c.expires_at', 'd.title', 'd.kind', 'd.percent', 'd.amount', 'd.sku', 'd.min_check', 'd.categories'])
    .where('c.program_id', '=', programId)
    .where('c.card_id', '=', cardId)
    .where('c.status', '=', 'issued')
    .where('c.expires_at', '>', now)
    .execute();
}

/**
 * Writes what the wallets show of these cards' coupons (`card.coupons`) from card_coupons, in the
 * caller's transaction: the usable ones (issued, not expired at `now`) and the one issued last. The
 * caller records the card change (update tag + wallet job) itself, or a ledger posting in the same
 * transaction does. One statement, whatever the number of cards.
 */
export async function refreshShownCoupons(executor: Executor, cardIds: readonly string[], now: Date): Promise<void> {
  if (cardIds.length === 0) return;
  await sql`
    UPDATE card SET coupons = jsonb_build_object(
      'active', coalesce((
        SELECT jsonb_agg(jsonb_build_object('code', cc.code, 'title', d.title,
            'expiresAt', to_char(cc.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ORDER BY cc.expires_at, cc.code)
        FROM card_coupons cc JOIN coupon_definitions d ON d.program_id = cc.program_id AND d.id = cc.definition_id
        WHERE cc.card_id = card.id AND cc.status = 'issued' AND cc.expires_at > ${now}::timestamptz
      ), '[]'::jsonb),
      'latest', (
        SELECT jsonb_build_object('code', cc.code, 'title', d.title)
        FROM card_coupons cc JOIN coupon_definitions d ON d.program_id = cc.program_id AND d.id = cc.definition_id
        WHERE cc.card_id = card.id
        ORDER BY cc.issued_at DESC, cc.id DESC
        LIMIT 1
      )
    )
    WHERE id = ANY(${[...cardIds]}::uuid[])
  `.execute(executor);
}

/**
 * Per definition: coupons issued (every status) and redeemed, for the cabinet's list. One grouped
 * query over the program's coupons; definitions without coupons are absent.
 */
export async function definitionCouponCounts(executor: Executor, programId: string): Promise<Map<string, { issued: number; redeemed: number }>> {
  const rows = await executor
    .selectFrom('card_coupons')
    .select((eb) => [
      'definition_id',
      eb.fn.countAll<string | number>().as('issued'),
      eb.fn.count<string | number>(sql`case when status = 'redeemed' then 1 end`).as('redeemed'),
    ])
    .where('program_id', '=', programId)
    .groupBy('definition_id')
    .execute();
  return new Map(rows.map((r) => [r.definition_id, { issued: Number(r.issued), redeemed: Number(r.redeemed) }]));
}

/** Definitions that can issue now (active, and a fixed validity not over): what a campaign or automation may choose. */
export function issuableDefinitions(executor: Executor, programId: string, now: Date, limit = 200) {
  return executor
    .selectFrom('coupon_definitions')
    .selectAll()
    .where('program_id', '=', programId)
    .where('active', '=', true)
    .where((eb) => eb.or([eb('valid_until', 'is', null), eb('valid_until', '>', now)]))
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(limit)
    .execute();
}
