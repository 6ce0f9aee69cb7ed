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

/** Applies every pending migration; returns the names applied. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
