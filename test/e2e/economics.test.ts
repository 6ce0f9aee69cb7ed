import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Program economics on a crafted history with known answers. The program's time zone is Moscow
// (UTC+3), and some rows sit on purpose just before or after a local midnight, so a UTC day or
// month would put them in the wrong bucket. Every figure is computed three ways that must agree:
// live from the raw tables (no rollup yet), with the closed days and months of 15 March rolled up,
// and with March closed too (clock on 20 April).
const MARCH_15 = new Date('2026-03-15T12:00:00.000Z');
const APRIL_20 = new Date('2026-04-20T12:00:00.000Z');

type Kind = 'welcome' | 'referral' | 'accrual' | 'redemption' | 'reversal' | 'birthday' | 'adjustment' | 'expiry' | 'campaign_bonus';

describe(`program economics (${TEST_DATABASE_KIND} database)`, () => {
  let now = MARCH_15;
  let t: TestApp;
  let as: Awaited<ReturnType<typeof createProgramWithKeys>>['as'];
  let programId: string;
  const card: Record<string, string> = {};
  let phone = 0;

  beforeAll(async () => {
    t = await startTestApp({ clock: () => now, runWorkers: false });
    const created = await createProgramWithKeys(t.app, 'econ', { timeZone: 'Europe/Moscow' });
    as = created.as;
    programId = created.program.id;
    const db = t.database.handle.db;

    async function makeCard(label: string, createdAt: string, tier: string) {
      phone += 1;
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/cards',
        headers: as('pos'),
        payload: { holder: { name: label, phone: `+7916${String(2_000_000 + phone).slice(-7)}` }, consent: true },
      });
      expect(res.statusCode).toBe(201);
      const id: string = res.json().id;
      // The crafted ledger below replaces what enrollment wrote.
      await db.deleteFrom('ledger_entry').where('card_id', '=', id).execute();
      await db.updateTable('card').set({ created_at: new Date(createdAt), tier }).where('id', '=', id).execute();
      card[label] = id;
    }
    const ledger = (label: string, kind: Kind, points: number, at: string, purchaseId: string | null = null) =>
      db.insertInto('ledger_entry').values({ program_id: programId, card_id: card[label]!, kind, points, actor: 'test', purchase_id: purchaseId, created_at: new Date(at) }).execute();
    const purchase = async (label: string, at: string, amount: number, redeemed: number, accrued: number, refundedAt?: string) => {
      const row = await db
        .insertInto('purchase')
        .values({
          program_id: programId,
          card_id: card[label]!,
          amount,
          redeemed,
          accrued,
          payable: amount - redeemed * 100,
          status: refundedAt ? 'refunded' : 'completed',
          refunded_at: refundedAt ? new Date(refundedAt) : null,
          created_at: new Date(at),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (redeemed > 0) await ledger(label, 'redemption', -redeemed, at, row.id);
      if (accrued > 0) await ledger(label, 'accrual', accrued, at, row.id);
      if (refundedAt) {
        if (redeemed > 0) await ledger(label, 'reversal', redeemed, refundedAt, row.id);
        if (accrued > 0) await ledger(label, 'reversal', -accrued, refundedAt, row.id);
      }
    };

    await makeCard('A', '2026-01-10T10:00:00Z', 'standard');
    await makeCard('B', '2026-01-31T22:30:00Z', 'standard'); // 1 February 01:30 in Moscow: the February cohort
    await makeCard('C', '2026-02-15T12:00:00Z', 'general');
    await ledger('A', 'welcome', 1000, '2026-01-10T10:00:00Z');
    await ledger('B', 'welcome', 1000, '2026-01-31T22:30:00Z');
    await ledger('C', 'welcome', 1000, '2026-02-15T12:00:00Z');
    await ledger('C', 'referral', 3000, '2026-02-15T12:00:00Z');
    await purchase('A', '2026-01-20T09:00:00Z', 100_000, 0, 50);
    await purchase('A', '2026-02-05T10:00:00Z', 200_000, 300, 85);
    await purchase('B', '2026-02-28T21:30:00Z', 50_000, 0, 25); // 1 March 00:30 in Moscow
    await purchase('C', '2026-02-20T12:00:00Z', 300_000, 1000, 200, '2026-03-02T12:00:00Z'); // refunded in March
    await purchase('C', '2026-03-05T12:00:00Z', 100_000, 0, 100);
    await ledger('B', 'birthday', 500, '2026-03-03T12:00:00Z');
    await ledger('C', 'adjustment', -100, '2026-03-06T12:00:00Z');
    await ledger('A', 'expiry', -835, '2026-03-10T12:00:00Z'); // all of A's points
    // Balances and lifetime spend as the ledger and the purchases say.
    for (const [label, spend] of [['A', 270_000], ['B', 50_000], ['C', 100_000]] as const) {
      const sum = await db.selectFrom('ledger_entry').select((eb) => eb.fn.sum<number>('points').as('s')).where('card_id', '=', card[label]!).executeTakeFirstOrThrow();
      await db.updateTable('card').set({ balance: Number(sum.s), lifetime_spend: spend }).where('id', '=', card[label]!).execute();
    }
    // Pending bonuses of a self-service card (not in the ledger): B's still pending, C's released before the end of the period.
    await db.insertInto('pending_bonus').values({ program_id: programId, card_id: card.B!, kind: 'welcome', points: 700, actor: 'test', created_at: new Date('2026-02-02T10:00:00Z') }).execute();
    await db
      .insertInto('pending_bonus')
      .values({ program_id: programId, card_id: card.C!, kind: 'welcome', points: 400, actor: 'test', created_at: new Date('2026-02-15T12:00:00Z'), released_at: new Date('2026-03-01T12:00:00Z') })
      .execute();
    for (const [at, amount] of [['2026-02-10T12:00:00Z', 100_000], ['2026-03-01T20:59:00Z', 50_000], ['2026-02-28T21:00:00Z', 25_000]] as const) {
      await db.insertInto('anonymous_check').values({ program_id: programId, amount, created_at: new Date(at) }).execute();
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  const report = async (query = 'from=2026-01-01&to=2026-03-15&groupBy=month') => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/economics?${query}`, headers: as('marketer') });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };

  /** The known answers (worked out by hand in docs/economics.md's terms). */
  function expectKnownAnswers(r: any) {
    expect(r.timeZone).toBe('Europe/Moscow');
    expect(r.liability).toEqual({
      openingPoints: 0,
      openingValue: 0,
      closingPoints: 5525,
      closingValue: 552_500,
      changePoints: 5525,
      changeValue: 552_500,
      // B's 700 pending points (not spendable) are shown apart, not owed; C's were released on 1 March.
      pendingPoints: 700,
      pendingValue: 70_000,
    });
    expect(r.points).toMatchObject({
      issued: 6960,
      reversed: 200,
      redeemed: 1300,
      returned: 1000,
      expired: 835,
      adjustedOut: 100,
      net: 5525,
      netIssued: 6760,
      netRedeemed: 300,
      redemptionRate: 0.0444,
      breakageRate: 0.1235,
      issuedByKind: { welcome: 3000, referral: 3000, accrual: 460, birthday: 500 },
      expiredValue: 83_500,
    });
    expect(r.periods.map((p: any) => [p.key, p.liabilityPoints, p.issued, p.redeemed, p.expired, p.net])).toEqual([
      ['2026-01-01', 1050, 1050, 0, 0, 1050],
      ['2026-02-01', 5035, 5285, 1300, 0, 3985],
      ['2026-03-01', 5525, 625, 0, 835, 490],
    ]);
    expect(r.sales).toEqual({
      purchases: 5,
      amount: 750_000,
      paid: 620_000,
      refunds: 1,
      refundedAmount: 300_000,
      revenue: 450_000,
      paidNet: 420_000,
      averageCheck: 150_000,
      nonMemberChecks: 3,
      nonMemberAmount: 175_000,
      memberShare: 0.72,
      cardsEnrolled: 3,
    });
    expect(r.periods.map((p: any) => [p.purchases, p.amount, p.revenue, p.nonMemberAmount, p.memberShare, p.cardsEnrolled])).toEqual([
      [1, 100_000, 100_000, 0, null, 1],
      [2, 500_000, 500_000, 100_000, 0.8333, 2],
      // The refund of a February purchase lands in March: March's revenue is negative, its share unknown.
      [2, 150_000, -150_000, 75_000, null, 0],
    ]);
    expect(r.members).toEqual({
      firstMonth: '2026-01',
      lastMonth: '2026-03',
      averageActiveMembers: 2,
      frequency: 1,
      returningShare: 0.4,
      repeatRate: 0.6667,
      months: [
        { month: '2026-01', activeMembers: 1, newBuyers: 1, returningMembers: 0, purchases: 1, frequency: 1, everBuyers: 1, repeatBuyers: 0, repeatRate: 0 },
        { month: '2026-02', activeMembers: 2, newBuyers: 1, returningMembers: 1, purchases: 2, frequency: 1, everBuyers: 2, repeatBuyers: 1, repeatRate: 0.5 },
        { month: '2026-03', activeMembers: 2, newBuyers: 1, returningMembers: 1, purchases: 2, frequency: 1, everBuyers: 3, repeatBuyers: 2, repeatRate: 0.6667 },
      ],
    });
    expect(r.cohorts).toEqual([
      { cohort: '2026-01', cards: 1, active: [1, 1, 0], retention: [1, 1, 0], paid: [100_000, 170_000, 0], cltv: [100_000, 270_000, 270_000] },
      { cohort: '2026-02', cards: 2, active: [1, 2], retention: [0.5, 1], paid: [200_000, -50_000], cltv: [100_000, 75_000] },
      { cohort: '2026-03', cards: 0, active: [0], retention: [null], paid: [0], cltv: [0] },
    ]);
    const months = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 86_400_000 / 30.436875;
    const standardTenure = months('2026-01-10T10:00:00Z', r.asOf) + months('2026-01-31T22:30:00Z', r.asOf);
    const generalTenure = months('2026-02-15T12:00:00Z', r.asOf);
    expect(r.cltvByTier).toEqual([
      { tier: 'standard', name: { ru: 'Стандартная', en: 'Standard' }, cards: 2, lifetimeSpend: 320_000, valuePerCard: 160_000, tenureMonths: Math.round((standardTenure / 2) * 10) / 10, valuePerCardMonth: Math.round(320_000 / standardTenure) },
      { tier: 'general', name: { ru: 'Генеральная', en: 'General' }, cards: 1, lifetimeSpend: 100_000, valuePerCard: 100_000, tenureMonths: Math.round(generalTenure * 10) / 10, valuePerCardMonth: Math.round(100_000 / generalTenure) },
    ]);
    const cost = Object.fromEntries(r.programCost.byKind.map((k: any) => [k.kind, k]));
    expect(cost.welcome).toEqual({ kind: 'welcome', points: 3000, value: 300_000, cards: 3, revenueOfCards: 300_000, costShare: 1 });
    expect(cost.referral).toEqual({ kind: 'referral', points: 3000, value: 300_000, cards: 1, revenueOfCards: 200_000, costShare: 1.5 });
    expect(cost.birthday).toEqual({ kind: 'birthday', points: 500, value: 50_000, cards: 1, revenueOfCards: 50_000, costShare: 1 });
    expect(cost.campaign_bonus).toMatchObject({ points: 0, cards: 0, costShare: null });
    expect(cost.accrual).toEqual({ kind: 'accrual', points: 460, value: 46_000, cards: 5, revenueOfCards: 420_000, costShare: 0.1095 });
    expect(r.programCost).toMatchObject({ issuedValue: 676_000, redeemedValue: 30_000, memberRevenue: 420_000, costShare: 1.6095 });
  }

  it('computes the known answers live, with days and months rolled up, and with March closed', async () => {
    now = MARCH_15;
    const live = await report();
    expectKnownAnswers(live);
    expect(await t.database.handle.db.selectFrom('economics_day').select('day').execute()).toEqual([]);

    const rolled = await t.app.economics.rollup.run();
    expect(rolled).toEqual({ days: 64, months: 2 }); // 10 January to 14 March; January and February
    const afterRollup = await report();
    expectKnownAnswers(afterRollup);
    expect(afterRollup).toEqual(live);
    // The open month's per-card rows are there; the closed months' are gone into their rollups.
    const open = await sql<{ m: string }>`SELECT DISTINCT to_char(month, 'YYYY-MM') AS m FROM economics_card_month`.execute(t.database.handle.db);
    expect(open.rows).toEqual([{ m: '2026-03' }]);

    now = APRIL_20;
    expect(await t.app.economics.rollup.run()).toEqual({ days: 36, months: 1 });
    const closed = await report();
    expectKnownAnswers(closed);
    expect({ ...closed, asOf: null, cltvByTier: null }).toEqual({ ...live, asOf: null, cltvByTier: null });
  });

  it('buckets by week and by day in the program time zone', async () => {
    now = MARCH_15;
    const weeks = await report('from=2026-02-23&to=2026-03-08&groupBy=week');
    expect(weeks.periods.map((p: any) => [p.key, p.start, p.end, p.purchases, p.nonMemberAmount, p.refunds ?? null])).toEqual([
      ['2026-02-23', '2026-02-23', '2026-03-01', 1, 75_000, null], // B's purchase and two checks: Sunday 1 March, Moscow
      ['2026-03-02', '2026-03-02', '2026-03-08', 1, 0, null],
    ]);
    const days = await report('from=2026-02-28&to=2026-03-01&groupBy=day');
    expect(days.periods.map((p: any) => [p.key, p.purchases, p.amount, p.nonMemberAmount])).toEqual([
      ['2026-02-28', 0, 0, 0],
      ['2026-03-01', 1, 50_000, 75_000],
    ]);
    // A period that starts inside a bucket: the first bucket is clipped, the liability still counts everything before.
    const clipped = await report('from=2026-02-06&to=2026-02-28&groupBy=month');
    expect(clipped.liability.openingPoints).toBe(1000 + 50 + 1000 - 300 + 85);
    expect(clipped.periods).toHaveLength(1);
    expect(clipped.periods[0]).toMatchObject({ key: '2026-02-01', start: '2026-02-06', end: '2026-02-28', issued: 4200, redeemed: 1000 });
  });

  it('exports each table as CSV, money in major units', async () => {
    now = MARCH_15;
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/economics.csv?from=2026-01-01&to=2026-03-15&table=periods', headers: as('admin') });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('attachment; filename="economics-periods-2026-01-01-2026-03-15.csv"');
    const lines = res.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'period,start,end,liability_points,liability_value,issued,redeemed,returned,reversed,expired,adjusted_out,purchases,amount,revenue,average_check,non_member_amount,member_share,cards_enrolled',
    );
    expect(lines[3]).toBe('2026-03-01,2026-03-01,2026-03-15,5525,5525.00,625,0,1000,200,835,100,2,1500.00,-1500.00,750.00,750.00,,0');
    const cohorts = await t.app.inject({ method: 'GET', url: '/api/v1/economics.csv?from=2026-01-01&to=2026-03-15&table=cohorts', headers: as('marketer') });
    expect(cohorts.body.split('\r\n').slice(0, 3)).toEqual(['cohort,cards,months_since,active,retention,paid,cltv', '2026-01,1,0,1,1,1000.00,1000.00', '2026-01,1,1,1,1,1700.00,2700.00']);
    for (const table of ['summary', 'members', 'cltv-tiers', 'program-cost']) {
      const r = await t.app.inject({ method: 'GET', url: `/api/v1/economics.csv?table=${table}`, headers: as('marketer') });
      expect(r.statusCode).toBe(200);
      expect(r.body.split('\r\n').length).toBeGreaterThan(2);
    }
  });

  it('refuses bad periods and other roles, changing nothing', async () => {
    for (const query of ['from=2026-03-10&to=2026-03-01', 'from=2020-01-01&to=2026-03-01', 'from=2025-01-01&to=2026-03-01&groupBy=day', 'from=2026-02-30', 'from=0000-01-01']) {
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/economics?${query}`, headers: as('marketer') });
      expect(res.statusCode, query).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/economics?groupBy=year', headers: as('marketer') })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/economics', headers: as('pos') })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/economics' })).statusCode).toBe(401);
  });
});

describe(`economics through the API (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let as: Awaited<ReturnType<typeof createProgramWithKeys>>['as'];

  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false });
    as = (await createProgramWithKeys(t.app, 'econ-api')).as;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a purchase, a refund and a non-member check: liability equals the balances, revenue nets the refund', async () => {
    const issued = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Пётр', phone: '+79161112233' } } });
    const cardId = issued.json().id;
    const buy = (amount: number, redeemPoints = 0) =>
      t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: as('pos'), payload: { amount, redeemPoints } });
    const first = await buy(100_000, 300);
    expect(first.statusCode).toBe(201);
    expect((await buy(50_000)).statusCode).toBe(201);
    const refund = await t.app.inject({ method: 'POST', url: `/api/v1/purchases/${first.json().purchaseId}/refund`, headers: as('pos') });
    expect(refund.statusCode).toBe(200);

    const check = (payload: Record<string, unknown>, key?: string) =>
      t.app.inject({ method: 'POST', url: '/api/v1/checks', headers: { ...as('pos'), ...(key ? { 'idempotency-key': key } : {}) }, payload });
    const created = await check({ amount: 40_000, receiptId: 'till-1-0001', storeId: 'main' }, 'chk-1');
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ amount: 40_000, receiptId: 'till-1-0001', storeId: 'main' });
    const replay = await check({ amount: 40_000, receiptId: 'till-1-0001', storeId: 'main' }, 'chk-1');
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(created.json());
    expect((await check({ amount: 40_000, receiptId: 'till-1-0001' })).statusCode).toBe(409);
    // A receipt recorded as a member's purchase is not a non-member check too.
    const receipt = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: as('pos'), payload: { amount: 1000, receiptId: 'till-1-0002' } });
    expect(receipt.statusCode).toBe(201);
    expect((await check({ amount: 1000, receiptId: 'till-1-0002' })).json().code).toBe('receipt_already_recorded');
    for (const bad of [{ amount: 0 }, { amount: -5 }, { amount: 1.5 }, { amount: 100, extra: 1 }, {}]) {
      const res = await check(bad);
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
    }
    expect((await check({ amount: 100 }, undefined)).statusCode).toBe(201);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/checks', headers: as('marketer'), payload: { amount: 100 } })).statusCode).toBe(403);
    const checks = await t.database.handle.db.selectFrom('anonymous_check').select(['amount']).execute();
    expect(checks.map((c) => Number(c.amount)).sort((a, b) => a - b)).toEqual([100, 40_000]);

    const r = (await t.app.inject({ method: 'GET', url: '/api/v1/economics', headers: as('admin') })).json();
    const balance = (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}`, headers: as('pos') })).json().balance;
    expect(r.liability.closingPoints).toBe(balance);
    expect(r.sales).toMatchObject({ purchases: 3, amount: 151_000, refunds: 1, refundedAmount: 100_000, revenue: 51_000, nonMemberChecks: 2, nonMemberAmount: 40_100 });
    expect(r.points).toMatchObject({ redeemed: 300, returned: 300, netRedeemed: 0 });
    expect(r.points.issuedByKind.welcome).toBe(1000);
  });
});
