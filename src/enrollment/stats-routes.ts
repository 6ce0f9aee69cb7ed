import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppContext } from '../app-context.js';
import { requireProgramRole } from '../http/auth.js';
import { AppError } from '../http/errors.js';
import { problemResponses } from '../http/schemas.js';
import { getProgramOr404 } from '../programs/service.js';
import { migrationStats, MigrationQuerySchema, MigrationStatsSchema } from '../imports/funnel.js';
import { funnelStats, statsPeriod, StatsQuerySchema, StatsSchema } from './stats.js';

/** The install funnel and the staff leaderboard (program `marketer` or `admin` key). */
export const statsRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.get(
    '/stats',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Join-page views, cards issued, wallet installs/removals, conversion by source and staff member, weekly staff leaderboard',
        querystring: StatsQuerySchema,
        response: { 200: StatsSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, ['admin', 'marketer']);
      const program = await getProgramOr404(ctx.db, programId);
      const period = statsPeriod(request.query, ctx.clock(), program.time_zone);
      if ('error' in period) throw new AppError(400, 'invalid_period', period.error);
      return funnelStats(ctx.db, program, period);
    },
  );

  app.get(
    '/stats/migration',
    {
      schema: {
        tags: ['marketing'],
        summary: 'The migration funnel "plastic → wallet": imported → invited → card page opened → wallet installed → first purchase, per import, store and week',
        querystring: MigrationQuerySchema,
        response: { 200: MigrationStatsSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, ['admin', 'marketer']);
      const program = await getProgramOr404(ctx.db, programId);
      return migrationStats(ctx.db, program, request.query);
    },
  );
};
