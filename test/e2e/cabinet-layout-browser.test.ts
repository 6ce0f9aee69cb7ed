import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { createStaff } from '../support/cabinet.js';
import { launchChromium, requireChromium } from '../support/chromium.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

const chromiumCheck = requireChromium();
const PASSWORD = 'layout password 1';
const SHOTS = path.resolve('test-artifacts/cabinet-layout');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

// The cabinet's layout rules (issue #15): the sections grouped (Till / Marketing / Program /
// Developers) in a sidebar on a desktop and a one-line menu on a phone, so the till's search
// field is on the first screen of a 390×844 phone; no word broken mid-word; nothing wider than
// the phone. Screenshots of every screen at both sizes go to test-artifacts/cabinet-layout/.
describe.skipIf(chromiumCheck.skip)(`cabinet layout in Chromium (${TEST_DATABASE_KIND} database) ${chromiumCheck.reason}`, () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    t = await startTestApp({ env: { PUBLIC_URL: 'http://wallet.example' } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const { program, as } = await createProgramWithKeys(t.app, 'layout', { name: 'Кофейня «Раскладка»' });
    await createStaff(t.app, program.id, { name: 'Ольга Владелица', role: 'owner', email: 'olga@layout.example', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Кира', role: 'cashier', email: 'kira@layout.example', password: PASSWORD });
    await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Иван Петров', phone: '+79161112233' }, consent: true } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  async function signedIn(email: string, viewport: { width: number; height: number }): Promise<Page> {
    const context = await browser.newContext({ viewport, locale: 'ru-RU' });
    const page = await context.newPage();
    await page.goto(`${base}/app/sign-in`);
    await page.fill('#f-email', email);
    await page.fill('#f-password', PASSWORD);
    await page.press('#f-password', 'Enter');
    await page.waitForURL((url) => url.pathname.startsWith('/app') && !url.pathname.startsWith('/app/sign-in'));
    return page;
  }

  /** Words of the navigation and the figures that the browser broke over two lines. */
  const brokenWords = (page: Page) =>
    page.evaluate(() => {
      const broken: string[] = [];
      for (const el of Array.from(document.querySelectorAll('.sections a, .figures dd, .figures dt, th, h1'))) {
        if ((el as HTMLElement).offsetParent === null) continue; // hidden (the other navigation)
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const text = node.textContent ?? '';
          for (const match of text.matchAll(/\p{L}{2,}/gu)) {
            const range = document.createRange();
            range.setStart(node, match.index!);
            range.setEnd(node, match.index! + match[0].length);
            const lines = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
            if (lines.size > 1) broken.push(match[0]);
          }
        }
      }
      return broken;
    });

  const overflowsSideways = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);

  it('a cashier on a 390×844 phone: the search field is on the first screen, the menu is one line', async () => {
    const page = await signedIn('kira@layout.example', PHONE);
    await page.goto(`${base}/app/cashier`);
    const field = await page.locator('#f-q').boundingBox();
    expect(field).not.toBeNull();
    expect(field!.y).toBeGreaterThanOrEqual(0);
    expect(field!.y + field!.height).toBeLessThanOrEqual(PHONE.height);
    expect(await page.evaluate(() => window.scrollY)).toBe(0);
    // The sidebar is not shown; the menu is closed and takes one line.
    expect(await page.locator('.side').isVisible()).toBe(false);
    const menu = await page.locator('details.menu > summary').boundingBox();
    expect(menu!.height).toBeLessThan(60);
    expect(await overflowsSideways(page)).toBe(false);
    await page.screenshot({ path: path.join(SHOTS, 'cashier-phone.png') });
    // Opened, the menu shows the sections the cashier may open.
    await page.locator('details.menu > summary').click();
    await expect.poll(() => page.locator('details.menu .sections a', { hasText: 'Касса' }).isVisible()).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, 'cashier-phone-menu.png') });
    await page.context().close();
  });

  it('an owner on a 1280×800 desktop: grouped sidebar, the till field visible; every screen on both sizes without broken words', async () => {
    const desktop = await signedIn('olga@layout.example', DESKTOP);
    await desktop.goto(`${base}/app/cashier`);
    expect(await desktop.locator('.side').isVisible()).toBe(true);
    expect(await desktop.locator('details.menu').isVisible()).toBe(false);
    const groups = await desktop.locator('.side .group').allTextContents();
    expect(groups).toEqual(['Маркетинг', 'Программа', 'Разработчикам']);
    // The till (a group of one) is a link of its own, first.
    expect(await desktop.locator('.side .sections a').first().textContent()).toBe('Касса');
    const field = await desktop.locator('#f-q').boundingBox();
    expect(field!.y + field!.height).toBeLessThanOrEqual(DESKTOP.height);
    // One row of sections no longer: the sidebar is as tall as its links, the page starts at the top.
    const links = await desktop.locator('.side .sections a').evaluateAll((els) => els.map((el) => (el as HTMLElement).getBoundingClientRect().left));
    expect(new Set(links.map(Math.round)).size).toBe(1);

    const screens = await desktop.locator('.side .sections a').evaluateAll((els) => els.map((el) => (el as HTMLAnchorElement).getAttribute('href')!));
    expect(screens.length).toBeGreaterThanOrEqual(13);
    const phone = await signedIn('olga@layout.example', PHONE);
    const problems: string[] = [];
    for (const screen of screens) {
      for (const [size, page] of [['desktop', desktop], ['phone', phone]] as const) {
        const response = await page.goto(`${base}${screen}`);
        expect(response?.status(), screen).toBe(200);
        const name = screen.replace(/^\/app\/?/, '') || 'home';
        await page.screenshot({ path: path.join(SHOTS, `${name}-${size}.png`), fullPage: true });
        for (const word of await brokenWords(page)) problems.push(`${screen} (${size}): "${word}" broken over two lines`);
        if (size === 'phone' && (await overflowsSideways(page))) problems.push(`${screen} (phone): wider than the screen`);
      }
    }
    expect(problems).toEqual([]);
    // 14 screens × 2 sizes with screenshots: minutes on a busy 2-core machine.
  }, 300_000);
});
