import { Type, type Static } from '@sinclair/typebox';
import { CalendarDate } from '../http/schemas.js';

const Int = (description?: string) => Type.Integer(description ? { description } : {});
const Money = (description: string) => Type.Integer({ description: `${description} Minor units.` });
const Share = (description: string) => Type.Union([Type.Number(), Type.Null()], { description: `${description} 0..1, 4 decimals; null when the base is 0.` });
const Day = Type.String({ format: 'date' });

export const EconomicsQuerySchema = Type.Object(
  {
    from: Type.Optional(CalendarDate({ description: 'First day (inclusive), program time zone; default: the first day of the month eleven months before `to`' })),
    to: Type.Optional(CalendarDate({ description: 'Last day (inclusive), program time zone; default: today' })),
    groupBy: Type.Optional(Type.Union([Type.Literal('day'), Type.Literal('week'), Type.Literal('month')], { description: 'Buckets of `periods` (default month; weeks start on Monday)' })),
  },
  { additionalProperties: false },
);

export const CSV_TABLES = ['periods', 'summary', 'members', 'cohorts', 'cltv-tiers', 'program-cost'] as const;
export type CsvTable = (typeof CSV_TABLES)[number];

export const EconomicsCsvQuerySchema = Type.Object(
  {
    ...EconomicsQuerySchema.properties,
    table: Type.Optional(Type.Union(CSV_TABLES.map((t) => Type.Literal(t)), { description: 'Which table (default periods)' })),
  },
  { additionalProperties: false },
);

const PointsFigures = {
  issued: Int('Points granted: positive entries of every kind except refund reversals'),
  redeemed: Int('Points paid with at the till'),
  returned: Int('Redeemed points given back by refunds'),
  reversed: Int('Granted points taken back by refunds'),
  expired: Int('Points expired'),
  adjustedOut: Int('Points taken off by manual adjustments'),
  net: Int('Change of the outstanding points'),
};

export const EconomicsSchema = Type.Object({
  from: Day,
  to: Day,
  groupBy: Type.String(),
  timeZone: Type.String(),
  currency: Type.String(),
  pointValue: Int('Minor units one point is worth (the rules now)'),
  asOf: Type.String({ format: 'date-time' }),
  liability: Type.Object({
    openingPoints: Int('Outstanding (spendable) points at the start of `from`'),
    openingValue: Money('openingPoints × pointValue.'),
    closingPoints: Int('Outstanding points at the end of `to`'),
    closingValue: Money('What the business owes: closingPoints × pointValue.'),
    changePoints: Int(),
    changeValue: Money('Change of the liability over the period.'),
    pendingPoints: Int('Bonuses of self-service cards awaiting verification at the end of `to`: shown on the cards, not spendable, not owed yet'),
    pendingValue: Money('pendingPoints × pointValue.'),
  }),
  points: Type.Object({
    ...PointsFigures,
    issuedByKind: Type.Record(Type.String(), Type.Integer(), { description: 'Granted points per ledger kind' }),
    netIssued: Int('issued − reversed'),
    netRedeemed: Int('redeemed − returned'),
    redemptionRate: Share('netRedeemed ÷ netIssued.'),
    breakageRate: Share('expired ÷ netIssued.'),
    issuedValue: Money('netIssued × pointValue.'),
    redeemedValue: Money('netRedeemed × pointValue: the discount actually given.'),
    expiredValue: Money('expired × pointValue: liability released by expiry.'),
  }),
  sales: Type.Object({
    purchases: Int('Purchases by members'),
    amount: Money('Their check amounts.'),
    paid: Money('Their money paid (check amount less the points paid with).'),
    refunds: Int('Refunds made in the period'),
    refundedAmount: Money('Check amounts refunded in the period.'),
    revenue: Money("Members' revenue: amount − refundedAmount."),
    paidNet: Money('paid less the money refunded.'),
    averageCheck: Type.Union([Type.Integer(), Type.Null()], { description: 'amount ÷ purchases, minor units' }),
    nonMemberChecks: Int('Checks of customers without a card (POST /checks)'),
    nonMemberAmount: Money('Their amounts.'),
    memberShare: Share("revenue ÷ (revenue + nonMemberAmount); null when no non-member check was reported in the period."),
    cardsEnrolled: Int(),
  }),
  members: Type.Object(
    {
      firstMonth: Type.String({ description: 'YYYY-MM: whole calendar months that the period overlaps' }),
      lastMonth: Type.String(),
      averageActiveMembers: Int('Average of the months\' active members'),
      frequency: Type.Union([Type.Number(), Type.Null()], { description: 'Purchases per active member per month (2 decimals)' }),
      returningShare: Share('Active members who had bought in an earlier month ÷ active members.'),
      repeatRate: Share('Repeat-purchase rate at the end of the last month: members with two purchases or more ÷ members with one or more (ever).'),
      months: Type.Array(
        Type.Object({
          month: Type.String({ description: 'YYYY-MM' }),
          activeMembers: Int('Cards with a purchase that month'),
          newBuyers: Int('Of them, cards whose first purchase it was'),
          returningMembers: Int('activeMembers − newBuyers'),
          purchases: Int(),
          frequency: Type.Union([Type.Number(), Type.Null()], { description: 'purchases ÷ activeMembers' }),
          everBuyers: Int('Cards that had made a purchase by the end of the month'),
          repeatBuyers: Int('Cards that had made at least two'),
          repeatRate: Share('repeatBuyers ÷ everBuyers.'),
        }),
      ),
    },
    { description: 'Per-member figures, by whole calendar month' },
  ),
  periods: Type.Array(
    Type.Object({
      key: Type.String({ description: "The bucket's first day (a week's Monday, a month's first day)" }),
      start: Day,
      end: Day,
      liabilityPoints: Int('Outstanding points at the end of the bucket'),
      liabilityValue: Money('liabilityPoints × pointValue.'),
      ...PointsFigures,
      purchases: Int(),
      amount: Money('Check amounts.'),
      revenue: Money('amount − refunded amount.'),
      averageCheck: Type.Union([Type.Integer(), Type.Null()]),
      nonMemberAmount: Money('Non-member checks.'),
      memberShare: Share("Members' share of revenue."),
      cardsEnrolled: Int(),
    }),
  ),
  cohorts: Type.Array(
    Type.Object({
      cohort: Type.String({ description: 'Enrolment month, YYYY-MM' }),
      cards: Int('Cards enrolled that month (the whole month)'),
      active: Type.Array(Type.Integer(), { description: 'Index k: cards of the cohort that bought in the k-th month after enrolment (0 = the enrolment month)' }),
      retention: Type.Array(Type.Union([Type.Number(), Type.Null()]), { description: 'active[k] ÷ cards' }),
      paid: Type.Array(Type.Integer(), { description: 'Money paid by the cohort in month k, less refunds (minor units)' }),
      cltv: Type.Array(Type.Integer(), { description: 'Cumulative paid money per card of the cohort up to month k (minor units)' }),
    }),
  ),
  cltvByTier: Type.Array(
    Type.Object({
      tier: Type.String(),
      name: Type.Object({ ru: Type.String(), en: Type.String() }),
      cards: Int('Cards in the tier now'),
      lifetimeSpend: Money('Their lifetime spend (money paid, less refunds).'),
      valuePerCard: Type.Union([Type.Integer(), Type.Null()], { description: 'lifetimeSpend ÷ cards' }),
      tenureMonths: Type.Union([Type.Number(), Type.Null()], { description: 'Average months since enrolment (1 decimal)' }),
      valuePerCardMonth: Type.Union([Type.Integer(), Type.Null()], { description: 'lifetimeSpend ÷ the cards\' months of membership' }),
    }),
  ),
  programCost: Type.Object({
    firstMonth: Type.String({ description: 'YYYY-MM: whole calendar months that the period overlaps' }),
    lastMonth: Type.String(),
    byKind: Type.Array(
      Type.Object({
        kind: Type.String({ description: 'welcome, referral, birthday, campaign_bonus, adjustment, accrual' }),
        points: Int('Points granted in the period'),
        value: Money('points × pointValue.'),
        cards: Int('Cards that received them, per month (a card that got them in two months counts twice); accrual: active members per month'),
        revenueOfCards: Money('Money those cards paid in the months they received them, less refunds.'),
        costShare: Share('value ÷ revenueOfCards.'),
      }),
    ),
    issuedValue: Money('Every point granted, less reversals, × pointValue.'),
    redeemedValue: Money('The discount actually given.'),
    memberRevenue: Money("Members' money paid in the period, less refunds."),
    costShare: Share('issuedValue ÷ memberRevenue.'),
  }),
});
export type Economics = Static<typeof EconomicsSchema>;

export const CheckRequestSchema = Type.Object(
  {
    amount: Type.Integer({ minimum: 1, maximum: 100_000_000_000, description: 'Check amount, minor units' }),
    storeId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    receiptId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Unique per program, across member purchases too' })),
  },
  { additionalProperties: false },
);

export const CheckSchema = Type.Object({
  checkId: Type.String(),
  amount: Type.Integer(),
  storeId: Type.Union([Type.String(), Type.Null()]),
  receiptId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
});
