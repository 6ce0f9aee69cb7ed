import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { findCardByPublicToken } from '../cards/repository.js';
import { cardErased, notFound } from '../http/errors.js';
import { findProgram } from '../programs/repository.js';

const CardTokenParams = Type.Object({ cardToken: Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$' }) });

/** Public card links: no key, the unguessable card token is the capability. */
export const publicCardRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.get(
    '/c/:cardToken/card.pkpass',
    { schema: { tags: ['public'], summary: 'The signed Apple Wallet pass', params: CardTokenParams } },
    async (request, reply) => {
      const card = await findCardByPublicToken(ctx.db, request.params.cardToken);
      const program = card ? await findProgram(ctx.db, card.program_id) : undefined;
      if (!card || !program) throw notFound('card');
      if (card.status === 'erased') throw cardErased();
      const pass = await ctx.passes.passFor(card, program);
      return reply
        .type('application/vnd.apple.pkpass')
        .header('content-disposition', `attachment; filename="${program.slug}.pkpass"`)
        .header('cache-control', 'no-store')
        .header('last-modified', card.updated_at.toUTCString())
        .send(pass);
    },
  );
};
