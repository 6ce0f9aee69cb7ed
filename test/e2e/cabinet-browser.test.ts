import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordWalletEvent } from '../../src/enrollment/funnel.js';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { createStaff } from '../support/cabinet.js';
import { issueConsentingCard, setHistory } from '../support/campaigns.js';
import { launchChromium, requireChromium } from '../support/chromium.js';
import type { RoleHeaders } from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf } from '../support/pkpass.js';

const chromiumCheck = requireChromium();
const PUBLIC_URL = 'http://wallet.example';
const PASSWORD = 'browser password 1';
const SHOTS = path.resolve('test-artifacts/cabinet');

// The cabinet in a real Chromium, one test per role: the cashier's keyboard-and-scanner flow and
// the pass that follows, the owner's design with its live preview and the next pass, the
// marketer's campaign to a segment watched to the end. Screenshots of every main screen in both
// languages go to test-artifacts/cabinet/.
describe.skipIf(chromiumCheck.skip)(`cabinet in Chromium (${TEST_DATABASE_KIND} database) ${chromiumCheck.reason}`, () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  let program: { id: string; slug: string };
  let as: RoleHeaders;
  let card: { id: string; number: string; installUrl: string };
  const contexts: BrowserContext[] = [];
  const now = new Date();

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    t = await startTestApp({ env: { PUBLIC_URL } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    ({ program, as } = await createProgramWithKeys(t.app, 'cabinet-browser', {
      name: 'Кофейня «Браузер»',
      design: { backgroundColor: '#3b2417', foregroundColor: '#fff8ee', labelColor: '#f0c987', logoText: { ru: 'Кофейня', en: 'Coffee' } },
      texts: { contacts: { ru: '+7 495 000-00-00', en: '+7 495 000-00-00' }, terms: { ru: '5 % баллами', en: '5 % back' } },
    }));
    const olga = await createStaff(t.app, program.id, { name: 'Ольга', role: 'owner', email: 'olga@coffee.example', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Марина', role: 'marketer', email: 'marina@coffee.example', password: PASSWORD });
    const kira = await createStaff(t.app, program.id, { name: 'Кира', role: 'cashier', email: 'kira@coffee.example', password: PASSWORD });

    card = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Иван Петров', phone: '+79161112233' }, consent: true } })).json();
    // Sleeping customers for the campaign, and a funnel for the statistics.
    for (let i = 0; i < 3; i++) {
      const sleeper = await issueConsentingCard(t, as, { name: `Соня ${i + 1}` });
      await setHistory(t, program.id, sleeper.id, now, 300, [80 + i]);
    }
    for (const [source, staffId, days] of [
      ['instagram', kira.id, [1, 2, 5]],
      ['poster', olga.id, [3, 9]],
      ['vk', kira.id, [12]],
    ] as const) {
      for (const daysAgo of days) {
        await t.app.inject({ method: 'GET', url: `/join/${program.slug}?utm_source=${source}&staff=${staffId}`, headers: { 'user-agent': 'Mozilla/5.0 (iPhone)' } });
        const issued = (
          await t.app.inject({
            method: 'POST',
            url: '/api/v1/cards',
            headers: as('pos'),
            payload: { holder: { name: `Гость ${source} ${daysAgo}`, phone: `+7926${String(1_000_000 + daysAgo * 10 + source.length).slice(-7)}` }, source, staffId },
          })
        ).json();
        await recordWalletEvent(t.database.handle.db, { programId: program.id, cardId: issued.id, wallet: daysAgo % 2 ? 'apple' : 'google', kind: 'installed', at: new Date(now.getTime() - daysAgo * 86_400_000) });
      }
    }
    browser = await launchChromium();
  });
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await t?.close();
  });

  async function open(options: { locale?: string; width?: number; height?: number } = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: options.height ?? 900 }, locale: options.locale ?? 'ru-RU' });
    contexts.push(context);
    return context.newPage();
  }

  /** Signs in with the keyboard only: the email field has the focus, Tab to the password, Enter. */
  async function signIn(page: Page, email: string, screenshot?: string) {
    await page.goto(`${base}/app/sign-in`);
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('f-email');
    if (screenshot) await shot(page, screenshot);
    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL((url) => url.pathname.startsWith('/app') && !url.pathname.startsWith('/app/sign-in'));
  }

  const focused = (page: Page) => page.evaluate(() => document.activeElement?.id ?? '');
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  /** Every form control has a label; one h1; a main landmark; a visible focus style. */
  async function checkAccessible(page: Page) {
    const unlabelled = await page.$$eval('main input:not([type=hidden]), main select, main textarea', (els) =>
      els.filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label')).map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unlabelled).toEqual([]);
    expect(await page.locator('main').count()).toBe(1);
    expect(await page.locator('h1').count()).toBe(1);
    expect(await page.locator('nav[aria-label]').count()).toBeGreaterThan(0);
  }

  async function balanceOnPass(page: Page): Promise<number> {
    const token = card.installUrl.split('/c/')[1];
    const res = await page.request.get(`${base}/c/${token}/card.pkpass`);
    expect(res.status()).toBe(200);
    const pass = passJsonOf(await res.body());
    return [...pass.storeCard.headerFields, ...pass.storeCard.primaryFields, ...pass.storeCard.secondaryFields].find((f: { key: string }) => f.key === 'balance').value;
  }

  it('cashier: keyboard and scanner — accrue, redeem (Enter in the points field), the pass follows; no settings', async () => {
    const page = await open();
    await signIn(page, 'kira@coffee.example', 'sign-in-ru');
    expect(new URL(page.url()).pathname).toBe('/app/cashier');
    await expect.poll(() => focused(page)).toBe('f-q');
    await checkAccessible(page);
    await shot(page, 'cashier-search-ru');

    // The scanner types the card number and Enter.
    await page.keyboard.type(card.number);
    await page.keyboard.press('Enter');
    await page.waitForURL(`**/app/cashier/cards/${card.id}`);
    await expect.poll(() => focused(page)).toBe('f-amount');
    await page.keyboard.type('1250.50');
    // The word agrees with the number (Intl.PluralRules in the browser too).
    await expect.poll(() => page.locator('#f-points-hint').innerText()).toContain('на этот чек: 375 баллов');
    await checkAccessible(page);
    await shot(page, 'cashier-card-ru');
    await page.keyboard.press('Enter');
    await page.waitForURL(/done=/);
    expect(await page.locator('[data-accrued]').innerText()).toBe('62');
    expect(await page.locator('[data-new-balance]').innerText()).toBe('1\u00a0062');
    await expect.poll(() => focused(page)).toBe('f-q'); // ready for the next customer
    await shot(page, 'cashier-result-ru');
    expect(await balanceOnPass(page)).toBe(1062);

    // Redeem: scan, amount, Tab to the points, leave it empty (= the most allowed), Enter.
    await page.keyboard.type(card.number);
    await page.keyboard.press('Enter');
    await page.waitForURL(`**/app/cashier/cards/${card.id}`);
    await expect.poll(() => focused(page)).toBe('f-amount');
    await page.keyboard.type('1000');
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('f-points');
    await page.keyboard.press('Enter');
    await page.waitForURL(/done=/);
    expect(await page.locator('[data-redeemed]').innerText()).toBe('300');
    expect(await page.locator('[data-payable]').innerText()).toBe('700,00\u00a0₽');
    expect(await page.locator('[data-new-balance]').innerText()).toBe('797');
    expect(await balanceOnPass(page)).toBe(797);

    // A double click charges once.
    await page.keyboard.type(card.number);
    await page.keyboard.press('Enter');
    await page.waitForURL(`**/app/cashier/cards/${card.id}`);
    await expect.poll(() => focused(page)).toBe('f-amount');
    await page.keyboard.type('100');
    await page.locator('[data-accrue]').dblclick();
    await page.waitForURL(/done=/);
    const purchases = await t.database.handle.db.selectFrom('purchase').select('id').where('card_id', '=', card.id).execute();
    expect(purchases).toHaveLength(3);
    // Esc on the card goes back to the search field.
    await page.goto(`${base}/app/cashier/cards/${card.id}`);
    await expect.poll(() => focused(page)).toBe('f-amount');
    await page.keyboard.press('Escape');
    expect(await focused(page)).toBe('f-q');

    const forbidden = await page.goto(`${base}/app/settings`);
    expect(forbidden!.status()).toBe(403);
    expect(await page.locator('h1').innerText()).toBe('Нет доступа');
    expect(await page.locator('nav a[href="/app/settings"]').count()).toBe(0);
    await shot(page, 'cashier-forbidden-ru');

    // English, remembered; and the till on a phone.
    await page.goto(`${base}/app/cashier/cards/${card.id}`);
    await page.getByRole('link', { name: 'English' }).click();
    await page.waitForURL(/lang=en/);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await shot(page, 'cashier-card-en');
    await page.goto(`${base}/app/cashier`);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await shot(page, 'cashier-search-en');

    const phone = await open({ width: 390, height: 844 });
    await signIn(phone, 'kira@coffee.example');
    await phone.goto(`${base}/app/cashier/cards/${card.id}`);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(phone, 'cashier-card-phone-ru');
  });

  it('owner: the design preview follows the fields, the next pass shows the saved design; every screen in both languages', async () => {
    const page = await open();
    await signIn(page, 'olga@coffee.example');
    await page.goto(`${base}/app/design`);
    const apple = page.locator('[data-preview="apple"]');
    expect(await apple.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(59, 36, 23)');
    await page.locator('#f-backgroundColor').fill('#0a7d4f');
    await expect.poll(() => apple.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(10, 125, 79)');
    expect(await page.locator('#pick-backgroundColor').inputValue()).toBe('#0a7d4f');
    await page.locator('#f-logoText_ru').fill('Зелёная кофейня');
    await expect.poll(() => apple.locator('[data-preview-slot="logoText"]').innerText()).toBe('Зелёная кофейня');
    // Google picks black text on a light background.
    await page.locator('#f-backgroundColor').fill('#f5e6c8');
    await expect.poll(() => page.locator('[data-preview="google"]').evaluate((el) => getComputedStyle(el).color)).toBe('rgb(0, 0, 0)');
    await page.locator('#f-backgroundColor').fill('#0a7d4f');
    await checkAccessible(page);
    await shot(page, 'owner-design-ru');
    await page.getByRole('button', { name: 'Сохранить' }).click();
    await page.waitForURL(/saved=1/);
    const token = card.installUrl.split('/c/')[1];
    const pass = passJsonOf(await (await page.request.get(`${base}/c/${token}/card.pkpass`)).body());
    expect(pass.backgroundColor).toBe('rgb(10, 125, 79)');
    expect(pass.logoText).toBe('Зелёная кофейня');

    const screens = ['/app', '/app/cashier', '/app/campaigns', '/app/campaigns/new', '/app/segments', '/app/stats', '/app/qr', '/app/settings', '/app/design', '/app/staff', '/app/keys', '/app/webhooks', '/app/account'];
    for (const lang of ['ru', 'en'] as const) {
      await page.goto(`${base}/app?lang=${lang}`);
      for (const screen of screens) {
        const res = await page.goto(`${base}${screen}`);
        expect([screen, res!.status()]).toEqual([screen, 200]);
        expect(await page.getAttribute('html', 'lang')).toBe(lang);
        await checkAccessible(page);
        await shot(page, `owner${screen.replace(/\//g, '-').replace(/^-app/, '') || '-home'}-${lang}`);
      }
    }
    // The statistics draw the funnel and the leaderboard from the data.
    await page.goto(`${base}/app/stats?lang=ru`);
    expect(await page.locator('#chart-funnel rect').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart-leaderboard rect').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-total="installs"]').innerText()).toBe('6');
  });

  it('marketer: a campaign to a segment with the previews and the audience size, sent and watched to the end', async () => {
    const page = await open({ locale: 'en-GB' });
    await signIn(page, 'marina@coffee.example', 'sign-in-en');
    expect(new URL(page.url()).pathname).toBe('/app');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await page.goto(`${base}/app/segments`);
    await page.getByRole('link', { name: 'Message the “Sleeping” segment' }).click();
    await page.waitForURL(/segment=sleeping/);
    expect(await page.locator('#f-segments-sleeping').isChecked()).toBe(true);
    expect(await page.locator('[data-audience-size]').innerText()).toBe('Recipients: 3 cards');
    // Adding a tier nobody has narrows the audience (and the number follows).
    await page.locator('label[for="f-tiers-general"]').click();
    await expect.poll(() => page.locator('[data-audience-size]').innerText()).toBe('Recipients: 0 cards');
    await page.locator('label[for="f-tiers-general"]').click();
    await expect.poll(() => page.locator('[data-audience-size]').innerText()).toBe('Recipients: 3 cards');

    await page.getByLabel('Name (only seen in the cabinet)').fill('We miss you');
    await page.getByLabel('Text in Russian').fill('Скучаем! Капучино в подарок до воскресенья');
    await page.getByLabel('Text in English').fill('We miss you! A free cappuccino until Sunday');
    await expect.poll(() => page.locator('[data-preview="lock-ru"] [data-preview-slot="msg-ru"]').innerText()).toBe('Скучаем! Капучино в подарок до воскресенья');
    expect(await page.locator('[data-preview="back"]').innerText()).toContain('A free cappuccino');
    await checkAccessible(page);
    await shot(page, 'marketer-campaign-new-en');
    await page.getByRole('button', { name: 'Send now' }).click();
    await page.waitForURL(/\/app\/campaigns\/[0-9a-f-]{36}$/);
    // The page polls and reloads when the campaign is done.
    await expect.poll(() => page.locator('[data-field="status"]').first().innerText(), { timeout: 40_000 }).toBe('sent');
    await expect.poll(() => page.locator('[data-field="delivered"]').innerText(), { timeout: 10_000 }).toBe('3');
    await shot(page, 'marketer-campaign-sent-en');
    await page.getByRole('link', { name: 'Русский' }).click();
    await page.waitForURL(/lang=ru/);
    await shot(page, 'marketer-campaign-sent-ru');
    await page.goto(`${base}/app/campaigns/new?segment=sleeping`);
    await shot(page, 'marketer-campaign-new-ru');
    expect((await page.goto(`${base}/app/cashier`))!.status()).toBe(403);
  });
});
