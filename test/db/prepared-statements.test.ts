import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { createTestDatabase, requirePostgres, type TestDatabase } from '../support/database.js';

// PG_PREPARED_STATEMENTS (issue #14): named statements by default, none when switched off (PgBouncer
// in transaction mode before 1.21), and never for a LIKE search (its generic plan cannot use the
// name-prefix index). pg_prepared_statements lists what the session has prepared; one connection
// per pool makes it the same session each time.
const postgres = requirePostgres();

describe.skipIf(postgres.skip)('prepared statements (postgres)', () => {
  let test: TestDatabase;
  const handles: DatabaseHandle[] = [];
  beforeAll(async () => {
    test = await createTestDatabase({ poolSize: 1 });
  });
  afterAll(async () => {
    for (const handle of handles) await handle.close();
    await test?.drop();
  });

  const prepared = async (handle: DatabaseHandle) => {
    const { rows } = await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements`.execute(handle.db);
    return rows.map((r) => r.statement);
  };
  const open = (preparedStatements?: boolean) => {
    const handle = openDatabase({ databaseUrl: test.url!, poolSize: 1, preparedStatements });
    handles.push(handle);
    return handle;
  };

  it('prepares parameterised statements once per connection by default, but not LIKE searches', async () => {
    const handle = open();
    for (let i = 0; i < 3; i++) {
      await handle.db.selectFrom('program').select('id').where('slug', '=', `p${i}`).execute();
      await handle.db.selectFrom('program').select('id').where('slug', 'like', `p${i}%`).execute();
    }
    const statements = await prepared(handle);
    expect(statements.filter((s) => /"slug" = \$1/.test(s))).toHaveLength(1);
    expect(statements.filter((s) => /like/i.test(s))).toHaveLength(0);
  });

  it('prepares nothing with PG_PREPARED_STATEMENTS=false', async () => {
    expect(loadConfig({ PG_PREPARED_STATEMENTS: 'false' }).PG_PREPARED_STATEMENTS).toBe(false);
    expect(loadConfig({}).PG_PREPARED_STATEMENTS).toBe(true);
    const handle = open(false);
    for (let i = 0; i < 3; i++) await handle.db.selectFrom('program').select('id').where('slug', '=', `p${i}`).execute();
    expect(await prepared(handle)).toEqual([]);
  });
});
