import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { pushToken, waitForCardJobsIdle, type RoleHeaders } from '../support/apple-device.js';
import { DAYS, installOnDevice, issueConsentingCard, setHistory } from '../support/campaigns.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Automations through their tick (the pg-boss schedule calls the same function), with the app
// clock moved across days and years. Assertions are on the database state, so a scheduled tick
// running in between (it sees the same app clock) changes nothing.
describe(`automations (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let now = new Date();
  beforeAll(async () => {
    t = await startTestApp({ clock: () => now });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Runs the automations once and waits until every campaign they made is delivered. */
  async function tick(programId: string) {
    await t.app.automations.tick();
    await waitFor(
      async () => {
        const open = await t.database.handle.db
          .selectFrom('campaign')
          .select('id')
          .where('program_id', '=', programId)
          .where('status', 'in', ['sending', 'scheduled'])
          .execute();
        return open.length === 0;
      },
      { what: 'automation campaigns to finish' },
    );
    await waitForCardJobsIdle(t);
  }
  const ledger = (cardId: string, kind: string) =>
    t.database.handle.db.selectFrom('ledger_entry').select(['points', 'created_at']).where('card_id', '=', cardId).where('kind', '=', kind as never).execute();
  const card = (id: string) => t.database.handle.db.selectFrom('card').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const deliveries = (programId: string, automation: string) =>
    t.database.handle.db.selectFrom('automation_delivery').selectAll().where('program_id', '=', programId).where('automation', '=', automation).execute();

  it('reads and validates the settings', async () => {
    const { as } = await createProgramWithKeys(t.app, 'auto-settings');
    const read = await t.app.inject({ method: 'GET', url: '/api/v1/automations', headers: as('marketer') });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({
      sendHour: 10,
      birthday: { enabled: false, enabledSince: null, bonusPoints: 500 },
      winback: { enabled: false },
      expiry: { enabled: false, rule: null },
      tierUpgrade: { enabled: false },
    });
    const noRule = await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: { expiry: { enabled: true } } });
    expect(noRule.statusCode).toBe(422);
    expect(noRule.json().code).toBe('expiry_rule_missing');
    expect((await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: { birthday: { enabled: 'yes!' } } })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: { sendHour: 24 } })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/automations', headers: as('pos') })).statusCode).toBe(403);
    const on = await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('admin'), payload: { winback: { enabled: true } } });
    expect(on.json().winback).toMatchObject({ enabled: true, enabledSince: now.toISOString() });
  });

  it('grants the birthday bonus with a greeting once per year, from the send hour, Feb 29 on Feb 28', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'auto-birthday'); // Europe/Moscow (UTC+3)
    now = new Date('2027-02-28T09:00:00Z');
    const enable = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/automations',
      headers: as('marketer'),
      payload: { birthday: { enabled: true, controlShare: 0, bonusPoints: 300, message: { ru: 'С днём рождения!', en: 'Happy birthday!' } } },
    });
    expect(enable.statusCode).toBe(200);
    const x = await issueConsentingCard(t, as, { birthday: '1990-03-15' });
    const noConsent = await issueConsentingCard(t, as, { birthday: '1990-03-15', consent: false });
    const other = await issueConsentingCard(t, as, { birthday: '1990-03-16' });
    const leap = await issueConsentingCard(t, as, { birthday: '2000-02-29' });
    await installOnDevice(t, x, pushToken(0xb1d));
    await waitForCardJobsIdle(t);

    await tick(program.id); // 2027-02-28 12:00 in Moscow: the Feb 29 holder, in a common year
    expect(await ledger(leap.id, 'birthday')).toHaveLength(1);
    expect(await ledger(x.id, 'birthday')).toHaveLength(0);

    now = new Date('2027-03-15T05:00:00Z'); // 08:00 in Moscow: before the send hour
    await tick(program.id);
    expect(await ledger(x.id, 'birthday')).toHaveLength(0);

    t.apnsStandIn.received.length = 0;
    now = new Date('2027-03-15T09:00:00Z'); // 12:00 in Moscow
    await tick(program.id);
    await tick(program.id); // twice the same day: still once
    expect((await ledger(x.id, 'birthday')).map((e) => e.points)).toEqual([300]);
    expect((await card(x.id)).promo).toEqual({ ru: 'С днём рождения!', en: 'Happy birthday!' });
    expect((await card(x.id)).balance).toBe(1000 + 300);
    expect(t.apnsStandIn.received.filter((p) => p.token === pushToken(0xb1d))).toHaveLength(1);
    expect(await ledger(noConsent.id, 'birthday')).toHaveLength(0);
    expect(await ledger(other.id, 'birthday')).toHaveLength(0);

    now = new Date('2027-03-16T09:00:00Z');
    await tick(program.id);
    expect(await ledger(x.id, 'birthday')).toHaveLength(1);
    expect(await ledger(other.id, 'birthday')).toHaveLength(1);

    now = new Date('2028-03-15T09:00:00Z'); // next year: once more
    await tick(program.id);
    expect((await ledger(x.id, 'birthday')).map((e) => e.points)).toEqual([300, 300]);
    expect((await deliveries(program.id, 'birthday')).filter((d) => d.card_id === x.id).map((d) => d.occasion).sort()).toEqual(['2027', '2028']);
    const campaigns = await t.app.inject({ method: 'GET', url: '/api/v1/campaigns?automation=true', headers: as('marketer') });
    expect(campaigns.json().every((c: { automation: string }) => c.automation === 'birthday')).toBe(true);
  });

  const enableBirthday = async (as: RoleHeaders) => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/automations',
      headers: as('marketer'),
      payload: { birthday: { enabled: true, controlShare: 0, bonusPoints: 200 } },
    });
    expect(res.statusCode).toBe(200);
    return res.json().birthday.enabledSince as string;
  };
  const occasions = async (programId: string, cardId: string) =>
    (await deliveries(programId, 'birthday')).filter((d) => d.card_id === cardId).map((d) => d.occasion).sort();

  it('catches up a birthday missed while the service was down, once; not one from a month ago, nor one from before enrollment', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'auto-birthday-late'); // Europe/Moscow (UTC+3)
    now = new Date('2029-04-01T09:00:00Z');
    expect(await enableBirthday(as)).toBe(now.toISOString());
    const missed = await issueConsentingCard(t, as, { birthday: '1985-05-10' });
    const monthAgo = await issueConsentingCard(t, as, { birthday: '1985-04-12' });
    for (const c of [missed, monthAgo]) await setHistory(t, program.id, c.id, now, 10, []);

    now = new Date('2029-05-09T09:00:00Z'); // 12:00 in Moscow, the day before: the last tick before the outage
    await tick(program.id);
    expect(await ledger(missed.id, 'birthday')).toHaveLength(0);

    // Down from May 9 to May 12: no tick on the birthday (May 10). A holder enrolls on May 12
    // whose birthday was May 11: not missed by the outage, so no late greeting.
    now = new Date('2029-05-12T09:00:00Z');
    const joinedSince = await issueConsentingCard(t, as, { birthday: '1985-05-11' });
    await setHistory(t, program.id, joinedSince.id, now, 0, []);
    await tick(program.id);
    await tick(program.id);
    expect((await ledger(missed.id, 'birthday')).map((e) => e.points)).toEqual([200]);
    expect(await occasions(program.id, missed.id)).toEqual(['2029']);
    expect((await card(missed.id)).promo).toEqual({ ru: 'С днём рождения! Дарим вам бонусные баллы', en: 'Happy birthday! Bonus points are on your card' });
    expect(await ledger(monthAgo.id, 'birthday')).toHaveLength(0); // April 12: 30 days ago, past the catch-up window
    expect(await ledger(joinedSince.id, 'birthday')).toHaveLength(0);

    now = new Date('2029-05-13T09:00:00Z'); // still inside the window: still once
    await tick(program.id);
    expect((await ledger(missed.id, 'birthday')).map((e) => e.points)).toEqual([200]);
    expect(await deliveries(program.id, 'birthday')).toHaveLength(1);
  });

  it('catches up a Dec 31 birthday on Jan 2 as last year\'s occasion', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'auto-birthday-new-year');
    now = new Date('2029-12-20T09:00:00Z');
    await enableBirthday(as);
    const c = await issueConsentingCard(t, as, { birthday: '1970-12-31' });
    await setHistory(t, program.id, c.id, now, 100, []);
    now = new Date('2030-01-02T09:00:00Z');
    await tick(program.id);
    expect(await occasions(program.id, c.id)).toEqual(['2029']);
    now = new Date('2030-12-31T09:00:00Z');
    await tick(program.id);
    expect(await occasions(program.id, c.id)).toEqual(['2029', '2030']);
    expect(await ledger(c.id, 'birthday')).toHaveLength(2);
  });

  it('does not greet a birthday from before the automation was switched on', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'auto-birthday-switch-on');
    now = new Date('2029-06-12T09:00:00Z');
    const before = await issueConsentingCard(t, as, { birthday: '1990-06-10' }); // two days ago: inside the window
    const today = await issueConsentingCard(t, as, { birthday: '1990-06-12' });
    for (const c of [before, today]) await setHistory(t, program.id, c.id, now, 100, []);
    await enableBirthday(as);
    await tick(program.id);
    expect(await ledger(today.id, 'birthday')).toHaveLength(1);
    expect(await ledger(before.id, 'birthday')).toHaveLength(0);
    now = new Date('2029-06-13T09:00:00Z');
    await tick(program.id);
    expect(await ledger(before.id, 'birthday')).toHaveLength(0);
    expect((await deliveries(program.id, 'birthday')).map((d) => d.card_id)).toEqual([today.id]);
  });

  it('reminds before points expire after inactivity, then expires them once', async () => {
    const T0 = new Date('2027-01-01T10:00:00Z'); // 13:00 in Moscow
    now = new Date(T0.getTime() - 60 * DAYS);
    const { program, as } = await createProgramWithKeys(t.app, 'auto-expiry', { rules: { expiry: { inactivityDays: 30, reminderDaysBefore: 7 } } });
    // Switched on long ago, so the switch-on does not postpone anything.
    expect((await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('admin'), payload: { expiry: { enabled: true, controlShare: 0 } } })).statusCode).toBe(200);
    now = T0;
    const idle = await issueConsentingCard(t, as, { consent: false }); // service messages need no consent
    await setHistory(t, program.id, idle.id, now, 60, [25]); // expires at T0 + 5 days, reminder from T0 − 2 days
    const active = await issueConsentingCard(t, as);
    await setHistory(t, program.id, active.id, now, 60, [1]);

    await tick(program.id);
    await tick(program.id);
    expect((await deliveries(program.id, 'expiry')).map((d) => d.card_id)).toEqual([idle.id]);
    // The count carries its word in each language (Intl.PluralRules), the date as each language writes it.
    expect((await card(idle.id)).promo).toEqual({ ru: 'Успейте потратить до 6 января 2027 г.: 1\u00a0000 баллов. Потом баллы сгорят.', en: 'Spend them by January 6, 2027: 1,000 points. After that they expire.' });
    expect(await ledger(idle.id, 'expiry')).toHaveLength(0);
    expect((await card(idle.id)).balance).toBe(1000);

    now = new Date(T0.getTime() + 4 * DAYS); // not yet
    await tick(program.id);
    expect(await ledger(idle.id, 'expiry')).toHaveLength(0);

    now = new Date(T0.getTime() + 6 * DAYS);
    await tick(program.id);
    await tick(program.id);
    expect((await ledger(idle.id, 'expiry')).map((e) => e.points)).toEqual([-1000]);
    const expired = await card(idle.id);
    expect(expired.balance).toBe(0);
    expect(expired.promo).toEqual({ ru: 'Сгорело: 1\u00a0000 баллов', en: 'Expired: 1,000 points' });
    expect((await deliveries(program.id, 'expiry')).map((d) => d.occasion.split(':')[0]).sort()).toEqual(['expire', 'reminder']);
    // The active holder was never reminded (their purchase 1 day before T0 moved the expiry).
    expect(await ledger(active.id, 'expiry')).toHaveLength(0);
    expect((await card(active.id)).promo).toBeNull();
    // Balance still equals the ledger.
    const history = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${idle.id}/history`, headers: as('pos') });
    expect(history.json().ledgerSum).toBe(0);
  });

  it('skips the expiry when the holder came back between the sweep and the chunk', async () => {
    // Its own app without workers, so the chunk runs when the test says.
    const T0 = new Date('2027-01-01T10:00:00Z');
    let clock = new Date(T0.getTime() - 60 * DAYS);
    const quiet = await startTestApp({ clock: () => clock, runWorkers: false });
    try {
      const { program, as } = await createProgramWithKeys(quiet.app, 'auto-expiry-back', { rules: { expiry: { inactivityDays: 30, reminderDaysBefore: 7 } } });
      await quiet.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('admin'), payload: { expiry: { enabled: true, controlShare: 0 } } });
      clock = new Date(T0.getTime() + 6 * DAYS);
      const back = await issueConsentingCard(quiet, as);
      await setHistory(quiet, program.id, back.id, clock, 60, [31]);
      const gone = await issueConsentingCard(quiet, as);
      await setHistory(quiet, program.id, gone.id, clock, 60, [31]);
      const created = await quiet.app.automations.tick();
      const expiry = created.find((c) => c.programId === program.id && c.automation === 'expiry');
      expect(expiry).toBeDefined();
      // The holder buys something before the chunk runs: the chunk re-checks the rule (expiryDue).
      await setHistory(quiet, program.id, back.id, clock, 60, [0]);
      await quiet.app.campaigns.runChunk(expiry!.campaignId, 0);
      const db = quiet.database.handle.db;
      const statuses = await db.selectFrom('campaign_recipient').select(['card_id', 'status']).where('campaign_id', '=', expiry!.campaignId).execute();
      expect(Object.fromEntries(statuses.map((r) => [r.card_id, r.status]))).toEqual({ [back.id]: 'skipped', [gone.id]: 'processed' });
      const entries = await db.selectFrom('ledger_entry').select(['card_id', 'points']).where('kind', '=', 'expiry').where('program_id', '=', program.id).execute();
      expect(entries).toEqual([{ card_id: gone.id, points: -1000 }]);
      const campaign = await db.selectFrom('campaign').selectAll().where('id', '=', expiry!.campaignId).executeTakeFirstOrThrow();
      expect(campaign).toMatchObject({ status: 'sent', processed: 1, skipped: 1, targeted: 2 });
    } finally {
      await quiet.close();
    }
  });

  it('sends a win-back message when a card enters Sleeping after the switch-on, once per lapse', async () => {
    now = new Date('2027-06-01T10:00:00Z');
    const { program, as } = await createProgramWithKeys(t.app, 'auto-winback');
    const enabledAt = new Date(now.getTime() - 5 * DAYS);
    const saved = now;
    now = enabledAt;
    await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: { winback: { enabled: true, controlShare: 0 } } });
    now = saved;
    const entered = await issueConsentingCard(t, as); // bought 61 days ago: Sleeping since yesterday
    await setHistory(t, program.id, entered.id, now, 400, [61]);
    const longLost = await issueConsentingCard(t, as); // Lost long before the switch-on
    await setHistory(t, program.id, longLost.id, now, 800, [300]);
    const noConsent = await issueConsentingCard(t, as, { consent: false });
    await setHistory(t, program.id, noConsent.id, now, 400, [61]);

    await tick(program.id);
    await tick(program.id);
    expect((await deliveries(program.id, 'winback')).map((d) => d.card_id)).toEqual([entered.id]);
    expect((await card(entered.id)).promo).toEqual({ ru: 'Давно не виделись! Заходите — мы соскучились', en: 'We miss you! Come and see us soon' });
    expect((await card(longLost.id)).promo).toBeNull();

    // 120 days later the same lapse turns Lost: a second occasion, one more message.
    now = new Date(now.getTime() + 120 * DAYS);
    await tick(program.id);
    expect((await deliveries(program.id, 'winback')).map((d) => d.occasion.split(':')[0]).sort()).toEqual(['lost', 'sleeping']);
  });

  it('win-back catches up: a card that entered Sleeping while the service was down gets its message at the next tick, once', async () => {
    now = new Date('2029-08-01T09:00:00Z');
    const { program, as } = await createProgramWithKeys(t.app, 'auto-winback-late');
    await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: { winback: { enabled: true, controlShare: 0 } } });
    const lapsing = await issueConsentingCard(t, as);
    await setHistory(t, program.id, lapsing.id, now, 400, [57]); // Sleeping (60 days) in 3 days
    await tick(program.id);
    expect(await deliveries(program.id, 'winback')).toEqual([]);

    now = new Date(now.getTime() + 6 * DAYS); // down for 6 days; the card entered Sleeping 3 days ago
    await tick(program.id);
    await tick(program.id);
    const sent = await deliveries(program.id, 'winback');
    expect(sent.map((d) => [d.card_id, d.occasion.split(':')[0]])).toEqual([[lapsing.id, 'sleeping']]);
    expect((await card(lapsing.id)).promo).toEqual({ ru: 'Давно не виделись! Заходите — мы соскучились', en: 'We miss you! Come and see us soon' });
  });

  it('congratulates on a tier upgrade once per tier', async () => {
    now = new Date();
    const { program, as } = await createProgramWithKeys(t.app, 'auto-tier');
    await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: { tierUpgrade: { enabled: true } } });
    const c = await issueConsentingCard(t, as, { consent: false });
    const upgrade = await t.app.inject({
      method: 'POST',
      url: `/api/v1/cards/${c.id}/purchases`,
      headers: { ...as('pos'), 'idempotency-key': 'tier-1' },
      payload: { amount: 6_000_000 },
    });
    expect(upgrade.json().tierChanged).toBe(true);
    await tick(program.id);
    await tick(program.id);
    expect((await deliveries(program.id, 'tier_upgrade')).map((d) => d.occasion)).toEqual(['tier:general']);
    expect((await card(c.id)).promo).toEqual({ ru: 'Поздравляем! Ваш новый уровень: Генеральная', en: 'Congratulations! Your new tier: General' });
  });
});
