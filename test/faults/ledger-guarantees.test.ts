import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { cardTokenOf, createTestClock, newVisitor, openJoinPage, submitJoinForm } from '../support/join-form.js';
import { RETENTION_QUEUE, RETENTION_SCHEDULE } from '../../src/jobs/retention.js';

// Issue #11, parts 2 and 6: what a refund takes back, who may mint campaign points, what counts as
// activity for points expiry, and the retention of idempotency records.
describe(`ledger guarantees (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  const clock = createTestClock();
  beforeAll(async () => {
    t = await startTestApp({ clock: clock.now, env: { IDEMPOTENCY_RETENTION_DAYS: '10' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const db = () => t.database.handle.db;
  type As = Awaited<ReturnType<typeof createProgramWithKeys>>['as'];
  const DAY = 86_400_000;
  const card = (id: string) => db().selectFrom('card').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const issue = async (as: As, phone: string, extra: Record<string, unknown> = {}) => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Holder', phone }, ...extra } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; referralCode: string; balance: number };
  };
  const purchase = async (as: As, cardId: string, payload: Record<string, unknown>) => {
    const res = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: { ...as('pos'), 'idempotency-key': `p-${Math.random()}` }, payload });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  };
  const adjust = async (as: As, cardId: string, points: number) => {
    const res = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/adjustments`, headers: { ...as('admin'), 'idempotency-key': `a-${Math.random()}` }, payload: { points, reason: 'test' } });
    expect(res.statusCode, res.body).toBe(201);
  };
  const refund = (as: As, purchaseId: string, key = `r-${Math.random()}`) =>
    t.app.inject({ method: 'POST', url: `/api/v1/purchases/${purchaseId}/refund`, headers: { ...as('pos'), 'idempotency-key': key } });
  async function expectBalancesEqualLedger() {
    const { rows } = await sql<{ id: string; balance: number; ledger: number }>`
      SELECT c.id, c.balance, coalesce((SELECT sum(points) FROM ledger_entry e WHERE e.card_id = c.id), 0)::bigint AS ledger FROM card c
    `.execute(db());
    for (const row of rows) expect(Number(row.ledger), row.id).toBe(Number(row.balance));
  }

  it('takes back both referral bonuses of a first purchase when it is refunded, reporting what was already spent', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'refund-referral');
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/programs/${program.id}`,
      headers: adminHeaders,
      payload: { rules: { ...program.rules, referral: { ...program.rules.referral, grantOn: 'first_purchase' } } },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const inviter = await issue(as, '+79161110001');
    const invitee = await issue(as, '+79161110002', { referralCode: inviter.referralCode });
    const first = await purchase(as, invitee.id, { amount: 100_000 });
    expect(first.balance).toBe(1000 + 50 + 3000);
    expect((await card(inviter.id)).balance).toBe(1000 + 3000);
    expect(await db().selectFrom('referral').select(['status', 'purchase_id', 'inviter_points', 'invitee_points']).where('invitee_card_id', '=', invitee.id).executeTakeFirstOrThrow()).toEqual({
      status: 'paid',
      purchase_id: first.purchaseId,
      inviter_points: 3000,
      invitee_points: 3000,
    });
    // Both spend most of it before the refund.
    await adjust(as, inviter.id, -3500);
    await adjust(as, invitee.id, -3000);

    const res = await refund(as, first.purchaseId);
    expect(res.statusCode, res.body).toBe(200);
    // Invitee: 1,050 left; the accrual (50) and 1,000 of the referral bonus come back, 2,000 were spent.
    expect(res.json()).toMatchObject({
      pointsReturned: 0,
      pointsReversed: 50 + 1000,
      bonusesReversed: 1000,
      shortfall: 2000,
      referral: { inviterCardId: inviter.id, pointsReversed: 500, shortfall: 2500 },
      balance: 0,
    });
    expect((await card(invitee.id)).balance).toBe(0);
    expect((await card(inviter.id)).balance).toBe(0);
    const stored = await db().selectFrom('purchase').select(['status', 'refund_shortfall']).where('id', '=', first.purchaseId).executeTakeFirstOrThrow();
    expect(stored).toEqual({ status: 'refunded', refund_shortfall: 2000 + 2500 });
    expect((await db().selectFrom('referral').select('status').where('invitee_card_id', '=', invitee.id).executeTakeFirstOrThrow()).status).toBe('reversed');
    // The next purchase is no first purchase: no referral again.
    const second = await purchase(as, invitee.id, { amount: 100_000 });
    expect(second.balance).toBe(50);
    expect((await card(inviter.id)).balance).toBe(0);
    await expectBalancesEqualLedger();
  });

  it('takes back the bonuses a self-service first purchase released, and the inviter\'s referral paid with them', async () => {
    const { as } = await createProgramWithKeys(t.app, 'refund-selfservice');
    const inviter = await issue(as, '+79161120001');
    const visitor = newVisitor();
    const { inputs } = await openJoinPage(t.app, visitor, `/join/refund-selfservice?ref=${inviter.referralCode}`);
    clock.advance(2_500);
    const token = cardTokenOf(await submitJoinForm(t.app, visitor, 'refund-selfservice', inputs, { name: 'Newcomer', phone: '+79161120002' }));
    const newcomer = await db().selectFrom('card').selectAll().where('public_token', '=', token).executeTakeFirstOrThrow();
    const first = await purchase(as, newcomer.id, { amount: 10_000 });
    expect(first.balance).toBe(5 + 1000 + 3000);
    expect((await card(inviter.id)).balance).toBe(4000);

    const res = await refund(as, first.purchaseId);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ pointsReversed: 5 + 4000, bonusesReversed: 4000, shortfall: 0, referral: { inviterCardId: inviter.id, pointsReversed: 3000, shortfall: 0 }, balance: 0 });
    expect((await card(inviter.id)).balance).toBe(1000);
    await expectBalancesEqualLedger();
  });

  it('lets a marketer grant campaign and birthday bonuses only within the program cap an admin sets', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'bonus-cap');
    expect(program.rules.campaignBonusCap).toBe(1000);
    const create = (role: 'admin' | 'marketer', bonusPoints: number) =>
      t.app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: as(role), payload: { name: `Bonus ${bonusPoints}`, message: { ru: 'Подарок', en: 'A gift' }, audience: { all: true }, bonusPoints } });
    const minted = await create('marketer', 1_000_000);
    expect(minted.statusCode).toBe(403);
    expect(minted.json()).toMatchObject({ code: 'campaign_bonus_over_cap', cap: 1000, requested: 1_000_000 });
    expect(await db().selectFrom('campaign').select('id').where('program_id', '=', program.id).execute()).toHaveLength(0);
    expect((await create('marketer', 1000)).statusCode).toBe(201);
    expect((await create('admin', 1_000_000)).statusCode).toBe(201);

    // The admin lowers the cap (a marketer cannot change rules).
    const asMarketer = await t.app.inject({ method: 'PATCH', url: `/api/v1/programs/${program.id}`, headers: as('marketer'), payload: { rules: { ...program.rules, campaignBonusCap: 1_000_000 } } });
    expect(asMarketer.statusCode).toBe(403);
    const lowered = await t.app.inject({ method: 'PATCH', url: `/api/v1/programs/${program.id}`, headers: as('admin'), payload: { rules: { ...program.rules, campaignBonusCap: 50 } } });
    expect(lowered.statusCode, lowered.body).toBe(200);
    expect((await create('marketer', 51)).statusCode).toBe(403);
    expect((await create('marketer', 50)).statusCode).toBe(201);

    // The birthday automation's bonus is capped the same way; a stored value may be kept.
    const birthday = (role: 'admin' | 'marketer', bonusPoints: number, message = 'С днём рождения!') =>
      t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as(role), payload: { birthday: { enabled: true, bonusPoints, message: { ru: message, en: 'Happy birthday!' } } } });
    expect((await birthday('marketer', 5000)).json().code).toBe('campaign_bonus_over_cap');
    expect((await birthday('admin', 5000)).statusCode).toBe(200);
    expect((await birthday('marketer', 5000, 'Поздравляем!')).statusCode).toBe(200);
    expect((await birthday('marketer', 40)).statusCode).toBe(200);
  });

  it('counts any positive ledger entry as activity for points expiry, not only purchases', async () => {
    // 13:00 in Moscow tomorrow: past the automations' send hour.
    const T0 = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1, 10);
    clock.set(T0);
    const { program, as } = await createProgramWithKeys(t.app, 'expiry-activity', { rules: { expiry: { inactivityDays: 30, reminderDaysBefore: 7 } } });
    expect((await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('admin'), payload: { expiry: { enabled: true } } })).statusCode).toBe(200);
    // Switched on long ago.
    await sql`UPDATE program SET automations = jsonb_set(automations, '{enabledAt,expiry}', to_jsonb(${new Date(T0 - 100 * DAY).toISOString()}::text)) WHERE id = ${program.id}`.execute(db());
    const idle = await issue(as, '+79161130001');
    const bonused = await issue(as, '+79161130002');
    for (const id of [idle.id, bonused.id]) {
      await db().updateTable('card').set({ created_at: new Date(T0 - 60 * DAY) }).where('id', '=', id).execute();
      await db().updateTable('ledger_entry').set({ created_at: new Date(T0 - 60 * DAY) }).where('card_id', '=', id).execute();
    }
    // A bonus 3 days ago, no purchase at all: still activity.
    await adjust(as, bonused.id, 100);
    await db().updateTable('ledger_entry').set({ created_at: new Date(T0 - 3 * DAY) }).where('card_id', '=', bonused.id).where('kind', '=', 'adjustment').execute();

    await t.app.automations.tick();
    const due = await db().selectFrom('automation_delivery').select(['card_id', 'occasion']).where('program_id', '=', program.id).execute();
    expect(due.map((d) => d.card_id)).toContain(idle.id);
    expect(due.map((d) => d.card_id)).not.toContain(bonused.id);
  });

  it('prunes idempotency records older than IDEMPOTENCY_RETENTION_DAYS with a scheduled job', async () => {
    const schedules = await t.app.ctx.jobs.boss.getSchedules();
    expect(schedules.find((s) => s.name === RETENTION_QUEUE)).toMatchObject({ cron: RETENTION_SCHEDULE });

    const { as } = await createProgramWithKeys(t.app, 'retention');
    const holder = await issue(as, '+79161140001');
    const buy = (key: string) =>
      t.app.inject({ method: 'POST', url: `/api/v1/cards/${holder.id}/purchases`, headers: { ...as('pos'), 'idempotency-key': key }, payload: { amount: 10_000 } });
    expect((await buy('old-key')).statusCode).toBe(201);
    expect((await buy('recent-key')).statusCode).toBe(201);
    const now = Date.now();
    await db().updateTable('idempotency_record').set({ created_at: new Date(now - 11 * DAY) }).where('key', '=', 'old-key').execute();
    await db().updateTable('idempotency_record').set({ created_at: new Date(now - 9 * DAY) }).where('key', '=', 'recent-key').execute();
    const verification = await db()
      .insertInto('phone_verification')
      .values({ program_id: holder.id ? (await card(holder.id)).program_id : '', phone_hash: 'x'.repeat(64), purpose: 'join', code_hash: 'y', ip_hash: 'z', created_at: new Date(now - 8 * DAY), expires_at: new Date(now - 8 * DAY) })
      .returning('id')
      .executeTakeFirstOrThrow();

    // What the hourly schedule does, now: the job runs in the app's worker.
    await t.app.ctx.jobs.send(db(), RETENTION_QUEUE, {});
    // The job prunes idempotency records first and phone verifications in a later statement: wait for both.
    await waitFor(async () => !(await db().selectFrom('idempotency_record').select('key').where('key', '=', 'old-key').executeTakeFirst()), { what: 'the old record pruned' });
    await waitFor(async () => !(await db().selectFrom('phone_verification').select('id').where('id', '=', verification.id).executeTakeFirst()), { what: 'the old verification pruned' });
    expect(await db().selectFrom('idempotency_record').select('key').where('key', '=', 'recent-key').executeTakeFirst()).toBeDefined();
    expect(await db().selectFrom('phone_verification').select('id').where('id', '=', verification.id).executeTakeFirst()).toBeUndefined();
    // The recent key still replays; the pruned one is free again (a new purchase).
    expect((await buy('recent-key')).headers['idempotent-replayed']).toBe('true');
    const again = await buy('old-key');
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
  });
});
