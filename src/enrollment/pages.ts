import { createHash } from 'node:crypto';
import { html, raw, type SafeHtml } from '../http/html.js';
import { appleWalletBadge, googleWalletButton } from './badges.js';
import { MESSAGES, points, type FieldName, type Lang } from './i18n.js';

/**
 * Server-rendered public pages: the join form, the card page and short notices. Mobile first, one
 * inline stylesheet, no external assets; everything works without JavaScript. The card page has one
 * small inline script (allowed by its hash in the CSP) that only adds what needs JavaScript: Copy,
 * Share (Web Share API) and "install" on Android; without it the same things stay reachable.
 */

// ---------------------------------------------------------------------------------------------
// Colours: the program's design, kept readable (WCAG AA, 4.5:1) whatever the program chose.
// ---------------------------------------------------------------------------------------------

const HEX = /^#[0-9a-fA-F]{6}$/;

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrastRatio(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

export interface Brand {
  background: string;
  foreground: string;
}

/** The program's colours, with the text colour replaced by black or white when it is not readable. */
export function brandColours(design: Record<string, unknown>): Brand {
  const background = typeof design.backgroundColor === 'string' && HEX.test(design.backgroundColor) ? design.backgroundColor : '#1f2a44';
  const wanted = typeof design.foregroundColor === 'string' && HEX.test(design.foregroundColor) ? design.foregroundColor : '#ffffff';
  if (contrastRatio(background, wanted) >= 4.5) return { background, foreground: wanted };
  return { background, foreground: contrastRatio(background, '#000000') >= contrastRatio(background, '#ffffff') ? '#000000' : '#ffffff' };
}

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

const CSS = `
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:#f3f4f6;color:#16181d}
.wrap{max-width:32rem;margin:0 auto;padding:0 1rem}
.brand{background:var(--brand);color:var(--brand-fg);padding:.75rem 0 1.25rem}
.brand a{color:var(--brand-fg)}
.brand h1{margin:.25rem 0 0;font-size:1.6rem;line-height:1.2}
.lang{margin:0;text-align:right;font-size:.95rem}
main{padding-bottom:2rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
a{color:#0b57d0}
.panel{background:#fff;border-radius:14px;padding:1rem;margin:1rem 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.panel>h2:first-child{margin-top:0}
.member{background:var(--brand);color:var(--brand-fg)}
.bonus .big{font-size:1.35rem;font-weight:700;margin:0}
.bonus p{margin:.25rem 0}
.field{margin:1rem 0}
label{display:block;font-weight:600;margin:0 0 .25rem}
.hint{margin:0 0 .25rem;color:#454955;font-size:.95rem}
input[type=text],input[type=tel],input[type=email],input[type=date],input[type=url]{display:block;width:100%;font:inherit;font-size:1.05rem;padding:.7rem .75rem;border:2px solid #5f6470;border-radius:10px;background:#fff;color:#16181d;min-height:3rem}
input[aria-invalid=true]{border-color:#b3261e}
.error{color:#b3261e;font-weight:600;margin:0 0 .25rem}
.summary{border:3px solid #b3261e;background:#fff;border-radius:12px;padding:.75rem 1rem;margin:1rem 0}
.summary h2{margin:0 0 .25rem;font-size:1.1rem}
.summary ul{margin:0;padding-left:1.25rem}
.summary a{color:#b3261e;font-weight:600}
fieldset{border:0;padding:0;margin:1.25rem 0}
legend{font-weight:600;padding:0;margin-bottom:.25rem}
.check{display:flex;gap:.75rem;align-items:flex-start}
.check input{width:1.6rem;height:1.6rem;margin:.1rem 0 0;flex:none;accent-color:#0b57d0}
.check label{font-weight:400}
.button{display:flex;align-items:center;justify-content:center;width:100%;min-height:3.25rem;padding:.75rem 1rem;border:0;border-radius:12px;font:inherit;font-weight:700;font-size:1.1rem;text-align:center;text-decoration:none;cursor:pointer}
.primary{background:var(--brand);color:var(--brand-fg)}
.badge{display:block;width:max-content;max-width:100%;margin:.75rem auto;border-radius:10px;line-height:0}
.badge svg{display:block;height:3.25rem;width:auto;max-width:100%}
.badge.google svg{height:3.5rem}
.badge:focus-visible{outline-offset:4px}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.75rem 0 0}
.actions .button{width:auto;flex:1 1 10rem;margin:0}
.status{min-height:1.5rem;margin:.25rem 0 0;font-weight:600}
.secondary{background:#fff;color:#16181d;border:2px solid #5f6470;margin:.75rem 0}
:focus-visible{outline:3px solid #0b57d0;outline-offset:3px;box-shadow:0 0 0 6px #fff}
.brand :focus-visible{outline-color:var(--brand-fg);box-shadow:none}
.hp{position:absolute!important;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden}
.visually-hidden{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.card-head{display:flex;justify-content:space-between;gap:1rem;flex-wrap:wrap}
.card-head dl{margin:0}
.card-head dt{font-size:.9rem;color:#454955}
.member .card-head dt{color:var(--brand-fg)}
.card-head dd{margin:0 0 .5rem;font-size:1.5rem;font-weight:700}
.qr{display:block;width:100%;max-width:15rem;height:auto;margin:.5rem auto;background:#fff}
.number{text-align:center;font-size:1.25rem;letter-spacing:.12em;font-variant-numeric:tabular-nums;margin:.25rem 0 0}
.steps{margin:.5rem 0;padding-left:1.25rem}
.card-preview{display:grid;grid-template-columns:1fr auto;align-items:end;gap:.25rem 1rem;max-width:17rem;aspect-ratio:1.586;margin:1rem auto;padding:.9rem 1rem;border-radius:14px;background:var(--brand);color:var(--brand-fg);box-shadow:0 6px 16px rgba(0,0,0,.18)}
.card-preview .cp-name{grid-column:1/-1;align-self:start;font-weight:700;font-size:1.05rem;line-height:1.25}
.card-preview .cp-label{display:block;font-size:.75rem;opacity:.85}
.card-preview .cp-balance{font-weight:700;font-size:1.15rem}
.card-preview .cp-qr{width:3.25rem;height:3.25rem;border-radius:6px;background:#fff;background-image:repeating-linear-gradient(90deg,#000 0 4px,transparent 4px 8px),repeating-linear-gradient(0deg,#fff 0 4px,transparent 4px 8px);background-blend-mode:normal;border:5px solid #fff}
.share{display:flex;flex-wrap:wrap;gap:.5rem;margin:.75rem 0 0;padding:0;list-style:none}
.share a{display:inline-block;padding:.6rem 1rem;border-radius:10px;border:2px solid #5f6470;color:#16181d;text-decoration:none;font-weight:600;min-height:3rem}
details{margin:1rem 0}
summary{cursor:pointer;font-weight:600;min-height:2.5rem}
.notice{color:#454955;font-size:.95rem}
@media (prefers-reduced-motion:no-preference){.button{transition:filter .15s}.button:hover{filter:brightness(1.1)}}
`;

export interface PageFrame {
  lang: Lang;
  title: string;
  brand: Brand;
  /** Link to the same page in the other language. */
  otherLangHref: string;
  heading: string;
  body: SafeHtml;
  /** Link previews in messengers (Open Graph, Twitter cards): absolute URLs. */
  preview?: { title: string; description: string; url: string; image: string; imageAlt: string; siteName: string };
  /** The program's icons (favicon, home-screen icon) and, on the card page, its web app manifest. */
  icons?: { png192: string; appleTouch: string };
  manifest?: string;
  /** The card page's inline script (see CARD_SCRIPT). */
  script?: boolean;
}

const OG_LOCALE: Record<Lang, string> = { ru: 'ru_RU', en: 'en_US' };

function headExtras(frame: PageFrame): SafeHtml {
  const p = frame.preview;
  return html`${p ? html`<meta name="description" content="${p.description}">
<meta property="og:type" content="website">
<meta property="og:site_name" content="${p.siteName}">
<meta property="og:title" content="${p.title}">
<meta property="og:description" content="${p.description}">
<meta property="og:url" content="${p.url}">
<meta property="og:image" content="${p.image}">
<meta property="og:image:width" content="1200">
<meta property="og:image:height" content="630">
<meta property="og:image:alt" content="${p.imageAlt}">
<meta property="og:locale" content="${OG_LOCALE[frame.lang]}">
<meta name="twitter:card" content="summary_large_image">
<meta name="twitter:title" content="${p.title}">
<meta name="twitter:description" content="${p.description}">
<meta name="twitter:image" content="${p.image}">
` : ''}${frame.icons ? html`<link rel="icon" type="image/png" sizes="192x192" href="${frame.icons.png192}">
<link rel="apple-touch-icon" href="${frame.icons.appleTouch}">
` : ''}${frame.manifest ? html`<link rel="manifest" href="${frame.manifest}">
<meta name="mobile-web-app-capable" content="yes">
<meta name="apple-mobile-web-app-capable" content="yes">
<meta name="apple-mobile-web-app-title" content="${frame.heading}">
` : ''}`;
}

/**
 * The card page's script: static text (nothing interpolated, so its hash is fixed and goes into the
 * CSP). Copy: the Clipboard API, else select + execCommand; Share: the Web Share API, else Copy;
 * Install: Chrome's `beforeinstallprompt` on Android. The buttons are `hidden` until it runs.
 */
export const CARD_SCRIPT = `(function(){var d=document,f=d.getElementById('referral-link'),st=d.getElementById('share-status');
function say(el){if(st)st.textContent=el.getAttribute('data-done')||'';}
function copy(el){function old(){f.focus();f.select();try{d.execCommand('copy');say(el)}catch(e){}}
if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(f.value).then(function(){say(el)},old)}else old()}
var c=d.querySelector('[data-copy]'),s=d.querySelector('[data-share-native]');
if(f&&c){c.hidden=false;c.addEventListener('click',function(){copy(c)})}
if(f&&s){s.hidden=false;s.addEventListener('click',function(){if(navigator.share){navigator.share({title:d.title,text:s.getAttribute('data-text'),url:f.value}).catch(function(){})}else copy(c||s)})}
var i=d.querySelector('[data-install]'),p=null;
if(i){addEventListener('beforeinstallprompt',function(e){e.preventDefault();p=e;i.hidden=false});i.addEventListener('click',function(){if(p){p.prompt();p=null;i.hidden=true}})}})();`;
export const CARD_SCRIPT_HASH = `sha256-${createHash('sha256').update(CARD_SCRIPT).digest('base64')}`;

export function renderPage(frame: PageFrame): string {
  const other: Lang = frame.lang === 'ru' ? 'en' : 'ru';
  const t = MESSAGES[frame.lang];
  const vars = `:root{--brand:${frame.brand.background};--brand-fg:${frame.brand.foreground}}`;
  return `<!doctype html>\n${html`<html lang="${frame.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<meta name="theme-color" content="${frame.brand.background}">
<title>${frame.title}</title>
${headExtras(frame)}<style>${raw(vars + CSS)}</style>
</head>
<body>
<header class="brand"><div class="wrap">
<p class="lang"><a href="${frame.otherLangHref}" hreflang="${other}" lang="${other}" title="${t.switchTo}">${MESSAGES[other].langName}</a></p>
<h1>${frame.heading}</h1>
</div></header>
<main class="wrap" id="main">
${frame.body}
</main>
${frame.script ? raw(`<script>${CARD_SCRIPT}</script>`) : ''}
</body>
</html>`}\n`;
}

// ---------------------------------------------------------------------------------------------
// The join form
// ---------------------------------------------------------------------------------------------

export interface JoinFormValues {
  name: string;
  phone: string;
  email: string;
  birthday: string;
  consent: boolean;
}

export interface JoinFormView {
  lang: Lang;
  programName: string;
  brand: Brand;
  otherLangHref: string;
  action: string;
  welcomeBonus: number;
  referral?: { bonus: number; later: boolean };
  consentText: string;
  terms?: string;
  contacts?: string;
  values: JoinFormValues;
  errors: Partial<Record<FieldName, string>>;
  /** A form-level error (the bot checks), shown in the summary. */
  formError?: string;
  hidden: Record<string, string | null | undefined>;
  /** "I already have a card": shown when the program has imported plastic cards. */
  haveCardHref?: string;
  preview?: PageFrame['preview'];
  icons?: PageFrame['icons'];
}

const FIELD_ORDER: FieldName[] = ['name', 'phone', 'email', 'birthday'];

export function renderJoinPage(view: JoinFormView): string {
  const t = MESSAGES[view.lang];
  const firstInvalid = FIELD_ORDER.find((f) => view.errors[f]);
  const described = (field: FieldName, hint?: boolean) =>
    [hint ? `f-${field}-hint` : '', view.errors[field] ? `f-${field}-error` : ''].filter(Boolean).join(' ') || null;
  const errorLine = (field: FieldName) =>
    view.errors[field] ? html`<p class="error" id="f-${field}-error"><span class="visually-hidden">${view.lang === 'ru' ? 'Ошибка: ' : 'Error: '}</span>${view.errors[field]}</p>` : '';
  const attrs = (field: FieldName, hint = false) => {
    const describedBy = described(field, hint);
    return html`${view.errors[field] ? html` aria-invalid="true"` : ''}${describedBy ? html` aria-describedby="${describedBy}"` : ''}${firstInvalid === field ? html` autofocus` : ''}`;
  };
  const summaryItems = FIELD_ORDER.filter((f) => view.errors[f]).map((f) => html`<li><a href="#f-${f}">${view.errors[f]}</a></li>`);
  const summary =
    summaryItems.length > 0 || view.formError
      ? html`<div class="summary" role="alert" aria-labelledby="errors-title">
<h2 id="errors-title">${t.errorsHeading}</h2>
${view.formError ? html`<p>${view.formError}</p>` : ''}
${summaryItems.length > 0 ? html`<ul>${summaryItems}</ul>` : ''}
</div>`
      : '';
  const hidden = Object.entries(view.hidden)
    .filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '')
    .map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`);

  // A small picture of the card to come (the program's colours, the balance it starts with):
  // decoration, hidden from screen readers, which read the same facts as text right after it.
  const preview = html`<div class="card-preview" data-card-preview aria-hidden="true"><span class="cp-name">${view.programName}</span><span><span class="cp-label">${t.balance}</span><span class="cp-balance">${points(view.lang, view.welcomeBonus)}</span></span><span class="cp-qr"></span></div>`;
  const body = html`${preview}<section class="panel bonus" aria-labelledby="bonus-title">
<p class="big" id="bonus-title">+${t.welcomeBonus(view.welcomeBonus)}</p>
${view.referral ? html`<p>${t.invited}. ${t.referralBonus(view.referral.bonus, view.referral.later)}.</p>` : ''}
</section>
<p>${t.joinLead}</p>
${summary}
<form method="post" action="${view.action}" novalidate>
${hidden}<div class="field">
<label for="f-name">${t.name}</label>
${errorLine('name')}<input id="f-name" name="name" type="text" autocomplete="name" required maxlength="200" value="${view.values.name}"${attrs('name')}>
</div>
<div class="field">
<label for="f-phone">${t.phone}</label>
<p class="hint" id="f-phone-hint">${t.phoneHint}</p>
${errorLine('phone')}<input id="f-phone" name="phone" type="tel" inputmode="tel" autocomplete="tel" required maxlength="32" value="${view.values.phone}"${attrs('phone', true)}>
</div>
<div class="field">
<label for="f-email">${t.email} <span class="notice">(${t.optional})</span></label>
${errorLine('email')}<input id="f-email" name="email" type="email" inputmode="email" autocomplete="email" maxlength="254" value="${view.values.email}"${attrs('email')}>
</div>
<div class="field">
<label for="f-birthday">${t.birthday} <span class="notice">(${t.optional})</span></label>
${errorLine('birthday')}<input id="f-birthday" name="birthday" type="date" autocomplete="bday" min="1900-01-01" value="${view.values.birthday}"${attrs('birthday')}>
</div>
<div class="hp" aria-hidden="true">
<label for="f-website">${t.honeypot}</label>
<input id="f-website" name="website" type="text" tabindex="-1" autocomplete="off" value="">
</div>
<fieldset>
<legend>${t.consentHeading} <span class="notice">(${t.optional})</span></legend>
<div class="check">
<input id="f-consent" name="consent" type="checkbox" value="yes"${view.values.consent ? html` checked` : ''}>
<label for="f-consent">${view.consentText}</label>
</div>
</fieldset>
<button type="submit" class="button primary">${t.submit}</button>
</form>
${view.haveCardHref ? html`<p><a href="${view.haveCardHref}" data-have-card>${t.haveCard.link}</a></p>` : ''}
${view.terms ? html`<details><summary>${t.terms}</summary><p>${view.terms}</p></details>` : ''}
${view.contacts ? html`<p class="notice">${view.contacts}</p>` : ''}`;

  return renderPage({
    lang: view.lang,
    title: t.joinTitle(view.programName),
    heading: t.joinTitle(view.programName),
    brand: view.brand,
    otherLangHref: view.otherLangHref,
    body,
    preview: view.preview,
    icons: view.icons,
  });
}

// ---------------------------------------------------------------------------------------------
// The card page
// ---------------------------------------------------------------------------------------------

export type Platform = 'ios' | 'android' | 'desktop';

/** What the card page offers, from the User-Agent: Apple on iOS, Google on Android, both elsewhere. */
export function detectPlatform(userAgent: string | undefined): Platform {
  const ua = userAgent ?? '';
  if (/\b(iPhone|iPad|iPod)\b/.test(ua)) return 'ios';
  if (/\bAndroid\b/.test(ua)) return 'android';
  return 'desktop';
}

export interface CardPageView {
  lang: Lang;
  programName: string;
  brand: Brand;
  otherLangHref: string;
  holderName: string;
  balance: number;
  tierName: string;
  number: string;
  blocked: boolean;
  platform: Platform;
  googleEnabled: boolean;
  pkpassHref: string;
  googleHref: string;
  /** Inline SVG of the page's own URL, for desktop: scan to open on the phone. */
  pageQrSvg?: string;
  /** Inline SVG of the card number: the page works as a web card at the till. */
  barcodeSvg: string;
  referral: { url: string; inviterBonus: number; inviteeBonus: number; shareText: string } | null;
  /** Bonuses shown but not spendable yet; `verify`: the form that sends a code to the card's phone. */
  pending?: { points: number; verify?: { action: string; maskedPhone: string; hidden: Record<string, string> } };
  /** A status line on top (e.g. after the phone was confirmed). */
  notice?: string;
  /** A plastic card claimed without a code: shown until the first purchase confirms the phone. */
  unverifiedClaim?: string;
  icons?: PageFrame['icons'];
  manifestHref?: string;
}

/** Hidden inputs of a form, skipping empty values. */
function hiddenInputs(fields: Record<string, string | null | undefined>) {
  return Object.entries(fields)
    .filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '')
    .map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`);
}

export function renderCardPage(view: CardPageView): string {
  const t = MESSAGES[view.lang];
  const showApple = view.platform !== 'android';
  const showGoogle = view.googleEnabled && view.platform !== 'ios';
  // Android without Google Wallet: a .pkpass opens in no wallet most Android phones have, so the
  // main action is this page itself — the barcode first, and "add to home screen" (the manifest).
  const webCard = view.platform === 'android' && !view.googleEnabled && !view.blocked;
  const appleButton = html`<a class="badge apple" data-wallet="apple" href="${view.pkpassHref}" aria-label="${t.addApple}">${raw(appleWalletBadge(view.lang))}</a>`;
  const googleButton = html`<a class="badge google" data-wallet="google" href="${view.googleHref}" aria-label="${t.addGoogle}">${raw(googleWalletButton(view.lang))}</a>`;

  const wallets = view.blocked
    ? html`<p class="summary" role="status">${t.blocked}</p>`
    : webCard
      ? html`<section class="panel" aria-labelledby="wallet-title" data-web-card>
<h2 id="wallet-title">${t.webCardHeading}</h2>
<p>${t.webCardText}</p>
<p>${t.homeScreenLead}</p>
<ol class="steps"><li>${t.homeScreenStep1}</li><li>${t.homeScreenStep2}</li></ol>
<button type="button" class="button primary" data-install hidden>${t.installButton}</button>
</section>`
      : html`<section class="panel" aria-labelledby="wallet-title">
<h2 id="wallet-title">${t.walletHeading}</h2>
${showApple ? appleButton : ''}
${showGoogle ? googleButton : ''}
${view.pageQrSvg ? html`<p>${t.scanOnPhone}</p>${raw(view.pageQrSvg)}` : ''}
</section>`;

  const referral = view.referral;
  const share = referral
    ? (() => {
        const text = referral.shareText;
        const links = [
          { service: 'Telegram', href: `https://t.me/share/url?url=${encodeURIComponent(referral.url)}&text=${encodeURIComponent(text)}` },
          { service: 'WhatsApp', href: `https://wa.me/?text=${encodeURIComponent(`${text} ${referral.url}`)}` },
          { service: 'VK', href: `https://vk.com/share.php?url=${encodeURIComponent(referral.url)}&title=${encodeURIComponent(text)}` },
        ];
        return html`<section class="panel" aria-labelledby="referral-title">
<h2 id="referral-title">${t.referralHeading}</h2>
${referral.inviterBonus > 0 || referral.inviteeBonus > 0 ? html`<p>${t.referralText(referral.inviterBonus, referral.inviteeBonus)}</p>` : ''}
<label for="referral-link">${t.referralLink}</label>
<input id="referral-link" type="url" readonly value="${referral.url}">
<div class="actions">
<button type="button" class="button primary" data-share-native data-text="${text}" data-done="${t.linkCopied}" hidden>${t.shareLink}</button>
<button type="button" class="button secondary" data-copy data-done="${t.linkCopied}" hidden>${t.copyLink}</button>
</div>
<p class="status" id="share-status" role="status" aria-live="polite"></p>
<ul class="share">${links.map(
          (l) => html`<li><a href="${l.href}" target="_blank" rel="noopener noreferrer" data-share="${l.service.toLowerCase()}" aria-label="${t.shareVia(l.service)}">${l.service}</a></li>`,
        )}</ul>
</section>`;
      })()
    : '';

  const pending = view.pending && view.pending.points > 0 ? view.pending : undefined;
  const pendingPanel = pending
    ? html`<section class="panel" aria-labelledby="pending-title" data-pending>
<h2 id="pending-title">${t.pendingHeading}</h2>
<p>${t.pendingText(pending.points)}</p>
${
  pending.verify
    ? html`<p>${t.pendingVerify(pending.verify.maskedPhone)}</p>
<form method="post" action="${pending.verify.action}" data-verify-form>
${hiddenInputs(pending.verify.hidden)}<button type="submit" class="button secondary">${t.sendCode}</button>
</form>`
    : html`<p>${t.pendingAfterPurchase}</p>`
}
</section>`
    : '';

  const barcode = html`<section class="panel" aria-labelledby="barcode-title" data-barcode>
<h2 id="barcode-title">${t.barcodeHeading}</h2>
${webCard ? html`<p>${t.barcodeText}</p>` : ''}
${raw(view.barcodeSvg)}
<p class="number"><span class="visually-hidden">${t.cardNumber}: </span>${view.number.replace(/(\d{4})(?=\d)/g, '$1 ')}</p>
</section>`;

  const body = html`${view.notice ? html`<p class="summary" role="status" data-notice>${view.notice}</p>` : ''}${
    view.unverifiedClaim ? html`<p class="notice" role="status" data-unverified-claim>${view.unverifiedClaim}</p>` : ''
  }<section class="panel member" aria-labelledby="card-title">
<h2 id="card-title">${t.hello(view.holderName)}</h2>
<div class="card-head"><dl>
<dt>${t.balance}</dt><dd data-balance>${points(view.lang, view.balance)}</dd>
<dt>${t.tier}</dt><dd data-tier>${view.tierName}</dd>
</dl></div>
</section>
${webCard ? barcode : ''}
${pendingPanel}
${wallets}
${webCard ? '' : barcode}
${share}
<p class="notice"><a href="${view.pkpassHref}" data-pkpass>${t.pkpassLink}</a></p>`;

  return renderPage({
    lang: view.lang,
    title: t.cardTitle(view.programName),
    heading: view.programName,
    brand: view.brand,
    otherLangHref: view.otherLangHref,
    body,
    icons: view.icons,
    manifest: view.manifestHref,
    script: true,
  });
}

// ---------------------------------------------------------------------------------------------
// Notices (already a member, too many attempts, not found)
// ---------------------------------------------------------------------------------------------

export function renderNotice(view: {
  lang: Lang;
  brand: Brand;
  otherLangHref: string;
  heading: string;
  title: string;
  text: string;
  link?: { href: string; label: string };
  /** A one-button form under the text (e.g. "confirm this number by SMS"). */
  form?: { text: string; action: string; hidden: Record<string, string>; button: string };
}): string {
  return renderPage({
    lang: view.lang,
    title: view.title,
    heading: view.heading,
    brand: view.brand,
    otherLangHref: view.otherLangHref,
    body: html`<section class="panel" aria-labelledby="notice-title">
<h2 id="notice-title">${view.title}</h2>
<p>${view.text}</p>
${
  view.form
    ? html`<p>${view.form.text}</p>
<form method="post" action="${view.form.action}" data-verify-form>
${hiddenInputs(view.form.hidden)}<button type="submit" class="button secondary">${view.form.button}</button>
</form>`
    : ''
}
${view.link ? html`<p><a href="${view.link.href}">${view.link.label}</a></p>` : ''}
</section>`,
  });
}

// ---------------------------------------------------------------------------------------------
// The one-time code page
// ---------------------------------------------------------------------------------------------

export interface VerifyPageView {
  lang: Lang;
  programName: string;
  brand: Brand;
  otherLangHref: string;
  action: string;
  maskedPhone: string;
  minutes: number;
  /** Identifies the phone: `card` (the card page's token) or `phone` (typed on the join form). */
  hidden: Record<string, string>;
  /** Whether a code was sent (else only the error and the "send again" button are shown). */
  sent: boolean;
  error?: string;
}

export function renderVerifyPage(view: VerifyPageView): string {
  const t = MESSAGES[view.lang];
  const error = view.error
    ? html`<div class="summary" role="alert" aria-labelledby="errors-title"><h2 id="errors-title">${t.errorsHeading}</h2><p id="f-code-error">${view.error}</p></div>`
    : '';
  const codeForm = view.sent
    ? html`<form method="post" action="${view.action}" novalidate data-code-form>
${hiddenInputs({ ...view.hidden, step: 'check' })}<div class="field">
<label for="f-code">${t.code}</label>
<p class="hint" id="f-code-hint">${t.codeHint}</p>
<input id="f-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus aria-describedby="f-code-hint${view.error ? ' f-code-error' : ''}"${view.error ? html` aria-invalid="true"` : ''}>
</div>
<button type="submit" class="button primary">${t.confirm}</button>
</form>`
    : '';
  const body = html`<section class="panel" aria-labelledby="code-title">
<h2 id="code-title">${t.codeTitle}</h2>
${view.sent ? html`<p>${t.codeSent(view.maskedPhone, view.minutes)}</p>` : ''}
${error}
${codeForm}
<form method="post" action="${view.action}" data-resend-form>
${hiddenInputs({ ...view.hidden, step: 'send' })}<button type="submit" class="button secondary">${t.resend}</button>
</form>
</section>`;
  return renderPage({ lang: view.lang, title: t.codeTitle, heading: view.programName, brand: view.brand, otherLangHref: view.otherLangHref, body });
}


// ---------------------------------------------------------------------------------------------
// "I already have a card": the plastic number and the phone
// ---------------------------------------------------------------------------------------------

export interface HaveCardView {
  lang: Lang;
  programName: string;
  brand: Brand;
  otherLangHref: string;
  action: string;
  joinHref: string;
  values: { number: string; phone: string };
  errors: Partial<Record<'number' | 'phone', string>>;
  /** One message for a wrong number and a wrong phone alike (no oracle), or the bot check's. */
  formError?: string;
  hidden: Record<string, string | null | undefined>;
}

export function renderHaveCardPage(view: HaveCardView): string {
  const t = MESSAGES[view.lang];
  const fields = ['number', 'phone'] as const;
  const firstInvalid = view.formError ? 'number' : fields.find((f) => view.errors[f]);
  const errorLine = (field: 'number' | 'phone') =>
    view.errors[field] ? html`<p class="error" id="f-${field}-error"><span class="visually-hidden">${view.lang === 'ru' ? 'Ошибка: ' : 'Error: '}</span>${view.errors[field]}</p>` : '';
  const attrs = (field: 'number' | 'phone') => {
    const describedBy = [`f-${field}-hint`, view.errors[field] ? `f-${field}-error` : ''].filter(Boolean).join(' ');
    return html`${view.errors[field] ? html` aria-invalid="true"` : ''} aria-describedby="${describedBy}"${firstInvalid === field ? html` autofocus` : ''}`;
  };
  const items = fields.filter((f) => view.errors[f]).map((f) => html`<li><a href="#f-${f}">${view.errors[f]}</a></li>`);
  const summary =
    items.length > 0 || view.formError
      ? html`<div class="summary" role="alert" aria-labelledby="errors-title" data-form-error>
<h2 id="errors-title">${t.errorsHeading}</h2>
${view.formError ? html`<p>${view.formError}</p>` : ''}
${items.length > 0 ? html`<ul>${items}</ul>` : ''}
</div>`
      : '';
  const body = html`<p>${t.haveCard.lead}</p>
${summary}
<form method="post" action="${view.action}" novalidate data-have-card-form>
${hiddenInputs(view.hidden)}<div class="field">
<label for="f-number">${t.haveCard.number}</label>
<p class="hint" id="f-number-hint">${t.haveCard.numberHint}</p>
${errorLine('number')}<input id="f-number" name="number" type="text" inputmode="numeric" autocomplete="off" required maxlength="64" value="${view.values.number}"${attrs('number')}>
</div>
<div class="field">
<label for="f-phone">${t.phone}</label>
<p class="hint" id="f-phone-hint">${t.phoneHint}</p>
${errorLine('phone')}<input id="f-phone" name="phone" type="tel" inputmode="tel" autocomplete="tel" required maxlength="32" value="${view.values.phone}"${attrs('phone')}>
</div>
<div class="hp" aria-hidden="true">
<label for="f-website">${t.honeypot}</label>
<input id="f-website" name="website" type="text" tabindex="-1" autocomplete="off" value="">
</div>
<button type="submit" class="button primary">${t.haveCard.submit}</button>
</form>
<p><a href="${view.joinHref}">${t.haveCard.backToJoin}</a></p>`;
  return renderPage({
    lang: view.lang,
    title: t.haveCard.title(view.programName),
    heading: t.haveCard.title(view.programName),
    brand: view.brand,
    otherLangHref: view.otherLangHref,
    body,
  });
}
