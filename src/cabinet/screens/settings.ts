import type { FastifyReply, FastifyRequest } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import type { ProgramRow } from '../../db/schema.js';
import { AppError } from '../../http/errors.js';
import { html, type SafeHtml } from '../../http/html.js';
import type { LoyaltyRules } from '../../loyalty/rules.js';
import { UpdateProgramSchema, type Texts, type UpdateProgram } from '../../programs/schemas.js';
import { getProgramOr404, updateProgram } from '../../programs/service.js';
import { moneyInputValue, parseDecimal, parseMoney, parseWhole, texts, type Lang } from '../i18n.js';
import { formBody, type Screen } from '../kit.js';
import { checkbox, csrfInput, errorSummary, field, formText, notice, select, textarea, type FieldErrors } from '../layout.js';

/**
 * «Настройки» (owner): the program's general settings, loyalty rules (tiers, bonuses, redemption
 * cap, expiry), back-of-card texts and store locations. Each section is its own form and saves
 * through `updateProgram`, the same call as `PATCH /api/v1/programs/{id}`: rules are validated as a
 * whole, and a change that shows on the pass sends every card down the update path.
 */
const SECTIONS = ['general', 'rules', 'texts', 'locations'] as const;
type Section = (typeof SECTIONS)[number];
const TEXT_KEYS = ['promo', 'contacts', 'terms', 'referral', 'consent'] as const;
const MAX_LOCATIONS = 10;

const T = texts({
  ru: {
    title: 'Настройки программы',
    saved: 'Сохранено. Карты в телефонах обновятся в ближайшие минуты.',
    save: 'Сохранить',
    general: 'Программа',
    name: 'Название',
    defaultLanguage: 'Язык по умолчанию',
    currency: 'Валюта (ISO 4217)',
    timeZone: 'Часовой пояс',
    timeZoneHint: 'По нему считаются дни в статистике и время рассылок.',
    rules: 'Правила',
    tiers: 'Уровни',
    tiersHint: 'Снизу вверх: первый уровень — с нуля, пороги растут. Чтобы добавить уровень, заполните пустую строку; чтобы убрать — отметьте «удалить».',
    tierCode: 'Код для API',
    tierCodeHint: 'Необязательно: без него код получится из английского названия.',
    tierRu: 'Название (рус.)',
    tierEn: 'Название (англ.)',
    tierPercent: 'Начисление, %',
    tierThreshold: (c: string) => `Порог покупок, ${c}`,
    tierRemove: 'удалить',
    tierRow: (n: number) => `Уровень ${n}`,
    newTier: 'Новый уровень',
    welcomeBonus: 'Бонус за регистрацию, баллов',
    inviterBonus: 'Бонус пригласившему, баллов',
    inviteeBonus: 'Бонус приглашённому, баллов',
    grantOn: 'Когда начислять реферальные бонусы',
    grantOnEnrollment: 'при регистрации друга',
    grantOnPurchase: 'после первой покупки друга',
    maxPercent: 'Баллами можно оплатить не больше, % чека',
    pointValue: (c: string) => `Стоимость балла, ${c}`,
    expiryDays: 'Срок жизни баллов без покупок, дней',
    expiryDaysHint: 'Пусто — не сгорают.',
    reminderDays: 'Напомнить о сгорании заранее, за сколько дней',
    downgrade: 'Понижать уровень при возврате покупки',
    referralsPerDay: 'Оплачиваемых приглашений с сайта в сутки на участника',
    referralsPerDayHint: 'Сверх этого пригласивший не получает бонус за приглашённых через страницу регистрации.',
    campaignBonusCap: 'Маркетолог может начислить в рассылке не больше, баллов',
    campaignBonusCapHint: 'На карту за рассылку или поздравление с днём рождения. Владельца не ограничивает.',
    textsTitle: 'Тексты на обороте карты',
    text: { promo: 'Текущая акция', contacts: 'Контакты', terms: 'Условия программы', referral: 'Приглашение друга', consent: 'Текст согласия на рассылку (страница регистрации)' },
    ru: 'по-русски',
    en: 'по-английски',
    locations: 'Точки продаж',
    locationsHint: 'До 10 точек: карта появится на экране блокировки рядом с ними. Пустые строки не сохраняются.',
    latitude: 'Широта',
    longitude: 'Долгота',
    relevantRu: 'Текст на экране блокировки (рус.)',
    relevantEn: 'Текст на экране блокировки (англ.)',
    location: (n: number) => `Точка ${n}`,
    errors: {
      required: 'Заполните поле.',
      whole: 'Введите целое число.',
      decimal: 'Введите число, например 5 или 7,5.',
      money: 'Введите сумму, например 50000.',
      currency: 'Три заглавные латинские буквы, например RUB.',
      timeZone: 'Неизвестный часовой пояс.',
      tierCode: 'Латиница в нижнем регистре, цифры и _, начиная с буквы (например gold).',
      coordinate: 'Введите координату, например 55.7558.',
      rules: 'Правила не сохранены:',
      invalid: 'Проверьте значения:',
    },
  },
  en: {
    title: 'Programme settings',
    saved: 'Saved. Cards on phones update within minutes.',
    save: 'Save',
    general: 'Programme',
    name: 'Name',
    defaultLanguage: 'Default language',
    currency: 'Currency (ISO 4217)',
    timeZone: 'Time zone',
    timeZoneHint: 'Statistics count days in it; campaigns are scheduled in it.',
    rules: 'Rules',
    tiers: 'Tiers',
    tiersHint: 'Lowest first: the first tier starts at zero and thresholds increase. Fill the empty row to add a tier; tick “remove” to drop one.',
    tierCode: 'Code for the API',
    tierCodeHint: 'Optional: without one the code is made from the English name.',
    tierRu: 'Name (Russian)',
    tierEn: 'Name (English)',
    tierPercent: 'Accrual, %',
    tierThreshold: (c) => `Spend threshold, ${c}`,
    tierRemove: 'remove',
    tierRow: (n) => `Tier ${n}`,
    newTier: 'New tier',
    welcomeBonus: 'Welcome bonus, points',
    inviterBonus: 'Inviter bonus, points',
    inviteeBonus: 'Invitee bonus, points',
    grantOn: 'When referral bonuses are granted',
    grantOnEnrollment: 'when the friend enrolls',
    grantOnPurchase: "after the friend's first purchase",
    maxPercent: 'Points may pay at most, % of a check',
    pointValue: (c) => `Value of a point, ${c}`,
    expiryDays: 'Points expire after this many days without a purchase',
    expiryDaysHint: 'Empty: points never expire.',
    reminderDays: 'Remind this many days before',
    downgrade: 'Lower the tier when a purchase is refunded',
    referralsPerDay: 'Paid join-page referrals per member per day',
    referralsPerDayHint: 'Past this, the inviter gets no bonus for people who joined through the join page.',
    campaignBonusCap: 'Most bonus points a marketer may grant',
    campaignBonusCapHint: 'Per card, in a campaign or the birthday greeting. Owners are not limited.',
    textsTitle: 'Texts on the back of the card',
    text: { promo: 'Current offer', contacts: 'Contacts', terms: 'Programme terms', referral: 'Invite a friend', consent: 'Marketing consent text (join page)' },
    ru: 'in Russian',
    en: 'in English',
    locations: 'Stores',
    locationsHint: 'Up to 10 stores: the card shows on the lock screen near them. Empty rows are not saved.',
    latitude: 'Latitude',
    longitude: 'Longitude',
    relevantRu: 'Lock-screen text (Russian)',
    relevantEn: 'Lock-screen text (English)',
    location: (n) => `Store ${n}`,
    errors: {
      required: 'Fill in this field.',
      whole: 'Enter a whole number.',
      decimal: 'Enter a number, e.g. 5 or 7.5.',
      money: 'Enter an amount, e.g. 50000.',
      currency: 'Three capital letters, e.g. RUB.',
      timeZone: 'Unknown time zone.',
      tierCode: 'Lower-case Latin letters, digits and _, starting with a letter (e.g. gold).',
      coordinate: 'Enter a coordinate, e.g. 55.7558.',
      rules: 'The rules were not saved:',
      invalid: 'Check the values:',
    },
  },
});
type Msg = (typeof T)['ru'];

type Values = Record<string, string>;

/** "Gold Plus" → "gold_plus"; "Золото" (nothing Latin) → "tier_3"; made unique against `taken`. */
export function tierCodeFrom(english: string, index: number, taken: string[]): string {
  const base = english.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^[^a-z]+|_+$/g, '').slice(0, 28) || `tier_${index + 1}`;
  let code = base;
  for (let n = 2; taken.includes(code); n++) code = `${base}_${n}`;
  return code;
}

/**
 * The time zone is picked from the list the runtime knows (Intl), each with its current UTC offset,
 * instead of typed: a typo was an "unknown time zone" error. Computed once.
 */
let zones: { value: string; label: string }[] | undefined;
function timeZoneOptions(current: string): { value: string; label: string }[] {
  zones ??= (Intl as unknown as { supportedValuesOf(key: string): string[] }).supportedValuesOf('timeZone').map((zone) => {
    const offset = new Intl.DateTimeFormat('en', { timeZone: zone, timeZoneName: 'shortOffset' }).formatToParts(new Date()).find((p) => p.type === 'timeZoneName')?.value ?? '';
    return { value: zone, label: `${zone.replace(/_/g, ' ')} (${offset})` };
  });
  return zones.some((z) => z.value === current) || !current ? zones : [{ value: current, label: current }, ...zones];
}

/** The form values of the program as it is now. */
function valuesOf(program: ProgramRow, lang: Lang): Values {
  const rules = program.rules as LoyaltyRules;
  const textsNow = program.texts as Texts;
  // "50000", "1250,50": how the owner's language writes a number (parseMoney reads either mark).
  const money = (minor: number) => moneyInputValue(program.currency, minor, lang);
  const v: Values = {
    name: program.name,
    defaultLanguage: program.default_language,
    currency: program.currency,
    timeZone: program.time_zone,
    welcomeBonus: String(rules.welcomeBonus),
    inviterBonus: String(rules.referral.inviterBonus),
    inviteeBonus: String(rules.referral.inviteeBonus),
    grantOn: rules.referral.grantOn,
    maxPercent: String(rules.redemption.maxPercent),
    pointValue: money(rules.redemption.pointValue),
    expiryDays: rules.expiry ? String(rules.expiry.inactivityDays) : '',
    reminderDays: rules.expiry ? String(rules.expiry.reminderDaysBefore) : '14',
    downgrade: rules.tierPolicy.downgradeOnRefund ? 'yes' : '',
    referralsPerDay: String(rules.referral.maxPerInviterPerDay),
    campaignBonusCap: String(rules.campaignBonusCap),
    tierCount: String(rules.tiers.length + 1),
  };
  rules.tiers.forEach((tier, i) => {
    v[`tier${i}_code`] = tier.code;
    v[`tier${i}_ru`] = tier.name.ru;
    v[`tier${i}_en`] = tier.name.en;
    v[`tier${i}_percent`] = String(tier.accrualPercent);
    v[`tier${i}_threshold`] = money(tier.threshold);
  });
  for (const key of TEXT_KEYS) {
    v[`text_${key}_ru`] = textsNow[key]?.ru ?? '';
    v[`text_${key}_en`] = textsNow[key]?.en ?? '';
  }
  const locations = program.locations as { latitude: number; longitude: number; relevantText?: { ru: string; en: string } }[];
  locations.forEach((loc, i) => {
    v[`loc${i}_lat`] = String(loc.latitude);
    v[`loc${i}_lon`] = String(loc.longitude);
    v[`loc${i}_ru`] = loc.relevantText?.ru ?? '';
    v[`loc${i}_en`] = loc.relevantText?.en ?? '';
  });
  return v;
}

/** The submitted fields of one section (everything else keeps the stored values). */
function submitted(body: Record<string, unknown>, section: Section, tierCount: number): Values {
  const v: Values = {};
  const take = (name: string, max = 2000) => (v[name] = formText(body, name, max));
  if (section === 'general') ['name', 'defaultLanguage', 'currency', 'timeZone'].forEach((n) => take(n, 200));
  if (section === 'rules') {
    ['welcomeBonus', 'inviterBonus', 'inviteeBonus', 'grantOn', 'maxPercent', 'pointValue', 'expiryDays', 'reminderDays', 'downgrade', 'referralsPerDay', 'campaignBonusCap'].forEach((n) => take(n, 40));
    const count = Math.min(Math.max(parseWhole(formText(body, 'tierCount')) ?? tierCount, 1), 21);
    v.tierCount = String(count);
    for (let i = 0; i < count; i++) ['code', 'ru', 'en', 'percent', 'threshold', 'remove'].forEach((f) => take(`tier${i}_${f}`, 64));
  }
  if (section === 'texts') for (const key of TEXT_KEYS) for (const l of ['ru', 'en']) take(`text_${key}_${l}`, 2000);
  if (section === 'locations') for (let i = 0; i < MAX_LOCATIONS; i++) ['lat', 'lon', 'ru', 'en'].forEach((f) => take(`loc${i}_${f}`, 200));
  return v;
}

/** Form values → the PATCH of one section, or the field errors. */
function patchOf(section: Section, v: Values, currency: string, t: Msg, current: LoyaltyRules): { patch?: UpdateProgram; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const whole = (name: string) => {
    const n = parseWhole(v[name] ?? '');
    if (n === undefined) errors[name] = t.errors.whole;
    return n ?? 0;
  };
  if (section === 'general') {
    if (!v.name) errors.name = t.errors.required;
    if (!/^[A-Z]{3}$/.test(v.currency ?? '')) errors.currency = t.errors.currency;
    try {
      new Intl.DateTimeFormat('en', { timeZone: v.timeZone });
    } catch {
      errors.timeZone = t.errors.timeZone;
    }
    return { errors, patch: { name: v.name, defaultLanguage: v.defaultLanguage === 'en' ? 'en' : 'ru', currency: v.currency, timeZone: v.timeZone } };
  }
  if (section === 'rules') {
    const tiers: LoyaltyRules['tiers'] = [];
    const count = Number(v.tierCount);
    for (let i = 0; i < count; i++) {
      const p = `tier${i}_`;
      const blank = ['code', 'ru', 'en', 'percent', 'threshold'].every((f) => !v[p + f]);
      if (blank || v[`${p}remove`] === 'yes') continue;
      // The code is the API's name for the tier; owners name tiers, so a new tier without one gets
      // a code from its English name (or its position), unique among the tiers.
      if (!v[`${p}code`]) v[`${p}code`] = tierCodeFrom(v[`${p}en`] ?? '', i, Array.from({ length: count }, (_, k) => v[`tier${k}_code`] ?? ''));
      if (!/^[a-z][a-z0-9_]{0,31}$/.test(v[`${p}code`] ?? '')) errors[`${p}code`] = t.errors.tierCode;
      if (!v[`${p}ru`]) errors[`${p}ru`] = t.errors.required;
      if (!v[`${p}en`]) errors[`${p}en`] = t.errors.required;
      const percent = parseDecimal(v[`${p}percent`] ?? '');
      if (percent === undefined) errors[`${p}percent`] = t.errors.decimal;
      const threshold = parseMoney(v[`${p}threshold`] ?? '', currency);
      if (threshold === undefined) errors[`${p}threshold`] = t.errors.money;
      // The form does not edit discount percents yet (issue #17): a tier keeps its stored one.
      const discountPercent = current.tiers.find((tier) => tier.code === v[`${p}code`])?.discountPercent;
      tiers.push({
        code: v[`${p}code`],
        name: { ru: v[`${p}ru`], en: v[`${p}en`] },
        accrualPercent: percent ?? 0,
        threshold: threshold ?? 0,
        ...(discountPercent === undefined ? {} : { discountPercent }),
      });
    }
    const maxPercent = parseDecimal(v.maxPercent ?? '');
    if (maxPercent === undefined) errors.maxPercent = t.errors.decimal;
    const pointValue = parseMoney(v.pointValue ?? '', currency);
    if (pointValue === undefined || pointValue < 1) errors.pointValue = t.errors.money;
    const rules: LoyaltyRules = {
      tiers,
      welcomeBonus: whole('welcomeBonus'),
      referral: {
        inviterBonus: whole('inviterBonus'),
        inviteeBonus: whole('inviteeBonus'),
        grantOn: v.grantOn === 'first_purchase' ? 'first_purchase' : 'enrollment',
        // A form without the field (an older page) keeps the stored value.
        maxPerInviterPerDay: v.referralsPerDay ? whole('referralsPerDay') : current.referral.maxPerInviterPerDay,
      },
      redemption: { maxPercent: maxPercent ?? 0, pointValue: pointValue ?? 1 },
      expiry: v.expiryDays ? { inactivityDays: whole('expiryDays'), reminderDaysBefore: whole('reminderDays') } : null,
      tierPolicy: { downgradeOnRefund: v.downgrade === 'yes' },
      campaignBonusCap: v.campaignBonusCap ? whole('campaignBonusCap') : current.campaignBonusCap,
      // Mechanic, category and stamp rules are not on this form yet (issue #17): kept as stored.
      ...(current.mechanic === undefined ? {} : { mechanic: current.mechanic }),
      ...(current.categories === undefined ? {} : { categories: current.categories }),
      ...(current.stamps === undefined ? {} : { stamps: current.stamps }),
    };
    return { errors, patch: { rules } };
  }
  if (section === 'texts') {
    const out: Texts = {};
    for (const key of TEXT_KEYS) {
      const ru = v[`text_${key}_ru`] ?? '';
      const en = v[`text_${key}_en`] ?? '';
      if (ru || en) out[key] = { ru, en };
    }
    return { errors, patch: { texts: out } };
  }
  const locations: NonNullable<UpdateProgram['locations']> = [];
  for (let i = 0; i < MAX_LOCATIONS; i++) {
    const p = `loc${i}_`;
    if (!v[`${p}lat`] && !v[`${p}lon`] && !v[`${p}ru`] && !v[`${p}en`]) continue;
    const latitude = parseDecimal(v[`${p}lat`] ?? '');
    const longitude = parseDecimal(v[`${p}lon`] ?? '');
    if (latitude === undefined || latitude < -90 || latitude > 90) errors[`${p}lat`] = t.errors.coordinate;
    if (longitude === undefined || longitude < -180 || longitude > 180) errors[`${p}lon`] = t.errors.coordinate;
    const ru = v[`${p}ru`] ?? '';
    const en = v[`${p}en`] ?? '';
    locations.push({ latitude: latitude ?? 0, longitude: longitude ?? 0, ...(ru || en ? { relevantText: { ru, en } } : {}) });
  }
  return { errors, patch: { locations } };
}

export const settingsScreen: Screen = {
  nav: { path: '/app/settings', label: { ru: 'Настройки', en: 'Settings' }, access: 'owner', group: 'program' },
  routes: async (app, { kit }) => {
    const { ctx } = kit;

    interface State {
      status?: number;
      values: Values;
      errors?: FieldErrors;
      section?: Section;
      formError?: string;
      saved?: Section;
    }

    function render(request: FastifyRequest, reply: FastifyReply, program: ProgramRow, state: State) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const v = state.values;
      const errorsFor = (section: Section) => (state.section === section ? (state.errors ?? {}) : {});
      const header = (section: Section, title: string) => html`<h2 id="${section}-title">${title}</h2>
${state.saved === section ? notice(t.saved) : ''}
${state.section === section ? errorSummary(l, state.errors ?? {}, state.formError) : ''}`;
      const form = (section: Section, title: string, inner: SafeHtml) => html`<section class="panel" aria-labelledby="${section}-title" id="${section}">
${header(section, title)}
<form method="post" action="/app/settings/${section}" novalidate>
${csrfInput(session.csrf)}
${inner}
<div class="actions"><button class="button" type="submit">${t.save}<span class="visually-hidden">: ${title}</span></button></div>
</form>
</section>`;

      const ge = errorsFor('general');
      const general = form(
        'general',
        t.general,
        html`<div class="row">
${field({ name: 'name', label: t.name, value: v.name, errors: ge, attrs: html` maxlength="200" required` })}
${select({ name: 'defaultLanguage', label: t.defaultLanguage, value: v.defaultLanguage, options: [{ value: 'ru', label: 'Русский' }, { value: 'en', label: 'English' }] })}
</div><div class="row">
${field({ name: 'currency', label: t.currency, value: v.currency, errors: ge, attrs: html` maxlength="3" pattern="[A-Z]{3}" autocapitalize="characters"` })}
${select({ name: 'timeZone', label: t.timeZone, value: v.timeZone, hint: t.timeZoneHint, errors: ge, options: timeZoneOptions(v.timeZone) })}
</div>`,
      );

      const re = errorsFor('rules');
      const tierCount = Number(v.tierCount ?? 1);
      const tierRows: SafeHtml[] = [];
      for (let i = 0; i < tierCount; i++) {
        const p = `tier${i}_`;
        const isNew = !v[`${p}code`] && i === tierCount - 1;
        // Owners see tiers by name; the code (the API's name) is kept out of sight: a hidden field
        // for a saved tier, an optional field under "Code for the API" for a new one or a wrong one.
        const codeField = field({ name: `${p}code`, label: t.tierCode, value: v[`${p}code`], hint: t.tierCodeHint, errors: re, attrs: html` maxlength="32" autocapitalize="off"` });
        const code = isNew || re[`${p}code`] ? html`<details${re[`${p}code`] ? html` open` : ''}><summary>${t.tierCode}</summary>${codeField}</details>` : html`<input type="hidden" name="${p}code" value="${v[`${p}code`]}">`;
        const named = v[`${p}${kit.lang(request) === 'en' ? 'en' : 'ru'}`];
        tierRows.push(html`<fieldset>
<legend>${isNew ? t.newTier : named ? `${t.tierRow(i + 1)}: ${named}` : t.tierRow(i + 1)}</legend>
${code}
<div class="row">
${field({ name: `${p}ru`, label: t.tierRu, value: v[`${p}ru`], errors: re, attrs: html` maxlength="64"` })}
${field({ name: `${p}en`, label: t.tierEn, value: v[`${p}en`], errors: re, attrs: html` maxlength="64"` })}
${field({ name: `${p}percent`, label: t.tierPercent, value: v[`${p}percent`], errors: re, attrs: html` inputmode="decimal" maxlength="6"` })}
${field({ name: `${p}threshold`, label: t.tierThreshold(program.currency), value: v[`${p}threshold`], errors: re, attrs: html` inputmode="decimal" maxlength="16"` })}
</div>
${isNew ? '' : checkbox({ name: `${p}remove`, label: t.tierRemove, checked: v[`${p}remove`] === 'yes' })}
</fieldset>`);
      }
      const rules = form(
        'rules',
        t.rules,
        html`<input type="hidden" name="tierCount" value="${tierCount}">
<h3>${t.tiers}</h3><p class="hint">${t.tiersHint}</p>
${tierRows}
<div class="row">
${field({ name: 'welcomeBonus', label: t.welcomeBonus, value: v.welcomeBonus, errors: re, attrs: html` inputmode="numeric" maxlength="12"` })}
${field({ name: 'inviterBonus', label: t.inviterBonus, value: v.inviterBonus, errors: re, attrs: html` inputmode="numeric" maxlength="12"` })}
${field({ name: 'inviteeBonus', label: t.inviteeBonus, value: v.inviteeBonus, errors: re, attrs: html` inputmode="numeric" maxlength="12"` })}
</div>
${select({ name: 'grantOn', label: t.grantOn, value: v.grantOn, options: [{ value: 'enrollment', label: t.grantOnEnrollment }, { value: 'first_purchase', label: t.grantOnPurchase }] })}
<div class="row">
${field({ name: 'maxPercent', label: t.maxPercent, value: v.maxPercent, errors: re, attrs: html` inputmode="decimal" maxlength="6"` })}
${field({ name: 'pointValue', label: t.pointValue(program.currency), value: v.pointValue, errors: re, attrs: html` inputmode="decimal" maxlength="12"` })}
</div>
<div class="row">
${field({ name: 'expiryDays', label: t.expiryDays, value: v.expiryDays, hint: t.expiryDaysHint, errors: re, attrs: html` inputmode="numeric" maxlength="6"` })}
${field({ name: 'reminderDays', label: t.reminderDays, value: v.reminderDays, errors: re, attrs: html` inputmode="numeric" maxlength="6"` })}
</div>
${checkbox({ name: 'downgrade', label: t.downgrade, checked: v.downgrade === 'yes' })}
<div class="row">
${field({ name: 'referralsPerDay', label: t.referralsPerDay, value: v.referralsPerDay, hint: t.referralsPerDayHint, errors: re, attrs: html` inputmode="numeric" maxlength="6"` })}
${field({ name: 'campaignBonusCap', label: t.campaignBonusCap, value: v.campaignBonusCap, hint: t.campaignBonusCapHint, errors: re, attrs: html` inputmode="numeric" maxlength="8"` })}
</div>`,
      );

      const te = errorsFor('texts');
      const textsForm = form(
        'texts',
        t.textsTitle,
        html`${TEXT_KEYS.map(
          (key) => html`<fieldset><legend>${t.text[key]}</legend><div class="row">
${textarea({ name: `text_${key}_ru`, label: `${t.text[key]} — ${t.ru}`, value: v[`text_${key}_ru`], errors: te, attrs: html` maxlength="2000" lang="ru"` })}
${textarea({ name: `text_${key}_en`, label: `${t.text[key]} — ${t.en}`, value: v[`text_${key}_en`], errors: te, attrs: html` maxlength="2000" lang="en"` })}
</div></fieldset>`,
        )}`,
      );

      const le = errorsFor('locations');
      const stored = (program.locations as unknown[]).length;
      const rows = Math.min(MAX_LOCATIONS, Math.max(stored + 1, 3));
      const locationRows: SafeHtml[] = [];
      for (let i = 0; i < rows; i++) {
        const p = `loc${i}_`;
        locationRows.push(html`<fieldset><legend>${t.location(i + 1)}</legend><div class="row">
${field({ name: `${p}lat`, label: t.latitude, value: v[`${p}lat`], errors: le, attrs: html` inputmode="decimal" maxlength="20"` })}
${field({ name: `${p}lon`, label: t.longitude, value: v[`${p}lon`], errors: le, attrs: html` inputmode="decimal" maxlength="20"` })}
${field({ name: `${p}ru`, label: t.relevantRu, value: v[`${p}ru`], errors: le, attrs: html` maxlength="200" lang="ru"` })}
${field({ name: `${p}en`, label: t.relevantEn, value: v[`${p}en`], errors: le, attrs: html` maxlength="200" lang="en"` })}
</div></fieldset>`);
      }
      const locations = form('locations', t.locations, html`<p class="hint">${t.locationsHint}</p>${locationRows}`);

      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        path: '/app/settings',
        body: html`<h1>${t.title}</h1>
<nav aria-label="${t.title}" class="panel no-print"><ul class="legend">${SECTIONS.map(
          (s) => html`<li><a href="#${s}">${{ general: t.general, rules: t.rules, texts: t.textsTitle, locations: t.locations }[s]}</a></li>`,
        )}</ul></nav>
${general}${rules}${textsForm}${locations}`,
      });
    }

    app.get('/app/settings', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const program = await getProgramOr404(ctx.db, session.programId);
      const saved = (request.query as Record<string, string>).saved;
      return render(request, reply, program, { values: valuesOf(program, kit.lang(request)), saved: SECTIONS.includes(saved as Section) ? (saved as Section) : undefined });
    });

    app.post<{ Params: { section: string } }>('/app/settings/:section', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const section = request.params.section as Section;
      if (!SECTIONS.includes(section)) throw new AppError(404, 'not_found', 'No such section');
      const t = T[kit.lang(request)];
      const program = await getProgramOr404(ctx.db, session.programId);
      const stored = valuesOf(program, kit.lang(request));
      const values = { ...stored, ...submitted(formBody(request), section, Number(stored.tierCount)) };
      const { patch, errors } = patchOf(section, values, section === 'general' ? program.currency : program.currency, t, program.rules as LoyaltyRules);
      const again = (state: Omit<State, 'values' | 'section'>) => render(request, reply, program, { ...state, values, section });
      if (Object.keys(errors).length > 0 || !patch) return again({ status: 422, errors });
      if (!Value.Check(UpdateProgramSchema, patch)) {
        const problems = [...Value.Errors(UpdateProgramSchema, patch)].map((e) => `${e.path}: ${e.message}`);
        return again({ status: 422, errors: {}, formError: `${t.errors.invalid} ${problems.join('; ')}` });
      }
      try {
        await updateProgram(ctx.db, ctx.cardChanges, session.programId, patch);
      } catch (error) {
        if (error instanceof AppError && error.code === 'invalid_rules') {
          const list = ((error.details?.errors as string[] | undefined) ?? [error.message]).join('; ');
          return again({ status: 422, errors: {}, formError: `${t.errors.rules} ${list}` });
        }
        throw error;
      }
      return kit.redirect(reply, `/app/settings?saved=${section}#${section}`);
    });
  },
};
