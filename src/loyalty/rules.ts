/**
 * The pure rules of the loyalty engine: what a program's rules look like, how they are
 * validated, and what a purchase or a refund does to a card's points, spend and tier.
 *
 * Nothing here touches a database or the clock; callers pass in the card state and write the
 * quoted result to the ledger themselves. Units: money is integer minor units (125050 =
 * 1,250.50 RUB), points are integers, `pointValue` is the number of minor units one point is
 * worth. All money/points arithmetic is done on integers (BigInt where products could leave
 * the safe-integer range), so quotes never drift by a point because of floating point.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value, type ValueError } from '@sinclair/typebox/value';

// Bonuses, thresholds and amounts are stored as JSON numbers; beyond this they stop being exact.
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const LocalizedTextSchema = Type.Object(
  {
    ru: Type.String({ minLength: 1, maxLength: 64 }),
    en: Type.String({ minLength: 1, maxLength: 64 }),
  },
  { additionalProperties: false },
);

// Percent fields accept at most 2 decimals (12.5, 7.25); that is checked in validateRules rather
// than with `multipleOf: 0.01`, because `0.07 % 0.01 !== 0` in floating point.
const PercentSchema = (description: string, defaultValue?: number) =>
  Type.Number({
    minimum: 0,
    maximum: 100,
    description: `${description} Percent, 0..100, at most 2 decimals.`,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });

export const TierRuleSchema = Type.Object(
  {
    code: Type.String({ pattern: '^[a-z][a-z0-9_]{0,31}$', description: 'Stable tier identifier.' }),
    name: LocalizedTextSchema,
    accrualPercent: PercentSchema('Share of the paid amount returned as points.'),
    threshold: Type.Integer({
      minimum: 0,
      maximum: MAX_SAFE,
      description: 'Lifetime spend (minor units) from which the tier applies. First tier: 0.',
    }),
    discountPercent: Type.Optional(
      PercentSchema('Discount off the eligible part of every check at this tier (mechanic "discount"; required on every tier there).'),
    ),
  },
  { additionalProperties: false },
);
export type TierRule = Static<typeof TierRuleSchema>;

const DEFAULT_TIERS: TierRule[] = [
  { code: 'standard', name: { ru: 'Стандартная', en: 'Standard' }, accrualPercent: 5, threshold: 0 },
  { code: 'general', name: { ru: 'Генеральная', en: 'General' }, accrualPercent: 10, threshold: 5_000_000 },
];

const BonusSchema = (description: string, defaultValue: number) =>
  Type.Integer({ minimum: 0, maximum: MAX_SAFE, default: defaultValue, description: `${description} Points.` });

const ReferralMomentSchema = Type.Union([Type.Literal('enrollment'), Type.Literal('first_purchase')]);
export type ReferralMoment = Static<typeof ReferralMomentSchema>;

const ReferralSchema = Type.Object(
  {
    inviterBonus: BonusSchema('Granted to the member who shared the referral link.', 3000),
    inviteeBonus: BonusSchema('Granted to the new member who joined through the link.', 3000),
    grantOn: Type.Union([Type.Literal('enrollment'), Type.Literal('first_purchase')], { default: 'enrollment' }),
    maxPerInviterPerDay: Type.Integer({
      minimum: 0,
      maximum: 10_000,
      default: 5,
      description:
        'Referrals of self-service (join page) cards paid to one inviter in 24 hours; past it the inviter gets nothing for ' +
        'that invitation (the invitee still gets theirs). 0 = inviters of self-service cards are never paid. Staff-issued cards are not counted.',
    }),
  },
  { additionalProperties: false, default: { inviterBonus: 3000, inviteeBonus: 3000, grantOn: 'enrollment', maxPerInviterPerDay: 5 } },
);

const RedemptionSchema = Type.Object(
  {
    maxPercent: PercentSchema('At most this share of a check may be paid with points.', 30),
    pointValue: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      default: 100,
      description: 'Minor units one point is worth (100 = 1 point is 1 RUB).',
    }),
  },
  { additionalProperties: false, default: { maxPercent: 30, pointValue: 100 } },
);

const ExpirySchema = Type.Object(
  {
    inactivityDays: Type.Integer({ minimum: 1, maximum: 36_500, description: 'Points expire after this many days without activity.' }),
    reminderDaysBefore: Type.Integer({
      minimum: 1,
      maximum: 36_500,
      default: 14,
      description: 'The holder is reminded this many days before the points expire.',
    }),
  },
  { additionalProperties: false },
);

const TierPolicySchema = Type.Object(
  {
    // false (the default): a refund never lowers a tier, even when it takes lifetime spend back
    // below the threshold; the tier stays until an admin changes it. Holders are not punished
    // by a card update saying "you lost General" over an exchanged item, and the rule is easy
    // to explain at the till. true: a refund that takes spend below the threshold of the
    // card's current tier recomputes the tier from spend (see quoteRefund).
    downgradeOnRefund: Type.Boolean({ default: false }),
  },
  { additionalProperties: false, default: { downgradeOnRefund: false } },
);

// The new rule fields (issue #17) are optional without defaults: rules stored before them, and
// rules a client sends without them, mean exactly what they meant before (a points program with
// no category rules), and validation hands them back unchanged.
export const MechanicSchema = Type.Union([Type.Literal('points'), Type.Literal('discount'), Type.Literal('stamps')], {
  description: 'What a purchase gives the holder: points (with tiers), a discount growing by tier, or stamps. Absent = points.',
});
export type Mechanic = Static<typeof MechanicSchema>;

const CategoryCodeSchema = Type.String({ minLength: 1, maxLength: 64, pattern: '^[^\\s].*$', description: 'Matched case-insensitively.' });

export const CategoryRuleSchema = Type.Object(
  {
    category: CategoryCodeSchema,
    multiplier: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 10,
        description: 'Points mechanic: accrual on items of this category is multiplied by this (2 = double points). At most 2 decimals. Default 1.',
      }),
    ),
    exclude: Type.Optional(
      Type.Boolean({
        description: 'Items of this category earn nothing, get no discount, cannot be paid with points and earn no stamps (e.g. tobacco).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CategoryRule = Static<typeof CategoryRuleSchema>;

export const StampsRuleSchema = Type.Object(
  {
    perReward: Type.Integer({ minimum: 1, maximum: 100, description: 'Stamps that earn one reward (6 = every 6th coffee).' }),
    minCheck: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_SAFE, description: 'A purchase stamps only if its eligible amount reaches this (minor units).' }),
    ),
    categories: Type.Optional(
      Type.Array(CategoryCodeSchema, {
        minItems: 1,
        maxItems: 50,
        description: 'When set and the purchase carries items: one stamp per item quantity of these categories. Without items a purchase is one stamp.',
      }),
    ),
    expireDays: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 36_500, description: 'Stamps are lost after this many days without a new stamp (applied at the next purchase).' }),
    ),
    reward: Type.Object(
      {
        name: LocalizedTextSchema,
        coupon: Type.Optional(
          Type.String({
            pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
            maxLength: 36,
            description: 'The id of the coupon definition each reward issues (POST /api/v1/coupons/definitions); without it the reward is recorded only.',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type StampsRule = Static<typeof StampsRuleSchema>;

export const LoyaltyRulesSchema = Type.Object(
  {
    mechanic: Type.Optional(MechanicSchema),
    categories: Type.Optional(
      Type.Array(CategoryRuleSchema, { maxItems: 100, description: 'Rules by item category; they apply to purchases that carry items.' }),
    ),
    stamps: Type.Optional(StampsRuleSchema),
    tiers: Type.Array(TierRuleSchema, {
      minItems: 1,
      maxItems: 20,
      default: DEFAULT_TIERS,
      description: 'Ordered from the lowest tier up; thresholds start at 0 and strictly increase.',
    }),
    welcomeBonus: BonusSchema('Granted once on enrollment.', 1000),
    referral: ReferralSchema,
    redemption: RedemptionSchema,
    expiry: Type.Union([Type.Null(), ExpirySchema], { default: null, description: 'null = points never expire.' }),
    tierPolicy: TierPolicySchema,
    campaignBonusCap: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      default: 1000,
      description:
        'Most bonus points per card a marketer (marketer key or staff) may grant with a campaign or the birthday automation. ' +
        'Admin keys and owners are not limited. Set by a program admin (these rules).',
    }),
  },
  { additionalProperties: false },
);
export type LoyaltyRules = Static<typeof LoyaltyRulesSchema>;

/** The rules a new program starts with (the product defaults). A fresh copy on every call. */
export function defaultRules(): LoyaltyRules {
  return {
    tiers: structuredClone(DEFAULT_TIERS),
    welcomeBonus: 1000,
    referral: { inviterBonus: 3000, inviteeBonus: 3000, grantOn: 'enrollment', maxPerInviterPerDay: 5 },
    redemption: { maxPercent: 30, pointValue: 100 },
    expiry: null,
    tierPolicy: { downgradeOnRefund: false },
    campaignBonusCap: 1000,
  };
}

// ------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------

export type RuleViolationCode =
  | 'insufficient_points'
  | 'items_amount_mismatch'
  | 'invalid_items'
  | 'redemption_cap_exceeded'
  | 'invalid_amount'
  | 'invalid_points'
  | 'unknown_tier';

/** A request the rules do not allow; the HTTP layer maps it to a 422 problem with this `code`. */
export class RuleViolation extends Error {
  readonly code: RuleViolationCode;
  readonly details?: Record<string, unknown>;

  constructor(code: RuleViolationCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'RuleViolation';
    this.code = code;
    if (details !== undefined) this.details = details;
  }
}

// ------------------------------------------------------------------------------------------
// Validation
// ------------------------------------------------------------------------------------------

export type RulesValidation = { ok: true; rules: LoyaltyRules } | { ok: false; errors: string[] };

/**
 * Checks rules from an admin request or the database. Missing fields are filled with the
 * product defaults (so `{}` gives `defaultRules()`); unknown fields are errors, because a
 * misspelt rule that is silently ignored would change how points are paid. The input is not
 * modified. Errors read like `/tiers/1/threshold: must be greater than /tiers/0/threshold (0)`.
 */
export function validateRules(input: unknown): RulesValidation {
  const candidate = Value.Default(LoyaltyRulesSchema, Value.Clone(input));
  const schemaErrors = describeSchemaErrors(LoyaltyRulesSchema, candidate, '');
  if (schemaErrors.length > 0) return { ok: false, errors: schemaErrors };

  const rules = candidate as LoyaltyRules;
  const errors: string[] = [];

  rules.tiers.forEach((tier, index) => {
    if (!hasAtMostTwoDecimals(tier.accrualPercent)) {
      errors.push(`/tiers/${index}/accrualPercent: must have at most 2 decimals (got ${tier.accrualPercent})`);
    }
  });
  if (!hasAtMostTwoDecimals(rules.redemption.maxPercent)) {
    errors.push(`/redemption/maxPercent: must have at most 2 decimals (got ${rules.redemption.maxPercent})`);
  }

  // The lowest tier must start at 0 so every card, including a brand-new one, has a tier.
  if (rules.tiers[0].threshold !== 0) {
    errors.push(`/tiers/0/threshold: the first tier must start at 0 (got ${rules.tiers[0].threshold})`);
  }
  for (let index = 1; index < rules.tiers.length; index++) {
    const previous = rules.tiers[index - 1].threshold;
    const current = rules.tiers[index].threshold;
    if (current <= previous) {
      errors.push(
        `/tiers/${index}/threshold: must be greater than /tiers/${index - 1}/threshold (${previous}), got ${current}`,
      );
    }
  }

  const firstIndexOfCode = new Map<string, number>();
  rules.tiers.forEach((tier, index) => {
    const first = firstIndexOfCode.get(tier.code);
    if (first === undefined) firstIndexOfCode.set(tier.code, index);
    else errors.push(`/tiers/${index}/code: duplicate tier code "${tier.code}" (also /tiers/${first}/code)`);
  });

  if (rules.expiry !== null && rules.expiry.reminderDaysBefore >= rules.expiry.inactivityDays) {
    errors.push(
      `/expiry/reminderDaysBefore: must be less than /expiry/inactivityDays (${rules.expiry.inactivityDays}), ` +
        `got ${rules.expiry.reminderDaysBefore}`,
    );
  }

  errors.push(...mechanicErrors(rules));

  return errors.length > 0 ? { ok: false, errors } : { ok: true, rules };
}

/** The mechanic, categories and stamps rules checked together (they only make sense as a whole). */
function mechanicErrors(rules: LoyaltyRules): string[] {
  const errors: string[] = [];
  const mechanic = mechanicOf(rules);
  rules.tiers.forEach((tier, index) => {
    if (tier.discountPercent === undefined) {
      if (mechanic === 'discount') errors.push(`/tiers/${index}/discountPercent: required when mechanic is "discount"`);
      return;
    }
    if (mechanic !== 'discount') errors.push(`/tiers/${index}/discountPercent: only allowed when mechanic is "discount"`);
    else if (!hasAtMostTwoDecimals(tier.discountPercent)) {
      errors.push(`/tiers/${index}/discountPercent: must have at most 2 decimals (got ${tier.discountPercent})`);
    }
  });
  if (mechanic === 'discount') {
    // A discount that shrinks as the holder spends more would be a penalty, not a programme.
    for (let index = 1; index < rules.tiers.length; index++) {
      const previous = rules.tiers[index - 1].discountPercent ?? 0;
      const current = rules.tiers[index].discountPercent ?? 0;
      if (current < previous) errors.push(`/tiers/${index}/discountPercent: must not be lower than /tiers/${index - 1}/discountPercent (${previous}), got ${current}`);
    }
  }
  if (mechanic === 'stamps' && rules.stamps === undefined) errors.push('/stamps: required when mechanic is "stamps"');
  if (mechanic !== 'stamps' && rules.stamps !== undefined) errors.push('/stamps: only allowed when mechanic is "stamps"');

  const seen = new Map<string, number>();
  (rules.categories ?? []).forEach((rule, index) => {
    const key = categoryKey(rule.category);
    const first = seen.get(key);
    if (first !== undefined) errors.push(`/categories/${index}/category: duplicate category "${rule.category}" (also /categories/${first})`);
    else seen.set(key, index);
    if (rule.multiplier !== undefined) {
      if (rule.exclude === true) errors.push(`/categories/${index}/multiplier: an excluded category earns nothing, a multiplier makes no sense`);
      else if (mechanic !== 'points') errors.push(`/categories/${index}/multiplier: only the points mechanic earns points to multiply`);
      else if (!hasAtMostTwoDecimals(rule.multiplier)) errors.push(`/categories/${index}/multiplier: must have at most 2 decimals (got ${rule.multiplier})`);
    }
  });
  const stampCategories = rules.stamps?.categories ?? [];
  const stampSeen = new Set<string>();
  stampCategories.forEach((category, index) => {
    const key = categoryKey(category);
    if (stampSeen.has(key)) errors.push(`/stamps/categories/${index}: duplicate category "${category}"`);
    stampSeen.add(key);
    const rule = (rules.categories ?? []).find((r) => categoryKey(r.category) === key);
    if (rule?.exclude === true) errors.push(`/stamps/categories/${index}: "${category}" is excluded in /categories and can never stamp`);
  });
  return errors;
}

/** The program's mechanic; rules stored before mechanics existed are points programs. */
export function mechanicOf(rules: Pick<LoyaltyRules, 'mechanic'>): Mechanic {
  return rules.mechanic ?? 'points';
}

/** Categories are compared trimmed and case-insensitively: "Tobacco" at the till is tobacco. */
export function categoryKey(category: string): string {
  return category.trim().toLocaleLowerCase('en-US');
}

function describeSchemaErrors(schema: TSchema, value: unknown, pathPrefix: string): string[] {
  const messages: string[] = [];
  for (const error of Value.Errors(schema, value)) {
    const nested = describeUnionMismatch(error, pathPrefix);
    if (nested !== null) messages.push(...nested);
    else messages.push(`${pathPrefix + error.path || '/'}: ${error.message}`);
  }
  return [...new Set(messages)];
}

// TypeBox reports a failed `null | {…}` as "Expected union value". When the admin clearly meant
// the object variant (they sent an object), report what is wrong inside that object instead.
function describeUnionMismatch(error: ValueError, pathPrefix: string): string[] | null {
  const variants = (error.schema as { anyOf?: TSchema[] }).anyOf;
  if (variants === undefined || typeof error.value !== 'object' || error.value === null) return null;
  const objectVariant = variants.find((variant) => variant.type === 'object');
  if (objectVariant === undefined) return null;
  return describeSchemaErrors(objectVariant, error.value, pathPrefix + error.path);
}

function hasAtMostTwoDecimals(percent: number): boolean {
  const hundredths = percent * 100;
  return Math.abs(hundredths - Math.round(hundredths)) < 1e-6;
}

/** 12.34 % → 1234 basis points, so percentages can be applied with integer arithmetic. */
function toBasisPoints(percent: number): bigint {
  return BigInt(Math.round(percent * 100));
}

const BASIS_POINTS_PER_WHOLE = 10_000n;

/** floor(money × percent / 100 / pointValue), exactly: the points `percent` of `money` is worth. */
function pointsForPercentOf(money: number, percent: number, pointValue: number): number {
  // All operands are non-negative, so BigInt's truncating division is a floor.
  return Number((BigInt(money) * toBasisPoints(percent)) / (BASIS_POINTS_PER_WHOLE * BigInt(pointValue)));
}

// ------------------------------------------------------------------------------------------
// Tiers
// ------------------------------------------------------------------------------------------

/** The highest tier whose threshold is ≤ lifetime spend. Rules must have passed validateRules. */
export function tierFor(rules: LoyaltyRules, lifetimeSpend: number): TierRule {
  let reached = rules.tiers[0];
  for (const tier of rules.tiers) {
    if (tier.threshold <= lifetimeSpend) reached = tier;
  }
  return reached;
}

function tierIndexOf(rules: LoyaltyRules, tierCode: string): number {
  const index = rules.tiers.findIndex((tier) => tier.code === tierCode);
  if (index === -1) {
    // A card pointing at a tier the program no longer has means the rules were edited without
    // migrating the cards; guessing a tier here would silently change the holder's accrual.
    throw new RuleViolation('unknown_tier', `The program has no tier "${tierCode}"`, {
      tierCode,
      knownTiers: rules.tiers.map((tier) => tier.code),
    });
  }
  return index;
}

// ------------------------------------------------------------------------------------------
// Purchases
// ------------------------------------------------------------------------------------------

export interface PurchaseInput {
  /** Check amount, minor units, > 0. */
  amount: number;
  /** Points the holder wants to pay with, ≥ 0. */
  redeemPoints: number;
  /** Card balance before the purchase, points. */
  balance: number;
  /** Card lifetime spend before the purchase, minor units. */
  lifetimeSpend: number;
  /** The card's current tier code. */
  tierCode: string;
  rules: LoyaltyRules;
}

export interface PurchaseQuote {
  amount: number;
  /** Points paid with. */
  redeemed: number;
  /** What the redeemed points are worth, minor units. */
  redeemedValue: number;
  /** What the holder pays in money, minor units: amount − discount − redeemedValue. */
  payable: number;
  /** Points earned, computed on `payable` at the tier the card had before the purchase. */
  accrued: number;
  accrualPercent: number;
  lifetimeSpendAfter: number;
  tierBefore: string;
  tierAfter: string;
  tierChanged: boolean;
}

/** The most points that may pay for a check of `amount`: the cap (maxPercent), never above the check. */
export function redemptionCap(amount: number, rules: LoyaltyRules): number {
  assertAmount(amount, 'amount', { positive: true });
  return pointsForPercentOf(amount, rules.redemption.maxPercent, rules.redemption.pointValue);
}

/** The most points a holder with `balance` may redeem on a check of `amount`. */
export function maxRedeemable(amount: number, balance: number, rules: LoyaltyRules): number {
  assertPoints(balance, 'balance');
  return Math.min(balance, redemptionCap(amount, rules));
}

/**
 * What a purchase does to the card, without doing it (the points view of `quoteCheck`, kept for
 * its callers). Throws RuleViolation when the redemption is not allowed; the caller then changes
 * nothing.
 */
export function quotePurchase(input: PurchaseInput): PurchaseQuote {
  const quote = quoteCheck(input);
  return {
    amount: quote.amount,
    redeemed: quote.redeemed,
    redeemedValue: quote.redeemedValue,
    payable: quote.payable,
    accrued: quote.accrued,
    accrualPercent: quote.accrualPercent,
    lifetimeSpendAfter: quote.lifetimeSpendAfter,
    tierBefore: quote.tierBefore,
    tierAfter: quote.tierAfter,
    tierChanged: quote.tierChanged,
  };
}

// ------------------------------------------------------------------------------------------
// Checks: mechanics, line items, categories (issue #17)
// ------------------------------------------------------------------------------------------

/** One line of a check. `price` is the unit price (minor units); the line costs price × quantity. */
export interface LineItem {
  sku: string;
  name?: string;
  category?: string;
  /** Whole units; weighed goods are sent as quantity 1 with the line's price. */
  quantity: number;
  price: number;
}

/** Largest check, minor units (the API's bound on `amount`; a sum of items may not exceed it either). */
export const MAX_CHECK_AMOUNT = 100_000_000_000;

export interface CheckInput extends Omit<PurchaseInput, 'amount'> {
  /** Check amount, minor units; may be omitted when items are given (then it is their sum). */
  amount?: number;
  items?: LineItem[];
  /** Stamps on the card before the purchase (stamps mechanic). */
  stamps?: number;
  /** When the card last got a stamp (stamps expiry); null = never. */
  lastStampAt?: Date | null;
  /** The moment of the purchase (stamps expiry only). */
  now?: Date;
  /**
   * Money a coupon takes off the eligible part of the check (src/coupons prices it on
   * eligibleCheck's lines), before the mechanic's discount and points. 0 without a coupon.
   */
  couponDiscount?: number;
}

export interface CheckQuote extends PurchaseQuote {
  mechanic: Mechanic;
  /** The part of the check the program's rules apply to: amount minus excluded items. */
  eligibleAmount: number;
  /** The tier's discount percent (mechanic "discount"), else 0. */
  discountPercent: number;
  /** Money off the eligible part after the coupon, minor units: ⌊(eligible − coupon) × percent / 100⌋. */
  discount: number;
  /** The coupon's money off (input.couponDiscount), 0 without one. */
  couponDiscount: number;
  /** The most points this check may be paid with: min(balance, cap on eligible − discount). */
  maxRedeemablePoints: number;
  /** Stamps lost to expiry before this purchase (stamps mechanic). */
  stampsExpired: number;
  /** Stamps this purchase adds. */
  stampsAdded: number;
  /** Rewards completed: ⌊(stamps before + added) / perReward⌋. */
  rewardsEarned: number;
  /** Stamps on the card after the purchase (what is left after the rewards). */
  stampsAfter: number;
}

interface PricedLine {
  total: number;
  category: string | null;
  quantity: number;
  excluded: boolean;
  /** Accrual multiplier in hundredths (100 = ×1). */
  multiplier: bigint;
}

/** Prices the check's lines and checks them against `amount`; without items the check is one line. */
function priceLines(amount: number | undefined, items: LineItem[] | undefined, rules: LoyaltyRules): { amount: number; lines: PricedLine[] } {
  if (items === undefined || items.length === 0) {
    if (amount === undefined) throw new RuleViolation('invalid_amount', 'A check needs an amount or items', { field: 'amount' });
    assertAmount(amount, 'amount', { positive: true });
    return { amount, lines: [{ total: amount, category: null, quantity: 1, excluded: false, multiplier: 100n }] };
  }
  const byCategory = new Map((rules.categories ?? []).map((rule) => [categoryKey(rule.category), rule]));
  let sum = 0;
  const lines = items.map((item, index) => {
    if (!Number.isSafeInteger(item.quantity) || item.quantity < 1) {
      throw new RuleViolation('invalid_items', `items[${index}].quantity must be a positive integer, got ${item.quantity}`, { index });
    }
    if (!Number.isSafeInteger(item.price) || item.price < 0) {
      throw new RuleViolation('invalid_items', `items[${index}].price must be a non-negative integer (minor units), got ${item.price}`, { index });
    }
    const total = item.price * item.quantity;
    sum += total;
    if (!Number.isSafeInteger(total) || sum > MAX_CHECK_AMOUNT) {
      throw new RuleViolation('invalid_items', `The items add up to more than ${MAX_CHECK_AMOUNT} minor units`, { index });
    }
    const category = item.category === undefined ? null : categoryKey(item.category);
    const rule = category === null ? undefined : byCategory.get(category);
    return { total, category, quantity: item.quantity, excluded: rule?.exclude === true, multiplier: toBasisPoints(rule?.multiplier ?? 1) };
  });
  if (sum <= 0) throw new RuleViolation('invalid_amount', 'The items add up to 0: a check must cost something', { field: 'items' });
  if (amount !== undefined && amount !== sum) {
    throw new RuleViolation('items_amount_mismatch', `amount ${amount} differs from the sum of the items ${sum}`, { amount, itemsTotal: sum });
  }
  return { amount: sum, lines };
}

/**
 * The one pure function behind both the quote and the purchase: what a check does to the card.
 * Order: the excluded items are set aside; the discount (mechanic "discount", the tier the card
 * walked in with) comes off the eligible part; points may pay up to `redemption.maxPercent` of
 * what is left of it; points accrue (mechanic "points") on the eligible money paid, weighted by
 * each line's category multiplier; stamps (mechanic "stamps") count the qualifying purchase or
 * item quantities. Without items the check is one eligible line, so the numbers are exactly the
 * whole-check rules of before. Throws RuleViolation on a request the rules do not allow.
 */
export function quoteCheck(input: CheckInput): CheckQuote {
  const { redeemPoints, balance, lifetimeSpend, tierCode, rules } = input;
  const { amount, lines } = priceLines(input.amount, input.items, rules);
  assertPoints(redeemPoints, 'redeemPoints');
  assertPoints(balance, 'balance');
  assertAmount(lifetimeSpend, 'lifetimeSpend', { positive: false });
  const tierBeforeIndex = tierIndexOf(rules, tierCode);
  const tierBefore = rules.tiers[tierBeforeIndex];
  const mechanic = mechanicOf(rules);
  const pointValue = rules.redemption.pointValue;

  const eligible = lines.filter((line) => !line.excluded);
  const eligibleAmount = eligible.reduce((sum, line) => sum + line.total, 0);
  // A coupon comes off first, and only off the eligible part (excluded goods, e.g. tobacco, are
  // never discounted); what is left is what the mechanic's discount and points apply to.
  const couponDiscount = input.couponDiscount ?? 0;
  if (!Number.isSafeInteger(couponDiscount) || couponDiscount < 0 || (couponDiscount > 0 && couponDiscount >= eligibleAmount)) {
    throw new RuleViolation('invalid_amount', `A coupon cannot take ${couponDiscount} off an eligible amount of ${eligibleAmount}`, { field: 'couponDiscount' });
  }
  const base = eligibleAmount - couponDiscount;

  const discountPercent = mechanic === 'discount' ? (tierBefore.discountPercent ?? 0) : 0;
  // Discounts round down to the kopeck, once per check (not per line), so the till's total matches.
  const discount = Number((BigInt(base) * toBasisPoints(discountPercent)) / BASIS_POINTS_PER_WHOLE);

  const cap = pointsForPercentOf(base - discount, rules.redemption.maxPercent, pointValue);
  const allowed = Math.min(balance, cap);
  if (redeemPoints > balance) {
    throw new RuleViolation('insufficient_points', `Cannot redeem ${redeemPoints} points: the balance is ${balance}`, {
      requested: redeemPoints,
      balance,
      maxRedeemable: allowed,
    });
  }
  if (redeemPoints > cap) {
    throw new RuleViolation(
      'redemption_cap_exceeded',
      `At most ${cap} points (${rules.redemption.maxPercent} % of the check) can be redeemed, ${redeemPoints} requested`,
      { requested: redeemPoints, maxRedeemable: allowed, cap, maxPercent: rules.redemption.maxPercent },
    );
  }
  // redeemPoints ≤ cap ≤ (eligible − discount) / pointValue: the value fits in the eligible part.
  const redeemedValue = redeemPoints * pointValue;
  const payable = amount - couponDiscount - discount - redeemedValue;
  const eligiblePaid = base - discount - redeemedValue;

  // Accrual uses the tier the card had when it walked in: the purchase that crosses a threshold
  // earns at the old rate and the new rate starts with the next purchase. Each eligible line earns
  // on its share of the eligible money paid, times its multiplier, in one exact rational:
  //   ⌊ Σ(line × mult) × eligiblePaid × percent / (eligible × 100 × 100 × pointValue) ⌋
  // With no items this is ⌊payable × percent / 100 / pointValue⌋, the rule of before, exactly.
  const accrualPercent = mechanic === 'points' ? tierBefore.accrualPercent : 0;
  let accrued = 0;
  if (accrualPercent > 0 && eligibleAmount > 0 && eligiblePaid > 0) {
    const weighted = eligible.reduce((sum, line) => sum + BigInt(line.total) * line.multiplier, 0n);
    accrued = Number(
      (weighted * BigInt(eligiblePaid) * toBasisPoints(accrualPercent)) /
        (BigInt(eligibleAmount) * 100n * BASIS_POINTS_PER_WHOLE * BigInt(pointValue)),
    );
  }

  // Lifetime spend counts money actually paid (excluded items too: it is what the holder spent
  // with the business): points are a discount the program funded, so spending them must not push
  // the holder towards a higher tier.
  const lifetimeSpendAfter = lifetimeSpend + payable;
  assertAmount(lifetimeSpendAfter, 'lifetimeSpend after the purchase', { positive: false });
  const earnedIndex = rules.tiers.indexOf(tierFor(rules, lifetimeSpendAfter));
  const tierAfterIndex = Math.max(tierBeforeIndex, earnedIndex);

  const stamps = quoteStamps(input, lines, eligibleAmount, mechanic);

  return {
    amount,
    redeemed: redeemPoints,
    redeemedValue,
    payable,
    accrued,
    accrualPercent,
    lifetimeSpendAfter,
    tierBefore: tierBefore.code,
    tierAfter: rules.tiers[tierAfterIndex].code,
    tierChanged: tierAfterIndex !== tierBeforeIndex,
    mechanic,
    eligibleAmount,
    discountPercent,
    discount,
    couponDiscount,
    maxRedeemablePoints: allowed,
    ...stamps,
  };
}

/**
 * The part of a check the program's rules apply to — the amount without excluded items, and the
 * eligible lines — which is what a coupon is priced on (src/coupons couponDiscount).
 */
export function eligibleCheck(amount: number | undefined, items: LineItem[] | undefined, rules: LoyaltyRules): { amount: number; items?: LineItem[] } {
  if (items === undefined || items.length === 0) {
    const priced = priceLines(amount, items, rules);
    return { amount: priced.amount };
  }
  const { lines } = priceLines(amount, items, rules);
  const kept = items.filter((_, index) => !lines[index]!.excluded);
  return { amount: lines.filter((line) => !line.excluded).reduce((sum, line) => sum + line.total, 0), items: kept };
}

function quoteStamps(
  input: CheckInput,
  lines: PricedLine[],
  eligibleAmount: number,
  mechanic: Mechanic,
): Pick<CheckQuote, 'stampsExpired' | 'stampsAdded' | 'rewardsEarned' | 'stampsAfter'> {
  const held = input.stamps ?? 0;
  assertPoints(held, 'stamps');
  const rule = input.rules.stamps;
  if (mechanic !== 'stamps' || rule === undefined) return { stampsExpired: 0, stampsAdded: 0, rewardsEarned: 0, stampsAfter: held };

  let stampsExpired = 0;
  if (rule.expireDays !== undefined && held > 0 && input.lastStampAt && input.now) {
    if (input.now.getTime() - input.lastStampAt.getTime() > rule.expireDays * DAY_MS) stampsExpired = held;
  }
  let stampsAdded = 0;
  if (eligibleAmount > 0 && eligibleAmount >= (rule.minCheck ?? 0)) {
    const hasItems = input.items !== undefined && input.items.length > 0;
    if (hasItems && rule.categories !== undefined) {
      const qualifying = new Set(rule.categories.map(categoryKey));
      stampsAdded = lines.filter((line) => !line.excluded && line.category !== null && qualifying.has(line.category)).reduce((sum, line) => sum + line.quantity, 0);
    } else {
      stampsAdded = 1;
    }
  }
  const total = held - stampsExpired + stampsAdded;
  const rewardsEarned = Math.floor(total / rule.perReward);
  return { stampsExpired, stampsAdded, rewardsEarned, stampsAfter: total - rewardsEarned * rule.perReward };
}

/**
 * Undoing a purchase's stamps: the stamps it added come off and the stamps its rewards used come
 * back (the rewards are revoked by the caller). Stamps that expired at that purchase stay expired
 * (they would have expired anyway). The count never goes below zero; what could not be taken back
 * (the holder already completed a reward with these stamps) is `shortfall`.
 */
export function quoteStampRefund(input: { added: number; usedByRewards: number; stamps: number }): {
  delta: number;
  stampsAfter: number;
  shortfall: number;
} {
  const wanted = input.usedByRewards - input.added;
  const stampsAfter = Math.max(0, input.stamps + wanted);
  return { delta: stampsAfter - input.stamps, stampsAfter, shortfall: stampsAfter - (input.stamps + wanted) };
}

// ------------------------------------------------------------------------------------------
// Refunds
// ------------------------------------------------------------------------------------------

export interface RefundInput {
  /** What the original purchase did (its stored quote). */
  purchase: { payable: number; redeemed: number; accrued: number };
  /** Card balance now, points. */
  balance: number;
  /** Card lifetime spend now, minor units. */
  lifetimeSpend: number;
  /** The card's tier now. */
  tierCode: string;
  rules: LoyaltyRules;
}

export interface RefundQuote {
  /** Redeemed points given back to the holder (= purchase.redeemed). */
  pointsReturned: number;
  /** Accrued points actually taken back: purchase.accrued − shortfall. */
  pointsReversed: number;
  /** pointsReturned − pointsReversed; the balance after is never negative. */
  balanceDelta: number;
  lifetimeSpendAfter: number;
  tierAfter: string;
  tierChanged: boolean;
  /** Accrued points that could not be taken back because the holder had already spent them. */
  shortfall: number;
}

/**
 * What refunding a purchase does: exactly undo it. The redeemed points come back, the accrued
 * points are taken back, lifetime spend drops by what was paid.
 *
 * If the holder already spent the accrued points, the balance must still not go negative (the
 * ledger invariant): we take back what is there and report the rest as `shortfall`, so the
 * program can see it (and settle it at the till if it wants) instead of a card stuck in debt
 * that silently eats future accruals.
 *
 * Tier: see `tierPolicy.downgradeOnRefund`. With true, the tier is recomputed from spend only
 * when this refund takes spend below the threshold of the card's current tier, i.e. when it
 * undoes an upgrade that spend had earned; a tier an admin set above spend is left alone, and a
 * refund never raises a tier.
 */
export function quoteRefund(input: RefundInput): RefundQuote {
  const { purchase, balance, lifetimeSpend, tierCode, rules } = input;
  assertAmount(purchase.payable, 'purchase.payable', { positive: false });
  assertPoints(purchase.redeemed, 'purchase.redeemed');
  assertPoints(purchase.accrued, 'purchase.accrued');
  assertPoints(balance, 'balance');
  assertAmount(lifetimeSpend, 'lifetimeSpend', { positive: false });
  const currentIndex = tierIndexOf(rules, tierCode);

  const pointsReturned = purchase.redeemed;
  const available = balance + pointsReturned;
  const pointsReversed = Math.min(purchase.accrued, available);
  const shortfall = purchase.accrued - pointsReversed;

  // Spend only ever grows by purchases, so it is at least this purchase's payable; the clamp
  // only guards against data edited by hand.
  const lifetimeSpendAfter = Math.max(0, lifetimeSpend - purchase.payable);

  let tierAfterIndex = currentIndex;
  const currentThreshold = rules.tiers[currentIndex].threshold;
  if (rules.tierPolicy.downgradeOnRefund && lifetimeSpend >= currentThreshold && lifetimeSpendAfter < currentThreshold) {
    tierAfterIndex = rules.tiers.indexOf(tierFor(rules, lifetimeSpendAfter));
  }

  return {
    pointsReturned,
    pointsReversed,
    balanceDelta: pointsReturned - pointsReversed,
    lifetimeSpendAfter,
    tierAfter: rules.tiers[tierAfterIndex].code,
    tierChanged: tierAfterIndex !== currentIndex,
    shortfall,
  };
}

// ------------------------------------------------------------------------------------------
// Referral and expiry
// ------------------------------------------------------------------------------------------

/** The referral bonuses to grant at `moment`, or null when the program grants them at the other one. */
export function referralBonuses(
  rules: LoyaltyRules,
  moment: ReferralMoment,
): { inviter: number; invitee: number } | null {
  if (rules.referral.grantOn !== moment) return null;
  return { inviter: rules.referral.inviterBonus, invitee: rules.referral.inviteeBonus };
}

const DAY_MS = 86_400_000;

/**
 * When to remind the holder and when their points expire, given their last activity; null
 * when the program's points never expire. Days are fixed 24-hour spans (a DST shift moves
 * the moment by an hour, which no one notices on a months-long horizon).
 *
 * `expireAt` depends only on the last activity, so a periodic sweep calling this with a moving
 * `now` gets the same answer every time. `remindAt` is not before `now` (nor after `expireAt`):
 * a reminder whose moment has passed unsent is due immediately rather than skipped. When expiry is switched on
 * (or shortened) for cards that have long been inactive, pass the moment of that change as
 * `lastActivityAt` if it is later, so those holders get the full notice before points go.
 */
export function expiryDue(
  rules: LoyaltyRules,
  lastActivityAt: Date,
  now: Date,
): { remindAt: Date; expireAt: Date } | null {
  if (rules.expiry === null) return null;
  const { inactivityDays, reminderDaysBefore } = rules.expiry;
  const expireAtMs = lastActivityAt.getTime() + inactivityDays * DAY_MS;
  const scheduledReminderMs = expireAtMs - reminderDaysBefore * DAY_MS;
  const remindAtMs = Math.min(Math.max(scheduledReminderMs, now.getTime()), expireAtMs);
  return { remindAt: new Date(remindAtMs), expireAt: new Date(expireAtMs) };
}

// ------------------------------------------------------------------------------------------
// Input guards
// ------------------------------------------------------------------------------------------

function assertAmount(value: number, field: string, { positive }: { positive: boolean }): void {
  const ok = Number.isSafeInteger(value) && (positive ? value > 0 : value >= 0);
  if (!ok) {
    const expectation = positive ? 'a positive integer' : 'a non-negative integer';
    throw new RuleViolation('invalid_amount', `${field} must be ${expectation} (minor units), got ${value}`, {
      field,
      value,
    });
  }
}

function assertPoints(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RuleViolation('invalid_points', `${field} must be a non-negative integer (points), got ${value}`, {
      field,
      value,
    });
  }
}
