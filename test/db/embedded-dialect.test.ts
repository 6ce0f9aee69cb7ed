import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';

// The embedded database is one connection: a transaction must own it until it ends, or another
// request's statements would run inside (and be rolled back with) someone else's transaction.
describe('embedded database (PGlite) dialect', () => {
  let database: DatabaseHandle;
  beforeAll(async () => {
    database = openDatabase({});
    await migrateToLatest(database.db);
    await sql`CREATE TABLE probe (id serial PRIMARY KEY, label text NOT NULL)`.execute(database.db);
  });
  afterAll(async () => {
    await database.close();
  });

  it('never interleaves a statement from outside into an open transaction', async () => {
    const db = database.db;
    const events: string[] = [];
    let releaseTransaction!: () => void;
    const transactionMayEnd = new Promise<void>((resolve) => (releaseTransaction = resolve));
    const transaction = db
      .transaction()
      .execute(async (trx) => {
        events.push('trx:start');
        await trx.insertInto('probe' as any).values({ label: 'inside' }).execute();
        await transactionMayEnd;
        events.push('trx:throw');
        throw new Error('roll back');
      })
      .catch(() => events.push('trx:rolled-back'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // This insert is issued while the transaction is open; it must wait and then commit on its own.
    const outside = db
      .insertInto('probe' as any)
      .values({ label: 'outside' })
      .execute()
      .then(() => events.push('outside:done'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events).toEqual(['trx:start']);
    releaseTransaction();
    await Promise.all([transaction, outside]);
    expect(events).toEqual(['trx:start', 'trx:throw', 'trx:rolled-back', 'outside:done']);
    const rows = await db.selectFrom('probe' as any).select('label' as any).execute();
    expect(rows.map((r: any) => r.label)).toEqual(['outside']);
  });

  it('runs multi-statement SQL without parameters (migrations, pg-boss DDL)', async () => {
    const result = await sql.raw('CREATE TEMP TABLE t1 (x int); INSERT INTO t1 VALUES (1), (2); SELECT count(*)::int AS n FROM t1').execute(database.db);
    expect(result.rows).toEqual([{ n: 2 }]);
  });

  it('returns bigint columns as numbers', async () => {
    const result = await sql<{ big: number }>`SELECT ${'9007199254740'}::bigint AS big`.execute(database.db);
    expect(result.rows[0].big).toBe(9007199254740);
  });
});
