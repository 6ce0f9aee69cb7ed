import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { AppContext } from '../app-context.js';
import { segmentWeeks } from '../campaigns/segment-flow.js';
import { SEGMENT_CODES } from '../campaigns/segments.js';
import { requireProgramRole } from '../http/auth.js';
import { AppError, conflict } from '../http/errors.js';
import { parseIdempotencyKey, runIdempotent } from '../http/idempotency.js';
import { IdempotencyHeaders, problemResponses } from '../http/schemas.js';
import { getProgramOr404 } from '../programs/service.js';
import { economicsCsv } from './csv.js';
import { economicsPeriod } from './period.js';
import { economicsReport } from './report.js';
import { CheckRequestSchema, CheckSchema, EconomicsCsvQuerySchema, EconomicsQuerySchema, EconomicsSchema, type CsvTable } from './schemas.js';

const MARKETING = ['admin', 'marketer'] as const;
const SegmentName = Type.Union([...SEGMENT_CODES, 'new'].map((s) => Type.Literal(s)));

const SegmentFlowSchema = Type.Object({
  weeks: Type.Array(
    Type.Object({
      weekStart: Type.String({ format: 'date', description: 'Monday, program time zone' }),
      weekEnd: Type.String({ format: 'date', description: 'Sunday' }),
      flows: Type.Array(Type.Object({ from: SegmentName, to: SegmentName, cards: Type.Integer() }), {
        description: 'Cards by segment at the week\'s start (`new`: enrolled during the week) and at its end; a card that stayed counts from a segment to itself',
      }),
    }),
  ),
});

/** Program economics (marketer or admin), non-member checks (pos or admin), segment movement. */
export const economicsRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { db } = ctx;

  async function report(programId: string, query: { from?: string; to?: string; groupBy?: string }) {
    const program = await getProgramOr404(db, programId);
    const period = economicsPeriod(query, ctx.clock(), program.time_zone);
    if ('error' in period) throw new AppError(400, 'invalid_period', period.error);
    return economicsReport(db, program, period, ctx.clock());
  }

  app.get(
    '/economics',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Program economics: points liability, points issued/redeemed/expired, members\' revenue, retention cohorts, CLTV, program cost',
        description: 'Every figure and formula is described in docs/economics.md. Days, weeks and months are those of the program\'s time zone.',
        querystring: EconomicsQuerySchema,
        response: { 200: EconomicsSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      return report(programId, request.query);
    },
  );

  app.get(
    '/economics.csv',
    {
      schema: {
        tags: ['marketing'],
        summary: 'One table of the economics report as CSV (periods, summary, cohorts, cltv-tiers, program-cost)',
        querystring: EconomicsCsvQuerySchema,
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'text/csv; money in major units' }), ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      const { table = 'periods', ...query } = request.query;
      const result = await report(programId, query);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="economics-${table}-${result.from}-${result.to}.csv"`)
        .send(economicsCsv(result, table as CsvTable));
    },
  );

  app.post(
    '/checks',
    {
      schema: {
        tags: ['pos'],
        summary: 'Report a check of a customer without a card (optional): the members\' share of revenue in /economics',
        description:
          'Only the amount (and, optionally, the store and receipt) is stored: no personal data. A receipt already recorded, as a check or as a ' +
          'member\'s purchase, answers 409 receipt_already_recorded. Send an Idempotency-Key: a retry replays the first answer.',
        headers: IdempotencyHeaders,
        body: CheckRequestSchema,
        response: { 201: CheckSchema, ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, ['admin', 'pos']);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const { amount, storeId, receiptId } = request.body;
      const result = await runIdempotent(db, { scope: programId, key, operation: 'check', body: request.body }, async (trx) => {
        if (receiptId) {
          const seen = await sql<{ id: string }>`
            SELECT id FROM purchase WHERE program_id = ${programId} AND receipt_id = ${receiptId}
            UNION ALL SELECT id FROM anonymous_check WHERE program_id = ${programId} AND receipt_id = ${receiptId}
            LIMIT 1`.execute(trx);
          if (seen.rows.length > 0) throw conflict('receipt_already_recorded', `Receipt ${receiptId} was already recorded`);
        }
        let row;
        try {
          row = await trx
            .insertInto('anonymous_check')
            .values({ program_id: programId, amount, store_id: storeId ?? null, receipt_id: receiptId ?? null })
            .returning(['id', 'amount', 'store_id', 'receipt_id', 'created_at'])
            .executeTakeFirstOrThrow();
        } catch (error) {
          // The same receipt sent twice at once: the unique index decides, and the loser is told so.
          if (/anonymous_check_receipt_idx/.test(String((error as { constraint?: string }).constraint ?? error))) {
            throw conflict('receipt_already_recorded', `Receipt ${receiptId} was already recorded`);
          }
          throw error;
        }
        return {
          status: 201,
          body: { checkId: row.id, amount: Number(row.amount), storeId: row.store_id, receiptId: row.receipt_id, createdAt: new Date(row.created_at).toISOString() },
        };
      });
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(result.body);
    },
  );

  app.get(
    '/segments/flow',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Segment movement: how many cards moved between RFM segments each week (closed weeks, newest first)',
        querystring: Type.Object({ weeks: Type.Optional(Type.Integer({ minimum: 1, maximum: 104, default: 12 })) }, { additionalProperties: false }),
        response: { 200: SegmentFlowSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      return { weeks: await segmentWeeks(db, programId, request.query.weeks ?? 12) };
    },
  );
};
