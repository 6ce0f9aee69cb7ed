import { Type, type Static } from '@sinclair/typebox';
import { SequenceId } from '../http/schemas.js';
import { WEBHOOK_EVENT_TYPES } from './events.js';

const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const EventTypeSchema = Type.Union(
  WEBHOOK_EVENT_TYPES.map((type) => Type.Literal(type)),
  { description: 'A webhook event type' },
);

const Events = Type.Array(EventTypeSchema, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, uniqueItems: true });
const Url = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'https:// URL that receives the POSTs (http://127.0.0.1 or localhost only in development and test)',
});

export const CreateWebhookSchema = Type.Object({ url: Url, events: Events }, { additionalProperties: false });
export type CreateWebhook = Static<typeof CreateWebhookSchema>;

export const UpdateWebhookSchema = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Events),
    enabled: Type.Optional(Type.Boolean({ description: 'true re-enables an endpoint disabled after repeated failure' })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateWebhook = Static<typeof UpdateWebhookSchema>;

export const WebhookSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    url: Type.String(),
    events: Type.Array(EventTypeSchema),
    enabled: Type.Boolean(),
    disabledAt: NullableTimestamp,
    disabledReason: Type.Union([Type.String(), Type.Null()]),
    failingSince: Type.Union([Timestamp, Type.Null()], { description: 'First failed attempt since the last successful delivery' }),
    consecutiveFailures: Type.Integer({ description: 'Failed attempts since the last successful delivery' }),
    lastSuccessAt: NullableTimestamp,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);
export type WebhookDto = Static<typeof WebhookSchema>;

export const WebhookWithSecretSchema = Type.Object(
  {
    ...WebhookSchema.properties,
    secret: Type.String({ description: 'The signing secret. Shown only in this response: store it now.' }),
  },
  { additionalProperties: false },
);

export const DeliverySchema = Type.Object(
  {
    id: Type.Integer(),
    eventId: Type.String({ format: 'uuid' }),
    type: Type.String(),
    status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
    attempts: Type.Integer(),
    lastStatusCode: Type.Union([Type.Integer(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
    lastAttemptAt: NullableTimestamp,
    nextAttemptAt: NullableTimestamp,
    deliveredAt: NullableTimestamp,
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

export const DeliveriesQuerySchema = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    before: Type.Optional(SequenceId({ description: 'Only deliveries with a smaller id (the previous page’s nextBefore)' })),
  },
  { additionalProperties: false },
);
export type DeliveriesQuery = Static<typeof DeliveriesQuerySchema>;

export const DeliveriesSchema = Type.Object({
  items: Type.Array(DeliverySchema),
  nextBefore: Type.Union([Type.Integer(), Type.Null()], { description: 'Pass as `before` for the next (older) page; null at the end' }),
});
export type DeliveriesDto = Static<typeof DeliveriesSchema>;
