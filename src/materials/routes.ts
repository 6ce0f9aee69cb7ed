import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppContext } from '../app-context.js';
import { requireProgramRole } from '../http/auth.js';
import { problemResponses } from '../http/schemas.js';
import { MaterialParams, MaterialQuery, renderMaterial } from './service.js';

/** Print-ready posters, table tents and stickers with the join QR code (program admin or marketer). */
export const materialRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.get(
    '/materials/:format',
    {
      schema: {
        tags: ['marketing'],
        summary: 'A print-ready poster (A4, A5), table tent or sticker sheet with the join QR code, as PDF or SVG',
        params: MaterialParams,
        querystring: MaterialQuery,
        response: { ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, ['admin', 'marketer']);
      const material = await renderMaterial(ctx, programId, { ...request.query, format: request.params.format });
      return reply
        .type(material.type)
        .header('content-disposition', `attachment; filename="${material.fileName}"`)
        .header('cache-control', 'private, no-cache')
        .send(material.body);
    },
  );
};
