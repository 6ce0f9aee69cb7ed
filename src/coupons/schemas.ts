import { Type, type Static } from '@sinclair/typebox';
import { DateTimeInput, Uuid } from '../http/schemas.js';

/** The code the till sends (8 characters as issued; a little room for typed spaces). */
export const CouponCodeInput = Type.String({ minLength: 4, maxLength: 32, pattern: '^\\s*[A-Za-z0-9]+\\s*$', description: 'The coupon code (case-insensitive)' });

const Title = Type.Object(
  { ru: Type.String({ minLength: 1, maxLength: 100 }), en: Type.String({ minLength: 1, maxLength: 100 }) },
  { additionalProperties: false, description: 'Shown on the pass and the Google object' },
);
const Kind = Type.Union([Type.Literal('percent'), Type.Literal('amount'), Type.Literal('free_item')], {
  description: 'percent off, a fixed amount off, or one free item (by sku)',
});
const Percent = Type.Integer({ minimum: 1, maximum: 100, description: 'kind percent: percent off the check (or off its categories)' });
const Amount = Type.Integer({ minimum: 1, maximum: 100_000_000_000, description: 'kind amount: minor units off' });
const Sku = Type.String({ minLength: 1, maxLength: 100, description: 'kind free_item: the item given free (one unit)' });
const MinCheck = Type.Integer({ minimum: 0, maximum: 100_000_000_000, description: 'Minimum check amount, minor units (0 = none)' });
const Categories = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
  minItems: 1,
  maxItems: 20,
  uniqueItems: true,
  description: 'Only these categories of the check count (needs the check lines); percent and amount kinds only',
});
const ValidDays = Type.Integer({ minimum: 1, maximum: 3650, description: 'Valid for this many days after the issue' });
const ValidUntil = DateTimeInput({ description: 'Valid until this moment (for every coupon issued)' });

export const CreateCouponDefinitionSchema = Type.Object(
  {
    title: Title,
    kind: Kind,
    percent: Type.Optional(Percent),
    amount: Type.Optional(Amount),
    sku: Type.Optional(Sku),
    minCheck: Type.Optional(MinCheck),
    categories: Type.Optional(Categories),
    validDays: Type.Optional(ValidDays),
    validUntil: Type.Optional(ValidUntil),
    active: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false, description: 'Exactly one of validDays and validUntil; the value field of the kind and no other' },
);
export type CreateCouponDefinition = Static<typeof CreateCouponDefinitionSchema>;

export const UpdateCouponDefinitionSchema = Type.Object(
  {
    title: Type.Optional(Title),
    kind: Type.Optional(Kind),
    percent: Type.Optional(Percent),
    amount: Type.Optional(Amount),
    sku: Type.Optional(Sku),
    minCheck: Type.Optional(MinCheck),
    categories: Type.Optional(Type.Union([Categories, Type.Null()])),
    validDays: Type.Optional(ValidDays),
    validUntil: Type.Optional(ValidUntil),
    active: Type.Optional(Type.Boolean()),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description:
      'Changes the definition; the result is validated as a whole. Setting validDays drops validUntil and the other way round; ' +
      'a new kind drops the value fields of the old one. Issued coupons keep their expiry and follow the other terms as they are now.',
  },
);
export type UpdateCouponDefinition = Static<typeof UpdateCouponDefinitionSchema>;

export const CouponDefinitionSchema = Type.Object({
  id: Type.String(),
  title: Type.Object({ ru: Type.String(), en: Type.String() }),
  kind: Type.String(),
  percent: Type.Union([Type.Integer(), Type.Null()]),
  amount: Type.Union([Type.Integer(), Type.Null()]),
  sku: Type.Union([Type.String(), Type.Null()]),
  minCheck: Type.Integer(),
  categories: Type.Union([Type.Array(Type.String()), Type.Null()]),
  validDays: Type.Union([Type.Integer(), Type.Null()]),
  validUntil: Type.Union([Type.String(), Type.Null()]),
  active: Type.Boolean(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export type CouponDefinitionDto = Static<typeof CouponDefinitionSchema>;

export const IssueCouponSchema = Type.Object({ definitionId: Uuid }, { additionalProperties: false });

export const CardCouponSchema = Type.Object({
  id: Type.String(),
  code: Type.String(),
  definitionId: Type.String(),
  title: Type.Object({ ru: Type.String(), en: Type.String() }),
  status: Type.String({ description: 'issued | redeemed | expired | void; an issued coupon past its expiry reads expired' }),
  source: Type.String({ description: 'admin | campaign | automation | stamps' }),
  issuedAt: Type.String(),
  expiresAt: Type.String(),
  redeemedAt: Type.Union([Type.String(), Type.Null()]),
  redeemedPurchaseId: Type.Union([Type.String(), Type.Null()]),
  discount: Type.Union([Type.Integer(), Type.Null()], { description: 'What the redemption took off the check, minor units' }),
  campaignId: Type.Union([Type.String(), Type.Null()]),
});
export type CardCouponDto = Static<typeof CardCouponSchema>;

/** The coupon part of a purchase's answer. */
export const PurchaseCouponSchema = Type.Object(
  {
    code: Type.String(),
    discount: Type.Integer({ description: 'Taken off the eligible part of the check before the mechanic\'s discount and points: `payable` is what remains' }),
    checkAmount: Type.Integer({ description: 'The check as sent, before the coupon' }),
  },
  { description: 'Present when the purchase redeemed a coupon' },
);

/** The coupon part of a refund's answer. */
export const RefundCouponSchema = Type.Object(
  {
    code: Type.String(),
    status: Type.String({ description: 'issued (usable again) or expired (its validity ended meanwhile)' }),
  },
  { description: 'Present when the refunded purchase had redeemed a coupon' },
);
