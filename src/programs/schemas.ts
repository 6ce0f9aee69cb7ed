import { Type, type Static } from '@sinclair/typebox';
import { LoyaltyRulesSchema } from '../loyalty/rules.js';
import { Localized } from '../http/schemas.js';

const Color = Type.String({ pattern: '^#[0-9a-fA-F]{6}$', description: '#rrggbb' });

export const DesignSchema = Type.Object(
  {
    backgroundColor: Color,
    foregroundColor: Color,
    labelColor: Color,
    /** Text next to the logo on the pass. */
    logoText: Type.Optional(Localized),
    /** Accessibility description of the pass (Apple: required `description`). */
    description: Type.Optional(Localized),
    showPlasticNumber: Type.Optional(
      Type.Boolean({
        description: 'Imported cards show (and encode in the barcode) their plastic card number instead of the wallet number, so holders and tills see the number they know',
      }),
    ),
  },
  { additionalProperties: false },
);
export type Design = Static<typeof DesignSchema>;

export const TextsSchema = Type.Object(
  {
    contacts: Type.Optional(Localized),
    terms: Type.Optional(Localized),
    promo: Type.Optional(Localized),
    referral: Type.Optional(Localized),
    /** Marketing-consent text on the join page (152-FZ / GDPR); a default text is used when absent. */
    consent: Type.Optional(Localized),
  },
  { additionalProperties: false },
);
export type Texts = Static<typeof TextsSchema>;

export const LocationSchema = Type.Object(
  {
    latitude: Type.Number({ minimum: -90, maximum: 90 }),
    longitude: Type.Number({ minimum: -180, maximum: 180 }),
    /** The store's address as people write it (the cabinet requires it; not on the pass). */
    address: Type.Optional(Type.String({ maxLength: 200, description: 'Street address of the store, shown in the cabinet with a map link' })),
    relevantText: Type.Optional(Localized),
  },
  { additionalProperties: false },
);

export const AppleSettingsSchema = Type.Object(
  {
    organizationName: Type.String({ minLength: 1, maxLength: 100 }),
  },
  { additionalProperties: false },
);

export const ProgramSchema = Type.Object({
  id: Type.String(),
  slug: Type.String(),
  name: Type.String(),
  defaultLanguage: Type.Union([Type.Literal('ru'), Type.Literal('en')]),
  currency: Type.String(),
  timeZone: Type.String(),
  design: DesignSchema,
  apple: Type.Object({
    organizationName: Type.String(),
    passTypeIdentifier: Type.String(),
    teamIdentifier: Type.String(),
  }),
  texts: TextsSchema,
  locations: Type.Array(LocationSchema),
  rules: LoyaltyRulesSchema,
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type ProgramDto = Static<typeof ProgramSchema>;

const Slug = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' });

export const CreateProgramSchema = Type.Object(
  {
    slug: Slug,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    defaultLanguage: Type.Optional(Type.Union([Type.Literal('ru'), Type.Literal('en')])),
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$' })),
    timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    design: Type.Optional(DesignSchema),
    apple: Type.Optional(AppleSettingsSchema),
    texts: Type.Optional(TextsSchema),
    locations: Type.Optional(Type.Array(LocationSchema, { maxItems: 10, description: 'Apple shows at most 10' })),
    rules: Type.Optional(Type.Unknown({ description: 'Loyalty rules; defaults apply when omitted' })),
  },
  { additionalProperties: false },
);
export type CreateProgram = Static<typeof CreateProgramSchema>;

export const UpdateProgramSchema = Type.Partial(Type.Omit(CreateProgramSchema, ['slug']), { additionalProperties: false });
export type UpdateProgram = Static<typeof UpdateProgramSchema>;

export const CreateKeySchema = Type.Object(
  {
    role: Type.Union([Type.Literal('admin'), Type.Literal('marketer'), Type.Literal('pos')]),
    name: Type.String({ minLength: 1, maxLength: 100 }),
  },
  { additionalProperties: false },
);
export const KeySchema = Type.Object({
  id: Type.String(),
  role: Type.String(),
  name: Type.String(),
  createdAt: Type.String(),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});
