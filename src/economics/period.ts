/**
 * Periods and buckets of the economics report: local calendar days of the program's time zone
 * (YYYY-MM-DD strings; arithmetic on them in UTC, where every day has 24 hours).
 */
import { localDay } from '../enrollment/funnel.js';

export type GroupBy = 'day' | 'week' | 'month';

export const MAX_PERIOD_DAYS = 1096; // three years (one leap day)
export const MAX_DAY_BUCKETS = 366;

const DAY_MS = 86_400_000;

const parse = (day: string) => Date.parse(`${day}T00:00:00Z`);
const format = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function addDays(day: string, days: number): string {
  return format(parse(day) + days * DAY_MS);
}

export function daysBetween(from: string, to: string): number {
  return Math.round((parse(to) - parse(from)) / DAY_MS);
}

export function monthStart(day: string): string {
  return `${day.slice(0, 7)}-01`;
}

export function addMonths(month: string, months: number): string {
  const d = new Date(parse(month));
  return format(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1));
}

/** Monday of the ISO week of `day`. */
export function weekStart(day: string): string {
  const weekday = (new Date(parse(day)).getUTCDay() + 6) % 7; // Monday = 0
  return addDays(day, -weekday);
}

export function bucketStart(day: string, groupBy: GroupBy): string {
  return groupBy === 'day' ? day : groupBy === 'week' ? weekStart(day) : monthStart(day);
}

function nextBucket(start: string, groupBy: GroupBy): string {
  return groupBy === 'day' ? addDays(start, 1) : groupBy === 'week' ? addDays(start, 7) : addMonths(start, 1);
}

export interface Bucket {
  /** The bucket's own first day (a week's Monday, a month's first day), maybe before the period. */
  key: string;
  /** The part of the bucket inside the period, inclusive. */
  start: string;
  end: string;
}

/** The buckets covering [from, to], clipped to the period. */
export function buckets(from: string, to: string, groupBy: GroupBy): Bucket[] {
  const out: Bucket[] = [];
  for (let key = bucketStart(from, groupBy); key <= to; key = nextBucket(key, groupBy)) {
    const last = addDays(nextBucket(key, groupBy), -1);
    out.push({ key, start: key < from ? from : key, end: last > to ? to : last });
  }
  return out;
}

/** Months (first days) that [from, to] overlaps. */
export function monthsOf(from: string, to: string): string[] {
  const out: string[] = [];
  for (let m = monthStart(from); m <= to; m = addMonths(m, 1)) out.push(m);
  return out;
}

export interface Period {
  from: string;
  to: string;
  groupBy: GroupBy;
}

const isDay = (value: string) => /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(parse(value)) && format(parse(value)) === value;

/**
 * The period of a request: `to` defaults to today (program time zone), `from` to the first day of
 * the month eleven months before (twelve calendar months), `groupBy` to month. At most three
 * years, and at most 366 day buckets.
 */
export function economicsPeriod(query: { from?: string; to?: string; groupBy?: string }, now: Date, timeZone: string): Period | { error: string } {
  const to = query.to ?? localDay(now, timeZone);
  const from = query.from ?? addMonths(monthStart(to), -11);
  const groupBy = (query.groupBy ?? 'month') as GroupBy;
  if (!isDay(from) || !isDay(to)) return { error: 'from and to must be dates (YYYY-MM-DD)' };
  if (from < '2000-01-01' || to > '2100-12-31') return { error: 'The period must lie between 2000-01-01 and 2100-12-31' };
  if (from > to) return { error: '`from` must not be after `to`' };
  if (!['day', 'week', 'month'].includes(groupBy)) return { error: 'groupBy must be day, week or month' };
  const days = daysBetween(from, to) + 1;
  if (days > MAX_PERIOD_DAYS) return { error: `The period may cover at most ${MAX_PERIOD_DAYS} days` };
  if (groupBy === 'day' && days > MAX_DAY_BUCKETS) return { error: `Grouped by day, the period may cover at most ${MAX_DAY_BUCKETS} days` };
  return { from, to, groupBy };
}
