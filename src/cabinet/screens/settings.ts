import type { FastifyReply, FastifyRequest } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import type { ProgramRow } from '../../db/schema.js';
import { AppError } from '../../http/errors.js';
import { html, type SafeHtml } from '../../http/html.js';
import { mechanicOf, type LoyaltyRules, type Mechanic } from '../../loyalty/rules.js';
import { UpdateProgramSchema, type Texts, type UpdateProgram } from '../../programs/schemas.js';
import { getProgramOr404, updateProgram } from '../../programs/service.js';
import { listDefinitions } from '../../coupons/repository.js';
import { count, formatMoney, moneyInputValue, parseDecimal, parseMoney, parseWhole, texts, type Lang } from '../i18n.js';
import { formBody, type Screen } from '../kit.js';
import { formatCoordinates, mapLink, mapSearchLink, parseCoordinates } from '../geo.js';
import { checkbox, csrfInput, errorSummary, field, formText, notice, select, textarea, type FieldErrors } from '../layout.js';

/**
 * «Настройки» (owner): the program's general settings, loyalty rules (tiers, bonuses, redemption
 * cap, expiry), the mechanic (points, discount by tier or stamps, and rules by item category),
 * back-of-card texts and store locations. Each section is its own form and saves
 * through `updateProgram`, the same call as `PATCH /api/v1/programs/{id}`: rules are validated as a
 * whole, and a change that shows on the pass sends every card down the update path.
 */
const SECTIONS = ['general', 'rules', 'mechanic', 'texts', 'locations'] as const;
const MECHANICS: readonly Mechanic[] = ['points', 'discount', 'stamps'];
/** Category rows the form accepts (the rules allow 100). */
const MAX_CATEGORY_ROWS = 100;
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
    mechanicTitle: 'Механика',
    mechanicLegend: 'Что даёт покупка',
    mechanicName: { points: 'Баллы', discount: 'Скидка', stamps: 'Штампы' },
    mechanicHint: {
      points: 'Покупки приносят баллы по проценту уровня, баллами можно оплатить часть чека.',
      discount: 'Постоянная скидка по уровню; уровень растёт с суммой покупок.',
      stamps: 'Каждая покупка — штамп; набранные штампы дают награду.',
    },
    mechanicLocked: (n: number) => `В программе уже ${count('ru', n, 'cards')}: механику можно сменить, только пока карт нет.`,
    mechanicRefused: 'Механика не изменена: в программе уже есть карты. Ничего не сохранено.',
    discountTitle: 'Скидка по уровням',
    discountHint: 'Только для механики «Скидка». Уровни, их названия и пороги — в разделе «Правила»; скидка не может уменьшаться с ростом уровня.',
    tierDiscount: (tier: string, threshold: string) => `${tier} (от ${threshold}): скидка, %`,
    stampsTitle: 'Штампы',
    stampsHint: 'Только для механики «Штампы».',
    stampsSummary: (n: number) => `Сейчас награда — за ${count('ru', n, 'stamps')}.`,
    stampsPerReward: 'Штампов до награды',
    stampsMinCheck: (c: string) => `Минимальный чек для штампа, ${c}`,
    stampsMinCheckHint: 'Пусто — любой чек.',
    stampsCategories: 'Категории товаров, за которые ставится штамп',
    stampsCategoriesHint: 'Через запятую, например: coffee. С категориями штамп ставится за каждую единицу такого товара в чеке; пусто — один штамп за покупку.',
    stampsExpireDays: 'Штампы сгорают без новых штампов через, дней',
    stampsExpireHint: 'Пусто — не сгорают.',
    stampsExpireSummary: (n: number) => `Сейчас штампы сгорают через ${count('ru', n, 'days')} без новых штампов.`,
    rewardRu: 'Награда (рус.)',
    rewardEn: 'Награда (англ.)',
    rewardCoupon: 'Купон, который получает покупатель',
    rewardCouponHint: 'Активные купоны программы.',
    noCoupon: 'без купона — награда только записывается',
    categoriesTitle: 'Правила по категориям товаров',
    categoriesHint: 'Для любой механики; действуют, когда касса передаёт строки чека. Чтобы добавить категорию, заполните пустую строку; чтобы убрать — отметьте «удалить».',
    category: 'Категория',
    multiplier: 'Множитель баллов (только для баллов)',
    multiplierHint: 'Например 2 — двойные баллы. Пусто — 1.',
    exclude: 'исключена (без баллов и без скидки)',
    categoryRow: (n: number) => `Категория ${n}`,
    newCategory: 'Новая категория',
    textsTitle: 'Тексты на обороте карты',
    text: { promo: 'Текущая акция', contacts: 'Контакты', terms: 'Условия программы', referral: 'Приглашение друга', consent: 'Текст согласия на рассылку (страница регистрации)' },
    ru: 'по-русски',
    en: 'по-английски',
    locations: 'Точки продаж',
    locationsHint: 'До 10 точек: карта появится на экране блокировки рядом с ними. Пустые строки не сохраняются.',
    address: 'Адрес',
    addressHint: 'Как его пишут покупателям, например «Москва, Тверская ул., 7».',
    coordinates: 'Точка на карте',
    coordinatesHint: 'Откройте адрес на карте, нажмите на вход в точку и вставьте сюда координаты («55.7558, 37.6173») или ссылку на место в OpenStreetMap, Яндекс Картах или Google Картах.',
    findOnMap: (address: string) => `Найти «${address}» на карте`,
    showOnMap: 'Проверить точку на карте',
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
      address: 'Укажите адрес точки.',
      coordinates: 'Не удалось прочитать координаты. Вставьте, например, «55.7558, 37.6173» или ссылку на место на карте.',
      rules: 'Правила не сохранены:',
      range: (min: number, max: number) => `Введите целое число от ${min} до ${max}.`,
      percent: 'Введите процент от 0 до 100, например 5 или 7,5.',
      multiplier: 'Введите число от 0 до 10, например 2 или 1,5.',
      coupon: 'Выберите купон из списка.',
      category: 'Укажите категорию.',
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
    mechanicTitle: 'Mechanic',
    mechanicLegend: 'What a purchase gives',
    mechanicName: { points: 'Points', discount: 'Discount', stamps: 'Stamps' },
    mechanicHint: {
      points: 'Purchases earn points at the tier’s percent; points pay part of a check.',
      discount: 'A standing discount by tier; the tier grows with lifetime spend.',
      stamps: 'Each purchase is a stamp; a full card earns a reward.',
    },
    mechanicLocked: (n) => `The programme already has ${count('en', n, 'cards')}: the mechanic can only change while it has none.`,
    mechanicRefused: 'The mechanic was not changed: the programme already has cards. Nothing was saved.',
    discountTitle: 'Discount by tier',
    discountHint: 'For the “Discount” mechanic only. Tiers, their names and thresholds are in the Rules section; the discount may not fall as the tier rises.',
    tierDiscount: (tier, threshold) => `${tier} (from ${threshold}): discount, %`,
    stampsTitle: 'Stamps',
    stampsHint: 'For the “Stamps” mechanic only.',
    stampsSummary: (n) => `Now a reward takes ${count('en', n, 'stamps')}.`,
    stampsPerReward: 'Stamps per reward',
    stampsMinCheck: (c) => `Minimum check for a stamp, ${c}`,
    stampsMinCheckHint: 'Empty: any check.',
    stampsCategories: 'Item categories that earn a stamp',
    stampsCategoriesHint: 'Comma-separated, e.g. coffee. With categories, each unit of such an item in the check is a stamp; empty: one stamp per purchase.',
    stampsExpireDays: 'Stamps expire after this many days without a new stamp',
    stampsExpireHint: 'Empty: stamps never expire.',
    stampsExpireSummary: (n) => `Now stamps expire after ${count('en', n, 'days')} without a new stamp.`,
    rewardRu: 'Reward (Russian)',
    rewardEn: 'Reward (English)',
    rewardCoupon: 'Coupon the holder gets',
    rewardCouponHint: 'The programme’s active coupons.',
    noCoupon: 'no coupon: the reward is recorded only',
    categoriesTitle: 'Rules by item category',
    categoriesHint: 'For every mechanic; they apply when the till sends the check’s lines. Fill the empty row to add a category; tick “remove” to drop one.',
    category: 'Category',
    multiplier: 'Points multiplier (points only)',
    multiplierHint: 'E.g. 2 for double points. Empty: 1.',
    exclude: 'excluded (no points, no discount)',
    categoryRow: (n) => `Category ${n}`,
    newCategory: 'New category',
    textsTitle: 'Texts on the back of the card',
    text: { promo: 'Current offer', contacts: 'Contacts', terms: 'Programme terms', referral: 'Invite a friend', consent: 'Marketing consent text (join page)' },
    ru: 'in Russian',
    en: 'in English',
    locations: 'Stores',
    locationsHint: 'Up to 10 stores: the card shows on the lock screen near them. Empty rows are not saved.',
    address: 'Address',
    addressHint: 'As customers know it, e.g. “7 Tverskaya St, Moscow”.',
    coordinates: 'Point on the map',
    coordinatesHint: 'Open the address on a map, tap the entrance and paste the coordinates here (“55.7558, 37.6173”) or the link to the place on OpenStreetMap, Yandex Maps or Google Maps.',
    findOnMap: (address) => `Find “${address}” on the map`,
    showOnMap: 'Check the point on the map',
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
      address: 'Enter the store’s address.',
      coordinates: 'These coordinates could not be read. Paste e.g. “55.7558, 37.6173” or the link to the place on a map.',
      rules: 'The rules were not saved:',
      range: (min, max) => `Enter a whole number from ${min} to ${max}.`,
      percent: 'Enter a percent from 0 to 100, e.g. 5 or 7.5.',
      multiplier: 'Enter a number from 0 to 10, e.g. 2 or 1.5.',
      coupon: 'Pick a coupon from the list.',
      category: 'Enter the category.',
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
  // The mechanic section: the mechanic, each tier's discount, the stamp card and the category rules.
  v.mechanic = mechanicOf(rules);
  rules.tiers.forEach((tier, i) => {
    v[`tier${i}_discount`] = tier.discountPercent === undefined ? '' : String(tier.discountPercent);
  });
  const stamps = rules.stamps;
  v.stampsPerReward = stamps ? String(stamps.perReward) : '6';
  v.stampsMinCheck = stamps?.minCheck ? money(stamps.minCheck) : '';
  v.stampsCategories = (stamps?.categories ?? []).join(', ');
  v.stampsExpireDays = stamps?.expireDays ? String(stamps.expireDays) : '';
  v.rewardRu = stamps?.reward.name.ru ?? '';
  v.rewardEn = stamps?.reward.name.en ?? '';
  v.rewardCoupon = stamps?.reward.coupon ?? '';
  const categories = rules.categories ?? [];
  v.catCount = String(categories.length + 1);
  categories.forEach((rule, i) => {
    v[`cat${i}_category`] = rule.category;
    v[`cat${i}_multiplier`] = rule.multiplier === undefined ? '' : String(rule.multiplier);
    v[`cat${i}_exclude`] = rule.exclude ? 'yes' : '';
  });
  const locations = program.locations as { latitude: number; longitude: number; address?: string; relevantText?: { ru: string; en: string } }[];
  locations.forEach((loc, i) => {
    v[`loc${i}_addr`] = loc.address ?? '';
    v[`loc${i}_coords`] = formatCoordinates(loc);
    v[`loc${i}_ru`] = loc.relevantText?.ru ?? '';
    v[`loc${i}_en`] = loc.relevantText?.en ?? '';
  });
  return v;
}

/** The submitted fields of one section (everything else keeps the stored values). */
function submitted(body: Record<string, unknown>, section: Section, tierCount: number, catCount: number): Values {
  const v: Values = {};
  const take = (name: string, max = 2000) => (v[name] = formText(body, name, max));
  if (section === 'general') ['name', 'defaultLanguage', 'currency', 'timeZone'].forEach((n) => take(n, 200));
  if (section === 'rules') {
    ['welcomeBonus', 'inviterBonus', 'inviteeBonus', 'grantOn', 'maxPercent', 'pointValue', 'expiryDays', 'reminderDays', 'downgrade', 'referralsPerDay', 'campaignBonusCap'].forEach((n) => take(n, 40));
    const count = Math.min(Math.max(parseWhole(formText(body, 'tierCount')) ?? tierCount, 1), 21);
    v.tierCount = String(count);
    for (let i = 0; i < count; i++) ['code', 'ru', 'en', 'percent', 'threshold', 'remove'].forEach((f) => take(`tier${i}_${f}`, 64));
  }
  if (section === 'mechanic') {
    ['mechanic', 'stampsPerReward', 'stampsMinCheck', 'stampsExpireDays', 'rewardCoupon'].forEach((n) => take(n, 40));
    ['rewardRu', 'rewardEn'].forEach((n) => take(n, 200));
    take('stampsCategories', 4000);
    // Tiers are added and removed in the rules section: this form has one percent per stored tier.
    for (let i = 0; i < tierCount - 1; i++) take(`tier${i}_discount`, 16);
    const count = Math.min(Math.max(parseWhole(formText(body, 'catCount')) ?? catCount, 1), MAX_CATEGORY_ROWS + 1);
    v.catCount = String(count);
    for (let i = 0; i < count; i++) ['category', 'multiplier', 'exclude', 'remove'].forEach((f) => take(`cat${i}_${f}`, 64));
  }
  if (section === 'texts') for (const key of TEXT_KEYS) for (const l of ['ru', 'en']) take(`text_${key}_${l}`, 2000);
  if (section === 'locations') for (let i = 0; i < MAX_LOCATIONS; i++) ['addr', 'coords', 'ru', 'en'].forEach((f) => take(`loc${i}_${f}`, f === 'coords' ? 2000 : 200));
  return v;
}

/** Form values → the PATCH of one section, or the field errors. */
function patchOf(
  section: Section,
  v: Values,
  currency: string,
  t: Msg,
  current: LoyaltyRules,
  couponIds: string[] = [],
): { patch?: UpdateProgram; errors: FieldErrors; categoryRows?: number[] } {
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
      // Discount percents are edited in the mechanic section: a tier keeps its stored one here.
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
      // Mechanic, category and stamp rules belong to the mechanic section: kept as stored.
      ...(current.mechanic === undefined ? {} : { mechanic: current.mechanic }),
      ...(current.categories === undefined ? {} : { categories: current.categories }),
      ...(current.stamps === undefined ? {} : { stamps: current.stamps }),
    };
    return { errors, patch: { rules } };
  }
  if (section === 'mechanic') return mechanicPatch(v, currency, t, current, couponIds, errors);
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
    if (!v[`${p}addr`] && !v[`${p}coords`] && !v[`${p}ru`] && !v[`${p}en`]) continue;
    // A store is an address and its point: neither alone (bare coordinates meant nothing to owners).
    const address = v[`${p}addr`] ?? '';
    if (!address) errors[`${p}addr`] = t.errors.address;
    const point = parseCoordinates(v[`${p}coords`] ?? '');
    if (!point) errors[`${p}coords`] = t.errors.coordinates;
    else v[`${p}coords`] = formatCoordinates(point);
    const ru = v[`${p}ru`] ?? '';
    const en = v[`${p}en`] ?? '';
    locations.push({ latitude: point?.latitude ?? 0, longitude: point?.longitude ?? 0, address, ...(ru || en ? { relevantText: { ru, en } } : {}) });
  }
  return { errors, patch: { locations } };
}

/**
 * The mechanic section → whole rules: the stored rules with this section's parts replaced. Parts
 * of other mechanics are dropped (discount percents unless "discount", the stamp card unless
 * "stamps"), since the rules allow them only with their mechanic.
 */
function mechanicPatch(v: Values, currency: string, t: Msg, current: LoyaltyRules, couponIds: string[], errors: FieldErrors) {
  const chosen = MECHANICS.find((m) => m === v.mechanic);
  if (!chosen) errors.mechanic = t.errors.required;
  const mechanic = chosen ?? mechanicOf(current);
  const tiers = current.tiers.map((tier, i) => {
    const { discountPercent: _dropped, ...rest } = tier;
    if (mechanic !== 'discount') return rest;
    const raw = v[`tier${i}_discount`] ?? '';
    const percent = parseDecimal(raw);
    if (percent === undefined || percent < 0 || percent > 100) errors[`tier${i}_discount`] = raw ? t.errors.percent : t.errors.required;
    return { ...rest, discountPercent: percent ?? 0 };
  });

  let stamps: LoyaltyRules['stamps'];
  if (mechanic === 'stamps') {
    const perReward = parseWhole(v.stampsPerReward ?? '');
    if (perReward === undefined || perReward < 1 || perReward > 100) errors.stampsPerReward = t.errors.range(1, 100);
    const minCheck = v.stampsMinCheck ? parseMoney(v.stampsMinCheck, currency) : 0;
    if (minCheck === undefined) errors.stampsMinCheck = t.errors.money;
    const categories = (v.stampsCategories ?? '')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
    const expireDays = v.stampsExpireDays ? parseWhole(v.stampsExpireDays) : null;
    if (expireDays === undefined || (expireDays !== null && (expireDays < 1 || expireDays > 36_500))) errors.stampsExpireDays = t.errors.range(1, 36_500);
    if (!v.rewardRu) errors.rewardRu = t.errors.required;
    if (!v.rewardEn) errors.rewardEn = t.errors.required;
    const coupon = v.rewardCoupon ?? '';
    if (coupon && !couponIds.includes(coupon)) errors.rewardCoupon = t.errors.coupon;
    stamps = {
      perReward: perReward ?? 1,
      ...(minCheck ? { minCheck } : {}),
      ...(categories.length > 0 ? { categories } : {}),
      ...(expireDays ? { expireDays } : {}),
      reward: { name: { ru: v.rewardRu ?? '', en: v.rewardEn ?? '' }, ...(coupon ? { coupon } : {}) },
    };
  }

  const categories: NonNullable<LoyaltyRules['categories']> = [];
  // The form row of each saved rule, so that the rules' own errors (/categories/2/…) land on their row.
  const categoryRows: number[] = [];
  for (let i = 0; i < Number(v.catCount ?? 1); i++) {
    const p = `cat${i}_`;
    const category = v[`${p}category`] ?? '';
    const excluded = v[`${p}exclude`] === 'yes';
    if (v[`${p}remove`] === 'yes' || (!category && !v[`${p}multiplier`] && !excluded)) continue;
    if (!category) errors[`${p}category`] = t.errors.category;
    const multiplier = v[`${p}multiplier`] ? parseDecimal(v[`${p}multiplier`]) : 1;
    if (multiplier === undefined || multiplier < 0 || multiplier > 10) errors[`${p}multiplier`] = t.errors.multiplier;
    categoryRows.push(i);
    // ×1 is what a category without a multiplier earns: not stored, so it stays valid under any mechanic.
    categories.push({ category, ...(multiplier !== undefined && multiplier !== 1 ? { multiplier } : {}), ...(excluded ? { exclude: true } : {}) });
  }

  const { mechanic: _m, categories: _c, stamps: _s, tiers: _t, ...rest } = current;
  const rules: LoyaltyRules = { ...rest, mechanic, tiers, ...(categories.length > 0 ? { categories } : {}), ...(stamps ? { stamps } : {}) };
  return { errors, patch: { rules }, categoryRows };
}

/**
 * The field of the mechanic form a rules error is about ("/tiers/1/discountPercent: …" from
 * validateRules, "/rules/stamps/perReward: …" from the schema), or undefined for the form as a whole.
 */
export function mechanicFieldOf(message: string, categoryRows: number[]): string | undefined {
  const path = /^(?:\/rules)?(\/\S*?):/.exec(message)?.[1] ?? '';
  let m: RegExpExecArray | null;
  if ((m = /^\/tiers\/(\d+)\/discountPercent/.exec(path))) return `tier${m[1]}_discount`;
  if ((m = /^\/categories\/(\d+)\/(category|multiplier|exclude)/.exec(path))) {
    const row = categoryRows[Number(m[1])];
    return row === undefined ? undefined : `cat${row}_${m[2]}`;
  }
  if (/^\/stamps\/categories/.test(path)) return 'stampsCategories';
  if ((m = /^\/stamps\/(perReward|minCheck|expireDays)/.exec(path))) return ({ perReward: 'stampsPerReward', minCheck: 'stampsMinCheck', expireDays: 'stampsExpireDays' } as Record<string, string>)[m[1]];
  if ((m = /^\/stamps\/reward\/name\/(ru|en)/.exec(path))) return m[1] === 'ru' ? 'rewardRu' : 'rewardEn';
  if (/^\/stamps\/reward\/coupon/.test(path)) return 'rewardCoupon';
  if (/^\/mechanic/.test(path)) return 'mechanic';
  return undefined;
}

export const settingsScreen: Screen = {
  nav: { path: '/app/settings', label: { ru: 'Настройки', en: 'Settings' }, access: 'owner', group: 'program' },
  routes: async (app, { kit }) => {
    const { ctx } = kit;

    interface State {
      status?: number;
      values: Values;
      errors?: FieldErrors;
      /** The section shown: one per page, so a Save never stands next to another section's edits. */
      section: Section;
      formError?: string;
      saved?: boolean;
      /** Mechanic section: the coupons a stamp reward may issue, and the program's card count. */
      mechanic?: MechanicData;
    }

    function render(request: FastifyRequest, reply: FastifyReply, program: ProgramRow, state: State) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const v = state.values;
      const errorsFor = (section: Section) => (state.section === section ? (state.errors ?? {}) : {});
      const header = (section: Section, title: string) => html`<h2 id="${section}-title">${title}</h2>
${state.saved ? notice(t.saved) : ''}
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

      const me = errorsFor('mechanic');
      const data = state.mechanic ?? { coupons: [], cards: 0 };
      const rulesNow = program.rules as LoyaltyRules;
      const mechanicRadios = html`<fieldset id="f-mechanic"><legend>${t.mechanicLegend}</legend>
${me.mechanic ? html`<p class="error">${me.mechanic}</p>` : ''}${data.cards > 0 ? notice(t.mechanicLocked(data.cards), 'warn') : ''}
${MECHANICS.map(
  (m) => html`<div class="check"><input id="f-mechanic-${m}" name="mechanic" type="radio" value="${m}" aria-describedby="f-mechanic-${m}-hint"${v.mechanic === m ? html` checked` : ''}><div><label for="f-mechanic-${m}">${t.mechanicName[m]}</label>
<p class="hint" id="f-mechanic-${m}-hint">${t.mechanicHint[m]}</p></div></div>`,
)}
</fieldset>`;
      const discountRows = rulesNow.tiers.map((tier) => tier).map((tier, i) =>
        field({
          name: `tier${i}_discount`,
          label: t.tierDiscount(tier.name[l], formatMoney(l, program.currency, tier.threshold)),
          value: v[`tier${i}_discount`],
          errors: me,
          attrs: html` inputmode="decimal" maxlength="6"`,
        }),
      );
      const storedStamps = rulesNow.stamps;
      const couponOptions = [{ value: '', label: t.noCoupon }, ...data.coupons];
      const catCount = Number(v.catCount ?? 1);
      const categoryRows: SafeHtml[] = [];
      for (let i = 0; i < catCount; i++) {
        const p = `cat${i}_`;
        const isNew = i === catCount - 1 && !v[`${p}category`];
        categoryRows.push(html`<fieldset data-category="${i}">
<legend>${isNew ? t.newCategory : v[`${p}category`] ? `${t.categoryRow(i + 1)}: ${v[`${p}category`]}` : t.categoryRow(i + 1)}</legend>
<div class="row">
${field({ name: `${p}category`, label: t.category, value: v[`${p}category`], errors: me, attrs: html` maxlength="64" autocapitalize="off"` })}
${field({ name: `${p}multiplier`, label: t.multiplier, value: v[`${p}multiplier`], hint: i === 0 ? t.multiplierHint : undefined, errors: me, attrs: html` inputmode="decimal" maxlength="6"` })}
</div>
${checkbox({ name: `${p}exclude`, label: t.exclude, checked: v[`${p}exclude`] === 'yes' })}
${isNew ? '' : checkbox({ name: `${p}remove`, label: t.tierRemove, checked: v[`${p}remove`] === 'yes' })}
</fieldset>`);
      }
      const mechanicForm = form(
        'mechanic',
        t.mechanicTitle,
        html`${mechanicRadios}
<h3>${t.discountTitle}</h3><p class="hint">${t.discountHint}</p>
<div class="row">${discountRows}</div>
<h3>${t.stampsTitle}</h3><p class="hint">${t.stampsHint}</p>
${storedStamps ? html`<p>${t.stampsSummary(storedStamps.perReward)}${storedStamps.expireDays ? html` ${t.stampsExpireSummary(storedStamps.expireDays)}` : ''}</p>` : ''}
<div class="row">
${field({ name: 'stampsPerReward', label: t.stampsPerReward, value: v.stampsPerReward, errors: me, attrs: html` inputmode="numeric" maxlength="3"` })}
${field({ name: 'stampsMinCheck', label: t.stampsMinCheck(program.currency), value: v.stampsMinCheck, hint: t.stampsMinCheckHint, errors: me, attrs: html` inputmode="decimal" maxlength="16"` })}
${field({ name: 'stampsExpireDays', label: t.stampsExpireDays, value: v.stampsExpireDays, hint: t.stampsExpireHint, errors: me, attrs: html` inputmode="numeric" maxlength="5"` })}
</div>
${field({ name: 'stampsCategories', label: t.stampsCategories, value: v.stampsCategories, hint: t.stampsCategoriesHint, errors: me, attrs: html` maxlength="4000" autocapitalize="off"` })}
<div class="row">
${field({ name: 'rewardRu', label: t.rewardRu, value: v.rewardRu, errors: me, attrs: html` maxlength="200" lang="ru"` })}
${field({ name: 'rewardEn', label: t.rewardEn, value: v.rewardEn, errors: me, attrs: html` maxlength="200" lang="en"` })}
</div>
${select({ name: 'rewardCoupon', label: t.rewardCoupon, value: v.rewardCoupon, hint: t.rewardCouponHint, errors: me, options: couponOptions })}
<h3>${t.categoriesTitle}</h3><p class="hint">${t.categoriesHint}</p>
<input type="hidden" name="catCount" value="${catCount}">
${categoryRows}`,
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
        const address = v[`${p}addr`] ?? '';
        const point = parseCoordinates(v[`${p}coords`] ?? '');
        const links = [
          address ? html`<a href="${mapSearchLink(address)}" target="_blank" rel="noopener noreferrer" data-map-search>${t.findOnMap(address)}</a>` : '',
          point ? html`<a href="${mapLink(point)}" target="_blank" rel="noopener noreferrer" data-map-link>${t.showOnMap}</a>` : '',
        ].filter(Boolean);
        locationRows.push(html`<fieldset data-location="${i}"><legend>${address ? `${t.location(i + 1)}: ${address}` : t.location(i + 1)}</legend><div class="row">
${field({ name: `${p}addr`, label: t.address, value: address, hint: i === 0 ? t.addressHint : undefined, errors: le, attrs: html` maxlength="200" autocomplete="street-address"` })}
${field({ name: `${p}coords`, label: t.coordinates, value: v[`${p}coords`], hint: i === 0 ? t.coordinatesHint : undefined, errors: le, attrs: html` maxlength="2000" inputmode="url" autocapitalize="off" spellcheck="false"` })}
</div>
${links.length > 0 ? html`<p class="map-links">${links.map((l, k) => html`${k > 0 ? ' · ' : ''}${l}`)}</p>` : ''}
<div class="row">
${field({ name: `${p}ru`, label: t.relevantRu, value: v[`${p}ru`], errors: le, attrs: html` maxlength="200" lang="ru"` })}
${field({ name: `${p}en`, label: t.relevantEn, value: v[`${p}en`], errors: le, attrs: html` maxlength="200" lang="en"` })}
</div></fieldset>`);
      }
      const locations = form('locations', t.locations, html`<p class="hint">${t.locationsHint}</p>${locationRows}`);

      const titles: Record<Section, string> = { general: t.general, rules: t.rules, mechanic: t.mechanicTitle, texts: t.textsTitle, locations: t.locations };
      return kit.page(request, reply, {
        status: state.status,
        title: `${titles[state.section]} · ${t.title}`,
        path: '/app/settings',
        body: html`<h1>${t.title}</h1>
<nav aria-label="${t.title}" class="tabs no-print"><ul>${SECTIONS.map(
          (s) => html`<li><a href="/app/settings/${s}"${s === state.section ? html` aria-current="page"` : ''}>${titles[s]}</a></li>`,
        )}</ul></nav>
${{ general, rules, mechanic: mechanicForm, texts: textsForm, locations }[state.section]}`,
      });
    }

    interface MechanicData {
      coupons: { value: string; label: string }[];
      cards: number;
    }
    /** The stamp reward's coupon choices (active definitions, plus the stored one) and the card count. */
    async function mechanicData(program: ProgramRow, lang: Lang): Promise<MechanicData> {
      const stored = (program.rules as LoyaltyRules).stamps?.reward.coupon;
      const definitions = await listDefinitions(ctx.db, program.id, 200);
      const coupons = definitions.filter((d) => d.active || d.id === stored).map((d) => ({ value: d.id, label: d.title[lang] || d.title.ru }));
      const row = await ctx.db.selectFrom('card').select((eb) => eb.fn.countAll<string>().as('n')).where('program_id', '=', program.id).executeTakeFirstOrThrow();
      return { coupons, cards: Number(row.n) };
    }

    async function show(request: FastifyRequest, reply: FastifyReply, section: Section) {
      const session = kit.session(request);
      const program = await getProgramOr404(ctx.db, session.programId);
      const saved = (request.query as Record<string, string>).saved === '1';
      const mechanic = section === 'mechanic' ? await mechanicData(program, kit.lang(request)) : undefined;
      return render(request, reply, program, { values: valuesOf(program, kit.lang(request)), section, saved, mechanic });
    }
    app.get('/app/settings', { config: { access: 'owner' } }, async (request, reply) => show(request, reply, 'general'));
    app.get<{ Params: { section: string } }>('/app/settings/:section', { config: { access: 'owner' } }, async (request, reply) => {
      const section = request.params.section as Section;
      if (!SECTIONS.includes(section)) throw new AppError(404, 'not_found', 'No such section');
      return show(request, reply, section);
    });

    app.post<{ Params: { section: string } }>('/app/settings/:section', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const section = request.params.section as Section;
      if (!SECTIONS.includes(section)) throw new AppError(404, 'not_found', 'No such section');
      const t = T[kit.lang(request)];
      const program = await getProgramOr404(ctx.db, session.programId);
      const stored = valuesOf(program, kit.lang(request));
      const values = { ...stored, ...submitted(formBody(request), section, Number(stored.tierCount), Number(stored.catCount)) };
      const mechanic = section === 'mechanic' ? await mechanicData(program, kit.lang(request)) : undefined;
      const { patch, errors, categoryRows = [] } = patchOf(
        section,
        values,
        program.currency,
        t,
        program.rules as LoyaltyRules,
        mechanic?.coupons.map((c) => c.value),
      );
      const again = (state: Omit<State, 'values' | 'section'>) => render(request, reply, program, { ...state, values, section, mechanic });
      // The rules' own messages: on the mechanic form each lands on its field where it has one.
      const ruleErrors = (messages: string[]) => {
        const fields: FieldErrors = {};
        const rest: string[] = [];
        for (const message of messages) {
          const name = section === 'mechanic' ? mechanicFieldOf(message, categoryRows) : undefined;
          if (name) fields[name] = message.replace(/^\S*:\s*/, '');
          else rest.push(message);
        }
        return { status: 422, errors: fields, formError: rest.length > 0 || Object.keys(fields).length === 0 ? `${t.errors.rules} ${rest.join('; ')}` : t.errors.rules };
      };
      if (Object.keys(errors).length > 0 || !patch) return again({ status: 422, errors });
      if (!Value.Check(UpdateProgramSchema, patch)) {
        const problems = [...Value.Errors(UpdateProgramSchema, patch)].map((e) => `${e.path}: ${e.message}`);
        if (section === 'mechanic') return again(ruleErrors(problems));
        return again({ status: 422, errors: {}, formError: `${t.errors.invalid} ${problems.join('; ')}` });
      }
      try {
        await updateProgram(ctx.db, ctx.cardChanges, session.programId, patch);
      } catch (error) {
        if (error instanceof AppError && error.code === 'invalid_rules') {
          const messages = (error.details?.errors as string[] | undefined) ?? [error.message];
          if (section === 'mechanic') return again(ruleErrors(messages));
          return again({ status: 422, errors: {}, formError: `${t.errors.rules} ${messages.join('; ')}` });
        }
        if (error instanceof AppError && error.code === 'mechanic_change_refused') {
          return again({ status: 409, errors: {}, formError: t.mechanicRefused });
        }
        throw error;
      }
      return kit.redirect(reply, `/app/settings/${section}?saved=1`);
    });
  },
};
