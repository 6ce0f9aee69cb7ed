import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { requireProgramRole } from '../http/auth.js';
import { problemResponses } from '../http/schemas.js';
import { getProgramOr404 } from '../programs/service.js';
import { cardExportCsv } from './export.js';

/** The holder's rights and no lock-in (issue #12): exports, one holder's data, erasure. Program admin key only. */
export const privacyRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { db } = ctx;

  app.get(
    '/exports/cards.csv',
    {
      schema: {
        tags: ['privacy'],
        summary: 'Every card of the program as CSV (UTF-8 with BOM), streamed: holder, balance, tier, consent, wallet state, card page',
        description: 'Program admin key. Columns and formats: docs/privacy.md. Erased cards are listed with their personal fields empty.',
        querystring: Type.Object({}, { additionalProperties: false }),
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'text/csv; charset=utf-8, money in major units' }), ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, ['admin']);
      const program = await getProgramOr404(db, programId);
      const stream = Readable.from(cardExportCsv(db, program, { publicUrl: ctx.config.PUBLIC_URL, passTypeIdentifier: ctx.appleIdentity.passTypeIdentifier }));
      return reply
        .type('text/csv; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="${program.slug}-cards-${ctx.clock().toISOString().slice(0, 10)}.csv"`)
        // The 200 schema documents the body for OpenAPI; the body itself is the stream (never serialized).
        .send(stream as unknown as string);
    },
  );
};
