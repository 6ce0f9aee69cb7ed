import type { FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../http/html.js';
import {
  checkPassword,
  consumeSignInLink,
  failureLimitReached,
  linkIpSubject,
  normalizeEmail,
  peekSignInLink,
  recordFailure,
  recordSignInFailure,
  recordSignInSuccess,
  signInCandidates,
  signInWait,
  type StaffRole,
} from '../auth.js';
import { CABINET_MESSAGES, texts } from '../i18n.js';
import { safeNext, type Screen } from '../kit.js';
import { CSRF_FIELD, field, formText, notice } from '../layout.js';
import { passwordResetRoutes } from './password-reset.js';

/**
 * Sign-in: email + password, or a one-time link an owner created (`/app/sign-in/link/{token}`: the
 * GET shows whom it signs in and a button; only the POST uses it up, so link previews in messengers
 * and mail scanners cannot spend it). Sign-out. Failed attempts are limited per IP and per account.
 * Password reset by email (when SMTP_URL is set) lives in password-reset.ts, registered from here.
 */
const T = texts({
  ru: {
    title: 'Вход в кабинет',
    email: 'E-mail',
    password: 'Пароль',
    submit: 'Войти',
    invalid: 'Неверный e-mail или пароль.',
    limited: (wait: string) => `Слишком много неудачных попыток входа. Повторите через ${wait} или войдите по ссылке от владельца программы.`,
    seconds: (n: number) => (n < 60 ? `${n} с` : `${Math.ceil(n / 60)} мин`),
    noPassword: 'Нет пароля? Попросите владельца программы создать для вас ссылку для входа.',
    signedOut: 'Вы вышли из кабинета.',
    linkTitle: 'Вход по ссылке',
    linkText: (name: string, role: string, program: string) => `Войти в кабинет программы «${program}» как ${name} (${role})?`,
    linkSubmit: 'Войти',
    linkInvalidTitle: 'Ссылка недействительна',
    linkInvalidText: 'Ссылка уже использована или её срок истёк. Попросите владельца программы создать новую.',
    toPassword: 'Войти по паролю',
    forgot: 'Забыли пароль?',
    passwordReset: 'Пароль изменён, все прежние сеансы завершены. Войдите с новым паролем.',
  },
  en: {
    title: 'Sign in to the cabinet',
    email: 'Email',
    password: 'Password',
    submit: 'Sign in',
    invalid: 'Wrong email or password.',
    limited: (wait) => `Too many failed sign-in attempts. Try again in ${wait}, or sign in with a link from the programme owner.`,
    seconds: (n) => (n < 60 ? `${n} s` : `${Math.ceil(n / 60)} min`),
    noPassword: 'No password? Ask the programme owner to create a sign-in link for you.',
    signedOut: 'You have signed out.',
    linkTitle: 'Sign in with a link',
    linkText: (name, role, program) => `Sign in to the ${program} cabinet as ${name} (${role})?`,
    linkSubmit: 'Sign in',
    linkInvalidTitle: 'This link is not valid',
    linkInvalidText: 'The link was already used or has expired. Ask the programme owner for a new one.',
    toPassword: 'Sign in with a password',
    forgot: 'Forgot your password?',
    passwordReset: 'Your password was changed and every earlier session ended. Sign in with the new password.',
  },
});

export const signInScreen: Screen = {
  routes: async (app, { kit }) => {
    const { ctx, settings } = kit;

    function form(request: FastifyRequest, reply: FastifyReply, state: { status?: number; email?: string; error?: string; next?: string; info?: string }) {
      const l = kit.lang(request);
      const t = T[l];
      const errors: Record<string, string> = state.error ? { password: state.error } : {};
      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        path: '/app/sign-in',
        body: html`<div class="panel narrow">
<h1>${t.title}</h1>
${state.info ? notice(state.info) : ''}
${state.error ? html`<div class="summary" role="alert"><p>${state.error}</p></div>` : ''}
<form method="post" action="/app/sign-in">
<input type="hidden" name="${CSRF_FIELD}" value="${kit.formToken(request, reply)}">
${state.next ? html`<input type="hidden" name="next" value="${state.next}">` : ''}
${field({ name: 'email', label: t.email, type: 'email', value: state.email, attrs: html` autocomplete="username" required maxlength="254"${state.email ? '' : html` autofocus`}` })}
${field({ name: 'password', label: t.password, type: 'password', errors, attrs: html` autocomplete="current-password" required maxlength="256"${state.email ? html` autofocus` : ''}` })}
<div class="actions"><button class="button large" type="submit">${t.submit}</button></div>
</form>
${kit.passwordReset?.enabled ? html`<p><a href="/app/reset">${t.forgot}</a></p>` : ''}
<p class="muted small">${t.noPassword}</p>
</div>`,
      });
    }

    app.get('/app/sign-in', { config: { access: 'public' } }, async (request, reply) => {
      const query = request.query as Record<string, string | undefined>;
      const next = safeNext(query.next);
      if (request.cabinet) return kit.redirect(reply, next ?? '/app');
      const t = T[kit.lang(request)];
      return form(request, reply, { next, info: query['signed-out'] ? t.signedOut : query.reset ? t.passwordReset : undefined });
    });

    app.post(
      '/app/sign-in',
      { config: { access: 'public', rateLimit: { max: settings.postsPerMinute, timeWindow: 60_000 } } },
      async (request, reply) => {
        const t = T[kit.lang(request)];
        const body = request.body as Record<string, unknown>;
        const email = normalizeEmail(formText(body, 'email', 254));
        const password = typeof body.password === 'string' ? body.password.slice(0, 256) : '';
        const next = safeNext(formText(body, 'next', 500));
        const now = ctx.clock();
        const who = { ip: request.ip, email };
        // Backoff per address and account, never a lockout of the account from everywhere (auth.ts, signInWait).
        const wait = await signInWait(ctx.db, who, now, settings);
        if (wait > 0) {
          const seconds = Math.ceil(wait / 1000);
          reply.header('retry-after', String(seconds));
          return form(request, reply, { status: 429, email, next, error: t.limited(t.seconds(seconds)) });
        }
        // An e-mail is unique per program: every active staff member with it is a candidate. Their
        // hashes are checked together (argon2 runs on the thread pool), so the answer takes about as
        // long for one candidate as for several; without any, a dummy hash is checked.
        const candidates = email ? await signInCandidates(ctx.db, email) : [];
        const results = candidates.length > 0 ? await Promise.all(candidates.map((c) => checkPassword(c.password_hash, password))) : [await checkPassword(undefined, password)];
        const staff = password.length > 0 ? candidates.find((_c, i) => results[i]) : undefined;
        if (!staff) {
          await recordSignInFailure(ctx.db, who, now, settings);
          return form(request, reply, { status: 401, email, next, error: t.invalid });
        }
        await recordSignInSuccess(ctx.db, who, now, settings);
        await kit.startSession(request, reply, { staffId: staff.id, programId: staff.program_id }, 'password');
        return kit.redirect(reply, next ?? '/app');
      },
    );

    function invalidLink(request: FastifyRequest, reply: FastifyReply, status = 410) {
      const t = T[kit.lang(request)];
      return kit.page(request, reply, {
        status,
        title: t.linkInvalidTitle,
        path: '/app/sign-in',
        body: html`<div class="panel narrow"><h1>${t.linkInvalidTitle}</h1><p>${t.linkInvalidText}</p><p><a href="/app/sign-in">${t.toPassword}</a></p></div>`,
      });
    }

    app.get<{ Params: { token: string } }>('/app/sign-in/link/:token', { config: { access: 'public' } }, async (request, reply) => {
      const l = kit.lang(request);
      const t = T[l];
      const link = await peekSignInLink(ctx.db, request.params.token, ctx.clock());
      if (!link) return invalidLink(request, reply);
      return kit.page(request, reply, {
        title: t.linkTitle,
        body: html`<div class="panel narrow">
<h1>${t.linkTitle}</h1>
<p>${t.linkText(link.staff_name, CABINET_MESSAGES[l].roles[link.role as StaffRole], link.program_name)}</p>
<form method="post" action="/app/sign-in/link/${request.params.token}">
<input type="hidden" name="${CSRF_FIELD}" value="${kit.formToken(request, reply)}">
<div class="actions"><button class="button large" type="submit" autofocus>${t.linkSubmit}</button></div>
</form>
</div>`,
      });
    });

    app.post<{ Params: { token: string } }>(
      '/app/sign-in/link/:token',
      { config: { access: 'public', rateLimit: { max: settings.postsPerMinute, timeWindow: 60_000 } } },
      async (request, reply) => {
        const now = ctx.clock();
        // Wrong link tokens are counted on their own: failed passwords never stop a valid link.
        const ipLimit = [{ subject: linkIpSubject(request.ip), max: settings.maxFailuresPerIp }];
        if (await failureLimitReached(ctx.db, ipLimit, now, settings)) {
          reply.header('retry-after', String(Math.ceil(settings.failureWindowMs / 1000)));
          return invalidLink(request, reply, 429);
        }
        const used = await consumeSignInLink(ctx.db, request.params.token, now);
        if (!used) {
          await recordFailure(ctx.db, [linkIpSubject(request.ip)], now, settings);
          return invalidLink(request, reply);
        }
        await kit.startSession(request, reply, used, 'link');
        const staff = await ctx.db.selectFrom('staff_member').select(['password_hash', 'email']).where('id', '=', used.staffId).executeTakeFirstOrThrow();
        // A link an owner made proves who this is: the address becomes the account's own.
        await recordSignInSuccess(ctx.db, { ip: request.ip, email: staff.email }, now, settings);
        // No password yet (the first owner, a new cashier): the profile page offers to set one.
        return kit.redirect(reply, staff.password_hash ? '/app' : '/app/account?welcome=1');
      },
    );

    // «Забыли пароль?»: /app/reset and /app/reset/{token} (off without SMTP_URL).
    await app.register(passwordResetRoutes, { kit });

    app.post('/app/sign-out', { config: { access: 'signed-in' } }, async (request, reply) => {
      await kit.endSession(request, reply);
      return kit.redirect(reply, '/app/sign-in?signed-out=1');
    });
  },
};
