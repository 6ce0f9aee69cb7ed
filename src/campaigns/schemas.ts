import { Type, type Static } from '@sinclair/typebox';
import { DateTimeInput } from '../http/schemas.js';
import { SEGMENT_CODES, SegmentThresholdsSchema } from './segments.js';

export const DEFAULT_CONTROL_SHARE = 10;
export const DEFAULT_EFFECT_WINDOW_DAYS = 14;

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });

/** A lock-screen message: short, both languages (Apple shows it as the promo's changeMessage). */
export const MessageSchema = Type.Object(
  {
    ru: Type.String({ minLength: 1, maxLength: 300 }),
    en: Type.String({ minLength: 1, maxLength: 300 }),
  },
  { additionalProperties: false },
);

export const SegmentCodeSchema = Type.Union(SEGMENT_CODES.map((code) => Type.Literal(code)));

export const AudienceSchema = Type.Object(
  {
    all: Type.Optional(Type.Literal(true, { description: 'Every active card with marketing consent' })),
    tiers: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { minItems: 1, maxItems: 20, uniqueItems: true })),
    segments: Type.Optional(Type.Array(SegmentCodeSchema, { minItems: 1, maxItems: 6, uniqueItems: true })),
  },
  {
    additionalProperties: false,
    description: '`all`, or `tiers` and/or `segments` (a card must match both when both are given). Only cards with marketing consent are targeted.',
  },
);
export type Audience = Static<typeof AudienceSchema>;

export const CreateCampaignSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    message: MessageSchema,
    audience: AudienceSchema,
    scheduledAt: Type.Optional(DateTimeInput({ description: 'Send automatically from this moment (scheduler tick, every minute)' })),
    bonusPoints: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Points granted with the message (ledger kind campaign_bonus)' })),
    couponDefinitionId: Type.Optional(
      Type.String({ format: 'uuid', description: 'Every recipient also gets a coupon of this definition (src/coupons, docs/coupons.md)' }),
    ),
    controlShare: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 50,
        default: DEFAULT_CONTROL_SHARE,
        description: 'Percent of the audience held back as a control group: never messaged, measured against the recipients (default 10; 0 = none)',
      }),
    ),
    effectWindowDays: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 90, default: DEFAULT_EFFECT_WINDOW_DAYS, description: 'Days after the start over which the effect is measured (default 14)' }),
    ),
  },
  { additionalProperties: false },
);
export type CreateCampaign = Static<typeof CreateCampaignSchema>;

export const CampaignStatusSchema = Type.Union(['draft', 'scheduled', 'sending', 'sent', 'cancelled'].map((s) => Type.Literal(s)));

const ClassMessageSchema = Type.Object({
  classId: Type.String(),
  tier: Type.String(),
  objects: Type.Integer({ description: 'Google objects in the class (all of them in the audience)' }),
  sent: Type.Boolean(),
  notified: Type.Boolean(),
  downgraded: Type.Boolean(),
});

const GroupSchema = Type.Object({
  holders: Type.Integer({ description: 'Cards in the group' }),
  buyers: Type.Integer({ description: 'Of them, cards with a purchase in the window' }),
  conversion: Type.Union([Type.Number(), Type.Null()], { description: 'buyers ÷ holders' }),
  purchases: Type.Integer(),
  purchasesPerHolder: Type.Union([Type.Number(), Type.Null()]),
  revenue: Type.Integer({ description: 'Check amounts of their purchases in the window (not refunded), minor units' }),
  revenuePerHolder: Type.Union([Type.Number(), Type.Null()], { description: 'Minor units' }),
  averageCheck: Type.Union([Type.Number(), Type.Null()], { description: 'revenue ÷ purchases, minor units' }),
});

const DifferenceSchema = Type.Union(
  [
    Type.Object({
      difference: Type.Number({ description: 'Recipients minus control' }),
      low: Type.Number({ description: '95 % confidence interval, lower end' }),
      high: Type.Number({ description: 'Upper end' }),
      pValue: Type.Number(),
      significant: Type.Boolean({ description: 'The interval excludes 0' }),
      method: Type.String(),
    }),
    Type.Null(),
  ],
  { description: 'Null when a group is too small' },
);

export const EffectSchema = Type.Object({
  window: Type.Object({
    start: DateTime,
    end: DateTime,
    days: Type.Integer(),
    complete: Type.Boolean({ description: 'The window is over: the figures are final' }),
  }),
  treated: GroupSchema,
  control: Type.Union([GroupSchema, Type.Null()], { description: 'Null without a control group' }),
  conversion: DifferenceSchema,
  revenuePerHolder: DifferenceSchema,
  purchasesPerHolder: DifferenceSchema,
  averageCheck: Type.Union([Type.Object({ difference: Type.Number() }), Type.Null()], { description: 'Difference only: a ratio of two sums, no interval' }),
  incremental: Type.Union(
    [
      Type.Object({
        buyers: Type.Object({ estimate: Type.Number(), low: Type.Number(), high: Type.Number() }, { description: 'conversion difference × recipients' }),
        revenue: Type.Object({ estimate: Type.Number(), low: Type.Number(), high: Type.Number() }, { description: 'revenue per holder difference × recipients, minor units' }),
      }),
      Type.Null(),
    ],
    { description: 'What the campaign added beyond what the recipients would have done anyway' },
  ),
  reactivated: Type.Union(
    [
      Type.Object({
        treated: Type.Integer({ description: 'Sleeping/Lost recipients who purchased in the window' }),
        control: Type.Integer({ description: 'Sleeping/Lost control cards who purchased in the window' }),
        share: DifferenceSchema,
      }),
      Type.Null(),
    ],
    { description: 'Win-back audiences (segments Sleeping/Lost, or the win-back automation) only' },
  ),
});
export type CampaignEffect = Static<typeof EffectSchema>;

export const CampaignSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  message: MessageSchema,
  audience: Type.Unknown(),
  automation: Nullable(Type.String()),
  bonusPoints: Type.Integer(),
  couponDefinitionId: Type.Optional(Type.String({ description: 'Every recipient gets a coupon of this definition' })),
  status: CampaignStatusSchema,
  scheduledAt: Nullable(DateTime),
  startedAt: Nullable(DateTime),
  finishedAt: Nullable(DateTime),
  cancelledAt: Nullable(DateTime),
  createdAt: DateTime,
  control: Type.Object({
    share: Type.Integer({ description: 'Percent of the audience held back (0-50)' }),
    heldOut: Type.Integer({ description: 'Cards held back when sending started: never messaged' }),
    windowDays: Type.Integer({ description: 'Days after the start over which the effect is measured' }),
  }),
  progress: Type.Object({
    targeted: Type.Integer({ description: 'Recipients (cards in the audience with consent when sending started, less the control group)' }),
    processed: Type.Integer({ description: 'Recipients handled so far (delivered + skipped)' }),
    delivered: Type.Integer({ description: 'Recipients whose card got the message' }),
    skipped: Type.Integer({ description: 'Recipients blocked or without consent by the time their chunk ran' }),
  }),
  delivery: Type.Optional(
    Type.Object({
      apple: Type.Object({
        pushesAccepted: Type.Integer({ description: 'APNs pushes accepted for recipients' }),
        pushesFailed: Type.Integer({ description: 'Pushes refused for good: dead tokens (registrations removed), certificate or topic errors' }),
        pushesPending: Type.Integer({ description: 'Pushes waiting for a retry after a retryable failure (APNs 429/5xx, timeout, reset, connection)' }),
        cardsReached: Type.Integer({ description: 'Recipients with at least one accepted push' }),
        passesFetched: Type.Integer({ description: 'Downloads of the updated pass (devices that fetched it)' }),
      }),
      google: Type.Object({
        objectsUpdated: Type.Integer(),
        notificationsSent: Type.Integer({ description: 'Object messages sent as TEXT_AND_NOTIFY' }),
        notificationsDowngraded: Type.Integer({ description: 'Object messages sent as TEXT: the 3-per-24h limit was reached' }),
        objectsPending: Type.Integer({ description: 'Object updates waiting for a retry after a 429/5xx/network failure' }),
        objectsFailed: Type.Integer({ description: 'Object updates refused for good (a non-retryable 4xx)' }),
        classMessages: Type.Array(ClassMessageSchema),
      }),
      awaitingReports: Type.Integer({ description: 'Recipients whose wallet updates have not reported back yet' }),
    }),
  ),
  effect: Type.Optional(Type.Union([EffectSchema, Type.Null()], { description: 'Recipients against the control group (GET /campaigns/{id}; null before sending starts)' })),
});
export type CampaignDto = Static<typeof CampaignSchema>;

export const SegmentsSchema = Type.Object({
  asOf: DateTime,
  totalCards: Type.Integer({ description: 'Active cards' }),
  thresholds: SegmentThresholdsSchema,
  segments: Type.Array(
    Type.Object({
      code: SegmentCodeSchema,
      name: Type.Object({ ru: Type.String(), en: Type.String() }),
      rule: Type.String({ description: 'The rule, in the order applied (first match wins)' }),
      cards: Type.Integer(),
    }),
  ),
});
