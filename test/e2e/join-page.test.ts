import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import QRCode from 'qrcode';
import { adminHeaders, createProgramWithKeys, startTestApp, TEST_PUBLIC_URL, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { CARD_SCRIPT } from '../../src/enrollment/pages.js';
import {
  ANDROID_UA,
  cardTokenOf,
  createTestClock,
  DESKTOP_UA,
  getPage,
  IPHONE_UA,
  newVisitor,
  openJoinPage,
  submitJoinForm,
} from '../support/join-form.js';
import { decodePng, PNG_SIGNATURE, type DecodedPng } from '../support/png.js';

// The join page, the card page, staff links and QR codes, through HTTP (issue: enrollment and distribution).
describe(`join page, card page, staff and QR codes (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  const clock = createTestClock();
  const MIN_FILL = 2_000;

  beforeAll(async () => {
    t = await startTestApp({ clock: clock.now });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Opens the form, waits past the bot timing, submits. */
  async function join(slug: string, fields: Record<string, string | undefined>, visitor = newVisitor(), query = '') {
    const { inputs } = await openJoinPage(t.app, visitor, `/join/${slug}${query}`);
    clock.advance(MIN_FILL + 500);
    return { res: await submitJoinForm(t.app, visitor, slug, inputs, fields), visitor };
  }

  it('serves the join page in Russian or English by Accept-Language, switchable and remembered', async () => {
    await createProgramWithKeys(t.app, 'lang-shop', { name: 'Кофейня', defaultLanguage: 'ru' });
    const ru = await getPage(t.app, newVisitor(), '/join/lang-shop');
    expect(ru.statusCode).toBe(200);
    expect(ru.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(ru.headers['cache-control']).toBe('no-store');
    expect(ru.headers['content-security-policy']).toContain("default-src 'none'");
    expect(ru.body).toContain('<html lang="ru">');
    expect(ru.body).toContain('Получить карту');
    expect(ru.body).toContain('1&nbsp;000'.replace('&nbsp;', '\u00a0'));

    const visitor = newVisitor({ acceptLanguage: 'de-DE, en;q=0.8, ru;q=0.5' });
    const en = await getPage(t.app, visitor, '/join/lang-shop');
    expect(en.body).toContain('<html lang="en">');
    expect(en.body).toContain('Get the card');
    expect(en.body).toContain('1,000 points welcome bonus');

    // The switch link keeps the attribution and sets the cookie; the cookie then wins over the header.
    const switched = await getPage(t.app, visitor, '/join/lang-shop?source=poster&lang=ru');
    expect(switched.body).toContain('<html lang="ru">');
    expect(String(switched.headers['set-cookie'])).toContain('wc_lang=ru');
    expect(switched.body).toContain('href="/join/lang-shop?source=poster&amp;lang=en"');
    const again = await getPage(t.app, visitor, '/join/lang-shop');
    expect(again.body).toContain('<html lang="ru">');

    // Unknown programs are an HTML 404, not a JSON problem.
    const missing = await getPage(t.app, newVisitor(), '/join/no-such-shop');
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toContain('text/html');
  });

  it('escapes every interpolated value: program name and holder name with <script>', async () => {
    const evil = '<script>alert("x")</script> & Co';
    await createProgramWithKeys(t.app, 'evil-shop', { name: evil, defaultLanguage: 'en' });
    const page = await getPage(t.app, newVisitor(), '/join/evil-shop?source=poster');
    expect(page.body).not.toContain('<script');
    expect(page.body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co');

    const { res, visitor } = await join('evil-shop', { name: '<script>document.cookie</script>', phone: '+79161110001' });
    const token = cardTokenOf(res);
    const card = await getPage(t.app, visitor, `/c/${token}`);
    expect(card.statusCode).toBe(200);
    // The one script is the page's own (Copy/Share), allowed by its hash; nothing typed becomes one.
    expect(card.body.match(/<script/g)).toHaveLength(1);
    expect(card.body).toContain(`<script>${CARD_SCRIPT}</script>`);
    expect(card.body).toContain('&lt;script&gt;document.cookie&lt;/script&gt;');

    // A 422 re-render keeps the entered values, escaped.
    const { res: invalid } = await join('evil-shop', { name: '"><script>x</script>', phone: 'nope' });
    expect(invalid.statusCode).toBe(422);
    expect(invalid.body).not.toContain('<script');
    expect(invalid.body).toContain('value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"');
  });

  it('shows validation errors in the chosen language, keeps the values, and stores consent with its text version', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'form-shop', {
      name: 'Form Shop',
      defaultLanguage: 'ru',
      texts: { consent: { ru: 'Согласен на рассылку «Form Shop».', en: 'I agree to Form Shop news.' } },
    });
    const { res: ru } = await join('form-shop', { name: '', phone: '123', email: 'not-an-email', birthday: '2999-01-01' });
    expect(ru.statusCode).toBe(422);
    expect(ru.body).toContain('Укажите имя');
    expect(ru.body).toContain('Номер не похож на телефонный');
    expect(ru.body).toContain('Адрес e-mail указан неверно');
    expect(ru.body).toContain('Дата рождения указана неверно');
    expect(ru.body).toContain('value="not-an-email"');
    expect(ru.body).toContain('aria-invalid="true"');
    expect(ru.body).toContain('role="alert"');

    const { res: en } = await join('form-shop', { name: 'Ann', phone: '12', lang: 'en' });
    expect(en.statusCode).toBe(422);
    expect(en.body).toContain('This does not look like a phone number');
    expect(en.body).toContain('value="Ann"');

    const { res: ok } = await join('form-shop', {
      name: '  Анна  ',
      phone: '8 (916) 222-33-44',
      email: 'anna@example.com',
      birthday: '14.02.1990',
      consent: 'yes',
    });
    const token = cardTokenOf(ok);
    const row = await t.database.handle.db.selectFrom('card').selectAll().where('public_token', '=', token).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ holder_name: 'Анна', phone: '+79162223344', email: 'anna@example.com', consent: true });
    expect(row.consent_at).toBeInstanceOf(Date);
    expect(row.consent_version).toMatch(/^ru-[0-9a-f]{16}$/);
    const text = await t.database.handle.db.selectFrom('consent_text').selectAll().where('version', '=', row.consent_version!).executeTakeFirstOrThrow();
    expect(text).toMatchObject({ program_id: program.id, language: 'ru', body: 'Согласен на рассылку «Form Shop».' });
    const api = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${row.id}`, headers: as('admin') });
    expect(api.json().holder.birthday).toBe('1990-02-14');

    // Without the checkbox there is no consent and no version.
    const { res: noConsent } = await join('form-shop', { name: 'Bob', phone: '+79162223345' });
    const bob = await t.database.handle.db.selectFrom('card').selectAll().where('public_token', '=', cardTokenOf(noConsent)).executeTakeFirstOrThrow();
    expect(bob).toMatchObject({ consent: false, consent_at: null, consent_version: null });
  });

  it('shows the referral bonus for a valid code and enrolls without the referral for an unknown one', async () => {
    const { as } = await createProgramWithKeys(t.app, 'ref-shop', { defaultLanguage: 'en' });
    const inviter = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Inviter', phone: '+79163330001' } } })).json();

    const withRef = await getPage(t.app, newVisitor(), `/join/ref-shop?ref=${inviter.referralCode.toLowerCase()}`);
    expect(withRef.body).toContain('3,000 points more from the friend who invited you');
    const unknownRef = await getPage(t.app, newVisitor(), '/join/ref-shop?ref=NOSUCH99');
    expect(unknownRef.body).not.toContain('friend who invited you');

    const { res: referred } = await join('ref-shop', { name: 'Friend', phone: '+79163330002' }, newVisitor(), `?ref=${inviter.referralCode}`);
    const friend = await t.database.handle.db.selectFrom('card').selectAll().where('public_token', '=', cardTokenOf(referred)).executeTakeFirstOrThrow();
    // Self-service: the bonuses are pending until the phone answers a code or the first purchase.
    expect(friend).toMatchObject({ referred_by: inviter.id, balance: 0, pending_points: 4000, source: 'referral' });

    const { res: unknown } = await join('ref-shop', { name: 'Stranger', phone: '+79163330003' }, newVisitor(), '?ref=NOSUCH99');
    const stranger = await t.database.handle.db.selectFrom('card').selectAll().where('public_token', '=', cardTokenOf(unknown)).executeTakeFirstOrThrow();
    expect(stranger).toMatchObject({ referred_by: null, balance: 0, pending_points: 1000, source: null });
    // The inviter is paid only once the friend is verified (test/e2e/join-verification.test.ts).
    const inviterAfter = (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${inviter.id}`, headers: as('pos') })).json();
    expect(inviterAfter.balance).toBe(1000);
  });

  it('chooses the wallet buttons by device and shows balance, tier, barcode and the referral link', async () => {
    const { as } = await createProgramWithKeys(t.app, 'card-shop', { defaultLanguage: 'en', name: 'Card Shop' });
    const issued = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Maria', phone: '+79164440001' } } })).json();
    const path = new URL(issued.installUrl).pathname;

    const iphone = await getPage(t.app, newVisitor({ userAgent: IPHONE_UA }), path);
    expect(iphone.statusCode).toBe(200);
    expect(iphone.headers['referrer-policy']).toBe('no-referrer');
    expect(iphone.body).toContain(`data-wallet="apple" href="/c/${issued.installUrl.split('/c/')[1]}/card.pkpass"`);
    expect(iphone.body).not.toContain('data-wallet="google"');
    expect(iphone.body).toContain('1,000 points');
    expect(iphone.body).toContain('Standard');
    expect(iphone.body).toContain(`aria-label="QR code of card ${issued.number}"`);
    expect(iphone.body).toContain(`value="${issued.referralUrl}"`);
    expect(iphone.body).toContain(`https://t.me/share/url?url=${encodeURIComponent(issued.referralUrl)}`);
    expect(iphone.body).toContain('https://wa.me/?text=');
    expect(iphone.body).toContain(`https://vk.com/share.php?url=${encodeURIComponent(issued.referralUrl)}`);
    expect(iphone.body).not.toContain('QR code of the link to this page');

    const android = await getPage(t.app, newVisitor({ userAgent: ANDROID_UA }), path);
    expect(android.body).not.toContain('data-wallet="google"');
    expect(android.body).not.toContain('data-wallet="apple"');
    // No Google Wallet: the page is the card (barcode first, add to home screen), not a .pkpass button.
    expect(android.body).toContain('data-web-card');
    expect(android.body.indexOf('data-barcode')).toBeLessThan(android.body.indexOf('data-web-card'));

    const desktop = await getPage(t.app, newVisitor({ userAgent: DESKTOP_UA }), path);
    expect(desktop.body).toContain('data-wallet="apple"');
    expect(desktop.body).not.toContain('data-wallet="google"');
    expect(desktop.body).toContain('QR code of the link to this page');

    t.app.ctx.links.googleEnabled = true;
    try {
      const androidGoogle = await getPage(t.app, newVisitor({ userAgent: ANDROID_UA }), path);
      expect(androidGoogle.body).toContain(`data-wallet="google" href="${path}/google"`);
      expect(androidGoogle.body).not.toContain('data-wallet="apple"');
      const desktopBoth = await getPage(t.app, newVisitor({ userAgent: DESKTOP_UA }), path);
      expect(desktopBoth.body).toContain('data-wallet="apple"');
      expect(desktopBoth.body).toContain('data-wallet="google"');
      const iphoneOnlyApple = await getPage(t.app, newVisitor({ userAgent: IPHONE_UA }), path);
      expect(iphoneOnlyApple.body).not.toContain('data-wallet="google"');
    } finally {
      t.app.ctx.links.googleEnabled = false;
    }

    expect((await getPage(t.app, newVisitor(), '/c/not-a-real-token-000000')).statusCode).toBe(404);
  });

  it('manages staff members with personal join links and QR codes', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'staff-shop');
    const base = `/api/v1/programs/${program.id}/staff`;
    const created = await t.app.inject({ method: 'POST', url: base, headers: as('admin'), payload: { name: 'Ольга', role: 'cashier' } });
    expect(created.statusCode).toBe(201);
    const olga = created.json();
    expect(olga).toMatchObject({
      name: 'Ольга',
      role: 'cashier',
      programId: program.id,
      joinUrl: `${TEST_PUBLIC_URL}/join/staff-shop?staff=${olga.id}`,
      qr: { svg: `${TEST_PUBLIC_URL}/programs/staff-shop/qr.svg?staff=${olga.id}`, png: `${TEST_PUBLIC_URL}/programs/staff-shop/qr.png?staff=${olga.id}` },
    });
    const byInstance = await t.app.inject({ method: 'POST', url: base, headers: adminHeaders, payload: { name: 'Пётр', role: 'owner' } });
    expect(byInstance.statusCode).toBe(201);
    expect((await t.app.inject({ method: 'POST', url: base, headers: as('marketer'), payload: { name: 'X', role: 'cashier' } })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'POST', url: base, headers: as('admin'), payload: { name: 'X', role: 'boss' } })).statusCode).toBe(400);

    const list = await t.app.inject({ method: 'GET', url: base, headers: as('admin') });
    expect(list.json().map((s: { name: string }) => s.name)).toEqual(['Ольга', 'Пётр']);
    const patched = await t.app.inject({ method: 'PATCH', url: `${base}/${olga.id}`, headers: as('admin'), payload: { role: 'marketer' } });
    expect(patched.json()).toMatchObject({ name: 'Ольга', role: 'marketer' });
    expect((await t.app.inject({ method: 'GET', url: `${base}/${olga.id}`, headers: as('admin') })).json().role).toBe('marketer');

    // Another program's admin key learns nothing.
    const other = await createProgramWithKeys(t.app, 'staff-other');
    expect((await t.app.inject({ method: 'GET', url: `${base}/${olga.id}`, headers: other.as('admin') })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/programs/${other.program.id}/staff/${olga.id}`, headers: other.as('admin') })).statusCode).toBe(404);

    // A card enrolled through the link belongs to the staff member; deleting keeps it.
    const { res } = await join('staff-shop', { name: 'Client', phone: '+79165550001' }, newVisitor(), `?staff=${olga.id}`);
    const card = await t.database.handle.db.selectFrom('card').selectAll().where('public_token', '=', cardTokenOf(res)).executeTakeFirstOrThrow();
    expect(card.staff_id).toBe(olga.id);
    expect((await t.app.inject({ method: 'DELETE', url: `${base}/${olga.id}`, headers: as('admin') })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: `${base}/${olga.id}`, headers: as('admin') })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'DELETE', url: `${base}/${olga.id}`, headers: as('admin') })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: base, headers: as('admin') })).json()).toHaveLength(1);
    const kept = await t.database.handle.db.selectFrom('card').select('staff_id').where('id', '=', card.id).executeTakeFirstOrThrow();
    expect(kept.staff_id).toBe(olga.id);
    // Her link no longer attributes (the customer still gets a card).
    const { res: after } = await join('staff-shop', { name: 'Late', phone: '+79165550002' }, newVisitor(), `?staff=${olga.id}`);
    const late = await t.database.handle.db.selectFrom('card').select('staff_id').where('public_token', '=', cardTokenOf(after)).executeTakeFirstOrThrow();
    expect(late.staff_id).toBeNull();
  });

  it('serves QR codes of the join link as SVG and PNG, sized for print and cacheable', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'qr-shop');
    const staff = (await t.app.inject({ method: 'POST', url: `/api/v1/programs/${program.id}/staff`, headers: as('admin'), payload: { name: 'Ira', role: 'cashier' } })).json();

    const svg = await t.app.inject({ method: 'GET', url: `/programs/qr-shop/qr.svg?staff=${staff.id}&source=poster` });
    expect(svg.statusCode).toBe(200);
    expect(svg.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(svg.headers['cache-control']).toBe('public, max-age=86400');
    expect(svg.body).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="1024" height="1024" viewBox="0 0 \d+ \d+"[^>]*>.*<\/svg>\n?$/s);

    const png = await t.app.inject({ method: 'GET', url: `/programs/qr-shop/qr.png?staff=${staff.id}&source=poster&size=600` });
    expect(png.statusCode).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.rawPayload.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const image = decodePng(png.rawPayload);
    expect([image.width, image.height]).toEqual([600, 600]);
    expectPngEncodes(image, `${TEST_PUBLIC_URL}/join/qr-shop?staff=${staff.id}&source=poster`);

    const defaultPng = decodePng((await t.app.inject({ method: 'GET', url: '/programs/qr-shop/qr.png' })).rawPayload);
    expect(defaultPng.width).toBe(1024);
    expectPngEncodes(defaultPng, `${TEST_PUBLIC_URL}/join/qr-shop`);

    expect((await t.app.inject({ method: 'GET', url: '/programs/qr-shop/qr.png?size=20000' })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/programs/qr-shop/qr.png?size=10' })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/programs/qr-shop/qr.svg?source=%3Cscript%3E' })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/programs/qr-shop/qr.svg?staff=00000000-0000-4000-8000-000000000000' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: '/programs/nope-shop/qr.svg' })).statusCode).toBe(404);
  });
});

/**
 * Checks that a rendered QR PNG carries exactly `text`: the module grid the qrcode library computes
 * for it, sampled at every module centre of the image (black/white), quiet zone included.
 */
function expectPngEncodes(image: DecodedPng, text: string) {
  const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const modules = qr.modules.size;
  const margin = 4;
  const total = modules + 2 * margin;
  const scale = image.width / total;
  let mismatches = 0;
  for (let row = -margin; row < modules + margin; row++) {
    for (let col = -margin; col < modules + margin; col++) {
      const x = Math.floor((col + margin + 0.5) * scale);
      const y = Math.floor((row + margin + 0.5) * scale);
      const dark = image.level(x, y) < 128;
      const expected = row >= 0 && col >= 0 && row < modules && col < modules ? Boolean(qr.modules.get(row, col)) : false;
      if (dark !== expected) mismatches++;
    }
  }
  expect(mismatches).toBe(0);
}
