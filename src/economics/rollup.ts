/**
 * The economics rollup: closed local days and months of each program, stored once so the report
 * reads a few hundred small rows instead of millions of ledger entries and purchases
 * (bench:economics). Runs from the `economics-tick` schedule; the report never waits for it and
 * computes whatever is not rolled up yet from the raw tables (src/economics/report.ts).
 *
 * A day is closed `CLOSE_MARGIN_MINUTES` after its local midnight: entries are dated by the
 * database when their transaction starts, so a transaction that began before midnight and commits
 * a little after still lands in a day that is not rolled up yet. Each step (a chunk of days, or a
 * month) is one transaction holding the program's row in economics_rollup: two processes never
 * roll up the same days, and the report (REPEATABLE READ) sees a watermark and its rows together.
 */
import { sql } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';
import { localDay } from '../enrollment/funnel.js';
import { databaseTimeZone } from '../enrollment/stats.js';
import { addDays, addMonths, monthStart } from './period.js';
import { bonusValues, cardMonths, ledgerDays, salesDays } from './sql.js';

export const CLOSE_MARGIN_MINUTES = 10;
const ECONOMICS_TABLES = [
  'economics_day',
  'economics_ledger_day',
  'economics_card_month',
  'economics_card',
  'economics_month',
  'economics_cohort_month',
  'economics_bonus_month',
] as const;
/** Days per rollup transaction. */
const DAYS_PER_STEP = 31;

export interface RollupState {
  timeZone: string;
  /** Last local day rolled up (inclusive), or null. */
  daysThrough: string | null;
  /** First day of the last month rolled up, or null. */
  monthsThrough: string | null;
}

/** The watermarks the report may use: none when the rollups were made in another time zone. */
export async function rollupState(executor: Executor, programId: string, tz: string): Promise<RollupState> {
  const row = await sql<{ time_zone: string; days_through: string | null; months_through: string | null }>`
    SELECT time_zone, to_char(days_through, 'YYYY-MM-DD') AS days_through, to_char(months_through, 'YYYY-MM-DD') AS months_through
    FROM economics_rollup WHERE program_id = ${programId}`.execute(executor);
  const state = row.rows[0];
  if (!state || state.time_zone !== tz) return { timeZone: tz, daysThrough: null, monthsThrough: null };
  return { timeZone: tz, daysThrough: state.days_through, monthsThrough: state.months_through };
}

/** The last closed local day and month at `now`. */
export function closedThrough(now: Date, tz: string): { day: string; month: string } {
  const today = localDay(new Date(now.getTime() - CLOSE_MARGIN_MINUTES * 60_000), tz);
  return { day: addDays(today, -1), month: addMonths(monthStart(today), -1) };
}

/** The first local day with anything to roll up (the oldest card or non-member check). */
async function firstDay(executor: Executor, programId: string, tz: string): Promise<string | null> {
  const { rows } = await sql<{ day: string | null }>`
    SELECT to_char((least(
      (SELECT min(created_at) FROM card WHERE program_id = ${programId}),
      (SELECT min(created_at) FROM anonymous_check WHERE program_id = ${programId})
    ) AT TIME ZONE ${tz})::date, 'YYYY-MM-DD') AS day`.execute(executor);
  return rows[0]?.day ?? null;
}

export class EconomicsRollup {
  constructor(
    private readonly db: Db,
    private readonly clock: () => Date,
  ) {}

  /** Rolls up every closed day and month of every program (or of one). */
  async run(programId?: string): Promise<{ days: number; months: number }> {
    let query = this.db.selectFrom('program').selectAll();
    if (programId) query = query.where('id', '=', programId);
    const programs = await query.execute();
    const total = { days: 0, months: 0 };
    for (const program of programs) {
      const done = await this.runProgram(program);
      total.days += done.days;
      total.months += done.months;
    }
    return total;
  }

  private async runProgram(program: ProgramRow): Promise<{ days: number; months: number }> {
    const tz = await databaseTimeZone(this.db, program.time_zone);
    const closed = closedThrough(this.clock(), tz);
    const done = { days: 0, months: 0 };
    for (;;) {
      // Days, a chunk per transaction (never across a month end), and each month as soon as all
      // its days are in.
      const step = await this.db.transaction().execute(async (trx) => {
        const state = await this.lockState(trx, program.id, tz);
        const first = state.days_through ? addDays(state.days_through, 1) : await firstDay(trx, program.id, tz);
        const month = state.months_through ? addMonths(state.months_through, 1) : state.days_through ? monthStart(state.days_through) : null;
        if (month && month <= closed.month && state.days_through && state.days_through >= addDays(addMonths(month, 1), -1)) {
          await this.rollMonth(trx, program.id, tz, month);
          return { days: 0, months: 1 };
        }
        if (first && first <= closed.day) {
          const monthEnd = addDays(addMonths(monthStart(first), 1), -1);
          const last = [addDays(first, DAYS_PER_STEP - 1), monthEnd, closed.day].sort()[0]!;
          await this.rollDays(trx, program.id, tz, first, last);
          return { days: daysIn(first, last), months: 0 };
        }
        return null;
      });
      if (!step) break;
      done.days += step.days;
      done.months += step.months;
      // A closed month's per-card rows were just deleted: let the next month reuse their space
      // (catching up on years of history would otherwise leave the table at all of them).
      if (step.months > 0) await sql`VACUUM economics_card_month`.execute(this.db);
    }
    // Fresh statistics for the per-card tables the report joins (thousands of new rows at once;
    // autovacuum would analyze them later and the planner would meanwhile take them for empty).
    if (done.days > 0 || done.months > 0) await sql`ANALYZE economics_card_month, economics_card`.execute(this.db);
    return done;
  }

  /** Days [first, last] of one month: sales, ledger, and the month so far per card. */
  private async rollDays(trx: Executor, programId: string, tz: string, first: string, last: string) {
    await sql`DELETE FROM economics_day WHERE program_id = ${programId} AND day BETWEEN ${first}::date AND ${last}::date`.execute(trx);
    await sql`DELETE FROM economics_ledger_day WHERE program_id = ${programId} AND day BETWEEN ${first}::date AND ${last}::date`.execute(trx);
    await sql`
      INSERT INTO economics_day (program_id, day, cards_enrolled, purchases, amount, paid, refunds, refunded_amount, refunded_paid, checks, check_amount)
      SELECT ${programId}, day::date, cards_enrolled, purchases, amount, paid, refunds, refunded_amount, refunded_paid, checks, check_amount
      FROM (${salesDays(programId, tz, first, last)}) s`.execute(trx);
    await sql`
      INSERT INTO economics_ledger_day (program_id, day, kind, points_in, points_out)
      SELECT ${programId}, day::date, kind, points_in, points_out FROM (${ledgerDays(programId, tz, first, last)}) l`.execute(trx);
    await sql`
      INSERT INTO economics_card_month AS t (program_id, month, card_id, cohort, purchases, amount, paid, refunds, refunded_amount, refunded_paid,
        bonus_kinds, prior)
      SELECT ${programId}, m.month::date, m.card_id, date_trunc('month', c.created_at AT TIME ZONE ${tz})::date,
        m.purchases, m.amount, m.paid, m.refunds, m.refunded_amount, m.refunded_paid, m.bonus_kinds,
        CASE WHEN e.first_month IS NULL THEN 0 WHEN e.second_month IS NULL THEN 1 ELSE 2 END
      FROM (${cardMonths(programId, tz, first, last)}) m
      JOIN card c ON c.id = m.card_id
      LEFT JOIN economics_card e ON e.program_id = ${programId} AND e.card_id = m.card_id
      ON CONFLICT (program_id, month, card_id) DO UPDATE SET
        purchases = t.purchases + EXCLUDED.purchases, amount = t.amount + EXCLUDED.amount, paid = t.paid + EXCLUDED.paid,
        refunds = t.refunds + EXCLUDED.refunds, refunded_amount = t.refunded_amount + EXCLUDED.refunded_amount,
        refunded_paid = t.refunded_paid + EXCLUDED.refunded_paid, bonus_kinds = t.bonus_kinds | EXCLUDED.bonus_kinds`.execute(trx);
    await sql`UPDATE economics_rollup SET days_through = ${last}::date, updated_at = now() WHERE program_id = ${programId}`.execute(trx);
  }

  /**
   * A closed month whose days are all rolled up: its cohorts, members (first-time and repeat
   * buyers) and bonus receivers from the month's per-card rows, which then go.
   */
  private async rollMonth(trx: Executor, programId: string, tz: string, month: string) {
    for (const table of ['economics_cohort_month', 'economics_bonus_month', 'economics_month'] as const) {
      await trx.deleteFrom(table).where('program_id', '=', programId).where('month', '=', month).execute();
    }
    await sql`
      CREATE TEMP TABLE economics_m ON COMMIT DROP AS
      SELECT card_id, purchases, amount, paid, refunded_amount, refunded_paid, bonus_kinds, cohort, prior
      FROM economics_card_month m
      WHERE m.program_id = ${programId} AND m.month = ${month}::date`.execute(trx);
    await sql`
      INSERT INTO economics_cohort_month (program_id, cohort, month, active_cards, purchases, amount, paid, refunded_amount, refunded_paid)
      SELECT ${programId}, cohort, ${month}::date, count(*) FILTER (WHERE purchases > 0), sum(purchases), sum(amount), sum(paid),
        sum(refunded_amount), sum(refunded_paid)
      FROM economics_m GROUP BY cohort`.execute(trx);
    await sql`
      INSERT INTO economics_bonus_month (program_id, month, kind, cards, paid)
      SELECT ${programId}, ${month}::date, k.kind, count(*), sum(m.paid - m.refunded_paid)
      FROM economics_m m JOIN (${bonusValues()}) k(kind, bit) ON m.bonus_kinds & k.bit <> 0
      GROUP BY k.kind`.execute(trx);
    await sql`
      INSERT INTO economics_month (program_id, month, active_cards, new_buyers, purchases, ever_buyers, repeat_buyers)
      SELECT ${programId}, ${month}::date,
        count(*) FILTER (WHERE purchases > 0),
        count(*) FILTER (WHERE purchases > 0 AND prior = 0),
        coalesce(sum(purchases), 0),
        (SELECT count(*) FROM economics_card WHERE program_id = ${programId}) + count(*) FILTER (WHERE purchases > 0 AND prior = 0),
        (SELECT count(*) FROM economics_card WHERE program_id = ${programId} AND second_month IS NOT NULL)
          + count(*) FILTER (WHERE prior < 2 AND prior + purchases >= 2)
      FROM economics_m`.execute(trx);
    await sql`
      INSERT INTO economics_card AS e (program_id, card_id, first_month, second_month)
      SELECT ${programId}, card_id, ${month}::date, CASE WHEN purchases >= 2 THEN ${month}::date END FROM economics_m WHERE purchases > 0
      ON CONFLICT (program_id, card_id) DO UPDATE SET second_month = coalesce(e.second_month, EXCLUDED.first_month)`.execute(trx);
    await sql`DELETE FROM economics_card_month WHERE program_id = ${programId} AND month = ${month}::date`.execute(trx);
    await sql`UPDATE economics_rollup SET months_through = ${month}::date, updated_at = now() WHERE program_id = ${programId}`.execute(trx);
  }

  /**
   * The program's rollup row, locked for the transaction; rollups made in another time zone are
   * thrown away first (their days are not this zone's days).
   */
  private async lockState(trx: Executor, programId: string, tz: string) {
    await sql`INSERT INTO economics_rollup (program_id, time_zone) VALUES (${programId}, ${tz}) ON CONFLICT DO NOTHING`.execute(trx);
    const { rows } = await sql<{ time_zone: string; days_through: string | null; months_through: string | null }>`
      SELECT time_zone, to_char(days_through, 'YYYY-MM-DD') AS days_through, to_char(months_through, 'YYYY-MM-DD') AS months_through
      FROM economics_rollup WHERE program_id = ${programId} FOR UPDATE`.execute(trx);
    const state = rows[0]!;
    if (state.time_zone === tz) return state;
    for (const table of ECONOMICS_TABLES) {
      await trx.deleteFrom(table).where('program_id', '=', programId).execute();
    }
    await sql`UPDATE economics_rollup SET time_zone = ${tz}, days_through = NULL, months_through = NULL, updated_at = now() WHERE program_id = ${programId}`.execute(trx);
    return { time_zone: tz, days_through: null, months_through: null };
  }
}

function daysIn(first: string, last: string): number {
  return Math.round((Date.parse(`${last}T00:00:00Z`) - Date.parse(`${first}T00:00:00Z`)) / 86_400_000) + 1;
}
