import type { FastifyReply, FastifyRequest } from 'fastify';
import { localDay } from '../../enrollment/funnel.js';
import { economicsCsv } from '../../economics/csv.js';
import { addMonths, economicsPeriod, monthStart, type GroupBy } from '../../economics/period.js';
import { economicsReport } from '../../economics/report.js';
import { CSV_TABLES, type CsvTable, type Economics } from '../../economics/schemas.js';
import { html } from '../../http/html.js';
import { getProgramOr404 } from '../../programs/service.js';
import { barChart, heatMap, lineChart } from '../charts.js';
import { currencyDigits, formatDate, formatMoney, formatNumber, formatPercent, texts, type Lang } from '../i18n.js';
import type { Screen } from '../kit.js';
import { field, notice, select } from '../layout.js';

/**
 * «Экономика» (owner, marketer): does the program pay? What the business owes in points, what the
 * points cost against the members' revenue, retention cohorts and lifetime value — the figures of
 * `GET /api/v1/economics` (definitions in docs/economics.md) drawn as server-side SVG, each chart
 * with its data as a table, and every table downloadable as CSV.
 */
const T = texts({
  ru: {
    title: 'Экономика программы',
    lead: 'Сколько вы должны держателям карт, во что обходятся баллы и что приносят участники программы.',
    period: 'Период',
    from: 'С',
    to: 'По',
    groupBy: 'Шаг',
    groups: { day: 'день', week: 'неделя', month: 'месяц' } as Record<GroupBy, string>,
    show: 'Показать',
    presets: 'Быстрый выбор',
    thisMonth: 'Этот месяц',
    months: (n: number) => `${n} мес.`,
    badPeriod: 'Период указан неверно (не больше трёх лет, по дням — не больше года, «с» не позже «по»). Показаны последние 12 месяцев.',
    headline: 'Главное за период',
    owe: 'Долг по баллам',
    oweHint: (change: string) => `на конец периода; за период ${change}`,
    pending: (value: string) => `ещё ${value} — бонусы, ждущие подтверждения телефона (не долг)`,
    cost: 'Выдано баллов на сумму',
    costHint: (share: string) => `${share} выручки участников`,
    redeemed: 'Оплачено баллами',
    expired: 'Сгорело баллов на сумму',
    revenue: 'Выручка участников',
    averageCheck: 'Средний чек',
    memberShare: 'Доля участников в выручке',
    noChecks: 'нет данных: касса не передаёт чеки без карты',
    redemptionRate: 'Уровень списания',
    breakage: 'Сгорает (breakage)',
    repeatRate: 'Купили повторно',
    frequency: 'Покупок на участника в месяц',
    liabilityChart: 'Долг по баллам на конец периода',
    pointsChart: 'Баллы: выдано, списано, сгорело',
    issued: 'Выдано',
    spent: 'Списано',
    burnt: 'Сгорело',
    revenueChart: 'Выручка: участники и покупатели без карты',
    members: 'Участники',
    nonMembers: 'Без карты',
    membersChart: 'Покупатели по месяцам',
    active: 'Покупали',
    newBuyers: 'Впервые',
    monthHeader: 'Месяц',
    repeat: 'Повторные',
    cohorts: 'Удержание по когортам',
    cohortsLead: 'Строка — месяц регистрации, столбец — месяцев с регистрации; в клетке — доля карт когорты, покупавших в тот месяц.',
    cohort: 'Когорта',
    monthsSince: 'мес.',
    cltvCohort: 'Ценность карты по когортам (оплачено деньгами на карту, нарастающим итогом)',
    cards: 'Карт',
    cltvTier: 'Ценность карты по уровням (за всё время)',
    tier: 'Уровень',
    valuePerCard: 'На карту',
    valuePerMonth: 'На карту в месяц',
    tenure: 'Средний стаж, мес.',
    costTable: 'Во что обходятся бонусы',
    costLead: 'Бонусы каждого вида — против выручки карт, получивших их (в месяцы получения).',
    kind: 'Вид',
    kinds: { welcome: 'Приветственный', referral: 'Реферальный', birthday: 'День рождения', campaign_bonus: 'Рассылки', adjustment: 'Ручные начисления', accrual: 'Начисления за покупки' } as Record<string, string>,
    points: 'Баллов',
    value: 'На сумму',
    receivers: 'Карт',
    receiversRevenue: 'Их выручка',
    share: 'Доля',
    download: 'Скачать CSV',
    tables: { periods: 'по периодам', summary: 'итоги', members: 'покупатели по месяцам', cohorts: 'когорты', 'cltv-tiers': 'ценность по уровням', 'program-cost': 'стоимость бонусов' } as Record<CsvTable, string>,
    timeZone: (tz: string) => `Дни и месяцы считаются в часовом поясе ${tz}. Покупатели, когорты и бонусы — по целым календарным месяцам периода.`,
  },
  en: {
    title: 'Program economics',
    lead: 'What you owe card holders, what the points cost, and what members bring in.',
    period: 'Period',
    from: 'From',
    to: 'To',
    groupBy: 'Step',
    groups: { day: 'day', week: 'week', month: 'month' },
    show: 'Show',
    presets: 'Quick choice',
    thisMonth: 'This month',
    months: (n) => `${n} months`,
    badPeriod: 'The period is not valid (at most three years, a year by day, “from” not after “to”). Showing the last 12 months.',
    headline: 'The period at a glance',
    owe: 'Points liability',
    oweHint: (change) => `at the end of the period; ${change} over it`,
    pending: (value) => `and ${value} of bonuses awaiting phone verification (not owed)`,
    cost: 'Points granted, worth',
    costHint: (share) => `${share} of members' revenue`,
    redeemed: 'Paid with points',
    expired: 'Points expired, worth',
    revenue: "Members' revenue",
    averageCheck: 'Average check',
    memberShare: "Members' share of revenue",
    noChecks: 'no data: the till does not report checks without a card',
    redemptionRate: 'Redemption rate',
    breakage: 'Breakage',
    repeatRate: 'Bought again',
    frequency: 'Purchases per member a month',
    liabilityChart: 'Points liability at the end of each step',
    pointsChart: 'Points granted, redeemed, expired',
    issued: 'Granted',
    spent: 'Redeemed',
    burnt: 'Expired',
    revenueChart: 'Revenue: members and customers without a card',
    members: 'Members',
    nonMembers: 'No card',
    membersChart: 'Buyers by month',
    active: 'Bought',
    newBuyers: 'First time',
    monthHeader: 'Month',
    repeat: 'Repeat',
    cohorts: 'Retention cohorts',
    cohortsLead: 'A row per enrolment month, a column per month since enrolment; a cell is the share of the cohort’s cards that bought that month.',
    cohort: 'Cohort',
    monthsSince: 'mo',
    cltvCohort: 'Card value by cohort (money paid per card, cumulative)',
    cards: 'Cards',
    cltvTier: 'Card value by tier (lifetime)',
    tier: 'Tier',
    valuePerCard: 'Per card',
    valuePerMonth: 'Per card a month',
    tenure: 'Average months in the program',
    costTable: 'What the bonuses cost',
    costLead: 'Each kind of bonus against the revenue of the cards that received it (in the months they did).',
    kind: 'Kind',
    kinds: { welcome: 'Welcome', referral: 'Referral', birthday: 'Birthday', campaign_bonus: 'Campaigns', adjustment: 'Manual grants', accrual: 'Points on purchases' },
    points: 'Points',
    value: 'Worth',
    receivers: 'Cards',
    receiversRevenue: 'Their revenue',
    share: 'Share',
    download: 'Download CSV',
    tables: { periods: 'by period', summary: 'summary', members: 'buyers by month', cohorts: 'cohorts', 'cltv-tiers': 'value by tier', 'program-cost': 'bonus cost' },
    timeZone: (tz) => `Days and months are counted in the ${tz} time zone. Buyers, cohorts and bonuses count whole calendar months of the period.`,
  },
});

const CSS = `.figures dd.sub{font-size:.85rem;font-weight:400;color:#454955;margin-top:.15rem}`;

const COLORS = { liability: '#8a3ffc', issued: '#1b7f3b', redeemed: '#0b57d0', expired: '#b3261e', members: '#0b57d0', nonMembers: '#9aa0ac', active: '#0b57d0', newBuyers: '#1b7f3b' };

/** A compact money figure for axis labels ("1,2 млн ₽"). */
function shortMoney(lang: Lang, currency: string, major: number): string {
  try {
    return new Intl.NumberFormat(lang === 'ru' ? 'ru-RU' : 'en-US', { style: 'currency', currency, notation: 'compact', maximumFractionDigits: 1 }).format(major);
  } catch {
    return formatNumber(lang, Math.round(major));
  }
}

/** Short bucket labels that fit under a bar on a phone: "янв. 26", "Jan 26", "3 февр.". */
function bucketLabel(lang: Lang, key: string, groupBy: GroupBy): string {
  const date = new Date(`${key}T12:00:00Z`);
  const locale = lang === 'ru' ? 'ru-RU' : 'en-US';
  if (groupBy === 'month') return `${new Intl.DateTimeFormat(locale, { month: 'short', timeZone: 'UTC' }).format(date)} ${key.slice(2, 4)}`;
  return new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', timeZone: 'UTC' }).format(date);
}

export const economicsScreen: Screen = {
  nav: { path: '/app/economics', label: { ru: 'Экономика', en: 'Economics' }, access: 'marketing', group: 'marketing' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;

    async function load(request: FastifyRequest) {
      const session = kit.session(request);
      const program = await getProgramOr404(db, session.programId);
      const now = kit.ctx.clock();
      const q = request.query as Record<string, string | undefined>;
      const wanted = economicsPeriod({ from: q.from || undefined, to: q.to || undefined, groupBy: q.groupBy || undefined }, now, program.time_zone);
      const period = 'error' in wanted ? (economicsPeriod({}, now, program.time_zone) as Exclude<typeof wanted, { error: string }>) : wanted;
      const report = await economicsReport(db, program, period, now);
      return { program, period, report, invalid: 'error' in wanted, now };
    }

    app.get('/app/economics', { config: { access: 'marketing' } }, async (request, reply) => {
      const l: Lang = kit.lang(request);
      const t = T[l];
      const { program, period, report, invalid, now } = await load(request);
      return kit.page(request, reply, { title: t.title, css: CSS, body: render(l, t, program.currency, program.time_zone, period, report, invalid, now) });
    });

    app.get('/app/economics.csv', { config: { access: 'marketing' } }, async (request, reply: FastifyReply) => {
      const { report } = await load(request);
      const q = request.query as Record<string, string | undefined>;
      const table = (CSV_TABLES as readonly string[]).includes(q.table ?? '') ? (q.table as CsvTable) : 'periods';
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="economics-${table}-${report.from}-${report.to}.csv"`)
        .send(economicsCsv(report, table));
    });
  },
};

function render(l: Lang, t: (typeof T)['ru'], currency: string, timeZone: string, period: { from: string; to: string; groupBy: GroupBy }, r: Economics, invalid: boolean, now: Date) {
  const money = (minor: number | null) => (minor === null ? '—' : formatMoney(l, currency, minor));
  const scale = 10 ** currencyDigits(currency);
  const major = (minor: number) => minor / scale;
  const axisMoney = (value: number) => shortMoney(l, currency, value);
  const labels = r.periods.map((p) => bucketLabel(l, p.key, period.groupBy));
  const today = localDay(now, timeZone);
  const presets = [
    { label: t.thisMonth, from: monthStart(today) },
    { label: t.months(3), from: addMonths(monthStart(today), -2) },
    { label: t.months(12), from: addMonths(monthStart(today), -11) },
  ].map((p) => html`<li><a href="/app/economics?from=${p.from}&amp;to=${today}&amp;groupBy=month">${p.label}</a></li>`);
  const csvQuery = `from=${r.from}&to=${r.to}&groupBy=${r.groupBy}`;
  const change = (r.liability.changeValue >= 0 ? '+' : '−') + money(Math.abs(r.liability.changeValue));
  const monthLabel = (m: string) => bucketLabel(l, `${m}-01`, 'month');
  const cohortMonths = Math.max(0, ...r.cohorts.map((c) => c.active.length));
  const columns = Array.from({ length: cohortMonths }, (_, k) => String(k));
  const kinds = r.programCost.byKind.filter((k) => k.points !== 0 || k.kind === 'accrual');

  return html`<h1>${t.title}</h1>
<p>${t.lead}</p>
${invalid ? notice(t.badPeriod, 'warn') : ''}
<form method="get" action="/app/economics" class="panel no-print" aria-labelledby="period-title">
<h2 id="period-title">${t.period}</h2>
<div class="row">
${field({ name: 'from', label: t.from, type: 'date', value: period.from })}
${field({ name: 'to', label: t.to, type: 'date', value: period.to })}
${select({ name: 'groupBy', label: t.groupBy, value: period.groupBy, options: (['day', 'week', 'month'] as const).map((g) => ({ value: g, label: t.groups[g] })) })}
</div>
<div class="actions"><button class="button" type="submit">${t.show}</button>
<span class="muted">${t.presets}:</span><ul class="legend">${presets}</ul></div>
</form>
<section class="panel" aria-labelledby="headline-title">
<h2 id="headline-title">${t.headline}: ${formatDate(l, 'UTC', `${r.from}T12:00:00Z`)} — ${formatDate(l, 'UTC', `${r.to}T12:00:00Z`)}</h2>
<dl class="figures">
<div><dt>${t.owe}</dt><dd data-figure="liability">${money(r.liability.closingValue)}</dd><dd class="sub">${t.oweHint(change)}</dd>${r.liability.pendingPoints > 0 ? html`<dd class="sub" data-figure="pending">${t.pending(money(r.liability.pendingValue))}</dd>` : ''}</div>
<div><dt>${t.cost}</dt><dd data-figure="issued">${money(r.points.issuedValue)}</dd><dd class="sub">${t.costHint(formatPercent(l, r.programCost.costShare))}</dd></div>
<div><dt>${t.redeemed}</dt><dd data-figure="redeemed">${money(r.points.redeemedValue)}</dd></div>
<div><dt>${t.expired}</dt><dd data-figure="expired">${money(r.points.expiredValue)}</dd></div>
<div><dt>${t.revenue}</dt><dd data-figure="revenue">${money(r.sales.revenue)}</dd></div>
<div><dt>${t.averageCheck}</dt><dd>${money(r.sales.averageCheck)}</dd></div>
<div><dt>${t.memberShare}</dt><dd data-figure="member-share">${r.sales.memberShare === null ? html`<span class="small">${t.noChecks}</span>` : formatPercent(l, r.sales.memberShare)}</dd></div>
<div><dt>${t.redemptionRate}</dt><dd>${formatPercent(l, r.points.redemptionRate)}</dd></div>
<div><dt>${t.breakage}</dt><dd>${formatPercent(l, r.points.breakageRate)}</dd></div>
<div><dt>${t.repeatRate}</dt><dd data-figure="repeat-rate">${formatPercent(l, r.members.repeatRate)}</dd></div>
<div><dt>${t.frequency}</dt><dd>${r.members.frequency === null ? '—' : formatNumber(l, r.members.frequency)}</dd></div>
</dl>
<p class="muted small">${t.timeZone(r.timeZone)}</p>
</section>
<div class="grid">
<section class="panel" aria-labelledby="liability-title">
<h2 id="liability-title" class="visually-hidden">${t.liabilityChart}</h2>
${lineChart({ lang: l, id: 'chart-liability', compact: true, title: t.liabilityChart, categoryHeader: t.period, categories: labels, format: axisMoney, series: [{ name: t.owe, color: COLORS.liability, values: r.periods.map((p) => major(p.liabilityValue)) }] })}
</section>
<section class="panel" aria-labelledby="points-title">
<h2 id="points-title" class="visually-hidden">${t.pointsChart}</h2>
${barChart({
  lang: l,
  id: 'chart-points',
  compact: true,
  title: t.pointsChart,
  categoryHeader: t.period,
  categories: labels,
  series: [
    { name: t.issued, color: COLORS.issued, values: r.periods.map((p) => p.issued - p.reversed) },
    { name: t.spent, color: COLORS.redeemed, values: r.periods.map((p) => p.redeemed - p.returned) },
    { name: t.burnt, color: COLORS.expired, values: r.periods.map((p) => p.expired) },
  ],
})}
</section>
<section class="panel" aria-labelledby="revenue-title">
<h2 id="revenue-title" class="visually-hidden">${t.revenueChart}</h2>
${barChart({
  lang: l,
  id: 'chart-revenue',
  compact: true,
  title: t.revenueChart,
  categoryHeader: t.period,
  categories: labels,
  format: axisMoney,
  series: [
    { name: t.members, color: COLORS.members, values: r.periods.map((p) => major(Math.max(p.revenue, 0))) },
    { name: t.nonMembers, color: COLORS.nonMembers, values: r.periods.map((p) => major(p.nonMemberAmount)) },
  ],
})}
</section>
<section class="panel" aria-labelledby="members-title">
<h2 id="members-title" class="visually-hidden">${t.membersChart}</h2>
${barChart({
  lang: l,
  id: 'chart-members',
  compact: true,
  title: t.membersChart,
  categoryHeader: t.monthHeader,
  categories: r.members.months.map((m) => monthLabel(m.month)),
  series: [
    { name: t.active, color: COLORS.active, values: r.members.months.map((m) => m.activeMembers) },
    { name: t.newBuyers, color: COLORS.newBuyers, values: r.members.months.map((m) => m.newBuyers) },
  ],
})}
<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.monthHeader}</th><th scope="col" class="num">${t.active}</th><th scope="col" class="num">${t.frequency}</th><th scope="col" class="num">${t.repeatRate}</th></tr></thead>
<tbody>${r.members.months.map((m) => html`<tr><th scope="row">${monthLabel(m.month)}</th><td class="num">${formatNumber(l, m.activeMembers)}</td><td class="num">${m.frequency === null ? '—' : formatNumber(l, m.frequency)}</td><td class="num">${formatPercent(l, m.repeatRate)}</td></tr>`)}</tbody>
</table></div>
</section>
</div>
<section class="panel" aria-labelledby="cohorts-title">
<h2 id="cohorts-title">${t.cohorts}</h2>
<p class="hint">${t.cohortsLead}</p>
${heatMap({
  lang: l,
  id: 'chart-cohorts',
  title: t.cohorts,
  rowHeader: t.cohort,
  columnHeader: t.monthsSince,
  columns,
  rows: r.cohorts.map((c) => ({ label: monthLabel(c.cohort), cells: columns.map((_, k) => (k < c.retention.length ? c.retention[k] ?? 0 : null)) })),
  format: (v) => (v === null ? '' : `${Math.round(v * 100)}%`),
  summary: `${t.cohorts}: ${r.cohorts.map((c) => `${monthLabel(c.cohort)} — ${c.cards} ${t.cards.toLowerCase()}, ${c.retention.map((v) => (v === null ? '—' : `${Math.round(v * 100)}%`)).join(', ')}`).join('; ')}`,
})}
<h3>${t.cltvCohort}</h3>
<div class="table-wrap"><table data-table="cltv-cohorts">
<thead><tr><th scope="col">${t.cohort}</th><th scope="col" class="num">${t.cards}</th>${columns.map((c) => html`<th scope="col" class="num">${c} ${t.monthsSince}</th>`)}</tr></thead>
<tbody>${r.cohorts.map((c) => html`<tr><th scope="row">${monthLabel(c.cohort)}</th><td class="num">${formatNumber(l, c.cards)}</td>${columns.map((_, k) => html`<td class="num">${k < c.cltv.length ? money(c.cltv[k]!) : ''}</td>`)}</tr>`)}</tbody>
</table></div>
</section>
<div class="grid">
<section class="panel" aria-labelledby="tiers-title">
<h2 id="tiers-title">${t.cltvTier}</h2>
<div class="table-wrap"><table data-table="cltv-tiers">
<thead><tr><th scope="col">${t.tier}</th><th scope="col" class="num">${t.cards}</th><th scope="col" class="num">${t.valuePerCard}</th><th scope="col" class="num">${t.valuePerMonth}</th><th scope="col" class="num">${t.tenure}</th></tr></thead>
<tbody>${r.cltvByTier.map((x) => html`<tr><th scope="row">${x.name[l]}</th><td class="num">${formatNumber(l, x.cards)}</td><td class="num">${money(x.valuePerCard)}</td><td class="num">${money(x.valuePerCardMonth)}</td><td class="num">${x.tenureMonths === null ? '—' : formatNumber(l, x.tenureMonths)}</td></tr>`)}</tbody>
</table></div>
</section>
<section class="panel" aria-labelledby="cost-title">
<h2 id="cost-title">${t.costTable}</h2>
<p class="hint">${t.costLead}</p>
<div class="table-wrap"><table data-table="program-cost">
<thead><tr><th scope="col">${t.kind}</th><th scope="col" class="num">${t.value}</th><th scope="col" class="num">${t.receivers}</th><th scope="col" class="num">${t.receiversRevenue}</th><th scope="col" class="num">${t.share}</th></tr></thead>
<tbody>${kinds.map((k) => html`<tr data-kind="${k.kind}"><th scope="row">${t.kinds[k.kind] ?? k.kind}</th><td class="num">${money(k.value)}</td><td class="num">${formatNumber(l, k.cards)}</td><td class="num">${money(k.revenueOfCards)}</td><td class="num">${formatPercent(l, k.costShare)}</td></tr>`)}</tbody>
</table></div>
</section>
</div>
<section class="panel no-print" aria-labelledby="csv-title">
<h2 id="csv-title">${t.download}</h2>
<ul class="legend">${CSV_TABLES.map((table) => html`<li><a href="/app/economics.csv?${csvQuery}&amp;table=${table}" download>${t.tables[table]}</a></li>`)}</ul>
</section>`;
}
