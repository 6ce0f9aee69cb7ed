import { Type, type Static } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';
import { databaseTimeZone } from '../enrollment/stats.js';

/**
 * The migration funnel "plastic → wallet" behind `GET /api/v1/stats/migration` (docs/import.md,
 * "Migration funnel"). Only cards created by an import (`card.import_id`) are counted; each step
 * counts the cards that reached it, whatever the order:
 *
 * - imported: cards an import created;
 * - invited: at least one invitation actually sent (SMS or e-mail; not failed, not without address);
 * - opened: the card page was opened at least once (`card_page_view`);
 * - installed: at least one `installed` wallet event (Apple's first device or Google's save), also
 *   split by wallet (a card on both wallets counts once in `installed`, once in each wallet);
 * - purchased: a completed purchase at or after the card's first install (the wallet card in use).
 *
 * Rates are shares of `imported` (4 decimals, null when nothing was imported). Groups: per import
 * (the 100 latest), per store (`card.store`, the 100 largest), per ISO week of the import's start in
 * the program's time zone (the 104 latest); and `stepsByWeek`: when the cards got there — per ISO
 * week, the cards whose step first happened in it (how the move progresses after one big import).
 */

const Count = Type.Integer({ minimum: 0 });
const Rate = Type.Union([Type.Number(), Type.Null()], { description: 'Share of `imported`, 0..1 (4 decimals); null when nothing was imported' });

const MigrationFigures = {
  imported: Count,
  invited: Count,
  opened: Count,
  installed: Count,
  apple: Count,
  google: Count,
  purchased: Count,
  invitedRate: Rate,
  openedRate: Rate,
  installedRate: Rate,
  purchasedRate: Rate,
};

export const MAX_MIGRATION_GROUPS = { imports: 100, stores: 100, weeks: 104 } as const;

export const MigrationQuerySchema = Type.Object({
  importId: Type.Optional(Type.String({ format: 'uuid', maxLength: 36, description: 'Only the cards of this import' })),
});

export const MigrationStatsSchema = Type.Object({
  timeZone: Type.String(),
  totals: Type.Object(MigrationFigures),
  byImport: Type.Array(
    Type.Object({
      importId: Type.String({ format: 'uuid' }),
      fileName: Type.Union([Type.String(), Type.Null()]),
      createdAt: Type.String({ format: 'date-time' }),
      ...MigrationFigures,
    }),
  ),
  byStore: Type.Array(Type.Object({ store: Type.Union([Type.String(), Type.Null()], { description: 'null: the row carried no store' }), ...MigrationFigures })),
  byWeek: Type.Array(
    Type.Object({
      week: Type.String({ description: 'ISO week of the import, e.g. 2026-W49' }),
      weekStart: Type.String({ format: 'date', description: 'Monday' }),
      ...MigrationFigures,
    }),
  ),
  stepsByWeek: Type.Array(
    Type.Object({
      week: Type.String({ description: 'ISO week in which the cards reached the step, e.g. 2026-W49' }),
      weekStart: Type.String({ format: 'date', description: 'Monday' }),
      invited: Count,
      opened: Count,
      installed: Count,
      purchased: Count,
    }),
    { description: 'Imported cards by the week each step first happened (the first sent invitation, first page view, first install, first purchase after it); the 104 latest weeks' },
  ),
});
export type MigrationStats = Static<typeof MigrationStatsSchema>;
export type MigrationFigureSet = Static<typeof MigrationStatsSchema>['totals'];

function rate(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : Math.round((numerator / denominator) * 10_000) / 10_000;
}

interface Row {
  g_import: number;
  g_store: number;
  g_week: number;
  import_id: string | null;
  store: string | null;
  week: string | null;
  week_start: string | null;
  imported: number;
  invited: number;
  opened: number;
  installed: number;
  apple: number;
  google: number;
  purchased: number;
}

function figures(row: Row): MigrationFigureSet {
  return {
    imported: row.imported,
    invited: row.invited,
    opened: row.opened,
    installed: row.installed,
    apple: row.apple,
    google: row.google,
    purchased: row.purchased,
    invitedRate: rate(row.invited, row.imported),
    openedRate: rate(row.opened, row.imported),
    installedRate: rate(row.installed, row.imported),
    purchasedRate: rate(row.purchased, row.imported),
  };
}

const EMPTY: Row = { g_import: 1, g_store: 1, g_week: 1, import_id: null, store: null, week: null, week_start: null, imported: 0, invited: 0, opened: 0, installed: 0, apple: 0, google: 0, purchased: 0 };

export async function migrationStats(db: Db, program: ProgramRow, query: { importId?: string } = {}): Promise<MigrationStats> {
  const tz = await databaseTimeZone(db, program.time_zone);
  const programId = program.id;
  const onlyImport = query.importId ? sql`AND c.import_id = ${query.importId}::uuid` : sql``;
  const stats = await buildFromRows(await groupedRows(db, programId, tz, onlyImport), db, programId, tz);
  return { ...stats, stepsByWeek: await stepsByWeek(db, programId, tz, onlyImport) };
}

/** Per week of the step: each imported card counts once per step, in the week it first reached it. */
async function stepsByWeek(db: Db, programId: string, tz: string, onlyImport: ReturnType<typeof sql>): Promise<MigrationStats['stepsByWeek']> {
  const result = await sql<{ week: string; week_start: string; invited: number; opened: number; installed: number; purchased: number }>`
    WITH cards AS (
      SELECT c.id FROM card c WHERE c.program_id = ${programId} AND c.import_id IS NOT NULL ${onlyImport}
    ), installs AS (
      SELECT e.card_id, min(e.created_at) AS at FROM wallet_event e JOIN cards c ON c.id = e.card_id
      WHERE e.program_id = ${programId} AND e.kind = 'installed' GROUP BY e.card_id
    ), steps AS (
      SELECT 'invited' AS step, min(v.created_at) AS at FROM invitation v JOIN cards c ON c.id = v.card_id
      WHERE v.program_id = ${programId} AND v.status = 'sent' GROUP BY v.card_id
      UNION ALL
      SELECT 'opened', pv.first_at FROM card_page_view pv JOIN cards c ON c.id = pv.card_id WHERE pv.program_id = ${programId}
      UNION ALL
      SELECT 'installed', at FROM installs
      UNION ALL
      SELECT 'purchased', min(u.created_at) FROM purchase u JOIN installs s ON s.card_id = u.card_id
      WHERE u.program_id = ${programId} AND u.status = 'completed' AND u.created_at >= s.at GROUP BY u.card_id
    ), local AS (
      SELECT step, (at AT TIME ZONE ${tz})::date AS day FROM steps
    )
    SELECT to_char(day, 'IYYY-"W"IW') AS week, to_char(date_trunc('week', day)::date, 'YYYY-MM-DD') AS week_start,
           (count(*) FILTER (WHERE step = 'invited'))::int AS invited,
           (count(*) FILTER (WHERE step = 'opened'))::int AS opened,
           (count(*) FILTER (WHERE step = 'installed'))::int AS installed,
           (count(*) FILTER (WHERE step = 'purchased'))::int AS purchased
    FROM local GROUP BY 1, 2 ORDER BY 2 DESC LIMIT ${MAX_MIGRATION_GROUPS.weeks}`.execute(db);
  return result.rows.reverse().map((r) => ({ week: r.week, weekStart: r.week_start, invited: r.invited, opened: r.opened, installed: r.installed, purchased: r.purchased }));
}

/**
 * One pass over the program's imported cards: GROUPING SETS gives the totals and the three
 * breakdowns from the same per-card flags, so they always add up the same way.
 */
async function groupedRows(db: Db, programId: string, tz: string, onlyImport: ReturnType<typeof sql>): Promise<Row[]> {
  const result = await sql<Row>`
    WITH per_card AS (
      SELECT c.import_id, c.store,
             (i.created_at AT TIME ZONE ${tz})::date AS import_day,
             EXISTS (SELECT 1 FROM invitation v WHERE v.program_id = c.program_id AND v.card_id = c.id AND v.status = 'sent') AS invited,
             EXISTS (SELECT 1 FROM card_page_view pv WHERE pv.program_id = c.program_id AND pv.card_id = c.id) AS opened,
             w.first_at IS NOT NULL AS installed,
             coalesce(w.apple, false) AS apple, coalesce(w.google, false) AS google,
             w.first_at IS NOT NULL AND EXISTS (
               SELECT 1 FROM purchase u
               WHERE u.program_id = c.program_id AND u.card_id = c.id AND u.status = 'completed' AND u.created_at >= w.first_at
             ) AS purchased
      FROM card c
      JOIN card_import i ON i.id = c.import_id AND i.program_id = c.program_id
      LEFT JOIN LATERAL (
        SELECT min(e.created_at) AS first_at, bool_or(e.wallet = 'apple') AS apple, bool_or(e.wallet = 'google') AS google
        FROM wallet_event e WHERE e.program_id = c.program_id AND e.card_id = c.id AND e.kind = 'installed'
      ) w ON true
      WHERE c.program_id = ${programId} AND c.import_id IS NOT NULL ${onlyImport}
    )
    SELECT GROUPING(import_id)::int AS g_import, GROUPING(store)::int AS g_store,
           GROUPING(to_char(import_day, 'IYYY-"W"IW'), date_trunc('week', import_day))::int AS g_week,
           import_id, store,
           to_char(import_day, 'IYYY-"W"IW') AS week,
           to_char(date_trunc('week', import_day)::date, 'YYYY-MM-DD') AS week_start,
           count(*)::int AS imported,
           (count(*) FILTER (WHERE invited))::int AS invited,
           (count(*) FILTER (WHERE opened))::int AS opened,
           (count(*) FILTER (WHERE installed))::int AS installed,
           (count(*) FILTER (WHERE apple))::int AS apple,
           (count(*) FILTER (WHERE google))::int AS google,
           (count(*) FILTER (WHERE purchased))::int AS purchased
    FROM per_card
    GROUP BY GROUPING SETS ((), (import_id), (store), (to_char(import_day, 'IYYY-"W"IW'), date_trunc('week', import_day)))`.execute(db);
  return result.rows;
}

async function buildFromRows(rows: Row[], db: Db, programId: string, tz: string): Promise<Omit<MigrationStats, 'stepsByWeek'>> {
  void tz;
  const totals = rows.find((r) => r.g_import === 1 && r.g_store === 1 && r.g_week !== 0) ?? EMPTY;
  const importRows = rows.filter((r) => r.g_import === 0);
  const imports = importRows.length
    ? await db
        .selectFrom('card_import')
        .select(['id', 'file_name', 'created_at'])
        .where('program_id', '=', programId)
        .where(
          'id',
          'in',
          importRows.map((r) => r.import_id!),
        )
        .execute()
    : [];
  const importById = new Map(imports.map((i) => [i.id, i]));
  const byImport = importRows
    .map((r) => ({ row: r, meta: importById.get(r.import_id!) }))
    .filter((x) => x.meta)
    .sort((a, b) => b.meta!.created_at.getTime() - a.meta!.created_at.getTime())
    .slice(0, MAX_MIGRATION_GROUPS.imports)
    .map(({ row, meta }) => ({ importId: row.import_id!, fileName: meta!.file_name, createdAt: meta!.created_at.toISOString(), ...figures(row) }));
  const byStore = rows
    .filter((r) => r.g_store === 0)
    .sort((a, b) => b.imported - a.imported || (a.store ?? '').localeCompare(b.store ?? ''))
    .slice(0, MAX_MIGRATION_GROUPS.stores)
    .map((r) => ({ store: r.store, ...figures(r) }));
  const byWeek = rows
    .filter((r) => r.g_week === 0)
    .sort((a, b) => (a.week_start! < b.week_start! ? -1 : 1))
    .slice(-MAX_MIGRATION_GROUPS.weeks)
    .map((r) => ({ week: r.week!, weekStart: r.week_start!, ...figures(r) }));
  return { timeZone: tz, totals: figures(totals), byImport, byStore, byWeek };
}
