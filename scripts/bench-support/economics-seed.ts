/**
 * Seeds a program's history for `bench:economics` with plain SQL (INSERT … SELECT generate_series):
 * `cards` cards enrolled evenly over `years` years, about `purchases` purchases (each card buys
 * at its own pace — an exponentially distributed number of times, on average in proportion to
 * how long it has been a member — at uniformly random moments between its enrolment and now, so a
 * growing program buys more each month; 2 % refunded), the ledger those would have written (welcome,
 * referral on both sides for every tenth card, accrual, redemption on 8 % of purchases, refund
 * reversals, birthday and campaign bonuses, and the expiry of the points of cards inactive for a
 * year), balances and lifetime spend equal to what the ledger and purchases say, and checks of
 * non-members (a fifth as many as purchases). Deterministic (setseed) for a given size.
 */
import type pg from 'pg';

export interface EconomicsSeed {
  cards: number;
  purchases: number;
  ledgerEntries: number;
  anonymousChecks: number;
}

export async function seedEconomics(
  pool: pg.Pool,
  programId: string,
  options: { cards: number; purchases: number; years: number; log?: (line: string) => void },
): Promise<EconomicsSeed> {
  const { cards, purchases, years } = options;
  const log = options.log ?? (() => {});
  const days = Math.round(years * 365);
  const mean = purchases / cards;
  const client = await pool.connect();
  const step = async (what: string, text: string, values: unknown[] = []) => {
    const started = Date.now();
    const result = await client.query(text, values);
    log(`  ${what}: ${result.rowCount ?? 0} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  };
  try {
    await client.query('SET synchronous_commit = off');
    await client.query('SET maintenance_work_mem = \'256MB\'');
    await client.query('SET work_mem = \'64MB\'');
    await client.query('SELECT setseed(0.16)');
    // Bulk loading: the secondary indexes of the two big tables are dropped and built again at the
    // end (exactly as the migrations define them: pg_indexes' own definitions), which is several
    // times faster than maintaining them row by row.
    const { rows: indexes } = await client.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes
       WHERE schemaname = current_schema() AND tablename IN ('purchase', 'ledger_entry') AND indexname NOT LIKE '%_pkey'`,
    );
    for (const index of indexes) await client.query(`DROP INDEX ${index.indexname}`);
    await step(
      'cards',
      `INSERT INTO card (program_id, number, holder_name, phone, tier, consent, consent_at, referral_code, public_token, apple_serial,
                         apple_auth_token, created_at)
       SELECT $1, lpad(i::text, 12, '0'), 'Holder ' || i, '+7900' || lpad(i::text, 7, '0'),
              CASE WHEN i % 10 = 0 THEN 'general' ELSE 'standard' END, i % 3 <> 0, now(), 'R' || i,
              'pt' || md5(i::text), 'as' || md5(i::text || 's'), md5(i::text || 'a'),
              now() - random() * make_interval(days => $3)
       FROM generate_series(1, $2::int) AS i`,
      [programId, cards, days],
    );
    // Every tenth card was invited by the card enrolled just before it (by number).
    await step(
      'referrals',
      `UPDATE card c SET referred_by = p.id
       FROM card p
       WHERE c.program_id = $1 AND p.program_id = $1 AND c.number::bigint % 10 = 5 AND p.number::bigint = c.number::bigint - 1`,
      [programId],
    );
    await step(
      'purchases',
      `INSERT INTO purchase (program_id, card_id, amount, redeemed, accrued, payable, status, created_at, refunded_at)
       SELECT $1, p.card_id, p.amount, p.redeemed, ((p.amount - p.redeemed * 100) * 5 / 10000), p.amount - p.redeemed * 100,
              CASE WHEN p.refunded THEN 'refunded' ELSE 'completed' END, p.at, CASE WHEN p.refunded THEN p.at + interval '1 day' END
       FROM (
         SELECT c.id AS card_id, 30000 + floor(random() * 300000)::bigint AS amount,
                CASE WHEN random() < 0.08 THEN 100 ELSE 0 END AS redeemed,
                random() < 0.02 AS refunded,
                c.created_at + random() * greatest(now() - interval '1 hour' - c.created_at, interval '0') AS at
         FROM card c
         -- Stochastic rounding keeps the mean: floor(x + u), u uniform.
         CROSS JOIN LATERAL generate_series(1, floor(-ln(1 - random()) * $2::float8
           * extract(epoch FROM now() - c.created_at)::float8 / $3::float8 + random())::int) AS k
         WHERE c.program_id = $1
       ) p`,
      [programId, mean, (days * 86_400) / 2],
    );
    await step(
      'ledger: welcome',
      `INSERT INTO ledger_entry (program_id, card_id, kind, points, actor, created_at)
       SELECT $1, id, 'welcome', 1000, 'bench', created_at FROM card WHERE program_id = $1`,
      [programId],
    );
    await step(
      'ledger: referral',
      `INSERT INTO ledger_entry (program_id, card_id, kind, points, actor, reason, created_at)
       SELECT $1, c.id, 'referral', 3000, 'bench', 'invited', c.created_at FROM card c WHERE c.program_id = $1 AND c.referred_by IS NOT NULL
       UNION ALL
       SELECT $1, c.referred_by, 'referral', 3000, 'bench', 'inviter', c.created_at FROM card c WHERE c.program_id = $1 AND c.referred_by IS NOT NULL`,
      [programId],
    );
    await step(
      'ledger: accrual and redemption',
      `INSERT INTO ledger_entry (program_id, card_id, kind, points, purchase_id, actor, created_at)
       SELECT $1, p.card_id, e.kind, e.points, p.id, 'bench', p.created_at
       FROM purchase p
       CROSS JOIN LATERAL (VALUES ('redemption', -p.redeemed), ('accrual', p.accrued)) AS e(kind, points)
       WHERE p.program_id = $1 AND e.points <> 0`,
      [programId],
    );
    await step(
      'ledger: refunds',
      `INSERT INTO ledger_entry (program_id, card_id, kind, points, purchase_id, actor, reason, created_at)
       SELECT $1, p.card_id, 'reversal', e.points, p.id, 'bench', e.reason, p.refunded_at
       FROM purchase p
       CROSS JOIN LATERAL (VALUES (p.redeemed, 'refund: redeemed points returned'), (-p.accrued, 'refund: accrued points taken back')) AS e(points, reason)
       WHERE p.program_id = $1 AND p.status = 'refunded' AND e.points <> 0`,
      [programId],
    );
    await step(
      'ledger: birthday and campaign bonuses',
      `INSERT INTO ledger_entry (program_id, card_id, kind, points, actor, created_at)
       SELECT $1, c.id, b.kind, b.points, 'bench', c.created_at + random() * (now() - c.created_at)
       FROM card c
       CROSS JOIN LATERAL (VALUES ('birthday', 500, 0.3), ('campaign_bonus', 200, 0.4)) AS b(kind, points, share)
       WHERE c.program_id = $1 AND random() + 0 * length(c.number) < b.share`,
      [programId],
    );
    // Points expire after a year without a purchase: all the points the card had at that moment.
    await step(
      'ledger: expiry',
      `WITH last AS (
         SELECT c.id AS card_id, greatest(c.created_at, max(p.created_at)) + interval '365 days' AS expire_at
         FROM card c LEFT JOIN purchase p ON p.card_id = c.id
         WHERE c.program_id = $1
         GROUP BY c.id
         HAVING greatest(c.created_at, max(p.created_at)) + interval '365 days' < now()
       )
       INSERT INTO ledger_entry (program_id, card_id, kind, points, actor, created_at)
       SELECT $1, l.card_id, 'expiry', -sum(e.points), 'bench', l.expire_at
       FROM last l JOIN ledger_entry e ON e.card_id = l.card_id AND e.created_at < l.expire_at
       GROUP BY l.card_id, l.expire_at
       HAVING sum(e.points) > 0`,
      [programId],
    );
    await step(
      'balances and spend',
      `WITH l AS (SELECT card_id, sum(points) AS points FROM ledger_entry WHERE program_id = $1 GROUP BY card_id),
            p AS (SELECT card_id, sum(payable) AS spend FROM purchase WHERE program_id = $1 AND status = 'completed' GROUP BY card_id)
       UPDATE card c SET balance = s.points, lifetime_spend = s.spend
       FROM (SELECT l.card_id, l.points, coalesce(p.spend, 0) AS spend FROM l LEFT JOIN p ON p.card_id = l.card_id) s
       WHERE c.id = s.card_id`,
      [programId],
    );
    await step(
      'anonymous checks',
      `INSERT INTO anonymous_check (program_id, amount, created_at)
       SELECT $1, 20000 + floor(random() * 200000)::bigint, now() - random() * make_interval(days => $3)
       FROM generate_series(1, $2::int)`,
      [programId, Math.round(purchases / 5), days],
    );
    for (const index of indexes) await step(`index ${index.indexname}`, index.indexdef);
    const counts = await client.query<{ cards: number; purchases: number; ledger: number; checks: number }>(
      `SELECT (SELECT count(*) FROM card WHERE program_id = $1)::int AS cards,
              (SELECT count(*) FROM purchase WHERE program_id = $1)::int AS purchases,
              (SELECT count(*) FROM ledger_entry WHERE program_id = $1)::int AS ledger,
              (SELECT count(*) FROM anonymous_check WHERE program_id = $1)::int AS checks`,
      [programId],
    );
    const row = counts.rows[0]!;
    return { cards: row.cards, purchases: row.purchases, ledgerEntries: row.ledger, anonymousChecks: row.checks };
  } finally {
    client.release();
  }
}
