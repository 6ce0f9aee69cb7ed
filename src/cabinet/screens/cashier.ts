import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { cardUrls } from '../../cards/dto.js';
import { findCardInProgram, lockCardInProgram, searchCards } from '../../cards/repository.js';
import type { CardRow, ProgramRow } from '../../db/schema.js';
import { issueCard, normalizePhone } from '../../enrollment/service.js';
import { qrSvgInline } from '../../enrollment/qr.js';
import { AppError } from '../../http/errors.js';
import { html, raw, type SafeHtml } from '../../http/html.js';
import { runIdempotent } from '../../http/idempotency.js';
import { isValidCardNumber, normalizeScannedValue } from '../../loyalty/card-number.js';
import { recordPurchase, refundPurchase } from '../../loyalty/purchases.js';
import { quoteCheck, RuleViolation, type LoyaltyRules } from '../../loyalty/rules.js';
import { getProgramOr404 } from '../../programs/service.js';
import type { CabinetSession } from '../auth.js';
import { currencyDigits, formatDateTime, formatMoney, formatNumber, groupedCardNumber, parseMoney, parseWhole, points, texts, type Lang } from '../i18n.js';
import { count, formatMaskedPhone, formatPhone } from '../../i18n/format.js';
import { mechanicDisplay, percentText as percentSign } from '../../wallets/mechanic-display.js';
import { quoteForCard } from '../../loyalty/purchases.js';
import { couponsForQuote, issueCoupon } from '../../coupons/service.js';
import { issuableDefinitions } from '../../coupons/repository.js';
import { couponOptionLabel } from './coupons.js';
import type { LineItem } from '../../loyalty/rules.js';
import { formBody, notFoundError, uuidParam, UUID_RE, type CabinetKit, type Screen } from '../kit.js';
import { checkbox, csrfInput, errorSummary, field, formText, notice, select, textarea, type FieldErrors } from '../layout.js';

/**
 * «Касса» — the cashier's one screen, built for a keyboard and a USB barcode scanner (which types
 * the card number and Enter):
 *
 *   search (autofocused) → scan/type + Enter → the card, amount field focused → amount + Enter
 *   accrues; or points (empty = the most allowed) + Enter / «Списать» redeems → the result
 *   (accrued, redeemed, to pay, new balance) → the search field is focused for the next customer.
 *
 * Every purchase and refund form carries an idempotency key made when the form was rendered and
 * goes through `runIdempotent` exactly like the POS API, so a double click, a resent form or a
 * browser retry never charges twice: the second submission replays the first answer. A card number
 * scanned into the amount field by mistake opens that card instead of becoming an amount.
 */
const T = texts({
  ru: {
    title: 'Касса',
    search: 'Карта: номер, штрихкод, телефон или имя',
    searchHint: 'Отсканируйте карту или введите номер и нажмите Enter. Esc — вернуться к поиску.',
    find: 'Найти',
    notFound: (q: string) => `Карта «${q}» не найдена.`,
    results: (n: number) => `Найдено карт: ${n}`,
    holder: 'Владелец',
    number: 'Номер карты',
    phone: 'Телефон',
    tier: 'Уровень',
    balance: 'Баланс',
    averageCheck: 'Средний чек',
    pending: 'Ждут подтверждения',
    pendingHint: 'Бонусы за вступление зачислятся после первой покупки или подтверждения телефона; оплатить ими пока нельзя.',
    visits: 'Покупок',
    open: 'Открыть',
    blocked: 'Карта заблокирована: начисление и списание недоступны.',
    purchase: 'Покупка',
    amount: (currency: string) => `Сумма чека, ${currency}`,
    amountHint: 'Введите сумму и нажмите Enter, чтобы начислить баллы.',
    redeemPoints: 'Списать баллов',
    redeemHint: (max: string, percent: string, value: string) => `Можно списать до ${max} (не больше ${percent} % чека; 1 балл = ${value}). Пусто — списать максимум.`,
    capBeforeAmount: (percent: string, value: string, balance: string) => `Баллами можно оплатить не больше ${percent} % чека (1 балл = ${value}); на карте ${balance}. Пусто — списать максимум.`,
    accrue: 'Начислить',
    redeem: 'Списать',
    errors: {
      amount: 'Введите сумму чека, например 1250 или 1250,50.',
      points: 'Введите число баллов или оставьте поле пустым.',
      pointsWithAccrue: 'Вы ввели баллы для списания, но выбрали «Начислить». Нажмите «Списать» или очистите поле баллов.',
      nothingToRedeem: 'Списывать нечего: на карте нет баллов, которые можно потратить на этот чек.',
      insufficient_points: (balance: string) => `Недостаточно баллов: на карте ${balance}.`,
      redemption_cap_exceeded: (max: string) => `Столько списать нельзя: на этот чек — не больше ${max}.`,
      card_blocked: 'Карта заблокирована.',
      receipt_already_recorded: 'Этот чек уже проведён.',
      idempotency_key_reused: 'Эта форма уже была отправлена с другими данными. Проверьте результат выше и введите покупку заново.',
      purchase_already_refunded: 'Эта покупка уже возвращена.',
      other: 'Операция не выполнена.',
    },
    done: 'Готово',
    accrued: 'Начислено',
    redeemed: 'Списано',
    toPay: 'К оплате',
    newBalance: 'Новый баланс',
    tierUp: (tier: string) => `Новый уровень: ${tier}`,
    refundDone: (returned: string, reversed: string, balance: string) => `Возврат проведён: возвращено ${returned}, списано начисленных ${reversed}. Баланс: ${balance}.`,
    shortfall: (n: string) => `Часть начисленных баллов (${n}) уже потрачена — баланс не ушёл в минус.`,
    lastPurchases: 'Последние покупки',
    noPurchases: 'Покупок ещё не было.',
    date: 'Дата',
    sum: 'Сумма',
    status: 'Статус',
    refunded: 'возврат',
    completed: 'проведена',
    refund: 'Вернуть',
    refundConfirm: 'Провести возврат этой покупки? Списанные баллы вернутся, начисленные — спишутся.',
    installQr: 'QR-код для установки карты в телефон',
    installQrText: 'Покажите код покупателю: камера телефона откроет страницу карты с кнопкой «Добавить в Wallet».',
    newCard: 'Новая карта',
    newCardLead: 'Покупателя нет в программе? Выпустите карту — бонус за регистрацию начислится сразу.',
    name: 'Имя',
    phoneField: 'Телефон',
    consent: 'Покупатель согласен получать новости и предложения',
    issue: 'Выпустить карту',
    issued: 'Карта выпущена. Покажите покупателю QR-код, чтобы он добавил карту в телефон.',
    existing: 'У этого номера уже есть карта — открыта она, повторный бонус не начислен.',
    nameRequired: 'Укажите имя.',
    phoneInvalid: 'Номер не похож на телефонный, например +7 916 123-45-67.',
    backToSearch: 'К поиску',
    // Mechanics and the quote (issue #17).
    discount: 'Скидка',
    nextLevel: 'Следующий уровень',
    nextLevelText: (percent: string, money: string) => `${percent} — осталось купить на ${money}`,
    topLevel: 'Максимальная скидка',
    stamps: 'Штампы',
    reward: 'Награда',
    items: 'Позиции чека (необязательно)',
    itemsHint: 'По строке на позицию: артикул; категория; количество; цена — например «латте; coffee; 2; 250». Без позиций считается весь чек; с ними сумму можно не вводить.',
    quote: 'Рассчитать',
    quoteTitle: 'Расчёт чека',
    quoteLead: 'Ничего не проведено. Проверьте суммы и нажмите «Провести покупку».',
    confirm: 'Провести покупку',
    edit: 'Изменить',
    check: 'Сумма чека',
    eligible: 'Участвует в программе',
    maxPoints: 'Можно списать',
    pointsToRedeem: 'Списать баллов',
    earns: 'Начислится',
    stampsEarned: 'Штампов за покупку',
    stampsAfter: 'Штампов станет',
    rewardsEarned: (n: number, name: string) => `Карта заполнена: награда «${name}» (${count('ru', n, 'rewards')})`,
    stampsExpired: (n: number) => `Сгорит за неактивность: ${count('ru', n, 'stamps')}`,
    discountGiven: 'Скидка',
    amountOrItems: 'Введите сумму чека или позиции.',
    itemsLine: (line: number) => `Строка ${line}: нужно «артикул; категория; количество; цена» (категорию можно пропустить), количество — целое от 1, цена — сумма.`,
    itemsTooMany: 'Не больше 200 позиций.',
    items_amount_mismatch: 'Сумма чека не равна сумме позиций. Исправьте сумму или оставьте её пустой.',
    coupons: 'Купоны',
    couponField: 'Купон',
    noCoupon: 'Без купона',
    couponUntil: (title: string, code: string, until: string) => `${title} — код ${code}, до ${until}`,
    giveCoupon: 'Выдать купон',
    giveCouponHint: 'Только владелец: один купон этой карте, он появится на карте в кошельке.',
    giveCouponButton: 'Выдать',
    couponGiven: (code: string) => `Купон выдан, код ${code}.`,
    couponNotGiven: 'Купон не выдан:',
    couponNotIssuable: 'этот купон сейчас не выдаётся (выключен или его срок прошёл).',
    couponDiscount: (code: string) => `Купон ${code}`,
    couponsApplicable: 'Подходящие купоны',
    couponPayableAfter: (title: string, code: string, discount: string, payable: string) => `${title} (${code}): −${discount}, к оплате ${payable}`,
    couponRefused: 'Купон не подходит к этому чеку.',
    couponGone: 'Такого купона на карте нет.',
    coupon_already_used: 'Этот купон уже использован.',
    coupon_expired: 'Срок действия купона истёк.',
    coupon_void: 'Купон отменён.',
  },
  en: {
    title: 'Till',
    search: 'Card: number, barcode, phone or name',
    searchHint: 'Scan the card or type the number and press Enter. Esc goes back to search.',
    find: 'Find',
    notFound: (q) => `No card “${q}”.`,
    results: (n) => `Cards found: ${n}`,
    holder: 'Holder',
    number: 'Card number',
    phone: 'Phone',
    tier: 'Tier',
    balance: 'Balance',
    averageCheck: 'Average check',
    pending: 'Awaiting confirmation',
    pendingHint: 'Joining bonuses are released by the first purchase or a verified phone; they cannot pay yet.',
    visits: 'Purchases',
    open: 'Open',
    blocked: 'This card is blocked: no accrual or redemption.',
    purchase: 'Purchase',
    amount: (currency) => `Check amount, ${currency}`,
    amountHint: 'Type the amount and press Enter to accrue points.',
    redeemPoints: 'Points to redeem',
    redeemHint: (max, percent, value) => `Up to ${max} (at most ${percent} % of the check; 1 point = ${value}). Empty: the most allowed.`,
    capBeforeAmount: (percent, value, balance) => `Points may pay at most ${percent} % of a check (1 point = ${value}); the card has ${balance}. Empty: the most allowed.`,
    accrue: 'Accrue',
    redeem: 'Redeem',
    errors: {
      amount: 'Enter the check amount, e.g. 1250 or 1250.50.',
      points: 'Enter a number of points or leave the field empty.',
      pointsWithAccrue: 'You entered points to redeem but chose “Accrue”. Press “Redeem” or clear the points field.',
      nothingToRedeem: 'Nothing to redeem: the card has no points that can pay for this check.',
      insufficient_points: (balance) => `Not enough points: the card has ${balance}.`,
      redemption_cap_exceeded: (max) => `That is too many: at most ${max} on this check.`,
      card_blocked: 'The card is blocked.',
      receipt_already_recorded: 'This receipt was already recorded.',
      idempotency_key_reused: 'This form was already sent with other values. Check the result above and enter the purchase again.',
      purchase_already_refunded: 'This purchase was already refunded.',
      other: 'The operation did not go through.',
    },
    done: 'Done',
    accrued: 'Accrued',
    redeemed: 'Redeemed',
    toPay: 'To pay',
    newBalance: 'New balance',
    tierUp: (tier) => `New tier: ${tier}`,
    refundDone: (returned, reversed, balance) => `Refunded: ${returned} returned, ${reversed} of the accrual taken back. Balance: ${balance}.`,
    shortfall: (n) => `Part of the accrued points (${n}) was already spent; the balance stopped at zero.`,
    lastPurchases: 'Recent purchases',
    noPurchases: 'No purchases yet.',
    date: 'Date',
    sum: 'Amount',
    status: 'Status',
    refunded: 'refunded',
    completed: 'completed',
    refund: 'Refund',
    refundConfirm: 'Refund this purchase? Redeemed points come back, accrued points are taken back.',
    installQr: 'QR code to install the card on a phone',
    installQrText: 'Show it to the customer: the phone camera opens the card page with “Add to Wallet”.',
    newCard: 'New card',
    newCardLead: 'Customer not in the programme yet? Issue a card; the welcome bonus is added at once.',
    name: 'Name',
    phoneField: 'Phone',
    consent: 'The customer agrees to receive news and offers',
    issue: 'Issue the card',
    issued: 'The card is issued. Show the customer the QR code so they add it to their phone.',
    existing: 'This phone already has a card; it is shown, no second bonus.',
    nameRequired: 'Enter a name.',
    phoneInvalid: 'This does not look like a phone number, e.g. +7 916 123-45-67.',
    backToSearch: 'Back to search',
    discount: 'Discount',
    nextLevel: 'Next level',
    nextLevelText: (percent, money) => `${percent} after ${money} more in purchases`,
    topLevel: 'Top discount',
    stamps: 'Stamps',
    reward: 'Reward',
    items: 'Check lines (optional)',
    itemsHint: 'One line per item: SKU; category; quantity; price, e.g. “latte; coffee; 2; 250”. Without lines the whole check counts; with them the amount may stay empty.',
    quote: 'Quote',
    quoteTitle: 'Check quote',
    quoteLead: 'Nothing is recorded yet. Check the figures and press “Confirm purchase”.',
    confirm: 'Confirm purchase',
    edit: 'Change',
    check: 'Check amount',
    eligible: 'Counts for the programme',
    maxPoints: 'Redeemable',
    pointsToRedeem: 'Points to redeem',
    earns: 'Earns',
    stampsEarned: 'Stamps for this purchase',
    stampsAfter: 'Stamps after',
    rewardsEarned: (n, name) => `The card is complete: reward “${name}” (${count('en', n, 'rewards')})`,
    stampsExpired: (n) => `Lost to inactivity: ${count('en', n, 'stamps')}`,
    discountGiven: 'Discount',
    amountOrItems: 'Enter the check amount or its lines.',
    itemsLine: (line) => `Line ${line}: write “SKU; category; quantity; price” (the category may be left out); quantity a whole number from 1, price an amount.`,
    itemsTooMany: 'At most 200 lines.',
    items_amount_mismatch: 'The check amount is not the sum of the lines. Correct it or leave it empty.',
    coupons: 'Coupons',
    couponField: 'Coupon',
    noCoupon: 'No coupon',
    couponUntil: (title, code, until) => `${title}: code ${code}, until ${until}`,
    giveCoupon: 'Give a coupon',
    giveCouponHint: 'Owner only: one coupon to this card; it shows on the card in the wallet.',
    giveCouponButton: 'Give',
    couponGiven: (code) => `Coupon given, code ${code}.`,
    couponNotGiven: 'The coupon was not given:',
    couponNotIssuable: 'this coupon is not being issued now (switched off, or its validity is over).',
    couponDiscount: (code) => `Coupon ${code}`,
    couponsApplicable: 'Coupons this check can use',
    couponPayableAfter: (title, code, discount, payable) => `${title} (${code}): −${discount}, to pay ${payable}`,
    couponRefused: 'The coupon does not fit this check.',
    couponGone: 'This card has no such coupon.',
    coupon_already_used: 'This coupon was already used.',
    coupon_expired: 'The coupon has expired.',
    coupon_void: 'The coupon was cancelled.',
  },
});

type Texts = (typeof T)['ru'];

interface PurchaseResult {
  purchaseId: string;
  amount: number;
  redeemed: number;
  accrued: number;
  payable: number;
  balance: number;
  tier: string;
  tierChanged: boolean;
  // Present for discount and stamps programs and for purchases with items (loyalty/schemas.ts).
  mechanic?: 'points' | 'discount' | 'stamps';
  discount?: number;
  discountPercent?: number;
  stampsAdded?: number;
  rewardsEarned?: number;
  stamps?: number;
  coupon?: { code: string; discount: number };
}
interface RefundResult {
  purchaseId: string;
  pointsReturned: number;
  pointsReversed: number;
  shortfall: number;
  balance: number;
}

/**
 * The check's lines as the cashier types them, one per line: `sku; category; quantity; price`
 * (`sku; quantity; price` without a category). `;` separates because a price may carry a decimal
 * comma ("250,50"). Returns the 1-based number of the first bad line instead of guessing.
 */
export function parseItemLines(text: string, currency: string): { items: LineItem[] } | { badLine: number } | { tooMany: true } {
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  const items: LineItem[] = [];
  for (let index = 0; index < lines.length; index++) {
    if (lines[index] === '') continue;
    const parts = lines[index].split(';').map((part) => part.trim());
    if (parts.length !== 3 && parts.length !== 4) return { badLine: index + 1 };
    const [sku, category] = parts.length === 4 ? [parts[0], parts[1]] : [parts[0], undefined];
    const quantity = parseWhole(parts[parts.length - 2]);
    const price = parseMoney(parts[parts.length - 1], currency);
    if (!sku || sku.length > 64 || (category !== undefined && (category === '' || category.length > 64))) return { badLine: index + 1 };
    if (quantity === undefined || quantity < 1 || quantity > 10_000 || price === undefined) return { badLine: index + 1 };
    items.push({ sku, ...(category ? { category } : {}), quantity, price });
    if (items.length > 200) return { tooMany: true };
  }
  return { items };
}

type Quote = Awaited<ReturnType<typeof quoteForCard>>;

/** The cabinet's idempotency keys live in the program's scope, apart from the API's by prefix. */
const idemKey = (formKey: string) => `cabinet:${formKey}`;

function tierName(rules: LoyaltyRules, code: string, lang: Lang): string {
  return rules.tiers.find((tier) => tier.code === code)?.name[lang] ?? code;
}

/** "₽", "$", or the code when the locale has no symbol. */
function currencySymbol(lang: Lang, currency: string): string {
  try {
    return new Intl.NumberFormat(lang === 'ru' ? 'ru-RU' : 'en-US', { style: 'currency', currency }).formatToParts(0).find((p) => p.type === 'currency')?.value ?? currency;
  } catch {
    return currency;
  }
}

function percentText(lang: Lang, value: number) {
  return new Intl.NumberFormat(lang === 'ru' ? 'ru-RU' : 'en-US', { maximumFractionDigits: 2 }).format(value);
}

export const cashierScreen: Screen = {
  nav: { path: '/app/cashier', label: { ru: 'Касса', en: 'Till' }, access: 'cashier', group: 'till' },
  routes: async (app, { kit }) => {
    const { ctx } = kit;
    const { db } = ctx;

    /** The search: large on the search page, one compact row above a card (still the first field). */
    const searchForm = (t: Texts, value: string, focus: boolean, compact = false) => html`<form method="get" action="/app/cashier" role="search" class="panel" data-cashier-search>
<div class="${compact ? 'inline-search' : ''}">
<div class="field">
<label for="f-q">${t.search}</label>
<p class="hint" id="f-q-hint">${t.searchHint}</p>
<input id="f-q" name="q" type="search" class="${compact ? '' : 'big-input'}" value="${value}" aria-describedby="f-q-hint" autocomplete="off" autocapitalize="off" spellcheck="false" enterkeyhint="search" maxlength="100"${focus ? html` autofocus` : ''} data-search-input>
</div>
<button class="button" type="submit">${t.find}</button>
</div>
</form>`;

    async function findCards(program: ProgramRow, query: string): Promise<CardRow[]> {
      const digits = normalizeScannedValue(query);
      let phone: string | undefined;
      try {
        phone = /\d{5,}/.test(query.replace(/\D/g, '')) ? normalizePhone(query, program.currency) : undefined;
      } catch {
        phone = undefined;
      }
      return searchCards(
        db,
        program.id,
        { number: /^\d+$/.test(digits) ? digits : undefined, externalNumber: /^[0-9A-Za-z]{1,64}$/.test(digits) ? digits : undefined, phone, namePrefix: query },
        20,
      );
    }

    const phoneOf = (session: CabinetSession, card: CardRow) => (session.role === 'owner' ? formatPhone(card.phone) : formatMaskedPhone(card.phone));

    // ---- search -------------------------------------------------------------------------------
    interface SearchState {
      status?: number;
      query?: string;
      issue?: { values: Record<string, string>; errors: FieldErrors };
    }

    async function searchPage(request: FastifyRequest, reply: FastifyReply, state: SearchState) {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const rules = program.rules as LoyaltyRules;
      const query = state.query ?? '';
      let results: SafeHtml | '' = '';
      if (query.length > 0) {
        const cards = query.length >= 2 || /^\d$/.test(query) ? await findCards(program, query) : [];
        if (cards.length === 1 && !state.issue) return kit.redirect(reply, `/app/cashier/cards/${cards[0].id}`);
        results =
          cards.length === 0
            ? notice(t.notFound(query), 'warn')
            : html`<section class="panel" aria-labelledby="results-title"><h2 id="results-title">${t.results(cards.length)}</h2>
<div class="table-wrap"><table><thead><tr><th scope="col">${t.holder}</th><th scope="col">${t.number}</th><th scope="col">${t.phone}</th><th scope="col">${t.tier}</th><th scope="col" class="num">${t.balance}</th></tr></thead><tbody>
${cards.map(
  (card) => html`<tr><td><a href="/app/cashier/cards/${card.id}">${card.holder_name}</a></td><td class="mono">${groupedCardNumber(card.number)}</td><td>${phoneOf(session, card)}</td><td>${tierName(rules, card.tier, l)}</td><td class="num">${formatNumber(l, card.balance)}</td></tr>`,
)}
</tbody></table></div></section>`;
      }
      const issue = state.issue ?? { values: {}, errors: {} };
      const body = html`<h1>${t.title}</h1>
${searchForm(t, query, !state.issue)}
${results}
<section class="panel" aria-labelledby="new-card-title">
<h2 id="new-card-title">${t.newCard}</h2>
<p class="muted">${t.newCardLead}</p>
${errorSummary(l, issue.errors)}
<form method="post" action="/app/cashier/cards" novalidate>
${csrfInput(session.csrf)}
<div class="row">
${field({ name: 'name', label: t.name, value: issue.values.name, errors: issue.errors, attrs: html` autocomplete="off" maxlength="200" required` })}
${field({ name: 'phone', label: t.phoneField, type: 'tel', value: issue.values.phone, errors: issue.errors, attrs: html` autocomplete="off" inputmode="tel" maxlength="32" required` })}
</div>
${checkbox({ name: 'consent', label: t.consent, checked: issue.values.consent === 'yes' })}
<button class="button secondary" type="submit">${t.issue}</button>
</form>
</section>`;
      return kit.page(request, reply, { status: state.status, title: t.title, body, path: '/app/cashier' });
    }

    app.get('/app/cashier', { config: { access: 'cashier' } }, async (request, reply) => {
      const q = typeof (request.query as Record<string, unknown>).q === 'string' ? ((request.query as Record<string, string>).q).trim().slice(0, 100) : '';
      return searchPage(request, reply, { query: q });
    });

    app.post('/app/cashier/cards', { config: { access: 'cashier' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const body = formBody(request);
      const values = { name: formText(body, 'name', 200), phone: formText(body, 'phone', 32), consent: formText(body, 'consent') === 'yes' ? 'yes' : '' };
      const errors: FieldErrors = {};
      if (!values.name) errors.name = t.nameRequired;
      const program = await getProgramOr404(db, session.programId);
      try {
        normalizePhone(values.phone, program.currency);
      } catch {
        errors.phone = t.phoneInvalid;
      }
      if (Object.keys(errors).length > 0) return searchPage(request, reply, { status: 422, issue: { values, errors } });
      const { card, created } = await db.transaction().execute(async (trx) => {
        const fresh = await getProgramOr404(trx, session.programId);
        return issueCard(
          trx,
          ctx.cardChanges,
          fresh,
          { holder: { name: values.name, phone: values.phone }, consent: values.consent === 'yes', staffId: session.staffId, source: 'cabinet' },
          `staff:${session.staffId}`,
        );
      });
      return kit.redirect(reply, `/app/cashier/cards/${card.id}?${created ? 'issued' : 'existing'}=1`);
    });

    // ---- the card -----------------------------------------------------------------------------
    interface CardState {
      status?: number;
      values?: { amount: string; points: string; items: string; coupon?: string };
      errors?: FieldErrors;
      /** A quote to confirm: what the till charges for the values above. */
      quote?: Quote;
      formError?: string;
      banner?: SafeHtml;
      /** After an operation the search field is focused (next customer); otherwise the amount. */
      focusSearch?: boolean;
      showInstallQr?: boolean;
    }

    async function cardPage(request: FastifyRequest, reply: FastifyReply, cardId: string, state: CardState) {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const rules = program.rules as LoyaltyRules;
      const card = await findCardInProgram(db, session.programId, cardId);
      if (!card) throw notFoundError();
      const [purchases, stats] = await Promise.all([
        db.selectFrom('purchase').selectAll().where('card_id', '=', card.id).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(10).execute(),
        db
          .selectFrom('purchase')
          .select([sql<number>`count(*)::int`.as('visits'), sql<number>`coalesce(sum(amount), 0)::bigint`.as('total')])
          .where('card_id', '=', card.id)
          .where('status', '=', 'completed')
          .executeTakeFirstOrThrow(),
      ]);
      const visits = Number(stats.visits);
      const average = visits > 0 ? Math.round(Number(stats.total) / visits) : 0;
      const money = (minor: number) => formatMoney(l, program.currency, minor);
      const pointValue = money(rules.redemption.pointValue);
      const percent = percentText(l, rules.redemption.maxPercent);
      const values = state.values ?? { amount: '', points: '', items: '', coupon: '' };
      // The card's usable coupons (src/coupons): listed on the card, chosen in the form.
      const usableCoupons = await couponsForQuote(db, session.programId, card.id, ctx.clock());
      const display = mechanicDisplay(card, program);
      const isPoints = display.kind === 'points';
      const errors = state.errors ?? {};
      const amountMinor = values.amount ? parseMoney(values.amount, program.currency) : undefined;
      const maxNow = amountMinor && amountMinor > 0 ? maxRedeemableFor(card, amountMinor, rules) : undefined;
      const capText = maxNow === undefined ? t.capBeforeAmount(percent, pointValue, points(l, card.balance)) : t.redeemHint(points(l, maxNow), percent, pointValue);
      const blocked = card.status !== 'active';
      const formKey = randomUUID();
      // The owner (the API's admin, who may POST /cards/{id}/coupons) can give this card one coupon.
      const giveOptions = session.role === 'owner' && !blocked ? await issuableDefinitions(db, session.programId, ctx.clock()) : [];
      const giveCoupon =
        giveOptions.length > 0
          ? html`<form method="post" action="/app/cashier/cards/${card.id}/coupons" class="inline-search no-print" data-give-coupon>
${csrfInput(session.csrf)}<input type="hidden" name="idem" value="${formKey}">
${select({ name: 'definitionId', label: t.giveCoupon, hint: t.giveCouponHint, options: giveOptions.map((d) => ({ value: d.id, label: couponOptionLabel(l, program.currency, d) })) })}
<button class="button secondary" type="submit">${t.giveCouponButton}</button>
</form>`
          : '';

      const itemsField = textarea({
        name: 'items',
        label: t.items,
        value: values.items,
        hint: t.itemsHint,
        errors,
        rows: 3,
        attrs: html` autocomplete="off" maxlength="20000" spellcheck="false" data-items`,
      });
      // A points card keeps its keyboard flow (amount + Enter accrues, points + Enter redeems) and
      // gains «Рассчитать»; a discount or stamp card is quoted first (Enter quotes): the cashier
      // must see the discount before charging, then confirms.
      const purchaseForm = blocked
        ? notice(t.blocked, 'warn')
        : html`<section class="panel" aria-labelledby="purchase-title">
<h2 id="purchase-title">${t.purchase}</h2>
${errorSummary(l, errors, state.formError)}
<form method="post" action="/app/cashier/cards/${card.id}/purchase" novalidate ${isPoints ? html`data-purchase-form data-balance="${card.balance}" data-max-percent="${rules.redemption.maxPercent}" data-point-value="${rules.redemption.pointValue}" data-digits="${currencyDigits(program.currency)}" data-lang="${l}"` : html`data-check-form`}>
${csrfInput(session.csrf)}
<input type="hidden" name="idem" value="${formKey}">
${field({
  name: 'amount',
  label: t.amount(currencySymbol(l, program.currency)),
  value: values.amount,
  hint: isPoints ? t.amountHint : undefined,
  errors,
  className: 'amount',
  attrs: html` class="big-input" inputmode="decimal" autocomplete="off" maxlength="20"${state.focusSearch || state.quote ? '' : html` autofocus`} data-amount`,
})}
${
  isPoints
    ? field({
        name: 'points',
        label: t.redeemPoints,
        value: values.points,
        hint: capText,
        errors,
        attrs: html` inputmode="numeric" autocomplete="off" maxlength="12" data-points`,
      })
    : ''
}
${itemsField}
${
  usableCoupons.length > 0
    ? html`<div class="field"><label for="f-coupon">${t.couponField}</label><select id="f-coupon" name="coupon" data-coupon>
<option value="">${t.noCoupon}</option>
${usableCoupons.map((c) => html`<option value="${c.code}"${values.coupon === c.code ? html` selected` : ''}>${c.title[l]} (${c.code})</option>`)}
</select></div>`
    : ''
}
<div class="actions">
${
  isPoints
    ? html`<button class="button accrue large" type="submit" name="mode" value="accrue" data-accrue>${t.accrue}</button>
<button class="button redeem large" type="submit" name="mode" value="redeem" data-redeem>${t.redeem}</button>
<button class="button secondary large" type="submit" name="mode" value="quote" data-quote>${t.quote}</button>`
    : html`<button class="button accrue large" type="submit" name="mode" value="quote" data-quote>${t.quote}</button>`
}
</div>
</form>
</section>`;

      const q = state.quote;
      const quotePanel = q
        ? html`<section class="panel quote" aria-labelledby="quote-title" data-quote-result>
<h2 id="quote-title">${t.quoteTitle}</h2>
<p class="muted">${t.quoteLead}</p>
<dl class="figures">
<div><dt>${t.check}</dt><dd data-q-amount>${money(q.amount)}</dd></div>
${q.eligibleAmount !== q.amount ? html`<div><dt>${t.eligible}</dt><dd data-q-eligible>${money(q.eligibleAmount)}</dd></div>` : ''}
${q.couponDiscount > 0 ? html`<div><dt>${t.couponDiscount(values.coupon ?? '')}</dt><dd data-q-coupon>−${money(q.couponDiscount)}</dd></div>` : ''}
${q.mechanic === 'discount' ? html`<div><dt>${t.discountGiven} ${percentSign(l, q.discountPercent)}</dt><dd data-q-discount>${money(q.discount)}</dd></div>` : ''}
${q.mechanic === 'points' ? html`<div><dt>${t.maxPoints}</dt><dd data-q-max-points>${points(l, q.maxRedeemablePoints)}</dd></div>` : ''}
${q.redeemed > 0 ? html`<div><dt>${t.redeemed}</dt><dd data-q-redeemed>${points(l, q.redeemed)} = ${money(q.redeemedValue)}</dd></div>` : ''}
<div><dt>${t.toPay}</dt><dd data-q-payable><strong>${money(q.payable)}</strong></dd></div>
${q.mechanic !== 'stamps' && q.accrued > 0 ? html`<div><dt>${t.earns}</dt><dd data-q-accrued>${points(l, q.accrued)}</dd></div>` : ''}
${q.mechanic === 'stamps' ? html`<div><dt>${t.stampsEarned}</dt><dd data-q-stamps-added>${formatNumber(l, q.stampsAdded)}</dd></div><div><dt>${t.stampsAfter}</dt><dd data-q-stamps-after>${q.stampsAfter} / ${q.perReward ?? 0}</dd></div>` : ''}
</dl>
${q.stampsExpired > 0 ? html`<p>${t.stampsExpired(q.stampsExpired)}</p>` : ''}
${
  !values.coupon && q.coupons.length > 0
    ? html`<p><strong>${t.couponsApplicable}</strong></p><ul data-q-coupons>${q.coupons.map((c) => html`<li>${t.couponPayableAfter(c.title[l], c.code, money(c.discount), money(c.payableAfter))}</li>`)}</ul>`
    : ''
}
${q.rewardsEarned > 0 ? html`<p data-q-reward><strong>${t.rewardsEarned(q.rewardsEarned, rules.stamps?.reward.name[l] ?? '')}</strong></p>` : ''}
${q.tierChanged ? html`<p><strong>${t.tierUp(tierName(rules, q.tierAfter, l))}</strong></p>` : ''}
<form method="post" action="/app/cashier/cards/${card.id}/purchase" novalidate>
${csrfInput(session.csrf)}
<input type="hidden" name="idem" value="${formKey}">
<input type="hidden" name="amount" value="${values.amount}">
<input type="hidden" name="items" value="${values.items}">
<input type="hidden" name="points" value="${q.redeemed > 0 ? String(q.redeemed) : ''}">
<input type="hidden" name="coupon" value="${values.coupon ?? ''}">
<div class="actions">
<button class="button accrue large" type="submit" name="mode" value="confirm" autofocus data-confirm-purchase>${t.confirm}</button>
</div>
</form>
</section>`
        : '';

      const history =
        purchases.length === 0
          ? html`<p class="muted">${t.noPurchases}</p>`
          : html`<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.date}</th><th scope="col" class="num">${t.sum}</th><th scope="col" class="num">${t.redeemed}</th><th scope="col" class="num">${t.accrued}</th><th scope="col" class="num">${t.toPay}</th><th scope="col">${t.status}</th><th scope="col"><span class="visually-hidden">${t.refund}</span></th></tr></thead>
<tbody>${purchases.map(
              (p) => html`<tr data-purchase="${p.id}">
<td>${formatDateTime(l, program.time_zone, p.created_at)}</td>
<td class="num">${money(p.amount)}</td>
<td class="num">${formatNumber(l, p.redeemed)}</td>
<td class="num">${formatNumber(l, p.accrued)}</td>
<td class="num">${money(p.payable)}</td>
<td>${p.status === 'refunded' ? html`<span class="badge warn">${t.refunded}</span>` : html`<span class="badge ok">${t.completed}</span>`}</td>
<td>${
                p.status === 'completed'
                  ? html`<form method="post" action="/app/cashier/purchases/${p.id}/refund" data-confirm="${t.refundConfirm}">${csrfInput(session.csrf)}<input type="hidden" name="idem" value="${randomUUID()}"><button class="button danger" type="submit">${t.refund}<span class="visually-hidden"> ${money(p.amount)}, ${formatDateTime(l, program.time_zone, p.created_at)}</span></button></form>`
                  : ''
              }</td>
</tr>`,
            )}</tbody></table></div>`;

      const installUrl = cardUrls(ctx.links.publicUrl, card).installUrl;
      const qr = await qrSvgInline(installUrl, t.installQr);
      const body = html`${searchForm(t, '', Boolean(state.focusSearch), true)}
${state.banner ?? ''}
${quotePanel}
<section class="panel" aria-labelledby="card-title" data-card="${card.id}">
<h1 id="card-title">${card.holder_name}</h1>
<dl class="figures">
${isPoints || card.balance > 0 ? html`<div><dt>${t.balance}</dt><dd data-balance>${formatNumber(l, card.balance)}</dd></div>` : ''}
${
  display.kind === 'discount'
    ? html`<div><dt>${t.discount}</dt><dd data-discount>${percentSign(l, display.percent)}</dd></div>
<div><dt>${t.nextLevel}</dt><dd data-next-level>${display.nextPercent !== null && display.spendToGo !== null ? t.nextLevelText(percentSign(l, display.nextPercent), money(display.spendToGo)) : t.topLevel}</dd></div>`
    : ''
}
${
  display.kind === 'stamps'
    ? html`<div><dt>${t.stamps}</dt><dd data-stamps>${display.value}</dd><dd class="sub">${t.reward}: ${rules.stamps?.reward.name[l] ?? ''}</dd></div>`
    : ''
}
<div><dt>${t.tier}</dt><dd data-tier>${tierName(rules, card.tier, l)}</dd></div>
${card.pending_points > 0 ? html`<div><dt>${t.pending}</dt><dd data-pending title="${t.pendingHint}">${formatNumber(l, card.pending_points)}</dd><dd class="sub">${t.pendingHint}</dd></div>` : ''}
<div><dt>${t.averageCheck}</dt><dd data-average>${money(average)}</dd></div>
<div><dt>${t.visits}</dt><dd>${formatNumber(l, visits)}</dd></div>
</dl>
${
  usableCoupons.length > 0
    ? html`<h2>${t.coupons}</h2><ul data-coupons>${usableCoupons.map((c) => html`<li data-coupon-code="${c.code}">${t.couponUntil(c.title[l], c.code, formatDateTime(l, program.time_zone, c.expiresAt))}</li>`)}</ul>`
    : ''
}
<p class="muted">${t.number}: <span class="mono">${groupedCardNumber(card.number)}</span> · ${t.phone}: ${phoneOf(session, card)}</p>
${giveCoupon}
</section>
${purchaseForm}
<section class="panel" aria-labelledby="history-title">
<h2 id="history-title">${t.lastPurchases}</h2>
${history}
</section>
<details class="panel"${state.showInstallQr ? html` open` : ''}>
<summary>${t.installQr}</summary>
<p>${t.installQrText}</p>
${raw(qr)}
<p class="mono small">${installUrl}</p>
</details>
<p><a href="/app/cashier">${t.backToSearch}</a></p>`;
      return kit.page(request, reply, { status: state.status, title: `${t.title}: ${card.holder_name}`, body, path: `/app/cashier/cards/${card.id}`, active: '/app/cashier' });
    }

    /** What an operation answered, read back from its idempotency record (Post/Redirect/Get). */
    async function storedResult<R>(programId: string, formKey: unknown): Promise<R | undefined> {
      if (typeof formKey !== 'string' || !UUID_RE.test(formKey)) return undefined;
      const row = await db
        .selectFrom('idempotency_record')
        .select(['status_code', 'response'])
        .where('scope', '=', programId)
        .where('key', '=', idemKey(formKey))
        .executeTakeFirst();
      if (!row || !row.status_code || row.status_code >= 300 || !row.response || typeof row.response !== 'object') return undefined;
      return row.response as R;
    }

    app.get<{ Params: { cardId: string }; Querystring: Record<string, string | undefined> }>(
      '/app/cashier/cards/:cardId',
      { config: { access: 'cashier' } },
      async (request, reply) => {
        const session = kit.session(request);
        const l = kit.lang(request);
        const t = T[l];
        const cardId = uuidParam(request.params.cardId);
        const q = request.query;
        const program = await getProgramOr404(db, session.programId);
        const rules = program.rules as LoyaltyRules;
        const money = (minor: number) => formatMoney(l, program.currency, minor);
        let banner: SafeHtml | undefined;
        const done = await storedResult<PurchaseResult>(session.programId, q.done);
        if (done) {
          banner = html`<section class="notice" role="status" aria-labelledby="done-title" data-result>
<h2 id="done-title">${t.done}</h2>
<dl class="figures">
${
  done.mechanic === 'discount'
    ? html`<div><dt>${t.discountGiven} ${percentSign(l, done.discountPercent ?? 0)}</dt><dd data-discount-given>${money(done.discount ?? 0)}</dd></div>`
    : ''
}
${
  done.mechanic === 'stamps'
    ? html`<div><dt>${t.stampsEarned}</dt><dd data-stamps-added>${formatNumber(l, done.stampsAdded ?? 0)}</dd></div><div><dt>${t.stamps}</dt><dd data-stamps-now>${done.stamps ?? 0} / ${rules.stamps?.perReward ?? 0}</dd></div>`
    : html`<div><dt>${t.accrued}</dt><dd data-accrued>${formatNumber(l, done.accrued)}</dd></div>
<div><dt>${t.redeemed}</dt><dd data-redeemed>${formatNumber(l, done.redeemed)}</dd></div>`
}
<div><dt>${t.toPay}</dt><dd data-payable>${money(done.payable)}</dd></div>
${done.mechanic === 'stamps' || done.mechanic === 'discount' ? '' : html`<div><dt>${t.newBalance}</dt><dd data-new-balance>${formatNumber(l, done.balance)}</dd></div>`}
</dl>
${done.tierChanged ? html`<p><strong>${t.tierUp(tierName(rules, done.tier, l))}</strong></p>` : ''}
${done.coupon ? html`<p data-coupon-used>${t.couponDiscount(done.coupon.code)}: −${money(done.coupon.discount)}</p>` : ''}
${(done.rewardsEarned ?? 0) > 0 ? html`<p data-reward-earned><strong>${t.rewardsEarned(done.rewardsEarned!, rules.stamps?.reward.name[l] ?? '')}</strong></p>` : ''}
</section>`;
        }
        const refunded = await storedResult<RefundResult>(session.programId, q.refunded);
        if (refunded) {
          banner = html`<div class="notice" role="status" data-result><p>${t.refundDone(points(l, refunded.pointsReturned), points(l, refunded.pointsReversed), points(l, refunded.balance))}</p>
${refunded.shortfall > 0 ? html`<p>${t.shortfall(points(l, refunded.shortfall))}</p>` : ''}</div>`;
        }
        const given = await storedResult<{ code: string }>(session.programId, q.coupon);
        if (given) banner = notice(html`<span data-coupon-given>${t.couponGiven(given.code)}</span>`);
        if (q.issued) banner = notice(t.issued);
        if (q.existing) banner = notice(t.existing);
        return cardPage(request, reply, cardId, { banner, focusSearch: Boolean(done || refunded), showInstallQr: Boolean(q.issued || q.existing) });
      },
    );

    /** A refusal by the rules, in the cashier's words. */
    function refusalText(t: Texts, l: Lang, error: AppError): string {
      const details = (error.details ?? {}) as Record<string, unknown>;
      switch (error.code) {
        case 'insufficient_points':
          return t.errors.insufficient_points(points(l, Number(details.balance ?? 0)));
        case 'redemption_cap_exceeded':
          return t.errors.redemption_cap_exceeded(points(l, Number(details.maxRedeemable ?? details.cap ?? 0)));
        case 'card_blocked':
        case 'receipt_already_recorded':
        case 'idempotency_key_reused':
        case 'purchase_already_refunded':
          return t.errors[error.code];
        case 'items_amount_mismatch':
          return t.items_amount_mismatch;
        case 'coupon_already_used':
        case 'coupon_expired':
        case 'coupon_void':
          return t[error.code];
        case 'coupon_min_check_not_met':
        case 'coupon_needs_items':
        case 'coupon_category_not_in_check':
        case 'coupon_item_not_in_check':
        case 'coupon_no_discount':
          return `${t.couponRefused} ${error.message}`;
        default:
          return `${t.errors.other} ${error.message}`;
      }
    }

    app.post<{ Params: { cardId: string } }>('/app/cashier/cards/:cardId/purchase', { config: { access: 'cashier' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const cardId = uuidParam(request.params.cardId);
      const body = formBody(request);
      const modeText = formText(body, 'mode');
      const mode = modeText === 'redeem' || modeText === 'quote' || modeText === 'confirm' ? modeText : 'accrue';
      const values = { amount: formText(body, 'amount', 40), points: formText(body, 'points', 20), items: formText(body, 'items', 20_000), coupon: formText(body, 'coupon', 32) };
      const couponCode = /^[A-Za-z0-9]{4,32}$/.test(values.coupon) ? values.coupon : undefined;
      const formKey = formText(body, 'idem', 64);
      if (!UUID_RE.test(formKey)) throw new AppError(400, 'bad_form', 'The form has no idempotency key; reload the page');

      // A scanner that fired into the amount or points field: open the scanned card instead.
      for (const typed of [values.amount, values.points]) {
        const scanned = normalizeScannedValue(typed);
        if (isValidCardNumber(scanned)) return kit.redirect(reply, `/app/cashier?q=${scanned}`);
      }

      const program = await getProgramOr404(db, session.programId);
      const rules = program.rules as LoyaltyRules;
      const errors: FieldErrors = {};
      let items: LineItem[] | undefined;
      if (values.items.trim() !== '') {
        const parsed = parseItemLines(values.items, program.currency);
        if ('items' in parsed) items = parsed.items.length > 0 ? parsed.items : undefined;
        else errors.items = 'badLine' in parsed ? t.itemsLine(parsed.badLine) : t.itemsTooMany;
      }
      // With lines the amount may be left out (it is their sum); without them it is required.
      const amount = values.amount === '' && (items || errors.items) ? undefined : parseMoney(values.amount, program.currency);
      if (values.amount !== '' || !(items || errors.items)) {
        if (amount === undefined || amount <= 0) errors.amount = values.amount === '' && !items ? t.amountOrItems : t.errors.amount;
      }
      let requested: number | undefined;
      if (values.points !== '') {
        requested = parseWhole(values.points);
        if (requested === undefined) errors.points = t.errors.points;
        else if (mode === 'accrue' && requested > 0) errors.points = t.errors.pointsWithAccrue;
      }
      if (Object.keys(errors).length > 0) return cardPage(request, reply, cardId, { status: 422, values, errors });

      if (mode === 'quote') {
        // Writes nothing: the same pricing the purchase will use, on the card as it is now.
        try {
          const quote = await quoteForCard(db, { programId: session.programId, cardId, amount, items, redeemPoints: requested ?? 0, couponCode, now: ctx.clock() });
          return cardPage(request, reply, cardId, { values, quote });
        } catch (error) {
          if (couponCode && error instanceof AppError && error.code === 'coupon_not_found') {
            return cardPage(request, reply, cardId, { status: 422, values, formError: t.couponGone });
          }
          if (!(error instanceof AppError) || error.status >= 500 || error.status === 404) throw error;
          return cardPage(request, reply, cardId, { status: 422, values, formError: refusalText(t, l, error) });
        }
      }

      try {
        const result = await runIdempotent(
          db,
          // The fingerprint is what the cashier sent (not the resolved points), so a resent form replays.
          { scope: session.programId, key: idemKey(formKey), operation: `purchase:${cardId}`, body: { amount: amount ?? null, items: items ?? null, mode, points: values.points, coupon: couponCode ?? null } },
          async (trx) => {
            let redeemPoints = 0;
            if (mode === 'confirm') redeemPoints = requested ?? 0;
            if (mode === 'redeem') {
              if (requested !== undefined) redeemPoints = requested;
              else {
                // "Redeem" with no number: the most the rules allow on this check, under the card lock.
                const card = await lockCardInProgram(trx, session.programId, cardId);
                if (!card) throw notFoundError();
                // With lines or a coupon the cap is on what they leave of the check: ask the quote.
                redeemPoints =
                  items || couponCode
                    ? (await quoteForCard(trx, { programId: session.programId, cardId, amount, items, couponCode, redeemPoints: 0, now: ctx.clock() })).maxRedeemablePoints
                    : maxRedeemableFor(card, amount!, rules);
              }
              if (redeemPoints <= 0) throw new AppError(422, 'nothing_to_redeem', 'Nothing to redeem');
            }
            return {
              status: 201,
              body: await recordPurchase(trx, ctx.cardChanges, {
                programId: session.programId,
                cardId,
                amount,
                items,
                redeemPoints,
                couponCode,
                actor: `staff:${session.staffId}`,
                idempotencyKey: idemKey(formKey),
                now: ctx.clock(),
              }),
            };
          },
        );
        return kit.redirect(reply, `/app/cashier/cards/${cardId}?done=${formKey}`);
      } catch (error) {
        if (couponCode && error instanceof AppError && error.code === 'coupon_not_found') {
          return cardPage(request, reply, cardId, { status: 422, values, formError: t.couponGone });
        }
        if (!(error instanceof AppError) || error.status >= 500) throw error;
        if (error.status === 404) throw error;
        const formError = error.code === 'nothing_to_redeem' ? t.errors.nothingToRedeem : refusalText(t, l, error);
        // A fresh form (new key) with the values kept: the refusal is stored under the old key.
        return cardPage(request, reply, cardId, { status: 422, values, formError });
      }
    });

    // One coupon to this card, as POST /api/v1/cards/{id}/coupons (admin = owner), under the form's idempotency key.
    app.post<{ Params: { cardId: string } }>('/app/cashier/cards/:cardId/coupons', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const cardId = uuidParam(request.params.cardId);
      const body = formBody(request);
      const formKey = formText(body, 'idem', 64);
      if (!UUID_RE.test(formKey)) throw new AppError(400, 'bad_form', 'The form has no idempotency key; reload the page');
      const definitionId = formText(body, 'definitionId', 64).toLowerCase();
      if (!(await findCardInProgram(db, session.programId, cardId))) throw notFoundError();
      try {
        if (!UUID_RE.test(definitionId)) throw new AppError(422, 'coupon_definition_not_found', 'Choose a coupon');
        await runIdempotent(db, { scope: session.programId, key: idemKey(formKey), operation: `coupon:${cardId}`, body: { definitionId } }, async (trx) => ({
          status: 201,
          body: await issueCoupon(trx, ctx.cardChanges, { programId: session.programId, cardId, definitionId, source: 'admin', actor: `staff:${session.staffId}`, now: ctx.clock() }),
        }));
        return kit.redirect(reply, `/app/cashier/cards/${cardId}?coupon=${formKey}`);
      } catch (error) {
        if (!(error instanceof AppError) || error.status >= 500 || (error.status === 404 && error.code !== 'coupon_definition_not_found')) throw error;
        const why = error.code.startsWith('coupon_definition_') ? t.couponNotIssuable : error.code === 'card_blocked' ? t.errors.card_blocked : error.message;
        return cardPage(request, reply, cardId, { status: 422, banner: notice(`${t.couponNotGiven} ${why}`, 'warn') });
      }
    });

    app.post<{ Params: { purchaseId: string } }>('/app/cashier/purchases/:purchaseId/refund', { config: { access: 'cashier' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const purchaseId = uuidParam(request.params.purchaseId);
      const formKey = formText(formBody(request), 'idem', 64);
      if (!UUID_RE.test(formKey)) throw new AppError(400, 'bad_form', 'The form has no idempotency key; reload the page');
      const purchase = await db.selectFrom('purchase').select(['id', 'card_id']).where('id', '=', purchaseId).where('program_id', '=', session.programId).executeTakeFirst();
      if (!purchase) throw notFoundError();
      try {
        await runIdempotent(db, { scope: session.programId, key: idemKey(formKey), operation: `refund:${purchaseId}`, body: null }, async (trx) => ({
          status: 200,
          body: await refundPurchase(trx, ctx.cardChanges, { programId: session.programId, purchaseId, actor: `staff:${session.staffId}`, idempotencyKey: idemKey(formKey), now: ctx.clock() }),
        }));
        return kit.redirect(reply, `/app/cashier/cards/${purchase.card_id}?refunded=${formKey}`);
      } catch (error) {
        if (!(error instanceof AppError) || error.status >= 500 || error.status === 404) throw error;
        return cardPage(request, reply, purchase.card_id, { status: error.status, banner: notice(refusalText(t, l, error), 'warn'), focusSearch: true });
      }
    });
  },
};

/**
 * The most points a whole-check purchase of `amount` may be paid with on this card: the quote's
 * answer, so a discount program's cap (on the check after the discount) is the purchase's cap.
 */
function maxRedeemableFor(card: { balance: number; lifetime_spend: number; tier: string; stamps: number }, amount: number, rules: LoyaltyRules): number {
  try {
    return quoteCheck({ amount, redeemPoints: 0, balance: card.balance, lifetimeSpend: card.lifetime_spend, tierCode: card.tier, stamps: card.stamps, rules })
      .maxRedeemablePoints;
  } catch (error) {
    // An amount the rules refuse: nothing is redeemable; the purchase itself answers the reason.
    if (error instanceof RuleViolation) return 0;
    throw error;
  }
}
