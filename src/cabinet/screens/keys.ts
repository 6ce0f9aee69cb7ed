import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ProgramRole } from '../../http/auth.js';
import { html, type SafeHtml } from '../../http/html.js';
import { createProgramKey, listProgramKeys, revokeProgramKey } from '../../programs/keys.js';
import { CABINET_MESSAGES, formatDateTime, texts, type Lang } from '../i18n.js';
import { formBody, uuidParam, type Screen } from '../kit.js';
import { csrfInput, errorSummary, field, formText, notice, select, type FieldErrors } from '../layout.js';

/**
 * «API-ключи» (owner): program keys for POS integrations and scripts, the same as
 * `POST/GET/DELETE /api/v1/programs/{id}/keys`. A new key is shown once, in the answer to its
 * creation; only its hash is stored.
 */
const T = texts({
  ru: {
    title: 'API-ключи',
    lead: 'Ключи для кассовых программ и интеграций. Ключ показывается один раз — сразу сохраните его.',
    name: 'Название',
    role: 'Роль',
    created: 'Создан',
    lastUsed: 'Использован',
    status: 'Состояние',
    active: 'действует',
    revoked: 'отозван',
    never: 'ещё нет',
    add: 'Новый ключ',
    create: 'Создать ключ',
    revoke: 'Отозвать',
    revokeConfirm: (name: string) => `Отозвать ключ «${name}»? Интеграции с ним перестанут работать.`,
    shown: (name: string) => `Ключ «${name}» создан. Он показан только сейчас — скопируйте его:`,
    revokedDone: 'Ключ отозван.',
    roles: { pos: 'касса (pos)', marketer: 'маркетинг (marketer)', admin: 'администратор (admin)' } as Record<ProgramRole, string>,
    errors: { name: 'Укажите название, например «Касса 1».' },
  },
  en: {
    title: 'API keys',
    lead: 'Keys for POS software and integrations. A key is shown once: store it right away.',
    name: 'Name',
    role: 'Role',
    created: 'Created',
    lastUsed: 'Last used',
    status: 'Status',
    active: 'active',
    revoked: 'revoked',
    never: 'not yet',
    add: 'New key',
    create: 'Create key',
    revoke: 'Revoke',
    revokeConfirm: (name) => `Revoke the key “${name}”? Integrations using it stop working.`,
    shown: (name) => `The key “${name}” is created. It is shown only now; copy it:`,
    revokedDone: 'The key is revoked.',
    roles: { pos: 'till (pos)', marketer: 'marketing (marketer)', admin: 'administrator (admin)' },
    errors: { name: 'Enter a name, e.g. “Till 1”.' },
  },
});

const ROLES: ProgramRole[] = ['pos', 'marketer', 'admin'];

export const keysScreen: Screen = {
  nav: { path: '/app/keys', label: { ru: 'API-ключи', en: 'API keys' }, access: 'owner', group: 'developers' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;

    async function render(request: FastifyRequest, reply: FastifyReply, state: { status?: number; info?: SafeHtml | string; values?: Record<string, string>; errors?: FieldErrors }) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const keys = await listProgramKeys(db, session.programId);
      const errors = state.errors ?? {};
      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        path: '/app/keys',
        body: html`<h1>${t.title}</h1>
<p>${t.lead}</p>
${state.info ? (typeof state.info === 'string' ? notice(state.info) : state.info) : ''}
<section class="panel" aria-labelledby="keys-title">
<h2 id="keys-title" class="visually-hidden">${t.title}</h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.name}</th><th scope="col">${t.role}</th><th scope="col">${t.created}</th><th scope="col">${t.lastUsed}</th><th scope="col">${t.status}</th><th scope="col"><span class="visually-hidden">${t.revoke}</span></th></tr></thead>
<tbody>${keys.map(
          (k) => html`<tr data-key="${k.id}">
<td>${k.name}</td><td>${t.roles[k.role]}</td>
<td>${formatDateTime(l, session.timeZone, k.created_at)}</td>
<td>${k.last_used_at ? formatDateTime(l, session.timeZone, k.last_used_at) : t.never}</td>
<td>${k.revoked_at ? html`<span class="badge warn">${t.revoked}</span>` : html`<span class="badge ok">${t.active}</span>`}</td>
<td>${
            k.revoked_at
              ? ''
              : html`<form method="post" action="/app/keys/${k.id}/revoke" data-confirm="${t.revokeConfirm(k.name)}">${csrfInput(session.csrf)}<button class="button danger" type="submit">${t.revoke}<span class="visually-hidden"> ${k.name}</span></button></form>`
          }</td>
</tr>`,
        )}</tbody>
</table></div>
</section>
<section class="panel" aria-labelledby="add-title">
<h2 id="add-title">${t.add}</h2>
${errorSummary(l, errors)}
<form method="post" action="/app/keys" novalidate>
${csrfInput(session.csrf)}
<div class="row">
${field({ name: 'name', label: t.name, value: state.values?.name, errors, attrs: html` maxlength="100" required` })}
${select({ name: 'role', label: t.role, value: state.values?.role ?? 'pos', options: ROLES.map((r) => ({ value: r, label: t.roles[r] })) })}
</div>
<button class="button" type="submit">${t.create}</button>
</form>
</section>`,
      });
    }

    app.get('/app/keys', { config: { access: 'owner' } }, async (request, reply) =>
      render(request, reply, { info: (request.query as Record<string, string>).revoked ? T[kit.lang(request)].revokedDone : undefined }),
    );

    app.post('/app/keys', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const body = formBody(request);
      const name = formText(body, 'name', 100);
      const role = formText(body, 'role', 20) as ProgramRole;
      if (!name || !ROLES.includes(role)) return render(request, reply, { status: 422, values: { name, role }, errors: name ? {} : { name: t.errors.name } });
      const key = await createProgramKey(db, session.programId, { role, name });
      const m = CABINET_MESSAGES[l];
      // Shown once, in this response.
      const info = html`<div class="notice" role="status" data-new-key>
<p><label for="new-key">${t.shown(name)}</label></p>
<input id="new-key" type="text" readonly value="${key.key}" class="mono" spellcheck="false">
<div class="actions"><button type="button" class="button secondary" data-copy="new-key" data-copied="${m.copied}" hidden>${m.copy}</button></div>
</div>`;
      return render(request, reply, { info });
    });

    app.post<{ Params: { id: string } }>('/app/keys/:id/revoke', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      await revokeProgramKey(db, session.programId, uuidParam(request.params.id), kit.ctx.clock());
      return kit.redirect(reply, '/app/keys?revoked=1');
    });
  },
};
