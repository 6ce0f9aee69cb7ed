/**
 * The economics report behind `GET /api/v1/economics` and the cabinet's «Экономика» screen. Every
 * figure and formula is described in docs/economics.md. In short:
 *
 * - liability = outstanding (spendable) points × point value, at the end of each bucket: the sum of
 *   the whole ledger up to that moment (the cards' balances are its cache);
 * - points issued / redeemed / expired per bucket from the ledger, by the day an entry was written;
 * - members' sales from purchases (on the day they were made) and refunds (on the day they were
 *   refunded), non-members' checks from `anonymous_check`;
 * - buyers, repeat buyers, the revenue of the cards that got a bonus: per card over the period;
 * - cohorts: per enrolment month, the cards that bought in each month since, and the money they paid;
 * - CLTV by tier: lifetime spend per card of the tier now.
 *
 * Closed days and months come from the rollup tables (src/economics/rollup.ts) and the rest from the
 * raw tables with the same statements (src/economics/sql.ts), all in one REPEATABLE READ snapshot.
 */
import { performance } from 'node:perf_hooks';
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.js';
import type { Database, ProgramRow } from '../db/schema.js';
import { databaseTimeZone } from '../enrollment/stats.js';
import type { LoyaltyRules } from '../loyalty/rules.js';
import { addDays, addMonths, buckets, monthStart, monthsOf, type Period } from './period.js';
import { rollupState, type RollupState } from './rollup.js';
import type { Economics } from './schemas.js';
import { BONUS_BITS, BONUS_KINDS, bonusValues, cardMonths, ledgerDays, ledgerNet, salesDays, type LedgerDayRow, type SalesDayRow } from './sql.js';

type Trx = Transaction<Database>;

const rate = (numerator: number, denominator: number): number | null =>
  denominator === 0 ? null : Math.round((numerator / denominator) * 10_000) / 10_000;
const ratio = (numerator: number, denominator: number): number | null => (denominator === 0 ? null : Math.round(numerator / denominator));

/** A range of local days that the rollup covers, and the ranges to compute live. */
interface Split {
  rolled: { first: string; last: string } | null;
  live: Array<{ first: string; last: string }>;
}

/** Days [first, last]: rolled up through `through` (inclusive), the rest live. */
function splitDays(first: string, last: string, through: string | null): Split {
  if (!through || through < first) return { rolled: null, live: [{ first, last }] };
  if (through >= last) return { rolled: { first, last }, live: [] };
  return { rolled: { first, last: through }, live: [{ first: addDays(through, 1), last }] };
}

async function salesRows(trx: Trx, programId: string, tz: string, state: RollupState, first: string, last: string): Promise<SalesDayRow[]> {
  const split = splitDays(first, last, state.daysThrough);
  const rows: SalesDayRow[] = [];
  if (split.rolled) {
    const { rows: stored } = await sql<SalesDayRow>`
      SELECT to_char(day, 'YYYY-MM-DD') AS day, cards_enrolled, purchases, amount, paid, refunds, refunded_amount, refunded_paid, checks, check_amount
      FROM economics_day WHERE program_id = ${programId} AND day BETWEEN ${split.rolled.first}::date AND ${split.rolled.last}::date`.execute(trx);
    rows.push(...stored);
  }
  for (const range of split.live) rows.push(...(await salesDays(programId, tz, range.first, range.last).execute(trx)).rows);
  return rows;
}

async function ledgerRows(trx: Trx, programId: string, tz: string, state: RollupState, first: string, last: string): Promise<LedgerDayRow[]> {
  const split = splitDays(first, last, state.daysThrough);
  const rows: LedgerDayRow[] = [];
  if (split.rolled) {
    const { rows: stored } = await sql<LedgerDayRow>`
      SELECT to_char(day, 'YYYY-MM-DD') AS day, kind, points_in, points_out
      FROM economics_ledger_day WHERE program_id = ${programId} AND day BETWEEN ${split.rolled.first}::date AND ${split.rolled.last}::date`.execute(trx);
    rows.push(...stored);
  }
  for (const range of split.live) rows.push(...(await ledgerDays(programId, tz, range.first, range.last).execute(trx)).rows);
  return rows;
}

/** Outstanding points at the end of `day` (the whole ledger up to then). */
async function outstandingAt(trx: Trx, programId: string, tz: string, state: RollupState, day: string): Promise<number> {
  let points = 0;
  const through = state.daysThrough;
  if (through) {
    const { rows } = await sql<{ points: number }>`
      SELECT coalesce(sum(points_in + points_out), 0)::bigint AS points FROM economics_ledger_day
      WHERE program_id = ${programId} AND day <= ${through < day ? through : day}::date`.execute(trx);
    points += Number(rows[0]?.points ?? 0);
  }
  if (!through || through < day) {
    const { rows } = await ledgerNet(programId, tz, through ? addDays(through, 1) : null, day).execute(trx);
    points += Number(rows[0]?.points ?? 0);
  }
  return points;
}

interface PointsTally {
  issued: number;
  redeemed: number;
  returned: number;
  reversed: number;
  expired: number;
  adjustedOut: number;
  net: number;
  byKind: Record<string, number>;
}

function emptyPoints(): PointsTally {
  return { issued: 0, redeemed: 0, returned: 0, reversed: 0, expired: 0, adjustedOut: 0, net: 0, byKind: {} };
}

/**
 * Classifies a ledger day row. Every kind's positive entries are points granted (issued) except
 * the positive reversals of a refund (redeemed points given back); negative entries are
 * redemptions, reversals (granted points taken back by a refund), expiries, or adjustments out.
 * Future kinds fall in the same two halves: granted when positive, adjusted out when negative.
 */
function addLedger(t: PointsTally, row: LedgerDayRow) {
  const pin = Number(row.points_in);
  const pout = -Number(row.points_out);
  t.net += pin - pout;
  if (row.kind === 'reversal') {
    t.returned += pin;
    t.reversed += pout;
    return;
  }
  if (pin > 0) {
    t.issued += pin;
    t.byKind[row.kind] = (t.byKind[row.kind] ?? 0) + pin;
  }
  if (row.kind === 'redemption') t.redeemed += pout;
  else if (row.kind === 'expiry') t.expired += pout;
  else t.adjustedOut += pout;
}

interface SalesTally {
  purchases: number;
  amount: number;
  paid: number;
  refunds: number;
  refundedAmount: number;
  refundedPaid: number;
  checks: number;
  checkAmount: number;
  cardsEnrolled: number;
}

function emptySales(): SalesTally {
  return { purchases: 0, amount: 0, paid: 0, refunds: 0, refundedAmount: 0, refundedPaid: 0, checks: 0, checkAmount: 0, cardsEnrolled: 0 };
}

function addSales(t: SalesTally, row: SalesDayRow) {
  t.purchases += Number(row.purchases);
  t.amount += Number(row.amount);
  t.paid += Number(row.paid);
  t.refunds += Number(row.refunds);
  t.refundedAmount += Number(row.refunded_amount);
  t.refundedPaid += Number(row.refunded_paid);
  t.checks += Number(row.checks);
  t.checkAmount += Number(row.check_amount);
  t.cardsEnrolled += Number(row.cards_enrolled);
}

/** Members' share of revenue; unknown without non-member checks, or when refunds outweigh sales. */
function memberShare(s: SalesTally): number | null {
  const revenue = s.amount - s.refundedAmount;
  return s.checks === 0 || revenue < 0 ? null : rate(revenue, revenue + s.checkAmount);
}

interface MonthFigures {
  activeCards: number;
  newBuyers: number;
  purchases: number;
  everBuyers: number;
  repeatBuyers: number;
}

interface CohortCell {
  cohort: string;
  month: string;
  active: number;
  paid: number;
}

interface BonusCell {
  month: string;
  kind: string;
  cards: number;
  paid: number;
}

interface Monthly {
  months: Map<string, MonthFigures>;
  cohorts: CohortCell[];
  bonus: BonusCell[];
}

/**
 * Per-member figures of whole calendar months [firstMonth, lastMonth]: closed months from their
 * rollups; open months (after `monthsThrough`) from the month-so-far rows per card plus the raw
 * days after `daysThrough`, in one statement.
 */
async function monthly(trx: Trx, programId: string, tz: string, state: RollupState, firstMonth: string, lastMonth: string, cohortFrom: string, cohortTo: string): Promise<Monthly> {
  const result: Monthly = { months: new Map(), cohorts: [], bonus: [] };
  const closedTo = state.monthsThrough && state.monthsThrough < lastMonth ? state.monthsThrough : lastMonth;
  if (state.monthsThrough && state.monthsThrough >= firstMonth) {
    const { rows: months } = await sql<{ month: string } & Record<'active_cards' | 'new_buyers' | 'purchases' | 'ever_buyers' | 'repeat_buyers', number>>`
      SELECT to_char(month, 'YYYY-MM-DD') AS month, active_cards, new_buyers, purchases, ever_buyers, repeat_buyers
      FROM economics_month WHERE program_id = ${programId} AND month BETWEEN ${firstMonth}::date AND ${closedTo}::date`.execute(trx);
    for (const m of months) {
      result.months.set(m.month, {
        activeCards: Number(m.active_cards),
        newBuyers: Number(m.new_buyers),
        purchases: Number(m.purchases),
        everBuyers: Number(m.ever_buyers),
        repeatBuyers: Number(m.repeat_buyers),
      });
    }
    const { rows: cohorts } = await sql<CohortCell>`
      SELECT to_char(cohort, 'YYYY-MM-DD') AS cohort, to_char(month, 'YYYY-MM-DD') AS month, active_cards AS active, (paid - refunded_paid)::bigint AS paid
      FROM economics_cohort_month
      WHERE program_id = ${programId} AND cohort BETWEEN ${cohortFrom}::date AND ${cohortTo}::date AND month BETWEEN ${firstMonth}::date AND ${closedTo}::date`.execute(trx);
    result.cohorts.push(...cohorts);
    const { rows: bonus } = await sql<BonusCell>`
      SELECT to_char(month, 'YYYY-MM-DD') AS month, kind, cards, paid FROM economics_bonus_month
      WHERE program_id = ${programId} AND month BETWEEN ${firstMonth}::date AND ${closedTo}::date`.execute(trx);
    result.bonus.push(...bonus);
  }
  // Open months: after the last closed one (all of history when nothing is rolled up yet: the
  // repeat-purchase rate needs every earlier purchase).
  const openFrom = state.monthsThrough ? addMonths(state.monthsThrough, 1) : '2000-01-01';
  if (openFrom > lastMonth) return result;
  const openLast = addDays(addMonths(lastMonth, 1), -1);
  const rawFrom = state.daysThrough && state.daysThrough >= openFrom ? addDays(state.daysThrough, 1) : openFrom;
  // Members who had ever bought (twice) before the first open month: the last closed month's count.
  const { rows: baseRows } = await sql<{ ever_buyers: number; repeat_buyers: number }>`
    SELECT ever_buyers, repeat_buyers FROM economics_month
    WHERE program_id = ${programId} AND month = ${state.monthsThrough ?? '1900-01-01'}::date`.execute(trx);
  let ever = Number(baseRows[0]?.ever_buyers ?? 0);
  let repeat = Number(baseRows[0]?.repeat_buyers ?? 0);
  if (openFrom === lastMonth && rawFrom >= openFrom) {
    // The usual case: one open month, its days so far rolled up per card, and today's raw rows.
    const open = await openMonth(trx, programId, tz, openFrom, rawFrom, cohortFrom, cohortTo);
    result.months.set(openFrom, { ...open.month, everBuyers: ever + open.month.newBuyers, repeatBuyers: repeat + open.month.becameRepeat });
    result.cohorts.push(...open.cohorts);
    result.bonus.push(...open.bonus);
    return result;
  }
  const parts = [
    sql`SELECT month::text AS month, card_id, cohort::text AS cohort, purchases, paid, refunded_paid, bonus_kinds FROM economics_card_month
        WHERE program_id = ${programId} AND month BETWEEN ${openFrom}::date AND ${lastMonth}::date`,
    ...(rawFrom <= openLast
      ? [
          sql`SELECT l.month, l.card_id, to_char(date_trunc('month', c.created_at AT TIME ZONE ${tz}), 'YYYY-MM-DD') AS cohort,
                l.purchases, l.paid, l.refunded_paid, l.bonus_kinds
              FROM (${cardMonths(programId, tz, rawFrom, openLast)}) l JOIN card c ON c.id = l.card_id`,
        ]
      : []),
  ];
  // Otherwise (nothing rolled up yet, or the rollup is behind): every open card-month grouped here.
  const { rows } = await sql<{ tag: string; a: string; b: string | null; n1: number; n2: number; n3: number; n4: number }>`
    WITH rows AS (${sql.join(parts, sql` UNION ALL `)}),
    per AS MATERIALIZED (
      SELECT month, card_id, min(cohort) AS cohort, sum(purchases)::int AS purchases, (sum(paid) - sum(refunded_paid))::bigint AS paid,
        bit_or(bonus_kinds)::int AS kinds
      FROM rows GROUP BY month, card_id
    ),
    buyers AS (
      SELECT p.month, p.purchases, e.first_month, e.second_month,
        coalesce(sum(p.purchases) OVER (PARTITION BY p.card_id ORDER BY p.month ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS prior
      FROM per p LEFT JOIN economics_card e ON e.program_id = ${programId} AND e.card_id = p.card_id
      WHERE p.purchases > 0
    )
    SELECT 'month' AS tag, month AS a, NULL AS b, count(*)::int AS n1,
      (count(*) FILTER (WHERE first_month IS NULL AND prior = 0))::int AS n2,
      sum(purchases)::int AS n3,
      (count(*) FILTER (WHERE second_month IS NULL
        AND (CASE WHEN first_month IS NULL THEN 0 ELSE 1 END) + prior < 2
        AND (CASE WHEN first_month IS NULL THEN 0 ELSE 1 END) + prior + purchases >= 2))::int AS n4
    FROM buyers GROUP BY month
    UNION ALL
    SELECT 'cohort', p.cohort, p.month, (count(*) FILTER (WHERE p.purchases > 0))::int, sum(p.paid)::bigint, 0, 0
    FROM per p
    WHERE p.cohort BETWEEN ${cohortFrom} AND ${cohortTo}
    GROUP BY 2, 3
    UNION ALL
    SELECT 'bonus', p.month, k.kind, count(*)::int, sum(p.paid)::bigint, 0, 0
    FROM per p JOIN (${bonusValues()}) k(kind, bit) ON p.kinds & k.bit <> 0
    GROUP BY 2, 3`.execute(trx);
  const wanted = monthsOf(openFrom > firstMonth ? openFrom : firstMonth, lastMonth);
  const months = [...new Set([...rows.filter((r) => r.tag === 'month').map((r) => r.a), ...wanted])].sort();
  for (const month of months) {
    const r = rows.find((x) => x.tag === 'month' && x.a === month);
    ever += Number(r?.n2 ?? 0);
    repeat += Number(r?.n4 ?? 0);
    if (month < firstMonth) continue;
    result.months.set(month, { activeCards: Number(r?.n1 ?? 0), newBuyers: Number(r?.n2 ?? 0), purchases: Number(r?.n3 ?? 0), everBuyers: ever, repeatBuyers: repeat });
  }
  for (const r of rows) {
    if (r.tag === 'cohort') result.cohorts.push({ cohort: r.a, month: r.b!, active: Number(r.n1), paid: Number(r.n2) });
    if (r.tag === 'bonus') result.bonus.push({ month: r.a, kind: r.b!, cards: Number(r.n1), paid: Number(r.n2) });
  }
  return result;
}

/**
 * The open month `month`: its per-card rows so far (economics_card_month, one per card) as they
 * are, plus what the raw days from `rawFrom` add to them, card by card (a card already counted
 * as active is not counted again; a bonus received today brings the card's earlier paid money of
 * the month with it). One pass over the month's rows, no grouping by card.
 */
async function openMonth(trx: Trx, programId: string, tz: string, month: string, rawFrom: string, cohortFrom: string, cohortTo: string) {
  const monthEnd = addDays(addMonths(month, 1), -1);
  const kinds = Object.entries(BONUS_BITS);
  const deltas = sql`
    s AS (
      SELECT cohort::text AS cohort, purchases, paid - refunded_paid AS paid, bonus_kinds AS kinds, prior
      FROM economics_card_month WHERE program_id = ${programId} AND month = ${month}::date
    ),
    raw AS MATERIALIZED (SELECT * FROM (${cardMonths(programId, tz, rawFrom, monthEnd)}) l),
    r AS (
      -- A card's cohort and earlier purchases come with its row of the month when it has one; only
      -- the cards new to the month are looked up (COALESCE evaluates its arguments lazily).
      SELECT coalesce(cm.cohort::text,
          (SELECT to_char(date_trunc('month', c.created_at AT TIME ZONE ${tz}), 'YYYY-MM-DD') FROM card c WHERE c.id = l.card_id)) AS cohort,
        l.purchases, l.paid - l.refunded_paid AS paid, l.bonus_kinds AS kinds,
        coalesce(cm.purchases, 0) AS cm_purchases, coalesce(cm.paid - cm.refunded_paid, 0) AS cm_paid, coalesce(cm.bonus_kinds, 0) AS cm_kinds,
        coalesce(cm.prior, (SELECT CASE WHEN e.second_month IS NULL THEN 1 ELSE 2 END FROM economics_card e
          WHERE e.program_id = ${programId} AND e.card_id = l.card_id), 0) AS prior
      FROM raw l
      LEFT JOIN economics_card_month cm ON cm.program_id = ${programId} AND cm.month = ${month}::date AND cm.card_id = l.card_id
    ),
    d AS (
      SELECT cohort, (purchases > 0)::int AS active, (purchases > 0 AND prior = 0)::int AS new_buyer, purchases,
        (prior < 2 AND prior + purchases >= 2)::int AS became_repeat, paid, kinds AS add_kinds, kinds AS paid_kinds, paid AS kind_paid
      FROM s
      UNION ALL
      SELECT cohort, (purchases > 0 AND cm_purchases = 0)::int, (purchases > 0 AND cm_purchases = 0 AND prior = 0)::int, purchases,
        (prior + cm_purchases < 2 AND prior + cm_purchases + purchases >= 2)::int, paid, kinds & ~cm_kinds, cm_kinds, paid
      FROM r
      UNION ALL
      SELECT cohort, 0, 0, 0, 0, 0, 0, kinds & ~cm_kinds, paid + cm_paid FROM r
    )`;
  // One pass: the month's totals (the grouping set ()) and each cohort's (cohort).
  const { rows } = await sql<Record<string, number> & { cohort: string | null; whole: number }>`
    WITH ${deltas}
    SELECT cohort, grouping(cohort) AS whole, coalesce(sum(active), 0)::int AS active, coalesce(sum(new_buyer), 0)::int AS new_buyers,
      coalesce(sum(purchases), 0)::int AS purchases, coalesce(sum(became_repeat), 0)::int AS became_repeat, coalesce(sum(paid), 0)::bigint AS paid
      ${sql.join(
        kinds.map(
          ([kind, bit]) => sql`, (count(*) FILTER (WHERE add_kinds & ${sql.lit(bit)} <> 0))::int AS ${sql.ref(`cards_${kind}`)},
            coalesce(sum(kind_paid) FILTER (WHERE paid_kinds & ${sql.lit(bit)} <> 0), 0)::bigint AS ${sql.ref(`paid_${kind}`)}`,
        ),
        sql``,
      )}
    FROM d GROUP BY GROUPING SETS ((), (cohort))`.execute(trx);
  const totals = rows.filter((r) => Number(r.whole) === 1);
  const cohorts = rows.filter((r) => Number(r.whole) === 0 && r.cohort !== null && r.cohort >= cohortFrom && r.cohort <= cohortTo);
  const t = totals[0]!;
  return {
    month: { activeCards: Number(t.active), newBuyers: Number(t.new_buyers), purchases: Number(t.purchases), becameRepeat: Number(t.became_repeat) },
    cohorts: cohorts.map((c) => ({ cohort: c.cohort!, month, active: Number(c.active), paid: Number(c.paid) })),
    bonus: kinds.map(([kind]) => ({ month, kind, cards: Number(t[`cards_${kind}`]), paid: Number(t[`paid_${kind}`]) })).filter((b) => b.cards > 0),
  };
}

export interface ReportOptions {
  /** Called with each statement group's name and wall time (bench:economics prints them). */
  onQuery?: (name: string, ms: number) => void;
}

export async function economicsReport(db: Db, program: ProgramRow, period: Period, now: Date, options: ReportOptions = {}): Promise<Economics> {
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    if (!options.onQuery) return work();
    const started = performance.now();
    const result = await work();
    options.onQuery(name, performance.now() - started);
    return result;
  };
  const rules = program.rules as LoyaltyRules;
  const pointValue = rules.redemption.pointValue;
  return db.transaction().execute(async (trx) => {
    // One snapshot: the rollup watermarks and the rows they cover, and the raw tail after them.
    await sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`.execute(trx);
    await sql`SET LOCAL work_mem = '64MB'`.execute(trx);
    // Short statements: compiling them (JIT) costs more than running them.
    await sql`SET LOCAL jit = off`.execute(trx);
    const tz = await databaseTimeZone(trx, program.time_zone);
    const state = await rollupState(trx, program.id, tz);
    const { from, to } = period;
    // Member figures, cohorts and the program cost are by whole calendar months: those the period overlaps.
    const firstMonth = monthStart(from);
    const lastMonth = monthStart(to);
    const monthsEnd = addDays(addMonths(lastMonth, 1), -1);

    const opening = await timed('liability at the start', () => outstandingAt(trx, program.id, tz, state, addDays(from, -1)));
    // Pending bonuses (not ledger entries, not spendable) at the end of the period: shown apart.
    const { rows: pendingRows } = await timed('pending bonuses', () =>
      sql<{ points: number }>`
        SELECT coalesce(sum(points), 0)::bigint AS points FROM pending_bonus
        WHERE program_id = ${program.id} AND created_at < ((${to}::date + 1)::timestamp AT TIME ZONE ${tz})
          AND (released_at IS NULL OR released_at >= ((${to}::date + 1)::timestamp AT TIME ZONE ${tz}))`.execute(trx),
    );
    const pending = Number(pendingRows[0]?.points ?? 0);
    const ledger = await timed('ledger by day and kind', () => ledgerRows(trx, program.id, tz, state, firstMonth, monthsEnd));
    const sales = await timed('sales by day', () => salesRows(trx, program.id, tz, state, firstMonth, monthsEnd));
    const members = await timed('members, cohorts, bonus receivers by month', () => monthly(trx, program.id, tz, state, firstMonth, lastMonth, firstMonth, lastMonth));
    // CLTV by tier reads the cards as they are now (no rollup).
    const { rows: tiers } = await timed('CLTV by tier', () =>
      sql<{ tier: string; cards: number; spend: number; tenure_months: number | null }>`
        SELECT tier, count(*)::int AS cards, coalesce(sum(lifetime_spend), 0)::bigint AS spend,
          sum(greatest(extract(epoch FROM (${now.toISOString()}::timestamptz - created_at)), 0)) / (86400 * 30.436875) AS tenure_months
        FROM card WHERE program_id = ${program.id}
        GROUP BY tier`.execute(trx),
    );

    // ---- buckets (the period itself) ---------------------------------------------------------------
    const bucketList = buckets(from, to, period.groupBy);
    const bucketOf = (day: string) => bucketList.findIndex((b) => day >= b.start && day <= b.end);
    const points = bucketList.map(() => emptyPoints());
    const salesBy = bucketList.map(() => emptySales());
    const totalPoints = emptyPoints();
    const totalSales = emptySales();
    const monthPoints = emptyPoints();
    const enrolledByMonth = new Map<string, number>();
    const paidByMonth = new Map<string, number>();
    for (const row of ledger) {
      addLedger(monthPoints, row);
      const i = bucketOf(row.day);
      if (i < 0) continue;
      addLedger(points[i]!, row);
      addLedger(totalPoints, row);
    }
    for (const row of sales) {
      const month = monthStart(row.day);
      // Cohorts are whole months, like their cells: every card enrolled in the month counts.
      enrolledByMonth.set(month, (enrolledByMonth.get(month) ?? 0) + Number(row.cards_enrolled));
      paidByMonth.set(month, (paidByMonth.get(month) ?? 0) + Number(row.paid) - Number(row.refunded_paid));
      const i = bucketOf(row.day);
      if (i < 0) continue;
      addSales(salesBy[i]!, row);
      addSales(totalSales, row);
    }
    let outstanding = opening;
    const periods = bucketList.map((b, i) => {
      const p = points[i]!;
      const s = salesBy[i]!;
      outstanding += p.net;
      return {
        key: b.key,
        start: b.start,
        end: b.end,
        liabilityPoints: outstanding,
        liabilityValue: outstanding * pointValue,
        issued: p.issued,
        redeemed: p.redeemed,
        returned: p.returned,
        reversed: p.reversed,
        expired: p.expired,
        adjustedOut: p.adjustedOut,
        net: p.net,
        purchases: s.purchases,
        amount: s.amount,
        revenue: s.amount - s.refundedAmount,
        averageCheck: ratio(s.amount, s.purchases),
        nonMemberAmount: s.checkAmount,
        memberShare: memberShare(s),
        cardsEnrolled: s.cardsEnrolled,
      };
    });
    const closing = opening + totalPoints.net;

    // ---- members by month --------------------------------------------------------------------------
    const monthList = monthsOf(from, to);
    const memberMonths = monthList.map((month) => {
      const m = members.months.get(month) ?? { activeCards: 0, newBuyers: 0, purchases: 0, everBuyers: 0, repeatBuyers: 0 };
      return {
        month: month.slice(0, 7),
        activeMembers: m.activeCards,
        newBuyers: m.newBuyers,
        returningMembers: m.activeCards - m.newBuyers,
        purchases: m.purchases,
        frequency: m.activeCards === 0 ? null : Math.round((m.purchases / m.activeCards) * 100) / 100,
        everBuyers: m.everBuyers,
        repeatBuyers: m.repeatBuyers,
        repeatRate: rate(m.repeatBuyers, m.everBuyers),
      };
    });
    const sumOf = (key: 'activeMembers' | 'returningMembers' | 'purchases') => memberMonths.reduce((sum, m) => sum + m[key], 0);
    const lastMemberMonth = memberMonths[memberMonths.length - 1];

    // ---- cohorts -------------------------------------------------------------------------------------
    const cellMap = new Map(members.cohorts.map((c) => [`${c.cohort}|${c.month}`, c]));
    const cohorts = monthList.map((cohort) => {
      const cards = enrolledByMonth.get(cohort) ?? 0;
      const months = monthsOf(cohort, to);
      const active = months.map((m) => cellMap.get(`${cohort}|${m}`)?.active ?? 0);
      const paid = months.map((m) => cellMap.get(`${cohort}|${m}`)?.paid ?? 0);
      let cumulative = 0;
      const cltv = paid.map((v) => {
        cumulative += v;
        return cards === 0 ? 0 : Math.round(cumulative / cards);
      });
      return { cohort: cohort.slice(0, 7), cards, active, retention: active.map((a) => rate(a, cards)), paid, cltv };
    });

    // ---- CLTV by tier ----------------------------------------------------------------------------------
    const tierOrder = rules.tiers.map((t) => t.code);
    const cltvByTier = [...tiers]
      .sort((a, b) => (tierOrder.indexOf(a.tier) + 1 || 999) - (tierOrder.indexOf(b.tier) + 1 || 999) || a.tier.localeCompare(b.tier))
      .map((t) => {
        const tenure = Number(t.tenure_months ?? 0);
        const cards = Number(t.cards);
        const spend = Number(t.spend);
        return {
          tier: t.tier,
          name: rules.tiers.find((r) => r.code === t.tier)?.name ?? { ru: t.tier, en: t.tier },
          cards,
          lifetimeSpend: spend,
          valuePerCard: ratio(spend, cards),
          tenureMonths: cards === 0 ? null : Math.round((tenure / cards) * 10) / 10,
          valuePerCardMonth: tenure <= 0 ? null : Math.round(spend / Math.max(tenure, 1 / 30)),
        };
      });

    // ---- program cost (whole months) -----------------------------------------------------------------
    const memberRevenue = [...paidByMonth.values()].reduce((sum, v) => sum + v, 0);
    const byKind = [
      ...BONUS_KINDS.map((kind) => {
        const granted = monthPoints.byKind[kind] ?? 0;
        const cells = members.bonus.filter((b) => b.kind === kind);
        const revenue = cells.reduce((sum, b) => sum + Number(b.paid), 0);
        return {
          kind,
          points: granted,
          value: granted * pointValue,
          cards: cells.reduce((sum, b) => sum + Number(b.cards), 0),
          revenueOfCards: revenue,
          costShare: rate(granted * pointValue, revenue),
        };
      }),
      (() => {
        const granted = monthPoints.byKind.accrual ?? 0;
        return { kind: 'accrual', points: granted, value: granted * pointValue, cards: sumOf('activeMembers'), revenueOfCards: memberRevenue, costShare: rate(granted * pointValue, memberRevenue) };
      })(),
    ];
    const monthsIssued = monthPoints.issued - monthPoints.reversed;

    // ---- totals --------------------------------------------------------------------------------------
    const netIssued = totalPoints.issued - totalPoints.reversed;
    const netRedeemed = totalPoints.redeemed - totalPoints.returned;
    return {
      from,
      to,
      groupBy: period.groupBy,
      timeZone: tz,
      currency: program.currency,
      pointValue,
      asOf: now.toISOString(),
      liability: {
        openingPoints: opening,
        openingValue: opening * pointValue,
        closingPoints: closing,
        closingValue: closing * pointValue,
        changePoints: closing - opening,
        changeValue: (closing - opening) * pointValue,
        pendingPoints: pending,
        pendingValue: pending * pointValue,
      },
      points: {
        issued: totalPoints.issued,
        redeemed: totalPoints.redeemed,
        returned: totalPoints.returned,
        reversed: totalPoints.reversed,
        expired: totalPoints.expired,
        adjustedOut: totalPoints.adjustedOut,
        net: totalPoints.net,
        issuedByKind: totalPoints.byKind,
        netIssued,
        netRedeemed,
        redemptionRate: rate(netRedeemed, netIssued),
        breakageRate: rate(totalPoints.expired, netIssued),
        issuedValue: netIssued * pointValue,
        redeemedValue: netRedeemed * pointValue,
        expiredValue: totalPoints.expired * pointValue,
      },
      sales: {
        purchases: totalSales.purchases,
        amount: totalSales.amount,
        paid: totalSales.paid,
        refunds: totalSales.refunds,
        refundedAmount: totalSales.refundedAmount,
        revenue: totalSales.amount - totalSales.refundedAmount,
        paidNet: totalSales.paid - totalSales.refundedPaid,
        averageCheck: ratio(totalSales.amount, totalSales.purchases),
        nonMemberChecks: totalSales.checks,
        nonMemberAmount: totalSales.checkAmount,
        memberShare: memberShare(totalSales),
        cardsEnrolled: totalSales.cardsEnrolled,
      },
      members: {
        firstMonth: firstMonth.slice(0, 7),
        lastMonth: lastMonth.slice(0, 7),
        averageActiveMembers: memberMonths.length === 0 ? 0 : Math.round(sumOf('activeMembers') / memberMonths.length),
        frequency: sumOf('activeMembers') === 0 ? null : Math.round((sumOf('purchases') / sumOf('activeMembers')) * 100) / 100,
        returningShare: rate(sumOf('returningMembers'), sumOf('activeMembers')),
        repeatRate: lastMemberMonth ? lastMemberMonth.repeatRate : null,
        months: memberMonths,
      },
      periods,
      cohorts,
      cltvByTier,
      programCost: {
        firstMonth: firstMonth.slice(0, 7),
        lastMonth: lastMonth.slice(0, 7),
        byKind,
        issuedValue: monthsIssued * pointValue,
        redeemedValue: (monthPoints.redeemed - monthPoints.returned) * pointValue,
        memberRevenue,
        costShare: rate(monthsIssued * pointValue, memberRevenue),
      },
    };
  });
}
