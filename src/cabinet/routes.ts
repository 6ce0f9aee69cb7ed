import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app-context.js';
import type { CampaignService } from '../campaigns/service.js';
import { chooseLang, isLang, LANG_COOKIE } from '../enrollment/i18n.js';
import { AppError } from '../http/errors.js';
import { html } from '../http/html.js';
import { MAX_IMAGE_BYTES } from '../programs/images.js';
import { createSession, DEFAULT_AUTH_SETTINGS, endSession, loadSession, preSessionCsrf, tokensEqual, type AuthSettings } from './auth.js';
import { CABINET_MESSAGES, type Lang } from './i18n.js';
import { can, formBody, type CabinetKit, type PageOptions } from './kit.js';
import { CSRF_FIELD, renderCabinetPage, type NavLink } from './layout.js';
import { MultipartError, parseMultipart } from './multipart.js';
import type { PasswordResetService } from './password-reset.js';
import type { ImportService } from '../imports/service.js';
import { SCREENS } from './screens/index.js';

/**
 * The cabinet at `/app`: server-rendered screens for the cashier, the marketer and the owner, on
 * top of the same services as the API. This plugin does what every screen needs — the session
 * cookie, the language, role checks from each route's `config.access`, CSRF on every POST,
 * security headers and HTML error pages — and registers the screens listed in screens/index.ts.
 */
export interface CabinetOptions {
  ctx: AppContext;
  /** Derived from the instance admin key: binds the sign-in forms' CSRF token to the pre-session cookie. */
  csrfKey: Buffer;
  /** Session, link and rate-limit settings (tests shorten them). */
  auth?: Partial<AuthSettings>;
  /** The campaign service (campaign screens). */
  campaigns?: CampaignService;
  /** Password reset by email (off without SMTP_URL). */
  passwordReset?: PasswordResetService;
  /** The card-base import (the owner's upload screen). */
  imports?: ImportService;
}

export const SESSION_COOKIE = 'wc_session';
const PRE_SESSION_COOKIE = 'wc_pre';
const COOKIE_PATH = '/app';
const YEAR_SECONDS = 365 * 24 * 60 * 60;

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SCRIPT = readFileSync(new URL('./assets/cabinet.js', import.meta.url), 'utf8');

const langCache = new WeakMap<FastifyRequest, Lang>();

export const cabinetRoutes: FastifyPluginAsync<CabinetOptions> = async (app, options) => {
  const { ctx } = options;
  const settings: AuthSettings = { ...DEFAULT_AUTH_SETTINGS, ...options.auth };
  const secureCookies = ctx.config.PUBLIC_URL.startsWith('https://');
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie);
  // The settings form carries up to 10 texts of 2,000 characters; Cyrillic is 6 bytes each once URL-encoded.
  await app.register(formbody, { bodyLimit: 256 * 1024 });
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: MAX_IMAGE_BYTES + 64 * 1024 }, (request, body, done) => {
    try {
      done(null, parseMultipart(body as Buffer, String(request.headers['content-type'])));
    } catch (error) {
      if (error instanceof MultipartError) done(new AppError(400, 'bad_form', error.message), undefined);
      else done(error as Error, undefined);
    }
  });

  // HTML pages are no API: keep them out of the OpenAPI document at /docs.
  app.addHook('onRoute', (route) => {
    route.schema = { ...(route.schema ?? {}), hide: true };
  });

  const cookieOptions = (maxAge?: number) => ({ path: COOKIE_PATH, httpOnly: true, sameSite: 'lax' as const, secure: secureCookies, ...(maxAge ? { maxAge } : {}) });

  function lang(request: FastifyRequest): Lang {
    const cached = langCache.get(request);
    if (cached) return cached;
    const query = (request.query ?? {}) as Record<string, unknown>;
    const chosen = chooseLang({
      query: query.lang,
      // Optional: a request refused at the edge (http/input-guard.ts) gets this error page before cookies are parsed.
      cookie: request.cookies?.[LANG_COOKIE],
      acceptLanguage: request.headers['accept-language'],
      fallback: request.cabinet?.programLanguage ?? 'ru',
    });
    langCache.set(request, chosen);
    return chosen;
  }

  function navFor(request: FastifyRequest): NavLink[] {
    const role = request.cabinet?.role;
    const l = lang(request);
    return SCREENS.flatMap((screen) => (screen.nav && can(role, screen.nav.access) ? [{ path: screen.nav.path, label: screen.nav.label[l], group: screen.nav.group }] : []));
  }

  function activeNav(path: string): string | undefined {
    const candidates = SCREENS.flatMap((s) => (s.nav ? [s.nav.path] : []));
    return candidates
      .filter((p) => path === p || (p !== '/app' && path.startsWith(`${p}/`)))
      .sort((a, b) => b.length - a.length)[0];
  }

  function otherLangHref(request: FastifyRequest, path: string | undefined): string {
    const other: Lang = lang(request) === 'ru' ? 'en' : 'ru';
    const url = new URL(path ?? (request.method === 'GET' ? request.url : '/app'), 'http://x');
    url.searchParams.set('lang', other);
    return `${url.pathname}${url.search}`;
  }

  function page(request: FastifyRequest, reply: FastifyReply, view: PageOptions) {
    const path = view.path ?? (request.method === 'GET' ? request.url.split('?')[0] : '/app');
    return reply
      .status(view.status ?? 200)
      .type('text/html; charset=utf-8')
      .send(
        renderCabinetPage({
          lang: lang(request),
          title: view.title,
          body: view.body,
          otherLangHref: otherLangHref(request, view.path),
          session: request.cabinet,
          nav: navFor(request),
          active: view.active ?? activeNav(path),
          css: view.css,
        }),
      );
  }

  /** The token of the forms shown before sign-in, bound to the pre-session cookie (set when missing). */
  function preSessionToken(request: FastifyRequest, reply: FastifyReply): string {
    let pre = request.cookies[PRE_SESSION_COOKIE];
    if (!pre || !/^[A-Za-z0-9_-]{22,64}$/.test(pre)) {
      pre = randomBytes(24).toString('base64url');
      reply.setCookie(PRE_SESSION_COOKIE, pre, cookieOptions(YEAR_SECONDS));
      request.cookies[PRE_SESSION_COOKIE] = pre;
    }
    return preSessionCsrf(options.csrfKey, pre);
  }

  const kit: CabinetKit = {
    ctx,
    campaigns: options.campaigns,
    passwordReset: options.passwordReset,
    imports: options.imports,
    settings,
    secureCookies,
    lang,
    session(request) {
      if (!request.cabinet) throw new AppError(401, 'signed_out', 'Sign in first');
      return request.cabinet;
    },
    page,
    redirect: (reply, path) => reply.redirect(path, 303),
    formToken: preSessionToken,
    async startSession(request, reply, staff, method) {
      // A new random session on every sign-in (no fixation); the old one, if any, ends.
      if (request.cabinet) await endSession(ctx.db, request.cabinet.tokenHash);
      const { token } = await createSession(ctx.db, { ...staff, method, userAgent: request.headers['user-agent'], now: ctx.clock(), settings });
      reply.setCookie(SESSION_COOKIE, token, cookieOptions(Math.floor(settings.sessionMaxMs / 1000)));
    },
    async endSession(request, reply) {
      if (request.cabinet) await endSession(ctx.db, request.cabinet.tokenHash);
      reply.clearCookie(SESSION_COOKIE, { path: COOKIE_PATH });
    },
  };

  // ---- every request: language, session ------------------------------------------------------
  app.addHook('onRequest', async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, unknown>;
    if (isLang(query.lang) && request.cookies[LANG_COOKIE] !== query.lang) {
      reply.setCookie(LANG_COOKIE, query.lang, { path: '/', maxAge: YEAR_SECONDS, httpOnly: true, sameSite: 'lax', secure: secureCookies });
    }
    const token = request.cookies[SESSION_COOKIE];
    if (token && !request.url.startsWith('/app/assets/')) {
      request.cabinet = await loadSession(ctx.db, token, ctx.clock(), settings);
      if (!request.cabinet) reply.clearCookie(SESSION_COOKIE, { path: COOKIE_PATH });
    }
  });

  // ---- every route: who may call it, and CSRF on every POST ------------------------------------
  app.addHook('preHandler', async (request, reply) => {
    if (request.is404) return;
    const access = request.routeOptions.config?.access ?? 'owner';
    if (access !== 'public') {
      if (!request.cabinet) {
        if (request.method === 'GET' || request.method === 'HEAD') {
          return reply.redirect(`/app/sign-in?next=${encodeURIComponent(request.url)}`, 303);
        }
        throw new AppError(401, 'signed_out', 'Sign in first');
      }
      if (!can(request.cabinet.role, access)) throw new AppError(403, 'forbidden', 'Your role cannot open this');
    }
    if (request.method === 'POST') {
      // A form posted from another site is refused before anything else (browsers send Sec-Fetch-Site).
      if (request.headers['sec-fetch-site'] === 'cross-site') throw new AppError(403, 'csrf_failed', 'Cross-site form');
      const body = formBody(request);
      const given = typeof body[CSRF_FIELD] === 'string' ? (body[CSRF_FIELD] as string) : (request.headers['x-csrf-token'] as string | undefined);
      // Signed in: the session's synchronizer token. Before sign-in (public forms): the token bound
      // to the pre-session cookie.
      const pre = request.cookies[PRE_SESSION_COOKIE];
      const ok =
        (request.cabinet !== undefined && tokensEqual(given, request.cabinet.csrf)) ||
        (access === 'public' && pre !== undefined && tokensEqual(given, preSessionCsrf(options.csrfKey, pre)));
      if (!ok) throw new AppError(403, 'csrf_failed', 'The form token is missing or wrong');
    }
  });

  // ---- headers -------------------------------------------------------------------------------
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-robots-tag', 'noindex, nofollow');
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CSP);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    reply.header('vary', 'Cookie, Accept-Language');
    return payload;
  });

  // ---- errors as pages -------------------------------------------------------------------------
  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    const t = CABINET_MESSAGES[lang(request)].errors;
    const status = error instanceof AppError ? error.status : (error.statusCode ?? 500);
    const code = error instanceof AppError ? error.code : (error as FastifyError).code;
    const show = (status: number, title: string, text: string, link?: { href: string; label: string }) =>
      page(request, reply, {
        status,
        title,
        body: html`<div class="panel narrow"><h1>${title}</h1><p>${text}</p>${link ? html`<p><a href="${link.href}">${link.label}</a></p>` : ''}</div>`,
      });
    if (status === 401) return show(401, t.signedOutTitle, t.signedOutText, { href: '/app/sign-in', label: t.signIn });
    if (code === 'csrf_failed') return show(403, t.csrfTitle, t.csrfText, { href: '/app', label: t.backHome });
    if (status === 403) return show(403, t.forbiddenTitle, t.forbiddenText, { href: '/app', label: t.backHome });
    if (status === 404) return show(404, t.notFoundTitle, t.notFoundText, { href: '/app', label: t.backHome });
    if (status === 429) {
      if (!reply.hasHeader('retry-after')) reply.header('retry-after', '60');
      return show(429, t.tooManyTitle, t.tooManyText);
    }
    if (status >= 400 && status < 500) return show(status, t.serverTitle, error.message, { href: '/app', label: t.backHome });
    request.log.error({ err: error }, 'cabinet error');
    return show(500, t.serverTitle, t.serverText, { href: '/app', label: t.backHome });
  });
  // Unknown paths under /app get the cabinet's page (the rest of the service answers problem JSON).
  await app.register(
    async (scoped) => {
      scoped.setNotFoundHandler((request, reply) => {
        const t = CABINET_MESSAGES[lang(request)].errors;
        return page(request, reply, {
          status: 404,
          title: t.notFoundTitle,
          body: html`<div class="panel narrow"><h1>${t.notFoundTitle}</h1><p>${t.notFoundText}</p><p><a href="/app">${t.backHome}</a></p></div>`,
        });
      });
    },
    { prefix: '/app' },
  );

  // ---- the script -----------------------------------------------------------------------------
  app.get('/app/assets/cabinet.js', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(SCRIPT),
  );

  for (const screen of SCREENS) await app.register(screen.routes, { kit });
};
