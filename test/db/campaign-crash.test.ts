import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { requirePostgres } from '../support/database.js';

// Crash safety of the campaign fan-out: a separate PROCESS runs the campaign workers against the
// same PostgreSQL database; it is killed with SIGKILL while a chunk's transaction is open, in the
// middle of a 20,000-recipient campaign with a bonus; a new process finishes the campaign. Every
// recipient must be processed exactly once: recipient rows, ledger entries, balances, promos and
// the number of card changes (update-tag bumps, counted by a test trigger that rolls back with
// its transaction).
const RECIPIENTS = 20_000;
const CHUNK = 500;
const BONUS = 100;
const WORKER = path.resolve('test/support/campaign-worker-process.ts');

const postgres = requirePostgres();

describe.skipIf(postgres.skip)(`campaign fan-out survives a killed worker process (postgres) ${postgres.reason}`, () => {
  let t: TestApp;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    // The API only: no workers in this process.
    t = await startTestApp({ runWorkers: false });
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await t?.close();
  });

  function startWorker(label: string): Promise<ChildProcess> {
    const url = new URL(t.database.url!);
    url.searchParams.set('application_name', `campaign-worker-${label}`);
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env: { ...process.env, DATABASE_URL: url.toString(), CAMPAIGN_CHUNK_SIZE: String(CHUNK), CAMPAIGN_STALL_SECONDS: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let errors = '';
    child.stderr!.on('data', (chunk) => (errors += chunk));
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (chunk) => {
        if (String(chunk).includes('ready')) resolve(child);
      });
      child.once('exit', (code) => reject(new Error(`worker ${label} exited (${code}) before ready: ${errors}`)));
    });
  }

  it(`processes each of ${RECIPIENTS} recipients exactly once across a SIGKILL`, { timeout: 240_000 }, async () => {
    const db = t.database.handle.db;
    const { program, as } = await createProgramWithKeys(t.app, 'crash');
    await sql`
      INSERT INTO card (program_id, number, holder_name, phone, tier, consent, consent_at, referral_code, public_token, apple_serial, apple_auth_token)
      SELECT ${program.id}::uuid, lpad(i::text, 12, '0'), 'Holder ' || i, '+7900' || lpad(i::text, 7, '0'), 'standard', true, now(),
        'R' || i, 'pt' || md5(i::text), 'as' || md5(i::text || 's'), md5(i::text || 'a')
      FROM generate_series(1, ${RECIPIENTS}) AS i
    `.execute(db);
    // Test instrumentation: one row per update-tag change, written in the changing transaction.
    await sql`
      CREATE TABLE test_card_change (card_id uuid NOT NULL, update_tag bigint NOT NULL);
      CREATE FUNCTION test_log_card_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO test_card_change VALUES (NEW.id, NEW.update_tag); RETURN NULL; END $$;
      CREATE TRIGGER test_card_changed AFTER UPDATE OF update_tag ON card FOR EACH ROW
        WHEN (OLD.update_tag IS DISTINCT FROM NEW.update_tag) EXECUTE FUNCTION test_log_card_change();
    `.execute(db);

    const first = await startWorker('a');
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/campaigns',
      headers: as('marketer'),
      payload: { name: 'Crash me', message: { ru: 'Подарок', en: 'A gift' }, audience: { all: true }, bonusPoints: BONUS, controlShare: 0 },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id;
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${id}/send`, headers: as('marketer') })).statusCode).toBe(202);

    const progress = () => db.selectFrom('campaign').select(['status', 'processed', 'targeted', 'next_chunk']).where('id', '=', id).executeTakeFirstOrThrow();
    // Kill in the middle: a quarter done, and the worker inside a chunk's open transaction.
    await waitFor(
      async () => {
        const p = await progress();
        if (p.processed < RECIPIENTS / 4) return false;
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'campaign-worker-a' AND xact_start IS NOT NULL AND state <> 'idle'
            AND query ILIKE '%ledger_entry%'
        `.execute(db);
        return rows[0]!.n > 0;
      },
      { what: 'the worker mid-chunk', timeoutMs: 120_000 },
    );
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const atKill = await progress();
    expect(atKill.status).toBe('sending');
    expect(atKill.processed).toBeGreaterThan(0);
    expect(atKill.processed).toBeLessThan(RECIPIENTS);
    // The open chunk rolled back as a whole: progress is whole chunks, matching the ledger.
    expect(atKill.processed % CHUNK).toBe(0);
    const ledgerAtKill = await db.selectFrom('ledger_entry').select((eb) => eb.fn.countAll<number>().as('n')).where('kind', '=', 'campaign_bonus').executeTakeFirstOrThrow();
    expect(Number(ledgerAtKill.n)).toBe(atKill.processed);

    await startWorker('b');
    await waitFor(async () => (await progress()).status === 'sent', { what: 'the campaign to finish', timeoutMs: 180_000 });

    const final = await progress();
    expect(final).toMatchObject({ status: 'sent', processed: RECIPIENTS, targeted: RECIPIENTS });
    const recipients = await db
      .selectFrom('campaign_recipient')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('campaign_id', '=', id)
      .groupBy('status')
      .execute();
    expect(recipients.map((r) => ({ status: r.status, n: Number(r.n) }))).toEqual([{ status: 'processed', n: RECIPIENTS }]);

    const { rows: ledger } = await sql<{ entries: number; cards: number; per_card_max: number }>`
      SELECT count(*)::int AS entries, count(DISTINCT card_id)::int AS cards,
        (SELECT max(n) FROM (SELECT count(*) AS n FROM ledger_entry WHERE kind = 'campaign_bonus' GROUP BY card_id) x)::int AS per_card_max
      FROM ledger_entry WHERE kind = 'campaign_bonus' AND program_id = ${program.id}
    `.execute(db);
    expect(ledger[0]).toEqual({ entries: RECIPIENTS, cards: RECIPIENTS, per_card_max: 1 });

    const { rows: cards } = await sql<{ wrong_balance: number; without_promo: number }>`
      SELECT count(*) FILTER (WHERE balance <> ${BONUS})::int AS wrong_balance,
        count(*) FILTER (WHERE promo IS NULL OR promo->>'ru' <> 'Подарок')::int AS without_promo
      FROM card WHERE program_id = ${program.id}
    `.execute(db);
    expect(cards[0]).toEqual({ wrong_balance: 0, without_promo: 0 });

    // Exactly one card change (update-tag bump) per recipient, none from the rolled-back chunk.
    const { rows: changes } = await sql<{ changes: number; cards: number; per_card_max: number }>`
      SELECT count(*)::int AS changes, count(DISTINCT card_id)::int AS cards,
        (SELECT max(n) FROM (SELECT count(*) AS n FROM test_card_change GROUP BY card_id) x)::int AS per_card_max
      FROM test_card_change
    `.execute(db);
    expect(changes[0]).toEqual({ changes: RECIPIENTS, cards: RECIPIENTS, per_card_max: 1 });
    // And the recipients remember that change as the campaign's pass version.
    const { rows: tags } = await sql<{ mismatched: number }>`
      SELECT count(*)::int AS mismatched FROM campaign_recipient r JOIN test_card_change c ON c.card_id = r.card_id
      WHERE r.campaign_id = ${id} AND r.update_tag <> c.update_tag
    `.execute(db);
    expect(tags[0]!.mismatched).toBe(0);
  });
});
