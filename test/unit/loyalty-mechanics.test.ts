import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RuleViolation,
  defaultRules,
  quoteCheck,
  quotePurchase,
  quoteRefund,
  quoteStampRefund,
  validateRules,
  type CheckInput,
  type LineItem,
  type LoyaltyRules,
} from '../../src/loyalty/rules.js';

// The mechanics of issue #17 as pure functions: discount by tier, stamps, category rules and line
// items, and the one quote behind both the quote endpoint and the purchase.

const RUB = 100;
const DAY = 86_400_000;

function rulesWith(input: Record<string, unknown>): LoyaltyRules {
  const result = validateRules(input);
  if (!result.ok) throw new Error(result.errors.join('; '));
  return result.rules;
}

const outdoor = rulesWith({
  categories: [
    { category: 'premium', multiplier: 2 },
    { category: 'tobacco', exclude: true },
  ],
});
const clothing = rulesWith({
  mechanic: 'discount',
  tiers: [
    { code: 'base', name: { ru: 'Базовая', en: 'Base' }, accrualPercent: 0, threshold: 0, discountPercent: 5 },
    { code: 'gold', name: { ru: 'Золотая', en: 'Gold' }, accrualPercent: 0, threshold: 5_000_000, discountPercent: 10 },
  ],
  categories: [{ category: 'tobacco', exclude: true }],
});
const coffee = (perReward = 6, extra: Record<string, unknown> = {}) =>
  rulesWith({
    mechanic: 'stamps',
    stamps: { perReward, reward: { name: { ru: 'Кофе в подарок', en: 'A free coffee' } }, ...extra },
    categories: [{ category: 'tobacco', exclude: true }],
  });

function check(rules: LoyaltyRules, overrides: Partial<CheckInput>) {
  return quoteCheck({ redeemPoints: 0, balance: 0, lifetimeSpend: 0, tierCode: rules.tiers[0].code, rules, ...overrides });
}

function violation(action: () => unknown): RuleViolation {
  try {
    action();
  } catch (error) {
    if (error instanceof RuleViolation) return error;
    throw error;
  }
  throw new Error('expected a RuleViolation');
}

const categoryArb = fc.constantFrom(undefined, 'premium', 'PREMIUM', 'tobacco', 'Tobacco ', 'coffee', 'food');
const itemArb: fc.Arbitrary<LineItem> = fc.record(
  {
    sku: fc.string({ minLength: 1, maxLength: 8 }),
    category: categoryArb,
    quantity: fc.integer({ min: 1, max: 5 }),
    price: fc.integer({ min: 0, max: 500_000 }),
  },
  { requiredKeys: ['sku', 'quantity', 'price'] },
).map((item) => (item.category === undefined ? { sku: item.sku, quantity: item.quantity, price: item.price } : item));
const itemsArb = fc.array(itemArb, { minLength: 1, maxLength: 8 }).filter((items) => items.some((i) => i.price > 0));
const allRules = [defaultRules(), outdoor, clothing, coffee()];
const rulesArb = fc.constantFrom(...allRules);

describe('rules validation of mechanics, as a whole', () => {
  it('keeps rules without the new fields exactly as they were (points)', () => {
    expect(validateRules({})).toEqual({ ok: true, rules: defaultRules() });
    expect(check(defaultRules(), { amount: 1000 * RUB }).mechanic).toBe('points');
  });

  it('refuses inconsistent mechanics with a reason per field', () => {
    const refused = (input: Record<string, unknown>, fragment: string) => {
      const result = validateRules(input);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.errors.join('\n')).toContain(fragment);
    };
    refused({ mechanic: 'discount' }, '/tiers/0/discountPercent: required');
    refused({ mechanic: 'stamps' }, '/stamps: required');
    refused({ stamps: { perReward: 6, reward: { name: { ru: 'a', en: 'a' } } } }, '/stamps: only allowed');
    refused(
      { tiers: [{ code: 'a', name: { ru: 'a', en: 'a' }, accrualPercent: 5, threshold: 0, discountPercent: 5 }] },
      '/tiers/0/discountPercent: only allowed',
    );
    refused(
      {
        mechanic: 'discount',
        tiers: [
          { code: 'a', name: { ru: 'a', en: 'a' }, accrualPercent: 0, threshold: 0, discountPercent: 10 },
          { code: 'b', name: { ru: 'b', en: 'b' }, accrualPercent: 0, threshold: 100, discountPercent: 5 },
        ],
      },
      'must not be lower',
    );
    refused({ categories: [{ category: 'tobacco', exclude: true, multiplier: 2 }] }, 'an excluded category earns nothing');
    refused({ categories: [{ category: 'a' }, { category: 'A' }] }, 'duplicate category');
    refused({ categories: [{ category: 'a', multiplier: 1.234 }] }, 'at most 2 decimals');
    refused(
      {
        mechanic: 'stamps',
        categories: [{ category: 'tobacco', exclude: true }],
        stamps: { perReward: 6, categories: ['Tobacco'], reward: { name: { ru: 'a', en: 'a' } } },
      },
      'can never stamp',
    );
    refused({ mechanic: 'stamps', stamps: { perReward: 0, reward: { name: { ru: 'a', en: 'a' } } } }, '/stamps/perReward');
    refused({ mechanic: 'coupons' }, '/mechanic');
  });
});

describe('line items', () => {
  it('derives the amount from the items, and refuses an amount that differs from their sum', () => {
    const items = [
      { sku: 'a', quantity: 2, price: 15_000 },
      { sku: 'b', quantity: 1, price: 5_050 },
    ];
    expect(check(defaultRules(), { items }).amount).toBe(35_050);
    expect(check(defaultRules(), { items, amount: 35_050 }).amount).toBe(35_050);
    expect(violation(() => check(defaultRules(), { items, amount: 35_000 })).code).toBe('items_amount_mismatch');
    expect(violation(() => check(defaultRules(), { items: [{ sku: 'a', quantity: 1, price: 0 }] })).code).toBe('invalid_amount');
    expect(violation(() => check(defaultRules(), { items: [{ sku: 'a', quantity: 0, price: 10 }] })).code).toBe('invalid_items');
    expect(violation(() => check(defaultRules(), { items: [{ sku: 'a', quantity: 10_000, price: 100_000_000_000 }] })).code).toBe('invalid_items');
    expect(violation(() => check(defaultRules(), {})).code).toBe('invalid_amount');
  });

  it('without category rules, any split of a check into items gives the whole-check numbers (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 300_000 }), { minLength: 1, maxLength: 6 }).filter((prices) => prices.some((p) => p > 0)),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        (prices, balance, lifetimeSpend) => {
          const amount = prices.reduce((a, b) => a + b, 0);
          const whole = check(defaultRules(), { amount, balance, lifetimeSpend });
          const redeemPoints = whole.maxRedeemablePoints;
          const items = prices.map((price, i) => ({ sku: `s${i}`, category: 'food', quantity: 1, price }));
          expect(check(defaultRules(), { items, balance, lifetimeSpend, redeemPoints })).toEqual(
            check(defaultRules(), { amount, balance, lifetimeSpend, redeemPoints }),
          );
        },
      ),
    );
  });

  it('quotePurchase is the points view of the same quote (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), fc.integer({ min: 0, max: 5_000 }), (amount, balance) => {
        const full = check(defaultRules(), { amount, balance });
        const legacy = quotePurchase({ amount, balance, redeemPoints: 0, lifetimeSpend: 0, tierCode: 'standard', rules: defaultRules() });
        expect(full).toMatchObject(legacy);
      }),
    );
  });
});

describe('category rules', () => {
  it('doubles the points of a premium item, and a tobacco item earns, discounts and redeems nothing', () => {
    const plain = check(outdoor, { items: [{ sku: 'tent', quantity: 1, price: 10_000 * RUB }] });
    expect(plain.accrued).toBe(500);
    const premium = check(outdoor, { items: [{ sku: 'tent', category: 'Premium', quantity: 1, price: 10_000 * RUB }] });
    expect(premium.accrued).toBe(1000);
    const withTobacco = check(outdoor, {
      balance: 100_000,
      items: [
        { sku: 'tent', quantity: 1, price: 10_000 * RUB },
        { sku: 'cigs', category: 'tobacco', quantity: 3, price: 250 * RUB },
      ],
    });
    expect(withTobacco).toMatchObject({ amount: 10_750 * RUB, eligibleAmount: 10_000 * RUB, accrued: 500, maxRedeemablePoints: 3000 });
  });

  it('excluded categories never earn, discount, redeem or stamp (property)', () => {
    fc.assert(
      fc.property(
        // Every program here but the default one excludes tobacco.
        fc.constantFrom(outdoor, clothing, coffee(), coffee(3, { categories: ['coffee', 'premium'] })),
        itemsArb,
        fc.array(fc.record({ quantity: fc.integer({ min: 1, max: 5 }), price: fc.integer({ min: 1, max: 500_000 }) }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 5 }),
        (rules, items, tobacco, balance, lifetimeSpend, stamps) => {
          const tierCode = rules.tiers[rules.tiers.length - 1].threshold <= lifetimeSpend ? rules.tiers[rules.tiers.length - 1].code : rules.tiers[0].code;
          const base = { balance, lifetimeSpend, tierCode, stamps };
          const without = check(rules, { ...base, items });
          const tobaccoItems = tobacco.map((t, i) => ({ sku: `t${i}`, category: 'TOBACCO', ...t }));
          const withIt = check(rules, { ...base, items: [...items, ...tobaccoItems] });
          const tobaccoTotal = tobaccoItems.reduce((sum, t) => sum + t.price * t.quantity, 0);
          expect(withIt.accrued).toBe(without.accrued);
          expect(withIt.discount).toBe(without.discount);
          expect(withIt.maxRedeemablePoints).toBe(without.maxRedeemablePoints);
          expect(withIt.stampsAdded).toBe(without.stampsAdded);
          expect(withIt.payable).toBe(without.payable + tobaccoTotal);
          // A check of tobacco only: nothing at all.
          const only = check(rules, { ...base, items: tobaccoItems });
          expect(only).toMatchObject({ eligibleAmount: 0, accrued: 0, discount: 0, maxRedeemablePoints: 0, stampsAdded: 0, payable: tobaccoTotal });
        },
      ),
    );
  });
});

describe('discount mechanic', () => {
  it('gives the tier\'s percent and grows with spend; no points accrue', () => {
    const first = check(clothing, { amount: 10_000 * RUB });
    expect(first).toMatchObject({ mechanic: 'discount', discountPercent: 5, discount: 500 * RUB, payable: 9_500 * RUB, accrued: 0 });
    const crossing = check(clothing, { amount: 10_000 * RUB, lifetimeSpend: 45_000 * RUB });
    expect(crossing).toMatchObject({ discountPercent: 5, tierAfter: 'gold', tierChanged: true, lifetimeSpendAfter: 54_500 * RUB });
    expect(check(clothing, { amount: 10_000 * RUB, lifetimeSpend: 54_500 * RUB, tierCode: 'gold' })).toMatchObject({ discountPercent: 10, discount: 1000 * RUB });
    // Points held (a campaign bonus) may pay up to the cap of what is left after the discount.
    expect(check(clothing, { amount: 10_000 * RUB, balance: 100_000 }).maxRedeemablePoints).toBe(2850);
    expect(violation(() => check(clothing, { amount: 10_000 * RUB, balance: 100_000, redeemPoints: 2851 })).code).toBe('redemption_cap_exceeded');
  });

  it('rounds the discount down once per check', () => {
    expect(check(clothing, { amount: 1999 }).discount).toBe(99);
  });
});

describe('stamps mechanic', () => {
  it('rewards exactly every N qualifying purchases (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 60 }), (perReward, amounts) => {
        const rules = coffee(perReward);
        let stamps = 0;
        let rewards = 0;
        for (const amount of amounts) {
          const quote = check(rules, { amount, stamps });
          expect(quote.stampsAdded).toBe(1);
          expect(quote.accrued).toBe(0);
          rewards += quote.rewardsEarned;
          stamps = quote.stampsAfter;
          expect(stamps).toBeLessThan(perReward);
        }
        expect(rewards).toBe(Math.floor(amounts.length / perReward));
        expect(stamps).toBe(amounts.length % perReward);
      }),
    );
  });

  it('counts qualifying item quantities when the rule names categories, with a minimum check', () => {
    const rules = coffee(6, { categories: ['coffee'], minCheck: 150 * RUB });
    const cups = check(rules, {
      stamps: 4,
      items: [
        { sku: 'latte', category: 'Coffee', quantity: 3, price: 200 * RUB },
        { sku: 'croissant', category: 'food', quantity: 2, price: 150 * RUB },
      ],
    });
    expect(cups).toMatchObject({ stampsAdded: 3, rewardsEarned: 1, stampsAfter: 1 });
    expect(check(rules, { items: [{ sku: 'espresso', category: 'coffee', quantity: 1, price: 100 * RUB }] }).stampsAdded).toBe(0);
    // Without items the POS cannot say what was bought: a purchase over the minimum is one stamp.
    expect(check(rules, { amount: 150 * RUB }).stampsAdded).toBe(1);
    expect(check(rules, { amount: 149 * RUB }).stampsAdded).toBe(0);
  });

  it('loses stamps after expireDays without a stamp', () => {
    const rules = coffee(6, { expireDays: 30 });
    const now = new Date('2026-12-05T12:00:00Z');
    const fresh = check(rules, { amount: 100, stamps: 4, lastStampAt: new Date(now.getTime() - 30 * DAY), now });
    expect(fresh).toMatchObject({ stampsExpired: 0, stampsAfter: 5 });
    const stale = check(rules, { amount: 100, stamps: 4, lastStampAt: new Date(now.getTime() - 30 * DAY - 1), now });
    expect(stale).toMatchObject({ stampsExpired: 4, stampsAfter: 1 });
  });
});

describe('refunds restore exactly (property)', () => {
  it('points, spend and stamps come back to what they were', () => {
    fc.assert(
      fc.property(
        rulesArb,
        itemsArb,
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 5 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (rules, items, balance, lifetimeSpend, stamps, share) => {
          const tierCode = rules.tiers[0].code;
          const probe = check(rules, { items, balance, lifetimeSpend, tierCode, stamps });
          const redeemPoints = Math.floor(probe.maxRedeemablePoints * share);
          const bought = check(rules, { items, balance, lifetimeSpend, tierCode, stamps, redeemPoints });
          const balanceAfter = balance - bought.redeemed + bought.accrued;
          const refund = quoteRefund({
            purchase: bought,
            balance: balanceAfter,
            lifetimeSpend: bought.lifetimeSpendAfter,
            tierCode: bought.tierAfter,
            rules,
          });
          expect(balanceAfter + refund.balanceDelta).toBe(balance);
          expect(refund.lifetimeSpendAfter).toBe(lifetimeSpend);
          expect(refund.shortfall).toBe(0);
          const perReward = rules.stamps?.perReward ?? 0;
          const undo = quoteStampRefund({ added: bought.stampsAdded, usedByRewards: bought.rewardsEarned * perReward, stamps: bought.stampsAfter });
          expect(undo).toEqual({ delta: stamps - bought.stampsAfter, stampsAfter: stamps, shortfall: 0 });
        },
      ),
    );
  });

  it('never takes stamps below zero: what a later reward used is the shortfall', () => {
    // 6 per reward: purchase A adds 1 (5 → 6: reward, 0 left); then B and C add 2; refunding A
    // wants 2 − 1 + 6 = 7 — fine; but a card at 0 that had its stamp used cannot give it back.
    expect(quoteStampRefund({ added: 1, usedByRewards: 6, stamps: 2 })).toEqual({ delta: 5, stampsAfter: 7, shortfall: 0 });
    expect(quoteStampRefund({ added: 1, usedByRewards: 0, stamps: 0 })).toEqual({ delta: 0, stampsAfter: 0, shortfall: 1 });
  });
});
