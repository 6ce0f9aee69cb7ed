import { Type, type TSchema } from '@sinclair/typebox';

export const Localized = Type.Object(
  { ru: Type.String({ maxLength: 2000 }), en: Type.String({ maxLength: 2000 }) },
  { additionalProperties: false, $id: undefined },
);

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    requestId: Type.String(),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

/** The problem responses every authenticated route can give, for the OpenAPI document. */
export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries([400, 401, 403, 404, ...statuses].map((s) => [s, ProblemSchema])) as Record<number, TSchema>;

export const Uuid = Type.String({ format: 'uuid' });

/**
 * A calendar day, YYYY-MM-DD, in the years 1900–2999. `format: 'date'` alone let `0000-01-01`
 * through, which PostgreSQL cannot store (year 0 does not exist there): a 500 (issue #11). Every
 * date a request carries is bounded like this.
 */
export const CalendarDate = (options: { description?: string } = {}) =>
  Type.String({ format: 'date', pattern: '^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$', maxLength: 10, ...options });

/** An RFC 3339 date-time in the years 1970–2999 (bounded like CalendarDate). */
export const DateTimeInput = (options: { description?: string } = {}) =>
  Type.String({ format: 'date-time', pattern: '^(19[7-9][0-9]|2[0-9]{3})-', maxLength: 40, ...options });

/** Ids that are bigint sequences in the database: a JavaScript-safe integer (1e20 was a 500). */
export const SequenceId = (options: { description?: string } = {}) => Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, ...options });
export const IdParams = (name: string) => Type.Object({ [name]: Uuid });

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Retries with the same key and body replay the first response' })),
});
