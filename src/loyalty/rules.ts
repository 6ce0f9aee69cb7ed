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

export const LoyaltyRulesSchema = Type.Object(
  {
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

  return errors.length > 0 ? { ok: false, errors } : { ok: true, rules };
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
  /** What the holder pays in money, minor units: amount − redeemedValue. */
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
 * What a purchase does to the card, without doing it. Throws RuleViolation when the
 * redemption is not allowed; the caller then changes nothing.
 */
export function quotePurchase(input: PurchaseInput): PurchaseQuote {
  const { amount, redeemPoints, balance, lifetimeSpend, tierCode, rules } = input;
  assertAmount(amount, 'amount', { positive: true });
  assertPoints(redeemPoints, 'redeemPoints');
  assertPoints(balance, 'balance');
  assertAmount(lifetimeSpend, 'lifetimeSpend', { positive: false });
  const tierBeforeIndex = tierIndexOf(rules, tierCode);

  const cap = redemptionCap(amount, rules);
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

  // redeemPoints ≤ cap ≤ amount / pointValue, so the value fits in the check and stays a safe integer.
  const redeemedValue = redeemPoints * rules.redemption.pointValue;
  const payable = amount - redeemedValue;

  // Accrual uses the tier the card had when it walked in: the purchase that crosses a threshold
  // earns at the old rate and the new rate starts with the next purchase.
  const tierBefore = rules.tiers[tierBeforeIndex];
  const accrued = pointsForPercentOf(payable, tierBefore.accrualPercent, rules.redemption.pointValue);

  // Lifetime spend counts money actually paid: points are a discount the program funded, so
  // spending them must not push the holder towards a higher tier.
  const lifetimeSpendAfter = lifetimeSpend + payable;
  assertAmount(lifetimeSpendAfter, 'lifetimeSpend after the purchase', { positive: false });

  // The upgrade happens in the purchase that crosses the threshold. Tiers never go down in a
  // purchase: a tier an admin set above what spend gives is kept.
  const earnedIndex = rules.tiers.indexOf(tierFor(rules, lifetimeSpendAfter));
  const tierAfterIndex = Math.max(tierBeforeIndex, earnedIndex);
  const tierAfter = rules.tiers[tierAfterIndex];

  return {
    amount,
    redeemed: redeemPoints,
    redeemedValue,
    payable,
    accrued,
    accrualPercent: tierBefore.accrualPercent,
    lifetimeSpendAfter,
    tierBefore: tierBefore.code,
    tierAfter: tierAfter.code,
    tierChanged: tierAfterIndex !== tierBeforeIndex,
  };
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
