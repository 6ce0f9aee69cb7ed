import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Issue #14: the common keyed purchase runs without a savepoint and writes the purchase, its ledger
// entries, the card and the Idempotency-Key answer in one statement. What it stores must be exactly
// what the general path stored: the answer under the key, rows that agree with it, and a refusal
// before any write stored and replayed as before.
describe(`the purchase in one statement (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  const db = () => t.database.handle.db;
  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false });
  });
  afterAll(async () => {
    await t?.close();
  });

  type As = (role: 'pos') => Record<string, string>;
  const issue = async (as: As, phone: string) => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'One Statement', phone } } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; balance: number };
  };
  const purchase = (as: As, cardId: string, payload: Record<string, unknown>, key: string) =>
    t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: { ...as('pos'), 'idempotency-key': key }, payload });

  it('stores the answer under the key in the same write, and the rows agree with it', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'one-statement');
    const card = await issue(as, '+79161500001');
    const first = await purchase(as, card.id, { amount: 100_00 }, 'one-1');
    expect(first.statusCode, first.body).toBe(201);
    const body = first.json();
    expect(body.accrued).toBeGreaterThan(0);

    const record = await db().selectFrom('idempotency_record').select(['status_code', 'response']).where('scope', '=', program.id).where('key', '=', 'one-1').executeTakeFirstOrThrow();
    expect(record.status_code).toBe(201);
    expect(record.response).toEqual(body);

    const row = await db().selectFrom('purchase').selectAll().where('id', '=', body.purchaseId).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ card_id: card.id, program_id: program.id, amount: 100_00, accrued: body.accrued, redeemed: 0, payable: body.payable });
    const entries = await db().selectFrom('ledger_entry').select(['kind', 'points', 'idempotency_key']).where('purchase_id', '=', body.purchaseId).execute();
    expect(entries).toEqual([{ kind: 'accrual', points: body.accrued, idempotency_key: 'one-1' }]);
    const after = await db().selectFrom('card').select(['balance', 'lifetime_spend', 'tier']).where('id', '=', card.id).executeTakeFirstOrThrow();
    expect(after).toMatchObject({ balance: body.balance, tier: body.tier, lifetime_spend: body.payable });

    const replay = await purchase(as, card.id, { amount: 100_00 }, 'one-1');
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(body);
    expect(Number((await db().selectFrom('purchase').select((eb) => eb.fn.countAll().as('n')).where('card_id', '=', card.id).executeTakeFirstOrThrow()).n)).toBe(1);

    // A redemption goes the same way: both entries, the balance after as answered.
    const spend = await purchase(as, card.id, { amount: 100_00, redeemPoints: 10 }, 'one-2');
    expect(spend.statusCode, spend.body).toBe(201);
    const spent = spend.json();
    expect(spent.redeemed).toBe(10);
    expect(spent.balance).toBe(body.balance - 10 + spent.accrued);
    const spentEntries = await db().selectFrom('ledger_entry').select(['kind', 'points']).where('purchase_id', '=', spent.purchaseId).orderBy('id').execute();
    expect(spentEntries).toEqual([
      { kind: 'redemption', points: -10 },
      { kind: 'accrual', points: spent.accrued },
    ]);
    expect((await db().selectFrom('card').select('balance').where('id', '=', card.id).executeTakeFirstOrThrow()).balance).toBe(spent.balance);
  });

  it('a refusal before any write (no savepoint taken) is stored, replayed, and leaves nothing behind', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'one-statement-refusal');
    const card = await issue(as, '+79161500002');
    const refused = await purchase(as, card.id, { amount: 100_00, redeemPoints: card.balance + 1_000 }, 'refuse-1');
    expect(refused.statusCode, refused.body).toBe(422);
    const code = refused.json().code;
    const record = await db().selectFrom('idempotency_record').select(['status_code']).where('scope', '=', program.id).where('key', '=', 'refuse-1').executeTakeFirstOrThrow();
    expect(record.status_code).toBe(422);
    const again = await purchase(as, card.id, { amount: 100_00, redeemPoints: card.balance + 1_000 }, 'refuse-1');
    expect(again.statusCode).toBe(422);
    expect(again.json().code).toBe(code);
    expect((await db().selectFrom('purchase').select('id').where('card_id', '=', card.id).execute()).length).toBe(0);
    expect((await db().selectFrom('card').select('balance').where('id', '=', card.id).executeTakeFirstOrThrow()).balance).toBe(card.balance);
  });
});
