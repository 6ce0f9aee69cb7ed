/**
 * Seeds cards with SQL (not the API) for the "cost must not grow with the base" runs (issue #14):
 * `cards` active, verified, staff-issued cards of one program, in chunks so one statement never
 * holds a million rows of WAL and locks, then VACUUM ANALYZE so the planner sees the real size.
 * Card numbers, phones and serials are unique and disjoint from what the API issues during a bench
 * (numbers start with 9, phones with +7 900).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';

const CHUNK = 100_000;
const SEEDED_FIRST_NAMES = ['Anna', 'Boris', 'Vera', 'Gleb', 'Daria', 'Egor', 'Zoya', 'Ivan', 'Kira', 'Lev', 'Maria', 'Nikita', 'Olga', 'Pavel'];

export async function seedCardsWithSql(pool: pg.Pool, programId: string, cards: number): Promise<void> {
  const { rows } = await pool.query<{ tier: string }>(`SELECT tier FROM card WHERE program_id = $1 LIMIT 1`, [programId]);
  const tier = rows[0]?.tier ?? 'standard';
  for (let from = 1; from <= cards; from += CHUNK) {
    const to = Math.min(cards, from + CHUNK - 1);
    await pool.query(
      `INSERT INTO card (program_id, number, holder_name, phone, tier, consent, referral_code, public_token, apple_serial,
                         apple_auth_token, verified_at, verified_via, balance)
       SELECT $1, '9' || lpad(i::text, 11, '0'),
              -- Names spread over the alphabet, so a name prefix matches a realistic few.
              ($5::text[])[1 + i % 14]
                || ' ' || md5(i::text),
              '+7900' || lpad(i::text, 7, '0'), $4, true, 'S' || i, 'st' || md5(i::text), 'ss' || md5(i::text || 's'),
              md5(i::text || 'a'), now(), 'staff', 500
       FROM generate_series($2::int, $3::int) AS i`,
      [programId, from, to, tier, SEEDED_FIRST_NAMES],
    );
  }
  await pool.query('VACUUM ANALYZE card');
}

/**
 * What a cashier types to find SQL-seeded card `i` (1-based, as seeded above): its phone, its card
 * number, and the start of its holder's name (first name and three characters: "Anna 4a6"), which
 * matches that card and, in a large base, a few others.
 */
export function sqlCardSearchTerms(i: number): [phone: string, number: string, namePrefix: string] {
  const name = `${SEEDED_FIRST_NAMES[i % SEEDED_FIRST_NAMES.length]} ${createHash('md5').update(String(i)).digest('hex').slice(0, 3)}`;
  return [`+7900${String(i).padStart(7, '0')}`, `9${String(i).padStart(11, '0')}`, name];
}
