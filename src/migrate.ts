/**
 * `npm run migrate` (development) and `node dist/migrate.js` (the image; compose's one-shot
 * `migrate` service): applies pending migrations to DATABASE_URL (or the embedded database in
 * DATA_DIR), installs or upgrades pg-boss's schema, and exits. Under the same start-up lock as the
 * server (db/boot.ts), so it may run while instances start. Servers migrate at start too; this is
 * for deployments that migrate before rolling out, so every instance then finds nothing to do.
 *
 * Exit codes: 0 done, 2 invalid configuration, 3 the database is newer than this code, 1 other.
 */
import { ConfigError, loadConfig } from './config.js';
import { withBootLock } from './db/boot.js';
import { openDatabase } from './db/database.js';
import { migrateToLatest, SchemaTooNewError } from './db/migrate.js';
import { JobQueue } from './jobs/queue.js';

try {
  const config = loadConfig();
  const database = openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 2 });
  try {
    await withBootLock(database, async () => {
      const applied = await migrateToLatest(database.db);
      console.log(applied.length > 0 ? `Applied: ${applied.join(', ')}` : 'Database is up to date');
      const jobs = new JobQueue(database.db, { maintenance: false });
      await jobs.start();
      await jobs.stop();
      console.log('Job queue schema is up to date');
    });
  } finally {
    await database.close();
  }
} catch (error) {
  console.error(error instanceof ConfigError || error instanceof SchemaTooNewError ? error.message : error);
  process.exit(error instanceof ConfigError ? 2 : error instanceof SchemaTooNewError ? 3 : 1);
}
