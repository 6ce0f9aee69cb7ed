import { parsePhoneNumberFromString } from 'libphonenumber-js';

/**
 * Language-aware formatting for every text the service writes for people (pages, passes, push
 * texts, the cabinet): plural forms by `Intl.PluralRules`, numbers, money and dates by `Intl`,
 * phones by libphonenumber-js, quotes that nest. One place, so "1 баллов" cannot come back
 * through a screen that formats on its own (issue #15).
 */
export type Lang = 'ru' | 'en';
export const LANGS: readonly Lang[] = ['ru', 'en'];
export const isLang = (value: unknown): value is Lang => value === 'ru' || value === 'en';

export const localeOf = (lang: Lang): string => (lang === 'ru' ? 'ru-RU' : 'en-US');

/**
 * The forms a counted word takes. Russian needs `one` (1, 21, 101), `few` (2–4, 22–24) and `many`
 * (0, 5–20, 11–14); English `one` and `other`. `other` is also Russian's form for fractions.
 */
export interface PluralForms {
  one: string;
  few?: string;
  many?: string;
  other: string;
}

const pluralRules = new Map<Lang, Intl.PluralRules>();
function rulesOf(lang: Lang): Intl.PluralRules {
  let rules = pluralRules.get(lang);
  if (!rules) pluralRules.set(lang, (rules = new Intl.PluralRules(localeOf(lang))));
  return rules;
}

/** The form of `forms` that goes with `count` in `lang`. */
export function pluralForm(lang: Lang, count: number, forms: PluralForms): string {
  const category = rulesOf(lang).select(count);
  return (forms as unknown as Record<string, string | undefined>)[category] ?? forms.other;
}

export function formatNumber(lang: Lang, value: number): string {
  return new Intl.NumberFormat(localeOf(lang)).format(value);
}

/** The units the service counts, in each language. */
export const UNITS = {
  points: { ru: { one: 'балл', few: 'балла', many: 'баллов', other: 'балла' }, en: { one: 'point', other: 'points' } },
  days: { ru: { one: 'день', few: 'дня', many: 'дней', other: 'дня' }, en: { one: 'day', other: 'days' } },
  minutes: { ru: { one: 'минута', few: 'минуты', many: 'минут', other: 'минуты' }, en: { one: 'minute', other: 'minutes' } },
  // The accusative after "действует" / "через": "1 минуту", "2 минуты", "5 минут".
  minutesAcc: { ru: { one: 'минуту', few: 'минуты', many: 'минут', other: 'минуты' }, en: { one: 'minute', other: 'minutes' } },
  cards: { ru: { one: 'карта', few: 'карты', many: 'карт', other: 'карты' }, en: { one: 'card', other: 'cards' } },
  cardsAcc: { ru: { one: 'карту', few: 'карты', many: 'карт', other: 'карты' }, en: { one: 'card', other: 'cards' } },
  purchases: { ru: { one: 'покупка', few: 'покупки', many: 'покупок', other: 'покупки' }, en: { one: 'purchase', other: 'purchases' } },
  recipients: { ru: { one: 'получатель', few: 'получателя', many: 'получателей', other: 'получателя' }, en: { one: 'recipient', other: 'recipients' } },
  attempts: { ru: { one: 'попытка', few: 'попытки', many: 'попыток', other: 'попытки' }, en: { one: 'attempt', other: 'attempts' } },
  stamps: { ru: { one: 'штамп', few: 'штампа', many: 'штампов', other: 'штампа' }, en: { one: 'stamp', other: 'stamps' } },
  rewards: { ru: { one: 'награда', few: 'награды', many: 'наград', other: 'награды' }, en: { one: 'reward', other: 'rewards' } },
  digits: { ru: { one: 'цифра', few: 'цифры', many: 'цифр', other: 'цифры' }, en: { one: 'digit', other: 'digits' } },
} as const satisfies Record<string, Record<Lang, PluralForms>>;
export type Unit = keyof typeof UNITS;

/** "1 балл", "2 балла", "5 баллов", "21 балл", "1 000 баллов"; "1 point", "1,000 points". */
export function count(lang: Lang, value: number, unit: Unit): string {
  return `${formatNumber(lang, value)} ${pluralForm(lang, value, UNITS[unit][lang])}`;
}

/** Points with their word: the most used count. */
export function points(lang: Lang, value: number): string {
  return count(lang, value, 'points');
}

/** Digits after the decimal point of a currency (RUB 2, JPY 0…). Amounts are integer minor units. */
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** "1 250,50 ₽", "RUB 1,250.50": integer minor units as money in the language's notation. */
export function formatMoney(lang: Lang, currency: string, minor: number): string {
  const digits = currencyDigits(currency);
  try {
    return new Intl.NumberFormat(localeOf(lang), { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(minor / 10 ** digits);
  } catch {
    return `${formatNumber(lang, minor / 10 ** digits)} ${currency}`;
  }
}

/**
 * Minor units for an input field, written the way the language writes numbers but without
 * grouping, and without a zero fraction: "50000", "1250,50" (ru), "1250.50" (en). parseMoney
 * reads either decimal mark.
 */
export function moneyInputValue(currency: string, minor: number, lang: Lang = 'en'): string {
  const digits = currencyDigits(currency);
  if (minor % 10 ** digits === 0) return String(minor / 10 ** digits);
  const text = (minor / 10 ** digits).toFixed(digits);
  return lang === 'ru' ? text.replace('.', ',') : text;
}

/** A calendar date ("2027-01-06") as the language writes it: "6 января 2027 г.", "January 6, 2027". */
export function formatCalendarDate(lang: Lang, isoDate: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(isoDate);
  if (!m) return isoDate;
  const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return new Intl.DateTimeFormat(localeOf(lang), { dateStyle: 'long', timeZone: 'UTC' }).format(date);
}

/** An E.164 phone as people write it: "+7 916 555 12 34". Anything unparseable is shown as given. */
export function formatPhone(phone: string | null | undefined): string {
  if (!phone) return '';
  // A masked phone (+7916***1234) is shown as it is: it is not a number to format.
  if (phone.includes('*')) return phone;
  return parsePhoneNumberFromString(phone)?.formatInternational() ?? phone;
}

/**
 * A phone shown to someone who may not see it whole (a cashier, the card page): formatted, with
 * the digits between the country code and operator prefix and the last four hidden:
 * +79165551234 → "+7 916 *** 12 34".
 */
export function formatMaskedPhone(phone: string | null | undefined): string {
  if (!phone) return '';
  const parsed = parsePhoneNumberFromString(phone);
  const formatted = parsed?.formatInternational() ?? phone;
  const total = formatted.replace(/\D/g, '').length;
  const head = Math.min((parsed?.countryCallingCode.length ?? 1) + 3, Math.max(total - 4, 0));
  let index = 0;
  return formatted.replace(/\d/g, (digit) => {
    index++;
    return index <= head || index > total - 4 ? digit : '*';
  });
}

const QUOTES: Record<Lang, { outer: [string, string]; inner: [string, string] }> = {
  ru: { outer: ['«', '»'], inner: ['„', '“'] },
  en: { outer: ['“', '”'], inner: ['‘', '’'] },
};

/**
 * A name in quotes that nest: Кофейня «Демо» → «Кофейня „Демо“», not «Кофейня «Демо»». Quotes
 * already in the text (either language's outer kind, or straight ones) become the inner kind.
 */
export function quote(lang: Lang, text: string): string {
  const { outer, inner } = QUOTES[lang];
  let open = true;
  const nested = text.replace(/[«»“”"]/g, (mark) => {
    if (mark === '«' || mark === '“') return inner[0];
    if (mark === '»' || mark === '”') return inner[1];
    // A straight quote: opening and closing alternate.
    const out = open ? inner[0] : inner[1];
    open = !open;
    return out;
  });
  return `${outer[0]}${nested}${outer[1]}`;
}

/** The program's name in a language: the card's logo text there when the owner wrote one. */
export function programName(program: { name: string; design?: unknown }, lang: Lang): string {
  const logoText = (program.design as { logoText?: Partial<Record<Lang, string>> } | undefined)?.logoText;
  const text = logoText?.[lang]?.trim();
  return text || program.name;
}
