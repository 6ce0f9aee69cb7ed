/**
 * Card-base imports (issue #12, docs/import.md), wired for the composition root (`buildApp`) and the CLI.
 */
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';
import type { CardChangeRecorder } from '../updates/card-changes.js';
import { ImportService, type ImportSettings } from './service.js';

export { ImportService, IMPORT_QUEUES, DEFAULT_IMPORT_SETTINGS, type ImportSettings, type ImportReport } from './service.js';
export { importRoutes } from './routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The import service (tests run chunks and inject faults through it). */
    imports: ImportService;
  }
}

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export function createImportModule(deps: {
  config: Pick<Config, 'IMPORT_MAX_BYTES' | 'IMPORT_CHUNK_SIZE' | 'IMPORT_RUN_SECONDS' | 'CAMPAIGN_STALL_SECONDS'>;
  db: Db;
  jobs: JobQueue;
  cardChanges: CardChangeRecorder;
  clock: () => Date;
  logger?: Logger;
  settings?: Partial<ImportSettings>;
}) {
  const imports = new ImportService({
    db: deps.db,
    jobs: deps.jobs,
    cardChanges: deps.cardChanges,
    clock: deps.clock,
    logger: deps.logger,
    settings: {
      maxBytes: deps.config.IMPORT_MAX_BYTES,
      chunkSize: deps.config.IMPORT_CHUNK_SIZE,
      runSeconds: deps.config.IMPORT_RUN_SECONDS,
      // A chunk is one transaction of seconds at most: the campaigns' stall threshold fits it too.
      stallSeconds: deps.config.CAMPAIGN_STALL_SECONDS,
      ...deps.settings,
    },
  });
  return {
    imports,
    async start(runWorkers: boolean) {
      await imports.ensureQueues();
      if (runWorkers) await imports.startWorkers();
    },
    close() {
      imports.stopWorkers();
    },
  };
}
