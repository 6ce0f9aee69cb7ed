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
export const IdParams = (name: string) => Type.Object({ [name]: Uuid });

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Retries with the same key and body replay the first response' })),
});
