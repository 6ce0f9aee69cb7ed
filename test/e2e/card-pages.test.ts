import { createHash } from 'node:crypto';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARD_SCRIPT } from '../../src/enrollment/pages.js';
import { encodePng } from '../../scripts/make-default-images.js';
import { createProgramWithKeys, TEST_PUBLIC_URL, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { ANDROID_UA, DESKTOP_UA, getPage, IPHONE_UA, newVisitor } from '../support/join-form.js';

/** The `content` of a meta tag, by property or name (attributes as the page writes them). */
function meta(body: string, key: string): string | undefined {
  const m = new RegExp(`<meta (?:property|name)="${key.replace(/[.:]/g, '\\$&')}" content="([^"]*)">`).exec(body);
  return m?.[1];
}
const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const pixel = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));

// Issue #15 item 4: the card and join pages — wallet buttons after Apple's and Google's
// guidelines, the web card on Android without Google Wallet, Copy/Share for the referral link, the
// web app manifest and icons, and link previews (Open Graph, Twitter) with their PNG.
describe(`card and join pages: wallet buttons, web card, sharing, previews (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let shop: Awaited<ReturnType<typeof createProgramWithKeys>>;
  let card: { id: string; number: string; installUrl: string; referralUrl: string };
  let path: string;

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createProgramWithKeys(t.app, 'pages-shop', {
      name: 'Кофейня «Страница»',
      defaultLanguage: 'ru',
      design: { backgroundColor: '#7a1f2b', foregroundColor: '#ffffff', labelColor: '#f0d0d0' },
    });
    card = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: shop.as('pos'), payload: { holder: { name: 'Анна', phone: '+79165550101' } } })).json();
    path = new URL(card.installUrl).pathname;
  });
  afterAll(async () => {
    await t?.close();
  });

  const page = (ua: string, url = path, lang = 'ru') => getPage(t.app, newVisitor({ userAgent: ua, acceptLanguage: lang }), url);

  it('iPhone: the Add to Apple Wallet badge (localised), no Google button, Copy and Share for the referral link', async () => {
    const ru = await page(IPHONE_UA);
    expect(ru.statusCode).toBe(200);
    // The badge: a link to the .pkpass named by its words, the drawn artwork inside (black, #a6a6a6 keyline).
    expect(ru.body).toMatch(new RegExp(`<a class="badge apple" data-wallet="apple" href="${path}/card.pkpass" aria-label="Добавить в Apple Wallet"><svg[^>]*aria-hidden="true"`));
    expect(ru.body).toContain('>Добавить в</text>');
    expect(ru.body).toContain('>Apple Wallet</text>');
    expect(ru.body).toContain('fill="#a6a6a6"');
    expect(ru.body).not.toContain('data-wallet="google"');
    expect(ru.body).not.toContain('data-web-card');
    const en = await page(IPHONE_UA, `${path}?lang=en`, 'en');
    expect(en.body).toContain('aria-label="Add to Apple Wallet"');
    expect(en.body).toContain('>Add to</text>');

    // Copy and Share: buttons the script reveals (hidden without JavaScript, where the field and the
    // messenger links remain), the status line they report to, the script itself allowed by its hash.
    expect(ru.body).toMatch(/<button type="button" class="button primary" data-share-native data-text="[^"]+" data-done="Ссылка скопирована[^"]*" hidden>Поделиться ссылкой<\/button>/);
    expect(ru.body).toMatch(/<button type="button" class="button secondary" data-copy data-done="[^"]+" hidden>Скопировать ссылку<\/button>/);
    expect(ru.body).toContain('id="share-status" role="status"');
    expect(ru.body).toContain(`value="${card.referralUrl}"`);
    expect(ru.body).toContain('data-share="telegram"');
    const hash = `sha256-${createHash('sha256').update(CARD_SCRIPT).digest('base64')}`;
    expect(ru.headers['content-security-policy']).toContain(`script-src '${hash}'`);
    expect(ru.headers['content-security-policy']).toContain("manifest-src 'self'");
    expect(ru.headers['content-security-policy']).not.toContain('unsafe-inline\'; script');
    expect(ru.body).toContain(`<script>${CARD_SCRIPT}</script>`);
    expect(CARD_SCRIPT).toContain('navigator.share');
    expect(CARD_SCRIPT).toContain('navigator.clipboard');
  });

  it('Android without Google Wallet: the page is the card — barcode first, add to home screen; no .pkpass as the main action', async () => {
    expect(t.app.ctx.links.googleEnabled).toBe(false);
    const res = await page(ANDROID_UA);
    expect(res.body).toContain('data-web-card');
    expect(res.body).toContain('Ваша карта — эта страница');
    expect(res.body).toContain('Добавить на главный экран');
    expect(res.body).toContain('<button type="button" class="button primary" data-install hidden>');
    expect(res.body).not.toContain('data-wallet="apple"');
    expect(res.body).not.toContain('data-wallet="google"');
    expect(res.body).not.toContain('data-wallet="pkpass"');
    // The barcode comes before everything but the balance; the .pkpass is only the small link at the end.
    const order = ['data-balance', 'data-barcode', 'data-web-card', 'data-pkpass'].map((marker) => res.body.indexOf(marker));
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(res.body).toContain(`aria-label="QR-код карты ${card.number}"`);
    // A blocked card is no web card: the notice replaces the buttons.
    await t.database.handle.db.updateTable('card').set({ status: 'blocked' }).where('id', '=', card.id).execute();
    try {
      const blocked = await page(ANDROID_UA);
      expect(blocked.body).not.toContain('data-web-card');
      expect(blocked.body).toContain('Карта заблокирована');
    } finally {
      await t.database.handle.db.updateTable('card').set({ status: 'active' }).where('id', '=', card.id).execute();
    }
  });

  it('Android and desktop with Google Wallet configured: the Add to Google Wallet button', async () => {
    t.app.ctx.links.googleEnabled = true;
    try {
      const android = await page(ANDROID_UA);
      expect(android.body).toContain(`<a class="badge google" data-wallet="google" href="${path}/google" aria-label="Добавить в Google Кошелёк">`);
      expect(android.body).toContain('>Добавить в Google Кошелёк</text>');
      expect(android.body).toContain('rx="27" fill="#1f1f1f" stroke="#747775"');
      expect(android.body).not.toContain('data-wallet="apple"');
      expect(android.body).not.toContain('data-web-card');
      const desktop = await page(DESKTOP_UA, `${path}?lang=en`, 'en');
      expect(desktop.body).toContain('aria-label="Add to Google Wallet"');
      expect(desktop.body).toContain('aria-label="Add to Apple Wallet"');
      expect(desktop.body).toContain('QR code of the link to this page');
      const iphone = await page(IPHONE_UA);
      expect(iphone.body).not.toContain('data-wallet="google"');
    } finally {
      t.app.ctx.links.googleEnabled = false;
    }
  });

  it('stays light: under 50 KB, nothing from another site (only links out)', async () => {
    const sizes: string[] = [];
    for (const ua of [IPHONE_UA, ANDROID_UA, DESKTOP_UA]) {
      const res = await page(ua);
      sizes.push(`${ua === IPHONE_UA ? 'iphone' : ua === ANDROID_UA ? 'android' : 'desktop'} ${Buffer.byteLength(res.body)} B`);
      expect(Buffer.byteLength(res.body)).toBeLessThan(50 * 1024);
      expect(res.body).not.toMatch(/\ssrc="https?:/);
      expect(res.body).not.toMatch(/<link [^>]*href="https?:/);
    }
    const join = await page(IPHONE_UA, '/join/pages-shop');
    console.log(`[pages] card page: ${sizes.join(', ')}; join page ${Buffer.byteLength(join.body)} B`);
    expect(Buffer.byteLength(join.body)).toBeLessThan(50 * 1024);
    expect(join.body).not.toMatch(/\ssrc="https?:/);
    expect(join.body).not.toContain('<script');
  });

  it('the manifest makes the card page a home-screen app; icons are the program’s', async () => {
    const res = await page(ANDROID_UA);
    const href = unescape(/<link rel="manifest" href="([^"]+)">/.exec(res.body)![1]);
    expect(href).toBe(`${path}/manifest.webmanifest?lang=ru`);
    expect(res.body).toContain('<link rel="icon" type="image/png" sizes="192x192" href="/programs/pages-shop/icon-192.png">');
    expect(res.body).toContain('<link rel="apple-touch-icon" href="/programs/pages-shop/icon-180.png">');
    expect(res.body).toContain('<meta name="theme-color" content="#7a1f2b">');

    const manifest = await t.app.inject({ method: 'GET', url: href });
    expect(manifest.statusCode).toBe(200);
    expect(manifest.headers['content-type']).toContain('application/manifest+json');
    expect(manifest.json()).toEqual({
      id: path,
      name: 'Ваша карта «Кофейня „Страница“»',
      short_name: 'Кофейня «Ст…',
      lang: 'ru',
      dir: 'ltr',
      start_url: `${path}?lang=ru`,
      scope: path,
      display: 'standalone',
      orientation: 'portrait',
      background_color: '#7a1f2b',
      theme_color: '#7a1f2b',
      icons: [
        { src: '/programs/pages-shop/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
        { src: '/programs/pages-shop/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
        { src: '/programs/pages-shop/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
      ],
    });
    expect((await t.app.inject({ method: 'GET', url: `${path}/manifest.webmanifest?lang=en` })).json().name).toBe('Your Кофейня «Страница» card');
    expect((await t.app.inject({ method: 'GET', url: `${path}/manifest.webmanifest?lang=de` })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/c/not-a-real-token-000000/manifest.webmanifest' })).statusCode).toBe(404);

    for (const size of [180, 192, 512]) {
      const icon = await t.app.inject({ method: 'GET', url: `/programs/pages-shop/icon-${size}.png` });
      expect(icon.statusCode).toBe(200);
      expect(icon.headers['content-type']).toBe('image/png');
      const png = PNG.sync.read(icon.rawPayload);
      expect([png.width, png.height]).toEqual([size, size]);
      expect(pixel(png, 2, 2)).toEqual([0x7a, 0x1f, 0x2b]); // the program's colour to the edges (maskable)
      expect(pixel(png, size / 2, Math.round(size * 0.45))).toEqual([255, 255, 255]); // the card glyph in the text colour
    }
    expect((await t.app.inject({ method: 'GET', url: '/programs/no-such-shop/icon-192.png' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: '/programs/pages-shop/icon-64.png' })).statusCode).toBe(404);

    // An uploaded square logo becomes the icon (and a new picture, not the cached one).
    const green = encodePng(660, 660, Uint8Array.from({ length: 660 * 660 * 4 }, (_, i) => [0, 200, 0, 255][i % 4]));
    const put = await t.app.inject({ method: 'PUT', url: `/api/v1/programs/${shop.program.id}/images/google-logo`, headers: { ...shop.as('admin'), 'content-type': 'image/png' }, payload: Buffer.from(green) });
    expect(put.statusCode).toBeLessThan(300);
    const after = PNG.sync.read((await t.app.inject({ method: 'GET', url: '/programs/pages-shop/icon-192.png' })).rawPayload);
    expect(pixel(after, 96, 96)).toEqual([0, 200, 0]);
    expect(pixel(after, 2, 2)).toEqual([0x7a, 0x1f, 0x2b]);
  });

  it('join page and referral links preview in messengers: Open Graph and Twitter tags with name, offer and a 1200×630 image', async () => {
    const join = await page(IPHONE_UA, '/join/pages-shop');
    expect(unescape(meta(join.body, 'og:title')!)).toBe('Карта «Кофейня „Страница“»');
    expect(unescape(meta(join.body, 'og:description')!)).toMatch(/^\+1\s000 баллов в подарок за регистрацию\. Заполните форму/);
    expect(meta(join.body, 'og:url')).toBe(`${TEST_PUBLIC_URL}/join/pages-shop`);
    expect(meta(join.body, 'og:image')).toBe(`${TEST_PUBLIC_URL}/programs/pages-shop/preview.png`);
    expect(meta(join.body, 'og:image:width')).toBe('1200');
    expect(meta(join.body, 'og:locale')).toBe('ru_RU');
    expect(meta(join.body, 'og:site_name')).toBe('Кофейня «Страница»');
    expect(meta(join.body, 'twitter:card')).toBe('summary_large_image');
    expect(meta(join.body, 'twitter:image')).toBe(meta(join.body, 'og:image'));
    expect(meta(join.body, 'twitter:title')).toBe(meta(join.body, 'og:title'));
    expect(join.body).toContain('<link rel="icon" type="image/png" sizes="192x192" href="/programs/pages-shop/icon-192.png">');
    // A small preview of the card to come: the program's name and the balance it starts with.
    expect(join.body).toMatch(/<div class="card-preview" data-card-preview aria-hidden="true"><span class="cp-name">Кофейня «Страница»<\/span><span><span class="cp-label">Баланс<\/span><span class="cp-balance">1\s000 баллов<\/span>/);

    // The referral link as shared: its own URL (with the code) and the friend's bonus in the text.
    const referral = new URL(card.referralUrl);
    const shared = await getPage(t.app, newVisitor({ userAgent: 'TelegramBot (like TwitterBot)', acceptLanguage: 'en' }), `${referral.pathname}${referral.search}&lang=en`);
    expect(shared.statusCode).toBe(200);
    expect(meta(shared.body, 'og:url')).toBe(card.referralUrl);
    expect(unescape(meta(shared.body, 'og:description')!)).toMatch(/^\+1,000 points welcome bonus\. A friend invited you\. 3,000 points more/);
    expect(meta(shared.body, 'og:locale')).toBe('en_US');
    // An unknown code is dropped: the preview is the plain join link.
    const stale = await page(IPHONE_UA, '/join/pages-shop?ref=NOSUCHCODE');
    expect(meta(stale.body, 'og:url')).toBe(`${TEST_PUBLIC_URL}/join/pages-shop`);

    const preview = await t.app.inject({ method: 'GET', url: '/programs/pages-shop/preview.png' });
    expect(preview.statusCode).toBe(200);
    expect(preview.headers['content-type']).toBe('image/png');
    expect(preview.headers['cache-control']).toBe('public, max-age=3600');
    const png = PNG.sync.read(preview.rawPayload);
    expect([png.width, png.height]).toEqual([1200, 630]);
    expect(pixel(png, 800, 350)).toEqual([0x7a, 0x1f, 0x2b]); // the card in the program's colour
    expect(pixel(png, 600, 236)).toEqual([0, 200, 0]); // with the logo uploaded in the test above
    expect(pixel(png, 10, 10)).not.toEqual([0x7a, 0x1f, 0x2b]); // on a lighter field around it
    expect((await t.app.inject({ method: 'GET', url: '/programs/no-such-shop/preview.png' })).statusCode).toBe(404);
  });
});
