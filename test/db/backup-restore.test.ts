import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/schema.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, requirePostgres, type TestDatabase } from '../support/database.js';

// The documented backup and restore (docs/operations.md, Backups): scripts/backup.sh while purchases
// are being written, scripts/restore.sh into an empty database; the copy is consistent (balances
// equal ledger sums, queued jobs kept) and the service runs on it.
const postgres = requirePostgres();

function run(script: string, env: Record<string, string>, args: string[] = []) {
  const result = spawnSync('bash', [path.resolve('scripts', script), ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Row count and a digest of the ordered rows of each table: equal means the same data. */
async function fingerprint(db: Kysely<Database>) {
  const tables = ['program', 'api_key', 'card', 'purchase', 'ledger_entry', 'idempotency_record', 'kysely_migration'];
  const out: Record<string, string> = {};
  for (const table of tables) {
    const { rows } = await sql<{ n: number; digest: string }>`
      SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest FROM ${sql.table(table)} t
    `.execute(db);
    out[table] = `${rows[0]!.n}:${rows[0]!.digest}`;
  }
  return out;
}

describe.skipIf(postgres.skip)(`backup and restore scripts (postgres) ${postgres.reason}`, () => {
  let t: TestApp;
  let target: TestDatabase;
  let second: TestDatabase;
  const dir = mkdtempSync(path.join(tmpdir(), 'walletcards-backup-'));

  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false });
    target = await createTestDatabase({ migrate: false });
    second = await createTestDatabase({ migrate: false });
  });
  afterAll(async () => {
    await t?.close();
    await target?.drop();
    await second?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a backup taken during a stream of purchases restores into an empty database, consistent and usable', async () => {
    const { as } = await createProgramWithKeys(t.app, 'backup');
    const cards: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: `B${i}`, phone: `+7919000000${i}` } } });
      cards.push(res.json().id);
    }
    // Purchases keep coming while the dump runs.
    let writing = true;
    const writer = (async () => {
      let n = 0;
      while (writing) {
        const res = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cards[n % cards.length]}/purchases`, headers: as('pos'), payload: { amount: 10_000 + n } });
        expect(res.statusCode).toBe(201);
        n++;
      }
      return n;
    })();
    const file = path.join(dir, 'walletcards.dump');
    const backup = run('backup.sh', { DATABASE_URL: t.database.url! }, [file]);
    writing = false;
    const written = await writer;
    expect(backup.status, backup.output).toBe(0);
    expect(backup.output).toContain('backup written');
    expect(written).toBeGreaterThan(0);

    const restore = run('restore.sh', { DATABASE_URL: target.url! }, [file]);
    expect(restore.status, restore.output).toBe(0);
    expect(restore.output).toContain('balances match the ledger');

    const copy = target.handle.db;
    // A snapshot: every purchase in it is whole (ledger and balance); pending jobs came along.
    const mismatches = await sql<{ n: number }>`SELECT count(*)::int AS n FROM card c WHERE balance <> (SELECT coalesce(sum(points), 0) FROM ledger_entry WHERE card_id = c.id)`.execute(copy);
    expect(mismatches.rows[0]!.n).toBe(0);
    const purchases = Number((await copy.selectFrom('purchase').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    expect(purchases).toBeGreaterThanOrEqual(0);
    expect(purchases).toBeLessThanOrEqual(written);
    const jobs = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pgboss.job WHERE name LIKE 'wallet-update-%'`.execute(copy);
    expect(jobs.rows[0]!.n).toBeGreaterThan(0);
    // Nothing left to migrate: the copy is at the code's schema.
    expect(await migrateToLatest(copy)).toEqual([]);

    // Once the source is quiet, a second backup and restore is an exact copy.
    const again = path.join(dir, 'again.dump');
    expect(run('backup.sh', { DATABASE_URL: t.database.url! }, [again]).status).toBe(0);
    const exact = run('restore.sh', { DATABASE_URL: second.url! }, [again]);
    expect(exact.status, exact.output).toBe(0);
    expect(await fingerprint(second.handle.db)).toEqual(await fingerprint(t.database.handle.db));
  });

  it('refuses to restore over a database that has tables', () => {
    const refused = run('restore.sh', { DATABASE_URL: target.url! }, [path.join(dir, 'again.dump')]);
    expect(refused.status).toBe(2);
    expect(refused.output).toMatch(/refusing: the target database already has \d+ tables/);
  });
});
