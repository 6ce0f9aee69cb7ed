/**
 * Seeds cards with SQL (not the API) for the "cost must not grow with the base" runs (issue #14):
 * `cards` active, verified, staff-issued cards of one program, in chunks so one statement never
 * holds a million rows of WAL and locks, then VACUUM ANALYZE so the planner sees the real size.
 * Card numbers, phones and serials are unique and disjoint from what the API issues during a bench
 * (numbers start with 9, phones with +7 900).
 */
import type pg from 'pg';

const CHUNK = 100_000;

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
              (ARRAY['Anna','Boris','Vera','Gleb','Daria','Egor','Zoya','Ivan','Kira','Lev','Maria','Nikita','Olga','Pavel'])[1 + i % 14]
                || ' ' || md5(i::text),
              '+7900' || lpad(i::text, 7, '0'), $4, true, 'S' || i, 'st' || md5(i::text), 'ss' || md5(i::text || 's'),
              md5(i::text || 'a'), now(), 'staff', 500
       FROM generate_series($2::int, $3::int) AS i`,
      [programId, from, to, tier],
    );
  }
  await pool.query('VACUUM ANALYZE card');
}
