import type { FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../http/html.js';
import { checkPassword, endStaffSessions, isEmail, normalizeEmail, passwordProblem, PASSWORD_MIN_LENGTH, setPassword } from '../auth.js';
import { CABINET_MESSAGES, texts } from '../i18n.js';
import { formBody, type Screen } from '../kit.js';
import { csrfInput, errorSummary, field, formText, notice, type FieldErrors } from '../layout.js';

/**
 * «Профиль»: the signed-in staff member's own email and password. Someone signed in with a one-time
 * link (a new staff member, the first owner, a forgotten password) sets a password without the
 * current one; otherwise the current password is asked for. Changing it signs out other sessions.
 */
const T = texts({
  ru: {
    title: 'Профиль',
    welcome: 'Вы вошли по ссылке. Задайте e-mail и пароль, чтобы входить без ссылки.',
    name: 'Имя',
    role: 'Роль',
    email: 'E-mail для входа',
    current: 'Текущий пароль',
    password: 'Новый пароль',
    passwordHint: `Не короче ${PASSWORD_MIN_LENGTH} символов. Хорошо подходит фраза из нескольких слов.`,
    repeat: 'Новый пароль ещё раз',
    save: 'Сохранить',
    saved: 'Сохранено. Другие сеансы этого пользователя завершены.',
    errors: {
      email: 'Укажите e-mail, например name@example.com.',
      emailTaken: 'Этот e-mail уже используется другим сотрудником.',
      current: 'Текущий пароль неверный.',
      too_short: `Пароль слишком короткий: нужно не меньше ${PASSWORD_MIN_LENGTH} символов.`,
      too_long: 'Пароль слишком длинный.',
      same_as_email: 'Пароль не должен совпадать с e-mail.',
      repeat: 'Пароли не совпадают.',
    },
  },
  en: {
    title: 'Profile',
    welcome: 'You signed in with a link. Set an email and a password to sign in without one.',
    name: 'Name',
    role: 'Role',
    email: 'Sign-in email',
    current: 'Current password',
    password: 'New password',
    passwordHint: `At least ${PASSWORD_MIN_LENGTH} characters. A phrase of a few words works well.`,
    repeat: 'New password again',
    save: 'Save',
    saved: 'Saved. Other sessions of this user were signed out.',
    errors: {
      email: 'Enter an email, e.g. name@example.com.',
      emailTaken: 'Another staff member already uses this email.',
      current: 'The current password is wrong.',
      too_short: `The password is too short: at least ${PASSWORD_MIN_LENGTH} characters.`,
      too_long: 'The password is too long.',
      same_as_email: 'The password must not be the email.',
      repeat: 'The passwords do not match.',
    },
  },
});

export const accountScreen: Screen = {
  nav: { path: '/app/account', label: { ru: 'Профиль', en: 'Profile' }, access: 'signed-in', group: 'program' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;

    function render(request: FastifyRequest, reply: FastifyReply, state: { status?: number; email?: string; errors?: FieldErrors; info?: string; welcome?: boolean }) {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const errors = state.errors ?? {};
      const needCurrent = session.hasPassword && session.method !== 'link';
      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        path: '/app/account',
        body: html`<h1>${t.title}</h1>
${state.welcome ? notice(t.welcome) : ''}
${state.info ? notice(state.info) : ''}
<div class="panel">
<dl class="figures"><div><dt>${t.name}</dt><dd>${session.staffName}</dd></div><div><dt>${t.role}</dt><dd>${CABINET_MESSAGES[l].roles[session.role]}</dd></div></dl>
</div>
<form method="post" action="/app/account" class="panel" novalidate>
${errorSummary(l, errors)}
${csrfInput(session.csrf)}
${field({ name: 'email', label: t.email, type: 'email', value: state.email ?? session.email ?? '', errors, attrs: html` autocomplete="username" maxlength="254" required` })}
${needCurrent ? field({ name: 'current', label: t.current, type: 'password', errors, attrs: html` autocomplete="current-password" maxlength="256"` }) : ''}
${field({ name: 'password', label: t.password, type: 'password', hint: t.passwordHint, errors, attrs: html` autocomplete="new-password" maxlength="256" minlength="${PASSWORD_MIN_LENGTH}"` })}
${field({ name: 'repeat', label: t.repeat, type: 'password', errors, attrs: html` autocomplete="new-password" maxlength="256"` })}
<button class="button" type="submit">${t.save}</button>
</form>`,
      });
    }

    app.get('/app/account', { config: { access: 'signed-in' } }, async (request, reply) =>
      render(request, reply, { welcome: Boolean((request.query as Record<string, unknown>).welcome), info: (request.query as Record<string, unknown>).saved ? T[kit.lang(request)].saved : undefined }),
    );

    app.post('/app/account', { config: { access: 'signed-in' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const body = formBody(request);
      const email = normalizeEmail(formText(body, 'email', 254));
      const password = typeof body.password === 'string' ? body.password : '';
      const repeat = typeof body.repeat === 'string' ? body.repeat : '';
      const current = typeof body.current === 'string' ? body.current : '';
      const errors: FieldErrors = {};
      if (!isEmail(email)) errors.email = t.errors.email;
      else {
        // Unique within the program only: no answer here says whether another program has this e-mail.
        const taken = await db
          .selectFrom('staff_member')
          .select('id')
          .where('program_id', '=', session.programId)
          .where('email', '=', email)
          .where('deleted_at', 'is', null)
          .where('id', '<>', session.staffId)
          .executeTakeFirst();
        if (taken) errors.email = t.errors.emailTaken;
      }
      if (session.hasPassword && session.method !== 'link') {
        const row = await db.selectFrom('staff_member').select('password_hash').where('id', '=', session.staffId).executeTakeFirstOrThrow();
        if (!(await checkPassword(row.password_hash, current))) errors.current = t.errors.current;
      }
      if (password || !session.hasPassword) {
        const problem = passwordProblem(password, email);
        if (problem) errors.password = t.errors[problem];
        else if (password !== repeat) errors.repeat = t.errors.repeat;
      }
      if (Object.keys(errors).length > 0) return render(request, reply, { status: 422, email, errors });
      await db.updateTable('staff_member').set({ email }).where('id', '=', session.staffId).execute();
      if (password) {
        await setPassword(db, session.staffId, password, kit.ctx.clock());
        await endStaffSessions(db, session.staffId, session.tokenHash);
      }
      return kit.redirect(reply, '/app/account?saved=1');
    });
  },
};
