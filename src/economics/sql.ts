/**
 * The economics statements over the raw tables, for a range of local days [first, last] of the
 * program's time zone. The rollup job stores their results for closed days and months; the report
 * runs the same statements live for what is not rolled up yet (today, this month), so a rolled-up
 * figure and a live one are the same statement's answer.
 *
 * Purchases count on the day they were made and refunds on the day they were refunded (a till's
 * Z-report does the same), so every figure of a closed day is final.
 */
import { sql, type RawBuilder } from 'kysely';

/** Start of a local day as an instant. */
export const localStart = (day: string, tz: string) => sql`(${day}::date::timestamp AT TIME ZONE ${tz})`;

/** Bonus kinds as bits of economics_card_month.bonus_kinds. */
export const BONUS_BITS = { welcome: 1, referral: 2, birthday: 4, campaign_bonus: 8, adjustment: 16 } as const;
export type BonusKind = keyof typeof BONUS_BITS;
export const BONUS_KINDS = Object.keys(BONUS_BITS) as BonusKind[];

/** `(VALUES ('welcome', 1), …)`: join it as `k(kind, bit)`. */
export function bonusValues() {
  return sql.raw(`VALUES ${Object.entries(BONUS_BITS)
    .map(([kind, bit]) => `('${kind}', ${bit})`)
    .join(', ')}`);
}

export interface SalesDayRow {
  day: string;
  cards_enrolled: number;
  purchases: number;
  amount: number;
  paid: number;
  refunds: number;
  refunded_amount: number;
  refunded_paid: number;
  checks: number;
  check_amount: number;
}

/** Per local day: cards enrolled, purchases made, refunds made, checks of non-members. */
export function salesDays(programId: string, tz: string, first: string, last: string): RawBuilder<SalesDayRow> {
  const start = localStart(first, tz);
  const end = sql`((${last}::date + 1)::timestamp AT TIME ZONE ${tz})`;
  const day = (column: string) => sql`to_char((${sql.ref(column)} AT TIME ZONE ${tz})::date, 'YYYY-MM-DD')`;
  return sql<SalesDayRow>`
    SELECT day, sum(cards_enrolled)::int AS cards_enrolled, sum(purchases)::int AS purchases, sum(amount)::bigint AS amount,
      sum(paid)::bigint AS paid, sum(refunds)::int AS refunds, sum(refunded_amount)::bigint AS refunded_amount,
      sum(refunded_paid)::bigint AS refunded_paid, sum(checks)::int AS checks, sum(check_amount)::bigint AS check_amount
    FROM (
      SELECT ${day('created_at')} AS day, count(*) AS cards_enrolled, 0 AS purchases, 0 AS amount, 0 AS paid, 0 AS refunds,
        0 AS refunded_amount, 0 AS refunded_paid, 0 AS checks, 0 AS check_amount
      FROM card WHERE program_id = ${programId} AND created_at >= ${start} AND created_at < ${end} GROUP BY 1
      UNION ALL
      SELECT ${day('created_at')}, 0, count(*), sum(amount), sum(payable), 0, 0, 0, 0, 0
      FROM purchase WHERE program_id = ${programId} AND created_at >= ${start} AND created_at < ${end} GROUP BY 1
      UNION ALL
      SELECT ${day('refunded_at')}, 0, 0, 0, 0, count(*), sum(amount), sum(payable), 0, 0
      FROM purchase WHERE program_id = ${programId} AND refunded_at >= ${start} AND refunded_at < ${end} GROUP BY 1
      UNION ALL
      SELECT ${day('created_at')}, 0, 0, 0, 0, 0, 0, 0, count(*), sum(amount)
      FROM anonymous_check WHERE program_id = ${programId} AND created_at >= ${start} AND created_at < ${end} GROUP BY 1
    ) x
    GROUP BY day`;
}

export interface LedgerDayRow {
  day: string;
  kind: string;
  points_in: number;
  points_out: number;
}

/** Per local day and ledger kind: the sum of positive entries and the sum of negative ones. */
export function ledgerDays(programId: string, tz: string, first: string, last: string): RawBuilder<LedgerDayRow> {
  return sql<LedgerDayRow>`
    SELECT to_char((created_at AT TIME ZONE ${tz})::date, 'YYYY-MM-DD') AS day, kind,
      coalesce(sum(points) FILTER (WHERE points > 0), 0)::bigint AS points_in,
      coalesce(sum(points) FILTER (WHERE points < 0), 0)::bigint AS points_out
    FROM ledger_entry
    WHERE program_id = ${programId} AND created_at >= ${localStart(first, tz)} AND created_at < ((${last}::date + 1)::timestamp AT TIME ZONE ${tz})
    GROUP BY 1, 2`;
}

/** Net points of the ledger in [first, last] (null first: since the beginning). */
export function ledgerNet(programId: string, tz: string, first: string | null, last: string): RawBuilder<{ points: number }> {
  return sql<{ points: number }>`
    SELECT coalesce(sum(points), 0)::bigint AS points FROM ledger_entry
    WHERE program_id = ${programId} ${first ? sql`AND created_at >= ${localStart(first, tz)}` : sql``}
      AND created_at < ((${last}::date + 1)::timestamp AT TIME ZONE ${tz})`;
}

export interface CardMonthRow {
  month: string;
  card_id: string;
  purchases: number;
  amount: number;
  paid: number;
  refunds: number;
  refunded_amount: number;
  refunded_paid: number;
  bonus_kinds: number;
}

/**
 * Per card and local month: purchases made, refunds made and the kinds of bonus points received
 * (positive entries) in [first, last].
 */
export function cardMonths(programId: string, tz: string, first: string, last: string): RawBuilder<CardMonthRow> {
  const start = localStart(first, tz);
  const end = sql`((${last}::date + 1)::timestamp AT TIME ZONE ${tz})`;
  const month = (column: string) => sql`to_char(date_trunc('month', ${sql.ref(column)} AT TIME ZONE ${tz}), 'YYYY-MM-DD')`;
  const bits = sql.raw(
    `CASE kind ${Object.entries(BONUS_BITS)
      .map(([kind, bit]) => `WHEN '${kind}' THEN ${bit}`)
      .join(' ')} END`,
  );
  const kinds = sql.join(BONUS_KINDS.map((k) => sql.lit(k)));
  return sql<CardMonthRow>`
    SELECT month, card_id, sum(purchases)::int AS purchases, sum(amount)::bigint AS amount, sum(paid)::bigint AS paid,
      sum(refunds)::int AS refunds, sum(refunded_amount)::bigint AS refunded_amount, sum(refunded_paid)::bigint AS refunded_paid,
      bit_or(bonus_kinds)::int AS bonus_kinds
    FROM (
      SELECT ${month('created_at')} AS month, card_id, 1 AS purchases, amount, payable AS paid, 0 AS refunds,
        0::bigint AS refunded_amount, 0::bigint AS refunded_paid, 0 AS bonus_kinds
      FROM purchase WHERE program_id = ${programId} AND created_at >= ${start} AND created_at < ${end}
      UNION ALL
      SELECT ${month('refunded_at')}, card_id, 0, 0, 0, 1, amount, payable, 0
      FROM purchase WHERE program_id = ${programId} AND refunded_at >= ${start} AND refunded_at < ${end}
      UNION ALL
      SELECT ${month('created_at')}, card_id, 0, 0, 0, 0, 0, 0, ${bits}
      FROM ledger_entry
      WHERE program_id = ${programId} AND created_at >= ${start} AND created_at < ${end} AND points > 0 AND kind IN (${kinds})
    ) x
    GROUP BY month, card_id`;
}
