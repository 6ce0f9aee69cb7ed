/**
 * Coupons, the pure part: what a coupon takes off a check, which of a card's coupons a check can
 * use, when a coupon expires, and its code. No database, no clock of its own: the quote endpoint
 * (issue #17, item 4) and the purchase both call these with the same inputs and get the same numbers.
 */
import { randomInt } from 'node:crypto';
import type { CouponKind, Localized } from '../db/schema.js';

/** A line of the check: `price` is the unit price in minor units; the line is price × quantity. */
export interface CheckItem {
  sku: string;
  name?: string;
  category?: string;
  quantity: number;
  price: number;
}

/** The check a coupon is applied to: the amount in minor units, and its lines when the till sent them. */
export interface Check {
  amount: number;
  items?: readonly CheckItem[];
}

/** A definition's terms, as the redemption reads them (the current definition, not a copy). */
export interface CouponTerms {
  kind: CouponKind;
  percent: number | null;
  amount: number | null;
  sku: string | null;
  minCheck: number;
  categories: readonly string[] | null;
}

/** One of a card's coupons as applicableCoupons needs it. */
export interface CardCouponForQuote {
  code: string;
  title: Localized;
  status: 'issued' | 'redeemed' | 'expired' | 'void';
  expiresAt: Date;
  terms: CouponTerms;
}

export type CouponRefusal =
  | 'coupon_min_check_not_met'
  | 'coupon_needs_items'
  | 'coupon_category_not_in_check'
  | 'coupon_item_not_in_check'
  | 'coupon_no_discount';

export type CouponPricing = { ok: true; discount: number } | { ok: false; code: CouponRefusal; message: string; details?: Record<string, unknown> };

const lineTotal = (item: CheckItem) => item.price * item.quantity;

/**
 * What the coupon takes off this check, in minor units, or why it does not apply.
 *
 * - `minCheck` compares with the whole check amount.
 * - With `categories`, the discount base is the lines of those categories only; so a category coupon
 *   needs the check's lines (`coupon_needs_items` without them).
 * - percent: the base × percent / 100, rounded down (a coupon never gives more than it says);
 *   amount: at most the base; free_item: one unit of the line with the coupon's sku.
 * - The discount leaves at least one minor unit to pay: a purchase records a positive amount (see
 *   docs/coupons.md); a coupon that would take nothing is refused (`coupon_no_discount`).
 */
export function couponDiscount(terms: CouponTerms, check: Check): CouponPricing {
  if (check.amount < terms.minCheck) {
    return {
      ok: false,
      code: 'coupon_min_check_not_met',
      message: `This coupon needs a check of at least ${terms.minCheck}; the check is ${check.amount}`,
      details: { minCheck: terms.minCheck, amount: check.amount },
    };
  }
  let discount: number;
  if (terms.kind === 'free_item') {
    if (!check.items || check.items.length === 0) {
      return { ok: false, code: 'coupon_needs_items', message: 'A free-item coupon needs the check lines (items)' };
    }
    const line = check.items.find((item) => item.sku === terms.sku && item.quantity > 0);
    if (!line) return { ok: false, code: 'coupon_item_not_in_check', message: `The check has no item ${terms.sku}`, details: { sku: terms.sku } };
    discount = line.price;
  } else {
    let base = check.amount;
    if (terms.categories && terms.categories.length > 0) {
      if (!check.items || check.items.length === 0) {
        return { ok: false, code: 'coupon_needs_items', message: 'This coupon applies to some categories only: it needs the check lines (items)' };
      }
      const wanted = new Set(terms.categories);
      base = check.items.filter((item) => item.category !== undefined && wanted.has(item.category)).reduce((sum, item) => sum + lineTotal(item), 0);
      if (base === 0) {
        return {
          ok: false,
          code: 'coupon_category_not_in_check',
          message: `The check has nothing of the coupon's categories (${terms.categories.join(', ')})`,
          details: { categories: terms.categories },
        };
      }
      base = Math.min(base, check.amount);
    }
    discount = terms.kind === 'percent' ? Math.floor((base * (terms.percent ?? 0)) / 100) : Math.min(terms.amount ?? 0, base);
  }
  discount = Math.min(discount, check.amount - 1);
  if (discount <= 0) return { ok: false, code: 'coupon_no_discount', message: 'This coupon takes nothing off this check' };
  return { ok: true, discount };
}

/** A coupon is usable while issued and before its expiry. */
export const isUsable = (coupon: { status: string; expiresAt: Date }, now: Date) => coupon.status === 'issued' && coupon.expiresAt.getTime() > now.getTime();

/**
 * The coupons of a card this check can use, the largest discount first: what the quote endpoint
 * offers the till. Same numbers as the purchase gives for the same check and coupon.
 */
export function applicableCoupons(
  check: Check,
  cardCoupons: readonly CardCouponForQuote[],
  now: Date,
): Array<{ code: string; title: Localized; discount: number; payableAfter: number }> {
  const out: Array<{ code: string; title: Localized; discount: number; payableAfter: number }> = [];
  for (const coupon of cardCoupons) {
    if (!isUsable(coupon, now)) continue;
    const priced = couponDiscount(coupon.terms, check);
    if (priced.ok) out.push({ code: coupon.code, title: coupon.title, discount: priced.discount, payableAfter: check.amount - priced.discount });
  }
  return out.sort((a, b) => b.discount - a.discount || a.code.localeCompare(b.code));
}

const DAY_MS = 86_400_000;

/** When a coupon issued at `issuedAt` expires: `validDays` after the issue, or the definition's fixed end. */
export function couponExpiry(definition: { validDays: number | null; validUntil: Date | null }, issuedAt: Date): Date {
  if (definition.validDays !== null) return new Date(issuedAt.getTime() + definition.validDays * DAY_MS);
  if (definition.validUntil !== null) return definition.validUntil;
  throw new Error('A coupon definition has validDays or validUntil');
}

/** No 0/O, 1/I/L: the cashier may type the code. 31 symbols, 8 of them: about 39 random bits. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const COUPON_CODE_LENGTH = 8;

export function newCouponCode(): string {
  let code = '';
  for (let i = 0; i < COUPON_CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

/** Codes are typed at the till: case and surrounding spaces do not matter. */
export const normalizeCouponCode = (code: string) => code.trim().toUpperCase();
