import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import type { RoleHeaders } from '../support/apple-device.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { getCampaign, issueConsentingCard } from '../support/campaigns.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// The coupons screen (/app/coupons, issue #17) over the cabinet's HTTP: the marketer defines coupons
// (refused values at their fields, nothing stored; decimal commas in money), sees them listed with
// what they give and their counts, changes and switches them off and on; a campaign made in the
// cabinet with «Купон каждому получателю» hands each recipient one coupon (read back through
// GET /api/v1/cards/{id}/coupons); a switched-off coupon leaves the campaign and automation selects;
// the automations keep their coupon setting; a cashier cannot reach any of it.
describe(`cabinet coupons (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let program: { id: string };
  let as: RoleHeaders;
  let marketer: CabinetClient;
  let cashier: CabinetClient;
  let owner: CabinetClient;
  const PASSWORD = 'coupons password 1';

  beforeAll(async () => {
    t = await startTestApp();
    ({ program, as } = await createProgramWithKeys(t.app, 'cabinet-coupons'));
    await createStaff(t.app, program.id, { name: 'Марина', role: 'marketer', email: 'marina@coupons.example', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Кира', role: 'cashier', email: 'kira@coupons.example', password: PASSWORD });
    marketer = await signIn(t.app, 'marina@coupons.example', PASSWORD);
    await createStaff(t.app, program.id, { name: 'Ольга', role: 'owner', email: 'olga@coupons.example', password: PASSWORD });
    cashier = await signIn(t.app, 'kira@coupons.example', PASSWORD);
    owner = await signIn(t.app, 'olga@coupons.example', PASSWORD);
  });
  afterAll(async () => {
    await t?.close();
  });

  const definitions = async () => (await t.database.handle.db.selectFrom('coupon_definitions').selectAll().where('program_id', '=', program.id).orderBy('created_at').execute());
  const couponsOf = async (cardId: string) => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/coupons`, headers: as('pos') });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Array<{ code: string; status: string; source: string; definitionId: string; campaignId: string | null }>;
  };
  const base = { title_ru: 'Скидка 500', title_en: '500 off', kind: 'amount', percent: '', amount: '500,50', sku: '', minCheck: '2 000,00', categories: '', validDays: '30', validUntil: '', active: 'yes' };

  it('is in the Marketing group for the marketer; a cashier gets 403 on every coupon route', async () => {
    const page = await marketer.get('/app/coupons');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<a href="/app/coupons" aria-current="page">Купоны</a>');
    expect(page.body).toContain('Купонов пока нет.');
    const till = await cashier.get('/app/cashier');
    expect(till.body).not.toContain('href="/app/coupons"');
    const csrf = cashier.csrf(till.body);
    expect((await cashier.get('/app/coupons')).statusCode).toBe(403);
    expect((await cashier.get('/app/coupons/new')).statusCode).toBe(403);
    expect((await cashier.post('/app/coupons', { _csrf: csrf, ...base })).statusCode).toBe(403);
    expect(await definitions()).toEqual([]);
  });

  it('refuses wrong values at their fields and stores nothing', async () => {
    const form = await marketer.get('/app/coupons/new');
    expect(form.statusCode).toBe(200);
    const csrf = marketer.csrf(form.body);
    const bad = await marketer.post('/app/coupons', { _csrf: csrf, ...base, title_en: '', kind: 'percent', percent: '150', minCheck: 'много', validDays: '30', validUntil: '2099-01-01' });
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('id="f-title_en-error">Напишите название');
    expect(bad.body).toContain('id="f-percent-error">Целое число процентов от 1 до 100.');
    expect(bad.body).toContain('id="f-minCheck-error">Введите сумму');
    expect(bad.body).toContain('id="f-validUntil-error">Заполните одно: число дней или дату.');
    const free = await marketer.post('/app/coupons', { _csrf: csrf, ...base, kind: 'free_item', sku: '', categories: 'coffee', validDays: '' });
    expect(free.statusCode).toBe(422);
    expect(free.body).toContain('id="f-sku-error">Укажите артикул');
    expect(free.body).toContain('id="f-categories-error">Категории — только для процента и суммы');
    expect(free.body).toContain('id="f-validDays-error">Заполните одно');
    const past = await marketer.post('/app/coupons', { _csrf: csrf, ...base, validDays: '', validUntil: '2020-01-01' });
    expect(past.statusCode).toBe(422);
    expect(past.body).toContain('id="f-validUntil-error">Укажите дату в будущем.');
    const tooMany = await marketer.post('/app/coupons', { _csrf: csrf, ...base, categories: Array.from({ length: 21 }, (_, i) => `c${i}`).join(',') });
    expect(tooMany.statusCode).toBe(422);
    expect(tooMany.body).toContain('id="f-categories-error">До 20 разных категорий');
    expect(await definitions()).toEqual([]);
  });

  it('creates coupons (decimal commas in money) and lists them in words with their counts', async () => {
    const csrf = marketer.csrf((await marketer.get('/app/coupons/new')).body);
    const amount = await marketer.post('/app/coupons', { _csrf: csrf, ...base });
    expect(amount.statusCode, amount.body).toBe(303);
    expect(amount.headers.location).toBe('/app/coupons?saved=1');
    const percent = await marketer.post('/app/coupons', { _csrf: csrf, ...base, title_ru: 'Минус десять', title_en: 'Ten off', kind: 'percent', percent: '10', amount: '', minCheck: '', categories: 'outerwear, shoes', validDays: '', validUntil: '2099-06-30' });
    expect(percent.statusCode, percent.body).toBe(303);
    const free = await marketer.post('/app/coupons', { _csrf: csrf, ...base, title_ru: 'Латте в подарок', title_en: 'A free latte', kind: 'free_item', amount: '', sku: 'LATTE', minCheck: '' });
    expect(free.statusCode, free.body).toBe(303);

    const rows = await definitions();
    expect(rows.map((r) => [r.kind, r.percent, r.amount === null ? null : Number(r.amount), r.sku, Number(r.min_check), r.categories, r.valid_days])).toEqual([
      ['amount', null, 50_050, null, 200_000, null, 30],
      ['percent', 10, null, null, 0, ['outerwear', 'shoes'], null],
      ['free_item', null, null, 'LATTE', 0, null, 30],
    ]);
    // "Until 30 June" inclusive, in the program's zone (Europe/Moscow): until 1 July 00:00 there.
    expect(rows[1]!.valid_until?.toISOString()).toBe('2099-06-30T21:00:00.000Z');

    const list = await marketer.get('/app/coupons?saved=1');
    expect(list.body).toContain('Купон сохранён.');
    expect(list.body).toMatch(/data-definition="[^"]+"><th scope="row"><a [^>]+>Скидка 500<\/a><\/th>\s*<td data-value>−500,50\s₽<\/td>\s*<td class="num">2\s000,00\s₽<\/td>/);
    expect(list.body).toContain('<td data-value>−10 %</td>');
    expect(list.body).toContain('outerwear, shoes');
    expect(list.body).toContain('до 30 июн. 2099 г.');
    expect(list.body).toContain('<td data-value>бесплатно: LATTE</td>');
    expect(list.body).toContain('30 дней с выдачи');
    const en = await marketer.get('/app/coupons?lang=en');
    expect(en.body).toContain('free: LATTE');
    expect(en.body).toContain('30 days from issue');
    await marketer.get('/app/coupons?lang=ru');
  });

  it('edits a coupon through the service (the form shows the stored values); another program’s id is not found', async () => {
    const [amount] = await definitions();
    const form = await marketer.get(`/app/coupons/${amount!.id}`);
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('name="amount" type="text" value="500,50"');
    expect(form.body).toContain('name="minCheck" type="text" value="2000"');
    const csrf = marketer.csrf(form.body);
    const res = await marketer.post(`/app/coupons/${amount!.id}`, { _csrf: csrf, ...base, amount: '300', minCheck: '', validDays: '7' });
    expect(res.statusCode, res.body).toBe(303);
    const after = (await definitions())[0]!;
    expect([Number(after.amount), Number(after.min_check), after.valid_days]).toEqual([30_000, 0, 7]);
    // Switching kind drops the old value (the service's rule).
    const toPercent = await marketer.post(`/app/coupons/${amount!.id}`, { _csrf: csrf, ...base, kind: 'percent', percent: '5', validDays: '7' });
    expect(toPercent.statusCode).toBe(303);
    const changed = (await definitions())[0]!;
    expect([changed.kind, changed.percent, changed.amount]).toEqual(['percent', 5, null]);

    const other = await createProgramWithKeys(t.app, 'cabinet-coupons-other');
    const foreign = await t.app.inject({ method: 'POST', url: '/api/v1/coupons/definitions', headers: other.as('marketer'), payload: { title: { ru: 'Чужой', en: 'Foreign' }, kind: 'percent', percent: 50, validDays: 5 } });
    expect(foreign.statusCode).toBe(201);
    expect((await marketer.get(`/app/coupons/${foreign.json().id}`)).statusCode).toBe(404);
    expect((await marketer.post(`/app/coupons/${foreign.json().id}/off`, { _csrf: csrf })).statusCode).toBe(404);
    expect((await marketer.get('/app/coupons/not-a-uuid')).statusCode).toBe(404);
  });

  it('a campaign from the cabinet with a coupon issues one to each recipient', async () => {
    const a = await issueConsentingCard(t, as, { name: 'Анна' });
    const b = await issueConsentingCard(t, as, { name: 'Борис' });
    const without = await issueConsentingCard(t, as, { name: 'Без согласия', consent: false });
    const free = (await definitions()).find((d) => d.kind === 'free_item')!;
    const page = await marketer.get('/app/campaigns/new');
    expect(page.body).toContain('<label for="f-couponDefinitionId">Купон каждому получателю</label>');
    expect(page.body).toContain(`<option value="${free.id}">Латте в подарок (бесплатно: LATTE)</option>`);
    const csrf = marketer.csrf(page.body);
    const form = { _csrf: csrf, name: 'Латте всем', message_ru: 'Латте за наш счёт', message_en: 'A latte on us', controlShare: '0', effectWindowDays: '14', action: 'send' };
    const foreign = await marketer.post('/app/campaigns', { ...form, couponDefinitionId: '00000000-0000-4000-8000-000000000000' });
    expect(foreign.statusCode).toBe(422);
    expect(foreign.body).toContain('id="f-couponDefinitionId-error">Выберите купон из списка.');
    const res = await marketer.post('/app/campaigns', { ...form, couponDefinitionId: free.id });
    expect(res.statusCode, res.body).toBe(303);
    const id = res.headers.location!.split('/').pop()!;
    expect((await getCampaign(t, as, id)).couponDefinitionId).toBe(free.id);
    await waitFor(async () => (await getCampaign(t, as, id)).status === 'sent', { what: 'campaign sent', timeoutMs: 30_000 });

    for (const card of [a, b]) {
      const coupons = await couponsOf(card.id);
      expect(coupons).toHaveLength(1);
      expect(coupons[0]).toMatchObject({ status: 'issued', source: 'campaign', definitionId: free.id, campaignId: id });
    }
    expect(await couponsOf(without.id)).toEqual([]);
    const campaignPage = await marketer.get(`/app/campaigns/${id}`);
    expect(campaignPage.body).toMatch(/data-coupon><a href="\/app\/coupons\/[^"]+">Латте в подарок<\/a>/);
    const list = await marketer.get('/app/coupons');
    expect(list.body).toMatch(new RegExp(`data-definition="${free.id}">[\\s\\S]*?data-issued>2</td><td class="num" data-redeemed>0</td>`));
  });

  it('a switched-off coupon leaves the selects; the automation keeps a coupon chosen before', async () => {
    const rows = await definitions();
    const free = rows.find((d) => d.kind === 'free_item')!;
    const percent = rows.find((d) => d.sku === null && d.categories !== null)!;
    // The birthday automation gets the free latte, win-back the percent coupon.
    const autos = await marketer.get('/app/automations');
    expect(autos.body).toContain('<label for="f-birthday_couponDefinitionId">Купон каждому получателю</label>');
    expect(autos.body).toContain('<label for="f-winback_couponDefinitionId">Купон каждому получателю</label>');
    const csrf = marketer.csrf(autos.body);
    const saved = await marketer.post('/app/automations', { _csrf: csrf, ...automationsForm(autos.body), birthday_couponDefinitionId: free.id, winback_couponDefinitionId: percent.id });
    expect(saved.statusCode, saved.body).toBe(303);
    const api = (await t.app.inject({ method: 'GET', url: '/api/v1/automations', headers: as('marketer') })).json();
    expect([api.birthday.couponDefinitionId, api.winback.couponDefinitionId]).toEqual([free.id, percent.id]);

    const off = await marketer.post(`/app/coupons/${free.id}/off`, { _csrf: csrf });
    expect(off.statusCode).toBe(303);
    expect((await marketer.get('/app/coupons?off=1')).body).toMatch(new RegExp(`data-definition="${free.id}">[\\s\\S]*?data-state>выключен</span>`));
    const campaignForm = await marketer.get('/app/campaigns/new');
    expect(campaignForm.body).not.toContain(`value="${free.id}"`);
    expect(campaignForm.body).toContain(`value="${percent.id}"`);
    // Sending the switched-off coupon anyway (a stale form) is refused at its field.
    const stale = await marketer.post('/app/campaigns', { _csrf: csrf, name: 'Старое', message_ru: 'а', message_en: 'b', controlShare: '0', effectWindowDays: '14', action: 'save', couponDefinitionId: free.id });
    expect(stale.statusCode).toBe(422);
    expect(stale.body).toContain('id="f-couponDefinitionId-error">Выберите купон из списка.');

    // The automation chose it before: it stays chosen (marked), and saving the page unchanged keeps it.
    const autos2 = await marketer.get('/app/automations');
    expect(autos2.body).toContain(`<option value="${free.id}" selected>Латте в подарок (бесплатно: LATTE) — выключен</option>`);
    const win = /<select id="f-winback_couponDefinitionId"[\s\S]*?<\/select>/.exec(autos2.body)![0];
    expect(win).not.toContain(`value="${free.id}"`);
    expect((await marketer.post('/app/automations', { _csrf: csrf, ...automationsForm(autos2.body) })).statusCode).toBe(303);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/automations', headers: as('marketer') })).json().birthday.couponDefinitionId).toBe(free.id);
    // …but it cannot be newly chosen for win-back.
    const refused = await marketer.post('/app/automations', { _csrf: csrf, ...automationsForm(autos2.body), winback_couponDefinitionId: free.id });
    expect(refused.statusCode).toBe(422);
    expect(refused.body).toContain('id="f-winback_couponDefinitionId-error">Выберите купон из списка.');
    // «без купона» drops the setting.
    expect((await marketer.post('/app/automations', { _csrf: csrf, ...automationsForm(autos2.body), birthday_couponDefinitionId: '' })).statusCode).toBe(303);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/automations', headers: as('marketer') })).json().birthday.couponDefinitionId).toBeUndefined();

    // Switched on again: back in the selects.
    expect((await marketer.post(`/app/coupons/${free.id}/on`, { _csrf: csrf })).statusCode).toBe(303);
    expect((await marketer.get('/app/campaigns/new')).body).toContain(`value="${free.id}"`);
    expect((await definitions()).find((d) => d.id === free.id)!.active).toBe(true);
  });

  it('the owner gives one card one coupon from the card view (once per form); a cashier cannot', async () => {
    const card = await issueConsentingCard(t, as, { name: 'Вера' });
    const rows = await definitions();
    const free = rows.find((d) => d.kind === 'free_item')!;
    const percent = rows.find((d) => d.sku === null && d.categories !== null)!;
    const view = await owner.get(`/app/cashier/cards/${card.id}`);
    expect(view.statusCode).toBe(200);
    expect(view.body).toContain('data-give-coupon');
    const give = /<form method="post" action="\/app\/cashier\/cards\/[^"]+\/coupons"[\s\S]*?<\/form>/.exec(view.body)![0];
    expect(give).toContain(`<option value="${percent.id}">Минус десять (−10 %)</option>`);
    const form = { _csrf: owner.csrf(view.body), idem: owner.hidden('idem', give), definitionId: percent.id };
    const res = await owner.post(`/app/cashier/cards/${card.id}/coupons`, form);
    expect(res.statusCode, res.body).toBe(303);
    // A resent form replays: still one coupon.
    expect((await owner.post(`/app/cashier/cards/${card.id}/coupons`, form)).statusCode).toBe(303);
    const coupons = await couponsOf(card.id);
    expect(coupons).toHaveLength(1);
    expect(coupons[0]).toMatchObject({ status: 'issued', source: 'admin', definitionId: percent.id });
    const after = await owner.get(res.headers.location!);
    expect(after.body).toContain(`<span data-coupon-given>Купон выдан, код ${coupons[0]!.code}.</span>`);
    expect(after.body).toContain(`data-coupon-code="${coupons[0]!.code}"`);

    // A switched-off definition: refused in words, nothing issued.
    expect((await owner.post(`/app/coupons/${free.id}/off`, { _csrf: form._csrf })).statusCode).toBe(303);
    const refused = await owner.post(`/app/cashier/cards/${card.id}/coupons`, { ...form, idem: '6f1d2c3b-0000-4000-8000-000000000001', definitionId: free.id });
    expect(refused.statusCode).toBe(422);
    expect(refused.body).toContain('Купон не выдан: этот купон сейчас не выдаётся');
    expect(await couponsOf(card.id)).toHaveLength(1);

    // The cashier sees the card but not the form, and cannot post it.
    const cashierView = await cashier.get(`/app/cashier/cards/${card.id}`);
    expect(cashierView.statusCode).toBe(200);
    expect(cashierView.body).not.toContain('data-give-coupon');
    const denied = await cashier.post(`/app/cashier/cards/${card.id}/coupons`, { _csrf: cashier.csrf(cashierView.body), idem: '6f1d2c3b-0000-4000-8000-000000000002', definitionId: percent.id });
    expect(denied.statusCode).toBe(403);
    expect(await couponsOf(card.id)).toHaveLength(1);
  });
});

/** Every field of the automations page as shown (text inputs, checked boxes, textareas, selected options). */
function automationsForm(body: string): Record<string, string> {
  const form: Record<string, string> = {};
  for (const m of body.matchAll(/<input id="[^"]*" name="([^"]+)" type="(?:text|checkbox)"[^>]*?value="([^"]*)"([^>]*)>/g)) {
    if (/type="checkbox"/.test(m[0]) && !/ checked/.test(m[3]!)) continue;
    form[m[1]!] = m[2]!;
  }
  for (const m of body.matchAll(/<textarea id="[^"]*" name="([^"]+)"[^>]*>([^<]*)<\/textarea>/g)) form[m[1]!] = m[2]!.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  for (const m of body.matchAll(/<select id="[^"]*" name="([^"]+)"[^>]*>([\s\S]*?)<\/select>/g)) form[m[1]!] = /<option value="([^"]*)" selected>/.exec(m[2]!)?.[1] ?? '';
  return form;
}
