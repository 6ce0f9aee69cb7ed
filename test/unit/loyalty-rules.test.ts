import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RuleViolation,
  defaultRules,
  expiryDue,
  maxRedeemable,
  quotePurchase,
  quoteRefund,
  redemptionCap,
  referralBonuses,
  tierFor,
  validateRules,
  type LoyaltyRules,
  type PurchaseInput,
  type RuleViolationCode,
} from '../../src/loyalty/rules.js';

const RUB = 100; // minor units per rouble

function purchase(overrides: Partial<PurchaseInput>): ReturnType<typeof quotePurchase> {
  return quotePurchase({
    amount: 1000 * RUB,
    redeemPoints: 0,
    balance: 0,
    lifetimeSpend: 0,
    tierCode: 'standard',
    rules: defaultRules(),
    ...overrides,
  });
}

function violationOf(action: () => unknown): RuleViolation {
  try {
    action();
  } catch (error) {
    if (error instanceof RuleViolation) return error;
    throw error;
  }
  throw new Error('expected a RuleViolation, nothing was thrown');
}

function expectViolation(action: () => unknown, code: RuleViolationCode): RuleViolation {
  const violation = violationOf(action);
  expect(violation.code).toBe(code);
  return violation;
}

function withRules(change: (rules: LoyaltyRules) => void): LoyaltyRules {
  const rules = defaultRules();
  change(rules);
  return rules;
}

// ------------------------------------------------------------------------------------------
// Arbitraries
// ------------------------------------------------------------------------------------------

// Percentages are generated as basis points so the test knows the exact rate independently of
// how the implementation parses `accrualPercent`.
const basisPoints = fc.integer({ min: 0, max: 10_000 });

type GeneratedRules = { rules: LoyaltyRules; accrualBasisPoints: number[]; capBasisPoints: number };

const generatedRules: fc.Arbitrary<GeneratedRules> = fc
  .record({
    tiers: fc.array(fc.record({ gap: fc.integer({ min: 1, max: 10_000_000 }), bps: basisPoints }), {
      minLength: 1,
      maxLength: 5,
    }),
    capBasisPoints: basisPoints,
    pointValue: fc.oneof(fc.constant(100), fc.constant(1), fc.integer({ min: 1, max: 10_000 })),
    downgradeOnRefund: fc.boolean(),
  })
  .map(({ tiers, capBasisPoints, pointValue, downgradeOnRefund }) => {
    let threshold = 0;
    const rules: LoyaltyRules = {
      ...defaultRules(),
      tiers: tiers.map(({ gap, bps }, index) => {
        if (index > 0) threshold += gap;
        return { code: `tier_${index}`, name: { ru: `Уровень ${index}`, en: `Tier ${index}` }, accrualPercent: bps / 100, threshold };
      }),
      redemption: { maxPercent: capBasisPoints / 100, pointValue },
      tierPolicy: { downgradeOnRefund },
    };
    return { rules, accrualBasisPoints: tiers.map((tier) => tier.bps), capBasisPoints };
  });

const money = fc.oneof(
  fc.integer({ min: 1, max: 10_000_000 }),
  // Large enough that amount × basis points leaves the range where doubles are exact.
  fc.integer({ min: 1, max: Math.floor(Number.MAX_SAFE_INTEGER / 4) }),
);
const spend = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 100_000_000 }), fc.integer({ min: 0, max: Math.floor(Number.MAX_SAFE_INTEGER / 4) }));
const points = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 2 ** 40 }));

/** A card state and a purchase request; the tier is either earned by spend or set by an admin. */
const purchaseScenario = generatedRules.chain((generated) =>
  fc
    .record({
      amount: money,
      balance: points,
      lifetimeSpend: spend,
      adminTierIndex: fc.option(fc.nat({ max: generated.rules.tiers.length - 1 }), { nil: undefined }),
      redeemShare: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .map(({ amount, balance, lifetimeSpend, adminTierIndex, redeemShare }) => {
      const { rules } = generated;
      const tierCode =
        adminTierIndex === undefined ? tierFor(rules, lifetimeSpend).code : rules.tiers[adminTierIndex].code;
      const allowed = maxRedeemable(amount, balance, rules);
      const redeemPoints = Math.floor(allowed * redeemShare);
      const input: PurchaseInput = { amount, redeemPoints, balance, lifetimeSpend, tierCode, rules };
      return { ...generated, input };
    }),
);

const tierIndex = (rules: LoyaltyRules, code: string) => rules.tiers.findIndex((tier) => tier.code === code);

// ------------------------------------------------------------------------------------------
// Rules and validation
// ------------------------------------------------------------------------------------------

describe('defaultRules', () => {
  it('has the product defaults', () => {
    const rules = defaultRules();
    expect(rules.tiers).toEqual([
      { code: 'standard', name: { ru: 'Стандартная', en: 'Standard' }, accrualPercent: 5, threshold: 0 },
      { code: 'general', name: { ru: 'Генеральная', en: 'General' }, accrualPercent: 10, threshold: 50_000 * RUB },
    ]);
    expect(rules.welcomeBonus).toBe(1000);
    expect(rules.referral).toEqual({ inviterBonus: 3000, inviteeBonus: 3000, grantOn: 'enrollment', maxPerInviterPerDay: 5 });
    expect(rules.redemption).toEqual({ maxPercent: 30, pointValue: 100 });
    expect(rules.expiry).toBeNull();
    expect(rules.tierPolicy).toEqual({ downgradeOnRefund: false });
    expect(rules.campaignBonusCap).toBe(1000);
  });

  it('returns a fresh copy each time', () => {
    const first = defaultRules();
    first.tiers[0].accrualPercent = 99;
    expect(defaultRules().tiers[0].accrualPercent).toBe(5);
  });
});

describe('validateRules', () => {
  it('accepts the defaults and fills missing fields with them', () => {
    expect(validateRules(defaultRules())).toEqual({ ok: true, rules: defaultRules() });
    expect(validateRules({})).toEqual({ ok: true, rules: defaultRules() });
    const partial = validateRules({ referral: { grantOn: 'first_purchase' }, expiry: { inactivityDays: 365 } });
    expect(partial.ok).toBe(true);
    if (!partial.ok) return;
    expect(partial.rules.referral).toEqual({ inviterBonus: 3000, inviteeBonus: 3000, grantOn: 'first_purchase', maxPerInviterPerDay: 5 });
    expect(partial.rules.expiry).toEqual({ inactivityDays: 365, reminderDaysBefore: 14 });
    expect(partial.rules.redemption).toEqual({ maxPercent: 30, pointValue: 100 });
  });

  it('does not modify its input', () => {
    const input = { referral: { grantOn: 'first_purchase' } };
    validateRules(input);
    expect(input).toEqual({ referral: { grantOn: 'first_purchase' } });
  });

  it('accepts any well-formed rules unchanged (property)', () => {
    fc.assert(
      fc.property(generatedRules, ({ rules }) => {
        expect(validateRules(rules)).toEqual({ ok: true, rules });
      }),
    );
  });

  const rejected: Array<[string, LoyaltyRules | unknown, string]> = [
    ['a first tier that does not start at 0', withRules((r) => (r.tiers[0].threshold = 100)), '/tiers/0/threshold: the first tier must start at 0'],
    ['equal thresholds', withRules((r) => (r.tiers[1].threshold = 0)), '/tiers/1/threshold: must be greater than /tiers/0/threshold (0), got 0'],
    ['duplicate codes', withRules((r) => (r.tiers[1].code = 'standard')), '/tiers/1/code: duplicate tier code "standard" (also /tiers/0/code)'],
    ['a bad tier code', withRules((r) => (r.tiers[0].code = 'Gold')), '/tiers/0/code:'],
    ['no tiers', withRules((r) => (r.tiers = [])), '/tiers:'],
    ['a cap above 100 %', withRules((r) => (r.redemption.maxPercent = 100.5)), '/redemption/maxPercent:'],
    ['a negative accrual', withRules((r) => (r.tiers[0].accrualPercent = -1)), '/tiers/0/accrualPercent:'],
    ['an accrual above 100 %', withRules((r) => (r.tiers[1].accrualPercent = 101)), '/tiers/1/accrualPercent:'],
    ['three decimals in a percent', withRules((r) => (r.tiers[0].accrualPercent = 5.125)), '/tiers/0/accrualPercent: must have at most 2 decimals'],
    ['three decimals in the cap', withRules((r) => (r.redemption.maxPercent = 12.345)), '/redemption/maxPercent: must have at most 2 decimals'],
    ['a point worth nothing', withRules((r) => (r.redemption.pointValue = 0)), '/redemption/pointValue:'],
    ['a fractional bonus', withRules((r) => (r.welcomeBonus = 10.5)), '/welcomeBonus:'],
    ['a negative referral bonus', withRules((r) => (r.referral.inviterBonus = -1)), '/referral/inviterBonus:'],
    ['an unknown grant moment', { referral: { grantOn: 'later' } }, '/referral/grantOn:'],
    ['a reminder not before expiry', withRules((r) => (r.expiry = { inactivityDays: 30, reminderDaysBefore: 30 })), '/expiry/reminderDaysBefore: must be less than /expiry/inactivityDays (30), got 30'],
    ['a malformed expiry object', { expiry: { inactivityDays: 'soon' } }, '/expiry/inactivityDays:'],
    ['a misspelt field', { ...defaultRules(), welcomeBonsu: 5 }, '/welcomeBonsu:'],
    ['a missing tier name', { tiers: [{ code: 'a', accrualPercent: 1, threshold: 0 }] }, '/tiers/0/name:'],
    ['not an object', 'rules', '/:'],
    ['null', null, '/:'],
  ];

  it.each(rejected)('rejects %s with a message that names the path', (_label, input, expected) => {
    const result = validateRules(input);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.some((error) => error.startsWith(expected))).toBe(true);
  });

  it('rejects any pair of non-increasing thresholds (property)', () => {
    const scenario = generatedRules
      .filter(({ rules }) => rules.tiers.length >= 2)
      .chain((generated) =>
        fc.record({
          generated: fc.constant(generated),
          index: fc.integer({ min: 1, max: generated.rules.tiers.length - 1 }),
          drop: fc.nat({ max: 10_000_000 }),
        }),
      );
    fc.assert(
      fc.property(scenario, ({ generated, index, drop }) => {
        const rules = structuredClone(generated.rules);
        rules.tiers[index].threshold = Math.max(0, rules.tiers[index - 1].threshold - drop);
        const result = validateRules(rules);
        expect(result.ok).toBe(false);
        if (result.ok) return;
        expect(result.errors.some((error) => error.startsWith(`/tiers/${index}/threshold: must be greater than`))).toBe(true);
      }),
    );
  });

  it('rejects any duplicated tier code (property)', () => {
    const scenario = generatedRules
      .filter(({ rules }) => rules.tiers.length >= 2)
      .chain((generated) =>
        fc
          .tuple(fc.nat({ max: generated.rules.tiers.length - 1 }), fc.nat({ max: generated.rules.tiers.length - 1 }))
          .filter(([from, to]) => from !== to)
          .map(([from, to]) => ({ generated, from, to })),
      );
    fc.assert(
      fc.property(scenario, ({ generated, from, to }) => {
        const rules = structuredClone(generated.rules);
        rules.tiers[to].code = rules.tiers[from].code;
        const result = validateRules(rules);
        expect(result.ok).toBe(false);
        if (result.ok) return;
        expect(result.errors.some((error) => error.includes(`duplicate tier code "${rules.tiers[from].code}"`))).toBe(true);
      }),
    );
  });
});

describe('tierFor', () => {
  it('gives the highest tier whose threshold is reached', () => {
    const rules = defaultRules();
    expect(tierFor(rules, 0).code).toBe('standard');
    expect(tierFor(rules, 50_000 * RUB - 1).code).toBe('standard');
    expect(tierFor(rules, 50_000 * RUB).code).toBe('general');
    expect(tierFor(rules, 10_000_000 * RUB).code).toBe('general');
  });

  it('never picks a tier above the spend nor skips a reached one (property)', () => {
    fc.assert(
      fc.property(generatedRules, spend, ({ rules }, lifetimeSpend) => {
        const index = tierIndex(rules, tierFor(rules, lifetimeSpend).code);
        expect(rules.tiers[index].threshold).toBeLessThanOrEqual(lifetimeSpend);
        if (index + 1 < rules.tiers.length) expect(rules.tiers[index + 1].threshold).toBeGreaterThan(lifetimeSpend);
      }),
    );
  });
});

// ------------------------------------------------------------------------------------------
// Purchases
// ------------------------------------------------------------------------------------------

describe('quotePurchase — examples with the default rules', () => {
  it('accrues 5 % of a 1,000.00 RUB check as 50 points', () => {
    expect(purchase({ amount: 1000 * RUB })).toEqual({
      amount: 100_000,
      redeemed: 0,
      redeemedValue: 0,
      payable: 100_000,
      accrued: 50,
      accrualPercent: 5,
      lifetimeSpendAfter: 100_000,
      tierBefore: 'standard',
      tierAfter: 'standard',
      tierChanged: false,
    });
  });

  it('floors fractional points', () => {
    expect(purchase({ amount: 1999 }).accrued).toBe(0); // 5 % of 19.99 RUB = 0.9995 points
    expect(purchase({ amount: 39_999 }).accrued).toBe(19); // 5 % of 399.99 RUB = 19.99995 points
  });

  it('is exact where floating point would lose a point', () => {
    // 1,000 RUB at 4.1 %: in doubles 100000 × 4.1 / 100 / 100 = 40.99999999999999.
    const rules = withRules((r) => (r.tiers[0].accrualPercent = 4.1));
    expect(purchase({ amount: 1000 * RUB, rules }).accrued).toBe(41);
    // 100 RUB at 0.29 % with 1 point = 1 kopeck: 10000 × 0.0029 = 28.999999999999996 in doubles.
    const kopeckPoints = withRules((r) => {
      r.tiers[0].accrualPercent = 0.29;
      r.redemption.pointValue = 1;
    });
    expect(purchase({ amount: 100 * RUB, rules: kopeckPoints }).accrued).toBe(29);
  });

  it('lets 30 % of the check be paid with points and accrues on what is paid in money', () => {
    expect(maxRedeemable(1000 * RUB, 5000, defaultRules())).toBe(300);
    expect(maxRedeemable(1000 * RUB, 120, defaultRules())).toBe(120);
    expect(redemptionCap(999, defaultRules())).toBe(2); // 30 % of 9.99 RUB = 2.997 RUB → 2 points
    const quote = purchase({ amount: 1000 * RUB, redeemPoints: 300, balance: 5000 });
    expect(quote).toMatchObject({ redeemed: 300, redeemedValue: 30_000, payable: 70_000, accrued: 35, lifetimeSpendAfter: 70_000 });
  });

  it('refuses a redemption above the cap, naming the allowed maximum', () => {
    const violation = expectViolation(
      () => purchase({ amount: 1000 * RUB, redeemPoints: 301, balance: 5000 }),
      'redemption_cap_exceeded',
    );
    expect(violation.details).toMatchObject({ requested: 301, maxRedeemable: 300, cap: 300 });
    expect(violation).toBeInstanceOf(Error);
    expect(violation.name).toBe('RuleViolation');
  });

  it('allows redeeming the whole balance and not one point more', () => {
    expect(purchase({ amount: 10_000 * RUB, redeemPoints: 150, balance: 150 }).redeemed).toBe(150);
    expectViolation(() => purchase({ amount: 10_000 * RUB, redeemPoints: 151, balance: 150 }), 'insufficient_points');
  });

  it('refuses a redemption above the balance', () => {
    const violation = expectViolation(
      () => purchase({ amount: 1000 * RUB, redeemPoints: 200, balance: 150 }),
      'insufficient_points',
    );
    expect(violation.details).toMatchObject({ requested: 200, balance: 150, maxRedeemable: 150 });
  });

  it('upgrades inside the purchase that crosses 50,000 RUB, accruing at the old rate', () => {
    const crossing = purchase({ amount: 1000 * RUB, lifetimeSpend: 49_500 * RUB });
    expect(crossing).toMatchObject({
      accrued: 50,
      accrualPercent: 5,
      lifetimeSpendAfter: 50_500 * RUB,
      tierBefore: 'standard',
      tierAfter: 'general',
      tierChanged: true,
    });
    const next = purchase({ amount: 1000 * RUB, lifetimeSpend: 50_500 * RUB, tierCode: 'general' });
    expect(next).toMatchObject({ accrued: 100, accrualPercent: 10, tierAfter: 'general', tierChanged: false });
  });

  it('counts reaching the threshold exactly as crossing it', () => {
    expect(purchase({ amount: 1000 * RUB, lifetimeSpend: 49_000 * RUB }).tierAfter).toBe('general');
    expect(purchase({ amount: 1000 * RUB - 1, lifetimeSpend: 49_000 * RUB }).tierAfter).toBe('standard');
  });

  it('does not count points paid as spend', () => {
    // The check would take spend to 50,200 RUB, but only 49,900 RUB was paid in money.
    const quote = purchase({ amount: 1000 * RUB, redeemPoints: 300, balance: 300, lifetimeSpend: 49_200 * RUB });
    expect(quote).toMatchObject({ payable: 700 * RUB, lifetimeSpendAfter: 49_900 * RUB, tierAfter: 'standard', tierChanged: false });
  });

  it('keeps a tier set by an admin above what spend gives, and accrues at its rate', () => {
    const quote = purchase({ amount: 1000 * RUB, lifetimeSpend: 0, tierCode: 'general' });
    expect(quote).toMatchObject({ accrued: 100, tierBefore: 'general', tierAfter: 'general', tierChanged: false });
  });

  it('rejects malformed input', () => {
    for (const amount of [0, -100, 10.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1]) {
      expectViolation(() => purchase({ amount }), 'invalid_amount');
    }
    expectViolation(() => purchase({ redeemPoints: -1, balance: 10 }), 'invalid_points');
    expectViolation(() => purchase({ redeemPoints: 1.5, balance: 10 }), 'invalid_points');
    expectViolation(() => purchase({ balance: -1 }), 'invalid_points');
    expectViolation(() => purchase({ lifetimeSpend: -1 }), 'invalid_amount');
    const unknown = expectViolation(() => purchase({ tierCode: 'platinum' }), 'unknown_tier');
    expect(unknown.details).toMatchObject({ tierCode: 'platinum', knownTiers: ['standard', 'general'] });
    expectViolation(() => maxRedeemable(0, 10, defaultRules()), 'invalid_amount');
  });
});

describe('quotePurchase — properties', () => {
  it('splits the check exactly: payable + redeemedValue = amount, both non-negative', () => {
    fc.assert(
      fc.property(purchaseScenario, ({ input }) => {
        const quote = quotePurchase(input);
        expect(quote.amount).toBe(input.amount);
        expect(quote.redeemed).toBe(input.redeemPoints);
        expect(quote.redeemedValue).toBe(input.redeemPoints * input.rules.redemption.pointValue);
        expect(quote.payable + quote.redeemedValue).toBe(input.amount);
        expect(quote.payable).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it('accrues exactly floor(payable × percent / 100 / pointValue) at the tier held before', () => {
    fc.assert(
      fc.property(purchaseScenario, ({ input, accrualBasisPoints }) => {
        const quote = quotePurchase(input);
        const before = tierIndex(input.rules, input.tierCode);
        const rate = BigInt(accrualBasisPoints[before]);
        const perPoint = 10_000n * BigInt(input.rules.redemption.pointValue);
        const earned = BigInt(quote.payable) * rate;
        const accrued = BigInt(quote.accrued);
        expect(Number.isSafeInteger(quote.accrued)).toBe(true);
        expect(quote.accrued).toBeGreaterThanOrEqual(0);
        // Never more than the percent of what was paid, and less than one point short of it.
        expect(accrued * perPoint <= earned).toBe(true);
        expect((accrued + 1n) * perPoint > earned).toBe(true);
        expect(quote.accrualPercent).toBe(input.rules.tiers[before].accrualPercent);
      }),
    );
  });

  it('accrues the exact whole number of points when the share is whole, with no floating-point loss', () => {
    // payable = units × pointValue × 100 and rate = bps / 100 %  →  exactly units × bps / 100 points;
    // choosing units as a multiple of 100 makes that a whole number a float pipeline often misses.
    const scenario = generatedRules.chain((generated) =>
      fc.record({ generated: fc.constant(generated), hundreds: fc.integer({ min: 1, max: 1_000_000 }) }),
    );
    fc.assert(
      fc.property(scenario, ({ generated: { rules, accrualBasisPoints }, hundreds }) => {
        const amount = hundreds * 100 * rules.redemption.pointValue * 100;
        fc.pre(Number.isSafeInteger(amount));
        const quote = quotePurchase({ amount, redeemPoints: 0, balance: 0, lifetimeSpend: 0, tierCode: rules.tiers[0].code, rules });
        expect(quote.accrued).toBe(hundreds * accrualBasisPoints[0]);
      }),
    );
  });

  it('grows lifetime spend by the money paid and never lowers the tier', () => {
    fc.assert(
      fc.property(purchaseScenario, ({ input }) => {
        const quote = quotePurchase(input);
        const { rules } = input;
        expect(quote.lifetimeSpendAfter).toBe(input.lifetimeSpend + quote.payable);
        const before = tierIndex(rules, input.tierCode);
        const after = tierIndex(rules, quote.tierAfter);
        const earned = tierIndex(rules, tierFor(rules, quote.lifetimeSpendAfter).code);
        expect(quote.tierBefore).toBe(input.tierCode);
        expect(after).toBe(Math.max(before, earned));
        expect(quote.tierChanged).toBe(after !== before);
      }),
    );
  });

  it('accepts exactly the redemptions within min(balance, cap) and refuses the rest with the right code', () => {
    const scenario = purchaseScenario.chain((generated) =>
      fc.record({
        generated: fc.constant(generated),
        redeemPoints: fc.oneof(
          points,
          fc.nat({ max: 2_000 }),
          // The boundaries, where an off-by-one would hide.
          fc.constantFrom(0, 1, 2).map(
            (extra) => maxRedeemable(generated.input.amount, generated.input.balance, generated.input.rules) + extra,
          ),
          fc.constant(generated.input.balance + 1),
        ),
      }),
    );
    fc.assert(
      fc.property(scenario, ({ generated: { input, capBasisPoints }, redeemPoints }) => {
        const { amount, balance, rules } = input;
        const cap = Number((BigInt(amount) * BigInt(capBasisPoints)) / (10_000n * BigInt(rules.redemption.pointValue)));
        expect(maxRedeemable(amount, balance, rules)).toBe(Math.min(balance, cap));
        const attempt = () => quotePurchase({ ...input, redeemPoints });
        if (redeemPoints > balance) {
          expectViolation(attempt, 'insufficient_points');
        } else if (redeemPoints > cap) {
          const violation = expectViolation(attempt, 'redemption_cap_exceeded');
          expect(violation.details?.maxRedeemable).toBe(Math.min(balance, cap));
        } else {
          const quote = attempt();
          expect(quote.redeemed).toBeLessThanOrEqual(Math.min(balance, cap));
          // The cap is a share of the check, so points never pay more than maxPercent of it.
          expect(BigInt(quote.redeemedValue) * 10_000n <= BigInt(amount) * BigInt(capBasisPoints)).toBe(true);
        }
      }),
    );
  });
});

// ------------------------------------------------------------------------------------------
// Refunds
// ------------------------------------------------------------------------------------------

describe('quoteRefund — examples', () => {
  it('returns the redeemed points and takes back the accrued ones', () => {
    const bought = purchase({ amount: 1000 * RUB, redeemPoints: 300, balance: 5000, lifetimeSpend: 10_000 * RUB });
    const refund = quoteRefund({
      purchase: bought,
      balance: 5000 - 300 + 35,
      lifetimeSpend: bought.lifetimeSpendAfter,
      tierCode: 'standard',
      rules: defaultRules(),
    });
    expect(refund).toEqual({
      pointsReturned: 300,
      pointsReversed: 35,
      balanceDelta: 265,
      lifetimeSpendAfter: 10_000 * RUB,
      tierAfter: 'standard',
      tierChanged: false,
      shortfall: 0,
    });
  });

  it('never takes the balance below zero and reports what it could not take back', () => {
    const refund = quoteRefund({
      purchase: { payable: 1000 * RUB, redeemed: 0, accrued: 50 },
      balance: 20,
      lifetimeSpend: 1000 * RUB,
      tierCode: 'standard',
      rules: defaultRules(),
    });
    expect(refund).toMatchObject({ pointsReturned: 0, pointsReversed: 20, balanceDelta: -20, shortfall: 30 });
  });

  const afterCrossing = { purchase: { payable: 1000 * RUB, redeemed: 0, accrued: 50 }, balance: 50, lifetimeSpend: 50_500 * RUB, tierCode: 'general' };

  it('keeps the tier by default when a refund drops spend below the threshold', () => {
    const refund = quoteRefund({ ...afterCrossing, rules: defaultRules() });
    expect(refund).toMatchObject({ lifetimeSpendAfter: 49_500 * RUB, tierAfter: 'general', tierChanged: false });
  });

  it('recomputes the tier from spend when the program downgrades on refund', () => {
    const rules = withRules((r) => (r.tierPolicy.downgradeOnRefund = true));
    const refund = quoteRefund({ ...afterCrossing, rules });
    expect(refund).toMatchObject({ lifetimeSpendAfter: 49_500 * RUB, tierAfter: 'standard', tierChanged: true });
    // Still above the threshold after the refund: nothing to undo.
    const small = quoteRefund({ ...afterCrossing, purchase: { payable: 100 * RUB, redeemed: 0, accrued: 5 }, rules });
    expect(small).toMatchObject({ tierAfter: 'general', tierChanged: false });
  });

  it('leaves a tier an admin set above spend alone even when downgrading on refund', () => {
    const rules = withRules((r) => (r.tierPolicy.downgradeOnRefund = true));
    const refund = quoteRefund({ ...afterCrossing, lifetimeSpend: 2000 * RUB, rules });
    expect(refund).toMatchObject({ tierAfter: 'general', tierChanged: false });
  });

  it('rejects malformed input', () => {
    const valid = { ...afterCrossing, rules: defaultRules() };
    expectViolation(() => quoteRefund({ ...valid, purchase: { ...valid.purchase, payable: -1 } }), 'invalid_amount');
    expectViolation(() => quoteRefund({ ...valid, purchase: { ...valid.purchase, accrued: 0.5 } }), 'invalid_points');
    expectViolation(() => quoteRefund({ ...valid, balance: -5 }), 'invalid_points');
    expectViolation(() => quoteRefund({ ...valid, tierCode: 'gold' }), 'unknown_tier');
  });
});

describe('quoteRefund — properties', () => {
  it('undoes a purchase exactly when nothing happened in between', () => {
    fc.assert(
      fc.property(purchaseScenario, ({ input }) => {
        const { rules } = input;
        const bought = quotePurchase(input);
        const balanceAfterPurchase = input.balance - bought.redeemed + bought.accrued;
        const refund = quoteRefund({
          purchase: bought,
          balance: balanceAfterPurchase,
          lifetimeSpend: bought.lifetimeSpendAfter,
          tierCode: bought.tierAfter,
          rules,
        });
        expect(refund.pointsReturned).toBe(bought.redeemed);
        expect(refund.pointsReversed).toBe(bought.accrued);
        expect(refund.shortfall).toBe(0);
        expect(balanceAfterPurchase + refund.balanceDelta).toBe(input.balance);
        expect(refund.lifetimeSpendAfter).toBe(input.lifetimeSpend);

        const earnedBefore = tierFor(rules, input.lifetimeSpend).code;
        if (!rules.tierPolicy.downgradeOnRefund) {
          expect(refund.tierAfter).toBe(bought.tierAfter);
        } else if (input.tierCode === earnedBefore) {
          // A card whose tier came from spend gets back exactly the tier it had.
          expect(refund.tierAfter).toBe(input.tierCode);
        }
        expect(refund.tierChanged).toBe(refund.tierAfter !== bought.tierAfter);
      }),
    );
  });

  it('keeps the balance non-negative and accounts for every accrued point', () => {
    const scenario = purchaseScenario.chain((generated) =>
      fc.record({
        generated: fc.constant(generated),
        balanceNow: points,
        spendSince: spend,
      }),
    );
    fc.assert(
      fc.property(scenario, ({ generated: { input }, balanceNow, spendSince }) => {
        const { rules } = input;
        const bought = quotePurchase(input);
        const lifetimeSpend = bought.lifetimeSpendAfter + spendSince;
        const tierCode = rules.tiers[Math.max(tierIndex(rules, bought.tierAfter), tierIndex(rules, tierFor(rules, lifetimeSpend).code))].code;
        const refund = quoteRefund({ purchase: bought, balance: balanceNow, lifetimeSpend, tierCode, rules });

        expect(balanceNow + refund.balanceDelta).toBeGreaterThanOrEqual(0);
        expect(refund.balanceDelta).toBe(refund.pointsReturned - refund.pointsReversed);
        expect(refund.pointsReversed + refund.shortfall).toBe(bought.accrued);
        expect(refund.shortfall).toBe(Math.max(0, bought.accrued - balanceNow - bought.redeemed));
        expect(refund.lifetimeSpendAfter).toBe(lifetimeSpend - bought.payable);
        // A refund never raises a tier, and only lowers one when the program says so.
        const now = tierIndex(rules, tierCode);
        const after = tierIndex(rules, refund.tierAfter);
        expect(after).toBeLessThanOrEqual(now);
        if (!rules.tierPolicy.downgradeOnRefund) expect(after).toBe(now);
      }),
    );
  });
});

// ------------------------------------------------------------------------------------------
// Referral and expiry
// ------------------------------------------------------------------------------------------

describe('referralBonuses', () => {
  it('grants at the configured moment only', () => {
    const onEnrollment = defaultRules();
    expect(referralBonuses(onEnrollment, 'enrollment')).toEqual({ inviter: 3000, invitee: 3000 });
    expect(referralBonuses(onEnrollment, 'first_purchase')).toBeNull();

    const onFirstPurchase = withRules((r) => (r.referral = { inviterBonus: 500, inviteeBonus: 200, grantOn: 'first_purchase', maxPerInviterPerDay: 5 }));
    expect(referralBonuses(onFirstPurchase, 'enrollment')).toBeNull();
    expect(referralBonuses(onFirstPurchase, 'first_purchase')).toEqual({ inviter: 500, invitee: 200 });
  });
});

describe('expiryDue', () => {
  const DAY = 86_400_000;
  const lastActivity = new Date('2025-01-01T10:00:00Z');
  const rules = withRules((r) => (r.expiry = { inactivityDays: 180, reminderDaysBefore: 14 }));

  it('is null when points never expire', () => {
    expect(expiryDue(defaultRules(), lastActivity, lastActivity)).toBeNull();
  });

  it('expires after the inactivity period and reminds the given days before', () => {
    expect(expiryDue(rules, lastActivity, lastActivity)).toEqual({
      remindAt: new Date(lastActivity.getTime() + 166 * DAY),
      expireAt: new Date(lastActivity.getTime() + 180 * DAY),
    });
  });

  it('makes an overdue reminder due now without moving the expiry', () => {
    const now = new Date(lastActivity.getTime() + 170 * DAY);
    expect(expiryDue(rules, lastActivity, now)).toEqual({ remindAt: now, expireAt: new Date(lastActivity.getTime() + 180 * DAY) });
    const afterExpiry = new Date(lastActivity.getTime() + 400 * DAY);
    const expireAt = new Date(lastActivity.getTime() + 180 * DAY);
    expect(expiryDue(rules, lastActivity, afterExpiry)).toEqual({ remindAt: expireAt, expireAt });
  });

  it('keeps the expiry moment independent of when it is asked (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 * DAY }), fc.integer({ min: 0, max: 1000 * DAY }), (askedA, askedB) => {
        const a = expiryDue(rules, lastActivity, new Date(lastActivity.getTime() + askedA));
        const b = expiryDue(rules, lastActivity, new Date(lastActivity.getTime() + askedB));
        expect(a?.expireAt).toEqual(b?.expireAt);
        expect(a!.remindAt.getTime()).toBeLessThanOrEqual(a!.expireAt.getTime());
      }),
    );
  });
});
