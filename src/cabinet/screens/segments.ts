import type { FastifyReply, FastifyRequest } from 'fastify';
import { segmentWeeks } from '../../campaigns/segment-flow.js';
import { saveThresholds, segmentCounts, SEGMENT_NAMES, thresholdsOf, type SegmentCode, type SegmentThresholds } from '../../campaigns/segments.js';
import { AppError } from '../../http/errors.js';
import { html } from '../../http/html.js';
import { getProgramOr404 } from '../../programs/service.js';
import { barChart, flowChart } from '../charts.js';
import { count, formatDate, formatMoney, formatNumber, moneyInputValue, parseMoney, parseWhole, texts, type Lang } from '../i18n.js';
import { formBody, type Screen } from '../kit.js';
import { csrfInput, errorSummary, field, formText, notice, select, type FieldErrors } from '../layout.js';

/**
 * «Сегменты» (owner, marketer): the RFM segments of src/campaigns/segments.ts with their card
 * counts and editable thresholds (the same as `GET/PUT /api/v1/segments`), each with a shortcut to
 * a campaign for that segment.
 */
const T = texts({
  ru: {
    title: 'Сегменты',
    lead: 'Каждая активная карта — ровно в одном сегменте: правила проверяются сверху вниз, срабатывает первое подходящее.',
    segment: 'Сегмент',
    rule: 'Правило',
    cards: 'Карт',
    total: 'Всего активных карт',
    send: 'Рассылка',
    sendTo: (name: string) => `Написать сегменту «${name}»`,
    chart: 'Карты по сегментам',
    thresholds: 'Пороги',
    save: 'Сохранить пороги',
    saved: 'Пороги сохранены, сегменты пересчитаны.',
    fields: {
      windowDays: 'Окно частоты и суммы, дней',
      newcomerDays: 'Новички: в программе меньше, дней',
      sleepingAfterDays: 'Сони: без покупок от, дней',
      lostAfterDays: 'Потерянные: без покупок от, дней',
      whalesMinSpend: (c: string) => `Киты: сумма покупок за окно от, ${c}`,
      coreMinPurchases: 'Ядро: покупок за окно от',
    },
    rules: {
      lost: (t: SegmentThresholds) => `нет покупок ${t.lostAfterDays} дн. и больше (с регистрации, если покупок не было)`,
      sleeping: (t: SegmentThresholds) => `нет покупок ${t.sleepingAfterDays} дн. и больше`,
      whales: (t: SegmentThresholds, money: string) => `потратили от ${money} за последние ${t.windowDays} дн.`,
      core: (t: SegmentThresholds) => `покупок за последние ${t.windowDays} дн.: ${t.coreMinPurchases} и больше`,
      newcomers: (t: SegmentThresholds) => `в программе меньше ${t.newcomerDays} дн. или ещё без покупок`,
      loyal: () => 'все остальные активные карты',
    },
    errors: { whole: 'Введите целое число.', money: 'Введите сумму.', invalid: 'Пороги не сохранены:' },
    flow: 'Движение между сегментами',
    flowLead: 'Сколько карт перешло из сегмента в сегмент за неделю (понедельник — воскресенье): слева — где карта была в начале недели, справа — где в конце.',
    flowWeek: (from: string, to: string) => `Неделя ${from} — ${to}`,
    flowNone: 'Недели ещё не посчитаны: движение появится после первой полной недели.',
    week: 'Неделя',
    showWeek: 'Показать',
    newCards: 'Новые карты',
    from: 'Было',
    to: 'Стало',
    moved: (n: string) => `Сменили сегмент: ${n}`,
  },
  en: {
    title: 'Segments',
    lead: 'Every active card is in exactly one segment: the rules are checked top to bottom, the first match wins.',
    segment: 'Segment',
    rule: 'Rule',
    cards: 'Cards',
    total: 'Active cards in total',
    send: 'Campaign',
    sendTo: (name) => `Message the “${name}” segment`,
    chart: 'Cards per segment',
    thresholds: 'Thresholds',
    save: 'Save thresholds',
    saved: 'Thresholds saved; segments recomputed.',
    fields: {
      windowDays: 'Frequency and spend window, days',
      newcomerDays: 'Newcomers: members for less than, days',
      sleepingAfterDays: 'Sleeping: no purchase for, days',
      lostAfterDays: 'Lost: no purchase for, days',
      whalesMinSpend: (c) => `Whales: spend within the window from, ${c}`,
      coreMinPurchases: 'Core: purchases within the window from',
    },
    rules: {
      lost: (t) => `no purchase for ${count('en', t.lostAfterDays, 'days')} or more (since enrollment when none)`,
      sleeping: (t) => `no purchase for ${count('en', t.sleepingAfterDays, 'days')} or more`,
      whales: (t, money) => `spent at least ${money} in the last ${count('en', t.windowDays, 'days')}`,
      core: (t) => `at least ${count('en', t.coreMinPurchases, 'purchases')} in the last ${count('en', t.windowDays, 'days')}`,
      newcomers: (t) => `a member for less than ${count('en', t.newcomerDays, 'days')}, or no purchase yet`,
      loyal: () => 'every other active card',
    },
    errors: { whole: 'Enter a whole number.', money: 'Enter an amount.', invalid: 'The thresholds were not saved:' },
    flow: 'Movement between segments',
    flowLead: 'How many cards moved from one segment to another in a week (Monday to Sunday): on the left where a card was at the start of the week, on the right where it was at the end.',
    flowWeek: (from, to) => `Week ${from} — ${to}`,
    flowNone: 'No week is counted yet: the movement shows after the first full week.',
    week: 'Week',
    showWeek: 'Show',
    newCards: 'New cards',
    from: 'Before',
    to: 'After',
    moved: (n) => `Changed segment: ${n}`,
  },
});

const COLORS: Record<SegmentCode, string> = { core: '#0b57d0', loyal: '#1b7f3b', whales: '#8a3ffc', newcomers: '#a15c00', sleeping: '#5f6470', lost: '#b3261e' };
/** Order of the flow chart's nodes: new cards, then from the best to the lapsed. */
const FLOW_ORDER: Array<SegmentCode | 'new'> = ['new', 'whales', 'core', 'loyal', 'newcomers', 'sleeping', 'lost'];
const WHOLE_FIELDS = ['windowDays', 'newcomerDays', 'sleepingAfterDays', 'lostAfterDays', 'coreMinPurchases'] as const;

export const segmentsScreen: Screen = {
  nav: { path: '/app/segments', label: { ru: 'Сегменты', en: 'Segments' }, access: 'marketing', group: 'marketing' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;

    async function flowSection(request: FastifyRequest, l: Lang) {
      const t = T[l];
      const session = kit.session(request);
      const weeks = await segmentWeeks(db, session.programId, 12);
      if (weeks.length === 0) return html`<section class="panel" aria-labelledby="flow-title"><h2 id="flow-title">${t.flow}</h2><p class="muted" data-flow-none>${t.flowNone}</p></section>`;
      const wanted = (request.query as Record<string, string | undefined>).week;
      const week = weeks.find((w) => w.weekStart === wanted) ?? weeks[0]!;
      const day = (d: string) => formatDate(l, 'UTC', `${d}T12:00:00Z`);
      const name = (key: string) => (key === 'new' ? t.newCards : SEGMENT_NAMES[key as SegmentCode][l]);
      const moved = week.flows.filter((f) => f.from !== f.to).reduce((sum, f) => sum + f.cards, 0);
      return html`<section class="panel" aria-labelledby="flow-title">
<h2 id="flow-title">${t.flow}</h2>
<p class="hint">${t.flowLead}</p>
<form method="get" action="/app/segments" class="inline-search no-print">
${select({ name: 'week', label: t.week, value: week.weekStart, options: weeks.map((w) => ({ value: w.weekStart, label: t.flowWeek(day(w.weekStart), day(w.weekEnd)) })) })}
<button class="button secondary" type="submit">${t.showWeek}</button>
</form>
<p data-moved><strong>${t.moved(formatNumber(l, moved))}</strong></p>
${flowChart({
  lang: l,
  id: 'chart-segment-flow',
  title: t.flowWeek(day(week.weekStart), day(week.weekEnd)),
  nodes: FLOW_ORDER.map((key) => ({ key, label: name(key), color: key === 'new' ? '#9aa0ac' : COLORS[key] })),
  flows: week.flows.map((f) => ({ from: f.from, to: f.to, value: f.cards })),
  fromHeader: t.from,
  toHeader: t.to,
  valueHeader: t.cards,
  summary: `${t.flowWeek(day(week.weekStart), day(week.weekEnd))}: ${week.flows.filter((f) => f.from !== f.to).map((f) => `${name(f.from)} → ${name(f.to)}: ${f.cards}`).join('; ')}`,
})}
</section>`;
    }

    async function render(request: FastifyRequest, reply: FastifyReply, state: { status?: number; values?: Record<string, string>; errors?: FieldErrors; formError?: string; info?: string }) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const thresholds = thresholdsOf(program.segments);
      const counts = await segmentCounts(db, program.id, thresholds, kit.ctx.clock());
      const total = counts.reduce((sum, s) => sum + s.cards, 0);
      const money = formatMoney(l, program.currency, thresholds.whalesMinSpend);
      const v = state.values ?? {
        ...Object.fromEntries(WHOLE_FIELDS.map((f) => [f, String(thresholds[f])])),
        whalesMinSpend: moneyInputValue(program.currency, thresholds.whalesMinSpend, l),
      };
      const errors = state.errors ?? {};
      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        path: '/app/segments',
        body: html`<h1>${t.title}</h1>
<p>${t.lead}</p>
${state.info ? notice(state.info) : ''}
<section class="panel" aria-labelledby="segments-title">
<h2 id="segments-title">${t.total}: <span data-total>${formatNumber(l, total)}</span></h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.segment}</th><th scope="col">${t.rule}</th><th scope="col" class="num">${t.cards}</th><th scope="col">${t.send}</th></tr></thead>
<tbody>${counts.map(
          (s) => html`<tr data-segment="${s.code}"><th scope="row">${s.name[l]}</th><td>${s.code === 'whales' ? t.rules.whales(thresholds, money) : t.rules[s.code](thresholds)}</td>
<td class="num" data-cards>${formatNumber(l, s.cards)}</td>
<td><a href="/app/campaigns/new?segment=${s.code}">${t.sendTo(s.name[l])}</a></td></tr>`,
        )}</tbody></table></div>
${barChart({ lang: l, id: 'chart-segments', title: t.chart, categoryHeader: t.segment, categories: counts.map((s) => s.name[l]), series: [{ name: t.cards, color: COLORS.core, values: counts.map((s) => s.cards) }] })}
</section>
${await flowSection(request, l)}
<section class="panel" aria-labelledby="thresholds-title">
<h2 id="thresholds-title">${t.thresholds}</h2>
${errorSummary(l, errors, state.formError)}
<form method="post" action="/app/segments" novalidate>
${csrfInput(session.csrf)}
<div class="row">
${field({ name: 'windowDays', label: t.fields.windowDays, value: v.windowDays, errors, attrs: html` inputmode="numeric" maxlength="4"` })}
${field({ name: 'newcomerDays', label: t.fields.newcomerDays, value: v.newcomerDays, errors, attrs: html` inputmode="numeric" maxlength="4"` })}
${field({ name: 'sleepingAfterDays', label: t.fields.sleepingAfterDays, value: v.sleepingAfterDays, errors, attrs: html` inputmode="numeric" maxlength="4"` })}
</div><div class="row">
${field({ name: 'lostAfterDays', label: t.fields.lostAfterDays, value: v.lostAfterDays, errors, attrs: html` inputmode="numeric" maxlength="4"` })}
${field({ name: 'whalesMinSpend', label: t.fields.whalesMinSpend(program.currency), value: v.whalesMinSpend, errors, attrs: html` inputmode="decimal" maxlength="16"` })}
${field({ name: 'coreMinPurchases', label: t.fields.coreMinPurchases, value: v.coreMinPurchases, errors, attrs: html` inputmode="numeric" maxlength="6"` })}
</div>
<button class="button" type="submit">${t.save}</button>
</form>
</section>`,
      });
    }

    app.get('/app/segments', { config: { access: 'marketing' } }, async (request, reply) =>
      render(request, reply, { info: (request.query as Record<string, string>).saved ? T[kit.lang(request)].saved : undefined }),
    );

    app.post('/app/segments', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const program = await getProgramOr404(db, session.programId);
      const body = formBody(request);
      const values = Object.fromEntries([...WHOLE_FIELDS, 'whalesMinSpend'].map((f) => [f, formText(body, f, 20)]));
      const errors: FieldErrors = {};
      const input: Record<string, number> = {};
      for (const f of WHOLE_FIELDS) {
        const n = parseWhole(values[f]);
        if (n === undefined) errors[f] = t.errors.whole;
        else input[f] = n;
      }
      const spend = parseMoney(values.whalesMinSpend, program.currency);
      if (spend === undefined) errors.whalesMinSpend = t.errors.money;
      else input.whalesMinSpend = spend;
      if (Object.keys(errors).length > 0) return render(request, reply, { status: 422, values, errors });
      try {
        await saveThresholds(db, session.programId, input);
      } catch (error) {
        if (error instanceof AppError && error.code === 'invalid_segments') {
          const problems = (error.details?.errors as string[] | undefined) ?? [error.message];
          return render(request, reply, { status: 422, values, formError: `${t.errors.invalid} ${problems.join('; ')}` });
        }
        throw error;
      }
      return kit.redirect(reply, '/app/segments?saved=1');
    });
  },
};
