import { CouponCodeInput, PurchaseCouponSchema, RefundCouponSchema } from '../coupons/schemas.js';
import { Type } from '@sinclair/typebox';

export const LineItemSchema = Type.Object(
  {
    sku: Type.String({ minLength: 1, maxLength: 64, description: 'The till\'s article code' }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    category: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'Matched case-insensitively against the program\'s category rules and stamp categories' }),
    ),
    quantity: Type.Integer({ minimum: 1, maximum: 10_000, description: 'Whole units; send weighed goods as quantity 1 priced at the line total' }),
    price: Type.Integer({ minimum: 0, maximum: 100_000_000_000, description: 'Unit price, minor units; the line costs price × quantity' }),
  },
  { additionalProperties: false },
);

export const PurchaseRequestSchema = Type.Object(
  {
    amount: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000_000_000,
        description: 'Check amount, minor units (125050 = 1,250.50). Required without items; with items it may be omitted (the sum of the lines) and, if sent, must equal that sum (422 items_amount_mismatch)',
      }),
    ),
    items: Type.Optional(
      Type.Array(LineItemSchema, {
        minItems: 1,
        maxItems: 200,
        description: 'The check\'s lines: category rules (multipliers, exclusions) and stamp categories apply to them',
      }),
    ),
    redeemPoints: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Points to pay with' })),
    storeId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    receiptId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Unique per program: a receipt counts once' })),
    couponCode: Type.Optional(CouponCodeInput),
  },
  { additionalProperties: false },
);

const MechanicField = Type.Union([Type.Literal('points'), Type.Literal('discount'), Type.Literal('stamps')]);

// The mechanic fields are present unless the program is a points program and the check had no
// items: those purchases answer exactly what they always did.
export const PurchaseResultSchema = Type.Object({
  purchaseId: Type.String(),
  amount: Type.Integer(),
  redeemed: Type.Integer({ description: 'Points paid with' }),
  accrued: Type.Integer({ description: 'Points earned' }),
  payable: Type.Integer({ description: 'Money to pay, minor units: amount − discount − points value' }),
  balance: Type.Integer(),
  tier: Type.String(),
  tierChanged: Type.Boolean(),
  mechanic: Type.Optional(MechanicField),
  eligibleAmount: Type.Optional(Type.Integer({ description: 'The part of the check the rules apply to (amount minus excluded items)' })),
  discountPercent: Type.Optional(Type.Number({ description: 'Mechanic "discount": the percent given (the tier the card had); else 0' })),
  discount: Type.Optional(Type.Integer({ description: 'Money off, minor units' })),
  stampsAdded: Type.Optional(Type.Integer()),
  rewardsEarned: Type.Optional(Type.Integer({ description: 'Stamp cards completed by this purchase (each is a reward)' })),
  stamps: Type.Optional(Type.Integer({ description: 'Stamps on the card after the purchase' })),
  coupon: Type.Optional(PurchaseCouponSchema),
});

export const QuoteResultSchema = Type.Object({
  cardId: Type.String(),
  mechanic: MechanicField,
  amount: Type.Integer({ description: 'Check amount (the sum of the items when amount was omitted)' }),
  eligibleAmount: Type.Integer({ description: 'The part of the check the rules apply to (amount minus excluded items)' }),
  discountPercent: Type.Number(),
  discount: Type.Integer({ description: 'Money off, minor units' }),
  balance: Type.Integer({ description: 'Spendable points now' }),
  maxRedeemablePoints: Type.Integer({ description: 'The most points this check may be paid with' }),
  redeemed: Type.Integer({ description: 'The points requested (redeemPoints)' }),
  redeemedValue: Type.Integer({ description: 'What they are worth, minor units' }),
  payable: Type.Integer({ description: 'Money the till charges: amount − discount − redeemedValue' }),
  accrued: Type.Integer({ description: 'Points the purchase would earn' }),
  accrualPercent: Type.Number(),
  tier: Type.String(),
  tierAfter: Type.String(),
  tierChanged: Type.Boolean(),
  stamps: Type.Integer({ description: 'Stamps on the card now' }),
  stampsExpired: Type.Integer({ description: 'Stamps that would be lost to expiry first' }),
  stampsAdded: Type.Integer(),
  rewardsEarned: Type.Integer(),
  stampsAfter: Type.Integer(),
  perReward: Type.Union([Type.Integer(), Type.Null()], { description: 'Stamps per reward (stamps mechanic), else null' }),
  couponDiscount: Type.Integer({ description: 'With couponCode: what that coupon takes off the eligible part of the check (included in payable); else 0' }),
  coupons: Type.Array(
    Type.Object({
      code: Type.String(),
      title: Type.Object({ ru: Type.String(), en: Type.String() }),
      discount: Type.Integer({ description: 'What this coupon would take off this check, minor units' }),
      payableAfter: Type.Integer({ description: 'What the till would charge with this coupon (and the mechanic\'s discount), before points' }),
    }),
    { description: 'The card\'s usable coupons this check can use, the largest discount first' },
  ),
});

export const RefundResultSchema = Type.Object({
  purchaseId: Type.String(),
  status: Type.Literal('refunded'),
  pointsReturned: Type.Integer({ description: 'Redeemed points given back' }),
  pointsReversed: Type.Integer({ description: 'Points taken back from the card: the accrual and the bonuses the purchase caused' }),
  bonusesReversed: Type.Integer({ description: 'Of pointsReversed: welcome and referral bonuses the purchase caused (first-purchase referral, released pending bonuses)' }),
  shortfall: Type.Integer({ description: 'Points already spent, which could not be taken back from the card' }),
  referral: Type.Union(
    [
      Type.Object({
        inviterCardId: Type.String(),
        pointsReversed: Type.Integer({ description: "The inviter's referral bonus taken back" }),
        shortfall: Type.Integer({ description: 'Of it, already spent by the inviter' }),
      }),
      Type.Null(),
    ],
    { description: "The inviter's side of a referral this purchase had paid; null when it paid none" },
  ),
  balance: Type.Integer(),
  tier: Type.String(),
  tierChanged: Type.Boolean(),
  stampsDelta: Type.Optional(
    Type.Integer({ description: 'Stamps programs: how the card\'s stamps moved (the stamps the purchase added come off, those its rewards used come back)' }),
  ),
  stampsShortfall: Type.Optional(Type.Integer({ description: 'Stamps that could not be taken back (already used for a later reward)' })),
  rewardsRevoked: Type.Optional(Type.Integer({ description: 'Stamp rewards the purchase had earned, revoked' })),
  stamps: Type.Optional(Type.Integer()),
  coupon: Type.Optional(RefundCouponSchema),
});

const PurchaseView = Type.Object({
  id: Type.String(),
  amount: Type.Integer(),
  redeemed: Type.Integer(),
  accrued: Type.Integer(),
  payable: Type.Integer(),
  discount: Type.Integer(),
  stampsAdded: Type.Integer(),
  rewardsEarned: Type.Integer(),
  items: Type.Union([Type.Array(Type.Object({}, { additionalProperties: true })), Type.Null()], { description: 'The lines the till sent, or null' }),
  storeId: Type.Union([Type.String(), Type.Null()]),
  receiptId: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  createdAt: Type.String(),
  refundedAt: Type.Union([Type.String(), Type.Null()]),
});

const LedgerView = Type.Object({
  id: Type.Integer(),
  kind: Type.String(),
  points: Type.Integer(),
  purchaseId: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  actor: Type.String(),
  createdAt: Type.String(),
});

export const HistorySchema = Type.Object({
  cardId: Type.String(),
  balance: Type.Integer(),
  ledgerSum: Type.Integer({ description: 'Sum of the whole ledger; always equals balance' }),
  pendingPoints: Type.Integer({ description: 'Bonuses not spendable yet (self-service card not verified); not part of the ledger' }),
  pending: Type.Array(
    Type.Object({ kind: Type.String(), points: Type.Integer(), reason: Type.Union([Type.String(), Type.Null()]), createdAt: Type.String() }),
    { description: 'The pending bonuses (sum = pendingPoints)' },
  ),
  purchases: Type.Array(PurchaseView),
  ledger: Type.Array(LedgerView),
  stats: Type.Object({
    visits: Type.Integer({ description: 'Completed purchases' }),
    totalSpend: Type.Integer({ description: 'Sum of completed checks, minor units' }),
    averageCheck: Type.Integer({ description: 'Minor units, rounded' }),
    firstPurchaseAt: Type.Union([Type.String(), Type.Null()]),
    lastPurchaseAt: Type.Union([Type.String(), Type.Null()]),
    segment: Type.Union([Type.String(), Type.Null()], { description: 'RFM segment (computed by the campaigns module)' }),
  }),
});
