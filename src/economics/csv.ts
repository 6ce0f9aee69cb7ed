/**
 * CSV export of the economics report (RFC 4180: comma, CRLF, quotes doubled), one table per file,
 * for a spreadsheet: money in major units with a dot ("1250.50"), shares as decimals (0.1234),
 * dates as YYYY-MM-DD. Text cells that a spreadsheet would take for a formula (=, +, -, @, tab, CR)
 * get a leading apostrophe (CSV injection); numbers are written as numbers.
 */
import { currencyDigits } from '../cabinet/i18n.js';
import type { CsvTable, Economics } from './schemas.js';

type Cell = string | number | null;

function textCell(value: string): string {
  if (/^-?\d+(\.\d+)?$/.test(value)) return value; // a number written as text (money): no formula
  const guarded = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(guarded) ? `"${guarded.replace(/"/g, '""')}"` : guarded;
}

function cell(value: Cell): string {
  if (value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  return textCell(value);
}

export function toCsv(header: string[], rows: Cell[][]): string {
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** Minor units as a plain decimal in major units, exactly (no floating point). */
export function majorUnits(minor: number, digits: number): string {
  if (digits === 0) return String(minor);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  const scale = 10 ** digits;
  return `${sign}${Math.floor(abs / scale)}.${String(abs % scale).padStart(digits, '0')}`;
}

export function economicsCsv(report: Economics, table: CsvTable): string {
  const digits = currencyDigits(report.currency);
  const money = (minor: number | null): Cell => (minor === null ? null : majorUnits(minor, digits));
  switch (table) {
    case 'periods':
      return toCsv(
        ['period', 'start', 'end', 'liability_points', 'liability_value', 'issued', 'redeemed', 'returned', 'reversed', 'expired', 'adjusted_out',
          'purchases', 'amount', 'revenue', 'average_check', 'non_member_amount', 'member_share', 'cards_enrolled'],
        report.periods.map((p) => [p.key, p.start, p.end, p.liabilityPoints, money(p.liabilityValue), p.issued, p.redeemed, p.returned, p.reversed,
          p.expired, p.adjustedOut, p.purchases, money(p.amount), money(p.revenue), money(p.averageCheck), money(p.nonMemberAmount), p.memberShare, p.cardsEnrolled]),
      );
    case 'summary': {
      const l = report.liability;
      const pts = report.points;
      const s = report.sales;
      const rows: Cell[][] = [
        ['liability_opening_points', l.openingPoints], ['liability_opening_value', money(l.openingValue)],
        ['liability_closing_points', l.closingPoints], ['liability_closing_value', money(l.closingValue)],
        ['liability_change_value', money(l.changeValue)],
        ['points_issued', pts.issued], ['points_reversed', pts.reversed], ['points_redeemed', pts.redeemed], ['points_returned', pts.returned],
        ['points_expired', pts.expired], ['points_adjusted_out', pts.adjustedOut], ['redemption_rate', pts.redemptionRate], ['breakage_rate', pts.breakageRate],
        ...Object.entries(pts.issuedByKind).map(([kind, n]): Cell[] => [`points_issued_${kind}`, n]),
        ['purchases', s.purchases], ['amount', money(s.amount)], ['paid', money(s.paid)], ['refunds', s.refunds], ['refunded_amount', money(s.refundedAmount)],
        ['revenue', money(s.revenue)], ['average_check', money(s.averageCheck)], ['non_member_checks', s.nonMemberChecks],
        ['non_member_amount', money(s.nonMemberAmount)], ['member_share', s.memberShare], ['cards_enrolled', s.cardsEnrolled],
        ['average_active_members', report.members.averageActiveMembers], ['purchase_frequency', report.members.frequency],
        ['returning_share', report.members.returningShare], ['repeat_rate', report.members.repeatRate],
      ];
      return toCsv(['figure', 'value'], rows);
    }
    case 'members':
      return toCsv(
        ['month', 'active_members', 'new_buyers', 'returning_members', 'purchases', 'frequency', 'ever_buyers', 'repeat_buyers', 'repeat_rate'],
        report.members.months.map((m) => [m.month, m.activeMembers, m.newBuyers, m.returningMembers, m.purchases, m.frequency, m.everBuyers, m.repeatBuyers, m.repeatRate]),
      );
    case 'cohorts':
      return toCsv(
        ['cohort', 'cards', 'months_since', 'active', 'retention', 'paid', 'cltv'],
        report.cohorts.flatMap((c) => c.active.map((active, k): Cell[] => [c.cohort, c.cards, k, active, c.retention[k] ?? null, money(c.paid[k] ?? 0), money(c.cltv[k] ?? 0)])),
      );
    case 'cltv-tiers':
      return toCsv(
        ['tier', 'cards', 'lifetime_spend', 'value_per_card', 'tenure_months', 'value_per_card_month'],
        report.cltvByTier.map((t) => [t.tier, t.cards, money(t.lifetimeSpend), money(t.valuePerCard), t.tenureMonths, money(t.valuePerCardMonth)]),
      );
    case 'program-cost':
      return toCsv(
        ['kind', 'points', 'value', 'cards', 'revenue_of_cards', 'cost_share'],
        report.programCost.byKind.map((k) => [k.kind, k.points, money(k.value), k.cards, money(k.revenueOfCards), k.costShare]),
      );
  }
}
