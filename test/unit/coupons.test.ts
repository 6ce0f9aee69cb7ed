import { describe, expect, it } from 'vitest';
import { applicableCoupons, couponDiscount, couponExpiry, newCouponCode, normalizeCouponCode, type CardCouponForQuote, type CouponTerms } from '../../src/coupons/logic.js';
import { shownCouponTexts } from '../../src/coupons/display.js';

const terms = (over: Partial<CouponTerms>): CouponTerms => ({ kind: 'percent', percent: 10, amount: null, sku: null, minCheck: 0, categories: null, ...over });
const now = new Date('2027-01-10T12:00:00Z');
const coupon = (code: string, over: Partial<CouponTerms>, extra: Partial<CardCouponForQuote> = {}): CardCouponForQuote => ({
  code,
  title: { ru: code, en: code },
  status: 'issued',
  expiresAt: new Date('2027-02-01T00:00:00Z'),
  terms: terms(over),
  ...extra,
});

describe('coupon pricing (pure)', () => {
  it('percent rounds down, amount is capped by the check, the check always keeps one minor unit', () => {
    expect(couponDiscount(terms({ percent: 15 }), { amount: 999 })).toEqual({ ok: true, discount: 149 });
    expect(couponDiscount(terms({ kind: 'amount', percent: null, amount: 50_000 }), { amount: 30_000 })).toEqual({ ok: true, discount: 29_999 });
    expect(couponDiscount(terms({ percent: 100 }), { amount: 500 })).toEqual({ ok: true, discount: 499 });
    expect(couponDiscount(terms({ percent: 1 }), { amount: 50 })).toMatchObject({ ok: false, code: 'coupon_no_discount' });
  });

  it('checks the minimum check, categories and the free item', () => {
    expect(couponDiscount(terms({ minCheck: 1000 }), { amount: 999 })).toMatchObject({ ok: false, code: 'coupon_min_check_not_met' });
    expect(couponDiscount(terms({ minCheck: 1000 }), { amount: 1000 })).toEqual({ ok: true, discount: 100 });
    const drinks = terms({ percent: 50, categories: ['drinks'] });
    expect(couponDiscount(drinks, { amount: 1000 })).toMatchObject({ ok: false, code: 'coupon_needs_items' });
    const items = [
      { sku: 'tea', category: 'drinks', quantity: 2, price: 150 },
      { sku: 'cake', category: 'food', quantity: 1, price: 700 },
    ];
    expect(couponDiscount(drinks, { amount: 1000, items })).toEqual({ ok: true, discount: 150 }); // half of 2 × 150
    expect(couponDiscount(terms({ categories: ['tobacco'] }), { amount: 1000, items })).toMatchObject({ ok: false, code: 'coupon_category_not_in_check' });
    const free = terms({ kind: 'free_item', percent: null, sku: 'cake' });
    expect(couponDiscount(free, { amount: 1000, items })).toEqual({ ok: true, discount: 700 }); // one unit
    expect(couponDiscount(free, { amount: 1000, items: items.slice(0, 1) })).toMatchObject({ ok: false, code: 'coupon_item_not_in_check' });
    expect(couponDiscount(free, { amount: 1000 })).toMatchObject({ ok: false, code: 'coupon_needs_items' });
  });

  it('applicableCoupons: usable ones that apply, largest discount first, with the payable after each', () => {
    const list = applicableCoupons(
      { amount: 10_000 },
      [
        coupon('SMALL', { percent: 5 }),
        coupon('BIG', { kind: 'amount', percent: null, amount: 2_000 }),
        coupon('USED', { percent: 50 }, { status: 'redeemed' }),
        coupon('OLD', { percent: 50 }, { expiresAt: now }),
        coupon('MIN', { percent: 50, minCheck: 20_000 }),
      ],
      now,
    );
    expect(list.map(({ code, discount, payableAfter }) => ({ code, discount, payableAfter }))).toEqual([
      { code: 'BIG', discount: 2_000, payableAfter: 8_000 },
      { code: 'SMALL', discount: 500, payableAfter: 9_500 },
    ]);
  });

  it('expiry, codes', () => {
    const issued = new Date('2027-01-01T10:00:00Z');
    expect(couponExpiry({ validDays: 7, validUntil: null }, issued).toISOString()).toBe('2027-01-08T10:00:00.000Z');
    expect(couponExpiry({ validDays: null, validUntil: new Date('2027-03-01T00:00:00Z') }, issued).toISOString()).toBe('2027-03-01T00:00:00.000Z');
    const codes = new Set(Array.from({ length: 200 }, newCouponCode));
    expect(codes.size).toBe(200);
    for (const code of codes) expect(code).toMatch(/^[A-HJKMNP-Z2-9]{8}$/);
    expect(normalizeCouponCode(' ab12cd34 ')).toBe('AB12CD34');
  });

  it('what the wallets show: usable coupons in both languages, expired ones left out', () => {
    const shown = {
      active: [
        { code: 'AAAA2222', title: { ru: 'Скидка 10%', en: '10% off' }, expiresAt: '2027-02-01T00:00:00Z' },
        { code: 'BBBB3333', title: { ru: 'Старый', en: 'Old' }, expiresAt: '2027-01-01T00:00:00Z' },
      ],
      latest: { code: 'AAAA2222', title: { ru: 'Скидка 10%', en: '10% off' } },
    };
    const texts = shownCouponTexts(shown, now);
    expect(texts.list?.ru).toBe('Скидка 10% — код AAAA2222, действует до 1 февраля 2027 г.');
    expect(texts.list?.en).toBe('10% off: code AAAA2222, valid until February 1, 2027');
    expect(texts.latest).toEqual({ ru: 'Скидка 10% (код AAAA2222)', en: '10% off (code AAAA2222)' });
    expect(shownCouponTexts({ active: [] }, now)).toEqual({});
  });
});
