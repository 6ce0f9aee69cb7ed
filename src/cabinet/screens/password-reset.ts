import type { FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../http/html.js';
import {
  failureLimitReached,
  ipSubject,
  isEmail,
  normalizeEmail,
  passwordProblem,
  PASSWORD_MIN_LENGTH,
  recordFailure,
  resetAccountSubject,
  resetIpSubject,
} from '../auth.js';
import { texts } from '../i18n.js';
import { formBody, type ScreenPlugin } from '../kit.js';
import { minutesText } from '../password-reset.js';
import { CSRF_FIELD, errorSummary, field, formText, notice, type FieldErrors } from '../layout.js';

/**
 * Password reset by email (registered by the sign-in screen; see cabinet/password-reset.ts for the
 * tokens and the mail).
 *
 * - `/app/reset`: the form asks for the email; the answer is the same whether or not the email
 *   belongs to a staff member, and no more mails go out than the limits allow (per IP and per
 *   email, every request counted, known email or not).
 * - `/app/reset/{token}`: the GET shows the form for the new password (using nothing, so link
 *   previews cannot spend it); the POST sets it, once.
 *
 * Without SMTP_URL every one of these answers 404 with a page that says so: owners issue sign-in
 * links instead.
 */
const T = texts({
  ru: {
    title: 'Сброс пароля',
    lead: 'Укажите e-mail, с которым вы входите в кабинет. Мы пришлём на него ссылку для нового пароля.',
    email: 'E-mail',
    submit: 'Прислать ссылку',
    emailInvalid: 'Укажите e-mail, например name@example.com.',
    sent: (minutes: string) =>
      `Если этот адрес принадлежит сотруднику, мы отправили на него письмо со ссылкой для нового пароля. Ссылка действует ${minutes}. Письма нет? Проверьте папку «Спам» или попросите владельца программы создать для вас ссылку для входа.`,
    limited: 'Слишком много запросов на сброс пароля. Подождите 15 минут или попросите владельца программы создать для вас ссылку для входа.',
    toSignIn: 'Вернуться ко входу',
    offTitle: 'Сброс пароля по почте не настроен',
    offText: 'Этот сервер не отправляет письма. Попросите владельца программы создать для вас ссылку для входа (раздел «Сотрудники»), а затем задайте новый пароль в «Профиле».',
    newTitle: 'Новый пароль',
    newLead: (email: string, program: string) => `Новый пароль для ${email} (программа «${program}»). После сохранения все открытые сеансы этого пользователя завершатся.`,
    password: 'Новый пароль',
    passwordHint: `Не короче ${PASSWORD_MIN_LENGTH} символов. Хорошо подходит фраза из нескольких слов.`,
    repeat: 'Новый пароль ещё раз',
    save: 'Сохранить пароль',
    invalidTitle: 'Ссылка недействительна',
    invalidText: 'Ссылка для сброса пароля уже использована, заменена новой или её срок истёк.',
    again: 'Запросить новую ссылку',
    errors: {
      too_short: `Пароль слишком короткий: нужно не меньше ${PASSWORD_MIN_LENGTH} символов.`,
      too_long: 'Пароль слишком длинный.',
      same_as_email: 'Пароль не должен совпадать с e-mail.',
      repeat: 'Пароли не совпадают.',
    },
  },
  en: {
    title: 'Reset your password',
    lead: 'Enter the email you sign in to the cabinet with. We will send a link to set a new password to it.',
    email: 'Email',
    submit: 'Send the link',
    emailInvalid: 'Enter an email, e.g. name@example.com.',
    sent: (minutes) =>
      `If this address belongs to a staff member, we sent it an email with a link to set a new password. The link works for ${minutes}. No email? Check the spam folder, or ask the programme owner for a sign-in link.`,
    limited: 'Too many password reset requests. Wait 15 minutes, or ask the programme owner for a sign-in link.',
    toSignIn: 'Back to sign-in',
    offTitle: 'Password reset by email is not set up',
    offText: 'This server does not send email. Ask the programme owner to create a sign-in link for you (Staff), then set a new password in Profile.',
    newTitle: 'New password',
    newLead: (email, program) => `A new password for ${email} (programme ${program}). Saving it signs this user out of every open session.`,
    password: 'New password',
    passwordHint: `At least ${PASSWORD_MIN_LENGTH} characters. A phrase of a few words works well.`,
    repeat: 'New password again',
    save: 'Save the password',
    invalidTitle: 'This link is not valid',
    invalidText: 'The password reset link was already used, replaced by a newer one, or has expired.',
    again: 'Ask for a new link',
    errors: {
      too_short: `The password is too short: at least ${PASSWORD_MIN_LENGTH} characters.`,
      too_long: 'The password is too long.',
      same_as_email: 'The password must not be the email.',
      repeat: 'The passwords do not match.',
    },
  },
});

export const passwordResetRoutes: ScreenPlugin = async (app, { kit }) => {
  const { ctx, settings } = kit;
  const service = kit.passwordReset;
  const enabled = service?.enabled === true;
  const retryAfter = String(Math.ceil(settings.failureWindowMs / 1000));
  const ttlMinutes = Math.max(1, Math.round(settings.resetTtlMs / 60_000));

  function notAvailable(request: FastifyRequest, reply: FastifyReply) {
    const t = T[kit.lang(request)];
    return kit.page(request, reply, {
      status: 404,
      title: t.offTitle,
      path: '/app/sign-in',
      body: html`<div class="panel narrow"><h1>${t.offTitle}</h1><p>${t.offText}</p><p><a href="/app/sign-in">${t.toSignIn}</a></p></div>`,
    });
  }

  function requestForm(request: FastifyRequest, reply: FastifyReply, state: { status?: number; email?: string; errors?: FieldErrors; formError?: string; sent?: boolean }) {
    const l = kit.lang(request);
    const t = T[l];
    const errors = state.errors ?? {};
    return kit.page(request, reply, {
      status: state.status,
      title: t.title,
      path: '/app/reset',
      body: html`<div class="panel narrow">
<h1>${t.title}</h1>
${state.sent
  ? notice(t.sent(minutesText(l, ttlMinutes)))
  : html`${errorSummary(l, errors, state.formError)}
<p>${t.lead}</p>
<form method="post" action="/app/reset" novalidate>
<input type="hidden" name="${CSRF_FIELD}" value="${kit.formToken(request, reply)}">
${field({ name: 'email', label: t.email, type: 'email', value: state.email, errors, attrs: html` autocomplete="username" required maxlength="254" autofocus` })}
<div class="actions"><button class="button large" type="submit">${t.submit}</button></div>
</form>`}
<p><a href="/app/sign-in">${t.toSignIn}</a></p>
</div>`,
    });
  }

  function invalidLink(request: FastifyRequest, reply: FastifyReply, status = 410) {
    const t = T[kit.lang(request)];
    return kit.page(request, reply, {
      status,
      title: t.invalidTitle,
      path: '/app/reset',
      body: html`<div class="panel narrow"><h1>${t.invalidTitle}</h1><p>${t.invalidText}</p><p><a href="/app/reset">${t.again}</a></p><p><a href="/app/sign-in">${t.toSignIn}</a></p></div>`,
    });
  }

  app.get('/app/reset', { config: { access: 'public' } }, async (request, reply) => {
    if (!enabled) return notAvailable(request, reply);
    return requestForm(request, reply, { sent: Boolean((request.query as Record<string, unknown>).sent) });
  });

  app.post('/app/reset', { config: { access: 'public', rateLimit: { max: settings.postsPerMinute, timeWindow: 60_000 } } }, async (request, reply) => {
    if (!enabled || !service) return notAvailable(request, reply);
    const t = T[kit.lang(request)];
    const email = normalizeEmail(formText(request.body, 'email', 254));
    if (!isEmail(email)) return requestForm(request, reply, { status: 422, email, errors: { email: t.emailInvalid } });
    const now = ctx.clock();
    // Every request counts, known email or not: the limits cap the mails anyone can cause.
    const subjects = [
      { subject: resetIpSubject(request.ip), max: settings.maxResetsPerIp },
      { subject: resetAccountSubject(email), max: settings.maxResetsPerAccount },
    ];
    if (await failureLimitReached(ctx.db, subjects, now, settings)) {
      reply.header('retry-after', retryAfter);
      return requestForm(request, reply, { status: 429, email, formError: t.limited });
    }
    await recordFailure(ctx.db, subjects.map((s) => s.subject), now, settings);
    await service.request(email, { now, ttlMs: settings.resetTtlMs });
    // The same answer for every email (Post/Redirect/Get).
    return kit.redirect(reply, '/app/reset?sent=1');
  });

  function newPasswordForm(
    request: FastifyRequest,
    reply: FastifyReply,
    token: string,
    target: { email: string; programName: string },
    state: { status?: number; errors?: FieldErrors } = {},
  ) {
    const l = kit.lang(request);
    const t = T[l];
    const errors = state.errors ?? {};
    return kit.page(request, reply, {
      status: state.status,
      title: t.newTitle,
      path: '/app/reset',
      body: html`<div class="panel narrow">
<h1>${t.newTitle}</h1>
${errorSummary(l, errors)}
<p>${t.newLead(target.email, target.programName)}</p>
<form method="post" action="/app/reset/${token}" novalidate>
<input type="hidden" name="${CSRF_FIELD}" value="${kit.formToken(request, reply)}">
<input type="email" name="username" value="${target.email}" autocomplete="username" readonly hidden>
${field({ name: 'password', label: t.password, type: 'password', hint: t.passwordHint, errors, attrs: html` autocomplete="new-password" required maxlength="256" minlength="${PASSWORD_MIN_LENGTH}" autofocus` })}
${field({ name: 'repeat', label: t.repeat, type: 'password', errors, attrs: html` autocomplete="new-password" required maxlength="256"` })}
<div class="actions"><button class="button large" type="submit">${t.save}</button></div>
</form>
</div>`,
    });
  }

  app.get<{ Params: { token: string } }>('/app/reset/:token', { config: { access: 'public' } }, async (request, reply) => {
    if (!enabled || !service) return notAvailable(request, reply);
    const target = await service.peek(request.params.token, ctx.clock());
    if (!target) return invalidLink(request, reply);
    return newPasswordForm(request, reply, request.params.token, target);
  });

  app.post<{ Params: { token: string } }>(
    '/app/reset/:token',
    { config: { access: 'public', rateLimit: { max: settings.postsPerMinute, timeWindow: 60_000 } } },
    async (request, reply) => {
      if (!enabled || !service) return notAvailable(request, reply);
      const t = T[kit.lang(request)];
      const now = ctx.clock();
      // Guessing tokens counts as failed sign-ins of the IP (as with sign-in links).
      if (await failureLimitReached(ctx.db, [{ subject: ipSubject(request.ip), max: settings.maxFailuresPerIp }], now, settings)) {
        reply.header('retry-after', retryAfter);
        return invalidLink(request, reply, 429);
      }
      const token = request.params.token;
      const target = await service.peek(token, now);
      if (!target) {
        await recordFailure(ctx.db, [ipSubject(request.ip)], now, settings);
        return invalidLink(request, reply);
      }
      const body = formBody(request);
      const password = typeof body.password === 'string' ? body.password : '';
      const repeat = typeof body.repeat === 'string' ? body.repeat : '';
      const errors: FieldErrors = {};
      const problem = passwordProblem(password, target.email);
      if (problem) errors.password = t.errors[problem];
      else if (password !== repeat) errors.repeat = t.errors.repeat;
      if (Object.keys(errors).length > 0) return newPasswordForm(request, reply, token, target, { status: 422, errors });
      const done = await service.complete(token, password, now);
      if (!done) return invalidLink(request, reply);
      // Every session of this member ended; if this browser had one of them, drop its cookie too.
      if (request.cabinet?.staffId === done.staffId) await kit.endSession(request, reply);
      return kit.redirect(reply, '/app/sign-in?reset=1');
    },
  );
};
