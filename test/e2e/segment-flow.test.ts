import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Segment movement on crafted histories: purchases with chosen dates around a week of the
// program's time zone (Moscow, UTC+3), against a fixed app clock.
const DAY = 86_400_000;
// Wednesday 17 March 2027: the last closed week is Monday 8 to Sunday 14 March (Moscow).
let now = new Date('2027-03-17T12:00:00Z');
const WEEK_START = new Date('2027-03-07T21:00:00Z'); // Monday 8 March 00:00 in Moscow

describe(`segment movement (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let as: Awaited<ReturnType<typeof createProgramWithKeys>>['as'];
  let programId: string;
  let phone = 0;

  beforeAll(async () => {
    t = await startTestApp({ clock: () => now, runWorkers: false });
    const created = await createProgramWithKeys(t.app, 'flow', { timeZone: 'Europe/Moscow' });
    as = created.as;
    programId = created.program.id;
  });
  afterAll(async () => {
    await t?.close();
  });

  async function card(enrolled: Date, purchases: Date[]) {
    phone += 1;
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: `H${phone}`, phone: `+7918${String(3_000_000 + phone).slice(-7)}` } } });
    const id: string = res.json().id;
    const db = t.database.handle.db;
    await db.updateTable('card').set({ created_at: enrolled }).where('id', '=', id).execute();
    for (const at of purchases) {
      await db.insertInto('purchase').values({ program_id: programId, card_id: id, amount: 10_000, redeemed: 0, accrued: 0, payable: 10_000, created_at: at }).execute();
    }
    return id;
  }

  it('counts the cards that moved between segments in each closed week, once', async () => {
    const before = (days: number) => new Date(WEEK_START.getTime() - days * DAY);
    const during = (days: number) => new Date(WEEK_START.getTime() + days * DAY);
    await card(before(400), [before(70), during(2)]); // Sleeping at the start, bought during the week: Loyal
    await card(during(1), []); // enrolled during the week: new → Newcomers
    await card(before(400), [before(20)]); // Loyal throughout
    await card(before(400), [before(55)]); // Loyal → Sleeping (60 days without a purchase on 12 March)
    await card(before(400), [before(70), during(2)]).then(async (id) => {
      await t.database.handle.db.updateTable('card').set({ status: 'blocked' }).where('id', '=', id).execute(); // blocked: left out
    });

    await t.app.economics.tick();
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/segments/flow?weeks=1', headers: as('marketer') });
    expect(res.statusCode).toBe(200);
    const [week] = res.json().weeks;
    expect(week.weekStart).toBe('2027-03-08');
    expect(week.weekEnd).toBe('2027-03-14');
    const flows = Object.fromEntries(week.flows.map((f: { from: string; to: string; cards: number }) => [`${f.from}→${f.to}`, f.cards]));
    expect(flows).toEqual({ 'sleeping→loyal': 1, 'new→newcomers': 1, 'loyal→loyal': 1, 'loyal→sleeping': 1 });

    // The first run filled the last 12 closed weeks; the next tick computes nothing new.
    const all = (await t.app.inject({ method: 'GET', url: '/api/v1/segments/flow?weeks=52', headers: as('marketer') })).json().weeks;
    expect(all.map((w: { weekStart: string }) => w.weekStart)[0]).toBe('2027-03-08');
    expect(all).toHaveLength(12);
    await t.app.economics.tick();
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/segments/flow?weeks=52', headers: as('marketer') })).json().weeks).toHaveLength(12);
    // A week later, one more week.
    now = new Date(now.getTime() + 7 * DAY);
    await t.app.economics.tick();
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/segments/flow?weeks=52', headers: as('marketer') })).json().weeks).toHaveLength(13);

    expect((await t.app.inject({ method: 'GET', url: '/api/v1/segments/flow', headers: as('pos') })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/segments/flow?weeks=0', headers: as('marketer') })).statusCode).toBe(400);
  });
});
