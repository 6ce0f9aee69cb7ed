import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { sql } from 'kysely';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { createStaff } from '../support/cabinet.js';
import { issueConsentingCard, waitForCampaignDelivered } from '../support/campaigns.js';
import { launchChromium, requireChromium } from '../support/chromium.js';
import type { RoleHeaders } from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

const chromiumCheck = requireChromium();
const PASSWORD = 'economics password 1';
const SHOTS = path.resolve('test-artifacts/cabinet');
const DAY = 86_400_000;

// The economics screen, the segment flow and a campaign's effect page in a real Chromium, on a
// phone and on a desktop, in both languages: the figures an owner needs to answer "what does the
// program cost, what do we owe, and did the win-back campaign bring back customers who would not
// have come anyway". Screenshots go to test-artifacts/cabinet/.
describe.skipIf(chromiumCheck.skip)(`economics in Chromium (${TEST_DATABASE_KIND} database) ${chromiumCheck.reason}`, () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  let as: RoleHeaders;
  let programId: string;
  let campaignId: string;
  const contexts: BrowserContext[] = [];
  let now = new Date('2026-06-01T09:00:00Z');

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    t = await startTestApp({ clock: () => now });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const created = await createProgramWithKeys(t.app, 'econ-browser', { name: 'Кофейня «Экономика»', timeZone: 'Europe/Moscow' });
    as = created.as;
    programId = created.program.id;
    await createStaff(t.app, programId, { name: 'Ольга', role: 'owner', email: 'olga@econ.example', password: PASSWORD });
    await createStaff(t.app, programId, { name: 'Марина', role: 'marketer', email: 'marina@econ.example', password: PASSWORD });

    // Six months of history: cards enrolled each month, buying less often as they get older;
    // a tenth of the checks refunded, an expiry, birthdays, checks of customers without a card.
    const db = t.database.handle.db;
    let n = 0;
    for (let month = 0; month < 6; month++) {
      for (let i = 0; i < 8; i++) {
        n += 1;
        const card = await issueConsentingCard(t, as, { name: `Гость ${n}` });
        const enrolled = Date.UTC(2025, 11 + month, 3 + i * 3, 10);
        await db.updateTable('card').set({ created_at: new Date(enrolled) }).where('id', '=', card.id).execute();
        await db.updateTable('ledger_entry').set({ created_at: new Date(enrolled) }).where('card_id', '=', card.id).execute();
        const visits = Math.max(1, 10 - month - (i % 4) * 2);
        for (let v = 0; v < visits; v++) {
          const at = enrolled + (v * 13 + i) * DAY;
          if (at > now.getTime() - (i < 5 ? 70 : 1) * DAY) break; // most cards fell asleep: the audience of the campaign
          const amount = 40_000 + ((n * 7 + v * 13) % 20) * 10_000;
          const refunded = (n + v) % 10 === 0;
          const accrued = Math.floor(amount / 2000);
          const row = await db
            .insertInto('purchase')
            .values({ program_id: programId, card_id: card.id, amount, redeemed: 0, accrued, payable: amount, status: refunded ? 'refunded' : 'completed', created_at: new Date(at), refunded_at: refunded ? new Date(at + DAY) : null })
            .returning('id')
            .executeTakeFirstOrThrow();
          await db.insertInto('ledger_entry').values({ program_id: programId, card_id: card.id, kind: 'accrual', points: accrued, purchase_id: row.id, actor: 'test', created_at: new Date(at) }).execute();
          if (refunded) await db.insertInto('ledger_entry').values({ program_id: programId, card_id: card.id, kind: 'reversal', points: -accrued, purchase_id: row.id, actor: 'test', created_at: new Date(at + DAY) }).execute();
        }
        if (i === 2) await db.insertInto('ledger_entry').values({ program_id: programId, card_id: card.id, kind: 'birthday', points: 500, actor: 'test', created_at: new Date(enrolled + 40 * DAY) }).execute();
      }
    }
    for (let d = 0; d < 150; d += 3) {
      await db.insertInto('anonymous_check').values({ program_id: programId, amount: 30_000 + (d % 7) * 5_000, created_at: new Date(Date.UTC(2026, 0, 1) + d * DAY) }).execute();
    }
    await sql`UPDATE card SET balance = (SELECT coalesce(sum(points), 0) FROM ledger_entry WHERE card_id = card.id) WHERE program_id = ${programId}`.execute(db);
    await t.app.economics.tick();

    // A win-back campaign with a 20 % control group, and the recipients coming back more often.
    const campaign = await t.app.inject({
      method: 'POST',
      url: '/api/v1/campaigns',
      headers: as('marketer'),
      payload: { name: 'Возвращаем уснувших', message: { ru: 'Скучаем! Кофе в подарок', en: 'We miss you! Coffee on us' }, audience: { segments: ['sleeping', 'lost'] }, controlShare: 20, effectWindowDays: 14 },
    });
    campaignId = campaign.json().id;
    await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${campaignId}/send`, headers: as('marketer') });
    const sent = await waitForCampaignDelivered(t, as, campaignId);
    const start = new Date(sent.startedAt).getTime();
    const recipients = await db.selectFrom('campaign_recipient').select('card_id').where('campaign_id', '=', campaignId).execute();
    const control = await db.selectFrom('campaign_control').select('card_id').where('campaign_id', '=', campaignId).execute();
    for (const [k, r] of recipients.entries()) {
      if (k % 3 === 2) continue;
      await db.insertInto('purchase').values({ program_id: programId, card_id: r.card_id, amount: 55_000, redeemed: 0, accrued: 27, payable: 55_000, created_at: new Date(start + (2 + (k % 5)) * DAY) }).execute();
    }
    if (control[0]) await db.insertInto('purchase').values({ program_id: programId, card_id: control[0].card_id, amount: 45_000, redeemed: 0, accrued: 22, payable: 45_000, created_at: new Date(start + 4 * DAY) }).execute();
    now = new Date(start + 16 * DAY);
    await t.app.economics.tick();
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
  async function signIn(page: Page, email: string) {
    await page.goto(`${base}/app/sign-in`);
    await page.fill('#f-email', email);
    await page.fill('#f-password', PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL((url) => url.pathname.startsWith('/app') && !url.pathname.startsWith('/app/sign-in'));
  }
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  /** Nothing wider than the screen: the page does not scroll sideways (wide tables scroll in their own box). */
  const fitsWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

  it('owner: the economics screen on a phone and on a desktop, charts with their tables, CSV', async () => {
    const phone = await open({ width: 390, height: 844 });
    await signIn(phone, 'olga@econ.example');
    await phone.goto(`${base}/app/economics?from=2026-01-01&to=2026-06-16&groupBy=month`);
    expect(await phone.locator('h1').innerText()).toBe('Экономика программы');
    expect(await phone.locator('[data-figure=liability]').innerText()).toMatch(/₽/);
    expect(await phone.locator('[data-figure=member-share]').innerText()).toMatch(/%/);
    for (const id of ['chart-liability', 'chart-points', 'chart-revenue', 'chart-members', 'chart-cohorts']) {
      expect(await phone.locator(`#${id} svg[role=img]`).getAttribute('aria-label'), id).toBeTruthy();
      expect(await phone.locator(`#${id} details table`).count(), id).toBe(1);
    }
    expect(await phone.locator('#chart-cohorts rect').count()).toBeGreaterThan(10);
    expect(await phone.locator('table[data-table=cltv-tiers] tbody tr').count()).toBeGreaterThan(0);
    expect(await phone.locator('table[data-table=program-cost] tr[data-kind=birthday]').count()).toBe(1);
    expect(await fitsWidth(phone)).toBe(true);
    // The SVG text stays readable on the phone: a chart's 12 px labels are drawn at least 11 px high.
    const labelHeight = await phone.locator('#chart-liability svg text').first().evaluate((el) => el.getBoundingClientRect().height);
    expect(labelHeight).toBeGreaterThanOrEqual(11);
    await shot(phone, 'economics-phone-ru');

    const href = await phone.locator('a[href*="table=cohorts"]').getAttribute('href');
    const csv = await phone.request.get(`${base}${href}`);
    expect(csv.status()).toBe(200);
    expect(csv.headers()['content-type']).toBe('text/csv; charset=utf-8');
    expect((await csv.text()).split('\r\n')[0]).toBe('cohort,cards,months_since,active,retention,paid,cltv');

    const desktop = await open({ locale: 'en-US' });
    await signIn(desktop, 'olga@econ.example');
    await desktop.goto(`${base}/app/economics?from=2026-01-01&to=2026-06-16&groupBy=week&lang=en`);
    expect(await desktop.locator('h1').innerText()).toBe('Program economics');
    expect(await desktop.locator('#chart-points rect').count()).toBeGreaterThan(20);
    await shot(desktop, 'economics-desktop-en');
  });

  it('marketer: the campaign effect against the control group, and the segment flow', async () => {
    const page = await open();
    await signIn(page, 'marina@econ.example');
    await page.goto(`${base}/app/campaigns/${campaignId}`);
    const effect = page.locator('[data-effect]');
    expect(await effect.locator('h2').innerText()).toBe('Эффект рассылки');
    expect(await effect.locator('[data-verdict]').innerText()).toMatch(/Рассылка принесла примерно \d+ покупател/);
    expect(await effect.locator('[data-reactivated]').innerText()).toMatch(/^Вернулись: получатели — \d+ из \d+, контрольная группа — \d+ из \d+\.$/);
    expect(await effect.locator('table[data-table=effect] tbody tr').count()).toBe(3);
    for (const id of ['chart-effect-conversion', 'chart-effect-revenue']) {
      expect(await page.locator(`#${id} svg`).getAttribute('aria-label'), id).toMatch(/95 %/);
    }
    await shot(page, 'campaign-effect-ru');
    const phone = await open({ width: 390, height: 844, locale: 'en-US' });
    await signIn(phone, 'marina@econ.example');
    await phone.goto(`${base}/app/campaigns/${campaignId}?lang=en`);
    expect(await phone.locator('[data-effect] h2').innerText()).toBe('Campaign effect');
    expect(await fitsWidth(phone)).toBe(true);
    await shot(phone, 'campaign-effect-phone-en');

    await page.goto(`${base}/app/segments`);
    expect(await page.locator('#chart-segment-flow svg path').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-moved]').innerText()).toMatch(/Сменили сегмент: \d+/);
    await shot(page, 'segments-flow-ru');

    await page.goto(`${base}/app/campaigns/new`);
    expect(await page.locator('#f-controlShare').inputValue()).toBe('10');
    expect(await page.locator('#f-effectWindowDays').inputValue()).toBe('14');
  });
});
