/**
 * What the wallets show of a card's coupons, from `card.coupons` (kept by repository.refreshShownCoupons
 * in the transaction that changed them): the Apple pass's back fields and the Google object's text
 * module. Pure: both wallet builders call it with the card row.
 */
import type { CardCouponsShown, Localized } from '../db/schema.js';
import { en } from '../i18n/en.js';
import { ru } from '../i18n/ru.js';

/** Google shows at most 500 characters per text module body; a long list is cut at a whole line. */
const GOOGLE_BODY_MAX = 500;

function cut(lines: string[], max: number): string {
  let text = '';
  for (const line of lines) {
    const next = text ? `${text}\n${line}` : line;
    if (next.length > max) break;
    text = next;
  }
  return text;
}

/**
 * The usable coupons (one line each) and the coupon issued last. A coupon that expired since the
 * card last changed is left out here already (the next signed pass or object update drops it).
 */
export function shownCouponTexts(shown: CardCouponsShown | null | undefined, now: Date, maxChars = Number.POSITIVE_INFINITY): { list?: Localized; latest?: Localized } {
  const active = (shown?.active ?? []).filter((c) => Date.parse(c.expiresAt) > now.getTime());
  const out: { list?: Localized; latest?: Localized } = {};
  if (active.length > 0) {
    out.list = {
      ru: cut(active.map((c) => ru.coupons.line(c.title.ru, c.code, c.expiresAt)), maxChars),
      en: cut(active.map((c) => en.coupons.line(c.title.en, c.code, c.expiresAt)), maxChars),
    };
  }
  if (shown?.latest) out.latest = { ru: ru.coupons.latest(shown.latest.title.ru, shown.latest.code), en: en.coupons.latest(shown.latest.title.en, shown.latest.code) };
  return out;
}

export const googleCouponModule = (shown: CardCouponsShown | null | undefined, now: Date) => {
  const { list } = shownCouponTexts(shown, now, GOOGLE_BODY_MAX);
  return list ? { id: 'coupons', header: { ru: ru.coupons.googleHeader, en: en.coupons.googleHeader }, body: list } : undefined;
};
