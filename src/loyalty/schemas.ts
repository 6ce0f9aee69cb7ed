import { CouponCodeInput, PurchaseCouponSchema, RefundCouponSchema } from '../coupons/schemas.js';
import { Type } from '@sinclair/typebox';

export const PurchaseRequestSchema = Type.Object(
  {
    amount: Type.Integer({ minimum: 1, maximum: 100_000_000_000, description: 'Check amount, minor units (125050 = 1,250.50)' }),
    redeemPoints: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Points to pay with' })),
    storeId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    receiptId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Unique per program: a receipt counts once' })),
    couponCode: Type.Optional(CouponCodeInput),
  },
  { additionalProperties: false },
);

export const PurchaseResultSchema = Type.Object({
  purchaseId: Type.String(),
  amount: Type.Integer(),
  redeemed: Type.Integer({ description: 'Points paid with' }),
  accrued: Type.Integer({ description: 'Points earned' }),
  payable: Type.Integer({ description: 'Money to pay, minor units' }),
  balance: Type.Integer(),
  tier: Type.String(),
  tierChanged: Type.Boolean(),
  coupon: Type.Optional(PurchaseCouponSchema),
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
  coupon: Type.Optional(RefundCouponSchema),
});

const PurchaseView = Type.Object({
  id: Type.String(),
  amount: Type.Integer(),
  redeemed: Type.Integer(),
  accrued: Type.Integer(),
  payable: Type.Integer(),
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
