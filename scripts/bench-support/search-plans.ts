/**
 * EXPLAIN (ANALYZE, BUFFERS) of the app's own card search statement (searchCards, as
 * GET /cards?query= calls it) for a phone, a card number and a name prefix: `bench:pos` and
 * `bench:sizes` print the plans to show the searches stay index lookups as the base grows (issue #14).
 */
import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';
import { searchCards } from '../../src/cards/repository.js';
import type { Database } from '../../src/db/schema.js';
import { normalizePhone } from '../../src/enrollment/service.js';
import { normalizeScannedValue } from '../../src/loyalty/card-number.js';

/** EXPLAIN (ANALYZE, BUFFERS) of the app's own search statement (searchCards) for a phone, a number and a name prefix. */
export async function explainSearches(pool: pg.Pool, programId: string, [phone, number, name]: string[]): Promise<void> {
  const captured: Array<{ sql: string; parameters: readonly unknown[] }> = [];
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: (event) => {
      if (event.level === 'query') captured.push({ sql: event.query.sql, parameters: event.query.parameters });
    },
  });
  // What GET /cards?query= passes to searchCards (src/cards/routes.ts).
  const asRouteDoes = (query: string) => {
    const digits = normalizeScannedValue(query);
    let asPhone: string | undefined;
    try {
      asPhone = /\d{5,}/.test(query.replace(/\D/g, '')) ? normalizePhone(query, 'RUB') : undefined;
    } catch {
      asPhone = undefined;
    }
    return { number: /^\d+$/.test(digits) ? digits : undefined, phone: asPhone, namePrefix: query };
  };
  const cases: Array<[string, { number?: string; phone?: string; namePrefix: string }]> = [
    [`phone ${phone}`, asRouteDoes(phone!)],
    [`number ${number}`, asRouteDoes(number!)],
    [`name prefix "${name}"`, asRouteDoes(name!)],
  ];
  for (const [label, query] of cases) {
    captured.length = 0;
    await searchCards(db, programId, query, 20);
    const statement = captured[0]!;
    const { rows } = await pool.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${statement.sql}`, statement.parameters as unknown[]);
    console.log(`    plan of the search by ${label}:`);
    for (const row of rows) console.log(`      ${row['QUERY PLAN']}`);
  }
}
