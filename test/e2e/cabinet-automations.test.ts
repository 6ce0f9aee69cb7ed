import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localParts } from '../../src/campaigns/automations.js';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import type { RoleHeaders } from '../support/apple-device.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { issueConsentingCard } from '../support/campaigns.js';
import { launchChromium, requireChromium } from '../support/chromium.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

const chromiumCheck = requireChromium();
const PASSWORD = 'automations password 1';
const SHOTS = path.resolve('test-artifacts/cabinet');

// The automations screen (/app/automations): the marketer switches automations on with their texts
// through the same validation as PUT /api/v1/automations, errors stand next to their fields and
// nothing is stored, the campaigns an automation made are linked, a cashier cannot open it; and
// the same in Chromium, with screenshots in both languages.
describe(`cabinet automations (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let base: string;
  let program: { id: string; timeZone: string };
  let as: RoleHeaders;
  let marketer: CabinetClient;
  let browser: Browser | undefined;

  beforeAll(async () => {
    t = await startTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    ({ program, as } = await createProgramWithKeys(t.app, 'cabinet-automations', { name: 'Кофейня «Повод»' }));
    await createStaff(t.app, program.id, { name: 'Марина', role: 'marketer', email: 'marina@occasion.example', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Кира', role: 'cashier', email: 'kira@occasion.example', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Ольга', role: 'owner', email: 'olga@occasion.example', password: PASSWORD });
    marketer = await signIn(t.app, 'marina@occasion.example', PASSWORD);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  const stored = async () =>
    (await t.database.handle.db.selectFrom('program').select('automations').where('id', '=', program.id).executeTakeFirstOrThrow()).automations as Record<string, any>;
  const apiAutomations = async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/automations', headers: as('marketer') });
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  /** The form as the page shows it (every field), with `changes` applied. */
  function formOf(body: string, changes: Record<string, string | undefined>): Record<string, string> {
    const form: Record<string, string> = { _csrf: marketer.csrf(body) };
    for (const m of body.matchAll(/<input id="[^"]*" name="([^"]+)" type="(?:text|checkbox)"[^>]*?value="([^"]*)"([^>]*)>/g)) {
      if (m[1] === '_csrf') continue;
      if (/type="checkbox"/.test(m[0]) && !/ checked/.test(m[3])) continue;
      form[m[1]] = m[2];
    }
    for (const m of body.matchAll(/<textarea id="[^"]*" name="([^"]+)"[^>]*>([^<]*)<\/textarea>/g)) form[m[1]] = m[2].replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined) delete form[key];
      else form[key] = value;
    }
    return form;
  }

  it('shows every automation with its switch, texts and settings (defaults of the service)', async () => {
    const page = await marketer.get('/app/automations');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<a href="/app/automations" aria-current="page">Автоматизации</a>');
    for (const kind of ['birthday', 'winback', 'expiry', 'tierUpgrade']) {
      expect(page.body).toContain(`data-automation="${kind}"`);
      expect(page.body).toContain(`id="f-${kind}_enabled" name="${kind}_enabled" type="checkbox" role="switch"`);
    }
    expect(page.body).toContain('name="sendHour" type="text" value="10"');
    expect(page.body).toContain('name="birthday_bonusPoints" type="text" value="500"');
    expect(page.body).toContain('С днём рождения! Дарим вам бонусные баллы');
    expect(page.body).toContain('name="expiry_reminderMessage_en"');
    expect(page.body).toContain('data-no-expiry-rule'); // the program has no expiry rule
    expect(page.body).not.toContain('href="/app/settings/rules"'); // a marketer cannot open the settings
    const en = await marketer.get('/app/automations?lang=en');
    expect(en.body).toContain('<h1>Automations</h1>');
    expect(en.body).toContain('Happy birthday! Bonus points are on your card');
    await marketer.get('/app/automations?lang=ru');
  });

  it('refuses what the service refuses: errors next to the fields, nothing stored', async () => {
    const page = await marketer.get('/app/automations');
    const bad = await marketer.post(
      '/app/automations',
      formOf(page.body, { sendHour: '24', birthday_enabled: 'on', birthday_message_ru: '', birthday_bonusPoints: 'много' }),
    );
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('role="alert"');
    expect(bad.body).toMatch(/<p class="error" id="f-sendHour-error">Час — целое число от 0 до 23\.<\/p><input id="f-sendHour"[^>]*aria-invalid="true"/);
    expect(bad.body).toContain('id="f-birthday_message_ru-error">Напишите текст: от 1 до 300 символов.');
    expect(bad.body).toContain('id="f-birthday_bonusPoints-error">Целое число баллов от 0 до 1');
    expect(bad.body).toContain('href="#f-birthday_message_ru"');
    // What was typed stays in the form.
    expect(bad.body).toContain('name="birthday_bonusPoints" type="text" value="много"');
    expect(bad.body).toMatch(/id="f-birthday_enabled" name="birthday_enabled" type="checkbox" role="switch" value="on" checked/);
    expect(await stored()).toEqual({});

    // Points expiry needs the rule first (the service's 422), shown at its switch.
    const noRule = await marketer.post('/app/automations', formOf(page.body, { expiry_enabled: 'on' }));
    expect(noRule.statusCode).toBe(422);
    expect(noRule.body).toContain('id="f-expiry_enabled-error">Сначала задайте сгорание баллов в правилах программы');
    expect(await stored()).toEqual({});
    expect((await apiAutomations()).expiry.enabled).toBe(false);
  });

  it('saves through nextSettings, and links the campaigns an automation made', async () => {
    const page = await marketer.get('/app/automations');
    const saved = await marketer.post(
      '/app/automations',
      formOf(page.body, { sendHour: '0', tierUpgrade_enabled: 'on', tierUpgrade_message_ru: 'Ура! Ваш уровень: {tier}', birthday_enabled: 'on' }),
    );
    expect(saved.statusCode).toBe(303);
    expect(saved.headers.location).toBe('/app/automations?saved=1');
    const api = await apiAutomations();
    expect(api).toMatchObject({ sendHour: 0, birthday: { enabled: true, bonusPoints: 500 }, tierUpgrade: { enabled: true, message: { ru: 'Ура! Ваш уровень: {tier}' } } });
    expect(api.tierUpgrade.enabledSince).toEqual(expect.any(String));
    const after = await marketer.get('/app/automations?saved=1');
    expect(after.body).toContain('Автоматизации сохранены.');
    expect(after.body).toMatch(/data-state="tierUpgrade">включено с /);

    // A holder whose birthday is today (program time zone): the tick makes a birthday campaign.
    const local = localParts(new Date(), program.timeZone);
    await issueConsentingCard(t, as, { name: 'Именинник', birthday: `1990-${String(local.month).padStart(2, '0')}-${String(local.day).padStart(2, '0')}` });
    const made = await t.app.automations.tick();
    const birthday = made.find((c) => c.programId === program.id && c.automation === 'birthday');
    expect(birthday).toBeDefined();
    const withCampaign = await marketer.get('/app/automations');
    expect(withCampaign.body).toMatch(new RegExp(`<table data-recent="birthday"[\\s\\S]*?href="/app/campaigns/${birthday!.campaignId}"`));
    expect(withCampaign.body).toContain('data-recent="winback">Рассылок ещё не было.');
    // Switching one off keeps the others (the form is the whole object, as PUT).
    const off = await marketer.post('/app/automations', formOf(withCampaign.body, { tierUpgrade_enabled: undefined }));
    expect(off.statusCode).toBe(303);
    const api2 = await apiAutomations();
    expect(api2.tierUpgrade.enabled).toBe(false);
    expect(api2.birthday).toMatchObject({ enabled: true, enabledSince: api.birthday.enabledSince });
  });

  it('a cashier opens neither the screen nor its form, and has no link to it', async () => {
    const cashier = await signIn(t.app, 'kira@occasion.example', PASSWORD);
    const page = await cashier.get('/app/automations');
    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('Нет доступа');
    expect(page.body).not.toContain('href="/app/automations"');
    const csrf = cashier.csrf(page.body);
    expect((await cashier.post('/app/automations', { _csrf: csrf, birthday_enabled: 'on' })).statusCode).toBe(403);
    expect((await apiAutomations()).sendHour).toBe(0);
    const owner = await signIn(t.app, 'olga@occasion.example', PASSWORD);
    const ownerPage = await owner.get('/app/automations');
    expect(ownerPage.statusCode).toBe(200);
    expect(ownerPage.body).toContain('href="/app/settings/rules"');
  });

  describe.skipIf(chromiumCheck.skip)(`in Chromium ${chromiumCheck.reason}`, () => {
    async function open(locale = 'ru-RU'): Promise<Page> {
      browser ??= await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale });
      return context.newPage();
    }
    const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

    it('marketer: switches on the birthday automation with its texts; the API then shows it on', async () => {
      mkdirSync(SHOTS, { recursive: true });
      // Start from everything off.
      await t.app.inject({ method: 'PUT', url: '/api/v1/automations', headers: as('marketer'), payload: {} });
      const page = await open();
      await page.goto(`${base}/app/sign-in`);
      await page.locator('#f-email').fill('marina@occasion.example');
      await page.locator('#f-password').fill(PASSWORD);
      await page.keyboard.press('Enter');
      await page.waitForURL((url) => url.pathname === '/app');
      await page.getByRole('link', { name: 'Автоматизации' }).click();
      await page.waitForURL('**/app/automations');
      const unlabelled = await page.$$eval('main input:not([type=hidden]), main textarea', (els) =>
        els.filter((el) => (el as HTMLInputElement).labels?.length === 0).map((el) => el.outerHTML.slice(0, 80)),
      );
      expect(unlabelled).toEqual([]);
      await shot(page, 'marketer-automations-ru');

      const birthday = page.locator('[data-automation="birthday"]');
      expect(await birthday.getByRole('switch').isChecked()).toBe(false);
      await birthday.getByRole('switch').check();
      await birthday.getByLabel('Подарок, баллов').fill('300');
      await birthday.getByLabel('Текст по-русски').fill('С днём рождения! Капучино за наш счёт');
      await birthday.getByLabel('Текст по-английски').fill('Happy birthday! Cappuccino is on us');
      await page.getByRole('button', { name: 'Сохранить автоматизации' }).click();
      await page.waitForURL(/saved=1/);
      expect(await page.locator('[role="status"]').first().innerText()).toBe('Автоматизации сохранены.');
      expect(await page.locator('[data-automation="birthday"]').getByRole('switch').isChecked()).toBe(true);
      expect(await page.locator('[data-state="birthday"]').innerText()).toMatch(/^включено с /);

      const api = await apiAutomations();
      expect(api.birthday).toMatchObject({
        enabled: true,
        enabledSince: expect.any(String),
        bonusPoints: 300,
        message: { ru: 'С днём рождения! Капучино за наш счёт', en: 'Happy birthday! Cappuccino is on us' },
      });
      expect(api.winback.enabled).toBe(false);

      // An error in the browser: the summary links to the field.
      await page.getByLabel('Час отправки').fill('25');
      await page.getByRole('button', { name: 'Сохранить автоматизации' }).click();
      await page.locator('.summary[role="alert"]').waitFor();
      expect(await page.locator('.summary[role="alert"]').innerText()).toContain('Час — целое число от 0 до 23.');
      expect(await page.getAttribute('#f-sendHour', 'aria-invalid')).toBe('true');
      await shot(page, 'marketer-automations-error-ru');
      expect((await apiAutomations()).sendHour).toBe(api.sendHour);

      await page.goto(`${base}/app/automations?lang=en`);
      expect(await page.getAttribute('html', 'lang')).toBe('en');
      expect(await page.locator('h1').innerText()).toBe('Automations');
      await shot(page, 'marketer-automations-en');
    });
  });
});
