import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, requirePostgres, type TestDatabase } from '../support/database.js';
import { ensureBuild, logLines, spawnService, startInstance } from '../support/cluster.js';
import { passJsonOf } from '../support/pkpass.js';
import { getTestCertificates } from '../support/test-certificates.js';

// The production image's commands on the compiled output (the image itself cannot be built on the
// test machines): the Dockerfile's CMD and compose's one-shot migration, run as written, from
// dist/, with NODE_ENV=production. A loader hook makes any import of a development-only package
// (tsx, esbuild, TypeScript, node-forge) throw, so the image's production dependencies are enough.
const postgres = requirePostgres();
const ADMIN_KEY = 'production-admin-key-0123456789abcdef';
const FORBID = `--import=${path.resolve('test/support/forbid-dev-modules.mjs')}`;

/** The exec-form command of a Dockerfile instruction (`CMD [...]`) or a compose `command: [...]`. */
function execForm(text: string, pattern: RegExp): string[] {
  const match = pattern.exec(text);
  if (!match) throw new Error(`no ${pattern} in the file`);
  return JSON.parse(match[1]!) as string[];
}

describe.skipIf(postgres.skip)(`production build: node dist/server.js and node dist/migrate.js (postgres) ${postgres.reason}`, () => {
  let database: TestDatabase;
  let certDir: string;
  const dockerCmd = execForm(readFileSync('Dockerfile', 'utf8'), /^CMD (\[.*\])$/m);
  const migrateCmd = execForm(readFileSync('compose.yaml', 'utf8'), /command: (\["node", "dist\/migrate\.js"\])/);

  beforeAll(async () => {
    ensureBuild();
    database = await createTestDatabase({ migrate: false });
    certDir = (await getTestCertificates()).dir;
  }, 300_000);
  afterAll(async () => {
    await database?.drop();
  });

  const env = () => ({
    NODE_ENV: 'production',
    NODE_OPTIONS: FORBID,
    DATABASE_URL: database.url!,
    ADMIN_KEY,
    APPLE_CERT_DIR: certDir,
    PUBLIC_URL: 'https://cards.test',
    LOG_LEVEL: 'info',
  });

  it('the image commands are the compiled entry points', () => {
    expect(dockerCmd).toEqual(['node', 'dist/server.js']);
    expect(migrateCmd).toEqual(['node', 'dist/migrate.js']);
  });

  it('migrates an empty database, serves the API, a signed pass and the cabinet script, and drains on SIGTERM', async () => {
    const migrate = spawnService('migrate', env(), migrateCmd);
    expect(await migrate.exited, migrate.output()).toBe(0);
    expect(migrate.output()).toMatch(/Applied: 20261125T130000_initial/);

    const instance = await startInstance('all', env());
    try {
      // The migration ran before: nothing left to apply at start.
      expect(logLines(instance.output()).some((l) => l.msg === 'database migrated')).toBe(false);
      const ready = await fetch(`${instance.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ok', role: 'all', database: 'postgres', queue: 'ok', certificate: { state: 'ok' } });

      const admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
      const program = await (await fetch(`${instance.url}/api/v1/programs`, { method: 'POST', headers: admin, body: JSON.stringify({ slug: 'prod', name: 'Prod' }) })).json();
      const key = await (await fetch(`${instance.url}/api/v1/programs/${program.id}/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ role: 'pos', name: 'till' }) })).json();
      const issued = await fetch(`${instance.url}/api/v1/cards`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ holder: { name: 'Иван', phone: '+79165550000' } }),
      });
      expect(issued.status).toBe(201);
      const card = await issued.json();
      const pass = await fetch(`${instance.url}${new URL(card.applePassUrl).pathname}`);
      expect(pass.status).toBe(200);
      expect(passJsonOf(Buffer.from(await pass.arrayBuffer())).serialNumber).toEqual(expect.any(String));
      // Copied next to the compiled code by the build (tsc emits only .ts).
      const script = await fetch(`${instance.url}/app/assets/cabinet.js`);
      expect(script.status).toBe(200);
      expect((await script.text()).length).toBeGreaterThan(100);
    } finally {
      expect(await instance.stop('SIGTERM'), instance.output()).toBe(0);
    }
    expect(instance.output()).toMatch(/shutting down/);
    expect(instance.output()).not.toMatch(/development-only package/);
  });

  it('refuses a database that a newer version migrated, with a clear message (server and migrate)', async () => {
    await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('29991231T000000_from_the_future', now()::text)`.execute(database.handle.db);
    try {
      const server = spawnService('old server', { ...env(), PORT: '0', HOST: '127.0.0.1' });
      expect(await server.exited).toBe(3);
      expect(server.output()).toContain('The database schema is newer than this code: migration 29991231T000000_from_the_future was applied by a newer version');
      const migrate = spawnService('old migrate', env(), migrateCmd);
      expect(await migrate.exited).toBe(3);
      expect(migrate.output()).toContain('newer than this code');
    } finally {
      await sql`DELETE FROM kysely_migration WHERE name = '29991231T000000_from_the_future'`.execute(database.handle.db);
    }
  });
});
