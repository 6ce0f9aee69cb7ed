import { describe, expect, it } from 'vitest';
import { escapeHtml, html, raw } from '../../src/http/html.js';
import { chooseLang, langFromAcceptLanguage, points } from '../../src/enrollment/i18n.js';
import { checkFormToken, deriveKey, DEFAULT_JOIN_FORM_SETTINGS, issueFormToken } from '../../src/enrollment/guard.js';
import { joinUrl, normalizeSource } from '../../src/enrollment/links.js';
import { brandColours, CARD_SCRIPT, contrastRatio, detectPlatform, renderCardPage } from '../../src/enrollment/pages.js';
import { statsPeriod } from '../../src/enrollment/stats.js';
import { localDay, visitorHash } from '../../src/enrollment/funnel.js';

describe('html tagged template', () => {
  it('escapes every interpolated value by default', () => {
    const value = `<script>alert('x' + "y")</script> & \`z\``;
    expect(html`<p title="${value}">${value}</p>`.toString()).toBe(
      '<p title="&lt;script&gt;alert(&#39;x&#39; + &quot;y&quot;)&lt;/script&gt; &amp; &#96;z&#96;">&lt;script&gt;alert(&#39;x&#39; + &quot;y&quot;)&lt;/script&gt; &amp; &#96;z&#96;</p>',
    );
  });

  it('keeps nested templates and raw markup, escapes array items, drops null/undefined/false', () => {
    const items = ['<a>', 'b&c'].map((item) => html`<li>${item}</li>`);
    expect(html`<ul>${items}</ul>${null}${undefined}${false}${0}`.toString()).toBe('<ul><li>&lt;a&gt;</li><li>b&amp;c</li></ul>0');
    expect(html`${raw('<svg/>')}${['<i>']}`.toString()).toBe('<svg/>&lt;i&gt;');
    expect(escapeHtml('plain')).toBe('plain');
  });
});

describe('language choice', () => {
  it('reads Accept-Language with q-values', () => {
    expect(langFromAcceptLanguage('ru-RU,ru;q=0.9,en-US;q=0.8')).toBe('ru');
    expect(langFromAcceptLanguage('de-DE, en;q=0.8, ru;q=0.5')).toBe('en');
    expect(langFromAcceptLanguage('ru;q=0.3, en;q=0.7')).toBe('en');
    expect(langFromAcceptLanguage('en;q=0, ru;q=0.1')).toBe('ru');
    expect(langFromAcceptLanguage('fr, de')).toBeUndefined();
    expect(langFromAcceptLanguage(undefined)).toBeUndefined();
  });

  it('prefers ?lang=, then the cookie, then the header, then the program default', () => {
    expect(chooseLang({ query: 'en', cookie: 'ru', acceptLanguage: 'ru', fallback: 'ru' })).toBe('en');
    expect(chooseLang({ query: 'xx', cookie: 'en', acceptLanguage: 'ru', fallback: 'ru' })).toBe('en');
    expect(chooseLang({ cookie: 'xx', acceptLanguage: 'en-GB', fallback: 'ru' })).toBe('en');
    expect(chooseLang({ acceptLanguage: 'fr', fallback: 'en' })).toBe('en');
  });

  it('declines points in Russian', () => {
    expect([1, 2, 5, 11, 21, 22, 112, 1000].map((n) => points('ru', n))).toEqual([
      '1 балл',
      '2 балла',
      '5 баллов',
      '11 баллов',
      '21 балл',
      '22 балла',
      '112 баллов',
      '1\u00a0000 баллов',
    ]);
    expect(points('en', 1)).toBe('1 point');
    expect(points('en', 3000)).toBe('3,000 points');
  });
});

describe('join form timing token', () => {
  const key = deriveKey('an-admin-key-of-enough-length', 'join-form');
  const at = new Date('2026-11-25T10:00:00Z');
  const later = (ms: number) => new Date(at.getTime() + ms);
  const settings = DEFAULT_JOIN_FORM_SETTINGS;

  it('accepts a form submitted between 2 seconds and a day after rendering', () => {
    const token = issueFormToken(key, 'program-1', at);
    expect(checkFormToken(key, 'program-1', token, later(2_000), settings)).toEqual({ ok: true });
    expect(checkFormToken(key, 'program-1', token, later(86_400_000), settings)).toEqual({ ok: true });
    expect(checkFormToken(key, 'program-1', token, later(1_999), settings)).toEqual({ ok: false, reason: 'too_fast' });
    expect(checkFormToken(key, 'program-1', token, later(86_400_001), settings)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses tampered, foreign and missing tokens', () => {
    const token = issueFormToken(key, 'program-1', at);
    const [ms, signature] = token.split('.');
    expect(checkFormToken(key, 'program-1', `${Number(ms) - 5_000}.${signature}`, later(10_000), settings)).toEqual({ ok: false, reason: 'tampered' });
    expect(checkFormToken(key, 'program-2', token, later(10_000), settings)).toEqual({ ok: false, reason: 'tampered' });
    expect(checkFormToken(deriveKey('another-admin-key-of-length', 'join-form'), 'program-1', token, later(10_000), settings)).toEqual({ ok: false, reason: 'tampered' });
    expect(checkFormToken(key, 'program-1', 'garbage', later(10_000), settings)).toEqual({ ok: false, reason: 'tampered' });
    expect(checkFormToken(key, 'program-1', undefined, later(10_000), settings)).toEqual({ ok: false, reason: 'missing' });
  });

  it('derives different keys per purpose', () => {
    expect(deriveKey('k'.repeat(24), 'join-form').equals(deriveKey('k'.repeat(24), 'join-visitor'))).toBe(false);
  });
});

describe('links, colours, devices, periods', () => {
  it('normalizes source tags and builds join links', () => {
    expect(normalizeSource(' Instagram ')).toBe('instagram');
    expect(normalizeSource('vk.ads_2026-11')).toBe('vk.ads_2026-11');
    expect(normalizeSource('<script>')).toBeNull();
    expect(normalizeSource('')).toBeNull();
    expect(normalizeSource(['x'])).toBeNull();
    expect(joinUrl('https://c.example', 'shop', { staff: 'abc', source: 'till' })).toBe('https://c.example/join/shop?staff=abc&source=till');
    expect(joinUrl('https://c.example', 'shop')).toBe('https://c.example/join/shop');
  });

  it('keeps the program colours readable (WCAG AA) or falls back to black/white text', () => {
    expect(brandColours({ backgroundColor: '#3b2417', foregroundColor: '#fff8ee' })).toEqual({ background: '#3b2417', foreground: '#fff8ee' });
    expect(brandColours({ backgroundColor: '#ffeb3b', foregroundColor: '#ffffff' })).toEqual({ background: '#ffeb3b', foreground: '#000000' });
    expect(brandColours({ backgroundColor: '#1f2a44', foregroundColor: '#333333' }).foreground).toBe('#ffffff');
    expect(brandColours({ backgroundColor: 'red;}body{display:none' }).background).toBe('#1f2a44');
    expect(contrastRatio('#000000', '#ffffff')).toBeCloseTo(21, 5);
  });

  it('tells iOS, Android and desktop apart', () => {
    expect(detectPlatform('Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15')).toBe('ios');
    expect(detectPlatform('Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X)')).toBe('ios');
    expect(detectPlatform('Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126 Mobile Safari/537.36')).toBe('android');
    expect(detectPlatform('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Version/17.5 Safari/605.1.15')).toBe('desktop');
    expect(detectPlatform(undefined)).toBe('desktop');
  });

  it('renders the card page with only its own script and with the holder name escaped', () => {
    const page = renderCardPage({
      lang: 'en',
      programName: '<b>Shop</b>',
      brand: { background: '#000000', foreground: '#ffffff' },
      otherLangHref: '/c/x?lang=ru',
      holderName: '<script>x</script>',
      balance: 1,
      tierName: 'Standard',
      number: '123456789012',
      blocked: false,
      platform: 'desktop',
      googleEnabled: true,
      pkpassHref: '/c/x/card.pkpass',
      googleHref: '/c/x/google',
      barcodeSvg: '<svg class="qr"></svg>',
      referral: { url: 'https://c.example/join/shop?ref=ABC&x="', inviterBonus: 0, inviteeBonus: 0, shareText: 'Join "us"' },
    });
    expect(page.match(/<script/gi)).toHaveLength(1);
    expect(page).toContain(`<script>${CARD_SCRIPT}</script>`);
    expect(page).toContain('Hello, &lt;script&gt;x&lt;/script&gt;!');
    expect(page).toContain('value="https://c.example/join/shop?ref=ABC&amp;x=&quot;"');
    expect(page).toContain('<title>Your &lt;b&gt;Shop&lt;/b&gt; card</title>');
    expect(page).toContain('1234 5678 9012');
  });

  it('bounds the stats period and counts days in the program time zone', () => {
    const now = new Date('2026-11-25T22:30:00Z'); // already the 26th in Moscow
    expect(localDay(now, 'Europe/Moscow')).toBe('2026-11-26');
    expect(localDay(now, 'Not/AZone')).toBe('2026-11-25');
    expect(statsPeriod({}, now, 'Europe/Moscow')).toEqual({ from: '2026-10-28', to: '2026-11-26' });
    expect(statsPeriod({ from: '2026-01-01', to: '2026-12-31' }, now, 'UTC')).toEqual({ from: '2026-01-01', to: '2026-12-31' });
    expect(statsPeriod({ from: '2026-01-01', to: '2027-01-02' }, now, 'UTC')).toHaveProperty('error');
    expect(statsPeriod({ from: '2026-02-01', to: '2026-01-01' }, now, 'UTC')).toHaveProperty('error');
  });

  it('hashes visitors per program and day (no way to link days)', () => {
    const key = deriveKey('k'.repeat(24), 'join-visitor');
    const a = visitorHash(key, 'p', '2026-11-25', 'visitor');
    expect(a).toHaveLength(32);
    expect(visitorHash(key, 'p', '2026-11-25', 'visitor')).toBe(a);
    expect(visitorHash(key, 'p', '2026-11-26', 'visitor')).not.toBe(a);
    expect(visitorHash(key, 'q', '2026-11-25', 'visitor')).not.toBe(a);
  });
});
