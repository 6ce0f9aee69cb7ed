import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { AppContext } from '../app-context.js';
import { requireProgramRole } from '../http/auth.js';
import { AppError, cardErased, notFound } from '../http/errors.js';
import { parseIdempotencyKey, runIdempotent } from '../http/idempotency.js';
import { IdempotencyHeaders, problemResponses, Uuid } from '../http/schemas.js';
import { findCardInProgram } from '../cards/repository.js';
import { quoteForCard, recordPurchase, refundPurchase } from './purchases.js';
import { segmentOfCard } from '../campaigns/segments.js';
import { HistorySchema, PurchaseRequestSchema, PurchaseResultSchema, QuoteResultSchema, RefundResultSchema } from './schemas.js';

/** A check needs an amount or items (the schema cannot say "one of", so it is checked here, as a 400 like the schema's). */
function requireAmountOrItems(body: { amount?: number; items?: unknown[] }) {
  if (body.amount === undefined && (body.items === undefined || body.items.length === 0)) {
    throw new AppError(400, 'validation_failed', 'body must have amount or items');
  }
}

export const loyaltyRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { db } = ctx;

  app.post(
    '/cards/:cardId/quote',
    {
      schema: {
        tags: ['pos'],
        summary: 'Quote a check before closing it: discount, points redeemable, payable, points/stamps it would earn; writes nothing',
        description:
          'Takes the purchase body (amount or items, redeemPoints, couponCode). A purchase with the same body on the unchanged card answers the same numbers. ' +
          'Lists the card\'s coupons this check can use (coupons), each with what the till would then charge. ' +
          'A redemption the rules refuse answers the same 422 as the purchase would.',
        params: Type.Object({ cardId: Uuid }),
        body: PurchaseRequestSchema,
        response: { 200: QuoteResultSchema, ...problemResponses(410, 422) },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, ['admin', 'pos']);
      requireAmountOrItems(request.body);
      return quoteForCard(db, {
        programId,
        cardId: request.params.cardId,
        amount: request.body.amount,
        items: request.body.items,
        redeemPoints: request.body.redeemPoints ?? 0,
        couponCode: request.body.couponCode,
        now: ctx.clock(),
      });
    },
  );

  app.post(
    '/cards/:cardId/purchases',
    {
      schema: {
        tags: ['pos'],
        summary: 'Record a purchase: accrue points, optionally pay part of the check with points',
        description:
          'Redemption above the balance (insufficient_points) or above the cap (redemption_cap_exceeded) answers 422 and changes nothing. ' +
          'Send an Idempotency-Key: a retry with the same key and body replays the first response. ' +
          'With couponCode, the coupon comes off the eligible part of the check first, then the mechanic\'s discount and points (`payable` is what is left to pay); ' +
          'a used coupon answers 409 coupon_already_used, an expired one or one whose terms the check does not meet 422 (docs/coupons.md).',
        params: Type.Object({ cardId: Uuid }),
        headers: IdempotencyHeaders,
        body: PurchaseRequestSchema,
        response: { 201: PurchaseResultSchema, ...problemResponses(409, 410, 422) },
      },
    },
    async (request, reply) => {
      const { programId, actor } = requireProgramRole(request, ['admin', 'pos']);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const { cardId } = request.params;
      requireAmountOrItems(request.body);
      // declaresWrites: recordPurchase takes the savepoint only where a refusal can follow a write, and
      // answers the key in its own write statement (issue #14).
      const options = { scope: programId, key, operation: `purchase:${cardId}`, body: request.body, declaresWrites: true };
      const result = await runIdempotent(db, options, async (trx, idempotent) => ({
        status: 201,
        body: await recordPurchase(
          trx,
          ctx.cardChanges,
          {
            programId,
            cardId,
            amount: request.body.amount,
            items: request.body.items,
            redeemPoints: request.body.redeemPoints ?? 0,
            now: ctx.clock(),
            storeId: request.body.storeId,
            receiptId: request.body.receiptId,
            couponCode: request.body.couponCode,
            actor,
            idempotencyKey: key,
          },
          { work: idempotent, status: 201 },
        ),
      }));
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(result.body);
    },
  );

  app.post(
    '/purchases/:purchaseId/refund',
    {
      schema: {
        tags: ['pos'],
        summary: 'Refund a purchase: give back redeemed points, take back accrued points',
        params: Type.Object({ purchaseId: Uuid }),
        headers: IdempotencyHeaders,
        response: { 200: RefundResultSchema, ...problemResponses(409, 410, 422) },
      },
    },
    async (request, reply) => {
      const { programId, actor } = requireProgramRole(request, ['admin', 'pos']);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const { purchaseId } = request.params;
      const result = await runIdempotent(db, { scope: programId, key, operation: `refund:${purchaseId}`, body: null }, async (trx) => ({
        status: 200,
        body: await refundPurchase(trx, ctx.cardChanges, { programId, purchaseId, actor, idempotencyKey: key, now: ctx.clock() }),
      }));
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(200).send(result.body);
    },
  );

  app.get(
    '/cards/:cardId/history',
    {
      schema: {
        tags: ['pos'],
        summary: 'Purchases, ledger and statistics of a card',
        params: Type.Object({ cardId: Uuid }),
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })) }),
        response: { 200: HistorySchema, ...problemResponses(410) },
      },
    },
    async (request) => {
      // Spec: card history is a Cards and POS endpoint (program `pos` or `admin` key); a marketer
      // key gets aggregates through /stats and /segments, not one holder's purchases and ledger.
      const { programId } = requireProgramRole(request, ['admin', 'pos']);
      const card = await findCardInProgram(db, programId, request.params.cardId);
      if (!card) throw notFound('card');
      if (card.status === 'erased') throw cardErased();
      const limit = request.query.limit ?? 50;
      const [purchases, ledger, stats, ledgerSum, pending] = await Promise.all([
        db.selectFrom('purchase').selectAll().where('card_id', '=', card.id).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute(),
        db.selectFrom('ledger_entry').selectAll().where('card_id', '=', card.id).orderBy('id', 'desc').limit(limit).execute(),
        db
          .selectFrom('purchase')
          .select([
            sql<number>`count(*)::int`.as('visits'),
            sql<number>`coalesce(sum(amount), 0)::bigint`.as('total'),
            sql<Date | null>`min(created_at)`.as('first'),
            sql<Date | null>`max(created_at)`.as('last'),
          ])
          .where('card_id', '=', card.id)
          .where('status', '=', 'completed')
          .executeTakeFirstOrThrow(),
        db.selectFrom('ledger_entry').select(sql<number>`coalesce(sum(points), 0)::bigint`.as('sum')).where('card_id', '=', card.id).executeTakeFirstOrThrow(),
        db.selectFrom('pending_bonus').select(['kind', 'points', 'reason', 'created_at']).where('card_id', '=', card.id).where('released_at', 'is', null).orderBy('id').execute(),
      ]);
      const visits = Number(stats.visits);
      const total = Number(stats.total);
      return {
        cardId: card.id,
        balance: card.balance,
        ledgerSum: Number(ledgerSum.sum),
        pendingPoints: card.pending_points,
        pending: pending.map((p) => ({ kind: p.kind, points: p.points, reason: p.reason, createdAt: p.created_at.toISOString() })),
        purchases: purchases.map((p) => ({
          id: p.id,
          amount: p.amount,
          redeemed: p.redeemed,
          accrued: p.accrued,
          payable: p.payable,
          discount: p.discount,
          stampsAdded: p.stamps_added,
          rewardsEarned: p.rewards_earned,
          items: (p.items as Record<string, unknown>[] | null) ?? null,
          storeId: p.store_id,
          receiptId: p.receipt_id,
          status: p.status,
          createdAt: p.created_at.toISOString(),
          refundedAt: p.refunded_at?.toISOString() ?? null,
        })),
        ledger: ledger.map((e) => ({
          id: Number(e.id),
          kind: e.kind,
          points: e.points,
          purchaseId: e.purchase_id,
          reason: e.reason,
          actor: e.actor,
          createdAt: e.created_at.toISOString(),
        })),
        stats: {
          visits,
          totalSpend: total,
          averageCheck: visits > 0 ? Math.round(total / visits) : 0,
          firstPurchaseAt: stats.first ? new Date(stats.first).toISOString() : null,
          lastPurchaseAt: stats.last ? new Date(stats.last).toISOString() : null,
          segment: await segmentOfCard(db, programId, card.id, ctx.clock()),
        },
      };
    },
  );
};
