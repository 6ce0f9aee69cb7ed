import { Type, type Static } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';
import { CalendarDate } from '../http/schemas.js';
import { localDay, safeTimeZone } from './funnel.js';

/**
 * The funnel report behind `GET /api/v1/stats` (definitions in the README, "Enrollment and
 * distribution"). Days are calendar days in the program's time zone; `from` and `to` are inclusive.
 *
 * - views: join-page views, one per visitor per day (`join_view`), by the day they happened;
 * - cardsIssued: cards created in the period, by `card.source` / `card.staff_id` (API and form);
 * - cardsInstalled: of those cards, the ones with at least one `installed` wallet event up to the
 *   end of the period (a later removal does not undo it);
 * - wallets: installed/removed events in the period, per wallet;
 * - leaderboard: cards whose first-ever install falls in the period, by enrolling staff member and
 *   ISO week (Monday start) of that first install. A card counts once, whatever the wallet and
 *   however often it is removed and re-added.
 */

const Count = Type.Integer({ minimum: 0 });
const Rate = Type.Union([Type.Number(), Type.Null()], { description: 'Share 0..1 (4 decimals); null when the base is 0' });
const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

const FunnelFigures = {
  views: Count,
  cardsIssued: Count,
  cardsInstalled: Count,
  viewToCard: Rate,
  cardToInstall: Rate,
  viewToInstall: Rate,
};

export const StatsQuerySchema = Type.Object({
  from: Type.Optional(CalendarDate({ description: 'First day (inclusive), program time zone; default: 29 days before `to`' })),
  to: Type.Optional(CalendarDate({ description: 'Last day (inclusive), program time zone; default: today' })),
});

export const StatsSchema = Type.Object({
  from: Type.String({ format: 'date' }),
  to: Type.String({ format: 'date' }),
  timeZone: Type.String(),
  totals: Type.Object(FunnelFigures),
  wallets: Type.Object({
    apple: Type.Object({ installs: Count, removals: Count }),
    google: Type.Object({ installs: Count, removals: Count }),
  }),
  bySource: Type.Array(Type.Object({ source: Nullable(Type.String({ description: 'null: no source tag' })), ...FunnelFigures })),
  byStaff: Type.Array(
    Type.Object({
      staffId: Nullable(Type.String({ description: 'null: not enrolled through a staff link' })),
      name: Nullable(Type.String()),
      deleted: Type.Boolean(),
      ...FunnelFigures,
    }),
  ),
  leaderboard: Type.Array(
    Type.Object({
      week: Type.String({ description: 'ISO week, e.g. 2026-W48' }),
      weekStart: Type.String({ format: 'date', description: 'Monday' }),
      staff: Type.Array(Type.Object({ rank: Type.Integer(), staffId: Type.String(), name: Type.String(), installs: Count })),
    }),
  ),
});
export type Stats = Static<typeof StatsSchema>;

const DAY_MS = 86_400_000;
export const MAX_STATS_DAYS = 366;

function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/** Only real days of 1900–2999 (the API schema says so too): `0000-01-01` or `2026-02-31` never reach the database. */
function isDay(day: string): boolean {
  const ms = /^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$/.test(day) ? Date.parse(`${day}T00:00:00Z`) : Number.NaN;
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === day;
}

export function statsPeriod(query: { from?: string; to?: string }, now: Date, timeZone: string): { from: string; to: string } | { error: string } {
  const invalid = { error: 'from and to must be dates (YYYY-MM-DD, years 1900–2999)' };
  const to = query.to ?? localDay(now, timeZone);
  if (!isDay(to)) return invalid;
  const from = query.from ?? addDays(to, -29);
  if (!isDay(from)) return invalid;
  if (from > to) return { error: '`from` must not be after `to`' };
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
  if (days > MAX_STATS_DAYS) return { error: `The period may cover at most ${MAX_STATS_DAYS} days` };
  return { from, to };
}

function rate(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : Math.round((numerator / denominator) * 10_000) / 10_000;
}

function figures(views: number, cardsIssued: number, cardsInstalled: number) {
  return {
    views,
    cardsIssued,
    cardsInstalled,
    viewToCard: rate(cardsIssued, views),
    cardToInstall: rate(cardsInstalled, cardsIssued),
    viewToInstall: rate(cardsInstalled, views),
  };
}

/** PostgreSQL's own time zone names can lag behind Intl's; fall back to UTC rather than fail. */
export async function databaseTimeZone(db: Executor, timeZone: string): Promise<string> {
  const zone = safeTimeZone(timeZone);
  try {
    await sql`SELECT now() AT TIME ZONE ${zone}`.execute(db);
    return zone;
  } catch {
    return 'UTC';
  }
}

interface Tally {
  views: number;
  issued: number;
  installed: number;
}

export async function funnelStats(db: Db, program: ProgramRow, period: { from: string; to: string }): Promise<Stats> {
  const tz = await databaseTimeZone(db, program.time_zone);
  const programId = program.id;
  const bounds = await sql<{ start: Date; end: Date }>`
    SELECT (${period.from}::date::timestamp AT TIME ZONE ${tz}) AS start,
           ((${period.to}::date + 1)::timestamp AT TIME ZONE ${tz}) AS end`.execute(db);
  const { start, end } = bounds.rows[0];

  const views = await sql<{ source: string | null; staff_id: string | null; n: number }>`
    SELECT source, staff_id, count(*)::int AS n FROM join_view
    WHERE program_id = ${programId} AND day BETWEEN ${period.from}::date AND ${period.to}::date
    GROUP BY source, staff_id`.execute(db);

  const cards = await sql<{ source: string | null; staff_id: string | null; issued: number; installed: number }>`
    SELECT c.source, c.staff_id, count(*)::int AS issued,
           (count(*) FILTER (WHERE EXISTS (
              SELECT 1 FROM wallet_event e
              WHERE e.card_id = c.id AND e.kind = 'installed' AND e.created_at < ${end})))::int AS installed
    FROM card c
    WHERE c.program_id = ${programId} AND c.created_at >= ${start} AND c.created_at < ${end}
    GROUP BY c.source, c.staff_id`.execute(db);

  const events = await sql<{ wallet: 'apple' | 'google'; kind: 'installed' | 'removed'; n: number }>`
    SELECT wallet, kind, count(*)::int AS n FROM wallet_event
    WHERE program_id = ${programId} AND created_at >= ${start} AND created_at < ${end}
    GROUP BY wallet, kind`.execute(db);

  const weekly = await sql<{ staff_id: string; week: string; week_start: string; installs: number }>`
    WITH first_install AS (
      SELECT card_id, min(created_at) AS at FROM wallet_event
      WHERE program_id = ${programId} AND kind = 'installed'
      GROUP BY card_id
    ), local AS (
      SELECT c.staff_id, (f.at AT TIME ZONE ${tz})::date AS day
      FROM first_install f JOIN card c ON c.id = f.card_id
      WHERE c.staff_id IS NOT NULL AND f.at >= ${start} AND f.at < ${end}
    )
    SELECT staff_id, to_char(day, 'IYYY-"W"IW') AS week,
           to_char(date_trunc('week', day)::date, 'YYYY-MM-DD') AS week_start, count(*)::int AS installs
    FROM local GROUP BY staff_id, 2, 3`.execute(db);

  const staff = await db.selectFrom('staff_member').select(['id', 'name', 'deleted_at']).where('program_id', '=', programId).orderBy('created_at').execute();
  const staffById = new Map(staff.map((s) => [s.id, s]));

  const bySource = new Map<string | null, Tally>();
  const byStaff = new Map<string | null, Tally>();
  const tally = (map: Map<string | null, Tally>, key: string | null) => {
    let t = map.get(key);
    if (!t) map.set(key, (t = { views: 0, issued: 0, installed: 0 }));
    return t;
  };
  const totals: Tally = { views: 0, issued: 0, installed: 0 };
  for (const row of views.rows) {
    tally(bySource, row.source).views += row.n;
    tally(byStaff, row.staff_id).views += row.n;
    totals.views += row.n;
  }
  for (const row of cards.rows) {
    for (const t of [tally(bySource, row.source), tally(byStaff, row.staff_id), totals]) {
      t.issued += row.issued;
      t.installed += row.installed;
    }
  }
  // Every current staff member appears, with zeros if need be: the list doubles as the roster.
  for (const s of staff) if (!s.deleted_at) tally(byStaff, s.id);

  const wallets = { apple: { installs: 0, removals: 0 }, google: { installs: 0, removals: 0 } };
  for (const row of events.rows) wallets[row.wallet][row.kind === 'installed' ? 'installs' : 'removals'] += row.n;

  const weeks = new Map<string, { week: string; weekStart: string; staff: { staffId: string; name: string; installs: number }[] }>();
  for (const row of weekly.rows) {
    let week = weeks.get(row.week);
    if (!week) weeks.set(row.week, (week = { week: row.week, weekStart: row.week_start, staff: [] }));
    week.staff.push({ staffId: row.staff_id, name: staffById.get(row.staff_id)?.name ?? '', installs: row.installs });
  }
  const byFigures = (a: [string | null, Tally], b: [string | null, Tally]) =>
    b[1].views - a[1].views || b[1].issued - a[1].issued || String(a[0] ?? '\uffff').localeCompare(String(b[0] ?? '\uffff'));

  return {
    from: period.from,
    to: period.to,
    timeZone: tz,
    totals: figures(totals.views, totals.issued, totals.installed),
    wallets,
    bySource: [...bySource].sort(byFigures).map(([source, t]) => ({ source, ...figures(t.views, t.issued, t.installed) })),
    byStaff: [...byStaff].sort(byFigures).map(([staffId, t]) => ({
      staffId,
      name: staffId ? (staffById.get(staffId)?.name ?? null) : null,
      deleted: staffId ? Boolean(staffById.get(staffId)?.deleted_at) : false,
      ...figures(t.views, t.issued, t.installed),
    })),
    leaderboard: [...weeks.values()]
      .sort((a, b) => a.weekStart.localeCompare(b.weekStart))
      .map((w) => {
        const sorted = w.staff.sort((a, b) => b.installs - a.installs || a.name.localeCompare(b.name));
        // Competition ranking: equal installs share a rank (1, 1, 3).
        return {
          week: w.week,
          weekStart: w.weekStart,
          staff: sorted.map((s) => ({ rank: 1 + sorted.filter((o) => o.installs > s.installs).length, ...s })),
        };
      }),
  };
}
