import { safeTimeZone } from '../enrollment/funnel.js';
import { formatNumber, points, type Lang } from '../enrollment/i18n.js';
import type { StaffRole } from './auth.js';

/**
 * The cabinet's shared texts (layout, navigation, errors, formatting). Texts that belong to one
 * screen live in that screen's file (`texts({ru, en})`), so a screen is one file to read and change.
 */
export { formatNumber, points, type Lang };

/** A screen's own texts: both languages must have the same keys (the type checks it). */
export function texts<T>(byLang: { ru: T; en: T }): Record<Lang, T> {
  return byLang;
}

const ru = {
  langName: 'Русский',
  switchTo: 'Switch to English',
  skip: 'Перейти к содержимому',
  cabinet: 'Кабинет',
  mainNav: 'Разделы кабинета',
  signedInAs: (name: string, role: string) => `${name}, ${role}`,
  signOut: 'Выйти',
  nav: {
    home: 'Обзор',
    cashier: 'Касса',
    campaigns: 'Рассылки',
    segments: 'Сегменты',
    automations: 'Автоматизации',
    stats: 'Статистика',
    qr: 'QR-коды',
    settings: 'Настройки',
    design: 'Дизайн карты',
    staff: 'Сотрудники',
    keys: 'API-ключи',
    webhooks: 'Вебхуки',
    account: 'Профиль',
  },
  roles: { owner: 'владелец', marketer: 'маркетолог', cashier: 'кассир' } as Record<StaffRole, string>,
  save: 'Сохранить',
  saved: 'Сохранено.',
  cancel: 'Отмена',
  remove: 'Удалить',
  yes: 'да',
  no: 'нет',
  none: '—',
  optional: 'необязательно',
  errorsHeading: 'Проверьте форму',
  errorPrefix: 'Ошибка: ',
  showTable: 'Показать данные таблицей',
  copy: 'Копировать',
  copied: 'Скопировано',
  print: 'Печать',
  errors: {
    forbiddenTitle: 'Нет доступа',
    forbiddenText: 'Этот раздел недоступен для вашей роли. Если он нужен, попросите владельца изменить роль.',
    notFoundTitle: 'Не найдено',
    notFoundText: 'Такой страницы или записи нет.',
    csrfTitle: 'Форма устарела',
    csrfText: 'Страница была открыта слишком давно или в другом окне. Вернитесь назад, обновите страницу и отправьте форму ещё раз.',
    signedOutTitle: 'Сеанс завершён',
    signedOutText: 'Войдите снова, чтобы продолжить.',
    tooManyTitle: 'Слишком много попыток',
    tooManyText: 'Подождите немного и попробуйте снова.',
    serverTitle: 'Что-то пошло не так',
    serverText: 'Попробуйте ещё раз. Если ошибка повторяется, сообщите администратору.',
    backHome: 'На главную кабинета',
    signIn: 'Войти',
  },
};

type Messages = typeof ru;

const en: Messages = {
  langName: 'English',
  switchTo: 'Перейти на русский',
  skip: 'Skip to content',
  cabinet: 'Cabinet',
  mainNav: 'Cabinet sections',
  signedInAs: (name, role) => `${name}, ${role}`,
  signOut: 'Sign out',
  nav: {
    home: 'Overview',
    cashier: 'Till',
    campaigns: 'Campaigns',
    segments: 'Segments',
    automations: 'Automations',
    stats: 'Statistics',
    qr: 'QR codes',
    settings: 'Settings',
    design: 'Card design',
    staff: 'Staff',
    keys: 'API keys',
    webhooks: 'Webhooks',
    account: 'Profile',
  },
  roles: { owner: 'owner', marketer: 'marketer', cashier: 'cashier' },
  save: 'Save',
  saved: 'Saved.',
  cancel: 'Cancel',
  remove: 'Remove',
  yes: 'yes',
  no: 'no',
  none: '—',
  optional: 'optional',
  errorsHeading: 'Please check the form',
  errorPrefix: 'Error: ',
  showTable: 'Show the data as a table',
  copy: 'Copy',
  copied: 'Copied',
  print: 'Print',
  errors: {
    forbiddenTitle: 'No access',
    forbiddenText: 'Your role cannot open this section. If you need it, ask the owner to change your role.',
    notFoundTitle: 'Not found',
    notFoundText: 'There is no such page or record.',
    csrfTitle: 'The form has expired',
    csrfText: 'The page was opened too long ago or in another window. Go back, reload the page and send the form again.',
    signedOutTitle: 'Signed out',
    signedOutText: 'Sign in again to continue.',
    tooManyTitle: 'Too many attempts',
    tooManyText: 'Please wait a little and try again.',
    serverTitle: 'Something went wrong',
    serverText: 'Please try again. If it keeps happening, tell the administrator.',
    backHome: 'Back to the cabinet',
    signIn: 'Sign in',
  },
};

export const CABINET_MESSAGES: Record<Lang, Messages> = { ru, en };
export type CabinetMessages = Messages;

// ---------------------------------------------------------------------------------------------
// Money, numbers and dates
// ---------------------------------------------------------------------------------------------

const locale = (lang: Lang) => (lang === 'ru' ? 'ru-RU' : 'en-US');

/** Digits after the decimal point of a currency (RUB 2, JPY 0…). Amounts are integer minor units. */
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

export function formatMoney(lang: Lang, currency: string, minor: number): string {
  const digits = currencyDigits(currency);
  try {
    return new Intl.NumberFormat(locale(lang), { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(minor / 10 ** digits);
  } catch {
    return `${(minor / 10 ** digits).toFixed(digits)} ${currency}`;
  }
}

/** Minor units as a plain decimal for an input field ("1250.50"; no grouping). */
export function moneyInputValue(currency: string, minor: number): string {
  const digits = currencyDigits(currency);
  return (minor / 10 ** digits).toFixed(digits);
}

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
