import { sql } from 'kysely';
import { html } from '../../http/html.js';
import { formatDateTime, formatNumber, texts, type Lang } from '../i18n.js';
import type { Screen } from '../kit.js';

/**
 * «Вебхуки» (owner, marketer — as the webhooks API): the program's endpoints, what they subscribe
 * to and how delivery goes. Read-only: endpoints are created through `POST /api/v1/webhooks`
 * (the signing secret is shown once there). The signing secret is never selected here.
 */
const T = texts({
  ru: {
    title: 'Вебхуки',
    lead: 'Адреса, на которые сервис отправляет события программы. Подключаются через API: POST /api/v1/webhooks (см. /docs).',
    none: 'Вебхуков пока нет.',
    url: 'Адрес',
    events: 'События',
    state: 'Состояние',
    enabled: 'включён',
    disabled: 'отключён',
    failing: (since: string, n: string) => `ошибки с ${since} (подряд: ${n})`,
    lastSuccess: 'Последняя доставка',
    never: 'ещё не было',
    deliveries: 'Доставки за 7 дней',
    delivered: 'доставлено',
    pending: 'в очереди',
    failed: 'не доставлено',
  },
  en: {
    title: 'Webhooks',
    lead: "Addresses the service sends the programme's events to. They are added through the API: POST /api/v1/webhooks (see /docs).",
    none: 'No webhooks yet.',
    url: 'URL',
    events: 'Events',
    state: 'State',
    enabled: 'enabled',
    disabled: 'disabled',
    failing: (since, n) => `failing since ${since} (${n} in a row)`,
    lastSuccess: 'Last delivery',
    never: 'none yet',
    deliveries: 'Deliveries, 7 days',
    delivered: 'delivered',
    pending: 'pending',
    failed: 'failed',
  },
});

export const webhooksScreen: Screen = {
  nav: { path: '/app/webhooks', label: { ru: 'Вебхуки', en: 'Webhooks' }, access: 'marketing' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;
    app.get('/app/webhooks', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const endpoints = await db
        .selectFrom('webhook_endpoint')
        .select(['id', 'url', 'events', 'enabled', 'disabled_reason', 'failing_since', 'consecutive_failures', 'last_success_at'])
        .where('program_id', '=', session.programId)
        .orderBy('created_at')
        .execute();
      const since = new Date(kit.ctx.clock().getTime() - 7 * 86_400_000);
      const counts = endpoints.length
        ? await db
            .selectFrom('webhook_delivery')
            .select(['endpoint_id', 'status', sql<number>`count(*)::int`.as('n')])
            .where(
              'endpoint_id',
              'in',
              endpoints.map((e) => e.id),
            )
            .where('created_at', '>', since)
            .groupBy(['endpoint_id', 'status'])
            .execute()
        : [];
      const count = (id: string, status: string) => Number(counts.find((c) => c.endpoint_id === id && c.status === status)?.n ?? 0);
      const when = (d: Date | null) => (d ? formatDateTime(l, session.timeZone, d) : t.never);
      return kit.page(request, reply, {
        title: t.title,
        body: html`<h1>${t.title}</h1>
<p>${t.lead}</p>
<section class="panel" aria-labelledby="hooks-title">
<h2 id="hooks-title" class="visually-hidden">${t.title}</h2>
${
  endpoints.length === 0
    ? html`<p class="muted">${t.none}</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.url}</th><th scope="col">${t.events}</th><th scope="col">${t.state}</th><th scope="col">${t.lastSuccess}</th><th scope="col">${t.deliveries}</th></tr></thead>
<tbody>${endpoints.map(
        (e) => html`<tr>
<td class="mono">${e.url}</td>
<td>${e.events.join(', ')}</td>
<td>${
          !e.enabled
            ? html`<span class="badge warn">${t.disabled}</span> ${e.disabled_reason ?? ''}`
            : e.failing_since
              ? html`<span class="badge warn">${t.failing(when(e.failing_since), formatNumber(l, e.consecutive_failures))}</span>`
              : html`<span class="badge ok">${t.enabled}</span>`
        }</td>
<td>${when(e.last_success_at)}</td>
<td>${t.delivered}: ${formatNumber(l, count(e.id, 'delivered'))}, ${t.pending}: ${formatNumber(l, count(e.id, 'pending'))}, ${t.failed}: ${formatNumber(l, count(e.id, 'failed'))}</td>
</tr>`,
      )}</tbody></table></div>`
}
</section>`,
      });
    });
  },
};
