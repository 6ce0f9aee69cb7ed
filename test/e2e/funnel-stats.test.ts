import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordWalletEvent } from '../../src/enrollment/funnel.js';
import { adminHeaders, createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { cardTokenOf, createTestClock, getPage, newVisitor, openJoinPage, submitJoinForm, type Visitor } from '../support/join-form.js';

const DAY = 86_400_000;

/** ISO week label and its Monday for a calendar day (independent of the SQL under test). */
function isoWeek(day: string): { week: string; weekStart: string } {
  const date = new Date(`${day}T00:00:00Z`);
  const dow = (date.getUTCDay() + 6) % 7; // Monday 0
  const thursday = new Date(date.getTime() + (3 - dow) * DAY);
  const year = thursday.getUTCFullYear();
  const week = Math.ceil(((thursday.getTime() - Date.UTC(year, 0, 1)) / DAY + 1) / 7);
  return { week: `${year}-W${String(week).padStart(2, '0')}`, weekStart: new Date(date.getTime() - dow * DAY).toISOString().slice(0, 10) };
}

/** Europe/Moscow is UTC+3 all year: the calendar day there. */
const moscowDay = (at: number) => new Date(at + 3 * 3_600_000).toISOString().slice(0, 10);

// A scripted sequence of join-page views, enrollments, Apple registrations/unregistrations and
// Google events gives exactly the expected funnel per source and staff member, and the weekly
// staff leaderboard (issue: install funnel).
describe(`install funnel and staff leaderboard (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  // Noon in Moscow today: every scripted "same day" stays on one calendar day; cards are created
  // by the database clock on this same day.
  const today = moscowDay(Date.now());
  const T0 = Date.parse(`${today}T09:00:00Z`);
  const clock = createTestClock(T0);

  beforeAll(async () => {
    t = await startTestApp({ clock: clock.now });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('counts views, cards, installs and removals per source and staff member, and the weekly leaderboard', async () => {
    const { app } = t;
    const db = t.database.handle.db;
    const { program, as } = await createProgramWithKeys(app, 'funnel', { timeZone: 'Europe/Moscow' });
    const other = await createProgramWithKeys(app, 'funnel-other');
    const staffUrl = `/api/v1/programs/${program.id}/staff`;
    const anna = (await app.inject({ method: 'POST', url: staffUrl, headers: as('admin'), payload: { name: 'Анна', role: 'cashier' } })).json();
    const boris = (await app.inject({ method: 'POST', url: staffUrl, headers: adminHeaders, payload: { name: 'Борис', role: 'cashier' } })).json();
    const idle = (await app.inject({ method: 'POST', url: staffUrl, headers: as('admin'), payload: { name: 'Вера', role: 'marketer' } })).json();

    const view = (visitor: Visitor, query: string) => openJoinPage(app, visitor, `/join/funnel${query}`);
    async function enroll(visitor: Visitor, inputs: Record<string, string>, phone: string) {
      clock.advance(2_500);
      const res = await submitJoinForm(app, visitor, 'funnel', inputs, { name: `Holder ${phone}`, phone });
      return db.selectFrom('card').selectAll().where('public_token', '=', cardTokenOf(res)).executeTakeFirstOrThrow();
    }

    // --- Day 0: views and enrollments -------------------------------------------------------
    const v1 = newVisitor();
    const v1page = await view(v1, `?staff=${anna.id}&source=till`);
    await view(v1, `?staff=${anna.id}&source=till`); // same visitor, same day: not counted again
    const A = await enroll(v1, v1page.inputs, '+79180000001');

    const v2 = newVisitor();
    const v2page = await view(v2, `?staff=${anna.id}&utm_source=till`);
    const B = await enroll(v2, v2page.inputs, '+79180000002');
    clock.advance(2_500);
    await submitJoinForm(app, v2, 'funnel', v2page.inputs, { name: 'B again', phone: '+79180000002' }); // known phone: no new card

    const v3 = newVisitor();
    const v3page = await view(v3, `?staff=${boris.id}&source=poster`);
    await view(v3, '?source=vk'); // same visitor, same day, other link: the first view's attribution stays
    const C = await enroll(v3, v3page.inputs, '+79180000003');

    const v4 = newVisitor();
    const D = await enroll(v4, (await view(v4, '?utm_source=instagram')).inputs, '+79180000004');
    const v5 = newVisitor();
    await view(v5, '?utm_source=Instagram'); // tags are case-insensitive; v5 never enrolls
    await view(newVisitor(), '?source=vk');
    await view(newVisitor({ userAgent: 'TelegramBot (like TwitterBot)' }), '?source=vk'); // link preview: not a visitor
    await app.inject({ method: 'HEAD', url: '/join/funnel?source=vk', headers: { 'user-agent': 'Mozilla/5.0' } }); // not a view
    const v8 = newVisitor();
    const E = await enroll(v8, (await view(v8, `?ref=${A.referral_code}`)).inputs, '+79180000005');
    const v9 = newVisitor();
    await view(v9, '?staff=not-a-staff-id'); // invalid staff: no attribution
    const F = (await app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'API', phone: '+79180000006' } } })).json();
    await getPage(app, newVisitor(), '/join/funnel-other?source=till'); // another program
    await app.inject({ method: 'POST', url: '/api/v1/cards', headers: other.as('pos'), payload: { holder: { name: 'Other', phone: '+79180000001' } } });

    expect(E.referred_by).toBe(A.id);
    expect([A.staff_id, B.staff_id, C.staff_id, D.staff_id, E.staff_id]).toEqual([anna.id, anna.id, boris.id, null, null]);
    expect([A.source, B.source, C.source, D.source, E.source, F.source]).toEqual(['till', 'till', 'poster', 'instagram', 'referral', null]);

    // Apple: A on two devices, both removed (one removal), B and E later.
    const ptid = t.material.passTypeIdentifier;
    const registration = (card: { apple_serial: string; apple_auth_token: string }, device: string, method: 'POST' | 'DELETE') =>
      app.inject({
        method,
        url: `/apple/v1/devices/${device}/registrations/${ptid}/${card.apple_serial}`,
        headers: { authorization: `ApplePass ${card.apple_auth_token}` },
        ...(method === 'POST' ? { payload: { pushToken: device.replace(/\W/g, '').padEnd(64, '0') } } : {}),
      });
    expect((await registration(A, 'dev-a1', 'POST')).statusCode).toBe(201); // installed (week 0)
    expect((await registration(A, 'dev-a2', 'POST')).statusCode).toBe(201); // second device: nothing
    expect((await registration(A, 'dev-a2', 'POST')).statusCode).toBe(200); // token refresh: nothing
    expect((await registration(A, 'dev-a1', 'DELETE')).statusCode).toBe(200); // one device left: nothing
    expect((await registration(A, 'dev-a2', 'DELETE')).statusCode).toBe(200); // last one: removed
    expect((await registration(A, 'dev-a2', 'DELETE')).statusCode).toBe(200); // already gone: nothing

    // --- Day 1: v1 comes back (a new day, counted again); v5 twice in one day (once) ------------
    clock.set(T0 + DAY);
    await view(v1, `?staff=${anna.id}&source=till`);

    // --- Week 1 ---------------------------------------------------------------------------------
    clock.set(T0 + 7 * DAY);
    expect((await registration(A, 'dev-a3', 'POST')).statusCode).toBe(201); // installed again, not a first install
    await recordWalletEvent(db, { programId: program.id, cardId: C.id, wallet: 'google', kind: 'installed', at: clock.now() });

    // --- Week 2 ---------------------------------------------------------------------------------
    clock.set(T0 + 14 * DAY);
    expect((await registration(B, 'dev-b1', 'POST')).statusCode).toBe(201);
    await db.transaction().execute(async (trx) => {
      await recordWalletEvent(trx, { programId: program.id, cardId: D.id, wallet: 'google', kind: 'installed', at: clock.now() });
      await recordWalletEvent(trx, { programId: program.id, cardId: D.id, wallet: 'google', kind: 'removed', at: clock.now() });
    });
    expect((await registration(E, 'dev-e1', 'POST')).statusCode).toBe(201);

    // --- The report -------------------------------------------------------------------------------
    const from = today;
    const to = moscowDay(T0 + 15 * DAY);
    const res = await app.inject({ method: 'GET', url: `/api/v1/stats?from=${from}&to=${to}`, headers: as('marketer') });
    expect(res.statusCode).toBe(200);
    const stats = res.json();

    expect(stats).toMatchObject({ from, to, timeZone: 'Europe/Moscow' });
    expect(stats.totals).toEqual({ views: 9, cardsIssued: 6, cardsInstalled: 5, viewToCard: 0.6667, cardToInstall: 0.8333, viewToInstall: 0.5556 });
    expect(stats.wallets).toEqual({ apple: { installs: 4, removals: 1 }, google: { installs: 2, removals: 1 } });

    const bySource = Object.fromEntries(stats.bySource.map((row: { source: string | null }) => [String(row.source), row]));
    expect(bySource).toEqual({
      till: { source: 'till', views: 3, cardsIssued: 2, cardsInstalled: 2, viewToCard: 0.6667, cardToInstall: 1, viewToInstall: 0.6667 },
      poster: { source: 'poster', views: 1, cardsIssued: 1, cardsInstalled: 1, viewToCard: 1, cardToInstall: 1, viewToInstall: 1 },
      instagram: { source: 'instagram', views: 2, cardsIssued: 1, cardsInstalled: 1, viewToCard: 0.5, cardToInstall: 1, viewToInstall: 0.5 },
      vk: { source: 'vk', views: 1, cardsIssued: 0, cardsInstalled: 0, viewToCard: 0, cardToInstall: null, viewToInstall: 0 },
      referral: { source: 'referral', views: 1, cardsIssued: 1, cardsInstalled: 1, viewToCard: 1, cardToInstall: 1, viewToInstall: 1 },
      null: { source: null, views: 1, cardsIssued: 1, cardsInstalled: 0, viewToCard: 1, cardToInstall: 0, viewToInstall: 0 },
    });
    expect(stats.bySource[0].source).toBe('till'); // most views first

    const byStaff = Object.fromEntries(stats.byStaff.map((row: { staffId: string | null }) => [String(row.staffId), row]));
    expect(byStaff).toEqual({
      [anna.id]: { staffId: anna.id, name: 'Анна', deleted: false, views: 3, cardsIssued: 2, cardsInstalled: 2, viewToCard: 0.6667, cardToInstall: 1, viewToInstall: 0.6667 },
      [boris.id]: { staffId: boris.id, name: 'Борис', deleted: false, views: 1, cardsIssued: 1, cardsInstalled: 1, viewToCard: 1, cardToInstall: 1, viewToInstall: 1 },
      [idle.id]: { staffId: idle.id, name: 'Вера', deleted: false, views: 0, cardsIssued: 0, cardsInstalled: 0, viewToCard: null, cardToInstall: null, viewToInstall: null },
      null: { staffId: null, name: null, deleted: false, views: 5, cardsIssued: 3, cardsInstalled: 2, viewToCard: 0.6, cardToInstall: 0.6667, viewToInstall: 0.4 },
    });

    // First installs only, by the enrolling staff member and the ISO week of the first install.
    const week = (offsetDays: number) => isoWeek(moscowDay(T0 + offsetDays * DAY));
    expect(stats.leaderboard).toEqual([
      { ...week(0), staff: [{ rank: 1, staffId: anna.id, name: 'Анна', installs: 1 }] },
      { ...week(7), staff: [{ rank: 1, staffId: boris.id, name: 'Борис', installs: 1 }] },
      { ...week(14), staff: [{ rank: 1, staffId: anna.id, name: 'Анна', installs: 1 }] },
    ]);

    // A narrower period: only week 0. Cohort: the same cards, installed by the end of day 0.
    const day0 = (await app.inject({ method: 'GET', url: `/api/v1/stats?from=${from}&to=${from}`, headers: as('admin') })).json();
    expect(day0.totals).toMatchObject({ views: 8, cardsIssued: 6, cardsInstalled: 1 });
    expect(day0.wallets).toEqual({ apple: { installs: 1, removals: 1 }, google: { installs: 0, removals: 0 } });
    expect(day0.leaderboard).toEqual([{ ...week(0), staff: [{ rank: 1, staffId: anna.id, name: 'Анна', installs: 1 }] }]);

    // A deleted staff member stays in the figures, marked.
    await app.inject({ method: 'DELETE', url: `${staffUrl}/${boris.id}`, headers: as('admin') });
    const afterDelete = (await app.inject({ method: 'GET', url: `/api/v1/stats?from=${from}&to=${to}`, headers: as('marketer') })).json();
    expect(afterDelete.byStaff.find((row: { staffId: string }) => row.staffId === boris.id)).toMatchObject({ name: 'Борис', deleted: true, cardsInstalled: 1 });
    expect(afterDelete.leaderboard[1].staff[0]).toMatchObject({ staffId: boris.id, installs: 1 });

    // The other program sees only its own figures.
    const otherStats = (await app.inject({ method: 'GET', url: `/api/v1/stats?from=${from}&to=${to}`, headers: other.as('marketer') })).json();
    expect(otherStats.totals).toMatchObject({ views: 1, cardsIssued: 1, cardsInstalled: 0 });
    expect(otherStats.byStaff).toEqual([expect.objectContaining({ staffId: null, views: 1, cardsIssued: 1 })]);
  });

  it('guards /stats: marketer or admin program key, sane periods', async () => {
    const { as } = await createProgramWithKeys(t.app, 'funnel-auth');
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/stats', headers: as('pos') })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/stats', headers: adminHeaders })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/stats' })).statusCode).toBe(401);
    const defaults = await t.app.inject({ method: 'GET', url: '/api/v1/stats', headers: as('marketer') });
    expect(defaults.statusCode).toBe(200);
    const { from, to } = defaults.json();
    expect((Date.parse(to) - Date.parse(from)) / DAY).toBe(29);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/stats?from=2026-02-01&to=2026-01-01', headers: as('marketer') })).json().code).toBe('invalid_period');
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/stats?from=2024-01-01&to=2026-01-01', headers: as('marketer') })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/stats?from=yesterday', headers: as('marketer') })).statusCode).toBe(400);
  });
});
