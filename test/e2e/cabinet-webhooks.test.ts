import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_EVENT_TYPES } from '../../src/webhooks/events.js';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import type { RoleHeaders } from '../support/apple-device.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { issueConsentingCard } from '../support/campaigns.js';
import { launchChromium, requireChromium } from '../support/chromium.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const chromiumCheck = requireChromium();
const PASSWORD = 'webhooks password 1';
const SHOTS = path.resolve('test-artifacts/cabinet');

// The webhooks screen (/app/webhooks) on top of src/webhooks/service.ts, the functions behind the
// API: create (the secret shown once), change URL and events, disable, rotate, delete, the delivery
// log; refused URLs (SSRF policy included) explained next to the field with nothing stored; a
// cashier cannot open it. Then the owner's whole round in Chromium, with screenshots.
describe(`cabinet webhooks (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let base: string;
  let program: { id: string };
  let as: RoleHeaders;
  let other: { program: { id: string }; as: RoleHeaders };
  let owner: CabinetClient;
  let receiver: WebhookReceiver;
  let browser: Browser | undefined;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    // The receiver is on 127.0.0.1: private networks must be allowed explicitly (src/webhooks/url-policy.ts).
    t = await startTestApp({ env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    ({ program, as } = await createProgramWithKeys(t.app, 'cabinet-webhooks', { name: 'Кофейня «Крюк»' }));
    other = await createProgramWithKeys(t.app, 'cabinet-webhooks-other');
    await createStaff(t.app, program.id, { name: 'Ольга', role: 'owner', email: 'olga@hook.example', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Марина', role: 'marketer', email: 'marina@hook.example', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Кира', role: 'cashier', email: 'kira@hook.example', password: PASSWORD });
    owner = await signIn(t.app, 'olga@hook.example', PASSWORD);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await receiver?.close();
  });

  const endpoints = () => t.database.handle.db.selectFrom('webhook_endpoint').selectAll().where('program_id', '=', program.id).execute();
  const apiWebhook = async (id: string) => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/webhooks/${id}`, headers: as('admin') });
    return { status: res.statusCode, body: res.json() };
  };
  const ALL_EVENTS = [...WEBHOOK_EVENT_TYPES];

  it('refuses bad URLs (the SSRF policy included) and empty events next to the field; nothing is stored', async () => {
    const page = await owner.get('/app/webhooks');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Вебхуков пока нет.');
    const csrf = owner.csrf(page.body);
    for (const [url, message] of [
      ['http://example.com/hook', 'Адрес должен начинаться с https://.'],
      ['https://169.254.10.5/hook', 'Адрес указывает на внутренний, частный или зарезервированный IP'],
      ['https://[::ffff:192.168.1.10]/hook', 'Адрес указывает на внутренний, частный или зарезервированный IP'],
      ['https://169.254.169.254/latest/meta-data', 'Адрес указывает на внутренний, частный или зарезервированный IP'],
      ['https://user:secret@example.com/hook', 'В адресе не должно быть логина и пароля'],
      ['https://example.com/hook#part', 'В адресе не должно быть части после #.'],
      ['example.com/hook', 'Это не полный адрес'],
      ['', 'Укажите адрес, начинающийся с https://'],
    ] as const) {
      const res = await owner.post('/app/webhooks', { _csrf: csrf, url, events: ['card.issued', 'purchase.created'] });
      expect([url, res.statusCode]).toEqual([url, 422]);
      expect(res.body).toMatch(new RegExp(`<p class="error" id="f-url-error">${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      expect(res.body).toMatch(/<input id="f-url"[^>]*aria-invalid="true"/);
      expect(res.body).toContain('href="#f-url"'); // the summary links to the field
      // The form keeps what was typed and chosen.
      expect(res.body).toContain('id="new-event-purchase-created" type="checkbox" name="events" value="purchase.created" checked');
      expect(res.body).not.toContain('id="new-event-card-removed" type="checkbox" name="events" value="card.removed" checked');
    }
    const noEvents = await owner.post('/app/webhooks', { _csrf: csrf, url: 'https://hooks.example.com/in' });
    expect(noEvents.statusCode).toBe(422);
    expect(noEvents.body).toContain('<p class="error" id="f-events-error">Выберите хотя бы одно событие.</p>');
    const unknown = await owner.post('/app/webhooks', { _csrf: csrf, url: 'https://hooks.example.com/in', events: 'card.exploded' });
    expect(unknown.statusCode).toBe(422);
    // English: the policy's own words.
    const en = await owner.post('/app/webhooks?lang=en', { _csrf: csrf, url: 'https://192.0.2.1/hook', events: 'card.issued' });
    expect(en.statusCode).toBe(422);
    expect(en.body).toContain('The URL is refused: Webhook URLs must not point to a private, loopback or reserved address (192.0.2.1)');
    await owner.get('/app/webhooks?lang=ru');
    expect(await endpoints()).toEqual([]);
  });

  it('creates an endpoint and shows its secret once; the delivery log follows; edits, rotation, disabling and deletion go through the service', async () => {
    const page = await owner.get('/app/webhooks');
    const csrf = owner.csrf(page.body);
    const created = await owner.post('/app/webhooks', { _csrf: csrf, url: receiver.url('/cabinet'), events: ['purchase.created', 'card.issued'] });
    expect(created.statusCode).toBe(200);
    const [row] = await endpoints();
    expect(row).toMatchObject({ url: receiver.url('/cabinet'), events: ['card.issued', 'purchase.created'], enabled: true });
    expect(row.secret).toMatch(/^whsec_/);
    expect(created.body).toContain(`<input id="new-secret" type="text" readonly value="${row.secret}"`);
    expect(created.body).toContain('показан только сейчас');
    // Never again: not on the list, not on the endpoint's page.
    const list = await owner.get('/app/webhooks');
    expect(list.body).toContain(`href="/app/webhooks/${row.id}"`);
    expect(list.body).not.toContain(row.secret);
    const pageOf = await owner.get(`/app/webhooks/${row.id}`);
    expect(pageOf.statusCode).toBe(200);
    expect(pageOf.body).not.toContain(row.secret);
    expect(pageOf.body).toContain('data-log-empty');

    // An event: the delivery log shows it.
    await issueConsentingCard(t, as, { name: 'Подписчик' });
    await waitFor(() => receiver.at('/cabinet').length > 0, { what: 'the card.issued delivery' });
    await waitFor(async () => (await owner.get(`/app/webhooks/${row.id}`)).body.includes('доставлено</span>'), { what: 'the delivery log' });
    const logged = await owner.get(`/app/webhooks/${row.id}`);
    expect(logged.body).toMatch(/<tr data-delivery="\d+">\s*<td>[^<]+<\/td><td class="mono">card\.issued<\/td>\s*<td><span class="badge ok">доставлено<\/span>/);
    expect((await owner.get(`/app/webhooks/${row.id}?status=failed`)).body).toContain('data-log-empty');
    expect((await owner.get('/app/webhooks')).body).toContain('доставлено: 1');

    // Edit: a refused URL changes nothing; then new events.
    const badEdit = await owner.post(`/app/webhooks/${row.id}`, { _csrf: csrf, url: 'https://169.254.0.9/x', events: ['card.issued'], enabled: 'on' });
    expect(badEdit.statusCode).toBe(422);
    expect(badEdit.body).toContain('id="f-url-error">Адрес указывает на внутренний');
    expect((await endpoints())[0]).toMatchObject({ url: receiver.url('/cabinet'), events: ['card.issued', 'purchase.created'] });
    const noEvents = await owner.post(`/app/webhooks/${row.id}`, { _csrf: csrf, url: receiver.url('/cabinet'), enabled: 'on' });
    expect(noEvents.statusCode).toBe(422);
    expect(noEvents.body).toContain('id="f-events-error"');
    const edited = await owner.post(`/app/webhooks/${row.id}`, { _csrf: csrf, url: receiver.url('/cabinet'), events: ['tier.changed', 'balance.changed'], enabled: 'on' });
    expect(edited.statusCode).toBe(303);
    expect(edited.headers.location).toBe(`/app/webhooks/${row.id}?saved=1`);
    expect((await apiWebhook(row.id)).body).toMatchObject({ events: ['balance.changed', 'tier.changed'], enabled: true });

    // Disable (the switch off), then on again.
    expect((await owner.post(`/app/webhooks/${row.id}`, { _csrf: csrf, url: receiver.url('/cabinet'), events: ['tier.changed'] })).statusCode).toBe(303);
    expect((await apiWebhook(row.id)).body).toMatchObject({ enabled: false, disabledReason: 'disabled in the cabinet', events: ['tier.changed'] });
    expect((await owner.get(`/app/webhooks/${row.id}`)).body).toContain('<span class="badge warn" data-state>отключён</span>');
    expect((await owner.post(`/app/webhooks/${row.id}`, { _csrf: csrf, url: receiver.url('/cabinet'), events: ['tier.changed'], enabled: 'on' })).statusCode).toBe(303);
    expect((await apiWebhook(row.id)).body).toMatchObject({ enabled: true, disabledReason: null });

    // Rotate: the new secret once.
    const rotated = await owner.post(`/app/webhooks/${row.id}/rotate-secret`, { _csrf: csrf });
    expect(rotated.statusCode).toBe(200);
    const [after] = await endpoints();
    expect(after.secret).not.toBe(row.secret);
    expect(rotated.body).toContain(`value="${after.secret}"`);
    expect((await owner.get(`/app/webhooks/${row.id}`)).body).not.toContain(after.secret);

    // Another program's endpoint is not found here.
    const foreign = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: other.as('admin'), payload: { url: receiver.url('/other'), events: ['card.issued'] } });
    expect(foreign.statusCode).toBe(201);
    expect((await owner.get(`/app/webhooks/${foreign.json().id}`)).statusCode).toBe(404);
    expect((await owner.post(`/app/webhooks/${foreign.json().id}/delete`, { _csrf: csrf })).statusCode).toBe(404);

    // Delete, with its log.
    const deleted = await owner.post(`/app/webhooks/${row.id}/delete`, { _csrf: csrf });
    expect(deleted.statusCode).toBe(303);
    expect(deleted.headers.location).toBe('/app/webhooks?deleted=1');
    expect(await endpoints()).toEqual([]);
    expect((await apiWebhook(row.id)).status).toBe(404);
    expect((await owner.get('/app/webhooks?deleted=1')).body).toContain('Вебхук удалён');
    expect((await owner.get(`/app/webhooks/${row.id}`)).statusCode).toBe(404);
  });

  it('a cashier opens no webhook page and changes nothing; a marketer may, as with the API', async () => {
    const hook = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: as('marketer'), payload: { url: receiver.url('/kept'), events: ['card.issued'] } });
    const id = hook.json().id as string;
    const cashier = await signIn(t.app, 'kira@hook.example', PASSWORD);
    const list = await cashier.get('/app/webhooks');
    expect(list.statusCode).toBe(403);
    expect(list.body).not.toContain('href="/app/webhooks"');
    const csrf = cashier.csrf(list.body);
    expect((await cashier.get(`/app/webhooks/${id}`)).statusCode).toBe(403);
    expect((await cashier.post('/app/webhooks', { _csrf: csrf, url: receiver.url('/cashier'), events: 'card.issued' })).statusCode).toBe(403);
    expect((await cashier.post(`/app/webhooks/${id}`, { _csrf: csrf, url: receiver.url('/cashier'), events: 'card.issued' })).statusCode).toBe(403);
    expect((await cashier.post(`/app/webhooks/${id}/delete`, { _csrf: csrf })).statusCode).toBe(403);
    expect((await cashier.post(`/app/webhooks/${id}/rotate-secret`, { _csrf: csrf })).statusCode).toBe(403);
    expect((await endpoints()).map((e) => e.url)).toEqual([receiver.url('/kept')]);
    const marketer = await signIn(t.app, 'marina@hook.example', PASSWORD);
    expect((await marketer.get(`/app/webhooks/${id}`)).statusCode).toBe(200);
    await t.app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${id}`, headers: as('admin') });
  });

  describe.skipIf(chromiumCheck.skip)(`in Chromium ${chromiumCheck.reason}`, () => {
    async function open(locale = 'ru-RU'): Promise<Page> {
      browser ??= await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale });
      const page = await context.newPage();
      page.on('dialog', (dialog) => void dialog.accept()); // the confirmations of rotate and delete
      return page;
    }
    const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
    async function checkLabels(page: Page) {
      const unlabelled = await page.$$eval('main input:not([type=hidden]), main select, main textarea', (els) =>
        els.filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label')).map((el) => el.outerHTML.slice(0, 80)),
      );
      expect(unlabelled).toEqual([]);
      expect(await page.locator('h1').count()).toBe(1);
    }

    it('owner: creates a webhook, sees the secret once, edits its events, disables it, deletes it', async () => {
      mkdirSync(SHOTS, { recursive: true });
      const page = await open();
      await page.goto(`${base}/app/sign-in`);
      await page.locator('#f-email').fill('olga@hook.example');
      await page.locator('#f-password').fill(PASSWORD);
      await page.keyboard.press('Enter');
      await page.waitForURL((url) => url.pathname === '/app');
      await page.getByRole('link', { name: 'Вебхуки' }).click();
      await page.waitForURL('**/app/webhooks');
      await checkLabels(page);

      // A refused address first: the error is at the field, and the summary links to it.
      await page.getByLabel('Адрес').fill('https://169.254.1.3/hook');
      await page.getByRole('button', { name: 'Создать вебхук' }).click();
      await page.locator('#f-url-error').waitFor();
      expect(await page.locator('#f-url-error').innerText()).toContain('внутренний, частный или зарезервированный IP');
      await page.locator('.summary a[href="#f-url"]').click();
      expect(await page.evaluate(() => location.hash)).toBe('#f-url');
      await shot(page, 'owner-webhooks-error-ru');
      expect(await endpoints()).toEqual([]);

      // Create: two events of all.
      await page.getByLabel('Адрес').fill(receiver.url('/browser'));
      for (const type of ALL_EVENTS) {
        const box = page.locator(`#new-event-${type.replace('.', '-')}`);
        if (type === 'card.issued' || type === 'purchase.created') await box.check();
        else await box.uncheck();
      }
      await page.getByRole('button', { name: 'Создать вебхук' }).click();
      await page.locator('#new-secret').waitFor();
      const secret = await page.locator('#new-secret').inputValue();
      expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      const [row] = await endpoints();
      expect(row).toMatchObject({ secret, events: ['card.issued', 'purchase.created'] });
      await checkLabels(page);
      await shot(page, 'owner-webhook-created-ru');

      // Once: the endpoint's page, opened again, has no secret.
      await page.goto(`${base}/app/webhooks/${row.id}`);
      expect(await page.locator('#new-secret').count()).toBe(0);
      expect(await page.content()).not.toContain(secret);

      // Edit the events.
      await page.locator('#edit-event-purchase-created').uncheck();
      await page.locator('#edit-event-balance-changed').check();
      await page.getByRole('button', { name: 'Сохранить' }).click();
      await page.waitForURL(/saved=1/);
      expect((await apiWebhook(row.id)).body.events).toEqual(['card.issued', 'balance.changed']);
      expect(await page.locator('#edit-event-balance-changed').isChecked()).toBe(true);

      // Disable.
      await page.getByRole('switch', { name: 'Включён (получает события)' }).uncheck();
      await page.getByRole('button', { name: 'Сохранить' }).click();
      await page.waitForURL(/saved=1/);
      expect((await apiWebhook(row.id)).body.enabled).toBe(false);
      expect(await page.locator('[data-state]').first().innerText()).toBe('отключён');
      await shot(page, 'owner-webhook-ru');
      await page.getByRole('link', { name: 'English' }).click();
      await page.waitForURL(/lang=en/);
      await checkLabels(page);
      await shot(page, 'owner-webhook-en');
      await page.goto(`${base}/app/webhooks`);
      expect(await page.getAttribute('html', 'lang')).toBe('en');
      await shot(page, 'owner-webhooks-en');
      await page.goto(`${base}/app/webhooks?lang=ru`);
      await shot(page, 'owner-webhooks-ru');

      // Delete (the confirmation is accepted).
      await page.goto(`${base}/app/webhooks/${row.id}`);
      await page.getByRole('button', { name: 'Удалить вебхук' }).click();
      await page.waitForURL(/deleted=1/);
      expect(await page.locator('[role="status"]').first().innerText()).toBe('Вебхук удалён вместе с журналом доставок.');
      expect(await page.locator('main').innerText()).toContain('Вебхуков пока нет.');
      expect(await endpoints()).toEqual([]);
    });
  });
});
