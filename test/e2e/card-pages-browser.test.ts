import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { createStaff } from '../support/cabinet.js';
import { launchChromium, requireChromium } from '../support/chromium.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { ANDROID_UA, DESKTOP_UA, IPHONE_UA } from '../support/join-form.js';

const chromiumCheck = requireChromium();
const SHOTS = path.resolve('test-artifacts/card-pages');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const PASSWORD = 'card pages password 1';

// Issue #15 in Chromium: the card page on an iPhone, an Android phone without Google Wallet and a
// desktop, the referral link's Copy and Share working (the inline script allowed by the CSP), and
// the settings sections on a phone and a desktop. Screenshots go to test-artifacts/card-pages/.
describe.skipIf(chromiumCheck.skip)(`card page and settings in Chromium (${TEST_DATABASE_KIND} database) ${chromiumCheck.reason}`, () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  let cardPath: string;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    t = await startTestApp({ env: { PUBLIC_URL: 'http://wallet.example' } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const { program, as } = await createProgramWithKeys(t.app, 'browser-pages', {
      name: 'Кофейня «Браузер»',
      design: { backgroundColor: '#0f5132', foregroundColor: '#ffffff', labelColor: '#cfe8dc' },
    });
    await createStaff(t.app, program.id, { name: 'Ольга', role: 'owner', email: 'olga@pages.example', password: PASSWORD });
    const card = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Иван', phone: '+79161230001' } } })).json();
    cardPath = new URL(card.installUrl).pathname;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  async function open(userAgent: string, viewport: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page; violations: string[] }> {
    const context = await browser.newContext({ viewport, userAgent, locale: 'ru-RU', isMobile: viewport === PHONE, hasTouch: viewport === PHONE });
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    await page.goto(`${base}${cardPath}`);
    return { context, page, violations };
  }
  const overflowsSideways = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);

  it('iPhone 390×844: the Apple badge on the first screen; Copy and Share work', async () => {
    const { context, page, violations } = await open(IPHONE_UA, PHONE);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    const badge = await page.locator('a[data-wallet="apple"]').boundingBox();
    expect(badge).not.toBeNull();
    expect(badge!.height).toBeGreaterThanOrEqual(44); // a touch target, as Apple asks of the badge
    expect(badge!.y + badge!.height).toBeLessThanOrEqual(PHONE.height);
    expect(badge!.x).toBeGreaterThanOrEqual(0);
    expect(badge!.x + badge!.width).toBeLessThanOrEqual(PHONE.width);
    expect(await page.locator('a[data-wallet="google"]').count()).toBe(0);
    expect(await overflowsSideways(page)).toBe(false);
    await page.screenshot({ path: path.join(SHOTS, 'card-iphone.png'), fullPage: true });

    // The script ran (the CSP allowed it by its hash): the buttons are shown.
    await expect.poll(() => page.locator('[data-copy]').isVisible()).toBe(true);
    expect(await page.locator('[data-share-native]').isVisible()).toBe(true);
    const link = await page.locator('#referral-link').inputValue();
    await page.locator('[data-copy]').click();
    await expect.poll(() => page.locator('#share-status').textContent()).toContain('Ссылка скопирована');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(link);

    // Share hands the link to the Web Share API where there is one.
    await page.evaluate(() => {
      (window as unknown as { shared: unknown[] }).shared = [];
      (navigator as unknown as { share: (data: unknown) => Promise<void> }).share = (data) => {
        (window as unknown as { shared: unknown[] }).shared.push(data);
        return Promise.resolve();
      };
    });
    await page.locator('[data-share-native]').click();
    const shared = await page.evaluate(() => (window as unknown as { shared: Array<{ url: string; text: string }> }).shared);
    expect(shared).toHaveLength(1);
    expect(shared[0].url).toBe(link);
    expect(shared[0].text).toContain('Кофейня');
    expect(violations).toEqual([]);
    await context.close();
  });

  it('Android 390×844 without Google Wallet: the barcode is on the first screen, then how to keep the page', async () => {
    const { context, page, violations } = await open(ANDROID_UA, PHONE);
    const qr = await page.locator('[data-barcode] svg').boundingBox();
    expect(qr).not.toBeNull();
    expect(qr!.y + qr!.height).toBeLessThanOrEqual(PHONE.height);
    expect(qr!.width).toBeGreaterThanOrEqual(180); // scannable from a till's scanner
    expect(await page.locator('[data-web-card]').isVisible()).toBe(true);
    expect(await page.locator('a[data-wallet]').count()).toBe(0);
    // The install button appears only when Chrome offers installation; the steps are always there.
    expect(await page.locator('[data-web-card] ol li').count()).toBe(2);
    expect(await overflowsSideways(page)).toBe(false);
    const manifest = await page.locator('link[rel="manifest"]').getAttribute('href');
    const res = await page.request.get(`${base}${manifest}`);
    expect((await res.json()).start_url).toBe(`${cardPath}?lang=ru`);
    await page.screenshot({ path: path.join(SHOTS, 'card-android-web-card.png'), fullPage: true });
    expect(violations).toEqual([]);
    await context.close();
  });

  it('desktop 1280×800 with Google configured: both buttons and the QR code of the page', async () => {
    t.app.ctx.links.googleEnabled = true;
    try {
      const { context, page, violations } = await open(DESKTOP_UA, DESKTOP);
      expect(await page.locator('a[data-wallet="apple"]').isVisible()).toBe(true);
      expect(await page.locator('a[data-wallet="google"]').isVisible()).toBe(true);
      const google = await page.locator('a[data-wallet="google"]').boundingBox();
      expect(google!.height).toBeGreaterThanOrEqual(48);
      await page.screenshot({ path: path.join(SHOTS, 'card-desktop.png'), fullPage: true });
      const phone = await open(ANDROID_UA, PHONE);
      expect(await phone.page.locator('a[data-wallet="google"]').isVisible()).toBe(true);
      expect(await overflowsSideways(phone.page)).toBe(false);
      await phone.page.screenshot({ path: path.join(SHOTS, 'card-android-google.png'), fullPage: true });
      expect([...violations, ...phone.violations]).toEqual([]);
      await phone.context.close();
      await context.close();
    } finally {
      t.app.ctx.links.googleEnabled = false;
    }
  });

  it('join page 390×844: the card preview, and the form starts on the first screen', async () => {
    const context = await browser.newContext({ viewport: PHONE, userAgent: IPHONE_UA, locale: 'ru-RU', isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await page.goto(`${base}/join/browser-pages`);
    const preview = await page.locator('[data-card-preview]').boundingBox();
    expect(preview!.width).toBeLessThanOrEqual(PHONE.width);
    const name = await page.locator('#f-name').boundingBox();
    expect(name!.y + name!.height).toBeLessThanOrEqual(PHONE.height);
    expect(await overflowsSideways(page)).toBe(false);
    await page.screenshot({ path: path.join(SHOTS, 'join-iphone.png'), fullPage: true });
    await context.close();
  });

  it('settings: each section on its own page with one Save, on a phone and a desktop', async () => {
    for (const [size, viewport] of [['phone', PHONE], ['desktop', DESKTOP]] as const) {
      const context = await browser.newContext({ viewport, locale: 'ru-RU' });
      const page = await context.newPage();
      await page.goto(`${base}/app/sign-in`);
      await page.fill('#f-email', 'olga@pages.example');
      await page.fill('#f-password', PASSWORD);
      await page.press('#f-password', 'Enter');
      await page.waitForURL((url) => url.pathname.startsWith('/app') && !url.pathname.startsWith('/app/sign-in'));
      for (const section of ['general', 'rules', 'mechanic', 'texts', 'locations']) {
        expect((await page.goto(`${base}/app/settings/${section}`))?.status()).toBe(200);
        expect(await page.locator('main button[type="submit"]').count()).toBe(1);
        expect(await page.locator('main form').count()).toBe(1);
        expect(await overflowsSideways(page)).toBe(false);
        await page.screenshot({ path: path.join(SHOTS, `settings-${section}-${size}.png`), fullPage: true });
      }
      // A store typed as an address and a pasted map link; after saving, the map links are there.
      await page.fill('#f-loc0_addr', 'Москва, Тверская ул., 7');
      await page.fill('#f-loc0_coords', 'https://www.openstreetmap.org/?mlat=55.7558&mlon=37.6173#map=18/55.7558/37.6173');
      await page.locator('main button[type="submit"]').click();
      await page.waitForURL((url) => url.search.includes('saved=1'));
      expect(await page.locator('#f-loc0_coords').inputValue()).toBe('55.7558, 37.6173');
      expect(await page.locator('[data-map-link]').first().getAttribute('href')).toBe('https://www.openstreetmap.org/?mlat=55.7558&mlon=37.6173#map=18/55.7558/37.6173');
      await page.screenshot({ path: path.join(SHOTS, `settings-locations-saved-${size}.png`), fullPage: true });
      await context.close();
    }
  }, 120_000);
});
