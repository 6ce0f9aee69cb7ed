import type { Localized } from '../db/schema.js';
import { formatCalendarDate, points, type Lang } from '../i18n/format.js';

/**
 * Messages may carry placeholders filled per card when its chunk runs (automations use them):
 * `{points}` the card's balance (for an expiry: the points that expire) as a count with its word
 * in the message's language ("1 балл", "2 балла", "1,000 points"), `{date}` a date from the
 * recipient (the expiry date) as the language writes it, `{tier}` the card's tier name.
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

/**
 * Messages written before `{points}` carried its word ("{points} баллов сгорят", "Your {points}
 * points") would read "5 баллов баллов": the word right after the placeholder is dropped.
 */
const LEGACY_UNIT = /\{points\}(\s+(?:балл(?:а|ов)?|points?)(?!\p{L}))?/gu;

export function renderMessage(message: Localized, values: MessageValues): Localized {
  const render = (text: string, lang: Lang) =>
    text.replace(LEGACY_UNIT, '{points}').replace(PLACEHOLDER, (whole, name: string) => {
      if (name === 'points' && values.points !== undefined) return points(lang, values.points);
      if (name === 'date' && values.date !== undefined) return formatCalendarDate(lang, values.date);
      if (name === 'tier' && values.tier !== undefined) return values.tier[lang];
      return whole;
    });
  return { ru: render(message.ru, 'ru'), en: render(message.en, 'en') };
}
