import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Migrator, sql, type Migration, type MigrationProvider } from 'kysely';
import type { Db } from './database.js';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

/**
 * Migrations are plain SQL files with timestamped names (`20261125T130000_initial.sql`, and an
 * optional `….down.sql`), applied in name order. Plain SQL keeps them frozen in time (they cannot
 * import application code) and loadable anywhere without a TypeScript loader.
 */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string = MIGRATIONS_DIR) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    for (const file of readdirSync(this.dir).filter((f) => f.endsWith('.sql') && !f.endsWith('.down.sql')).sort()) {
      const name = file.slice(0, -'.sql'.length);
      const up = readFileSync(path.join(this.dir, file), 'utf8');
      const downFile = path.join(this.dir, `${name}.down.sql`);
      const down = existsSync(downFile) ? readFileSync(downFile, 'utf8') : undefined;
      migrations[name] = {
        up: async (db) => {
          await sql.raw(up).execute(db);
        },
        down: down === undefined ? undefined : async (db) => void (await sql.raw(down).execute(db)),
      };
    }
    return migrations;
  }
}

/** The database has migrations this code does not know: it was migrated by a newer version. */
export class SchemaTooNewError extends Error {
  constructor(readonly unknown: string[]) {
    super(
      `The database schema is newer than this code: migration${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} ` +
        `${unknown.length > 1 ? 'were' : 'was'} applied by a newer version and ${unknown.length > 1 ? 'are' : 'is'} not in ${MIGRATIONS_DIR}. ` +
        'Refusing to start: run the version that applied it (or newer), or restore the database from before it.',
    );
    this.name = 'SchemaTooNewError';
  }
}

/**
 * Refuses a database that a newer version migrated (an old instance restarted during a rolling
 * upgrade, or a rollback of the code alone): its queries may no longer match the schema. Kysely
 * would stop too, with "corrupted migrations"; this says what happened and what to do.
 */
export async function assertSchemaNotNewer(db: Db, dir: string = MIGRATIONS_DIR): Promise<void> {
  const { rows } = await sql<{ present: boolean }>`SELECT to_regclass('kysely_migration') IS NOT NULL AS present`.execute(db);
  if (!rows[0]?.present) return;
  const applied = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(db);
  const known = new Set(Object.keys(await new SqlFileMigrationProvider(dir).getMigrations()));
  const unknown = applied.rows.map((r) => r.name).filter((name) => !known.has(name));
  if (unknown.length > 0) throw new SchemaTooNewError(unknown);
}

/**
 * Applies every pending migration; returns the names applied. Refuses a schema newer than the code
 * (SchemaTooNewError). Several processes may run it at once: kysely holds an advisory lock while
 * it migrates, and start-up runs it under the boot lock (db/boot.ts) anyway.
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  await assertSchemaNotNewer(db);
  const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
