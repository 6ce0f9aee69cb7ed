import type { Lang } from '../i18n/format.js';

/**
 * "Add to Apple Wallet" and "Add to Google Wallet" as inline SVG, drawn here after the published
 * guidelines, because the official artwork cannot be fetched at build time and the one npm package
 * that copies it (@neostore/cinto, MIT) cannot license Apple's or Google's marks: they are licensed
 * by Apple (Add to Apple Wallet badge licence) and Google (Google Wallet brand guidelines) directly.
 * An operator who has accepted those terms may replace these two functions with the official files.
 *
 * What is kept from the guidelines: Apple — the black badge with the thin #a6a6a6 keyline and 9.5
 * corner radius on a 35-unit height, the Wallet glyph (pocket and four cards in Wallet's colours) on
 * the left, two white lines "Add to" / "Apple Wallet" ("Добавить в" / "Apple Wallet"), never
 * recoloured, never narrower than its text; Google — the #1f1f1f pill with the #747775 keyline, the
 * four-colour Wallet logo on the left, one white line "Add to Google Wallet" ("Добавить в Google
 * Кошелёк"). The text is live text (system fonts), fitted with `textLength` so the proportions hold
 * whatever font the phone has; the badge is `aria-hidden` and the link carries the words.
 */

const APPLE_TEXT: Record<Lang, string> = { ru: 'Добавить в', en: 'Add to' };
const GOOGLE_TEXT: Record<Lang, string> = { ru: 'Добавить в Google Кошелёк', en: 'Add to Google Wallet' };

/** Width ÷ height of each badge (the CSS sizes them by height). */
export const BADGE_RATIO = { apple: 120 / 35, google: { ru: 290 / 55, en: 222 / 55 } as Record<Lang, number> };

export function appleWalletBadge(lang: Lang): string {
  return `<svg class="badge-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 35" width="120" height="35" aria-hidden="true" focusable="false">\
<rect x="0" y="0" width="120" height="35" rx="9.5" fill="#a6a6a6"/><rect x="0.6" y="0.6" width="118.8" height="33.8" rx="8.9" fill="#000"/>\
<g transform="translate(7 6.5)"><rect width="26" height="22" rx="4.5" fill="#fff" fill-opacity=".001"/>\
<rect x="1" y="1" width="24" height="7" rx="2" fill="#40a5d9"/><rect x="1" y="5" width="24" height="7" rx="2" fill="#ffb003"/>\
<rect x="1" y="9" width="24" height="7" rx="2" fill="#40c740"/><rect x="1" y="13" width="24" height="7" rx="2" fill="#f26d5f"/>\
<path d="M1 14h7.5c1.2 0 1.8.5 2.4 1.4.7 1 1.4 1.6 2.1 1.6s1.4-.6 2.1-1.6c.6-.9 1.2-1.4 2.4-1.4H25v5.5a2.5 2.5 0 0 1-2.5 2.5h-19A2.5 2.5 0 0 1 1 19.5z" fill="#dedbce"/></g>\
<text x="39" y="14.2" fill="#fff" font-family="-apple-system,system-ui,'SF Pro Text','Helvetica Neue',Arial,sans-serif" font-size="7.6" textLength="${lang === 'ru' ? 37 : 22}" lengthAdjust="spacingAndGlyphs">${APPLE_TEXT[lang]}</text>\
<text x="38.6" y="27" fill="#fff" font-family="-apple-system,system-ui,'SF Pro Display','Helvetica Neue',Arial,sans-serif" font-size="13" font-weight="500" textLength="73" lengthAdjust="spacingAndGlyphs">Apple Wallet</text></svg>`;
}

export function googleWalletButton(lang: Lang): string {
  const width = lang === 'ru' ? 290 : 222;
  const text = GOOGLE_TEXT[lang];
  return `<svg class="badge-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} 55" width="${width}" height="55" aria-hidden="true" focusable="false">\
<rect x="0.5" y="0.5" width="${width - 1}" height="54" rx="27" fill="#1f1f1f" stroke="#747775"/>\
<path fill="#34a853" d="M57 23.8H21v-5.6c0-3.1 2.6-5.7 5.8-5.7h24.4c3.2 0 5.8 2.6 5.8 5.7z"/>\
<path fill="#fbbc04" d="M57 29H21v-6c0-3.3 2.6-6 5.8-6h24.4c3.2 0 5.8 2.7 5.8 6z"/>\
<path fill="#ea4335" d="M57 34H21v-6c0-3.3 2.6-6 5.8-6h24.4c3.2 0 5.8 2.7 5.8 6z"/>\
<path fill="#4285f4" d="M21 25.2l22.8 5.2c2.7.6 5.6 0 7.8-1.6l5.4-3.9V37c0 3.1-2.6 5.5-5.8 5.5H26.8c-3.2 0-5.8-2.4-5.8-5.5z"/>\
<text x="70" y="33.5" fill="#fff" font-family="'Google Sans',Roboto,system-ui,Arial,sans-serif" font-size="17" font-weight="500" textLength="${width - 70 - 22}" lengthAdjust="spacingAndGlyphs">${text}</text></svg>`;
}
