/**
 * Languages of the public pages: Russian and English. The choice is, in order: `?lang=` (then
 * remembered in a cookie), the cookie, `Accept-Language`, the program's default language.
 */
import { en } from '../i18n/en.js';
import { isLang, type Lang } from '../i18n/format.js';
import { ru, type RuCatalogue } from '../i18n/ru.js';

export { formatNumber, isLang, LANGS, points, type Lang } from '../i18n/format.js';
export const LANG_COOKIE = 'wc_lang';

/** The best of ru/en in an Accept-Language header (q-values honoured), or undefined. */
export function langFromAcceptLanguage(header: string | undefined): Lang | undefined {
  if (!header) return undefined;
  let best: { lang: Lang; q: number; order: number } | undefined;
  header.split(',').forEach((part, order) => {
    const [tag, ...params] = part.trim().split(';');
    const primary = tag.trim().toLowerCase().split('-')[0];
    if (!isLang(primary)) return;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(q) || q <= 0) return;
    if (!best || q > best.q || (q === best.q && order < best.order)) best = { lang: primary, q, order };
  });
  return best?.lang;
}

export function chooseLang(input: { query?: unknown; cookie?: unknown; acceptLanguage?: string; fallback: Lang }): Lang {
  if (isLang(input.query)) return input.query;
  if (isLang(input.cookie)) return input.cookie;
  return langFromAcceptLanguage(input.acceptLanguage) ?? input.fallback;
}

export type FieldName = 'name' | 'phone' | 'email' | 'birthday';

export const MESSAGES: Record<Lang, Messages> = { ru: ru.public, en: en.public };
type Messages = RuCatalogue['public'];
export type { Messages };
