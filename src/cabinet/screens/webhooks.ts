import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../http/errors.js';
import { html, type SafeHtml } from '../../http/html.js';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../../webhooks/events.js';
import type { DeliveriesQuery, WebhookDto } from '../../webhooks/schemas.js';
import {
  createWebhook,
  deleteWebhook,
  deliveryCounts,
  getWebhook,
  listDeliveries,
  listWebhooks,
  MAX_WEBHOOKS_PER_PROGRAM,
  rotateWebhookSecret,
  updateWebhook,
} from '../../webhooks/service.js';
import { urlPolicyFor } from '../../webhooks/url-policy.js';
import { CABINET_MESSAGES, formatDateTime, formatNumber, texts, type Lang } from '../i18n.js';
import { formBody, uuidParam, type Screen } from '../kit.js';
import { csrfInput, errorSummary, field, formText, formValues, notice, type FieldErrors } from '../layout.js';

/**
 * «Вебхуки» (owner, marketer — as `/api/v1/webhooks`): the program's endpoints, their state and
 * delivery counts; create one (its signing secret is shown once, in the answer), change its URL
 * and events, switch it off and on, rotate its secret, delete it, and read its delivery log. Every
 * action calls src/webhooks/service.ts, the functions behind the API: the same URL policy (https,
 * no private or reserved addresses — SSRF), the same limit and rules. The secret is never read
 * back.
 */
const T = texts({
  ru: {
    title: 'Вебхуки',
    lead: 'Адреса, на которые сервис отправляет события программы (POST с подписью HMAC-SHA256, см. /docs и README). То же можно делать через API: /api/v1/webhooks.',
    none: 'Вебхуков пока нет.',
    url: 'Адрес',
    urlHint: 'https://… Внутренние и частные адреса (localhost, 10.x, 192.168.x и т. п.) не принимаются.',
    events: 'События',
    eventsHint: 'Какие события отправлять на этот адрес.',
    state: 'Состояние',
    enabled: 'включён',
    disabled: 'отключён',
    enabledSwitch: 'Включён (получает события)',
    disabledSince: (when: string, reason: string) => `с ${when}${reason ? ` (${reason})` : ''}`,
    failing: (since: string, n: string) => `ошибки с ${since} (подряд: ${n})`,
    lastSuccess: 'Последняя доставка',
    never: 'ещё не было',
    deliveries: 'Доставки за 7 дней',
    delivered: 'доставлено',
    pending: 'в очереди',
    failed: 'не доставлено',
    open: 'Открыть',
    add: 'Новый вебхук',
    count: (n: number, max: number) => `Вебхуков: ${n} из ${max}.`,
    create: 'Создать вебхук',
    created: 'Вебхук создан. Секрет подписи показан только сейчас — сохраните его, потом его не увидеть (можно только заменить):',
    rotated: 'Секрет заменён и уже действует. Новый секрет показан только сейчас — сохраните его:',
    edit: 'Изменить',
    save: 'Сохранить',
    saved: 'Сохранено.',
    deleted: 'Вебхук удалён вместе с журналом доставок.',
    rotate: 'Заменить секрет',
    rotateConfirm: 'Заменить секрет? Старый перестанет действовать сразу.',
    remove: 'Удалить вебхук',
    removeConfirm: 'Удалить вебхук и его журнал доставок?',
    back: 'Все вебхуки',
    log: 'Журнал доставок',
    logAll: 'все',
    logNone: 'Доставок нет.',
    older: 'Более ранние',
    newest: 'К последним',
    at: 'Создана',
    type: 'Событие',
    status: 'Статус',
    attempts: 'Попыток',
    code: 'Код ответа',
    error: 'Ошибка',
    next: 'Следующая попытка / доставлено',
    eventNames: {
      'card.issued': 'выпущена карта',
      'card.installed': 'карта добавлена в Wallet',
      'card.removed': 'карта удалена из Wallet',
      'balance.changed': 'изменился баланс',
      'tier.changed': 'изменился уровень',
      'purchase.created': 'покупка',
      'purchase.refunded': 'возврат покупки',
      'campaign.finished': 'рассылка отправлена',
      'import.finished': 'импорт карт завершён',
    } as Record<WebhookEventType, string>,
    errors: {
      urlRequired: 'Укажите адрес, начинающийся с https:// (до 2048 символов).',
      events: 'Выберите хотя бы одно событие.',
      limit: (max: number) => `У программы может быть не больше ${max} вебхуков. Удалите ненужный.`,
      // The URL policy's reasons (src/webhooks/url-policy.ts), by a phrase of its English message.
      url: [
        ['not a valid absolute URL', 'Это не полный адрес: нужен вид https://example.com/hook.'],
        ['must be https://', 'Адрес должен начинаться с https://.'],
        ['credentials', 'В адресе не должно быть логина и пароля: проверяйте подпись запроса.'],
        ['#fragment', 'В адресе не должно быть части после #.'],
        ['localhost', 'Адрес не может указывать на localhost.'],
        ['private, loopback or reserved', 'Адрес указывает на внутренний, частный или зарезервированный IP — туда вебхуки не отправляются.'],
      ] as Array<[string, string]>,
      urlOther: 'Адрес не принят:',
    },
  },
  en: {
    title: 'Webhooks',
    lead: "Addresses the service sends the programme's events to (a POST signed with HMAC-SHA256; see /docs and the README). The API does the same: /api/v1/webhooks.",
    none: 'No webhooks yet.',
    url: 'URL',
    urlHint: 'https://… Internal and private addresses (localhost, 10.x, 192.168.x and the like) are refused.',
    events: 'Events',
    eventsHint: 'Which events to send to this URL.',
    state: 'State',
    enabled: 'enabled',
    disabled: 'disabled',
    enabledSwitch: 'Enabled (receives events)',
    disabledSince: (when, reason) => `since ${when}${reason ? ` (${reason})` : ''}`,
    failing: (since, n) => `failing since ${since} (${n} in a row)`,
    lastSuccess: 'Last delivery',
    never: 'none yet',
    deliveries: 'Deliveries, 7 days',
    delivered: 'delivered',
    pending: 'pending',
    failed: 'failed',
    open: 'Open',
    add: 'New webhook',
    count: (n, max) => `Webhooks: ${n} of ${max}.`,
    create: 'Create webhook',
    created: 'The webhook is created. Its signing secret is shown only now: store it, it cannot be shown again (only replaced):',
    rotated: 'The secret is replaced and in force already. The new secret is shown only now: store it:',
    edit: 'Change',
    save: 'Save',
    saved: 'Saved.',
    deleted: 'The webhook is deleted with its delivery log.',
    rotate: 'Replace the secret',
    rotateConfirm: 'Replace the secret? The old one stops working at once.',
    remove: 'Delete webhook',
    removeConfirm: 'Delete the webhook and its delivery log?',
    back: 'All webhooks',
    log: 'Delivery log',
    logAll: 'all',
    logNone: 'No deliveries.',
    older: 'Older',
    newest: 'Newest',
    at: 'Created',
    type: 'Event',
    status: 'Status',
    attempts: 'Attempts',
    code: 'Response code',
    error: 'Error',
    next: 'Next attempt / delivered',
    eventNames: {
      'card.issued': 'a card is issued',
      'card.installed': 'a card is added to a wallet',
      'card.removed': 'a card is removed from a wallet',
      'balance.changed': 'a balance changes',
      'tier.changed': 'a tier changes',
      'purchase.created': 'a purchase',
      'purchase.refunded': 'a purchase is refunded',
      'campaign.finished': 'a campaign is sent',
      'import.finished': 'a card import is finished',
    },
    errors: {
      urlRequired: 'Enter a URL starting with https:// (up to 2,048 characters).',
      events: 'Choose at least one event.',
      limit: (max) => `A programme can have at most ${max} webhooks. Delete one you no longer need.`,
      url: [],
      urlOther: 'The URL is refused:',
    },
  },
});
type Msg = (typeof T)['ru'];

const STATUSES = ['pending', 'delivered', 'failed'] as const;

/** The service's refusal as messages next to the fields (or for the whole form). */
function explain(l: Lang, error: unknown): { errors: FieldErrors; formError?: string } | undefined {
  if (!(error instanceof AppError)) return undefined;
  const t = T[l];
  if (error.code === 'invalid_webhook_url') {
    const known = t.errors.url.find(([phrase]) => error.message.includes(phrase));
    return { errors: { url: known ? known[1] : `${t.errors.urlOther} ${error.message}` } };
  }
  if (error.code === 'webhook_limit_reached') return { errors: {}, formError: t.errors.limit(MAX_WEBHOOKS_PER_PROGRAM) };
  if (error.code === 'validation_failed') {
    const problems = (error.details?.errors as Array<{ path: string }> | undefined) ?? [];
    const errors: FieldErrors = {};
    for (const { path } of problems) {
      if (path.startsWith('/url')) errors.url = t.errors.urlRequired;
      else if (path.startsWith('/events')) errors.events = t.errors.events;
    }
    return Object.keys(errors).length > 0 ? { errors } : { errors: {}, formError: error.message };
  }
  return undefined;
}

export const webhooksScreen: Screen = {
  nav: { path: '/app/webhooks', label: { ru: 'Вебхуки', en: 'Webhooks' }, access: 'marketing', group: 'developers' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;
    const policy = urlPolicyFor(kit.ctx.config);

    function stateBadge(l: Lang, t: Msg, timeZone: string, e: WebhookDto): SafeHtml {
      const when = (d: string) => formatDateTime(l, timeZone, d);
      if (!e.enabled) return html`<span class="badge warn" data-state>${t.disabled}</span> <span class="small">${e.disabledAt ? t.disabledSince(when(e.disabledAt), e.disabledReason ?? '') : (e.disabledReason ?? '')}</span>`;
      if (e.failingSince) return html`<span class="badge warn" data-state>${t.failing(when(e.failingSince), formatNumber(l, e.consecutiveFailures))}</span>`;
      return html`<span class="badge ok" data-state>${t.enabled}</span>`;
    }

    /** The events as checkboxes (a fieldset; its error tied to it). */
    function eventsFieldset(t: Msg, checked: readonly string[], errors: FieldErrors, prefix: string): SafeHtml {
      const error = errors.events;
      return html`<fieldset id="f-events"${error ? html` aria-describedby="f-events-error"` : ''}>
<legend>${t.events}</legend>
<p class="hint">${t.eventsHint}</p>
${error ? html`<p class="error" id="f-events-error">${error}</p>` : ''}
<div class="checks">${WEBHOOK_EVENT_TYPES.map((type) => {
        const id = `${prefix}-event-${type.replace('.', '-')}`;
        return html`<div class="check"><input id="${id}" type="checkbox" name="events" value="${type}"${checked.includes(type) ? html` checked` : ''}><label for="${id}"><span class="mono">${type}</span> — ${t.eventNames[type]}</label></div>`;
      })}</div>
</fieldset>`;
    }

    function secretNotice(l: Lang, text: string, secret: string): SafeHtml {
      const m = CABINET_MESSAGES[l];
      return html`<div class="notice" role="status" data-new-secret>
<p><label for="new-secret">${text}</label></p>
<input id="new-secret" type="text" readonly value="${secret}" class="mono" spellcheck="false">
<div class="actions"><button type="button" class="button secondary" data-copy="new-secret" data-copied="${m.copied}" hidden>${m.copy}</button></div>
</div>`;
    }

    // ---- the list and the new-webhook form --------------------------------------------------------
    interface ListState {
      status?: number;
      info?: string;
      values?: { url: string; events: string[] };
      errors?: FieldErrors;
      formError?: string;
    }

    async function listPage(request: FastifyRequest, reply: FastifyReply, state: ListState) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const endpoints = await listWebhooks(db, session.programId);
      const counts = await deliveryCounts(db, session.programId, new Date(kit.ctx.clock().getTime() - 7 * 86_400_000));
      const count = (id: string, status: (typeof STATUSES)[number]) => formatNumber(l, counts.get(id)?.[status] ?? 0);
      const errors = state.errors ?? {};
      const values = state.values ?? { url: '', events: [...WEBHOOK_EVENT_TYPES] };
      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        path: '/app/webhooks',
        body: html`<h1>${t.title}</h1>
<p>${t.lead}</p>
${state.info ? notice(state.info) : ''}
<section class="panel" aria-labelledby="hooks-title">
<h2 id="hooks-title" class="visually-hidden">${t.title}</h2>
${
  endpoints.length === 0
    ? html`<p class="muted">${t.none}</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.url}</th><th scope="col">${t.events}</th><th scope="col">${t.state}</th><th scope="col">${t.lastSuccess}</th><th scope="col">${t.deliveries}</th></tr></thead>
<tbody>${endpoints.map(
        (e) => html`<tr data-webhook="${e.id}">
<td class="mono"><a href="/app/webhooks/${e.id}">${e.url}</a></td>
<td>${e.events.join(', ')}</td>
<td>${stateBadge(l, t, session.timeZone, e)}</td>
<td>${e.lastSuccessAt ? formatDateTime(l, session.timeZone, e.lastSuccessAt) : t.never}</td>
<td>${t.delivered}: ${count(e.id, 'delivered')}, ${t.pending}: ${count(e.id, 'pending')}, ${t.failed}: ${count(e.id, 'failed')}</td>
</tr>`,
      )}</tbody></table></div>`
}
<p class="small muted">${t.count(endpoints.length, MAX_WEBHOOKS_PER_PROGRAM)}</p>
</section>
<section class="panel" aria-labelledby="add-title">
<h2 id="add-title">${t.add}</h2>
${errorSummary(l, errors, state.formError)}
<form method="post" action="/app/webhooks" novalidate>
${csrfInput(session.csrf)}
${field({ name: 'url', label: t.url, type: 'url', value: values.url, hint: t.urlHint, errors, attrs: html` maxlength="2048" required spellcheck="false" autocomplete="off"` })}
${eventsFieldset(t, values.events, errors, 'new')}
<button class="button" type="submit">${t.create}</button>
</form>
</section>`,
      });
    }

    app.get('/app/webhooks', { config: { access: 'marketing' } }, async (request, reply) =>
      listPage(request, reply, { info: (request.query as Record<string, string>).deleted ? T[kit.lang(request)].deleted : undefined }),
    );

    app.post('/app/webhooks', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const body = formBody(request);
      const values = { url: formText(body, 'url', 4096), events: formValues(body, 'events') };
      let created: WebhookDto & { secret: string };
      try {
        created = await createWebhook(db, policy, session.programId, { url: values.url, events: values.events as WebhookEventType[] });
      } catch (error) {
        const explained = explain(l, error);
        if (explained) return listPage(request, reply, { status: 422, values, ...explained });
        throw error;
      }
      // Shown once, in this answer.
      return endpointPage(request, reply, created.id, { secret: secretNotice(l, T[l].created, created.secret) });
    });

    // ---- one endpoint: change, secret, delete, delivery log ---------------------------------------
    interface EndpointState {
      status?: number;
      info?: string;
      secret?: SafeHtml;
      values?: { url: string; events: string[]; enabled: boolean };
      errors?: FieldErrors;
      formError?: string;
    }

    async function endpointPage(request: FastifyRequest, reply: FastifyReply, id: string, state: EndpointState = {}) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const hook = await getWebhook(db, session.programId, id);
      const q = (request.method === 'GET' ? request.query : {}) as Record<string, string | undefined>;
      const query: DeliveriesQuery = { limit: 50 };
      const status = STATUSES.find((s) => s === q.status);
      if (status) query.status = status;
      if (q.before && /^[1-9]\d{0,14}$/.test(q.before)) query.before = Number(q.before);
      const log = await listDeliveries(db, session.programId, id, query);
      const when = (d: string | null) => (d ? formatDateTime(l, session.timeZone, d) : '—');
      const values = state.values ?? { url: hook.url, events: hook.events, enabled: hook.enabled };
      const errors = state.errors ?? {};
      const base = `/app/webhooks/${id}`;
      const filter = (s: (typeof STATUSES)[number] | undefined, label: string) =>
        s === status ? html`<strong aria-current="true">${label}</strong>` : html`<a href="${s ? `${base}?status=${s}` : base}#log">${label}</a>`;
      const statusLabel: Record<(typeof STATUSES)[number], string> = { pending: t.pending, delivered: t.delivered, failed: t.failed };
      return kit.page(request, reply, {
        status: state.status,
        title: `${t.title}: ${hook.url}`,
        path: base,
        active: '/app/webhooks',
        body: html`<p><a href="/app/webhooks">${t.back}</a></p>
<h1 class="mono">${hook.url}</h1>
${state.secret ?? ''}
${state.info ? notice(state.info) : ''}
<section class="panel" aria-labelledby="edit-title">
<h2 id="edit-title">${t.edit}</h2>
<p>${t.state}: ${stateBadge(l, t, session.timeZone, hook)} · ${t.lastSuccess}: ${hook.lastSuccessAt ? when(hook.lastSuccessAt) : t.never}</p>
${errorSummary(l, errors, state.formError)}
<form method="post" action="${base}" novalidate>
${csrfInput(session.csrf)}
${field({ name: 'url', label: t.url, type: 'url', value: values.url, hint: t.urlHint, errors, attrs: html` maxlength="2048" required spellcheck="false" autocomplete="off"` })}
${eventsFieldset(t, values.events, errors, 'edit')}
<div class="check"><input id="f-enabled" name="enabled" type="checkbox" role="switch" value="on"${values.enabled ? html` checked` : ''}><label for="f-enabled">${t.enabledSwitch}</label></div>
<button class="button" type="submit">${t.save}</button>
</form>
<div class="actions">
<form method="post" action="${base}/rotate-secret" data-confirm="${t.rotateConfirm}">${csrfInput(session.csrf)}<button class="button secondary" type="submit">${t.rotate}</button></form>
<form method="post" action="${base}/delete" data-confirm="${t.removeConfirm}">${csrfInput(session.csrf)}<button class="button danger" type="submit">${t.remove}</button></form>
</div>
</section>
<section class="panel" aria-labelledby="log">
<h2 id="log" tabindex="-1">${t.log}</h2>
<p>${filter(undefined, t.logAll)} · ${filter('pending', t.pending)} · ${filter('delivered', t.delivered)} · ${filter('failed', t.failed)}</p>
${
  log.items.length === 0
    ? html`<p class="muted" data-log-empty>${t.logNone}</p>`
    : html`<div class="table-wrap"><table data-log>
<thead><tr><th scope="col">${t.at}</th><th scope="col">${t.type}</th><th scope="col">${t.status}</th><th scope="col" class="num">${t.attempts}</th><th scope="col" class="num">${t.code}</th><th scope="col">${t.error}</th><th scope="col">${t.next}</th></tr></thead>
<tbody>${log.items.map(
        (d) => html`<tr data-delivery="${d.id}">
<td>${when(d.createdAt)}</td><td class="mono">${d.type}</td>
<td><span class="badge${d.status === 'delivered' ? ' ok' : d.status === 'failed' ? ' warn' : ''}">${statusLabel[d.status]}</span></td>
<td class="num">${formatNumber(l, d.attempts)}</td><td class="num">${d.lastStatusCode ?? '—'}</td>
<td class="small">${d.lastError ?? '—'}</td>
<td>${d.deliveredAt ? when(d.deliveredAt) : when(d.nextAttemptAt)}</td>
</tr>`,
      )}</tbody></table></div>`
}
<p>${query.before ? html`<a href="${status ? `${base}?status=${status}` : base}#log">${t.newest}</a> ` : ''}${
          log.nextBefore ? html`<a href="${base}?${status ? `status=${status}&` : ''}before=${log.nextBefore}#log">${t.older}</a>` : ''
        }</p>
</section>`,
      });
    }

    app.get<{ Params: { id: string } }>('/app/webhooks/:id', { config: { access: 'marketing' } }, async (request, reply) =>
      endpointPage(request, reply, uuidParam(request.params.id), { info: (request.query as Record<string, string>).saved ? T[kit.lang(request)].saved : undefined }),
    );

    app.post<{ Params: { id: string } }>('/app/webhooks/:id', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const id = uuidParam(request.params.id);
      const body = formBody(request);
      const values = { url: formText(body, 'url', 4096), events: formValues(body, 'events'), enabled: formText(body, 'enabled') === 'on' };
      const current = await getWebhook(db, session.programId, id);
      try {
        // The URL only when it changed: a new URL clears the failure record.
        await updateWebhook(
          db,
          policy,
          session.programId,
          id,
          { ...(values.url !== current.url ? { url: values.url } : {}), events: values.events as WebhookEventType[], enabled: values.enabled },
          { disabledReason: 'disabled in the cabinet' },
        );
      } catch (error) {
        const explained = explain(l, error);
        if (explained) return endpointPage(request, reply, id, { status: 422, values, ...explained });
        throw error;
      }
      return kit.redirect(reply, `/app/webhooks/${id}?saved=1`);
    });

    app.post<{ Params: { id: string } }>('/app/webhooks/:id/rotate-secret', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const id = uuidParam(request.params.id);
      const rotated = await rotateWebhookSecret(db, session.programId, id);
      return endpointPage(request, reply, id, { secret: secretNotice(l, T[l].rotated, rotated.secret) });
    });

    app.post<{ Params: { id: string } }>('/app/webhooks/:id/delete', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      await deleteWebhook(db, session.programId, uuidParam(request.params.id));
      return kit.redirect(reply, '/app/webhooks?deleted=1');
    });
  },
};
