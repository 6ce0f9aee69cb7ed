import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { getCampaign, issueConsentingCard, setHistory } from '../support/campaigns.js';
import type { RoleHeaders } from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// The marketer's screens over HTTP: campaigns (audience size, send to a segment, progress, schedule
// and cancel) and RFM segments (counts, thresholds).
describe(`cabinet campaigns and segments (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let program: { id: string };
  let as: RoleHeaders;
  let marketer: CabinetClient;
  const now = new Date();
  const PASSWORD = 'marketer password 1';

  beforeAll(async () => {
    t = await startTestApp();
    ({ program, as } = await createProgramWithKeys(t.app, 'cabinet-marketing'));
    await createStaff(t.app, program.id, { name: 'Марина', role: 'marketer', email: 'marina@shop.example', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Кассир', role: 'cashier', email: 'till@shop.example', password: PASSWORD });
    // Two sleeping cards with consent, one sleeping without consent, one active.
    for (const [name, consent, lastPurchase] of [
      ['Спящий 1', true, 90],
      ['Спящий 2', true, 75],
      ['Спящий без согласия', false, 80],
      ['Активный', true, 2],
    ] as const) {
      const card = await issueConsentingCard(t, as, { name, consent });
      await setHistory(t, program.id, card.id, now, 400, [lastPurchase]);
    }
    marketer = await signIn(t.app, 'marina@shop.example', PASSWORD);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('shows the audience size for the chosen tiers and segments (consenting cards only)', async () => {
    const page = await marketer.get('/app/campaigns/new?segment=sleeping');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('id="f-segments-sleeping" type="checkbox" name="segments" value="sleeping" checked');
    expect(page.body).toContain('Получат: 2 карты');
    expect(page.body).toContain('Сони (3)');
    expect(page.body).toContain('data-preview-slot="msg-ru"');
    const all = await marketer.get('/app/campaigns/audience', { accept: 'application/json' });
    expect(all.json()).toEqual({ count: 3, text: 'Получат: 3 карты' });
    expect((await marketer.get('/app/campaigns/audience?segments=sleeping&tiers=standard')).json().count).toBe(2);
    expect((await marketer.get('/app/campaigns/audience?tiers=general')).json().count).toBe(0);
  });

  it('sends a campaign to a segment and follows it to the end', async () => {
    const page = await marketer.get('/app/campaigns/new');
    const csrf = marketer.csrf(page.body);
    const bad = await marketer.post('/app/campaigns', { _csrf: csrf, name: '', message_ru: 'x', message_en: '', action: 'send' });
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('Напишите текст на обоих языках');
    const res = await marketer.post('/app/campaigns', {
      _csrf: csrf,
      name: 'Скучаем',
      message_ru: 'Скучаем! −20 % до воскресенья',
      message_en: 'We miss you! 20 % off until Sunday',
      segments: 'sleeping',
      bonusPoints: '',
      scheduledAt: '',
      action: 'send',
    });
    expect(res.statusCode).toBe(303);
    const id = /\/app\/campaigns\/([0-9a-f-]{36})$/.exec(res.headers.location!)![1];
    const row = await t.database.handle.db.selectFrom('campaign').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ name: 'Скучаем', created_by: expect.stringMatching(/^staff:/) });
    expect(row.audience).toEqual({ segments: ['sleeping'] });

    await waitFor(async () => (await getCampaign(t, as, id)).status === 'sent', { what: 'campaign sent', timeoutMs: 30_000 });
    const progress = await marketer.get(`/app/campaigns/${id}/progress`);
    expect(progress.json()).toMatchObject({ status: 'sent', final: true, percent: 100, fields: { targeted: '2', delivered: '2', status: 'отправлена' } });
    const done = await marketer.get(`/app/campaigns/${id}`);
    expect(done.body).toContain('отправлена');
    expect(done.body).not.toContain('data-poll'); // finished: nothing to follow
    expect(done.body).toContain('Сони');
    const list = await marketer.get('/app/campaigns');
    expect(list.body).toContain(`href="/app/campaigns/${id}"`);
  });

  it('schedules a campaign in the program time zone, then cancels it', async () => {
    const page = await marketer.get('/app/campaigns/new');
    const csrf = marketer.csrf(page.body);
    const past = await marketer.post('/app/campaigns', { _csrf: csrf, name: 'Прошлое', message_ru: 'a', message_en: 'b', scheduledAt: '2020-01-01T10:00', action: 'save' });
    expect(past.statusCode).toBe(422);
    const res = await marketer.post('/app/campaigns', { _csrf: csrf, name: 'Новый год', message_ru: 'С Новым годом!', message_en: 'Happy New Year!', tiers: 'standard', scheduledAt: '2099-12-31T10:00', action: 'save' });
    expect(res.statusCode).toBe(303);
    const id = res.headers.location!.split('/').pop()!;
    const dto = await getCampaign(t, as, id);
    expect(dto.status).toBe('scheduled');
    expect(dto.scheduledAt).toBe('2099-12-31T07:00:00.000Z'); // 10:00 in Europe/Moscow
    const pageOf = await marketer.get(`/app/campaigns/${id}`);
    expect(pageOf.body).toContain('data-poll');
    const cancelled = await marketer.post(`/app/campaigns/${id}/cancel`, { _csrf: csrf });
    expect(cancelled.statusCode).toBe(303);
    expect((await getCampaign(t, as, id)).status).toBe('cancelled');
    const again = await marketer.post(`/app/campaigns/${id}/cancel`, { _csrf: csrf });
    expect(again.statusCode).toBe(409);
    expect(again.body).toContain('уже нельзя отменить');
  });

  it('segments: counts and thresholds that can be changed (and are validated)', async () => {
    const page = await marketer.get('/app/segments');
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/data-segment="sleeping">.*?data-cards>3</s);
    expect(page.body).toContain('<svg class="chart"');
    const csrf = marketer.csrf(page.body);
    const form = { _csrf: csrf, windowDays: '365', newcomerDays: '30', sleepingAfterDays: '60', lostAfterDays: '85', whalesMinSpend: '50000', coreMinPurchases: '12' };
    const bad = await marketer.post('/app/segments', { ...form, lostAfterDays: '50' });
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('lostAfterDays');
    const ok = await marketer.post('/app/segments', form);
    expect(ok.statusCode).toBe(303);
    const after = await marketer.get('/app/segments');
    // 90 days without a purchase is now Lost.
    expect(after.body).toMatch(/data-segment="lost">.*?data-cards>1</s);
    const stored = await t.database.handle.db.selectFrom('program').select('segments').where('id', '=', program.id).executeTakeFirstOrThrow();
    expect(stored.segments).toMatchObject({ lostAfterDays: 85, whalesMinSpend: 5_000_000 });
  });

  it('a cashier opens neither campaigns nor segments', async () => {
    const cashier = await signIn(t.app, 'till@shop.example', PASSWORD);
    expect((await cashier.get('/app/campaigns')).statusCode).toBe(403);
    expect((await cashier.get('/app/segments')).statusCode).toBe(403);
    expect((await cashier.get('/app/campaigns/audience')).statusCode).toBe(403);
  });
});
