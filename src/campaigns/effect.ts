/**
 * A campaign's effect, measured against its control group (docs/campaigns.md, "Control groups and
 * the effect"). For both groups, over the window [start, start + effect_window_days) (up to now
 * while the window is open): the share of holders who purchased, revenue and purchases per
 * holder, the average check; then treated − control with a 95 % interval (src/economics/statistics.ts:
 * two proportions for shares, Welch for means).
 *
 * Intention to treat: the treated group is every card the campaign wrote down as a recipient
 * (also those skipped later because consent was withdrawn), the control group every card held
 * back. Purchases count when completed (a purchase refunded since does not), at their check amount.
 *
 * Automations are measured the same way, pooled over their campaigns: each card against the
 * window of the campaign that chose it.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { twoProportions, welch, type GroupMoments, type Interval } from '../economics/statistics.js';
import type { CampaignEffect } from './schemas.js';
import type { CampaignRow } from './service.js';

const DAY_MS = 86_400_000;
const PROPORTION_METHOD = 'two-proportion z-test (Wald interval)';
const WELCH_METHOD = "Welch's t-test";

interface GroupRow {
  control: boolean;
  holders: number;
  buyers: number;
  purchases: number;
  revenue: number;
  revenue_var: number | null;
  purchases_var: number | null;
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
const per = (value: number, n: number, digits = 2) => (n === 0 ? null : round(value / n, digits));

function group(row: GroupRow | undefined) {
  const holders = Number(row?.holders ?? 0);
  const buyers = Number(row?.buyers ?? 0);
  const purchases = Number(row?.purchases ?? 0);
  const revenue = Number(row?.revenue ?? 0);
  return {
    holders,
    buyers,
    conversion: per(buyers, holders, 4),
    purchases,
    purchasesPerHolder: per(purchases, holders),
    revenue,
    revenuePerHolder: per(revenue, holders),
    averageCheck: per(revenue, purchases),
  };
}

function moments(row: GroupRow, value: 'revenue' | 'purchases'): GroupMoments {
  const n = Number(row.holders);
  return { n, mean: n === 0 ? 0 : Number(row[value]) / n, variance: Number((value === 'revenue' ? row.revenue_var : row.purchases_var) ?? 0) };
}

function difference(interval: (Interval & { df?: number }) | null, method: string, digits: number) {
  if (!interval) return null;
  return {
    difference: round(interval.difference, digits),
    low: round(interval.low, digits),
    high: round(interval.high, digits),
    pValue: round(interval.pValue, 4),
    significant: interval.significant,
    method,
  };
}

/** Treated and control figures over each campaign's window, pooled over `campaignIds`. */
async function groupRows(db: Db, programId: string, campaigns: Array<{ id: string; start: Date; end: Date }>, now: Date): Promise<GroupRow[]> {
  const ids = campaigns.map((c) => c.id);
  const at = now.getTime();
  // The purchases of the windows, read once by time (purchase_program_time_idx) and joined to the
  // holders by card: with the bounds as values the planner sees a range of days, not one probe per
  // holder (5 s instead of a few hundred ms at 170,000 holders, bench:economics).
  const first = new Date(Math.min(...campaigns.map((c) => c.start.getTime())));
  const last = new Date(Math.min(at, Math.max(...campaigns.map((c) => c.end.getTime()))));
  return db.transaction().execute(async (trx) => {
    await sql`SET LOCAL work_mem = '64MB'`.execute(trx);
    // As for the segments: parallel workers would each build the whole per-card aggregate again, and
    // compiling these short statements (JIT) cost more than running them (bench:economics).
    await sql`SET LOCAL max_parallel_workers_per_gather = 0`.execute(trx);
    await sql`SET LOCAL jit = off`.execute(trx);
    if (campaigns.length === 1) {
      // One window for every holder: the window's purchases summed per card first, then one row
      // per holder joined to them, no grouping by holder.
      const { rows } = await sql<GroupRow>`
        WITH pc AS (
          SELECT card_id, count(*) AS purchases, sum(amount) AS revenue FROM purchase
          WHERE program_id = ${programId} AND status = 'completed' AND created_at >= ${first.toISOString()}::timestamptz
            AND created_at < ${last.toISOString()}::timestamptz
          GROUP BY card_id
        ),
        g AS (
          SELECT card_id, false AS control FROM campaign_recipient WHERE campaign_id = ${ids[0]}
          UNION ALL
          SELECT card_id, true FROM campaign_control WHERE campaign_id = ${ids[0]}
        )
        SELECT g.control, count(*)::int AS holders, count(pc.card_id)::int AS buyers,
          coalesce(sum(pc.purchases), 0)::bigint AS purchases, coalesce(sum(pc.revenue), 0)::bigint AS revenue,
          var_samp(coalesce(pc.revenue, 0)::float8) AS revenue_var, var_samp(coalesce(pc.purchases, 0)::float8) AS purchases_var
        FROM g LEFT JOIN pc ON pc.card_id = g.card_id
        GROUP BY g.control`.execute(trx);
      return rows;
    }
    const { rows } = await sql<GroupRow>`
      WITH c AS (
        SELECT id, started_at AS s, least(started_at + make_interval(days => effect_window_days), ${now.toISOString()}::timestamptz) AS e
        FROM campaign WHERE id = ANY(${ids}::uuid[]) AND started_at IS NOT NULL
      ),
      g AS (
        SELECT campaign_id, card_id, false AS control FROM campaign_recipient WHERE campaign_id = ANY(${ids}::uuid[])
        UNION ALL
        SELECT campaign_id, card_id, true FROM campaign_control WHERE campaign_id = ANY(${ids}::uuid[])
      ),
      p AS MATERIALIZED (
        SELECT card_id, created_at, amount FROM purchase
        WHERE program_id = ${programId} AND status = 'completed' AND created_at >= ${first.toISOString()}::timestamptz
          AND created_at < ${last.toISOString()}::timestamptz
      ),
      holder AS (
        SELECT g.control, count(p.card_id) AS purchases, coalesce(sum(p.amount), 0) AS revenue
        FROM g
        JOIN c ON c.id = g.campaign_id
        LEFT JOIN p ON p.card_id = g.card_id AND p.created_at >= c.s AND p.created_at < c.e
        GROUP BY g.control, g.campaign_id, g.card_id
      )
      SELECT control, count(*)::int AS holders, (count(*) FILTER (WHERE purchases > 0))::int AS buyers,
        coalesce(sum(purchases), 0)::bigint AS purchases, coalesce(sum(revenue), 0)::bigint AS revenue,
        var_samp(revenue::float8) AS revenue_var, var_samp(purchases::float8) AS purchases_var
      FROM holder GROUP BY control`.execute(trx);
    return rows;
  });
}

function effectOf(rows: GroupRow[], window: CampaignEffect['window'], winback: boolean): CampaignEffect {
  const treatedRow = rows.find((r) => !r.control);
  const controlRow = rows.find((r) => r.control);
  const treated = group(treatedRow);
  const control = controlRow ? group(controlRow) : null;
  const conversion = control ? twoProportions(treated.buyers, treated.holders, control.buyers, control.holders) : null;
  const revenue = treatedRow && controlRow ? welch(moments(treatedRow, 'revenue'), moments(controlRow, 'revenue')) : null;
  const purchases = treatedRow && controlRow ? welch(moments(treatedRow, 'purchases'), moments(controlRow, 'purchases')) : null;
  const scale = (i: Interval | null) => (i ? { estimate: round(i.difference * treated.holders, 2), low: round(i.low * treated.holders, 2), high: round(i.high * treated.holders, 2) } : null);
  const incrementalBuyers = scale(conversion);
  const incrementalRevenue = scale(revenue);
  return {
    window,
    treated,
    control,
    conversion: difference(conversion, PROPORTION_METHOD, 4),
    revenuePerHolder: difference(revenue, WELCH_METHOD, 2),
    purchasesPerHolder: difference(purchases, WELCH_METHOD, 4),
    averageCheck: control && treated.averageCheck !== null && control.averageCheck !== null ? { difference: round(treated.averageCheck - control.averageCheck, 2) } : null,
    incremental: incrementalBuyers && incrementalRevenue ? { buyers: incrementalBuyers, revenue: incrementalRevenue } : null,
    reactivated: winback && control ? { treated: treated.buyers, control: control.buyers, share: difference(conversion, PROPORTION_METHOD, 4) } : null,
  };
}

/** Whether a campaign's audience is a win-back one: Sleeping and/or Lost only, or the win-back automation. */
export function isWinback(audience: unknown, automation: string | null): boolean {
  if (automation === 'winback') return true;
  const segments = (audience as { segments?: string[] } | null)?.segments;
  return Array.isArray(segments) && segments.length > 0 && segments.every((s) => s === 'sleeping' || s === 'lost');
}

/** The effect of one campaign (null before it started sending). */
export async function campaignEffect(db: Db, row: CampaignRow, now: Date): Promise<CampaignEffect | null> {
  if (!row.started_at) return null;
  const start = row.started_at;
  const end = new Date(start.getTime() + row.effect_window_days * DAY_MS);
  const rows = await groupRows(db, row.program_id, [{ id: row.id, start, end }], now);
  return effectOf(rows, { start: start.toISOString(), end: end.toISOString(), days: row.effect_window_days, complete: now.getTime() >= end.getTime() }, isWinback(row.audience, row.automation));
}

/**
 * An automation's effect over its campaigns that started in [from, to]: each chosen card against
 * its own campaign's window. `complete` when every window is over.
 */
export async function automationEffect(
  db: Db,
  programId: string,
  automations: readonly string[],
  range: { from: Date; to: Date },
  now: Date,
): Promise<(CampaignEffect & { campaigns: number }) | null> {
  const campaigns = await db
    .selectFrom('campaign')
    .select(['id', 'started_at', 'effect_window_days'])
    .where('program_id', '=', programId)
    .where('automation', 'in', [...automations])
    .where('started_at', '>=', range.from)
    .where('started_at', '<=', range.to)
    .where('started_at', 'is not', null)
    .execute();
  if (campaigns.length === 0) return null;
  const rows = await groupRows(
    db,
    programId,
    campaigns.map((c) => ({ id: c.id, start: c.started_at!, end: new Date(c.started_at!.getTime() + c.effect_window_days * DAY_MS) })),
    now,
  );
  const lastEnd = Math.max(...campaigns.map((c) => (c.started_at?.getTime() ?? 0) + c.effect_window_days * DAY_MS));
  const firstStart = Math.min(...campaigns.map((c) => c.started_at?.getTime() ?? 0));
  const days = Math.max(...campaigns.map((c) => c.effect_window_days));
  return {
    ...effectOf(rows, { start: new Date(firstStart).toISOString(), end: new Date(lastEnd).toISOString(), days, complete: now.getTime() >= lastEnd }, automations.includes('winback')),
    campaigns: campaigns.length,
  };
}
