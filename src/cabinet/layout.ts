import { html, raw, type SafeHtml } from '../http/html.js';
import type { CabinetSession } from './auth.js';
import { CABINET_MESSAGES, type Lang } from './i18n.js';
import { NAV_GROUPS, type NavGroup } from './kit.js';

/**
 * The cabinet's page shell and form helpers. Every page: a skip link, a header with the program,
 * the sections the role may open, the language switch and sign-out; `<main>`; one stylesheet
 * inline and one small script (`/app/assets/cabinet.js`, progressive: everything works without it).
 */

export const CSRF_FIELD = '_csrf';
export const ASSET_VERSION = '1';

const CSS = `
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:#f3f4f6;color:#16181d}
a{color:#0b57d0}
.skip{position:absolute;left:-10000px;top:0;background:#fff;color:#0b57d0;padding:.5rem 1rem;z-index:10}
.skip:focus{left:.5rem;top:.5rem}
.top{background:#1f2a44;color:#fff}
.top a{color:#fff}
.top .bar{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem 1rem;max-width:76rem;margin:0 auto;padding:.5rem 1rem}
.top .program{font-weight:700;font-size:1.1rem;margin:0}
.top .who{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;font-size:.95rem}
.top form{margin:0}
.linkbutton{background:none;border:0;padding:0;font:inherit;color:inherit;text-decoration:underline;cursor:pointer;min-height:2rem}
.sections ul{list-style:none;margin:0;padding:0}
.sections .group{margin:.9rem .75rem .2rem;font-size:.8rem;font-weight:700;letter-spacing:.04em;text-transform:uppercase;color:#5f6470}
.sections a{display:flex;align-items:center;padding:.45rem .75rem;border-radius:8px;text-decoration:none;font-weight:600;min-height:2.5rem;color:#1f2a44}
.sections a:hover{background:#e6e8ee}
.sections a[aria-current=page]{background:#1f2a44;color:#fff}
.menu{margin:0;padding:0 1rem .35rem;max-width:76rem;margin:0 auto}
.menu>summary{display:flex;align-items:center;gap:.4rem;min-height:2.75rem;font-weight:700}
.menu>summary span{font-weight:400;opacity:.85}
.menu .sections{background:#fff;border-radius:10px;padding:.25rem .25rem .5rem;margin:0 0 .5rem}
.tabs ul{display:flex;flex-wrap:wrap;gap:.25rem .5rem;list-style:none;margin:0 0 1rem;padding:0;border-bottom:2px solid #d5d8e0}
.tabs a{display:flex;align-items:center;min-height:2.75rem;padding:.25rem .75rem;text-decoration:none;font-weight:600;color:#1f2a44;border-bottom:3px solid transparent;margin-bottom:-2px}
.tabs a[aria-current=page]{border-bottom-color:#1f2a44}
.map-links{margin:.25rem 0 .5rem}
.side{display:none}
main{display:block;max-width:76rem;margin:0 auto;padding:1rem 1rem 3rem;min-width:0}
@media (min-width:60rem){
.menu{display:none}
.shell.with-side{display:grid;grid-template-columns:14.5rem minmax(0,1fr);gap:0 1rem;max-width:92rem;margin:0 auto}
.side{display:block;padding:.5rem 0 2rem 1rem}
.shell.with-side>main{max-width:none;margin:0;padding-left:0}
}
main:focus{outline:none}
h1{font-size:1.6rem;line-height:1.2;margin:.5rem 0 1rem}
h2{font-size:1.25rem;margin:0 0 .75rem}
h3{font-size:1.05rem;margin:1rem 0 .5rem}
.panel{background:#fff;border-radius:12px;padding:1rem 1.25rem;margin:0 0 1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.grid{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(min(100%,22rem),1fr));align-items:start}
.grid>.panel{margin:0}
.grid{margin:0 0 1rem}
.chart-figure{margin:0 0 1rem}
.chart-figure figcaption{margin:0 0 .25rem}
dl.details dt{font-weight:700;margin-top:.5rem}
dl.details dd{margin:0}
.inline-search{display:flex;gap:.5rem;align-items:flex-end}
.inline-search .field{flex:1;margin:0}
tr.edit-row>td{border-bottom:2px solid #c4c7cf;padding-top:0}
tr.edit-row .panel{background:#f7f8fa;box-shadow:none;border:1px solid #dde0e6}
.field{margin:0 0 .9rem}
label,.label{display:block;font-weight:600;margin:0 0 .25rem}
.hint{margin:0 0 .25rem;color:#454955;font-size:.93rem}
input[type=text],input[type=email],input[type=password],input[type=search],input[type=number],input[type=date],input[type=datetime-local],input[type=url],input[type=tel],select,textarea{display:block;width:100%;font:inherit;padding:.55rem .7rem;border:2px solid #5f6470;border-radius:8px;background:#fff;color:#16181d;min-height:2.75rem}
textarea{min-height:5rem;resize:vertical}
input[type=color]{width:3.5rem;height:2.75rem;padding:.15rem;border:2px solid #5f6470;border-radius:8px;background:#fff}
input[type=file]{font:inherit}
input[aria-invalid=true],select[aria-invalid=true],textarea[aria-invalid=true]{border-color:#b3261e}
.big-input{font-size:1.5rem!important;font-variant-numeric:tabular-nums;min-height:3.5rem!important}
.error{color:#b3261e;font-weight:600;margin:0 0 .25rem}
.summary{border:3px solid #b3261e;background:#fff;border-radius:12px;padding:.75rem 1rem;margin:0 0 1rem}
.summary h2{margin:0 0 .25rem;font-size:1.1rem;color:#b3261e}
.summary ul{margin:0;padding-left:1.25rem}
.notice{border-left:6px solid #1b7f3b;background:#fff;border-radius:8px;padding:.75rem 1rem;margin:0 0 1rem}
.notice.warn{border-color:#b3261e}
.muted{color:#454955}
.small{font-size:.9rem}
.button{display:inline-flex;align-items:center;justify-content:center;gap:.4rem;min-height:2.75rem;padding:.5rem 1.1rem;border:2px solid #1f2a44;border-radius:10px;background:#1f2a44;color:#fff;font:inherit;font-weight:700;text-decoration:none;cursor:pointer}
.button.secondary{background:#fff;color:#1f2a44}
.button.danger{background:#fff;color:#b3261e;border-color:#b3261e}
.button.accrue{background:#1b7f3b;border-color:#1b7f3b}
.button.redeem{background:#8a3ffc;border-color:#8a3ffc}
.button.large{font-size:1.15rem;min-height:3.25rem;padding:.6rem 1.4rem}
.button[disabled]{opacity:.6;cursor:wait}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.75rem 0 0}
.row{display:flex;flex-wrap:wrap;gap:.75rem}
.row>.field{flex:1 1 10rem}
fieldset{border:1px solid #c4c7cf;border-radius:10px;padding:.75rem 1rem;margin:0 0 1rem}
legend{font-weight:700;padding:0 .25rem}
.check{display:flex;gap:.5rem;align-items:flex-start;margin:0 0 .75rem}
.check input{width:1.3rem;height:1.3rem;margin:.15rem 0 0;flex:none}
.check label{font-weight:400;margin:0}
.table-wrap{overflow-x:auto;position:relative}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:700;padding:0 0 .5rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #dde0e6;vertical-align:top}
th{font-size:.9rem;color:#2d3038}
td.num,th.num{text-align:right}
.figures{display:grid;gap:.75rem;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));margin:0}
.figures div{background:#f3f4f6;border-radius:10px;padding:.6rem .8rem}
.figures dt{font-size:.9rem;color:#454955}
.figures dd{margin:0;font-size:1.4rem;font-weight:700;font-variant-numeric:tabular-nums;overflow-wrap:break-word;hyphens:manual}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;background:#e6e8ee;font-size:.85rem;font-weight:600}
.badge.ok{background:#d8f0df;color:#14532d}
.badge.warn{background:#fde2e1;color:#8c1d18}
.chart{width:100%;height:auto;max-width:100%}
.chart text{font:12px system-ui,sans-serif;fill:#2d3038}
.legend{display:flex;flex-wrap:wrap;gap:.75rem;margin:.25rem 0;padding:0;list-style:none;font-size:.9rem}
.legend span{display:inline-block;width:.9rem;height:.9rem;border-radius:3px;margin-right:.3rem;vertical-align:-.1rem}
details{margin:.5rem 0}
summary{cursor:pointer;font-weight:600;min-height:2.25rem}
.qr{display:block;width:100%;max-width:14rem;height:auto;background:#fff}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.visually-hidden{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px;box-shadow:0 0 0 5px #fff}
.top :focus-visible{outline-color:#fff;box-shadow:0 0 0 5px #1f2a44}
.narrow{max-width:28rem;margin:2rem auto}
@media (max-width:40rem){h1{font-size:1.35rem}.panel{padding:.85rem}.figures dd{font-size:1.15rem}.inline-search{display:block}.inline-search .field{margin:0 0 .5rem}}
@media print{.top,.skip,.no-print,.actions{display:none!important}body{background:#fff}.panel{box-shadow:none;break-inside:avoid}main{padding:0}}
@media (prefers-reduced-motion:no-preference){.button{transition:filter .15s}.button:hover{filter:brightness(1.1)}}
`;

export interface NavLink {
  path: string;
  label: string;
  group: NavGroup;
}

export interface PageView {
  lang: Lang;
  title: string;
  body: SafeHtml;
  /** The same page in the other language. */
  otherLangHref: string;
  /** Signed in: the header shows the program, the sections and sign-out. */
  session?: CabinetSession;
  nav?: NavLink[];
  /** The path of the nav entry to mark as current. */
  active?: string;
  /** Extra CSS (a screen's own, e.g. the card previews). */
  css?: string;
}

export function renderCabinetPage(view: PageView): string {
  const t = CABINET_MESSAGES[view.lang];
  const other: Lang = view.lang === 'ru' ? 'en' : 'ru';
  const session = view.session;
  // The sections in groups (Till / Marketing / Program / Developers): a sidebar on a wide screen,
  // a collapsed menu on a phone (one line, so the till's search field stays on the first screen).
  // The same list twice; CSS shows one (display:none also hides the other from screen readers).
  const links = session && view.nav && view.nav.length > 0 ? view.nav : [];
  const sections = (where: string) =>
    html`<nav class="sections" aria-label="${t.mainNav}">${NAV_GROUPS.map((group) => {
      const items = links.filter((item) => item.group === group);
      if (items.length === 0) return '';
      // A group of one (the till) needs no heading repeating its only link.
      const heading = items.length > 1 ? html`<p class="group" id="nav-${where}-${group}">${t.navGroups[group]}</p>` : '';
      return html`${heading}<ul${items.length > 1 ? html` aria-labelledby="nav-${where}-${group}"` : ''}>${items.map(
        (item) => html`<li><a href="${item.path}"${item.path === view.active ? html` aria-current="page"` : ''}>${item.label}</a></li>`,
      )}</ul>`;
    })}</nav>`;
  const current = links.find((item) => item.path === view.active);
  const menu = links.length > 0 ? html`<details class="menu"><summary>${t.menu}${current ? html`<span>· ${current.label}</span>` : ''}</summary>${sections('menu')}</details>` : '';
  const side = links.length > 0 ? html`<aside class="side">${sections('side')}</aside>` : '';
  const who = session
    ? html`<span>${t.signedInAs(session.staffName, t.roles[session.role])}</span>
<form method="post" action="/app/sign-out"><input type="hidden" name="${CSRF_FIELD}" value="${session.csrf}"><button class="linkbutton" type="submit">${t.signOut}</button></form>`
    : '';
  return `<!doctype html>\n${html`<html lang="${view.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="same-origin">
<title>${view.title} · ${session ? session.programName : t.cabinet}</title>
<style>${raw(CSS + (view.css ?? ''))}</style>
<script src="/app/assets/cabinet.js?v=${ASSET_VERSION}" defer></script>
</head>
<body>
<a class="skip" href="#main">${t.skip}</a>
<header class="top">
<div class="bar">
<p class="program">${session ? session.programName : t.cabinet}</p>
<div class="who">${who}
<a href="${view.otherLangHref}" hreflang="${other}" lang="${other}" title="${t.switchTo}">${CABINET_MESSAGES[other].langName}</a>
</div>
</div>
${menu}
</header>
<div class="shell${links.length > 0 ? ' with-side' : ''}">
${side}
<main id="main" tabindex="-1">
${view.body}
</main>
</div>
</body>
</html>`}\n`;
}

// ---------------------------------------------------------------------------------------------
// Form helpers
// ---------------------------------------------------------------------------------------------

export const csrfInput = (token: string) => html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;

export type FieldErrors = Record<string, string>;

export interface FieldOptions {
  name: string;
  label: string;
  value?: string | number | null;
  type?: string;
  hint?: string;
  errors?: FieldErrors;
  /** Extra attributes, already safe (`html\`…\``). */
  attrs?: SafeHtml;
  id?: string;
  className?: string;
}

const idOf = (name: string) => `f-${name.replace(/[^A-Za-z0-9_-]/g, '-')}`;

export function field(o: FieldOptions): SafeHtml {
  const id = o.id ?? idOf(o.name);
  const error = o.errors?.[o.name];
  const describedBy = [o.hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<div class="field${o.className ? ` ${o.className}` : ''}">
<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : ''}
${error ? html`<p class="error" id="${id}-error">${error}</p>` : ''}<input id="${id}" name="${o.name}" type="${o.type ?? 'text'}" value="${o.value ?? ''}"${describedBy ? html` aria-describedby="${describedBy}"` : ''}${error ? html` aria-invalid="true"` : ''}${o.attrs ?? ''}>
</div>`;
}

export function textarea(o: FieldOptions & { rows?: number }): SafeHtml {
  const id = o.id ?? idOf(o.name);
  const error = o.errors?.[o.name];
  const describedBy = [o.hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<div class="field">
<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : ''}
${error ? html`<p class="error" id="${id}-error">${error}</p>` : ''}<textarea id="${id}" name="${o.name}" rows="${o.rows ?? 3}"${describedBy ? html` aria-describedby="${describedBy}"` : ''}${error ? html` aria-invalid="true"` : ''}${o.attrs ?? ''}>${o.value ?? ''}</textarea>
</div>`;
}

export function select(o: FieldOptions & { options: { value: string; label: string }[] }): SafeHtml {
  const id = o.id ?? idOf(o.name);
  const error = o.errors?.[o.name];
  return html`<div class="field">
<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : ''}
${error ? html`<p class="error" id="${id}-error">${error}</p>` : ''}<select id="${id}" name="${o.name}"${o.hint ? html` aria-describedby="${id}-hint"` : ''}${o.attrs ?? ''}>${o.options.map(
    (opt) => html`<option value="${opt.value}"${String(o.value ?? '') === opt.value ? html` selected` : ''}>${opt.label}</option>`,
  )}</select>
</div>`;
}

export function checkbox(o: { name: string; label: string; checked: boolean; id?: string; value?: string }): SafeHtml {
  const id = o.id ?? idOf(o.name);
  return html`<div class="check"><input id="${id}" name="${o.name}" type="checkbox" value="${o.value ?? 'yes'}"${o.checked ? html` checked` : ''}><label for="${id}">${o.label}</label></div>`;
}

/** The error summary at the top of a form: `role="alert"`, each error links to its field. */
export function errorSummary(lang: Lang, errors: FieldErrors, formError?: string, idFor: (name: string) => string = idOf): SafeHtml | '' {
  const entries = Object.entries(errors);
  if (entries.length === 0 && !formError) return '';
  const t = CABINET_MESSAGES[lang];
  return html`<div class="summary" role="alert" aria-labelledby="errors-title">
<h2 id="errors-title">${t.errorsHeading}</h2>
${formError ? html`<p>${formError}</p>` : ''}
${entries.length > 0 ? html`<ul>${entries.map(([name, message]) => html`<li><a href="#${idFor(name)}">${message}</a></li>`)}</ul>` : ''}
</div>`;
}

export function notice(text: string | SafeHtml, kind: 'ok' | 'warn' = 'ok'): SafeHtml {
  return kind === 'ok' ? html`<div class="notice" role="status">${text}</div>` : html`<div class="notice warn" role="alert">${text}</div>`;
}

/** A field's value from a parsed form body (first value, control characters removed, trimmed). */
export function formText(body: unknown, name: string, max = 2000): string {
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' ? v.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '').trim().slice(0, max) : '';
}

export function formValues(body: unknown, name: string): string[] {
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return list.filter((v): v is string => typeof v === 'string');
}
