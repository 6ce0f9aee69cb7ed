import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { findCardInProgram } from '../cards/repository.js';
import { requireProgramRole } from '../http/auth.js';
import { cardErased, notFound } from '../http/errors.js';
import { parseIdempotencyKey, runIdempotent } from '../http/idempotency.js';
import { IdempotencyHeaders, problemResponses, Uuid } from '../http/schemas.js';
import { findDefinition, listCardCoupons, listDefinitions } from './repository.js';
import {
  CardCouponSchema,
  CouponDefinitionSchema,
  CreateCouponDefinitionSchema,
  IssueCouponSchema,
  UpdateCouponDefinitionSchema,
} from './schemas.js';
import { cardCouponDto, createDefinition, definitionDto, issueCoupon, updateDefinition } from './service.js';

/** Who defines coupons: the program's admin and marketer keys (a marketer runs the campaigns that hand them out). */
const DEFINERS = ['admin', 'marketer'] as const;

export const couponRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { db } = ctx;

  app.post(
    '/coupons/definitions',
    {
      schema: {
        tags: ['coupons'],
        summary: 'Define a coupon: percent or amount off, or a free item; minimum check, categories, validity',
        description:
          'The definition is validated as a whole (422 coupon_definition_invalid): the value field of its kind and no other, exactly one of ' +
          'validDays and validUntil, categories only for percent and amount coupons.',
        body: CreateCouponDefinitionSchema,
        response: { 201: CouponDefinitionSchema, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, [...DEFINERS]);
      const row = await createDefinition(db, programId, request.body);
      return reply.status(201).send(definitionDto(row));
    },
  );

  app.get(
    '/coupons/definitions',
    {
      schema: {
        tags: ['coupons'],
        summary: 'Coupon definitions of the program, newest first',
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })) }),
        response: { 200: Type.Array(CouponDefinitionSchema), ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...DEFINERS]);
      return (await listDefinitions(db, programId, request.query.limit ?? 100)).map(definitionDto);
    },
  );

  app.get(
    '/coupons/definitions/:definitionId',
    {
      schema: {
        tags: ['coupons'],
        summary: 'One coupon definition',
        params: Type.Object({ definitionId: Uuid }),
        response: { 200: CouponDefinitionSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...DEFINERS]);
      const row = await findDefinition(db, programId, request.params.definitionId);
      if (!row) throw notFound('coupon_definition', 'Coupon definition not found');
      return definitionDto(row);
    },
  );

  app.patch(
    '/coupons/definitions/:definitionId',
    {
      schema: {
        tags: ['coupons'],
        summary: 'Change a coupon definition (or switch it off: active false)',
        description: 'Issued coupons keep their expiry; their other terms are the definition as it is when they are redeemed.',
        params: Type.Object({ definitionId: Uuid }),
        body: UpdateCouponDefinitionSchema,
        response: { 200: CouponDefinitionSchema, ...problemResponses(422) },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...DEFINERS]);
      return definitionDto(await updateDefinition(db, programId, request.params.definitionId, request.body));
    },
  );

  app.post(
    '/cards/:cardId/coupons',
    {
      schema: {
        tags: ['coupons'],
        summary: 'Issue a coupon to a card',
        description:
          'The pass shows it on its back with a lock-screen message, the Google object lists it. ' +
          '422 coupon_definition_inactive / coupon_definition_expired / card_blocked; 410 for an erased card. ' +
          'Send an Idempotency-Key: a retry with the same key and body replays the first response (no second coupon).',
        params: Type.Object({ cardId: Uuid }),
        headers: IdempotencyHeaders,
        body: IssueCouponSchema,
        response: { 201: CardCouponSchema, ...problemResponses(410, 422) },
      },
    },
    async (request, reply) => {
      const { programId, actor } = requireProgramRole(request, ['admin']);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const { cardId } = request.params;
      const result = await runIdempotent(db, { scope: programId, key, operation: `coupon:${cardId}`, body: request.body }, async (trx) => ({
        status: 201,
        body: await issueCoupon(trx, ctx.cardChanges, {
          programId,
          cardId,
          definitionId: request.body.definitionId,
          source: 'admin',
          actor,
          now: ctx.clock(),
        }),
      }));
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(result.body);
    },
  );

  app.get(
    '/cards/:cardId/coupons',
    {
      schema: {
        tags: ['coupons'],
        summary: "A card's coupons, newest first (all statuses)",
        params: Type.Object({ cardId: Uuid }),
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })) }),
        response: { 200: Type.Array(CardCouponSchema), ...problemResponses(410) },
      },
    },
    async (request) => {
      // The till needs them (which code to scan), like the card's history.
      const { programId } = requireProgramRole(request, ['admin', 'pos']);
      const card = await findCardInProgram(db, programId, request.params.cardId);
      if (!card) throw notFound('card');
      if (card.status === 'erased') throw cardErased();
      const now = ctx.clock();
      return (await listCardCoupons(db, programId, card.id, request.query.limit ?? 100)).map((row) => cardCouponDto(row, now));
    },
  );
};
