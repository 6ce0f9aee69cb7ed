import type { FastifyReply, FastifyRequest } from 'fastify';
import { AutomationSettingsSchema, automationsDto, saveAutomations, settingsOf, type AutomationKind } from '../../campaigns/automations.js';
import { automationEffect } from '../../campaigns/effect.js';
import type { CampaignRow } from '../../campaigns/service.js';
import type { Localized } from '../../db/schema.js';
import { AppError } from '../../http/errors.js';
import { html, type SafeHtml } from '../../http/html.js';
import type { LoyaltyRules } from '../../loyalty/rules.js';
import { getProgramOr404 } from '../../programs/service.js';
import { count, formatDateTime, formatNumber, parseWhole, texts, type Lang } from '../i18n.js';
import { formBody, type Screen } from '../kit.js';
import { csrfInput, errorSummary, field, formText, notice, select, textarea, type FieldErrors } from '../layout.js';
import { couponSelectOptions } from './coupons.js';
import { issuableDefinitions } from '../../coupons/repository.js';

/**
 * «Автоматизации» (owner, marketer — as `GET/PUT /api/v1/automations`): the four automations of
 * src/campaigns/automations.ts (birthday, win-back, points expiry, tier upgrade), each with its
 * switch, its Russian and English texts and its settings, and the campaigns it has made. The form
 * is the whole settings object, like the API's PUT: it is validated by the same `nextSettings`
 * (schema `AutomationSettingsSchema`, the expiry rule, the switch-on moments), and a value the
 * schema refuses is shown next to its field.
 */
const T = texts({
  ru: {
    title: 'Автоматизации',
    lead: 'Сообщения, которые уходят сами, когда наступает повод: день рождения, клиент уснул, баллы скоро сгорят, новый уровень. Каждый повод — отдельная рассылка в списке рассылок. По умолчанию всё выключено.',
    sendHour: 'Час отправки',
    sendHourHint: (tz: string) => `Ежедневные автоматизации (день рождения, возврат, сгорание) уходят с этого часа по поясу ${tz}, 0–23.`,
    enabled: 'Включено',
    since: (when: string) => `включено с ${when}`,
    off: 'выключено',
    messageRu: 'Текст по-русски',
    messageEn: 'Текст по-английски',
    messageHint: (n: number) => `До ${n} символов.`,
    save: 'Сохранить автоматизации',
    saved: 'Автоматизации сохранены.',
    recent: 'Последние рассылки',
    none: 'Рассылок ещё не было.',
    name: 'Рассылка',
    status: 'Состояние',
    created: 'Создана',
    processed: 'Обработано',
    statuses: { draft: 'черновик', scheduled: 'запланирована', sending: 'отправляется', sent: 'отправлена', cancelled: 'отменена' } as Record<string, string>,
    kinds: {
      birthday: ['День рождения', 'В день рождения владельца карты (29 февраля — 28-го в невисокосный год): поздравление и бонусные баллы. Только с согласием на рассылку.'],
      winback: ['Возврат уснувших', 'Когда карта попадает в сегмент «Сони» или «Потерянные» (после включения). Только с согласием на рассылку.'],
      expiry: ['Сгорание баллов', 'Напоминание перед сгоранием баллов, затем сообщение о сгорании. Служебное сообщение: согласие не нужно.'],
      tierUpgrade: ['Новый уровень', 'Когда карта переходит на уровень выше. Служебное сообщение: согласие не нужно.'],
    } as Record<AutomationKind, [string, string]>,
    bonusPoints: 'Подарок, баллов',
    coupon: 'Купон каждому получателю',
    couponHint: 'Необязательно: вместе с сообщением карта получит один купон. В списке — включённые купоны.',
    noCoupon: 'без купона',
    controlShare: 'Контрольная группа, %',
    controlHint: 'Эта доля карт не получает сообщение (повод у них тоже считается использованным): по ней видно, работает ли автоматизация.',
    effect90: 'Эффект за 90 дней',
    effectLine: (tb: string, tn: string, cb: string, cn: string) => `Купили в течение 14 дней: получатели — ${tb} из ${tn}, контрольная группа — ${cb} из ${cn}.`,
    effectDiff: (d: string, low: string, high: string) => `Разница ${d} (95 % интервал: от ${low} до ${high}).`,
    effectNone: 'Пока нечего сравнивать.',
    pp: 'п. п.',
    reminderRu: 'Напоминание по-русски',
    reminderEn: 'Напоминание по-английски',
    expiredRu: 'О сгорании по-русски',
    expiredEn: 'О сгорании по-английски',
    placeholders: (list: string) => `Подстановки: ${list}.`,
    expiryRule: (days: number, before: number) => `По правилам программы баллы сгорают через ${count('ru', days, 'days')} без покупок; напоминание — за ${count('ru', before, 'days')}.`,
    noExpiryRule: 'В правилах программы сгорание баллов не задано — включить эту автоматизацию нельзя.',
    setRule: 'Задать в настройках правил',
    askOwner: 'Его задаёт владелец в настройках.',
    errors: {
      sendHour: 'Час — целое число от 0 до 23.',
      bonusPoints: (max: string) => `Целое число баллов от 0 до ${max}.`,
      message: (n: number) => `Напишите текст: от 1 до ${n} символов.`,
      enabled: 'Неверное значение переключателя.',
      controlShare: 'Целое число от 0 до 50.',
      coupon: 'Выберите купон из списка.',
      expiry_rule_missing: 'Сначала задайте сгорание баллов в правилах программы (Настройки → Правила).',
      invalid: 'Настройки не сохранены:',
    },
  },
  en: {
    title: 'Automations',
    lead: 'Messages that go out by themselves when their occasion comes: a birthday, a customer who drifted away, points about to expire, a new tier. Each occasion becomes a campaign in the campaign list. Everything is off until switched on.',
    sendHour: 'Sending hour',
    sendHourHint: (tz) => `Daily automations (birthday, win-back, expiry) send from this hour in ${tz}, 0–23.`,
    enabled: 'On',
    since: (when) => `on since ${when}`,
    off: 'off',
    messageRu: 'Text in Russian',
    messageEn: 'Text in English',
    messageHint: (n) => `Up to ${n} characters.`,
    save: 'Save automations',
    saved: 'Automations saved.',
    recent: 'Recent campaigns',
    none: 'No campaigns yet.',
    name: 'Campaign',
    status: 'Status',
    created: 'Created',
    processed: 'Processed',
    statuses: { draft: 'draft', scheduled: 'scheduled', sending: 'sending', sent: 'sent', cancelled: 'cancelled' },
    kinds: {
      birthday: ['Birthday', "On the holder's birthday (Feb 29 → Feb 28 in common years): a greeting and bonus points. Only with marketing consent."],
      winback: ['Win-back', 'When a card enters the Sleeping or Lost segment (after switching on). Only with marketing consent.'],
      expiry: ['Points expiry', 'A reminder before points expire, then a message when they do. A service message: no consent needed.'],
      tierUpgrade: ['Tier upgrade', 'When a card moves up a tier. A service message: no consent needed.'],
    },
    bonusPoints: 'Gift, points',
    coupon: 'Coupon for each recipient',
    couponHint: 'Optional: with the message the card gets one coupon. The list shows the coupons switched on.',
    noCoupon: 'no coupon',
    controlShare: 'Control group, %',
    controlHint: 'This share of the cards gets no message (their occasion is used up all the same): it shows whether the automation works.',
    effect90: 'Effect over 90 days',
    effectLine: (tb, tn, cb, cn) => `Bought within 14 days: recipients ${tb} of ${tn}, control group ${cb} of ${cn}.`,
    effectDiff: (d, low, high) => `Difference ${d} (95 % interval: ${low} to ${high}).`,
    effectNone: 'Nothing to compare yet.',
    pp: 'pp',
    reminderRu: 'Reminder in Russian',
    reminderEn: 'Reminder in English',
    expiredRu: 'Expiry message in Russian',
    expiredEn: 'Expiry message in English',
    placeholders: (list) => `Placeholders: ${list}.`,
    expiryRule: (days, before) => `By the programme rules points expire after ${count('en', days, 'days')} without a purchase; the reminder comes ${count('en', before, 'days')} before.`,
    noExpiryRule: 'The programme rules have no points expiry: this automation cannot be switched on.',
    setRule: 'Set it in the rules',
    askOwner: 'The owner sets it in the settings.',
    errors: {
      sendHour: 'The hour is a whole number from 0 to 23.',
      bonusPoints: (max) => `A whole number of points from 0 to ${max}.`,
      message: (n) => `Write the text: 1 to ${n} characters.`,
      enabled: 'Invalid switch value.',
      controlShare: 'A whole number from 0 to 50.',
      coupon: 'Choose a coupon from the list.',
      expiry_rule_missing: 'Set points expiry in the programme rules first (Settings → Rules).',
      invalid: 'The settings were not saved:',
    },
  },
});
type Msg = (typeof T)['ru'];

const KINDS: AutomationKind[] = ['birthday', 'winback', 'expiry', 'tierUpgrade'];
/** The `campaign.automation` values each automation writes. */
const CAMPAIGN_AUTOMATIONS: Record<AutomationKind, string[]> = {
  birthday: ['birthday'],
  winback: ['winback'],
  expiry: ['expiry_reminder', 'expiry'],
  tierUpgrade: ['tier_upgrade'],
};
/** The texts of each automation (field `<kind>_<text>_<lang>`), with their labels and placeholders. */
const TEXTS: Record<AutomationKind, Array<{ key: string; ru: keyof Msg; en: keyof Msg; placeholders?: string }>> = {
  birthday: [{ key: 'message', ru: 'messageRu', en: 'messageEn' }],
  winback: [{ key: 'message', ru: 'messageRu', en: 'messageEn' }],
  expiry: [
    { key: 'reminderMessage', ru: 'reminderRu', en: 'reminderEn', placeholders: '{points}, {date}' },
    { key: 'expiredMessage', ru: 'expiredRu', en: 'expiredEn', placeholders: '{points}' },
  ],
  tierUpgrade: [{ key: 'message', ru: 'messageRu', en: 'messageEn', placeholders: '{tier}' }],
};

// Limits shown in the form come from the schema the service validates with.
const MESSAGE_MAX = AutomationSettingsSchema.properties.birthday.properties.message.properties.ru.maxLength ?? 300;
const BONUS_MAX = AutomationSettingsSchema.properties.birthday.properties.bonusPoints.maximum ?? 1_000_000;

const textFields = (kind: AutomationKind) => TEXTS[kind].flatMap((x) => [`${kind}_${x.key}_ru`, `${kind}_${x.key}_en`]);
/** Automations with a standing control group (tier upgrades have none). */
const CONTROL_KINDS = ['birthday', 'winback', 'expiry'] as const;
/** Automations that can hand out a coupon (`couponDefinitionId`). */
const COUPON_KINDS = ['birthday', 'winback'] as const;
const FIELDS = [
  'sendHour',
  'birthday_bonusPoints',
  ...CONTROL_KINDS.map((kind) => `${kind}_controlShare`),
  ...COUPON_KINDS.map((kind) => `${kind}_couponDefinitionId`),
  ...KINDS.flatMap((kind) => [`${kind}_enabled`, ...textFields(kind)]),
];

/** The form's values from stored settings. */
function formValuesOf(settings: ReturnType<typeof settingsOf>): Record<string, string> {
  const values: Record<string, string> = { sendHour: String(settings.sendHour), birthday_bonusPoints: String(settings.birthday.bonusPoints) };
  for (const kind of CONTROL_KINDS) values[`${kind}_controlShare`] = String(settings[kind].controlShare);
  for (const kind of COUPON_KINDS) values[`${kind}_couponDefinitionId`] = settings[kind].couponDefinitionId ?? '';
  for (const kind of KINDS) {
    const section = settings[kind] as unknown as Record<string, Localized | boolean>;
    values[`${kind}_enabled`] = section.enabled ? 'on' : '';
    for (const { key } of TEXTS[kind]) {
      const text = section[key] as Localized;
      values[`${kind}_${key}_ru`] = text.ru;
      values[`${kind}_${key}_en`] = text.en;
    }
  }
  return values;
}

/**
 * The PUT body the form stands for. Numbers that do not parse are passed on as typed, so the
 * service's schema refuses them (and says where).
 */
function inputOf(values: Record<string, string>): Record<string, unknown> {
  const num = (raw: string) => parseWhole(raw) ?? raw;
  const input: Record<string, unknown> = { sendHour: num(values.sendHour) };
  for (const kind of KINDS) {
    const section: Record<string, unknown> = { enabled: values[`${kind}_enabled`] === 'on' };
    for (const { key } of TEXTS[kind]) section[key] = { ru: values[`${kind}_${key}_ru`], en: values[`${kind}_${key}_en`] };
    input[kind] = section;
  }
  (input.birthday as Record<string, unknown>).bonusPoints = num(values.birthday_bonusPoints);
  for (const kind of CONTROL_KINDS) (input[kind] as Record<string, unknown>).controlShare = num(values[`${kind}_controlShare`] ?? '');
  // Empty = no coupon (the setting is dropped).
  for (const kind of COUPON_KINDS) if (values[`${kind}_couponDefinitionId`]) (input[kind] as Record<string, unknown>).couponDefinitionId = values[`${kind}_couponDefinitionId`];
  return input;
}

/** The service's schema errors ("/birthday/message/ru: …") as messages next to their fields. */
function fieldErrors(l: Lang, problems: string[]): { errors: FieldErrors; rest: string[] } {
  const t = T[l];
  const errors: FieldErrors = {};
  const rest: string[] = [];
  for (const problem of problems) {
    const path = problem.split(':')[0] ?? '';
    const name = path.slice(1).replace(/\//g, '_');
    const target = FIELDS.find((f) => name === f || name.startsWith(`${f}_`));
    if (!target) rest.push(problem);
    else if (!errors[target])
      errors[target] =
        target === 'sendHour'
          ? t.errors.sendHour
          : target === 'birthday_bonusPoints'
            ? t.errors.bonusPoints(formatNumber(l, BONUS_MAX))
            : target.endsWith('_controlShare')
              ? t.errors.controlShare
              : target.endsWith('_couponDefinitionId')
              ? t.errors.coupon
              : target.endsWith('_enabled')
              ? t.errors.enabled
              : t.errors.message(MESSAGE_MAX);
  }
  return { errors, rest };
}

export const automationsScreen: Screen = {
  nav: { path: '/app/automations', label: { ru: 'Автоматизации', en: 'Automations' }, access: 'marketing', group: 'marketing' },
  routes: async (app, { kit }) => {
    const { ctx } = kit;
    const { db } = ctx;

    interface State {
      status?: number;
      values?: Record<string, string>;
      errors?: FieldErrors;
      formError?: string;
      info?: string;
    }

    async function render(request: FastifyRequest, reply: FastifyReply, state: State) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const rules = program.rules as LoyaltyRules;
      const dto = automationsDto(settingsOf(program.automations), rules);
      const v = state.values ?? formValuesOf(settingsOf(program.automations));
      const errors = state.errors ?? {};
      const recent = new Map<AutomationKind, CampaignRow[]>();
      if (kit.campaigns) {
        for (const kind of KINDS) recent.set(kind, await kit.campaigns.list(session.programId, { limit: 5, automations: CAMPAIGN_AUTOMATIONS[kind] }));
      }
      const when = (d: Date | string) => formatDateTime(l, session.timeZone, d);
      const now = ctx.clock();
      const effects = new Map<AutomationKind, Awaited<ReturnType<typeof automationEffect>>>();
      for (const kind of CONTROL_KINDS) {
        effects.set(kind, await automationEffect(db, session.programId, CAMPAIGN_AUTOMATIONS[kind].filter((a) => a !== 'expiry'), { from: new Date(now.getTime() - 90 * 86_400_000), to: now }, now));
      }
      const effectOf = (kind: AutomationKind): SafeHtml | '' => {
        if (!(CONTROL_KINDS as readonly string[]).includes(kind)) return '';
        const e = effects.get(kind);
        const pp = (v: number) => `${v > 0 ? '+' : v < 0 ? '−' : ''}${formatNumber(l, Math.abs(Math.round(v * 1000) / 10))} ${t.pp}`;
        return html`<div class="effect-summary" data-effect="${kind}"><h3>${t.effect90}</h3>${
          e && e.control
            ? html`<p>${t.effectLine(formatNumber(l, e.treated.buyers), formatNumber(l, e.treated.holders), formatNumber(l, e.control.buyers), formatNumber(l, e.control.holders))}
${e.conversion ? t.effectDiff(pp(e.conversion.difference), pp(e.conversion.low), pp(e.conversion.high)) : ''}</p>`
            : html`<p class="muted">${t.effectNone}</p>`
        }</div>`;
      };
      const stored = settingsOf(program.automations);
      const couponOptions = new Map<string, Array<{ value: string; label: string }>>();
      for (const kind of COUPON_KINDS) {
        couponOptions.set(kind, await couponSelectOptions(db, session.programId, l, program.currency, now, t.noCoupon, stored[kind].couponDefinitionId));
      }
      const couponField = (kind: AutomationKind) =>
        (COUPON_KINDS as readonly string[]).includes(kind)
          ? select({ name: `${kind}_couponDefinitionId`, label: t.coupon, value: v[`${kind}_couponDefinitionId`], hint: t.couponHint, errors, options: couponOptions.get(kind) ?? [] })
          : '';
      const controlField = (kind: AutomationKind) =>
        (CONTROL_KINDS as readonly string[]).includes(kind)
          ? field({ name: `${kind}_controlShare`, label: t.controlShare, value: v[`${kind}_controlShare`], hint: t.controlHint, errors, attrs: html` inputmode="numeric" maxlength="2"` })
          : '';

      const toggle = (kind: AutomationKind) => {
        const name = `${kind}_enabled`;
        const id = `f-${name}`;
        const error = errors[name];
        const since = dto[kind].enabledSince;
        return html`<div class="check">
<input id="${id}" name="${name}" type="checkbox" role="switch" value="on"${v[name] === 'on' ? html` checked` : ''}${error ? html` aria-invalid="true" aria-describedby="${id}-error"` : ''}>
<label for="${id}">${t.enabled}</label>
</div>
${error ? html`<p class="error" id="${id}-error">${error}</p>` : ''}
<p class="small muted" data-state="${kind}">${since ? t.since(when(since)) : t.off}</p>`;
      };

      const texts = (kind: AutomationKind) =>
        TEXTS[kind].map(
          (x) => html`${x.placeholders ? html`<p class="hint">${t.placeholders(x.placeholders)}</p>` : ''}<div class="row">
${textarea({ name: `${kind}_${x.key}_ru`, label: t[x.ru] as string, value: v[`${kind}_${x.key}_ru`], hint: t.messageHint(MESSAGE_MAX), errors, attrs: html` maxlength="${MESSAGE_MAX}" lang="ru"` })}
${textarea({ name: `${kind}_${x.key}_en`, label: t[x.en] as string, value: v[`${kind}_${x.key}_en`], hint: t.messageHint(MESSAGE_MAX), errors, attrs: html` maxlength="${MESSAGE_MAX}" lang="en"` })}
</div>`,
        );

      const campaigns = (kind: AutomationKind): SafeHtml | '' => {
        if (!kit.campaigns) return '';
        const rows = recent.get(kind) ?? [];
        return html`<h3 id="recent-${kind}">${t.recent}</h3>
${
  rows.length === 0
    ? html`<p class="muted" data-recent="${kind}">${t.none}</p>`
    : html`<div class="table-wrap"><table data-recent="${kind}" aria-labelledby="recent-${kind}">
<thead><tr><th scope="col">${t.name}</th><th scope="col">${t.status}</th><th scope="col">${t.created}</th><th scope="col" class="num">${t.processed}</th></tr></thead>
<tbody>${rows.map(
        (row) => html`<tr><td><a href="/app/campaigns/${row.id}">${row.name}</a></td><td><span class="badge${row.status === 'sent' ? ' ok' : ''}">${t.statuses[row.status] ?? row.status}</span></td>
<td>${when(row.created_at)}</td><td class="num">${formatNumber(l, row.processed + row.skipped)} / ${formatNumber(l, row.targeted)}</td></tr>`,
      )}</tbody></table></div>`
}`;
      };

      const expiryRule = rules.expiry
        ? html`<p>${t.expiryRule(rules.expiry.inactivityDays, rules.expiry.reminderDaysBefore)}</p>`
        : html`<p class="notice warn" data-no-expiry-rule>${t.noExpiryRule} ${session.role === 'owner' ? html`<a href="/app/settings/rules">${t.setRule}</a>` : t.askOwner}</p>`;

      const section = (kind: AutomationKind, extra: SafeHtml | '' = '') => html`<section class="panel" aria-labelledby="auto-${kind}" data-automation="${kind}">
<h2 id="auto-${kind}">${t.kinds[kind][0]}</h2>
<p>${t.kinds[kind][1]}</p>
${kind === 'expiry' ? expiryRule : ''}
${toggle(kind)}
${extra}
${couponField(kind)}
${controlField(kind)}
${texts(kind)}
${effectOf(kind)}
${campaigns(kind)}
</section>`;

      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        path: '/app/automations',
        body: html`<h1>${t.title}</h1>
<p>${t.lead}</p>
${state.info ? notice(state.info) : ''}
${errorSummary(l, errors, state.formError)}
<form method="post" action="/app/automations" novalidate>
${csrfInput(session.csrf)}
<div class="panel">
${field({ name: 'sendHour', label: t.sendHour, value: v.sendHour, hint: t.sendHourHint(session.timeZone), errors, attrs: html` inputmode="numeric" maxlength="2"` })}
</div>
${section('birthday', field({ name: 'birthday_bonusPoints', label: t.bonusPoints, value: v.birthday_bonusPoints, errors, attrs: html` inputmode="numeric" maxlength="9"` }))}
${section('winback')}
${section('expiry')}
${section('tierUpgrade')}
<div class="actions"><button class="button large" type="submit">${t.save}</button></div>
</form>`,
      });
    }

    app.get('/app/automations', { config: { access: 'marketing' } }, async (request, reply) =>
      render(request, reply, { info: (request.query as Record<string, string>).saved ? T[kit.lang(request)].saved : undefined }),
    );

    app.post('/app/automations', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const body = formBody(request);
      const values = Object.fromEntries(FIELDS.map((f) => [f, formText(body, f, f.endsWith('_ru') || f.endsWith('_en') ? 2000 : 40)]));
      // A new coupon must be one the select offers (switched on, this program's); the one stored may stay.
      const program = await getProgramOr404(db, session.programId);
      const previous = settingsOf(program.automations);
      const issuable = new Set((await issuableDefinitions(db, session.programId, ctx.clock())).map((d) => d.id));
      const couponErrors: FieldErrors = {};
      for (const kind of COUPON_KINDS) {
        const chosen = values[`${kind}_couponDefinitionId`]!;
        if (chosen && chosen !== previous[kind].couponDefinitionId && !issuable.has(chosen)) couponErrors[`${kind}_couponDefinitionId`] = t.errors.coupon;
      }
      if (Object.keys(couponErrors).length > 0) return render(request, reply, { status: 422, values, errors: couponErrors });
      try {
        // The same save as PUT /api/v1/automations.
        await saveAutomations(db, session.programId, inputOf(values), ctx.clock(), session.role === 'owner' ? 'unlimited' : 'capped');
      } catch (error) {
        if (error instanceof AppError && error.code === 'expiry_rule_missing') {
          return render(request, reply, { status: 422, values, errors: { expiry_enabled: t.errors.expiry_rule_missing } });
        }
        if (error instanceof AppError && error.code.startsWith('coupon_definition_')) {
          return render(request, reply, { status: 422, values, formError: `${t.errors.invalid} ${t.errors.coupon}` });
        }
        if (error instanceof AppError && error.code === 'campaign_bonus_over_cap') {
          return render(request, reply, { status: 422, values, errors: { birthday_bonusPoints: error.message } });
        }
        if (error instanceof AppError && error.code === 'invalid_automations') {
          const { errors, rest } = fieldErrors(l, (error.details?.errors as string[] | undefined) ?? []);
          return render(request, reply, { status: 422, values, errors, formError: rest.length ? `${t.errors.invalid} ${rest.join('; ')}` : undefined });
        }
        throw error;
      }
      return kit.redirect(reply, '/app/automations?saved=1');
    });
  },
};
