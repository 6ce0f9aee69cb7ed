import type { Localized } from '../db/schema.js';

/**
 * Messages may carry placeholders filled per card when its chunk runs (automations use them):
 * `{points}` the card's balance (for an expiry: the points that expire), `{date}` a date from the
 * recipient (the expiry date), `{tier}` the card's tier name.
 */
const PLACEHOLDER = /\{(points|date|tier)\}/g;

export function hasPlaceholders(message: Localized): boolean {
  return /\{(points|date|tier)\}/.test(message.ru) || /\{(points|date|tier)\}/.test(message.en);
}

export interface MessageValues {
  points?: number;
  /** YYYY-MM-DD */
  date?: string;
  tier?: Localized;
}

function formatDate(isoDate: string, lang: 'ru' | 'en'): string {
  const [y, m, d] = isoDate.slice(0, 10).split('-');
  if (!y || !m || !d) return isoDate;
  return lang === 'ru' ? `${d}.${m}.${y}` : `${y}-${m}-${d}`;
}

export function renderMessage(message: Localized, values: MessageValues): Localized {
  const render = (text: string, lang: 'ru' | 'en') =>
    text.replace(PLACEHOLDER, (whole, name: string) => {
      if (name === 'points' && values.points !== undefined) return String(values.points);
      if (name === 'date' && values.date !== undefined) return formatDate(values.date, lang);
      if (name === 'tier' && values.tier !== undefined) return values.tier[lang];
      return whole;
    });
  return { ru: render(message.ru, 'ru'), en: render(message.en, 'en') };
}
