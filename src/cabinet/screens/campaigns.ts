import { programName } from '../../i18n/format.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Audience, CreateCampaign } from '../../campaigns/schemas.js';
import { SEGMENT_CODES, SEGMENT_NAMES, segmentCounts, thresholdsOf, type SegmentCode } from '../../campaigns/segments.js';
import { audienceSize as countAudience, type CampaignRow, type CampaignService } from '../../campaigns/service.js';
import { DEFAULT_CONTROL_SHARE, DEFAULT_EFFECT_WINDOW_DAYS, type CampaignDto, type CampaignEffect } from '../../campaigns/schemas.js';
import type { ProgramRow } from '../../db/schema.js';
import { AppError } from '../../http/errors.js';
import { html, type SafeHtml } from '../../http/html.js';
import type { LoyaltyRules } from '../../loyalty/rules.js';
import type { Texts } from '../../programs/schemas.js';
import { getProgramOr404 } from '../../programs/service.js';
import { comparisonChart } from '../charts.js';
import { count, formatDateTime, formatMoney, formatNumber, formatPercent, parseWhole, texts, zonedLocalToUtc, type Lang } from '../i18n.js';
import { formBody, UUID_RE, uuidParam, type Screen } from '../kit.js';
import { csrfInput, errorSummary, field, formText, formValues, notice, select, textarea, type FieldErrors } from '../layout.js';
import { couponSelectOptions } from './coupons.js';
import { findDefinition } from '../../coupons/repository.js';

/**
 * «Рассылки» (owner, marketer): wallet push campaigns on top of src/campaigns (the same
 * `CampaignService` as `/api/v1/campaigns`). Write the message in Russian and English with a live
 * preview of the lock-screen notification and of the card's back, choose the audience (tiers and/or
 * RFM segments; nothing chosen = everybody) with its size shown, then send now, save a draft or
 * schedule; the campaign page follows the progress live (polling) and shows the delivery figures.
 * Only cards with marketing consent are ever targeted (the service's rule).
 */
const T = texts({
  ru: {
    title: 'Рассылки',
    lead: 'Сообщение появится на экране блокировки у владельцев карт и останется на обороте карты как текущая акция. Получают только те, кто согласился на рассылку.',
    create: 'Новая рассылка',
    none: 'Рассылок пока нет.',
    name: 'Название (видно только в кабинете)',
    message: 'Сообщение',
    messageRu: 'Текст по-русски',
    messageEn: 'Текст по-английски',
    messageHint: 'До 300 символов. Короче — лучше: на экране блокировки видно 2–3 строки.',
    audience: 'Кому',
    audienceHint: 'Ничего не выбрано — всем картам с согласием на рассылку. Уровень и сегмент вместе — карты, подходящие под оба.',
    tiers: 'Уровни',
    segments: 'Сегменты',
    size: (n: string) => `Получат: ${n}`,
    cards: (n: number) => count('ru', n, 'cards'),
    bonus: 'Бонус к сообщению, баллов',
    bonusHint: 'Необязательно: начислится каждому получателю.',
    coupon: 'Купон каждому получателю',
    couponHint: 'Необязательно: каждый получатель получит один купон. В списке — включённые купоны.',
    noCoupon: 'без купона',
    schedule: 'Отправить в',
    scheduleHint: (tz: string) => `Время в поясе ${tz}. Пусто — без расписания.`,
    sendNow: 'Отправить сейчас',
    save: 'Сохранить (по расписанию или черновиком)',
    preview: 'Предпросмотр',
    lockScreen: (l: string) => `Экран блокировки (${l})`,
    back: 'Оборот карты',
    now: 'сейчас',
    promo: 'Текущая акция',
    contacts: 'Контакты',
    terms: 'Условия программы',
    placeholder: 'Текст сообщения',
    status: 'Состояние',
    statuses: { draft: 'черновик', scheduled: 'запланирована', sending: 'отправляется', sent: 'отправлена', cancelled: 'отменена' } as Record<string, string>,
    created: 'Создана',
    scheduled: 'Запланирована на',
    started: 'Начата',
    finished: 'Завершена',
    progress: 'Ход отправки',
    targeted: 'Получателей',
    processed: 'Обработано',
    delivered: 'Доставлено',
    skipped: 'Пропущено',
    delivery: 'Доставка',
    applePushes: 'Apple: пушей принято',
    appleFailed: 'Apple: пушей с ошибкой',
    applePending: 'Apple: пушей ждут повтора (сбой APNs)',
    appleReached: 'Apple: карт получили пуш',
    appleFetched: 'Apple: обновлённых карт загружено',
    googleUpdated: 'Google: карт обновлено',
    googleNotified: 'Google: уведомлений',
    googleDowngraded: 'Google: без звука (лимит 3 в сутки)',
    googlePending: 'Google: карт ждут повтора (сбой Google)',
    googleFailed: 'Google: карт не обновлено (отказ Google)',
    awaiting: 'Ждём отчётов кошельков',
    everybody: 'все с согласием на рассылку',
    automation: 'автоматическая',
    sendNowButton: 'Отправить сейчас',
    cancel: 'Отменить',
    cancelConfirm: 'Отменить рассылку? Ещё не отправленные сообщения не уйдут.',
    list: 'Все рассылки',
    open: 'Открыть',
    errors: {
      name: 'Укажите название.',
      message: 'Напишите текст на обоих языках (до 300 символов).',
      schedule: 'Укажите дату и время в будущем.',
      bonus: 'Введите целое число баллов.',
      coupon: 'Выберите купон из списка.',
      campaign_not_sendable: 'Эту рассылку уже нельзя отправить.',
      campaign_not_cancellable: 'Эту рассылку уже нельзя отменить.',
    },
    unavailable: 'Рассылки недоступны: модуль рассылок не подключён.',
    controlShare: 'Контрольная группа, %',
    controlHint: 'Эта доля аудитории не получит сообщения: по ней видно, сколько купили бы и без рассылки. 0 — без контроля, до 50.',
    windowDays: 'Считать эффект, дней',
    windowHint: 'Сколько дней после отправки сравнивать покупки получателей и контрольной группы.',
    control: 'Контрольная группа',
    heldOut: 'Не получили (контроль)',
    effect: 'Эффект рассылки',
    effectWindow: (from: string, to: string) => `Покупки с ${from} по ${to}.`,
    effectOpen: 'Окно ещё открыто: цифры предварительные.',
    noControl: 'Контрольной группы нет — нельзя сказать, сколько купили бы и без рассылки.',
    group: 'Группа',
    treated: 'Получатели',
    controlGroup: 'Контроль',
    holders: 'Карт',
    buyers: 'Купили',
    conversion: 'Доля купивших',
    perHolder: 'Выручка на карту',
    purchasesPerHolder: 'Покупок на карту',
    averageCheck: 'Средний чек',
    difference: 'Разница',
    pp: 'п. п.',
    interval: (low: string, high: string) => `95 % интервал: от ${low} до ${high}`,
    verdictUp: (buyers: string, revenue: string) => `Рассылка принесла примерно ${buyers} покупателей и ${revenue} выручки сверх того, что было бы без неё.`,
    verdictNone: 'Разница с контрольной группой не отличима от случайной: по этим данным эффект не доказан.',
    verdictDown: 'Получатели купили меньше, чем контрольная группа.',
    reactivated: (t1: string, n1: string, t2: string, n2: string) => `Вернулись: получатели — ${t1} из ${n1}, контрольная группа — ${t2} из ${n2}.`,
    method: 'Доля купивших — разность долей с z-интервалом; выручка и покупки на карту — t-критерий Уэлча.',
    errorsControl: 'Введите целое число от 0 до 50.',
    errorsWindow: 'Введите целое число дней от 1 до 90.',
  },
  en: {
    title: 'Campaigns',
    lead: 'The message shows on the lock screen of card holders and stays on the back of the card as the current offer. Only holders who agreed to marketing get it.',
    create: 'New campaign',
    none: 'No campaigns yet.',
    name: 'Name (only seen in the cabinet)',
    message: 'Message',
    messageRu: 'Text in Russian',
    messageEn: 'Text in English',
    messageHint: 'Up to 300 characters. Shorter is better: the lock screen shows 2–3 lines.',
    audience: 'Audience',
    audienceHint: 'Nothing chosen: every card with marketing consent. A tier and a segment together: cards matching both.',
    tiers: 'Tiers',
    segments: 'Segments',
    size: (n) => `Recipients: ${n}`,
    cards: (n) => count('en', n, 'cards'),
    bonus: 'Bonus with the message, points',
    bonusHint: 'Optional: every recipient gets it.',
    coupon: 'Coupon for each recipient',
    couponHint: 'Optional: every recipient gets one coupon. The list shows the coupons switched on.',
    noCoupon: 'no coupon',
    schedule: 'Send at',
    scheduleHint: (tz) => `Time in ${tz}. Empty: no schedule.`,
    sendNow: 'Send now',
    save: 'Save (scheduled, or as a draft)',
    preview: 'Preview',
    lockScreen: (l) => `Lock screen (${l})`,
    back: 'Back of the card',
    now: 'now',
    promo: 'Current offer',
    contacts: 'Contacts',
    terms: 'Programme terms',
    placeholder: 'Message text',
    status: 'Status',
    statuses: { draft: 'draft', scheduled: 'scheduled', sending: 'sending', sent: 'sent', cancelled: 'cancelled' },
    created: 'Created',
    scheduled: 'Scheduled for',
    started: 'Started',
    finished: 'Finished',
    progress: 'Progress',
    targeted: 'Recipients',
    processed: 'Processed',
    delivered: 'Delivered',
    skipped: 'Skipped',
    delivery: 'Delivery',
    applePushes: 'Apple: pushes accepted',
    appleFailed: 'Apple: pushes failed',
    applePending: 'Apple: pushes waiting for a retry (APNs failure)',
    appleReached: 'Apple: cards reached',
    appleFetched: 'Apple: updated passes downloaded',
    googleUpdated: 'Google: cards updated',
    googleNotified: 'Google: notifications',
    googleDowngraded: 'Google: silent (3-a-day limit)',
    googlePending: 'Google: cards waiting for a retry (Google failure)',
    googleFailed: 'Google: cards refused by Google',
    awaiting: 'Waiting for wallet reports',
    everybody: 'everybody with marketing consent',
    automation: 'automation',
    sendNowButton: 'Send now',
    cancel: 'Cancel',
    cancelConfirm: 'Cancel the campaign? Messages not yet sent will not go out.',
    list: 'All campaigns',
    open: 'Open',
    errors: {
      name: 'Enter a name.',
      message: 'Write the text in both languages (up to 300 characters).',
      schedule: 'Enter a date and time in the future.',
      bonus: 'Enter a whole number of points.',
      coupon: 'Choose a coupon from the list.',
      campaign_not_sendable: 'This campaign can no longer be sent.',
      campaign_not_cancellable: 'This campaign can no longer be cancelled.',
    },
    unavailable: 'Campaigns are not available: the campaign module is not wired in.',
    controlShare: 'Control group, %',
    controlHint: 'This share of the audience gets no message: it shows how many would have bought anyway. 0 = no control, up to 50.',
    windowDays: 'Measure the effect over, days',
    windowHint: 'How many days after sending to compare the purchases of the recipients and of the control group.',
    control: 'Control group',
    heldOut: 'Held back (control)',
    effect: 'Campaign effect',
    effectWindow: (from, to) => `Purchases from ${from} to ${to}.`,
    effectOpen: 'The window is still open: the figures are preliminary.',
    noControl: 'No control group: there is no telling how many would have bought anyway.',
    group: 'Group',
    treated: 'Recipients',
    controlGroup: 'Control',
    holders: 'Cards',
    buyers: 'Bought',
    conversion: 'Share who bought',
    perHolder: 'Revenue per card',
    purchasesPerHolder: 'Purchases per card',
    averageCheck: 'Average check',
    difference: 'Difference',
    pp: 'pp',
    interval: (low, high) => `95 % interval: ${low} to ${high}`,
    verdictUp: (buyers, revenue) => `The campaign brought about ${buyers} buyers and ${revenue} of revenue beyond what would have come without it.`,
    verdictNone: 'The difference from the control group is within chance: these figures do not show an effect.',
    verdictDown: 'Recipients bought less than the control group.',
    reactivated: (t1, n1, t2, n2) => `Came back: recipients ${t1} of ${n1}, control group ${t2} of ${n2}.`,
    method: 'Share who bought: difference of proportions with a z interval; revenue and purchases per card: Welch’s t-test.',
    errorsControl: 'Enter a whole number from 0 to 50.',
    errorsWindow: 'Enter a whole number of days from 1 to 90.',
  },
});
type Msg = (typeof T)['ru'];

const CSS = `
.previews{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.previews figure{margin:0;flex:1 1 15rem;max-width:20rem}
.previews figcaption{font-weight:700;margin:0 0 .4rem}
.lock{background:linear-gradient(160deg,#25314f,#5b3f6e 60%,#a2586b);border-radius:22px;padding:1rem .75rem 1.5rem;color:#fff;min-height:13rem}
.lock .clock{text-align:center;font-size:2.6rem;font-weight:200;margin:.25rem 0 1rem}
.lock .bubble{background:rgba(245,245,245,.85);color:#111;border-radius:14px;padding:.55rem .7rem;display:flex;gap:.55rem;align-items:flex-start}
.lock .bubble img{width:1.9rem;height:1.9rem;border-radius:7px;flex:none;background:#fff}
.lock .grow{flex:1}
.lock .head{display:flex;justify-content:space-between;font-size:.8rem;color:#444}
.lock .head strong{color:#111;text-transform:uppercase;letter-spacing:.02em}
.lock .text{font-size:.92rem;white-space:pre-wrap;word-break:break-word}
.back{background:#fff;border:1px solid #c4c7cf;border-radius:14px;padding:.5rem .9rem}
.back dt{font-size:.75rem;text-transform:uppercase;color:#5f6470;margin-top:.5rem}
.back dd{margin:0 0 .25rem;white-space:pre-wrap;word-break:break-word}
.checks{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem}
progress{width:100%;height:1.1rem}
`;

/** The effect against the control group: a verdict in words, the two groups, charts with intervals. */
function effectSection(l: Lang, t: Msg, currency: string, timeZone: string, e: CampaignEffect): SafeHtml {
  const money = (minor: number | null) => (minor === null ? '—' : formatMoney(l, currency, Math.round(minor)));
  const signed = (text: string, value: number) => (value > 0 ? `+${text}` : value < 0 ? `−${text.replace(/^-/, '')}` : text);
  const pp = (share: number) => signed(`${formatNumber(l, Math.round(share * 1000) / 10)} ${t.pp}`, share);
  const pct = (share: number | null) => formatPercent(l, share);
  const num = (value: number | null) => (value === null ? '—' : formatNumber(l, value));
  const date = (iso: string) => formatDateTime(l, timeZone, iso);
  const c = e.control;
  let verdict = t.noControl;
  if (c && e.conversion) {
    const up = e.conversion.significant && e.conversion.difference > 0;
    const down = e.conversion.significant && e.conversion.difference < 0;
    verdict = up && e.incremental ? t.verdictUp(formatNumber(l, Math.round(e.incremental.buyers.estimate)), money(e.incremental.revenue.estimate)) : down ? t.verdictDown : t.verdictNone;
  }
  const row = (label: string, g: CampaignEffect['treated']) =>
    html`<tr><th scope="row">${label}</th><td class="num">${num(g.holders)}</td><td class="num">${num(g.buyers)}</td><td class="num">${pct(g.conversion)}</td><td class="num">${money(g.revenuePerHolder)}</td><td class="num">${num(g.purchasesPerHolder)}</td><td class="num">${money(g.averageCheck)}</td></tr>`;
  const diffText = (d: { difference: number; low: number; high: number } | null, f: (v: number) => string) =>
    d ? html`${f(d.difference)} <span class="muted small">(${t.interval(f(d.low), f(d.high))})</span>` : '—';
  const moneySigned = (v: number) => signed(money(Math.abs(v)), v);
  return html`<section class="panel" aria-labelledby="effect-title" data-effect>
<h2 id="effect-title">${t.effect}</h2>
<p>${t.effectWindow(date(e.window.start), date(e.window.end))}${e.window.complete ? '' : html` <strong>${t.effectOpen}</strong>`}</p>
<p class="notice${c && e.conversion?.significant && e.conversion.difference > 0 ? '' : ' warn'}" role="status" data-verdict>${verdict}</p>
${e.reactivated && c ? html`<p data-reactivated>${t.reactivated(formatNumber(l, e.reactivated.treated), formatNumber(l, e.treated.holders), formatNumber(l, e.reactivated.control), formatNumber(l, c.holders))}</p>` : ''}
<div class="table-wrap"><table data-table="effect">
<thead><tr><th scope="col">${t.group}</th><th scope="col" class="num">${t.holders}</th><th scope="col" class="num">${t.buyers}</th><th scope="col" class="num">${t.conversion}</th><th scope="col" class="num">${t.perHolder}</th><th scope="col" class="num">${t.purchasesPerHolder}</th><th scope="col" class="num">${t.averageCheck}</th></tr></thead>
<tbody>${row(t.treated, e.treated)}${c ? row(t.controlGroup, c) : ''}
${c ? html`<tr><th scope="row">${t.difference}</th><td></td><td></td><td class="num">${diffText(e.conversion, pp)}</td><td class="num">${diffText(e.revenuePerHolder, moneySigned)}</td><td class="num">${diffText(e.purchasesPerHolder, (v) => signed(formatNumber(l, Math.round(v * 100) / 100), v))}</td><td class="num">${e.averageCheck ? moneySigned(e.averageCheck.difference) : '—'}</td></tr>` : ''}</tbody>
</table></div>
${c ? html`<div class="grid">
${comparisonChart({
  lang: l,
  id: 'chart-effect-conversion',
  title: t.conversion,
  treatedLabel: t.treated,
  controlLabel: t.controlGroup,
  differenceLabel: t.difference,
  treated: e.treated.conversion ?? 0,
  control: c.conversion ?? 0,
  interval: e.conversion,
  format: (v) => pct(v),
  formatDifference: pp,
  summary: `${t.conversion}: ${t.treated} ${pct(e.treated.conversion)}, ${t.controlGroup} ${pct(c.conversion)}${e.conversion ? `; ${t.difference} ${pp(e.conversion.difference)}, ${t.interval(pp(e.conversion.low), pp(e.conversion.high))}` : ''}`,
})}
${comparisonChart({
  lang: l,
  id: 'chart-effect-revenue',
  title: t.perHolder,
  treatedLabel: t.treated,
  controlLabel: t.controlGroup,
  differenceLabel: t.difference,
  treated: e.treated.revenuePerHolder ?? 0,
  control: c.revenuePerHolder ?? 0,
  interval: e.revenuePerHolder,
  format: (v) => money(v),
  formatDifference: moneySigned,
  summary: `${t.perHolder}: ${t.treated} ${money(e.treated.revenuePerHolder)}, ${t.controlGroup} ${money(c.revenuePerHolder)}${e.revenuePerHolder ? `; ${t.difference} ${moneySigned(e.revenuePerHolder.difference)}, ${t.interval(moneySigned(e.revenuePerHolder.low), moneySigned(e.revenuePerHolder.high))}` : ''}`,
})}
</div>
<p class="muted small">${t.method}</p>` : ''}
</section>`;
}

function audienceOf(body: Record<string, unknown>, program: ProgramRow): { tiers?: string[]; segments?: SegmentCode[] } {
  const known = (program.rules as LoyaltyRules).tiers.map((t) => t.code);
  const tiers = formValues(body, 'tiers').filter((t) => known.includes(t));
  const segments = formValues(body, 'segments').filter((s): s is SegmentCode => (SEGMENT_CODES as readonly string[]).includes(s));
  return { ...(tiers.length ? { tiers: [...new Set(tiers)] } : {}), ...(segments.length ? { segments: [...new Set(segments)] } : {}) };
}

export const campaignsScreen: Screen = {
  nav: { path: '/app/campaigns', label: { ru: 'Рассылки', en: 'Campaigns' }, access: 'marketing', group: 'marketing' },
  routes: async (app, { kit }) => {
    const { ctx } = kit;
    const { db } = ctx;

    function service(): CampaignService {
      if (!kit.campaigns) throw new AppError(503, 'campaigns_unavailable', T.en.unavailable);
      return kit.campaigns;
    }

    /** Cards the audience reaches now: the service's own audience statement, counted. */
    const audienceSize = (program: ProgramRow, audience: { tiers?: string[]; segments?: SegmentCode[] }) => countAudience(db, program, audience, ctx.clock());

    const statusBadge = (t: Msg, status: string) =>
      html`<span class="badge${status === 'sent' ? ' ok' : status === 'cancelled' ? ' warn' : ''}" data-field="status">${t.statuses[status] ?? status}</span>`;

    // ---- list ---------------------------------------------------------------------------------
    app.get('/app/campaigns', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const rows = await service().list(session.programId, { limit: 100 });
      return kit.page(request, reply, {
        title: t.title,
        body: html`<h1>${t.title}</h1>
<p>${t.lead}</p>
<p><a class="button" href="/app/campaigns/new">${t.create}</a></p>
<section class="panel" aria-labelledby="list-title">
<h2 id="list-title">${t.list}</h2>
${
  rows.length === 0
    ? html`<p class="muted">${t.none}</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.name}</th><th scope="col">${t.status}</th><th scope="col">${t.created}</th><th scope="col" class="num">${t.processed}</th></tr></thead>
<tbody>${rows.map(
        (row) => html`<tr><td><a href="/app/campaigns/${row.id}">${row.name}</a>${row.automation ? html` <span class="badge">${t.automation}</span>` : ''}</td>
<td>${statusBadge(t, row.status)}</td><td>${formatDateTime(l, session.timeZone, row.created_at)}</td>
<td class="num">${formatNumber(l, row.processed + row.skipped)} / ${formatNumber(l, row.targeted)}</td></tr>`,
      )}</tbody></table></div>`
}
</section>`,
      });
    });

    // ---- new ----------------------------------------------------------------------------------
    interface FormState {
      status?: number;
      values: Record<string, string>;
      tiers: string[];
      segments: string[];
      errors?: FieldErrors;
      formError?: string;
    }

    async function newForm(request: FastifyRequest, reply: FastifyReply, state: FormState) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const rules = program.rules as LoyaltyRules;
      const counts = await segmentCounts(db, program.id, thresholdsOf(program.segments), ctx.clock());
      const size = await audienceSize(program, {
        ...(state.tiers.length ? { tiers: state.tiers } : {}),
        ...(state.segments.length ? { segments: state.segments as SegmentCode[] } : {}),
      });
      const v = state.values;
      const errors = state.errors ?? {};
      const programTexts = program.texts as Texts;
      const couponOptions = await couponSelectOptions(db, program.id, l, program.currency, ctx.clock(), t.noCoupon);
      const box = (name: string, value: string, label: string, checked: boolean) => {
        const id = `f-${name}-${value}`;
        return html`<div class="check"><input id="${id}" type="checkbox" name="${name}" value="${value}"${checked ? html` checked` : ''}><label for="${id}">${label}</label></div>`;
      };
      const lock = (lang: Lang) => html`<figure>
<figcaption>${t.lockScreen(lang === 'ru' ? 'RU' : 'EN')}</figcaption>
<div class="lock" role="img" aria-label="${t.lockScreen(lang === 'ru' ? 'RU' : 'EN')}" data-preview="lock-${lang}">
<div class="clock" aria-hidden="true">9:41</div>
<div class="bubble"><img src="/app/design/images/icon.png" alt=""><div class="grow"><div class="head"><strong>${programName(program, lang)}</strong><span>${t.now}</span></div>
<div class="text" data-preview-slot="msg-${lang}" data-placeholder="${t.placeholder}">${v[`message_${lang}`] || t.placeholder}</div></div></div>
</div>
</figure>`;
      const body = html`<h1>${t.create}</h1>
${errorSummary(l, errors, state.formError)}
<form method="post" action="/app/campaigns" novalidate data-audience-url="/app/campaigns/audience" data-preview-scope>
${csrfInput(session.csrf)}
<div class="grid">
<section class="panel" aria-labelledby="message-title">
<h2 id="message-title">${t.message}</h2>
${field({ name: 'name', label: t.name, value: v.name, errors, attrs: html` maxlength="200" required` })}
${textarea({ name: 'message_ru', label: t.messageRu, value: v.message_ru, hint: t.messageHint, errors, attrs: html` maxlength="300" lang="ru" data-preview-text="msg-ru"` })}
${textarea({ name: 'message_en', label: t.messageEn, value: v.message_en, errors, attrs: html` maxlength="300" lang="en" data-preview-text="msg-en"` })}
</section>
<section class="panel" aria-labelledby="preview-title">
<h2 id="preview-title">${t.preview}</h2>
<div class="previews" data-preview-root>
${lock('ru')}
${lock('en')}
<figure>
<figcaption>${t.back}</figcaption>
<dl class="back" data-preview="back">
<dt>${t.promo}</dt><dd data-preview-slot="msg-${l}" data-placeholder="${t.placeholder}">${v[`message_${l}`] || t.placeholder}</dd>
${programTexts.contacts?.[l] ? html`<dt>${t.contacts}</dt><dd>${programTexts.contacts[l]}</dd>` : ''}
${programTexts.terms?.[l] ? html`<dt>${t.terms}</dt><dd>${programTexts.terms[l]}</dd>` : ''}
</dl>
</figure>
</div>
</section>
</div>
<section class="panel" aria-labelledby="audience-title">
<h2 id="audience-title">${t.audience}</h2>
<p class="hint">${t.audienceHint}</p>
<fieldset><legend>${t.tiers}</legend><div class="checks">${rules.tiers.map((tier) => box('tiers', tier.code, tier.name[l], state.tiers.includes(tier.code)))}</div></fieldset>
<fieldset><legend>${t.segments}</legend><div class="checks">${counts.map((s) =>
        box('segments', s.code, `${s.name[l]} (${formatNumber(l, s.cards)})`, state.segments.includes(s.code)),
      )}</div></fieldset>
<p class="notice" aria-live="polite" data-audience-size><strong>${t.size(t.cards(size))}</strong></p>
</section>
<section class="panel" aria-labelledby="send-title">
<h2 id="send-title" class="visually-hidden">${t.sendNow}</h2>
<div class="row">
${field({ name: 'bonusPoints', label: t.bonus, value: v.bonusPoints, hint: t.bonusHint, errors, attrs: html` inputmode="numeric" maxlength="7"` })}
${field({ name: 'scheduledAt', label: t.schedule, type: 'datetime-local', value: v.scheduledAt, hint: t.scheduleHint(session.timeZone), errors })}
</div>
${select({ name: 'couponDefinitionId', label: t.coupon, value: v.couponDefinitionId, hint: t.couponHint, errors, options: couponOptions })}
<div class="row">
${field({ name: 'controlShare', label: t.controlShare, value: v.controlShare ?? String(DEFAULT_CONTROL_SHARE), hint: t.controlHint, errors, attrs: html` inputmode="numeric" maxlength="2"` })}
${field({ name: 'effectWindowDays', label: t.windowDays, value: v.effectWindowDays ?? String(DEFAULT_EFFECT_WINDOW_DAYS), hint: t.windowHint, errors, attrs: html` inputmode="numeric" maxlength="2"` })}
</div>
<div class="actions">
<button class="button large" type="submit" name="action" value="send">${t.sendNow}</button>
<button class="button secondary" type="submit" name="action" value="save">${t.save}</button>
</div>
</section>
</form>`;
      return kit.page(request, reply, { status: state.status, title: t.create, body, css: CSS, path: '/app/campaigns/new', active: '/app/campaigns' });
    }

    app.get('/app/campaigns/new', { config: { access: 'marketing' } }, async (request, reply) => {
      service();
      const q = request.query as Record<string, string | string[] | undefined>;
      const list = (name: string) => (Array.isArray(q[name]) ? (q[name] as string[]) : typeof q[name] === 'string' ? [q[name] as string] : []);
      return newForm(request, reply, { values: {}, tiers: list('tier'), segments: list('segment') });
    });

    app.get('/app/campaigns/audience', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const program = await getProgramOr404(db, session.programId);
      const n = await audienceSize(program, audienceOf(request.query as Record<string, unknown>, program));
      return reply.type('application/json').send({ count: n, text: t.size(t.cards(n)) });
    });

    app.post('/app/campaigns', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const campaigns = service();
      const body = formBody(request);
      const program = await getProgramOr404(db, session.programId);
      const values = {
        name: formText(body, 'name', 200),
        message_ru: formText(body, 'message_ru', 400),
        message_en: formText(body, 'message_en', 400),
        bonusPoints: formText(body, 'bonusPoints', 12),
        scheduledAt: formText(body, 'scheduledAt', 30),
        controlShare: formText(body, 'controlShare', 4),
        effectWindowDays: formText(body, 'effectWindowDays', 4),
        couponDefinitionId: formText(body, 'couponDefinitionId', 40),
      };
      const audience = audienceOf(body, program);
      const action = formText(body, 'action') === 'send' ? 'send' : 'save';
      const errors: FieldErrors = {};
      if (!values.name) errors.name = t.errors.name;
      if (!values.message_ru || values.message_ru.length > 300) errors.message_ru = t.errors.message;
      if (!values.message_en || values.message_en.length > 300) errors.message_en = t.errors.message;
      const bonus = values.bonusPoints ? parseWhole(values.bonusPoints) : 0;
      if (bonus === undefined || bonus > 1_000_000) errors.bonusPoints = t.errors.bonus;
      const controlShare = values.controlShare ? parseWhole(values.controlShare) : DEFAULT_CONTROL_SHARE;
      if (controlShare === undefined || controlShare > 50) errors.controlShare = t.errorsControl;
      const effectWindowDays = values.effectWindowDays ? parseWhole(values.effectWindowDays) : DEFAULT_EFFECT_WINDOW_DAYS;
      if (effectWindowDays === undefined || effectWindowDays < 1 || effectWindowDays > 90) errors.effectWindowDays = t.errorsWindow;
      // The select lists this program's definitions; anything else is refused at the field.
      if (values.couponDefinitionId && !(UUID_RE.test(values.couponDefinitionId) && (await findDefinition(db, program.id, values.couponDefinitionId.toLowerCase()))))
        errors.couponDefinitionId = t.errors.coupon;
      let scheduledAt: Date | undefined;
      if (action === 'save' && values.scheduledAt) {
        scheduledAt = zonedLocalToUtc(values.scheduledAt, session.timeZone);
        if (!scheduledAt || scheduledAt.getTime() <= ctx.clock().getTime()) errors.scheduledAt = t.errors.schedule;
      }
      const state = { values, tiers: audience.tiers ?? [], segments: audience.segments ?? [] };
      if (Object.keys(errors).length > 0) return newForm(request, reply, { ...state, status: 422, errors });
      const input: CreateCampaign = {
        name: values.name,
        message: { ru: values.message_ru, en: values.message_en },
        audience: (audience.tiers || audience.segments ? audience : { all: true }) as Audience,
        ...(bonus ? { bonusPoints: bonus } : {}),
        ...(values.couponDefinitionId ? { couponDefinitionId: values.couponDefinitionId.toLowerCase() } : {}),
        ...(scheduledAt ? { scheduledAt: scheduledAt.toISOString() } : {}),
        controlShare: controlShare!,
        effectWindowDays: effectWindowDays!,
      };
      let row: CampaignRow;
      try {
        row = await campaigns.create(program, input, `staff:${session.staffId}`, undefined, session.role === 'owner' ? 'unlimited' : 'capped');
        if (action === 'send') row = await campaigns.send(session.programId, row.id);
      } catch (error) {
        // A definition switched off (or over) since the form was shown: said at its field.
        if (error instanceof AppError && error.code.startsWith('coupon_definition_')) return newForm(request, reply, { ...state, status: 422, errors: { couponDefinitionId: t.errors.coupon } });
        if (error instanceof AppError && error.status < 500) return newForm(request, reply, { ...state, status: 422, formError: error.message });
        throw error;
      }
      return kit.redirect(reply, `/app/campaigns/${row.id}`);
    });

    // ---- one campaign -------------------------------------------------------------------------
    function figures(l: Lang, t: Msg, dto: CampaignDto): Record<string, string> {
      const n = (v: number) => formatNumber(l, v);
      const d = dto.delivery;
      return {
        status: t.statuses[dto.status] ?? dto.status,
        targeted: n(dto.progress.targeted),
        processed: n(dto.progress.processed),
        delivered: n(dto.progress.delivered),
        skipped: n(dto.progress.skipped),
        applePushes: n(d?.apple.pushesAccepted ?? 0),
        appleFailed: n(d?.apple.pushesFailed ?? 0),
        applePending: n(d?.apple.pushesPending ?? 0),
        appleReached: n(d?.apple.cardsReached ?? 0),
        appleFetched: n(d?.apple.passesFetched ?? 0),
        googleUpdated: n(d?.google.objectsUpdated ?? 0),
        googleNotified: n(d?.google.notificationsSent ?? 0),
        googleDowngraded: n(d?.google.notificationsDowngraded ?? 0),
        googlePending: n(d?.google.objectsPending ?? 0),
        googleFailed: n(d?.google.objectsFailed ?? 0),
        awaiting: n(d?.awaitingReports ?? 0),
      };
    }
    const percentOf = (dto: CampaignDto) => (dto.progress.targeted > 0 ? Math.round((dto.progress.processed / dto.progress.targeted) * 100) : dto.status === 'sent' ? 100 : 0);
    const isFinal = (dto: CampaignDto) => dto.status === 'sent' || dto.status === 'cancelled' || dto.status === 'draft';

    async function campaignPage(request: FastifyRequest, reply: FastifyReply, id: string, state: { status?: number; error?: string } = {}) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const campaigns = service();
      const program = await getProgramOr404(db, session.programId);
      const row = await campaigns.find(session.programId, id);
      const dto = await campaigns.toDto(row, { withDelivery: true });
      const effect = await campaigns.effect(row);
      const coupon = dto.couponDefinitionId ? await findDefinition(db, session.programId, dto.couponDefinitionId) : undefined;
      const f = figures(l, t, dto);
      const audience = dto.audience as Audience & { automation?: string };
      const rules = program.rules as LoyaltyRules;
      const audienceText = audience.automation
        ? `${t.automation}: ${audience.automation}`
        : audience.all
          ? t.everybody
          : [
              ...(audience.tiers ?? []).map((code) => rules.tiers.find((x) => x.code === code)?.name[l] ?? code),
              ...(audience.segments ?? []).map((code) => SEGMENT_NAMES[code as SegmentCode]?.[l] ?? code),
            ].join(', ');
      const when = (iso: string | null) => (iso ? formatDateTime(l, session.timeZone, iso) : '—');
      const figure = (key: string, label: string) => html`<div><dt>${label}</dt><dd data-field="${key}">${f[key]}</dd></div>`;
      const live = !isFinal(dto);
      const actions: SafeHtml[] = [];
      if (dto.status === 'draft' || dto.status === 'scheduled')
        actions.push(html`<form method="post" action="/app/campaigns/${dto.id}/send">${csrfInput(session.csrf)}<button class="button" type="submit">${t.sendNowButton}</button></form>`);
      if (dto.status !== 'sent' && dto.status !== 'cancelled')
        actions.push(
          html`<form method="post" action="/app/campaigns/${dto.id}/cancel" data-confirm="${t.cancelConfirm}">${csrfInput(session.csrf)}<button class="button danger" type="submit">${t.cancel}</button></form>`,
        );
      const body = html`<p><a href="/app/campaigns">${t.list}</a></p>
<h1>${dto.name}</h1>
${state.error ? notice(state.error, 'warn') : ''}
<section class="panel" aria-labelledby="progress-title"${live ? html` data-poll="/app/campaigns/${dto.id}/progress" data-reload-when-final` : ''}>
<h2 id="progress-title">${t.progress}</h2>
<p>${t.status}: <strong aria-live="polite">${statusBadge(t, dto.status)}</strong></p>
<progress max="100" value="${percentOf(dto)}" aria-label="${t.progress}">${percentOf(dto)} %</progress>
<dl class="figures">
${figure('targeted', t.targeted)}${figure('processed', t.processed)}${figure('delivered', t.delivered)}${figure('skipped', t.skipped)}
</dl>
<h3>${t.delivery}</h3>
<dl class="figures">
${figure('applePushes', t.applePushes)}${figure('appleFailed', t.appleFailed)}${figure('applePending', t.applePending)}${figure('appleReached', t.appleReached)}${figure('appleFetched', t.appleFetched)}
${ctx.links.googleEnabled ? html`${figure('googleUpdated', t.googleUpdated)}${figure('googleNotified', t.googleNotified)}${figure('googleDowngraded', t.googleDowngraded)}${figure('googlePending', t.googlePending)}${figure('googleFailed', t.googleFailed)}` : ''}
${figure('awaiting', t.awaiting)}
</dl>
${actions.length ? html`<div class="actions">${actions}</div>` : ''}
</section>
<section class="panel" aria-labelledby="details-title">
<h2 id="details-title">${t.message}</h2>
<dl class="details">
<dt>${t.messageRu}</dt><dd lang="ru">${dto.message.ru}</dd>
<dt>${t.messageEn}</dt><dd lang="en">${dto.message.en}</dd>
<dt>${t.audience}</dt><dd data-audience>${audienceText}</dd>
${dto.bonusPoints ? html`<dt>${t.bonus}</dt><dd>${formatNumber(l, dto.bonusPoints)}</dd>` : ''}
${coupon ? html`<dt>${t.coupon}</dt><dd data-coupon><a href="/app/coupons/${coupon.id}">${coupon.title[l]}</a></dd>` : ''}
<dt>${t.created}</dt><dd>${when(dto.createdAt)}</dd>
${dto.scheduledAt ? html`<dt>${t.scheduled}</dt><dd>${when(dto.scheduledAt)}</dd>` : ''}
${dto.startedAt ? html`<dt>${t.started}</dt><dd>${when(dto.startedAt)}</dd>` : ''}
${dto.finishedAt ? html`<dt>${t.finished}</dt><dd>${when(dto.finishedAt)}</dd>` : ''}
<dt>${t.control}</dt><dd data-field="control">${dto.control.share} % · ${t.heldOut}: ${formatNumber(l, dto.control.heldOut)}</dd>
</dl>
</section>
${effect ? effectSection(l, t, program.currency, session.timeZone, effect) : ''}`;
      return kit.page(request, reply, { status: state.status, title: dto.name, body, css: CSS, path: `/app/campaigns/${dto.id}`, active: '/app/campaigns' });
    }

    app.get<{ Params: { id: string } }>('/app/campaigns/:id', { config: { access: 'marketing' } }, async (request, reply) =>
      campaignPage(request, reply, uuidParam(request.params.id)),
    );

    app.get<{ Params: { id: string } }>('/app/campaigns/:id/progress', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const campaigns = service();
      const dto = await campaigns.toDto(await campaigns.find(session.programId, uuidParam(request.params.id)), { withDelivery: true });
      return reply.type('application/json').send({ status: dto.status, fields: figures(l, T[l], dto), percent: percentOf(dto), final: isFinal(dto) });
    });

    for (const action of ['send', 'cancel'] as const) {
      app.post<{ Params: { id: string } }>(`/app/campaigns/:id/${action}`, { config: { access: 'marketing' } }, async (request, reply) => {
        const session = kit.session(request);
        const t = T[kit.lang(request)];
        const id = uuidParam(request.params.id);
        try {
          if (action === 'send') await service().send(session.programId, id);
          else await service().cancel(session.programId, id);
        } catch (error) {
          if (error instanceof AppError && error.status === 409) {
            return campaignPage(request, reply, id, { status: 409, error: t.errors[error.code as 'campaign_not_sendable'] ?? error.message });
          }
          throw error;
        }
        return kit.redirect(reply, `/app/campaigns/${id}`);
      });
    }
  },
};
