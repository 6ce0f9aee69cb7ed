import type { FastifyReply, FastifyRequest } from 'fastify';
import { qrSvgInline } from '../../enrollment/qr.js';
import { findActiveStaff } from '../../enrollment/staff-routes.js';
import { html, raw, type SafeHtml } from '../../http/html.js';
import {
  createSignInLink,
  endStaffSessions,
  isEmail,
  normalizeEmail,
  passwordProblem,
  PASSWORD_MIN_LENGTH,
  setPassword,
  STAFF_ROLES,
  type StaffRole,
} from '../auth.js';
import { CABINET_MESSAGES, formatDateTime, texts, type Lang } from '../i18n.js';
import { formBody, notFoundError, uuidParam, type Screen } from '../kit.js';
import { csrfInput, errorSummary, field, formText, notice, select, type FieldErrors } from '../layout.js';

/**
 * «Сотрудники» (owner): create staff members, change their role and email, set a password, create
 * a one-time sign-in link (shown once), remove. A role or password change and a removal end the
 * person's sessions (a role change also applies at their next request anyway). Owners cannot
 * demote or remove themselves, so a program never loses its last way in by accident.
 */
const T = texts({
  ru: {
    title: 'Сотрудники',
    lead: 'Роль определяет, что видит сотрудник: кассир — кассу, маркетолог — рассылки и статистику, владелец — всё.',
    name: 'Имя',
    role: 'Роль',
    email: 'E-mail для входа',
    password: 'Пароль',
    passwordHint: `Не короче ${PASSWORD_MIN_LENGTH} символов. Можно не задавать и войти по ссылке.`,
    lastSignIn: 'Последний вход',
    never: 'не входил',
    hasPassword: 'пароль задан',
    noPassword: 'без пароля',
    add: 'Добавить сотрудника',
    create: 'Добавить',
    edit: (name: string) => `Изменить: ${name}`,
    save: 'Сохранить',
    setPassword: 'Задать пароль',
    newPassword: 'Новый пароль',
    link: 'Создать ссылку для входа',
    linkHint: 'Одноразовая ссылка, действует 24 часа. Отправьте её сотруднику лично.',
    linkCreated: (name: string, until: string) => `Ссылка для входа сотрудника ${name} (одноразовая, действует до ${until}). Она показана только сейчас:`,
    linkQr: 'QR-код ссылки для входа',
    remove: 'Удалить',
    removeConfirm: (name: string) => `Удалить сотрудника ${name}? Его карты и статистика сохранятся.`,
    created: 'Сотрудник добавлен.',
    saved: 'Сохранено.',
    passwordSet: 'Пароль задан. Сеансы сотрудника завершены.',
    removed: 'Сотрудник удалён.',
    you: '(вы)',
    errors: {
      name: 'Укажите имя.',
      email: 'Укажите e-mail, например name@example.com.',
      emailTaken: 'Этот e-mail уже используется другим сотрудником.',
      too_short: `Пароль слишком короткий: нужно не меньше ${PASSWORD_MIN_LENGTH} символов.`,
      too_long: 'Пароль слишком длинный.',
      same_as_email: 'Пароль не должен совпадать с e-mail.',
      self: 'Свою роль изменить и себя удалить нельзя: попросите другого владельца.',
    },
  },
  en: {
    title: 'Staff',
    lead: 'The role decides what a staff member sees: a cashier the till, a marketer campaigns and statistics, an owner everything.',
    name: 'Name',
    role: 'Role',
    email: 'Sign-in email',
    password: 'Password',
    passwordHint: `At least ${PASSWORD_MIN_LENGTH} characters. Optional: they can sign in with a link.`,
    lastSignIn: 'Last sign-in',
    never: 'never',
    hasPassword: 'has a password',
    noPassword: 'no password',
    add: 'Add a staff member',
    create: 'Add',
    edit: (name) => `Edit: ${name}`,
    save: 'Save',
    setPassword: 'Set password',
    newPassword: 'New password',
    link: 'Create a sign-in link',
    linkHint: 'A one-time link, valid for 24 hours. Send it to the person directly.',
    linkCreated: (name, until) => `Sign-in link for ${name} (one-time, valid until ${until}). It is shown only now:`,
    linkQr: 'QR code of the sign-in link',
    remove: 'Remove',
    removeConfirm: (name) => `Remove ${name}? Their cards and statistics stay.`,
    created: 'Staff member added.',
    saved: 'Saved.',
    passwordSet: 'Password set. Their sessions were ended.',
    removed: 'Staff member removed.',
    you: '(you)',
    errors: {
      name: 'Enter a name.',
      email: 'Enter an email, e.g. name@example.com.',
      emailTaken: 'Another staff member already uses this email.',
      too_short: `The password is too short: at least ${PASSWORD_MIN_LENGTH} characters.`,
      too_long: 'The password is too long.',
      same_as_email: 'The password must not be the email.',
      self: 'You cannot change your own role or remove yourself: ask another owner.',
    },
  },
});

const isRole = (value: string): value is StaffRole => (STAFF_ROLES as readonly string[]).includes(value);

export const staffScreen: Screen = {
  nav: { path: '/app/staff', label: { ru: 'Сотрудники', en: 'Staff' }, access: 'owner', group: 'program' },
  routes: async (app, { kit }) => {
    const { ctx } = kit;
    const { db } = ctx;

    interface State {
      status?: number;
      info?: string | SafeHtml;
      /** Which form the errors belong to: 'new' or a staff id. */
      target?: string;
      values?: Record<string, string>;
      errors?: FieldErrors;
      formError?: string;
    }

    // Unique within the program only: other programs' staff are none of this owner's business (issue #11).
    async function emailTaken(programId: string, email: string, exceptId?: string) {
      let query = db.selectFrom('staff_member').select('id').where('program_id', '=', programId).where('email', '=', email).where('deleted_at', 'is', null);
      if (exceptId) query = query.where('id', '<>', exceptId);
      return Boolean(await query.executeTakeFirst());
    }

    async function render(request: FastifyRequest, reply: FastifyReply, state: State) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const roleNames = CABINET_MESSAGES[l].roles;
      const roleOptions = STAFF_ROLES.map((r) => ({ value: r, label: roleNames[r] }));
      const rows = await db
        .selectFrom('staff_member')
        .select(['id', 'name', 'role', 'email', 'password_hash', 'last_sign_in_at'])
        .where('program_id', '=', session.programId)
        .where('deleted_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      const errorsOf = (target: string) => (state.target === target ? (state.errors ?? {}) : {});
      const valuesOf = (target: string, fallback: Record<string, string>) => (state.target === target && state.values ? state.values : fallback);

      const list = rows.map((row) => {
        const self = row.id === session.staffId;
        const errors = errorsOf(row.id);
        const v = valuesOf(row.id, { name: row.name, role: row.role, email: row.email ?? '' });
        const id = (name: string) => `s-${row.id}-${name}`;
        return html`<tr id="staff-${row.id}">
<td>${row.name} ${self ? html`<span class="muted">${t.you}</span>` : ''}</td>
<td>${roleNames[row.role]}</td>
<td>${row.email ?? '—'}</td>
<td>${row.password_hash ? html`<span class="badge ok">${t.hasPassword}</span>` : html`<span class="badge">${t.noPassword}</span>`}</td>
<td>${row.last_sign_in_at ? formatDateTime(l, session.timeZone, row.last_sign_in_at) : t.never}</td>
</tr>
<tr class="edit-row"><td colspan="5"><details${state.target === row.id ? html` open` : ''}><summary>${t.edit(row.name)}</summary>
${state.target === row.id ? errorSummary(l, errors, state.formError, id) : ''}
<div class="grid">
<form method="post" action="/app/staff/${row.id}" novalidate class="panel">
${csrfInput(session.csrf)}
${field({ name: 'name', id: id('name'), label: t.name, value: v.name, errors, attrs: html` maxlength="200" required` })}
${self ? '' : select({ name: 'role', id: id('role'), label: t.role, value: v.role, options: roleOptions })}
${field({ name: 'email', id: id('email'), label: t.email, type: 'email', value: v.email, errors, attrs: html` maxlength="254" autocomplete="off"` })}
<button class="button secondary" type="submit">${t.save}</button>
</form>
<div>
<form method="post" action="/app/staff/${row.id}/password" novalidate class="panel">
${csrfInput(session.csrf)}
${field({ name: 'password', id: id('password'), label: t.newPassword, type: 'password', hint: t.passwordHint, errors, attrs: html` maxlength="256" autocomplete="new-password"` })}
<button class="button secondary" type="submit">${t.setPassword}</button>
</form>
<form method="post" action="/app/staff/${row.id}/link" class="panel">
${csrfInput(session.csrf)}
<p class="hint">${t.linkHint}</p>
<button class="button secondary" type="submit">${t.link}</button>
</form>
</div>
${
  self
    ? ''
    : html`<form method="post" action="/app/staff/${row.id}/delete" data-confirm="${t.removeConfirm(row.name)}">
${csrfInput(session.csrf)}
<div class="actions"><button class="button danger" type="submit">${t.remove}<span class="visually-hidden"> ${row.name}</span></button></div>
</form>`
}
</div>
</details></td>
</tr>`;
      });

      const newErrors = errorsOf('new');
      const nv = valuesOf('new', { name: '', role: 'cashier', email: '' });
      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        path: '/app/staff',
        body: html`<h1>${t.title}</h1>
<p>${t.lead}</p>
${state.info ? (typeof state.info === 'string' ? notice(state.info) : state.info) : ''}
<section class="panel" aria-labelledby="list-title">
<h2 id="list-title" class="visually-hidden">${t.title}</h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.name}</th><th scope="col">${t.role}</th><th scope="col">${t.email}</th><th scope="col">${t.password}</th><th scope="col">${t.lastSignIn}</th></tr></thead>
<tbody>${list}</tbody>
</table></div>
</section>
<section class="panel" aria-labelledby="add-title">
<h2 id="add-title">${t.add}</h2>
${state.target === 'new' ? errorSummary(l, newErrors, state.formError) : ''}
<form method="post" action="/app/staff" novalidate>
${csrfInput(session.csrf)}
<div class="row">
${field({ name: 'name', label: t.name, value: nv.name, errors: newErrors, attrs: html` maxlength="200" required` })}
${select({ name: 'role', label: t.role, value: nv.role, options: roleOptions })}
</div>
<div class="row">
${field({ name: 'email', label: t.email, type: 'email', value: nv.email, errors: newErrors, attrs: html` maxlength="254" autocomplete="off"` })}
${field({ name: 'password', label: t.password, type: 'password', hint: t.passwordHint, errors: newErrors, attrs: html` maxlength="256" autocomplete="new-password"` })}
</div>
<button class="button" type="submit">${t.create}</button>
</form>
</section>`,
      });
    }

    app.get('/app/staff', { config: { access: 'owner' } }, async (request, reply) => {
      const q = request.query as Record<string, string>;
      const t = T[kit.lang(request)];
      const info = q.created ? t.created : q.saved ? t.saved : q.password ? t.passwordSet : q.removed ? t.removed : undefined;
      return render(request, reply, { info });
    });

    app.post('/app/staff', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const body = formBody(request);
      const values = { name: formText(body, 'name', 200), role: formText(body, 'role', 20), email: normalizeEmail(formText(body, 'email', 254)) };
      const password = typeof body.password === 'string' ? body.password : '';
      const errors: FieldErrors = {};
      if (!values.name) errors.name = t.errors.name;
      if (!isRole(values.role)) values.role = 'cashier';
      if (values.email && !isEmail(values.email)) errors.email = t.errors.email;
      else if (values.email && (await emailTaken(session.programId, values.email))) errors.email = t.errors.emailTaken;
      if (password) {
        const problem = passwordProblem(password, values.email || null);
        if (problem) errors.password = t.errors[problem];
      }
      if (Object.keys(errors).length > 0) return render(request, reply, { status: 422, target: 'new', values, errors });
      const row = await db
        .insertInto('staff_member')
        .values({ program_id: session.programId, name: values.name, role: values.role as StaffRole, email: values.email || null })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (password) await setPassword(db, row.id, password, ctx.clock());
      return kit.redirect(reply, '/app/staff?created=1');
    });

    async function target(request: FastifyRequest, id: string) {
      const session = kit.session(request);
      const staff = await findActiveStaff(db, session.programId, uuidParam(id));
      if (!staff) throw notFoundError();
      return staff;
    }

    app.post<{ Params: { id: string } }>('/app/staff/:id', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const staff = await target(request, request.params.id);
      const body = formBody(request);
      const self = staff.id === session.staffId;
      const values = { name: formText(body, 'name', 200), role: self ? staff.role : formText(body, 'role', 20), email: normalizeEmail(formText(body, 'email', 254)) };
      const errors: FieldErrors = {};
      if (!values.name) errors.name = t.errors.name;
      if (!isRole(values.role)) values.role = staff.role;
      if (values.email && !isEmail(values.email)) errors.email = t.errors.email;
      else if (values.email && (await emailTaken(session.programId, values.email, staff.id))) errors.email = t.errors.emailTaken;
      if (Object.keys(errors).length > 0) return render(request, reply, { status: 422, target: staff.id, values, errors });
      await db
        .updateTable('staff_member')
        .set({ name: values.name, role: values.role as StaffRole, email: values.email || null })
        .where('id', '=', staff.id)
        .execute();
      if (values.role !== staff.role) await endStaffSessions(db, staff.id);
      return kit.redirect(reply, `/app/staff?saved=1#staff-${staff.id}`);
    });

    app.post<{ Params: { id: string } }>('/app/staff/:id/password', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const staff = await target(request, request.params.id);
      const body = formBody(request);
      const password = typeof body.password === 'string' ? body.password : '';
      const problem = passwordProblem(password, staff.email);
      if (problem) return render(request, reply, { status: 422, target: staff.id, errors: { password: t.errors[problem] } });
      await setPassword(db, staff.id, password, ctx.clock());
      await endStaffSessions(db, staff.id, staff.id === session.staffId ? session.tokenHash : undefined);
      return kit.redirect(reply, `/app/staff?password=1#staff-${staff.id}`);
    });

    app.post<{ Params: { id: string } }>('/app/staff/:id/link', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const staff = await target(request, request.params.id);
      const link = await createSignInLink(db, {
        staffId: staff.id,
        programId: session.programId,
        createdBy: `staff:${session.staffId}`,
        ttlMs: kit.settings.linkTtlMs,
        now: ctx.clock(),
        publicUrl: ctx.links.publicUrl,
      });
      const qr = await qrSvgInline(link.url, t.linkQr);
      const info = html`<div class="notice" role="status" data-sign-in-link>
<p><label for="sign-in-link">${t.linkCreated(staff.name, formatDateTime(l, session.timeZone, link.expiresAt))}</label></p>
<input id="sign-in-link" type="url" readonly value="${link.url}" class="mono">
<div class="actions"><button type="button" class="button secondary" data-copy="sign-in-link" data-copied="${CABINET_MESSAGES[l].copied}" hidden>${CABINET_MESSAGES[l].copy}</button></div>
<details><summary>${t.linkQr}</summary>${raw(qr)}</details>
</div>`;
      // Shown once, in this response (not a redirect): the link is not stored anywhere readable.
      return render(request, reply, { info });
    });

    app.post<{ Params: { id: string } }>('/app/staff/:id/delete', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const staff = await target(request, request.params.id);
      if (staff.id === session.staffId) return render(request, reply, { status: 422, target: staff.id, formError: t.errors.self });
      await db.updateTable('staff_member').set({ deleted_at: ctx.clock() }).where('id', '=', staff.id).execute();
      await endStaffSessions(db, staff.id);
      return kit.redirect(reply, '/app/staff?removed=1');
    });
  },
};
