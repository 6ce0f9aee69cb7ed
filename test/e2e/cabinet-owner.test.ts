import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf, unpackPkpass } from '../support/pkpass.js';
import { encodePng } from '../../scripts/make-default-images.js';
import { decodePng } from '../support/png.js';

const solidPng = (w: number, h: number, [r, g, b]: number[]) => encodePng(w, h, Uint8Array.from({ length: w * h * 4 }, (_, i) => [r, g, b, 255][i % 4]));

// The owner's screens over HTTP: settings (rules, tiers, texts, stores), design (and the next pass
// shows it), image upload, staff, API keys; the marketer's statistics and QR codes render.
describe(`cabinet owner screens (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let program: { id: string; slug: string };
  let as: (role: 'admin' | 'marketer' | 'pos') => Record<string, string>;
  let owner: CabinetClient;
  let card: { installUrl: string };
  const PASSWORD = 'owner password 123';

  beforeAll(async () => {
    t = await startTestApp();
    ({ program, as } = await createProgramWithKeys(t.app, 'cabinet-owner'));
    await createStaff(t.app, program.id, { name: 'Владелец', role: 'owner', email: 'owner@shop.example', password: PASSWORD });
    card = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Клиент', phone: '+79160000001' } } })).json();
    owner = await signIn(t.app, 'owner@shop.example', PASSWORD);
  });
  afterAll(async () => {
    await t?.close();
  });

  const token = () => card.installUrl.split('/c/')[1];
  async function pass() {
    const res = await t.app.inject({ method: 'GET', url: `/c/${token()}/card.pkpass` });
    expect(res.statusCode).toBe(200);
    return res.rawPayload;
  }
  const programRow = () => t.database.handle.db.selectFrom('program').selectAll().where('id', '=', program.id).executeTakeFirstOrThrow();

  it('settings: rules with a new tier, bonuses and the cap save through updateProgram; invalid rules are explained', async () => {
    const page = await owner.get('/app/settings/rules');
    expect(page.statusCode).toBe(200);
    // Tiers by name; the code stays out of sight (a hidden field), not an input owners have to understand.
    expect(page.body).toContain('<input type="hidden" name="tier0_code" value="standard">');
    expect(page.body).toContain('Уровень 1: Стандартная');
    // As the owner's language writes the amount: no ".00" on a whole amount, a comma before kopecks.
    expect(page.body).toContain('name="tier1_threshold" type="text" value="50000"');
    const base = {
      _csrf: owner.csrf(page.body),
      tierCount: '3',
      tier0_code: 'standard', tier0_ru: 'Стандартная', tier0_en: 'Standard', tier0_percent: '5', tier0_threshold: '0',
      tier1_code: 'general', tier1_ru: 'Генеральная', tier1_en: 'General', tier1_percent: '10', tier1_threshold: '50000',
      tier2_code: 'vip', tier2_ru: 'VIP', tier2_en: 'VIP', tier2_percent: '12,5', tier2_threshold: '150 000',
      welcomeBonus: '500', inviterBonus: '3000', inviteeBonus: '3000', grantOn: 'first_purchase',
      maxPercent: '50', pointValue: '1', expiryDays: '', reminderDays: '14',
    };
    const bad = await owner.post('/app/settings/rules', { ...base, tier2_threshold: '10000' });
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('/tiers/2/threshold');
    const badField = await owner.post('/app/settings/rules', { ...base, tier2_code: 'VIP!', welcomeBonus: 'many' });
    expect(badField.statusCode).toBe(422);
    expect(badField.body).toContain('href="#f-tier2_code"');
    expect(badField.body).toContain('aria-invalid="true"');
    const ok = await owner.post('/app/settings/rules', base);
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/app/settings/rules?saved=1');
    const rules = (await programRow()).rules as any;
    expect(rules.tiers.map((x: any) => [x.code, x.accrualPercent, x.threshold])).toEqual([
      ['standard', 5, 0],
      ['general', 10, 5_000_000],
      ['vip', 12.5, 15_000_000],
    ]);
    expect(rules).toMatchObject({ welcomeBonus: 500, referral: { grantOn: 'first_purchase' }, redemption: { maxPercent: 50, pointValue: 100 } });
    expect((await owner.get('/app/settings/rules?saved=1')).body).toContain('Сохранено');
  });

  it('settings: texts and stores reach the pass', async () => {
    const page = await owner.get('/app/settings');
    const csrf = owner.csrf(page.body);
    expect(
      (await owner.post('/app/settings/texts', { _csrf: csrf, text_promo_ru: 'Скидка 20 % по средам', text_promo_en: '20 % off on Wednesdays', text_contacts_ru: '+7 495 000-00-00', text_contacts_en: '+7 495 000-00-00' }))
        .statusCode,
    ).toBe(303);
    const badLoc = await owner.post('/app/settings/locations', { _csrf: csrf, loc0_addr: 'Москва, Тверская ул., 7', loc0_coords: '95, 37.6' });
    expect(badLoc.statusCode).toBe(422);
    expect((await owner.post('/app/settings/locations', { _csrf: csrf, loc0_addr: 'Москва, Тверская ул., 7', loc0_coords: '55,7558 37,6173', loc0_ru: 'Мы рядом', loc0_en: 'We are near' })).statusCode).toBe(303);
    const json = passJsonOf(await pass());
    expect(json.locations).toEqual([{ latitude: 55.7558, longitude: 37.6173, relevantText: expect.any(String) }]);
    expect(JSON.stringify(json.storeCard.backFields)).toContain('backPromo');
    const general = await owner.post('/app/settings/general', { _csrf: csrf, name: '', defaultLanguage: 'ru', currency: 'rub', timeZone: 'Mars/Base' });
    expect(general.statusCode).toBe(422);
    expect(general.body).toContain('Неизвестный часовой пояс');
  });

  it('design: the preview carries the colours, the saved design shows in the next pass, PNG upload replaces the logo', async () => {
    const page = await owner.get('/app/design');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('data-preview="apple"');
    expect(page.body).toContain('data-preview="google"');
    expect(page.body).toMatch(/data-preview-root style="--auto-fg:#ffffff;--bg:#1f2a44;--fg:#ffffff;--label:#c9d3ea"/);
    const csrf = owner.csrf(page.body);
    const bad = await owner.post('/app/design', { _csrf: csrf, backgroundColor: 'red', foregroundColor: '#ffffff', labelColor: '#ffffff', logoText_ru: 'x', logoText_en: 'x' });
    expect(bad.statusCode).toBe(422);
    const saved = await owner.post('/app/design', {
      _csrf: csrf,
      backgroundColor: '#3B2417',
      foregroundColor: '#fff8ee',
      labelColor: '#f0c987',
      logoText_ru: 'Кофейня',
      logoText_en: 'Coffee',
      description_ru: '',
      description_en: '',
    });
    expect(saved.statusCode).toBe(303);
    const json = passJsonOf(await pass());
    expect(json.backgroundColor).toBe('rgb(59, 36, 23)');
    expect(json.foregroundColor).toBe('rgb(255, 248, 238)');
    expect(json.labelColor).toBe('rgb(240, 201, 135)');

    // Upload: multipart, like the browser form.
    const png = solidPng(160, 50, [255, 0, 0]);
    const boundary = '----walletcardsTest';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${csrf}\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\nlogo\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="logo.png"\r\nContent-Type: image/png\r\n\r\n`),
      png,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const cookie = [...owner.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const upload = await t.app.inject({ method: 'POST', url: '/app/design/images', headers: { cookie, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body });
    expect(upload.statusCode).toBe(303);
    const files = unpackPkpass(await pass());
    // Stored re-encoded (programs/images.ts): the same pixels, not necessarily the same bytes.
    const stored = decodePng(files['logo.png']);
    expect([stored.width, stored.height, stored.level(0, 0), stored.level(159, 49)]).toEqual([160, 50, 255, 255]);
    expect(files['logo@2x.png']).toBeUndefined(); // the uploaded family replaces the default one
    const preview = await owner.get('/app/design/images/logo.png');
    expect(preview.headers['content-type']).toBe('image/png');
    expect(preview.rawPayload.equals(files['logo.png'])).toBe(true);
    // Not a PNG: refused, nothing stored.
    const notPng = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${csrf}\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\nicon\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\nContent-Type: image/png\r\n\r\nGIF89a\r\n--${boundary}--\r\n`),
    ]);
    const refused = await t.app.inject({ method: 'POST', url: '/app/design/images', headers: { cookie, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: notPng });
    expect(refused.statusCode).toBe(422);
    // Without the CSRF field the upload is refused too.
    const noToken = await t.app.inject({
      method: 'POST',
      url: '/app/design/images',
      headers: { cookie, 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\nlogo\r\n--${boundary}--\r\n`)]),
    });
    expect(noToken.statusCode).toBe(403);
  });

  it('staff: create with a password, sign-in link shown once, role change, removal', async () => {
    let page = await owner.get('/app/staff');
    const csrf = owner.csrf(page.body);
    const short = await owner.post('/app/staff', { _csrf: csrf, name: 'Кира', role: 'cashier', email: 'kira@shop.example', password: 'short' });
    expect(short.statusCode).toBe(422);
    const created = await owner.post('/app/staff', { _csrf: csrf, name: 'Кира', role: 'cashier', email: 'Kira@Shop.example', password: 'kira password 1' });
    expect(created.statusCode).toBe(303);
    const kira = await t.database.handle.db.selectFrom('staff_member').selectAll().where('email', '=', 'kira@shop.example').executeTakeFirstOrThrow();
    expect(kira.password_hash).toMatch(/^\$argon2id\$/);
    const kiraClient = await signIn(t.app, 'kira@shop.example', 'kira password 1');
    expect((await kiraClient.get('/app/cashier')).statusCode).toBe(200);
    const dup = await owner.post('/app/staff', { _csrf: csrf, name: 'Кира 2', role: 'cashier', email: 'kira@shop.example' });
    expect(dup.statusCode).toBe(422);
    expect(dup.body).toContain('уже используется');

    const link = await owner.post(`/app/staff/${kira.id}/link`, { _csrf: csrf });
    expect(link.statusCode).toBe(200);
    const url = /id="sign-in-link" type="url" readonly value="([^"]+)"/.exec(link.body)![1];
    expect(url).toMatch(/^https:\/\/wallet\.test\/app\/sign-in\/link\//);
    const viaLink = new CabinetClient(t.app);
    const path = new URL(url).pathname;
    expect((await viaLink.post(path, { _csrf: viaLink.csrf((await viaLink.get(path)).body) })).statusCode).toBe(303);

    // Promote to marketer: her sessions end (she signs in again and sees marketing, not the till).
    expect((await owner.post(`/app/staff/${kira.id}`, { _csrf: csrf, name: 'Кира М.', role: 'marketer', email: 'kira@shop.example' })).statusCode).toBe(303);
    expect((await kiraClient.get('/app/cashier')).statusCode).toBe(303);
    const again = await signIn(t.app, 'kira@shop.example', 'kira password 1');
    expect((await again.get('/app/stats')).statusCode).toBe(200);
    expect((await again.get('/app/cashier')).statusCode).toBe(403);

    // The owner cannot remove themselves; removing Kira ends her session.
    const self = await t.database.handle.db.selectFrom('staff_member').select('id').where('email', '=', 'owner@shop.example').executeTakeFirstOrThrow();
    expect((await owner.post(`/app/staff/${self.id}/delete`, { _csrf: csrf })).statusCode).toBe(422);
    expect((await owner.post(`/app/staff/${kira.id}/delete`, { _csrf: csrf })).statusCode).toBe(303);
    expect((await again.get('/app/stats')).statusCode).toBe(303);
    page = await owner.get('/app/staff');
    expect(page.body).not.toContain('Кира М.');
  });

  it('API keys: created and shown once, revoked', async () => {
    const page = await owner.get('/app/keys');
    const csrf = owner.csrf(page.body);
    const created = await owner.post('/app/keys', { _csrf: csrf, name: 'Касса 2', role: 'pos' });
    expect(created.statusCode).toBe(200);
    const key = /id="new-key" type="text" readonly value="([^"]+)"/.exec(created.body)![1];
    expect(key).toMatch(/^wc_pos_/);
    const headers = { authorization: `Bearer ${key}` };
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/cards?query=Клиент', headers })).statusCode).toBe(200);
    const list = await owner.get('/app/keys');
    expect(list.body).not.toContain(key);
    const row = await t.database.handle.db.selectFrom('api_key').select('id').where('name', '=', 'Касса 2').executeTakeFirstOrThrow();
    expect((await owner.post(`/app/keys/${row.id}/revoke`, { _csrf: csrf })).statusCode).toBe(303);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/cards?query=Клиент', headers })).statusCode).toBe(401);
  });

  it('statistics, QR codes and webhooks render for the owner, in both languages', async () => {
    for (const lang of ['ru', 'en']) {
      const stats = await owner.get(`/app/stats?lang=${lang}`);
      expect(stats.statusCode).toBe(200);
      expect(stats.body).toContain(`<html lang="${lang}">`);
      expect(stats.body).toContain('<svg class="chart"');
      const qr = await owner.get('/app/qr');
      expect(qr.body).toContain(`https://wallet.test/join/${program.slug}`);
      expect(qr.body).toContain('role="img"');
      expect((await owner.get('/app/webhooks')).statusCode).toBe(200);
    }
    // The language is remembered.
    expect((await owner.get('/app/stats')).body).toContain('<html lang="en">');
    const bad = await owner.get('/app/stats?from=2026-12-01&to=2026-01-01');
    expect(bad.statusCode).toBe(200);
    expect(bad.body).toContain('not valid');
  });
});
