import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import type { CardRow, ProgramRow } from '../db/schema.js';
import { requireProgramRole } from '../http/auth.js';
import { AppError, cardErased, notFound } from '../http/errors.js';
import { parseIdempotencyKey, runIdempotent } from '../http/idempotency.js';
import { IdempotencyHeaders, problemResponses, Uuid } from '../http/schemas.js';
import { issueCard, normalizePhone } from '../enrollment/service.js';
import { normalizeScannedValue } from '../loyalty/card-number.js';
import { postToLedger } from '../loyalty/ledger.js';
import { getProgramOr404 } from '../programs/service.js';
import { cachedProgramOr404 } from '../programs/cache.js';
import { cardDto } from './dto.js';
import { appleDeviceCounts, findCardByBarcode, googleSavedCards, findCardInProgram, lockCardInProgram, searchCards } from './repository.js';
import { AdjustmentResultSchema, AdjustmentSchema, CardSchema, IssueCardSchema } from './schemas.js';

const CardParams = Type.Object({ cardId: Uuid });

export const cardRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { db } = ctx;

  /** `justIssued`: cards created by this request, which no wallet can hold yet (no look-ups: issue #14). */
  async function present(cards: CardRow[], program: ProgramRow, role: string, justIssued = false) {
    const devices = justIssued ? new Map<string, number>() : await appleDeviceCounts(db, cards.map((c) => c.apple_serial));
    const googleSaved = ctx.links.googleEnabled && !justIssued ? await googleSavedCards(db, cards.map((c) => c.id)) : new Set<string>();
    return cards.map((card) =>
      cardDto(card, program, ctx.links, {
        revealPersonalData: role === 'admin',
        appleDevices: devices.get(card.apple_serial) ?? 0,
        googleSaved: googleSaved.has(card.id),
      }),
    );
  }

  app.post(
    '/cards',
    {
      schema: {
        tags: ['cards'],
        summary: 'Issue a card (an existing phone returns the existing card with 200 and no second welcome bonus)',
        body: IssueCardSchema,
        response: { 200: CardSchema, 201: CardSchema, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const { programId, role, actor } = requireProgramRole(request, ['admin', 'pos']);
      const { card, created, program } = await db.transaction().execute(async (trx) => {
        // From the cache (kept current by program_changed notifications): issue #14.
        const program = await cachedProgramOr404(trx, programId);
        return { ...(await issueCard(trx, ctx.cardChanges, program, request.body, actor)), program };
      });
      const [dto] = await present([card], program, role, created);
      return reply.status(created ? 201 : 200).send(dto);
    },
  );

  app.get(
    '/cards',
    {
      schema: {
        tags: ['cards'],
        summary: 'Cashier search by card number, phone or name prefix',
        querystring: Type.Object({
          query: Type.String({ minLength: 2, maxLength: 100 }),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 20 })),
        }),
        response: { 200: Type.Object({ items: Type.Array(CardSchema) }), ...problemResponses() },
      },
    },
    async (request) => {
      const { programId, role } = requireProgramRole(request, ['admin', 'pos']);
      const program = await cachedProgramOr404(db, programId);
      const query = request.query.query.trim();
      const digits = normalizeScannedValue(query);
      let phone: string | undefined;
      try {
        phone = /\d{5,}/.test(query.replace(/\D/g, '')) ? normalizePhone(query, program.currency) : undefined;
      } catch {
        phone = undefined;
      }
      const rows = await searchCards(
        db,
        programId,
        { number: /^\d+$/.test(digits) ? digits : undefined, externalNumber: /^[0-9A-Za-z]{1,64}$/.test(digits) ? digits : undefined, phone, namePrefix: query },
        request.query.limit ?? 20,
      );
      return { items: await present(rows, program, role) };
    },
  );

  app.get(
    '/cards/by-barcode/:value',
    {
      schema: {
        tags: ['cards'],
        summary: 'Find the card whose barcode the scanner read: the wallet card number or an imported plastic card number',
        params: Type.Object({ value: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: CardSchema, ...problemResponses(410) },
      },
    },
    async (request) => {
      const { programId, role } = requireProgramRole(request, ['admin', 'pos']);
      const program = await getProgramOr404(db, programId);
      const card = await findCardByBarcode(db, programId, normalizeScannedValue(request.params.value));
      if (!card) throw notFound('card');
      if (card.status === 'erased') throw cardErased();
      return (await present([card], program, role))[0];
    },
  );

  app.get(
    '/cards/:cardId',
    { schema: { tags: ['cards'], params: CardParams, response: { 200: CardSchema, ...problemResponses(410) } } },
    async (request) => {
      const { programId, role } = requireProgramRole(request, ['admin', 'pos']);
      const program = await getProgramOr404(db, programId);
      const card = await findCardInProgram(db, programId, request.params.cardId);
      if (!card) throw notFound('card');
      if (card.status === 'erased') throw cardErased();
      return (await present([card], program, role))[0];
    },
  );

  app.post(
    '/cards/:cardId/adjustments',
    {
      schema: {
        tags: ['cards'],
        summary: 'Add or remove points by hand (program admin key; Idempotency-Key replays)',
        params: CardParams,
        headers: IdempotencyHeaders,
        body: AdjustmentSchema,
        response: { 201: AdjustmentResultSchema, ...problemResponses(410, 422) },
      },
    },
    async (request, reply) => {
      const { programId, actor } = requireProgramRole(request, ['admin']);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const { cardId } = request.params;
      if (request.body.points === 0) throw new AppError(400, 'validation_failed', 'points must not be 0');
      const result = await runIdempotent(
        db,
        { scope: programId, key, operation: `adjust:${cardId}`, body: request.body },
        async (trx) => {
          const card = await lockCardInProgram(trx, programId, cardId);
          if (!card) throw notFound('card');
          if (card.status === 'erased') throw cardErased();
          if (card.balance + request.body.points < 0) {
            throw new AppError(422, 'insufficient_points', `The card has ${card.balance} points; cannot remove ${-request.body.points}`, {
              balance: card.balance,
            });
          }
          const after = await postToLedger(trx, ctx.cardChanges, [
            { programId, cardId, kind: 'adjustment', points: request.body.points, actor, reason: request.body.reason, idempotencyKey: key },
          ]);
          return { status: 201, body: { cardId, points: request.body.points, balance: after.balance } };
        },
      );
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(result.status as 201).send(result.body);
    },
  );
};
