import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf } from '../support/pkpass.js';

// Settings in sections (issue #15): one section per page with its own form and one Save; a form
// posts only its section's fields, and saving one section never changes another's stored values.
// Stores are an address plus a point pasted from a map, shown with map links.
describe(`cabinet settings sections (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let program: { id: string };
  let owner: CabinetClient;
  let cardToken: string;
  const PASSWORD = 'sections password 1';

  beforeAll(async () => {
    t = await startTestApp();
    const created = await createProgramWithKeys(t.app, 'sections-shop', { name: 'Кофейня «Разделы»', texts: { promo: { ru: 'Кофе дня', en: 'Coffee of the day' } } });
    program = created.program;
    await createStaff(t.app, program.id, { name: 'Владелец', role: 'owner', email: 'owner@sections.example', password: PASSWORD });
    owner = await signIn(t.app, 'owner@sections.example', PASSWORD);
    const card = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: created.as('pos'), payload: { holder: { name: 'Клиент', phone: '+79160000777' } } })).json();
    cardToken = card.installUrl.split('/c/')[1];
  });
  afterAll(async () => {
    await t?.close();
  });

  const row = () => t.database.handle.db.selectFrom('program').select(['name', 'default_language', 'currency', 'time_zone', 'rules', 'texts', 'locations', 'design']).where('id', '=', program.id).executeTakeFirstOrThrow();
  const forms = (body: string) => [...body.matchAll(/<form method="post" action="(\/app\/settings\/[a-z]+)"/g)].map((m) => m[1]);

  it('each section is its own page with one form and one Save; the tabs link them', async () => {
    for (const [url, action] of [
      ['/app/settings', '/app/settings/general'],
      ['/app/settings/general', '/app/settings/general'],
      ['/app/settings/rules', '/app/settings/rules'],
      ['/app/settings/mechanic', '/app/settings/mechanic'],
      ['/app/settings/texts', '/app/settings/texts'],
      ['/app/settings/locations', '/app/settings/locations'],
    ]) {
      const page = await owner.get(url);
      expect(page.statusCode).toBe(200);
      expect(forms(page.body)).toEqual([action]);
      expect(page.body.match(/<button class="button" type="submit">/g)).toHaveLength(1);
      expect(page.body).toContain(`<a href="${action}" aria-current="page">`);
      for (const other of ['general', 'rules', 'mechanic', 'texts', 'locations']) expect(page.body).toContain(`href="/app/settings/${other}"`);
    }
    expect((await owner.get('/app/settings/nothing')).statusCode).toBe(404);
  });

  it('saving one section leaves every other section as stored', async () => {
    const csrf = owner.csrf((await owner.get('/app/settings/texts')).body);
    // Locations first, so that there is something to lose.
    const loc = await owner.post('/app/settings/locations', { _csrf: csrf, loc0_addr: 'Москва, Тверская ул., 7', loc0_coords: 'https://yandex.ru/maps/?ll=37.6173%2C55.7558&z=17', loc0_ru: 'Кофейня рядом', loc0_en: 'We are near' });
    expect(loc.statusCode).toBe(303);
    expect(loc.headers.location).toBe('/app/settings/locations?saved=1');
    const before = await row();
    expect(before.locations).toEqual([{ latitude: 55.7558, longitude: 37.6173, address: 'Москва, Тверская ул., 7', relevantText: { ru: 'Кофейня рядом', en: 'We are near' } }]);

    // General: only the name changes.
    expect((await owner.post('/app/settings/general', { _csrf: csrf, name: 'Кофейня «Новая»', defaultLanguage: 'ru', currency: 'RUB', timeZone: before.time_zone })).statusCode).toBe(303);
    const afterGeneral = await row();
    expect(afterGeneral.name).toBe('Кофейня «Новая»');
    expect({ ...afterGeneral, name: before.name }).toEqual(before);

    // Texts: a post carrying stray fields of other sections (a stale or crafted form) changes only texts.
    expect(
      (await owner.post('/app/settings/texts', { _csrf: csrf, text_promo_ru: 'Два капучино по цене одного', text_promo_en: 'Two cappuccinos for one', name: 'Взлом', welcomeBonus: '999999', loc0_addr: '' }))
        .statusCode,
    ).toBe(303);
    const afterTexts = await row();
    expect(afterTexts.texts).toEqual({ promo: { ru: 'Два капучино по цене одного', en: 'Two cappuccinos for one' } });
    expect({ ...afterTexts, texts: afterGeneral.texts }).toEqual(afterGeneral);

    // A refused save (422) changes nothing at all.
    const bad = await owner.post('/app/settings/rules', { _csrf: csrf, welcomeBonus: 'many' });
    expect(bad.statusCode).toBe(422);
    expect(await row()).toEqual(afterTexts);

    // The rules page, saved as shown, keeps the locations, texts and name.
    const rulesPage = await owner.get('/app/settings/rules');
    // What a browser sends: every input's value, checkboxes only when ticked (HTML entities as typed).
    const inputs = Object.fromEntries(
      [...rulesPage.body.matchAll(/<input[^>]*>/g)]
        .map((m) => m[0])
        .filter((tag) => !tag.includes('type="checkbox"') || / checked/.test(tag))
        .map((tag) => [/name="([^"]+)"/.exec(tag)?.[1], /value="([^"]*)"/.exec(tag)?.[1] ?? ''])
        .filter(([name]) => name),
    );
    const savedRules = await owner.post('/app/settings/rules', { ...inputs, welcomeBonus: '700', _csrf: csrf });
    expect(savedRules.statusCode).toBe(303);
    const afterRules = await row();
    expect((afterRules.rules as { welcomeBonus: number }).welcomeBonus).toBe(700);
    expect({ ...afterRules, rules: afterTexts.rules }).toEqual(afterTexts);

    // The mechanic section (issue #17): a category rule added; every other section and every other
    // rule as stored. The program has a card, so it stays on points.
    const mechanicPage = await owner.get('/app/settings/mechanic');
    const mechanicInputs = Object.fromEntries(
      [...mechanicPage.body.matchAll(/<input[^>]*>/g)]
        .map((m) => m[0])
        .filter((tag) => !/type="(checkbox|radio)"/.test(tag) || / checked/.test(tag))
        .map((tag) => [/name="([^"]+)"/.exec(tag)?.[1], /value="([^"]*)"/.exec(tag)?.[1] ?? ''])
        .filter(([name]) => name),
    );
    expect(mechanicInputs.mechanic).toBe('points');
    const savedMechanic = await owner.post('/app/settings/mechanic', { ...mechanicInputs, cat0_category: 'tobacco', cat0_exclude: 'yes', name: 'Взлом', welcomeBonus: '1', _csrf: csrf });
    expect(savedMechanic.statusCode).toBe(303);
    const afterMechanic = await row();
    const { mechanic, categories, ...otherRules } = afterMechanic.rules as Record<string, unknown>;
    expect([mechanic, categories]).toEqual(['points', [{ category: 'tobacco', exclude: true }]]);
    expect(otherRules).toEqual(afterRules.rules);
    expect({ ...afterMechanic, rules: afterRules.rules }).toEqual(afterRules);
  });

  it('stores: an address and a point, with map links; neither alone; the pass gets the point, not the address', async () => {
    const page = await owner.get('/app/settings/locations');
    expect(page.body).toContain('name="loc0_addr" type="text" value="Москва, Тверская ул., 7"');
    expect(page.body).toContain('name="loc0_coords" type="text" value="55.7558, 37.6173"');
    expect(page.body).toContain('href="https://www.openstreetmap.org/?mlat=55.7558&amp;mlon=37.6173#map=18/55.7558/37.6173"');
    expect(page.body).toContain(`href="https://www.openstreetmap.org/search?query=${encodeURIComponent('Москва, Тверская ул., 7')}"`);
    // No latitude/longitude inputs of their own.
    expect(page.body).not.toMatch(/name="loc\d_(lat|lon)"/);
    const csrf = owner.csrf(page.body);

    const onlyPoint = await owner.post('/app/settings/locations', { _csrf: csrf, loc0_coords: '55.7558, 37.6173' });
    expect(onlyPoint.statusCode).toBe(422);
    expect(onlyPoint.body).toContain('Укажите адрес точки.');
    const onlyAddress = await owner.post('/app/settings/locations', { _csrf: csrf, loc0_addr: 'Москва, Арбат, 1' });
    expect(onlyAddress.statusCode).toBe(422);
    expect(onlyAddress.body).toContain('Не удалось прочитать координаты');
    // The refused form keeps what was typed.
    expect(onlyAddress.body).toContain('value="Москва, Арбат, 1"');
    const unreadable = await owner.post('/app/settings/locations', { _csrf: csrf, loc0_addr: 'Москва, Арбат, 1', loc0_coords: 'у фонтана' });
    expect(unreadable.statusCode).toBe(422);

    const ok = await owner.post('/app/settings/locations', {
      _csrf: csrf,
      loc0_addr: 'Москва, Тверская ул., 7', loc0_coords: '55.7558, 37.6173',
      loc1_addr: 'Москва, Арбат, 1', loc1_coords: 'https://www.google.com/maps/place/Arbat/@55.7520,37.5925,17z',
    });
    expect(ok.statusCode).toBe(303);
    const stored = (await row()).locations as Array<Record<string, unknown>>;
    expect(stored.map((l) => [l.address, l.latitude, l.longitude])).toEqual([
      ['Москва, Тверская ул., 7', 55.7558, 37.6173],
      ['Москва, Арбат, 1', 55.752, 37.5925],
    ]);
    const pass = passJsonOf((await t.app.inject({ method: 'GET', url: `/c/${cardToken}/card.pkpass` })).rawPayload);
    expect(pass.locations).toEqual([
      { latitude: 55.7558, longitude: 37.6173 },
      { latitude: 55.752, longitude: 37.5925 },
    ]);
    // The API shows the address too.
    const api = await t.app.inject({ method: 'GET', url: `/api/v1/programs/${program.id}`, headers: { authorization: 'Bearer test-admin-key-0123456789abcdef' } });
    expect(api.json().locations[1]).toMatchObject({ address: 'Москва, Арбат, 1' });
  });
});
