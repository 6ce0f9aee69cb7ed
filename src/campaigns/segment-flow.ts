/**
 * Segment movement: how many cards moved between RFM segments each week (Monday to Monday, the
 * program's time zone), e.g. Sleeping → Core after a win-back campaign.
 *
 * Segments are a function of the purchases up to a moment (`segmentedCards(…, at)` counts the
 * completed purchases made up to `at`), so the segments at a week's start and at its end can be
 * computed after the fact, exactly, from the purchases alone. Each closed week is computed once by
 * the economics tick and stored in `segment_week` ([{from, to, cards}] with the thresholds used);
 * reading the flow is then a few rows. The first run also fills the last BACKFILL_WEEKS weeks.
 *
 * Counted: the cards active now that existed at the week's end; a card enrolled during the week
 * comes from `new`. A card blocked since is left out of every week (its history is not kept), and
 * a purchase refunded since no longer counts, as in the segments themselves.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';
import { localDay } from '../enrollment/funnel.js';
import { databaseTimeZone } from '../enrollment/stats.js';
import { segmentedCards, thresholdsOf, type SegmentCode } from './segments.js';

export const BACKFILL_WEEKS = 12;
/** A week is closed this long after its last local midnight (as economics days are). */
const CLOSE_MARGIN_MS = 10 * 60_000;

export interface Flow {
  from: SegmentCode | 'new';
  to: SegmentCode;
  cards: number;
}

export interface SegmentWeek {
  weekStart: string;
  weekEnd: string;
  flows: Flow[];
}

const DAY_MS = 86_400_000;
const addDays = (day: string, days: number) => new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
const monday = (day: string) => addDays(day, -((new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7));

/** The flows of one week, [weekStart, weekStart + 7 days), computed from the purchases. */
export async function computeWeekFlows(db: Db, program: ProgramRow, weekStart: string, tz: string): Promise<Flow[]> {
  const t = thresholdsOf(program.segments);
  const { rows: bounds } = await sql<{ start: Date; end: Date }>`
    SELECT (${weekStart}::date::timestamp AT TIME ZONE ${tz}) AS start, ((${weekStart}::date + 7)::timestamp AT TIME ZONE ${tz}) AS end`.execute(db);
  const { start, end } = bounds[0]!;
  return db.transaction().execute(async (trx) => {
    // As for GET /segments: on a small machine one process per aggregate is faster than parallel workers.
    await sql`SET LOCAL max_parallel_workers_per_gather = 0`.execute(trx);
    const { rows } = await sql<Flow>`
      SELECT CASE WHEN c.created_at > ${start.toISOString()}::timestamptz OR s.segment IS NULL THEN 'new' ELSE s.segment END AS "from",
        e.segment AS "to", count(*)::int AS cards
      FROM (${segmentedCards(program.id, t, end)}) e
      JOIN card c ON c.id = e.card_id AND c.created_at <= ${end.toISOString()}::timestamptz
      LEFT JOIN (${segmentedCards(program.id, t, start)}) s ON s.card_id = e.card_id
      GROUP BY 1, 2`.execute(trx);
    return rows.map((r) => ({ from: r.from, to: r.to, cards: Number(r.cards) }));
  });
}

/**
 * Computes and stores every closed week not stored yet (back to BACKFILL_WEEKS before the current
 * week, not before the program's first card). Returns the weeks written.
 */
export async function recordSegmentWeeks(db: Db, program: ProgramRow, now: Date): Promise<string[]> {
  const tz = await databaseTimeZone(db, program.time_zone);
  const lastClosed = addDays(monday(localDay(new Date(now.getTime() - CLOSE_MARGIN_MS), tz)), -7);
  const { rows } = await sql<{ last: string | null; first_card: string | null }>`
    SELECT (SELECT to_char(max(week_start), 'YYYY-MM-DD') FROM segment_week WHERE program_id = ${program.id}) AS last,
      (SELECT to_char((min(created_at) AT TIME ZONE ${tz})::date, 'YYYY-MM-DD') FROM card WHERE program_id = ${program.id}) AS first_card`.execute(db);
  const { last, first_card: firstCard } = rows[0]!;
  if (!firstCard) return [];
  let week = last ? addDays(last, 7) : addDays(lastClosed, -7 * (BACKFILL_WEEKS - 1));
  if (week < monday(firstCard)) week = monday(firstCard);
  const written: string[] = [];
  for (; week <= lastClosed; week = addDays(week, 7)) {
    const flows = await computeWeekFlows(db, program, week, tz);
    await db
      .insertInto('segment_week')
      .values({ program_id: program.id, week_start: week, flows: JSON.stringify(flows), thresholds: JSON.stringify(thresholdsOf(program.segments)) })
      .onConflict((oc) => oc.columns(['program_id', 'week_start']).doNothing())
      .execute();
    written.push(week);
  }
  return written;
}

/** The stored weeks, newest first. */
export async function segmentWeeks(db: Db, programId: string, limit = 12): Promise<SegmentWeek[]> {
  const { rows } = await sql<{ week_start: string; flows: Flow[] }>`
    SELECT to_char(week_start, 'YYYY-MM-DD') AS week_start, flows FROM segment_week
    WHERE program_id = ${programId} ORDER BY week_start DESC LIMIT ${limit}`.execute(db);
  return rows.map((r) => ({ weekStart: r.week_start, weekEnd: addDays(r.week_start, 6), flows: r.flows }));
}
