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
const PASSWORD = 'till password 17';
const SHOTS = path.resolve('test-artifacts/cashier-mechanics');
const SIZES = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } } as const;
const RUB = 100;
const name = (ru: string, en: string) => ({ ru, en });

// Issue #17 item 6: the till for a stamp card and a discount card, in Chromium, at a 390×844
// phone and a desktop: scan → the card shows its mechanic → amount (and lines) → «Рассчитать»
// shows what to charge and what the purchase earns → «Провести покупку» records exactly that.
// Screenshots go to test-artifacts/cashier-mechanics/.
describe.skipIf(chromiumCheck.skip)(`the till for stamp and discount cards in Chromium (${TEST_DATABASE_KIND} database) ${chromiumCheck.reason}`, () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  let coffee: Awaited<ReturnType<typeof createProgramWithKeys>>;
  let clothing: Awaited<ReturnType<typeof createProgramWithKeys>>;
  let outdoor: Awaited<ReturnType<typeof createProgramWithKeys>>;
  let phone = 4_440_000;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    t = await startTestApp({ env: { PUBLIC_URL: 'http://wallet.example' } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    coffee = await createProgramWithKeys(t.app, 'till-coffee', {
      name: 'Кофейня «Зерно»',
      rules: { mechanic: 'stamps', welcomeBonus: 0, stamps: { perReward: 6, reward: { name: name('Кофе в подарок', 'A free coffee') } } },
    });
    clothing = await createProgramWithKeys(t.app, 'till-clothing', {
      name: 'Магазин «Лён»',
      rules: {
        mechanic: 'discount',
        welcomeBonus: 0,
        tiers: [
          { code: 'base', name: name('Базовая', 'Base'), accrualPercent: 0, threshold: 0, discountPercent: 5 },
          { code: 'gold', name: name('Золотая', 'Gold'), accrualPercent: 0, threshold: 50_000 * RUB, discountPercent: 10 },
        ],
        categories: [{ category: 'tobacco', exclude: true }],
      },
    });
    outdoor = await createProgramWithKeys(t.app, 'till-outdoor', {
      name: 'Снаряжение «Тропа»',
      rules: { categories: [{ category: 'premium', multiplier: 2 }, { category: 'tobacco', exclude: true }] },
    });
    await createStaff(t.app, outdoor.program.id, { name: 'Ян', role: 'cashier', email: 'yan@outdoor.example', password: PASSWORD });
    await createStaff(t.app, coffee.program.id, { name: 'Кира', role: 'cashier', email: 'kira@coffee.example', password: PASSWORD });
    await createStaff(t.app, clothing.program.id, { name: 'Лев', role: 'cashier', email: 'lev@clothing.example', password: PASSWORD });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  async function issue(p: typeof coffee) {
    phone += 1;
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: p.as('pos'), payload: { holder: { name: 'Мария Соколова', phone: `+7916${phone}` } } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }

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

  /** The scanner types the number and Enter; a single match opens the card. */
  async function scan(page: Page, number: string) {
    await page.goto(`${base}/app/cashier`);
    await page.fill('#f-q', number);
    await page.press('#f-q', 'Enter');
    await page.waitForURL(/\/app\/cashier\/cards\//);
  }
  const text = async (page: Page, selector: string) => ((await page.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
  const overflowsSideways = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  const db = () => t.database.handle.db;

  for (const [size, viewport] of Object.entries(SIZES)) {
    it(`serves a stamp card at the till (${size}): 5 / 6, the quote says the sixth stamp completes the card, confirming records it`, async () => {
      const card = await issue(coffee);
      for (let i = 1; i <= 5; i++) {
        const res = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${card.id}/purchases`, headers: { ...coffee.as('pos'), 'idempotency-key': `${size}-${i}` }, payload: { amount: 250 * RUB } });
        expect(res.statusCode).toBe(201);
      }
      const page = await signedIn('kira@coffee.example', viewport);
      await scan(page, card.number);
      expect(await text(page, '[data-stamps]')).toBe('5 / 6');
      // No points on a stamp card's till: no points field, no balance figure.
      expect(await page.locator('[data-points]').count()).toBe(0);
      expect(await page.locator('[data-balance]').count()).toBe(0);

      // Enter in the amount field quotes (the first button of a stamp card's form); nothing is recorded yet.
      await page.fill('#f-amount', '250');
      await page.press('#f-amount', 'Enter');
      await page.locator('[data-quote-result]').waitFor();
      expect(await text(page, '[data-q-payable]')).toBe('250,00 ₽');
      expect(await text(page, '[data-q-stamps-added]')).toBe('1');
      expect(await text(page, '[data-q-stamps-after]')).toBe('0 / 6');
      expect(await text(page, '[data-q-reward]')).toContain('Кофе в подарок');
      expect(await db().selectFrom('purchase').select('id').where('card_id', '=', card.id).execute()).toHaveLength(5);
      expect(await overflowsSideways(page)).toBe(false);
      await page.screenshot({ path: path.join(SHOTS, `stamps-quote-${size}.png`), fullPage: true });

      await page.click('[data-confirm-purchase]');
      await page.locator('[data-result]').waitFor();
      expect(await text(page, '[data-stamps-added]')).toBe('1');
      expect(await text(page, '[data-stamps-now]')).toBe('0 / 6');
      expect(await text(page, '[data-reward-earned]')).toContain('Кофе в подарок');
      await page.screenshot({ path: path.join(SHOTS, `stamps-done-${size}.png`), fullPage: true });
      const row = await db().selectFrom('card').select('stamps').where('id', '=', card.id).executeTakeFirstOrThrow();
      expect(row.stamps).toBe(0);
      const rewards = await db().selectFrom('stamp_rewards').select('status').where('card_id', '=', card.id).execute();
      expect(rewards).toEqual([{ status: 'earned' }]);
      // A reload of the result page (or a resent confirm) records nothing twice.
      await page.reload();
      expect(await db().selectFrom('purchase').select('id').where('card_id', '=', card.id).execute()).toHaveLength(6);
      await page.context().close();
    });

    it(`serves a discount card at the till (${size}): 5 % off the eligible lines, tobacco excluded, confirm charges exactly the quote`, async () => {
      const card = await issue(clothing);
      const page = await signedIn('lev@clothing.example', viewport);
      await scan(page, card.number);
      expect(await text(page, '[data-discount]')).toBe('5 %');
      expect(await text(page, '[data-next-level]')).toBe('10 % — осталось купить на 50 000,00 ₽');

      // A line the till cannot read is refused with its number, nothing quoted.
      await page.fill('#f-items', 'джинсы 1000');
      await page.click('[data-quote]');
      expect(await text(page, '.error')).toContain('Строка 1');
      expect(await page.locator('[data-quote-result]').count()).toBe(0);

      await page.fill('#f-amount', '');
      await page.fill('#f-items', 'джинсы; clothes; 1; 1000\nсигареты; tobacco; 1; 300');
      await page.click('[data-quote]');
      await page.locator('[data-quote-result]').waitFor();
      expect(await text(page, '[data-q-amount]')).toBe('1 300,00 ₽');
      expect(await text(page, '[data-q-eligible]')).toBe('1 000,00 ₽');
      expect(await text(page, '[data-q-discount]')).toBe('50,00 ₽');
      expect(await text(page, '[data-q-payable]')).toBe('1 250,00 ₽');
      expect(await overflowsSideways(page)).toBe(false);
      await page.screenshot({ path: path.join(SHOTS, `discount-quote-${size}.png`), fullPage: true });

      await page.click('[data-confirm-purchase]');
      await page.locator('[data-result]').waitFor();
      expect(await text(page, '[data-discount-given]')).toBe('50,00 ₽');
      expect(await text(page, '[data-payable]')).toBe('1 250,00 ₽');
      await page.screenshot({ path: path.join(SHOTS, `discount-done-${size}.png`), fullPage: true });
      const purchase = await db().selectFrom('purchase').select(['amount', 'discount', 'payable', 'items']).where('card_id', '=', card.id).executeTakeFirstOrThrow();
      expect({ amount: Number(purchase.amount), discount: Number(purchase.discount), payable: Number(purchase.payable) }).toEqual({ amount: 1300 * RUB, discount: 50 * RUB, payable: 1250 * RUB });
      expect(purchase.items).toHaveLength(2);
      await page.context().close();
    });
  }

  it('applies a coupon at the till of a points program: listed on the card, offered by the quote, priced, redeemed once on confirm', async () => {
    const definition = await t.app.inject({
      method: 'POST',
      url: '/api/v1/coupons/definitions',
      headers: outdoor.as('admin'),
      payload: { title: { ru: 'Минус 200 ₽', en: '200 RUB off' }, kind: 'amount', amount: 200 * RUB, validDays: 30 },
    });
    expect(definition.statusCode, definition.body).toBe(201);
    const card = await issue(outdoor);
    const issued = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${card.id}/coupons`, headers: outdoor.as('admin'), payload: { definitionId: definition.json().id } });
    expect(issued.statusCode, issued.body).toBe(201);
    const code: string = issued.json().code;

    const page = await signedIn('yan@outdoor.example', SIZES.desktop);
    await scan(page, card.number);
    expect(await text(page, `[data-coupon-code="${code}"]`)).toContain(code);
    // Quoted without a coupon: the quote offers it with what the till would then charge.
    await page.fill('#f-amount', '1000');
    await page.click('[data-quote]');
    await page.locator('[data-quote-result]').waitFor();
    expect(await text(page, '[data-q-coupons]')).toContain(`(${code}): −200,00 ₽, к оплате 800,00 ₽`);
    // With the coupon chosen: priced, then applied on confirm.
    await page.selectOption('#f-coupon', code);
    await page.click('[data-quote]');
    await page.locator('[data-q-coupon]').waitFor();
    expect(await text(page, '[data-q-coupon]')).toBe('−200,00 ₽');
    expect(await text(page, '[data-q-payable]')).toBe('800,00 ₽');
    await page.screenshot({ path: path.join(SHOTS, 'coupon-quote-desktop.png'), fullPage: true });
    await page.click('[data-confirm-purchase]');
    await page.locator('[data-result]').waitFor();
    expect(await text(page, '[data-coupon-used]')).toBe(`Купон ${code}: −200,00 ₽`);
    expect(await text(page, '[data-payable]')).toBe('800,00 ₽');
    const coupons = (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}/coupons`, headers: outdoor.as('pos') })).json();
    expect(JSON.stringify(coupons)).toContain('redeemed');
    // Used: no longer listed or offered.
    expect(await page.locator(`[data-coupon-code="${code}"]`).count()).toBe(0);
    expect(await page.locator('#f-coupon').count()).toBe(0);
    await page.context().close();
  });
});
