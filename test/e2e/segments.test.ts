import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// RFM segments on crafted purchase histories: purchases are inserted directly with chosen dates
// relative to the app clock, so every boundary (exactly N days, exactly the threshold) is exact.
const DAY = 86_400_000;
const NOW = new Date('2027-03-15T12:00:00.000Z');

describe(`RFM segments (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let as: Awaited<ReturnType<typeof createProgramWithKeys>>['as'];
  let programId: string;
  const cards = new Map<string, string>();
  let phone = 0;

  beforeAll(async () => {
    t = await startTestApp({ clock: () => NOW, runWorkers: false });
    const created = await createProgramWithKeys(t.app, 'rfm');
    as = created.as;
    programId = created.program.id;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A card enrolled `enrolledDaysAgo` days before NOW with purchases `[daysAgo, amount, status?]`. */
  async function craft(label: string, enrolledDaysAgo: number, purchases: Array<[number, number, ('completed' | 'refunded')?]>) {
    phone += 1;
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/cards',
      headers: as('pos'),
      payload: { holder: { name: label, phone: `+7915${String(1_000_000 + phone).slice(-7)}` }, consent: true },
    });
    expect(res.statusCode).toBe(201);
    const id: string = res.json().id;
    const db = t.database.handle.db;
    await db.updateTable('card').set({ created_at: new Date(NOW.getTime() - enrolledDaysAgo * DAY) }).where('id', '=', id).execute();
    for (const [daysAgo, amount, status] of purchases) {
      await db
        .insertInto('purchase')
        .values({
          program_id: programId,
          card_id: id,
          amount,
          redeemed: 0,
          accrued: 0,
          payable: amount,
          status: status ?? 'completed',
          created_at: new Date(NOW.getTime() - daysAgo * DAY),
        })
        .execute();
    }
    cards.set(label, id);
    return id;
  }

  const segmentOf = async (label: string) => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cards.get(label)}/history`, headers: as('pos') });
    expect(res.statusCode).toBe(200);
    return res.json().stats.segment as string | null;
  };
  const counts = async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/segments', headers: as('marketer') });
    expect(res.statusCode).toBe(200);
    return Object.fromEntries(res.json().segments.map((s: { code: string; cards: number }) => [s.code, s.cards]));
  };

  it('puts every active card in exactly one segment, by the ordered rules, at the exact boundaries', async () => {
    await craft('lost-exact', 400, [[180, 10_000]]);
    await craft('sleeping-179', 400, [[179, 10_000]]);
    await craft('sleeping-exact', 400, [[60, 10_000]]);
    await craft('active-59', 400, [[59, 10_000]]);
    await craft('whale-exact', 400, [[10, 5_000_000]]);
    await craft('whale-minus-1', 400, [[10, 4_999_999]]);
    await craft('core-12', 400, Array.from({ length: 12 }, (_, i): [number, number] => [5 + i * 25, 1_000]));
    await craft('core-11', 400, Array.from({ length: 11 }, (_, i): [number, number] => [5 + i * 25, 1_000]));
    // 11 purchases in the window and one (big) just outside: neither Core nor Whale.
    await craft('window', 500, [...Array.from({ length: 11 }, (_, i): [number, number] => [5 + i * 25, 1_000]), [366, 6_000_000]]);
    await craft('newcomer-29', 29, [[1, 10_000]]);
    await craft('newcomer-30', 30, [[1, 10_000]]);
    await craft('no-purchase-45', 45, []);
    await craft('no-purchase-61', 61, []);
    // A refunded purchase does not count: the last completed one is 100 days old.
    await craft('refunded', 400, [[100, 10_000], [5, 10_000, 'refunded']]);
    // Whales come before Core; recency before both (a lapsed whale is Sleeping).
    await craft('whale-beats-core', 400, Array.from({ length: 12 }, (_, i): [number, number] => [5 + i * 20, 500_000]));
    await craft('lapsed-whale', 400, [[70, 6_000_000]]);
    const blocked = await craft('blocked', 400, [[5, 10_000]]);
    await t.database.handle.db.updateTable('card').set({ status: 'blocked' }).where('id', '=', blocked).execute();

    const expected: Record<string, string | null> = {
      'lost-exact': 'lost',
      'sleeping-179': 'sleeping',
      'sleeping-exact': 'sleeping',
      'active-59': 'loyal',
      'whale-exact': 'whales',
      'whale-minus-1': 'loyal',
      'core-12': 'core',
      'core-11': 'loyal',
      window: 'loyal',
      'newcomer-29': 'newcomers',
      'newcomer-30': 'loyal',
      'no-purchase-45': 'newcomers',
      'no-purchase-61': 'sleeping',
      refunded: 'sleeping',
      'whale-beats-core': 'whales',
      'lapsed-whale': 'sleeping',
      blocked: null,
    };
    for (const [label, segment] of Object.entries(expected)) expect({ label, segment: await segmentOf(label) }).toEqual({ label, segment });

    const res = await t.app.inject({ method: 'GET', url: '/api/v1/segments', headers: as('marketer') });
    const body = res.json();
    expect(body.totalCards).toBe(16);
    expect(body.thresholds).toEqual({ windowDays: 365, newcomerDays: 30, sleepingAfterDays: 60, lostAfterDays: 180, whalesMinSpend: 5_000_000, coreMinPurchases: 12 });
    expect(body.segments.map((s: { code: string }) => s.code)).toEqual(['lost', 'sleeping', 'whales', 'core', 'newcomers', 'loyal']);
    expect(body.segments.find((s: { code: string }) => s.code === 'sleeping').name).toEqual({ ru: 'Сони', en: 'Sleeping' });
    expect(await counts()).toEqual({ lost: 1, sleeping: 5, whales: 2, core: 1, newcomers: 2, loyal: 5 });
  });

  it('moves cards when the program changes its thresholds', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/segments',
      headers: as('marketer'),
      payload: { sleepingAfterDays: 30, lostAfterDays: 90, newcomerDays: 20 },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().thresholds).toMatchObject({ sleepingAfterDays: 30, lostAfterDays: 90, newcomerDays: 20, windowDays: 365 });
    expect(await counts()).toEqual({ lost: 3, sleeping: 5, whales: 2, core: 1, newcomers: 0, loyal: 5 });
    expect(await segmentOf('sleeping-179')).toBe('lost');
    expect(await segmentOf('active-59')).toBe('sleeping');
    expect(await segmentOf('no-purchase-45')).toBe('sleeping');
    expect(await segmentOf('newcomer-29')).toBe('loyal');

    // Back to the defaults: PUT replaces the whole object.
    expect((await t.app.inject({ method: 'PUT', url: '/api/v1/segments', headers: as('admin'), payload: {} })).statusCode).toBe(200);
    expect(await counts()).toEqual({ lost: 1, sleeping: 5, whales: 2, core: 1, newcomers: 2, loyal: 5 });
  });

  it('refuses inconsistent thresholds and other roles', async () => {
    const bad = await t.app.inject({ method: 'PUT', url: '/api/v1/segments', headers: as('marketer'), payload: { lostAfterDays: 50 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('invalid_segments');
    const unknown = await t.app.inject({ method: 'PUT', url: '/api/v1/segments', headers: as('marketer'), payload: { sleepDays: 3 } });
    expect(unknown.statusCode).toBe(400);
    const zero = await t.app.inject({ method: 'PUT', url: '/api/v1/segments', headers: as('marketer'), payload: { coreMinPurchases: 0 } });
    expect(zero.statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/segments', headers: as('pos') })).statusCode).toBe(403);
    // Another program's marketer sees its own (empty) program only.
    const other = await createProgramWithKeys(t.app, 'rfm-other');
    const theirs = await t.app.inject({ method: 'GET', url: '/api/v1/segments', headers: other.as('marketer') });
    expect(theirs.json().totalCards).toBe(0);
  });
});
