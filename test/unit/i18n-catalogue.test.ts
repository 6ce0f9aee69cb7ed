import { describe, expect, it } from 'vitest';
import { renderMessage } from '../../src/campaigns/message.js';
import { SCREEN_TEXTS } from '../../src/cabinet/i18n.js';
import '../../src/cabinet/screens/index.js';
import { en } from '../../src/i18n/en.js';
import { count, formatCalendarDate, formatMoney, formatPhone, moneyInputValue, pluralForm, points, quote, UNITS, type Lang } from '../../src/i18n/format.js';
import { ru } from '../../src/i18n/ru.js';
import { CHANGE_MESSAGES, FIELD_LABELS } from '../../src/wallets/apple/pass/build-pass-json.js';
import { parseMoney } from '../../src/cabinet/i18n.js';

// The numbers every template is rendered with: each Russian plural form and its traps (11 is
// "many", 21 "one", 1,000 grouped).
const NUMBERS = [0, 1, 2, 5, 11, 21, 1000];

/** Key paths of a catalogue ("public.errors.nameRequired"), functions and strings as leaves. */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([key, inner]) => keyPaths(inner, prefix ? `${prefix}.${key}` : key));
  }
  return [prefix];
}

/** Every text a leaf renders to: strings as they are, templates called with each number. */
function rendered(value: unknown, path = ''): Array<{ path: string; text: string }> {
  if (typeof value === 'string') return [{ path, text: value }];
  if (Array.isArray(value)) return value.flatMap((inner, i) => rendered(inner, `${path}[${i}]`));
  if (typeof value === 'function') {
    return NUMBERS.flatMap((n) => {
      // Each argument is n: as a number, and as an object every property of which is n (templates
      // that take thresholds or a tier); a template that takes text gets the number as text.
      const asAnything = new Proxy({}, { get: (_target, key) => (key === Symbol.toPrimitive ? () => n : n) });
      const length = Math.max(value.length, 1);
      let out: unknown;
      try {
        out = value(...Array.from({ length }, () => asAnything));
      } catch {
        out = value(...Array.from({ length }, () => String(n)));
      }
      return typeof out === 'string' ? [{ path: `${path}(${n})`, text: out }] : [];
    });
  }
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([key, inner]) => rendered(inner, path ? `${path}.${key}` : key));
  return [];
}

const RU_FORMS = new Map<string, keyof typeof UNITS>();
for (const [unit, forms] of Object.entries(UNITS)) for (const form of Object.values(forms.ru)) RU_FORMS.set(form, unit as keyof typeof UNITS);
const RU_WORDS = [...RU_FORMS.keys()].sort((a, b) => b.length - a.length).join('|');

/** What is wrong with a rendered text: a counted word in the wrong form, or a label missing its number. */
function grammarProblems(lang: Lang, text: string): string[] {
  const problems: string[] = [];
  if (lang === 'ru') {
    for (const m of text.matchAll(new RegExp(`(?<![\\d.,])(\\d[\\d\\u00a0\\u202f ]*\\d|\\d)\\s(${RU_WORDS})(?![\\p{L}])`, 'gu'))) {
      const n = Number(m[1].replace(/[\s\u00a0\u202f]/g, ''));
      const unit = RU_FORMS.get(m[2])!;
      const expected = ([UNITS[unit].ru.one, UNITS[unit].ru.few, UNITS[unit].ru.many] as string[]).includes(m[2]) ? pluralForm('ru', n, UNITS[unit].ru) : m[2];
      // Forms of a unit that share a spelling (минуты: few and other) are fine either way.
      const sameUnitForms = Object.entries(UNITS).filter(([, f]) => (Object.values(f.ru) as string[]).includes(m[2])).map(([, f]) => pluralForm('ru', n, f.ru));
      if (expected !== m[2] && !sameUnitForms.includes(m[2])) problems.push(`"${m[0]}" should be "${m[1]} ${expected}"`);
    }
    // A label whose number went missing: "после дней без покупок", "за дней до".
    for (const m of text.matchAll(/(?<![\p{L}])(после|за|через|от|до|из)\s+(дней|баллов|минут|покупок|получателей)(?![\p{L}])/gu)) problems.push(`"${m[0]}" has no number`);
    if (/«[^»]*«/.test(text)) problems.push('nested «…«…»…» quotes of one kind');
  } else {
    for (const m of text.matchAll(/(?<![\d.,])1\s(points|days|minutes|cards|purchases|recipients|attempts|digits)\b/g)) problems.push(`"${m[0]}"`);
    for (const m of text.matchAll(/(?<![\d.,])(\d[\d,]*)\s(point|day|minute|purchase|recipient|attempt|digit)\b(?!-)/g)) if (m[1] !== '1') problems.push(`"${m[0]}"`);
    if (/\b\d{4}-\d{2}-\d{2}\b/.test(text)) problems.push('an ISO date in English copy');
  }
  return problems;
}

describe('message catalogues (ru, en)', () => {
  const transpose = (byKey: Record<string, Record<Lang, string>>, lang: Lang) => Object.fromEntries(Object.entries(byKey).map(([k, v]) => [k, v[lang]]));
  const catalogues: Array<{ name: string; ru: unknown; en: unknown }> = [
    { name: 'catalogue', ru, en },
    { name: 'pass labels', ru: transpose(FIELD_LABELS, 'ru'), en: transpose(FIELD_LABELS, 'en') },
    { name: 'pass change messages', ru: transpose(CHANGE_MESSAGES, 'ru'), en: transpose(CHANGE_MESSAGES, 'en') },
    ...SCREEN_TEXTS.map((texts, i) => ({ name: `cabinet screen texts #${i}`, ru: texts.ru, en: texts.en })),
  ];

  it('the cabinet screens registered their texts', () => {
    expect(SCREEN_TEXTS.length).toBeGreaterThanOrEqual(15);
  });

  it('every key exists in both languages', () => {
    for (const c of catalogues) expect(keyPaths(c.en).sort(), c.name).toEqual(keyPaths(c.ru).sort());
  });

  it('every template renders for 0, 1, 2, 5, 11, 21 and 1,000 with words that agree with their numbers', () => {
    const problems: string[] = [];
    for (const c of catalogues) {
      for (const lang of ['ru', 'en'] as const) {
        for (const { path, text } of rendered(c[lang])) {
          expect(text, `${c.name} ${lang} ${path}`).not.toMatch(/undefined|NaN|\[object /);
          problems.push(...grammarProblems(lang, text).map((p) => `${c.name} ${lang} ${path}: ${p}`));
        }
      }
    }
    // The automations' push texts with their placeholders filled.
    for (const n of NUMBERS) {
      for (const key of Object.keys(ru.push) as Array<keyof typeof ru.push>) {
        const out = renderMessage({ ru: ru.push[key], en: en.push[key] }, { points: n, date: '2027-01-06', tier: { ru: 'Золотой', en: 'Gold' } });
        for (const lang of ['ru', 'en'] as const) {
          expect(out[lang]).not.toMatch(/\{(points|date|tier)\}/);
          problems.push(...grammarProblems(lang, out[lang]).map((p) => `push ${key} ${lang} (${n}): ${p}`));
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('the checker itself catches the defects of issue #15', () => {
    expect(grammarProblems('ru', '1 баллов')).toHaveLength(1);
    expect(grammarProblems('ru', 'Вы получите 2 баллов')).toHaveLength(1);
    expect(grammarProblems('ru', '21 баллов')).toHaveLength(1);
    expect(grammarProblems('ru', 'Баллы сгорают после дней без покупок')).toHaveLength(1);
    expect(grammarProblems('ru', 'Карта «Кофейня «Демо»»')).toHaveLength(1);
    expect(grammarProblems('en', 'Your 1 points')).toHaveLength(1);
    expect(grammarProblems('en', 'expire on 2027-01-06')).toHaveLength(1);
    expect(grammarProblems('ru', '1 000 баллов, 11 баллов, 21 балл, 2 балла, 0 баллов')).toEqual([]);
  });
});

describe('formatting', () => {
  it('counts with Intl.PluralRules', () => {
    expect(NUMBERS.map((n) => points('ru', n))).toEqual(['0 баллов', '1 балл', '2 балла', '5 баллов', '11 баллов', '21 балл', '1\u00a0000 баллов']);
    expect(NUMBERS.map((n) => points('en', n))).toEqual(['0 points', '1 point', '2 points', '5 points', '11 points', '21 points', '1,000 points']);
    expect(count('ru', 22, 'days')).toBe('22 дня');
    expect(count('ru', 1.5, 'points')).toBe('1,5 балла');
  });

  it('money, dates and phones as each language writes them', () => {
    expect(formatMoney('ru', 'RUB', 5_000_000)).toBe('50\u00a0000,00\u00a0₽');
    expect(formatMoney('en', 'RUB', 125_050)).toBe('RUB\u00a01,250.50');
    expect(moneyInputValue('RUB', 5_000_000, 'ru')).toBe('50000');
    expect(moneyInputValue('RUB', 125_050, 'ru')).toBe('1250,50');
    expect(parseMoney(moneyInputValue('RUB', 125_050, 'ru'), 'RUB')).toBe(125_050);
    expect(formatCalendarDate('ru', '2027-01-06')).toBe('6 января 2027 г.');
    expect(formatCalendarDate('en', '2027-01-06')).toBe('January 6, 2027');
    expect(formatPhone('+79165551234')).toBe('+7 916 555 12 34');
    expect(formatPhone('+7916***1234')).toBe('+7916***1234');
  });

  it('quotes nest', () => {
    expect(quote('ru', 'Кофейня «Демо»')).toBe('«Кофейня „Демо“»');
    expect(quote('ru', 'Кофейня "Демо"')).toBe('«Кофейня „Демо“»');
    expect(quote('en', 'The “Demo” café')).toBe('“The ‘Demo’ café”');
  });
});
