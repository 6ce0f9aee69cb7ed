import { sql } from 'kysely';
import { localDay } from '../../enrollment/funnel.js';
import { funnelStats } from '../../enrollment/stats.js';
import { html } from '../../http/html.js';
import { getProgramOr404 } from '../../programs/service.js';
import { count, formatDate, formatNumber, formatPercent, texts } from '../i18n.js';
import { can, type Screen } from '../kit.js';

/**
 * «Обзор»: where `/app` lands. A cashier goes straight to the till; the owner and the marketer see
 * the last 30 days at a glance and the way to the screens they use.
 */
const T = texts({
  ru: {
    title: 'Обзор',
    period: 'За последние 30 дней',
    cards: 'Всего карт',
    issued: 'Выпущено карт',
    installed: 'Установлено в Wallet',
    views: 'Просмотров страницы',
    conversion: 'Просмотр → установка',
    go: 'Перейти',
    certificate: {
      expiring: (date: string, days: number) =>
        `Сертификат Apple Wallet (Pass Type ID) истекает ${date} — через ${count('ru', days, 'days')}. После этого карты в Apple Wallet перестанут обновляться. Продлите сертификат в Apple Developer и замените его на сервере (docs/operations.md, «Продление сертификата»).`,
      expired: (date: string) =>
        `Сертификат Apple Wallet (Pass Type ID) истёк ${date}: карты в Apple Wallet не обновляются и новые не выпускаются. Продлите сертификат в Apple Developer и замените его на сервере.`,
    },
    links: {
      cashier: ['Касса', 'Найти карту, начислить и списать баллы, вернуть покупку.'],
      stats: ['Статистика', 'Установки по дням, воронка по источникам, рейтинг сотрудников.'],
      campaigns: ['Рассылки', 'Сообщения на экран блокировки по сегментам и уровням.'],
      settings: ['Настройки', 'Правила, уровни, бонусы, тексты и точки продаж.'],
      staff: ['Сотрудники', 'Роли, пароли и ссылки для входа.'],
    } as Record<string, [string, string]>,
  },
  en: {
    title: 'Overview',
    period: 'Last 30 days',
    cards: 'Cards in total',
    issued: 'Cards issued',
    installed: 'Installed in Wallet',
    views: 'Join page views',
    conversion: 'View → install',
    go: 'Open',
    certificate: {
      expiring: (date: string, days: number) =>
        `The Apple Wallet certificate (Pass Type ID) expires on ${date}, in ${count('en', days, 'days')}. After that, cards in Apple Wallet stop updating. Renew it in Apple Developer and replace it on the server (docs/operations.md, Certificate renewal).`,
      expired: (date: string) =>
        `The Apple Wallet certificate (Pass Type ID) expired on ${date}: cards in Apple Wallet no longer update and new ones cannot be issued. Renew it in Apple Developer and replace it on the server.`,
    },
    links: {
      cashier: ['Till', 'Find a card, accrue and redeem points, refund a purchase.'],
      stats: ['Statistics', 'Installs per day, the funnel by source, the staff leaderboard.'],
      campaigns: ['Campaigns', 'Lock-screen messages to segments and tiers.'],
      settings: ['Settings', 'Rules, tiers, bonuses, texts and stores.'],
      staff: ['Staff', 'Roles, passwords and sign-in links.'],
    },
  },
});

const SHORTCUTS = [
  { key: 'cashier', path: '/app/cashier', access: 'cashier' },
  { key: 'stats', path: '/app/stats', access: 'marketing' },
  { key: 'campaigns', path: '/app/campaigns', access: 'marketing' },
  { key: 'settings', path: '/app/settings', access: 'owner' },
  { key: 'staff', path: '/app/staff', access: 'owner' },
] as const;

export const homeScreen: Screen = {
  nav: { path: '/app', label: { ru: 'Обзор', en: 'Overview' }, access: 'marketing', group: 'marketing' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;
    app.get('/app', { config: { access: 'signed-in' } }, async (request, reply) => {
      const session = kit.session(request);
      if (session.role === 'cashier') return kit.redirect(reply, '/app/cashier');
      const l = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const to = localDay(kit.ctx.clock(), program.time_zone);
      const from = new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10);
      const [stats, total] = await Promise.all([
        funnelStats(db, program, { from, to }),
        db.selectFrom('card').select(sql<number>`count(*)::int`.as('n')).where('program_id', '=', program.id).executeTakeFirstOrThrow(),
      ]);
      const shortcuts = SHORTCUTS.filter((s) => can(session.role, s.access));
      // The owner is told when the Apple certificate nears expiry (30 days): pushes stop with it.
      const certificate = session.role === 'owner' ? kit.ctx.certificates.report().certificates.find((c) => c.certificate === 'pass_type_id') : undefined;
      const certificateNotice =
        certificate && certificate.state !== 'ok'
          ? html`<div class="notice warn" role="alert" data-certificate-expiry>${
              certificate.state === 'expired'
                ? t.certificate.expired(formatDate(l, program.time_zone, certificate.notAfter))
                : t.certificate.expiring(formatDate(l, program.time_zone, certificate.notAfter), certificate.daysLeft)
            }</div>`
          : '';
      return kit.page(request, reply, {
        title: t.title,
        body: html`<h1>${t.title}</h1>
${certificateNotice}
<section class="panel" aria-labelledby="period-title">
<h2 id="period-title">${t.period}</h2>
<dl class="figures">
<div><dt>${t.cards}</dt><dd>${formatNumber(l, Number(total.n))}</dd></div>
<div><dt>${t.views}</dt><dd>${formatNumber(l, stats.totals.views)}</dd></div>
<div><dt>${t.issued}</dt><dd>${formatNumber(l, stats.totals.cardsIssued)}</dd></div>
<div><dt>${t.installed}</dt><dd>${formatNumber(l, stats.totals.cardsInstalled)}</dd></div>
<div><dt>${t.conversion}</dt><dd>${formatPercent(l, stats.totals.viewToInstall)}</dd></div>
</dl>
</section>
<div class="grid">${shortcuts.map(
          (s) => html`<section class="panel"><h2>${t.links[s.key][0]}</h2><p>${t.links[s.key][1]}</p><p><a class="button secondary" href="${s.path}">${t.go}<span class="visually-hidden">: ${t.links[s.key][0]}</span></a></p></section>`,
        )}</div>`,
      });
    });
  },
};
