import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import type { Notifications } from '../../src/db/notifications.js';

/** Notifications that never arrive: what an instance sees while the listening connection is slow or cut. */
const deaf: Notifications = {
  subscribe: () => () => undefined,
  onReset: () => () => undefined,
  ready: async () => undefined,
  close: async () => undefined,
};

type As = (role: 'pos') => Record<string, string>;
const issue = async (t: TestApp, as: As, phone: string) => {
  const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Cache Holder', phone } } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: string };
};
const purchaseOn = (t: TestApp, as: As, cardId: string, amount: number) =>
  t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: as('pos'), payload: { amount } });

describe(`the purchase's program row is exact without notifications (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false, notifications: deaf });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a purchase right after a rule change made elsewhere accrues by the new rules (the program version is read with the card lock)', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'cache-rules');
    const card = await issue(t, as, '+79161400001');
    const first = await purchaseOn(t, as, card.id, 100_00);
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json().accrued).toBe(5); // 5 % of 100.00
    // Another instance raises the standard tier to 20 %; this instance never hears of it.
    await sql`UPDATE program SET rules = jsonb_set(rules, '{tiers,0,accrualPercent}', '20'::jsonb) WHERE id = ${program.id}`.execute(t.database.handle.db);
    const second = await purchaseOn(t, as, card.id, 100_00);
    expect(second.statusCode, second.body).toBe(201);
    expect(second.json().accrued).toBe(20);
  });
});

// Issue #14: program rows, API keys and webhook endpoint lists are cached in the process. These
// changes are made with plain SQL, as another instance (or an operator) would make them: none of
// this process's own "forget" calls run, so only the database's version (xmin) and its NOTIFY
// triggers can make the app see them.
describe(`hot-path caches stay correct when the rows change elsewhere (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  const db = () => t.database.handle.db;
  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false });
    await t.app.ctx.notifications.ready();
  });
  afterAll(async () => {
    await t?.close();
  });

  const purchase = (as: As, cardId: string, amount: number) => purchaseOn(t, as, cardId, amount);

  it('a key revoked elsewhere stops working (api_key_changed)', async () => {
    const { as, keys } = await createProgramWithKeys(t.app, 'cache-keys');
    const card = await issue(t, as, '+79161400002');
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}`, headers: as('pos') })).statusCode).toBe(200);
    await sql`UPDATE api_key SET revoked_at = now() WHERE key_hash = encode(sha256(convert_to(${keys.pos}, 'UTF8')), 'hex')`.execute(db());
    await waitFor(async () => (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}`, headers: as('pos') })).statusCode === 401, {
      what: 'the revoked key to be refused',
    });
    // And it stays refused (the refusal is not a cache miss that a later hit could undo).
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}`, headers: as('pos') })).statusCode).toBe(401);
  });

  it('a key whose role is changed elsewhere gets the new role', async () => {
    const { as, keys } = await createProgramWithKeys(t.app, 'cache-role');
    const card = await issue(t, as, '+79161400003');
    expect((await purchase(as, card.id, 10_00)).statusCode).toBe(201);
    await sql`UPDATE api_key SET role = 'marketer' WHERE key_hash = encode(sha256(convert_to(${keys.pos}, 'UTF8')), 'hex')`.execute(db());
    await waitFor(async () => (await purchase(as, card.id, 10_00)).statusCode === 403, { what: 'the demoted key to be refused a purchase' });
  });

  it('a webhook endpoint added elsewhere receives the next purchases (webhook_endpoints_changed)', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'cache-webhooks');
    const card = await issue(t, as, '+79161400004');
    expect((await purchase(as, card.id, 10_00)).statusCode).toBe(201); // caches "no endpoints"
    const endpoint = await db()
      .insertInto('webhook_endpoint')
      .values({ program_id: program.id, url: 'https://hooks.example.com/cache', events: ['purchase.created'], secret: 'whsec_cache_test_secret_0123456789abcdef' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await waitFor(
      async () => {
        const res = await purchase(as, card.id, 10_00);
        expect(res.statusCode).toBe(201);
        const delivered = await db()
          .selectFrom('webhook_delivery as d')
          .innerJoin('webhook_event as e', 'e.id', 'd.event_id')
          .select('d.id')
          .where('d.endpoint_id', '=', endpoint.id)
          .where('e.type', '=', 'purchase.created')
          .where(sql<boolean>`e.data ->> 'purchaseId' = ${res.json().purchaseId}`)
          .executeTakeFirst();
        return Boolean(delivered);
      },
      { what: 'a purchase to be delivered to the endpoint added with SQL' },
    );
    // Disabled elsewhere: later purchases no longer go to it.
    await db().updateTable('webhook_endpoint').set({ enabled: false }).where('id', '=', endpoint.id).execute();
    await waitFor(
      async () => {
        const res = await purchase(as, card.id, 10_00);
        const delivered = await db()
          .selectFrom('webhook_delivery as d')
          .innerJoin('webhook_event as e', 'e.id', 'd.event_id')
          .select('d.id')
          .where('d.endpoint_id', '=', endpoint.id)
          .where(sql<boolean>`e.data ->> 'purchaseId' = ${res.json().purchaseId}`)
          .executeTakeFirst();
        return !delivered;
      },
      { what: 'purchases to stop going to the disabled endpoint' },
    );
  });
});
