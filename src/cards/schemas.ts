import { Type, type Static } from '@sinclair/typebox';
import { CalendarDate } from '../http/schemas.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

export const CardSchema = Type.Object({
  id: Type.String(),
  programId: Type.String(),
  number: Type.String({ description: 'Shown on the card and encoded in its barcode' }),
  holder: Type.Object({
    name: Type.String(),
    phone: Type.String({ description: 'E.164; masked for keys that may not see personal data' }),
    email: Nullable(Type.String()),
    birthday: Nullable(Type.String({ format: 'date' })),
  }),
  consent: Type.Object({ marketing: Type.Boolean(), at: Nullable(Type.String()) }),
  tier: Type.Object({ code: Type.String(), name: Type.Object({ ru: Type.String(), en: Type.String() }) }),
  balance: Type.Integer({ description: 'Spendable points: always the sum of the card\'s ledger entries' }),
  pendingPoints: Type.Integer({
    description:
      'Welcome and referral bonuses of a self-service card that are shown but not spendable yet: released into the balance when the phone ' +
      'answers a one-time code or when the card\'s first purchase at the till completes (spendable from the next purchase on). 0 for staff-issued cards.',
  }),
  verification: Type.Object({
    channel: Type.Union([Type.Literal('staff'), Type.Literal('self_service')], { description: 'Who enrolled the card: staff (API key, cabinet) or the public join page' }),
    verifiedAt: Nullable(Type.String({ description: 'When the holder became known to be real; null = an unverified self-service card' })),
    via: Nullable(Type.String({ description: 'staff, otp (one-time code to the phone), purchase (first purchase at the till) or legacy' })),
  }),
  lifetimeSpend: Type.Integer({ description: 'Minor units' }),
  mechanic: Type.Union([Type.Literal('points'), Type.Literal('discount'), Type.Literal('stamps')], { description: 'The program\'s mechanic' }),
  discountPercent: Type.Union([Type.Number(), Type.Null()], { description: 'Mechanic "discount": the card\'s current percent; else null' }),
  nextDiscount: Type.Union([Type.Object({ percent: Type.Number(), spendToGo: Type.Integer({ description: 'Minor units' }) }), Type.Null()], {
    description: 'Mechanic "discount": the next level and the spend still needed to reach it; null at the top or for other mechanics',
  }),
  stamps: Type.Union([Type.Object({ count: Type.Integer(), perReward: Type.Integer() }), Type.Null()], {
    description: 'Mechanic "stamps": stamps collected towards the next reward; else null',
  }),
  referralCode: Type.String(),
  referralUrl: Type.String(),
  referredBy: Nullable(Type.String()),
  staffId: Nullable(Type.String()),
  source: Nullable(Type.String()),
  externalId: Nullable(Type.String()),
  externalNumber: Nullable(Type.String({ description: 'The plastic card number from an import: the till finds the card by it too' })),
  status: Type.String(),
  wallet: Type.Object({ appleDevices: Type.Integer(), googleSaved: Type.Boolean() }),
  cardToken: Type.String({
    description: 'The card page token: /c/{cardToken} and /c/{cardToken}/card.pkpass. Whoever has it can open the card: hand it only to the holder',
  }),
  installUrl: Type.String({ description: 'Device-aware card page (/c/{cardToken}): the link to send the holder' }),
  applePassUrl: Type.String({ description: 'The Apple Wallet pass (.pkpass) of the card' }),
  googleSaveUrl: Nullable(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export type CardDto = Static<typeof CardSchema>;

export const IssueCardSchema = Type.Object(
  {
    holder: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 200 }),
        phone: Type.String({ minLength: 5, maxLength: 32, description: 'Any common format; stored as E.164' }),
        email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
        birthday: Type.Optional(CalendarDate()),
      },
      { additionalProperties: false },
    ),
    consent: Type.Optional(Type.Boolean({ description: 'Marketing consent given by the holder' })),
    referralCode: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    staffId: Type.Optional(Type.String({ format: 'uuid' })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    externalId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type IssueCard = Static<typeof IssueCardSchema>;

export const AdjustmentSchema = Type.Object(
  {
    points: Type.Integer({ minimum: -1_000_000_000, maximum: 1_000_000_000, description: 'Non-zero; negative removes points' }),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);
export const AdjustmentResultSchema = Type.Object({
  cardId: Type.String(),
  points: Type.Integer(),
  balance: Type.Integer(),
});
