import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { artifactPath, launchChromium, requireChromium } from '../support/chromium.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { ANDROID_UA, IPHONE_UA } from '../support/join-form.js';

const chromiumCheck = requireChromium();
const PUBLIC_URL = 'http://wallet.example';
/** The join form's bot timing, shortened through deps; a page is submitted only after it. */
const MIN_FILL_MS = 300;
const pastBotTiming = () => new Promise((resolve) => setTimeout(resolve, MIN_FILL_MS + 200));

// The join flow in a real Chromium at a phone viewport: staff QR link → form → card page with the
// right wallet button; Russian and English; keyboard only. Screenshots go to test-artifacts/.
describe.skipIf(chromiumCheck.skip)(`join flow in Chromium (${TEST_DATABASE_KIND} database) ${chromiumCheck.reason}`, () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  let program: { id: string };
  let as: (role: 'admin' | 'marketer' | 'pos') => Record<string, string>;
  let staff: { id: string; joinUrl: string; qr: { svg: string } };
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    // The bot timing check is shortened through deps (not through anything a visitor can send).
    t = await startTestApp({ env: { PUBLIC_URL }, joinForm: { minFillMs: MIN_FILL_MS } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    ({ program, as } = await createProgramWithKeys(t.app, 'browser-shop', {
      name: 'Кофейня «Браузер»',
      defaultLanguage: 'ru',
      design: { backgroundColor: '#3b2417', foregroundColor: '#fff8ee', labelColor: '#f0c987' },
      texts: { terms: { ru: '5 % баллами с покупки.', en: '5 % back in points.' } },
    }));
    staff = (await t.app.inject({ method: 'POST', url: `/api/v1/programs/${program.id}/staff`, headers: as('admin'), payload: { name: 'Ольга', role: 'cashier' } })).json();
    browser = await launchChromium();
  });
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await t?.close();
  });

  /** What the staff member's QR code points at, on the test server. */
  const local = (publicUrl: string) => publicUrl.replace(PUBLIC_URL, base);

  async function phone(options: { userAgent: string; locale: string }): Promise<Page> {
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      userAgent: options.userAgent,
      locale: options.locale,
    });
    contexts.push(context);
    return context.newPage();
  }

  async function cardOf(page: Page) {
    const token = new URL(page.url()).pathname.split('/')[2];
    return t.database.handle.db.selectFrom('card').selectAll().where('public_token', '=', token).executeTakeFirstOrThrow();
  }

  it('iPhone, Russian: staff QR link → form → card page with "Add to Apple Wallet"', async () => {
    const page = await phone({ userAgent: IPHONE_UA, locale: 'ru-RU' });
    await page.goto(local(staff.joinUrl));
    // Quotes that nest: the name's own «…» becomes „…“ inside the title's «…».
    await expect.poll(() => page.title()).toBe('Карта «Кофейня „Браузер“»');
    expect(await page.getAttribute('html', 'lang')).toBe('ru');
    await expect.poll(() => page.locator('.bonus').innerText()).toContain('1\u00a0000 баллов в подарок');

    // Accessible form: every visible input has a label; the honeypot is out of reach.
    const unlabelled = await page.$$eval('form input:not([type=hidden])', (inputs) =>
      inputs.filter((i) => (i as HTMLInputElement).labels?.length === 0).map((i) => i.id),
    );
    expect(unlabelled).toEqual([]);
    expect(await page.getAttribute('#f-website', 'tabindex')).toBe('-1');
    expect(await page.getAttribute('#f-website', 'autocomplete')).toBe('off');
    expect(await page.locator('#f-website').isVisible()).toBe(true); // in the layout, but off screen
    const box = await page.locator('#f-website').boundingBox();
    expect(box!.x + box!.width).toBeLessThan(0);
    await page.screenshot({ path: artifactPath('join-iphone-ru.png'), fullPage: true });

    await page.getByLabel('Имя').fill('Мария');
    await page.getByLabel('Телефон').fill('8 916 700-00-01');
    await page.getByLabel(/E-mail/).fill('maria@example.com');
    await page.getByLabel(/Дата рождения/).fill('1991-05-17');
    await page.getByLabel(/Я согласен/).check();
    await pastBotTiming();
    await page.getByRole('button', { name: 'Получить карту' }).click();
    await page.waitForURL(/\/c\/[A-Za-z0-9_-]+$/);

    await expect.poll(() => page.locator('[data-wallet="apple"]').isVisible()).toBe(true);
    // The badge's words are its accessible name (the drawn artwork is aria-hidden).
    expect(await page.locator('[data-wallet="apple"]').getAttribute('aria-label')).toBe('Добавить в Apple Wallet');
    expect(await page.getByRole('link', { name: 'Добавить в Apple Wallet' }).isVisible()).toBe(true);
    expect(await page.locator('[data-wallet="google"]').count()).toBe(0);
    // A join-page card's welcome bonus is pending until the phone or a first purchase confirms it.
    expect(await page.locator('[data-balance]').innerText()).toBe('0 баллов');
    expect(await page.locator('[data-pending]').innerText()).toContain('1\u00a0000 баллов ждут подтверждения');
    expect(await page.locator('[data-tier]').innerText()).toBe('Стандартная');
    expect(await page.locator('svg.qr[role="img"]').count()).toBe(1); // the barcode; no page QR on a phone
    expect(await page.locator('#referral-link').inputValue()).toMatch(/^http:\/\/wallet\.example\/join\/browser-shop\?ref=[A-Z0-9]{8}$/);
    expect(await page.locator('[data-share]').count()).toBe(3);
    expect(await page.locator('[data-pkpass]').getAttribute('href')).toMatch(/\/card\.pkpass$/);
    await page.screenshot({ path: artifactPath('card-iphone-ru.png'), fullPage: true });

    const card = await cardOf(page);
    expect(card).toMatchObject({ holder_name: 'Мария', phone: '+79167000001', staff_id: staff.id, consent: true, balance: 0, pending_points: 1000 });

    // The Apple button downloads the signed pass.
    const pkpass = await page.request.get(`${base}${await page.locator('[data-wallet="apple"]').getAttribute('href')}`);
    expect(pkpass.status()).toBe(200);
    expect(pkpass.headers()['content-type']).toBe('application/vnd.apple.pkpass');
  });

  it('Android, English: a validation error keeps the values, then the card page hides Google until it is configured', async () => {
    const page = await phone({ userAgent: ANDROID_UA, locale: 'en-GB' });
    await page.goto(`${base}/join/browser-shop?utm_source=instagram`);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await page.getByLabel('Name').fill('Alex');
    await page.getByLabel('Phone').fill('12345');
    await pastBotTiming();
    await page.getByRole('button', { name: 'Get the card' }).click();
    await page.waitForLoadState('domcontentloaded');
    await expect.poll(() => page.locator('[role="alert"]').innerText()).toContain('This does not look like a phone number');
    expect(await page.getByLabel('Name').inputValue()).toBe('Alex');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('f-phone');
    await page.screenshot({ path: artifactPath('join-android-en-error.png'), fullPage: true });

    await page.getByLabel('Phone').fill('+7 916 700-00-02');
    await pastBotTiming();
    await page.getByRole('button', { name: 'Get the card' }).click();
    await page.waitForURL(/\/c\/[A-Za-z0-9_-]+$/);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.locator('[data-wallet="google"]').count()).toBe(0);
    expect(await page.locator('[data-wallet="apple"]').count()).toBe(0);
    // No Google Wallet here: the page is the card (barcode, add to home screen), not a .pkpass button.
    expect(await page.locator('[data-web-card]').isVisible()).toBe(true);
    expect(await page.locator('[data-wallet="pkpass"]').count()).toBe(0);
    expect((await cardOf(page)).source).toBe('instagram');

    t.app.ctx.links.googleEnabled = true;
    try {
      await page.reload();
      await expect.poll(() => page.locator('[data-wallet="google"]').isVisible()).toBe(true);
      expect(await page.getByRole('link', { name: 'Add to Google Wallet' }).isVisible()).toBe(true);
      expect(await page.locator('[data-wallet="google"]').getAttribute('href')).toMatch(/^\/c\/[A-Za-z0-9_-]+\/google$/);
      expect(await page.locator('[data-wallet="apple"]').count()).toBe(0);
      await page.screenshot({ path: artifactPath('card-android-en.png'), fullPage: true });
    } finally {
      t.app.ctx.links.googleEnabled = false;
    }
  });

  it('desktop, keyboard only: switch to English, fill, tick and submit with Tab/Space/Enter; both wallet buttons and a QR for the phone', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'ru-RU' });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${base}/join/browser-shop?source=poster`);
    expect(await page.getAttribute('html', 'lang')).toBe('ru');

    // The language link is the first stop; Enter follows it and the choice is remembered.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('English');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none'); // a visible focus indicator
    await page.keyboard.press('Enter');
    await page.waitForURL(/lang=en/);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(new URL(page.url()).searchParams.get('source')).toBe('poster');

    const focused = () => page.evaluate(() => document.activeElement?.id ?? '');
    const tabTo = async (id: string) => {
      for (let i = 0; i < 20 && (await focused()) !== id; i++) {
        await page.keyboard.press('Tab');
        expect(await focused()).not.toBe('f-website'); // never the honeypot
      }
      expect(await focused()).toBe(id);
    };
    await tabTo('f-name');
    await page.keyboard.type('Keyboard User');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('f-phone');
    await page.keyboard.type('+79167000003');
    await tabTo('f-consent');
    await page.keyboard.press('Space');
    expect(await page.isChecked('#f-consent')).toBe(true);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (document.activeElement as HTMLButtonElement).type)).toBe('submit');
    await page.screenshot({ path: artifactPath('join-desktop-en-keyboard.png'), fullPage: true });
    await pastBotTiming();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/c\/[A-Za-z0-9_-]+$/);

    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.locator('[data-wallet="apple"]').isVisible()).toBe(true);
    expect(await page.locator('[data-wallet="google"]').count()).toBe(0); // Google not configured
    expect(await page.locator('svg.qr').count()).toBe(2); // the page for the phone, and the barcode
    expect(await page.locator('svg[aria-label="QR code of the link to this page"]').isVisible()).toBe(true);
    const card = await cardOf(page);
    expect(card).toMatchObject({ holder_name: 'Keyboard User', source: 'poster', consent: true });
    expect(card.consent_version).toMatch(/^en-/);
    await page.screenshot({ path: artifactPath('card-desktop-en.png'), fullPage: true });

    t.app.ctx.links.googleEnabled = true;
    try {
      await page.reload();
      expect(await page.locator('[data-wallet="apple"]').isVisible()).toBe(true);
      expect(await page.locator('[data-wallet="google"]').isVisible()).toBe(true);
      await page.screenshot({ path: artifactPath('card-desktop-en-google.png'), fullPage: true });
    } finally {
      t.app.ctx.links.googleEnabled = false;
    }
  });

  it('the staff QR code SVG parses as SVG in the browser', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const response = await page.goto(local(staff.qr.svg));
    expect(response!.status()).toBe(200);
    const parsed = await page.evaluate(() => ({
      root: document.documentElement.localName,
      errors: document.getElementsByTagName('parsererror').length,
      width: document.documentElement.getAttribute('width'),
    }));
    expect(parsed).toEqual({ root: 'svg', errors: 0, width: '1024' });
    await page.screenshot({ path: artifactPath('staff-qr.png') });
  });
});
