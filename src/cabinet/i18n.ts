import { safeTimeZone } from '../enrollment/funnel.js';
import { en } from '../i18n/en.js';
import { count, currencyDigits, formatMoney, formatNumber, formatPhone, localeOf, moneyInputValue, points, quote, type Lang } from '../i18n/format.js';
import { ru, type RuCatalogue } from '../i18n/ru.js';
import type { StaffRole } from './auth.js';

/**
 * The cabinet's shared texts (layout, navigation, errors, formatting). Texts that belong to one
 * screen live in that screen's file (`texts({ru, en})`), so a screen is one file to read and change.
 */
export { count, currencyDigits, formatMoney, formatNumber, formatPhone, moneyInputValue, points, quote, type Lang };

/** Every screen's texts, for test/unit/i18n-catalogue.test.ts (same keys, every template renders). */
export const SCREEN_TEXTS: Array<Record<Lang, unknown>> = [];

/** A screen's own texts: both languages must have the same keys (the type checks it, and the catalogue test). */
export function texts<T>(byLang: { ru: T; en: T }): Record<Lang, T> {
  SCREEN_TEXTS.push(byLang);
  return byLang;
}

export const CABINET_MESSAGES: Record<Lang, CabinetMessages> = { ru: ru.cabinet, en: en.cabinet };
export type CabinetMessages = RuCatalogue['cabinet'];

// ---------------------------------------------------------------------------------------------
// Money, numbers and dates
// ---------------------------------------------------------------------------------------------

const locale = localeOf;

/**
 * What a cashier typed as an amount, in minor units: "1250", "1250.5", "1 250,50" (space or NBSP
 * groups, dot or comma decimals). Undefined when it is not an amount.
 */
export function parseMoney(input: string, currency: string): number | undefined {
  const digits = currencyDigits(currency);
  const cleaned = input.replace(/[\s\u00a0\u202f]/g, '').replace(',', '.');
  const match = /^(\d{1,12})(?:\.(\d*))?$/.exec(cleaned);
  if (!match) return undefined;
  const fraction = match[2] ?? '';
  if (fraction.length > digits) return undefined;
  const minor = Number(match[1]) * 10 ** digits + Number(fraction.padEnd(digits, '0') || '0');
  return Number.isSafeInteger(minor) ? minor : undefined;
}

/** A non-negative whole number ("1 000" allowed), or undefined. */
export function parseWhole(input: string): number | undefined {
  const cleaned = input.replace(/[\s\u00a0\u202f]/g, '');
  if (!/^\d{1,15}$/.test(cleaned)) return undefined;
  const n = Number(cleaned);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A decimal number ("12.5" or "12,5"), or undefined. */
export function parseDecimal(input: string): number | undefined {
  const cleaned = input.replace(/[\s\u00a0\u202f]/g, '').replace(',', '.');
  if (!/^-?\d{1,12}(\.\d{1,12})?$/.test(cleaned)) return undefined;
  return Number(cleaned);
}

export function formatDateTime(lang: Lang, timeZone: string, value: Date | string): string {
  return new Intl.DateTimeFormat(locale(lang), { timeZone: safeTimeZone(timeZone), dateStyle: 'short', timeStyle: 'short' }).format(new Date(value));
}

export function formatDate(lang: Lang, timeZone: string, value: Date | string): string {
  return new Intl.DateTimeFormat(locale(lang), { timeZone: safeTimeZone(timeZone), dateStyle: 'medium' }).format(new Date(value));
}

export function formatPercent(lang: Lang, share: number | null): string {
  if (share === null) return '—';
  return new Intl.NumberFormat(locale(lang), { style: 'percent', maximumFractionDigits: 1 }).format(share);
}

/** "1234 5678 9012": a card number as it is printed. */
export function groupedCardNumber(number: string): string {
  return number.replace(/(\d{4})(?=\d)/g, '$1 ');
}

// ---------------------------------------------------------------------------------------------
// Local date-times in the program's time zone (datetime-local fields)
// ---------------------------------------------------------------------------------------------

function zoneOffsetMs(at: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: safeTimeZone(timeZone),
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return Math.round((asUtc - at.getTime()) / 60_000) * 60_000;
}

/** "2026-12-01T10:00" in `timeZone` → the instant. Undefined when it is not such a value. */
export function zonedLocalToUtc(local: string, timeZone: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::\d{2})?$/.exec(local);
  if (!m) return undefined;
  const naive = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  if (Number.isNaN(naive)) return undefined;
  let guess = naive - zoneOffsetMs(new Date(naive), timeZone);
  guess = naive - zoneOffsetMs(new Date(guess), timeZone);
  return new Date(guess);
}

/** An instant as "2026-12-01T10:00" in `timeZone` (for a datetime-local field). */
export function utcToZonedLocal(at: Date, timeZone: string): string {
  return new Date(at.getTime() + zoneOffsetMs(at, timeZone)).toISOString().slice(0, 16);
}
