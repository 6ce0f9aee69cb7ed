import { sql } from 'kysely';
import { localDay } from '../../enrollment/funnel.js';
import { funnelStats, MAX_STATS_DAYS, statsPeriod } from '../../enrollment/stats.js';
import { html } from '../../http/html.js';
import { migrationStats } from '../../imports/funnel.js';
import { getProgramOr404 } from '../../programs/service.js';
import { barChart, lineChart } from '../charts.js';
import { count, formatDate, formatNumber, formatPercent, texts, type Lang } from '../i18n.js';
import type { Screen } from '../kit.js';
import type { MigrationStats } from '../../imports/funnel.js';
import { field, notice } from '../layout.js';

/**
 * «Статистика» (owner, marketer): the same figures as `GET /api/v1/stats` (definitions in the
 * README, "Funnel and leaderboard definitions"), drawn as server-side SVG charts: installs per day
 * per wallet, the views → cards → installs funnel by source, and the staff leaderboard by week.
 */
const T = texts({
  ru: {
    title: 'Статистика',
    period: 'Период',
    from: 'С',
    to: 'По',
    show: 'Показать',
    presets: 'Быстрый выбор',
    days: (n: number) => count('ru', n, 'days'),
    badPeriod: `Период указан неверно (не больше ${MAX_STATS_DAYS} дней, «с» не позже «по»). Показаны последние 30 дней.`,
    totals: 'Итого за период',
    views: 'Просмотры',
    cards: 'Карты',
    installs: 'Установки',
    viewToCard: 'Просмотр → карта',
    cardToInstall: 'Карта → установка',
    viewToInstall: 'Просмотр → установка',
    installsChart: 'Установки по дням',
    day: 'День',
    apple: 'Apple Wallet',
    google: 'Google Кошелёк',
    removals: 'Удаления: Apple — {a}, Google — {g}.',
    funnelChart: 'Воронка по источникам',
    source: 'Источник',
    noSource: 'без метки',
    byStaff: 'По сотрудникам',
    staff: 'Сотрудник',
    noStaff: 'без сотрудника',
    deleted: 'удалён',
    leaderboard: 'Рейтинг сотрудников по неделям (установки)',
    week: 'Неделя',
    rank: 'Место',
    noData: 'За этот период данных нет.',
    timeZone: (tz: string) => `Дни считаются в часовом поясе ${tz}.`,
    migration: 'Переход с пластика в кошелёк',
    moved: 'Перешли в кошелёк',
    migrationSteps: 'Карты из импорта по шагам',
    step: 'Шаг',
    imported: 'Импортировано',
    invited: 'Приглашение отправлено',
    opened: 'Ссылка открыта',
    installedStep: 'Карта в кошельке',
    purchased: 'Покупка с картой в кошельке',
    share: 'Доля',
    store: 'Магазин',
    noStore: 'без магазина',
    migrationNote: 'Все импортированные карты за всё время; доли — от числа импортированных. Покупка считается, если сделана после установки.',
    migrationWeeks: 'По неделям: сколько карт прошло шаг за неделю',
  },
  en: {
    title: 'Statistics',
    period: 'Period',
    from: 'From',
    to: 'To',
    show: 'Show',
    presets: 'Quick choice',
    days: (n) => count('en', n, 'days'),
    badPeriod: `The period is not valid (at most ${MAX_STATS_DAYS} days, “from” not after “to”). Showing the last 30 days.`,
    totals: 'Period totals',
    views: 'Views',
    cards: 'Cards',
    installs: 'Installs',
    viewToCard: 'View → card',
    cardToInstall: 'Card → install',
    viewToInstall: 'View → install',
    installsChart: 'Installs per day',
    day: 'Day',
    apple: 'Apple Wallet',
    google: 'Google Wallet',
    removals: 'Removals: Apple {a}, Google {g}.',
    funnelChart: 'Funnel by source',
    source: 'Source',
    noSource: 'no tag',
    byStaff: 'By staff member',
    staff: 'Staff member',
    noStaff: 'no staff member',
    deleted: 'removed',
    leaderboard: 'Staff leaderboard by week (installs)',
    week: 'Week',
    rank: 'Rank',
    noData: 'No data for this period.',
    timeZone: (tz) => `Days are counted in the ${tz} time zone.`,
    migration: 'From plastic to the wallet',
    moved: 'Moved to the wallet',
    migrationSteps: 'Imported cards by step',
    step: 'Step',
    imported: 'Imported',
    invited: 'Invitation sent',
    opened: 'Link opened',
    installedStep: 'In a wallet',
    purchased: 'Purchase with the wallet card',
    share: 'Share',
    store: 'Store',
    noStore: 'no store',
    migrationNote: 'All imported cards, all time; shares are of the cards imported. A purchase counts when made after the install.',
    migrationWeeks: 'By week: cards that reached each step that week',
  },
});

const COLORS = { views: '#9aa0ac', cards: '#0b57d0', installs: '#1b7f3b', apple: '#16181d', google: '#0b57d0' };
const STAFF_COLORS = ['#0b57d0', '#1b7f3b', '#8a3ffc', '#b3261e', '#a15c00'];
const DAY_MS = 86_400_000;

function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = Date.parse(`${from}T00:00:00Z`); d <= Date.parse(`${to}T00:00:00Z`); d += DAY_MS) out.push(new Date(d).toISOString().slice(0, 10));
  return out;
}

export const statsScreen: Screen = {
  nav: { path: '/app/stats', label: { ru: 'Статистика', en: 'Statistics' }, access: 'marketing', group: 'marketing' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;
    app.get<{ Querystring: { from?: string; to?: string } }>('/app/stats', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const now = kit.ctx.clock();
      const q = request.query;
      const wanted = statsPeriod({ from: q.from || undefined, to: q.to || undefined }, now, program.time_zone);
      const period = 'error' in wanted ? (statsPeriod({}, now, program.time_zone) as { from: string; to: string }) : wanted;
      const stats = await funnelStats(db, program, period);
      // The migration funnel is all-time (an import is a one-off event, not a daily flow): not bound to the period.
      const migration = await migrationStats(db, program);

      // Installs per local day per wallet (the first registration of a card on Apple, a save on Google).
      const tz = stats.timeZone;
      const daily = await sql<{ day: string; wallet: 'apple' | 'google'; n: number }>`
        SELECT to_char((created_at AT TIME ZONE ${tz})::date, 'YYYY-MM-DD') AS day, wallet, count(*)::int AS n
        FROM wallet_event
        WHERE program_id = ${program.id} AND kind = 'installed'
          AND created_at >= (${period.from}::date::timestamp AT TIME ZONE ${tz})
          AND created_at < ((${period.to}::date + 1)::timestamp AT TIME ZONE ${tz})
        GROUP BY 1, 2`.execute(db);
      const days = daysBetween(period.from, period.to);
      const perDay = (wallet: 'apple' | 'google') => days.map((d) => daily.rows.find((r) => r.day === d && r.wallet === wallet)?.n ?? 0);
      const shortDay = (d: string) => new Intl.DateTimeFormat(l === 'ru' ? 'ru-RU' : 'en-US', { day: 'numeric', month: 'short', timeZone: 'UTC' }).format(new Date(`${d}T00:00:00Z`));

      const sources = stats.bySource.slice(0, 12);
      const sourceName = (s: string | null) => s ?? t.noSource;
      const staffName = (row: { staffId: string | null; name: string | null; deleted: boolean }) =>
        row.staffId ? `${row.name ?? '?'}${row.deleted ? ` (${t.deleted})` : ''}` : t.noStaff;

      // Leaderboard: weeks × the five staff members with the most installs in the period.
      const totalsByStaff = new Map<string, { name: string; installs: number }>();
      for (const week of stats.leaderboard)
        for (const s of week.staff) {
          const entry = totalsByStaff.get(s.staffId) ?? { name: s.name, installs: 0 };
          entry.installs += s.installs;
          totalsByStaff.set(s.staffId, entry);
        }
      const topStaff = [...totalsByStaff].sort((a, b) => b[1].installs - a[1].installs).slice(0, STAFF_COLORS.length);

      const presets = [7, 30, 90].map((n) => {
        const to = localDay(now, program.time_zone);
        const from = new Date(Date.parse(`${to}T00:00:00Z`) - (n - 1) * DAY_MS).toISOString().slice(0, 10);
        return html`<li><a href="/app/stats?from=${from}&amp;to=${to}">${t.days(n)}</a></li>`;
      });
      const rate = (v: number | null) => formatPercent(l, v);
      const totals = stats.totals;

      const body = html`<h1>${t.title}</h1>
${'error' in wanted ? notice(t.badPeriod, 'warn') : ''}
<form method="get" action="/app/stats" class="panel no-print" aria-labelledby="period-title">
<h2 id="period-title">${t.period}</h2>
<div class="row">
${field({ name: 'from', label: t.from, type: 'date', value: period.from })}
${field({ name: 'to', label: t.to, type: 'date', value: period.to })}
</div>
<div class="actions"><button class="button" type="submit">${t.show}</button>
<span class="muted">${t.presets}:</span><ul class="legend">${presets}</ul></div>
</form>
<section class="panel" aria-labelledby="totals-title">
<h2 id="totals-title">${t.totals}: ${formatDate(l, 'UTC', `${period.from}T12:00:00Z`)} — ${formatDate(l, 'UTC', `${period.to}T12:00:00Z`)}</h2>
<dl class="figures">
<div><dt>${t.views}</dt><dd data-total="views">${formatNumber(l, totals.views)}</dd></div>
<div><dt>${t.cards}</dt><dd data-total="cards">${formatNumber(l, totals.cardsIssued)}</dd></div>
<div><dt>${t.installs}</dt><dd data-total="installs">${formatNumber(l, totals.cardsInstalled)}</dd></div>
<div><dt>${t.viewToCard}</dt><dd>${rate(totals.viewToCard)}</dd></div>
<div><dt>${t.cardToInstall}</dt><dd>${rate(totals.cardToInstall)}</dd></div>
<div><dt>${t.viewToInstall}</dt><dd>${rate(totals.viewToInstall)}</dd></div>
</dl>
<p class="muted small">${t.timeZone(stats.timeZone)}</p>
</section>
<section class="panel" aria-labelledby="installs-chart-title">
<h2 id="installs-chart-title" class="visually-hidden">${t.installsChart}</h2>
${lineChart({
  lang: l,
  id: 'chart-installs',
  title: t.installsChart,
  categoryHeader: t.day,
  categories: days.map(shortDay),
  series: [
    { name: t.apple, color: COLORS.apple, values: perDay('apple') },
    { name: t.google, color: COLORS.google, values: perDay('google') },
  ],
})}
<p class="muted small">${t.removals.replace('{a}', formatNumber(l, stats.wallets.apple.removals)).replace('{g}', formatNumber(l, stats.wallets.google.removals))}</p>
</section>
<section class="panel" aria-labelledby="funnel-chart-title">
<h2 id="funnel-chart-title" class="visually-hidden">${t.funnelChart}</h2>
${
  sources.length === 0
    ? html`<p class="muted">${t.noData}</p>`
    : barChart({
        lang: l,
        id: 'chart-funnel',
        title: t.funnelChart,
        categoryHeader: t.source,
        categories: sources.map((s) => sourceName(s.source)),
        series: [
          { name: t.views, color: COLORS.views, values: sources.map((s) => s.views) },
          { name: t.cards, color: COLORS.cards, values: sources.map((s) => s.cardsIssued) },
          { name: t.installs, color: COLORS.installs, values: sources.map((s) => s.cardsInstalled) },
        ],
      })
}
<div class="table-wrap"><table>
<caption>${t.funnelChart}</caption>
<thead><tr><th scope="col">${t.source}</th><th scope="col" class="num">${t.views}</th><th scope="col" class="num">${t.cards}</th><th scope="col" class="num">${t.installs}</th><th scope="col" class="num">${t.viewToInstall}</th></tr></thead>
<tbody>${stats.bySource.map(
          (s) => html`<tr><th scope="row">${sourceName(s.source)}</th><td class="num">${formatNumber(l, s.views)}</td><td class="num">${formatNumber(l, s.cardsIssued)}</td><td class="num">${formatNumber(l, s.cardsInstalled)}</td><td class="num">${rate(s.viewToInstall)}</td></tr>`,
        )}</tbody></table></div>
</section>
<section class="panel" aria-labelledby="leaderboard-title">
<h2 id="leaderboard-title">${t.leaderboard}</h2>
${
  stats.leaderboard.length === 0
    ? html`<p class="muted">${t.noData}</p>`
    : html`${barChart({
        lang: l,
        id: 'chart-leaderboard',
        title: t.leaderboard,
        categoryHeader: t.week,
        categories: stats.leaderboard.map((w) => w.week),
        series: topStaff.map(([staffId, s], i) => ({
          name: s.name,
          color: STAFF_COLORS[i],
          values: stats.leaderboard.map((w) => w.staff.find((x) => x.staffId === staffId)?.installs ?? 0),
        })),
      })}
${[...stats.leaderboard].reverse().map(
  (w) => html`<div class="table-wrap"><table data-week="${w.week}">
<caption>${t.week} ${w.week} (${formatDate(l, 'UTC', `${w.weekStart}T12:00:00Z`)})</caption>
<thead><tr><th scope="col" class="num">${t.rank}</th><th scope="col">${t.staff}</th><th scope="col" class="num">${t.installs}</th></tr></thead>
<tbody>${w.staff.map((s) => html`<tr><td class="num">${s.rank}</td><th scope="row">${s.name}</th><td class="num">${formatNumber(l, s.installs)}</td></tr>`)}</tbody>
</table></div>`,
)}`
}
</section>
${migration.totals.imported === 0 ? '' : migrationSection(l, migration)}
<section class="panel" aria-labelledby="staff-title">
<h2 id="staff-title">${t.byStaff}</h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.staff}</th><th scope="col" class="num">${t.views}</th><th scope="col" class="num">${t.cards}</th><th scope="col" class="num">${t.installs}</th><th scope="col" class="num">${t.viewToInstall}</th></tr></thead>
<tbody>${stats.byStaff.map(
          (s) => html`<tr><th scope="row">${staffName(s)}</th><td class="num">${formatNumber(l, s.views)}</td><td class="num">${formatNumber(l, s.cardsIssued)}</td><td class="num">${formatNumber(l, s.cardsInstalled)}</td><td class="num">${rate(s.viewToInstall)}</td></tr>`,
        )}</tbody></table></div>
</section>`;
      return kit.page(request, reply, { title: t.title, body });
    });
  },
};

/** «Переход с пластика в кошелёк»: the migration funnel (GET /api/v1/stats/migration), shown once a base was imported. */
function migrationSection(l: Lang, m: MigrationStats) {
  const t = T[l];
  const steps: Array<[string, keyof MigrationStats['totals'], keyof MigrationStats['totals'] | null]> = [
    [t.imported, 'imported', null],
    [t.invited, 'invited', 'invitedRate'],
    [t.opened, 'opened', 'openedRate'],
    [t.installedStep, 'installed', 'installedRate'],
    [t.purchased, 'purchased', 'purchasedRate'],
  ];
  const stores = m.byStore.slice(0, 12);
  const n = (v: number) => formatNumber(l, v);
  const pct = (v: number | null) => formatPercent(l, v);
  return html`<section class="panel" aria-labelledby="migration-title" data-section="migration">
<h2 id="migration-title">${t.migration}</h2>
<p class="lead"><strong data-total="moved">${t.moved}: ${pct(m.totals.installedRate)}</strong> (${n(m.totals.installed)} / ${n(m.totals.imported)}; ${t.apple} — ${n(m.totals.apple)}, ${t.google} — ${n(m.totals.google)})</p>
${barChart({
  lang: l,
  id: 'chart-migration',
  title: t.migrationSteps,
  categoryHeader: t.step,
  categories: steps.map(([label]) => label),
  series: [{ name: t.cards, color: COLORS.installs, values: steps.map(([, key]) => Number(m.totals[key])) }],
})}
<div class="table-wrap"><table data-table="migration-stores">
<caption>${t.migration}: ${t.store}</caption>
<thead><tr><th scope="col">${t.store}</th>${steps.map(([label]) => html`<th scope="col" class="num">${label}</th>`)}<th scope="col" class="num">${t.moved}</th></tr></thead>
<tbody>${stores.map(
    (s) => html`<tr><th scope="row">${s.store ?? t.noStore}</th>${steps.map(([, key]) => html`<td class="num">${n(Number(s[key]))}</td>`)}<td class="num">${pct(s.installedRate)}</td></tr>`,
  )}</tbody></table></div>
<div class="table-wrap"><table data-table="migration-weeks">
<caption>${t.migrationWeeks}</caption>
<thead><tr><th scope="col">${t.week}</th>${steps.slice(1).map(([label]) => html`<th scope="col" class="num">${label}</th>`)}</tr></thead>
<tbody>${[...m.stepsByWeek].reverse().slice(0, 26).map(
    (w) => html`<tr><th scope="row">${w.week}</th><td class="num">${n(w.invited)}</td><td class="num">${n(w.opened)}</td><td class="num">${n(w.installed)}</td><td class="num">${n(w.purchased)}</td></tr>`,
  )}</tbody></table></div>
<p class="muted small">${t.migrationNote}</p>
</section>`;
}
