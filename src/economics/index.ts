/**
 * Program economics (issue #16): the report, its rollups and their schedule, non-member checks,
 * and the weekly segment movement (src/campaigns/segment-flow.ts), which the same tick records.
 */
import type { Db } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';
import { recordSegmentWeeks } from '../campaigns/segment-flow.js';
import { EconomicsRollup } from './rollup.js';

export { economicsRoutes } from './routes.js';
export { economicsReport } from './report.js';
export { EconomicsRollup } from './rollup.js';

export const ECONOMICS_TICK_QUEUE = 'economics-tick';

interface Logger {
  error(obj: object, msg?: string): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Rollups and segment weeks (tests run `tick()` instead of waiting for the schedule). */
    economics: EconomicsModule;
  }
}

export interface EconomicsModule {
  rollup: EconomicsRollup;
  /** Rolls up closed days and months and records closed weeks' segment movement, for every program. */
  tick(): Promise<void>;
  start(runWorkers: boolean): Promise<void>;
}

export function createEconomicsModule(deps: { db: Db; jobs: JobQueue; clock: () => Date; logger?: Logger }): EconomicsModule {
  const rollup = new EconomicsRollup(deps.db, deps.clock);
  const tick = async () => {
    await rollup.run();
    const programs = await deps.db.selectFrom('program').selectAll().execute();
    for (const program of programs) {
      try {
        await recordSegmentWeeks(deps.db, program, deps.clock());
      } catch (error) {
        deps.logger?.error({ err: error, programId: program.id }, 'segment movement failed');
      }
    }
  };
  return {
    rollup,
    tick,
    async start(runWorkers) {
      await deps.jobs.ensureQueue(ECONOMICS_TICK_QUEUE, { retryLimit: 0, expireInSeconds: 3600 });
      if (!runWorkers) return;
      await deps.jobs.work(ECONOMICS_TICK_QUEUE, { batchSize: 1 }, async () => {
        await tick();
      });
      // Every ten minutes: a day is rolled up ten minutes after its local midnight, whatever the zone.
      await deps.jobs.boss.schedule(ECONOMICS_TICK_QUEUE, '*/10 * * * *');
    },
  };
}
