import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, sql, type CompiledQuery } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/schema.js';
import { CompiledStatement, CompiledStatementsByShape } from '../../src/db/compiled-statement.js';

// Issue #14: hot statements are built by kysely once and then run with fresh values. What runs must
// be exactly what kysely builds for those values (same text, so the same prepared-statement name;
// the values in the same places).
describe('CompiledStatement', () => {
  const sent: CompiledQuery[] = [];
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => {
        const driver = new DummyDriver();
        driver.acquireConnection = async () => ({
          executeQuery: async (query: CompiledQuery) => {
            sent.push(query);
            return { rows: [] };
          },
          streamQuery: () => {
            throw new Error('not used');
          },
        });
        return driver;
      },
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
  const lock = (cardId: string, programId: string) =>
    db.selectFrom('card').selectAll().where('id', '=', cardId).where('program_id', '=', programId).where('status', '=', 'active').forUpdate();

  it('sends the text kysely builds and each call its own values, constants kept', async () => {
    const statement = new CompiledStatement((executor, slots: { cardId: string; programId: string }) =>
      executor.selectFrom('card').selectAll().where('id', '=', slots.cardId).where('program_id', '=', slots.programId).where('status', '=', 'active').forUpdate(),
    );
    sent.length = 0;
    await statement.execute(db, { cardId: 'c1', programId: 'p1' });
    await statement.execute(db, { cardId: 'c2', programId: 'p2' });
    const expected = lock('c2', 'p2').compile();
    expect(sent.map((q) => q.sql)).toEqual([expected.sql, expected.sql]);
    expect(sent[0]!.parameters).toEqual(['c1', 'p1', 'active']);
    expect(sent[1]!.parameters).toEqual(expected.parameters);
  });

  it('builds one statement per shape', async () => {
    const insert = new CompiledStatementsByShape(
      (rows: number) => String(rows),
      (executor, slots: Record<string, unknown>, rows) =>
        executor
          .insertInto('ledger_entry')
          .values(Array.from({ length: rows }, (_, i) => ({ points: slots[`points${i}`], card_id: slots.cardId }) as never))
          .returning(sql<number>`id + ${slots.offset}`.as('id')),
    );
    sent.length = 0;
    await insert.execute(db, 1, { cardId: 'c', points0: 5, offset: 1 });
    await insert.execute(db, 2, { cardId: 'd', points0: 6, points1: -2, offset: 2 });
    await insert.execute(db, 1, { cardId: 'e', points0: 7, offset: 3 });
    expect(sent.map((q) => q.parameters)).toEqual([
      [5, 'c', 1],
      [6, 'd', -2, 'd', 2],
      [7, 'e', 3],
    ]);
    expect(sent[0]!.sql).toBe(sent[2]!.sql);
    expect(sent[1]!.sql).not.toBe(sent[0]!.sql);
  });

  it('refuses a slot that kysely put inside a longer value', async () => {
    const statement = new CompiledStatement((executor, slots: { name: string }) =>
      executor.selectFrom('card').select('id').where('number', '=', `x${slots.name}`),
    );
    await expect(statement.execute(db, { name: 'n' })).rejects.toThrow(/slot inside a parameter/);
  });
});
