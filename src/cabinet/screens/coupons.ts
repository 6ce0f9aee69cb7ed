import type { FastifyReply, FastifyRequest } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import { definitionCouponCounts, findDefinition, issuableDefinitions, listDefinitions, type CouponDefinitionRow } from '../../coupons/repository.js';
import { CreateCouponDefinitionSchema, type CreateCouponDefinition } from '../../coupons/schemas.js';
import { createDefinition, updateDefinition } from '../../coupons/service.js';
import type { Executor } from '../../db/database.js';
import { AppError } from '../../http/errors.js';
import { html, type SafeHtml } from '../../http/html.js';
import { getProgramOr404 } from '../../programs/service.js';
import { count, formatDate, formatMoney, formatNumber, moneyInputValue, parseMoney, parseWhole, texts, utcToZonedLocal, zonedLocalToUtc, type Lang } from '../i18n.js';
import { formBody, uuidParam, type Screen } from '../kit.js';
import { checkbox, csrfInput, errorSummary, field, formText, notice, select, type FieldErrors } from '../layout.js';

/**
 * «Купоны» (owner, marketer — as `/api/v1/coupons/definitions`): the program's coupon definitions
 * with what they give in words and how many were issued and redeemed, a form to create one and one
 * to change it (or switch it off and on). Everything goes through src/coupons/service.ts, so the
 * rules of a definition (the kind's value field, exactly one validity) are the API's; the bounds
 * of each field are the API schema's (CreateCouponDefinitionSchema), checked here per field so a
 * refused value is shown next to its field.
 */
const T = texts({
  ru: {
    title: 'Купоны',
    lead: 'Купон — разовая скидка для одной карты: процент, сумма или товар бесплатно. Купоны раздают рассылки и автоматизации (день рождения, возврат уснувших); на кассе купон погашается один раз.',
    create: 'Новый купон',
    edit: 'Изменить купон',
    list: 'Все купоны',
    none: 'Купонов пока нет.',
    name: 'Название',
    value: 'Что даёт',
    minCheck: 'Минимальный чек',
    categories: 'Категории',
    validity: 'Срок',
    state: 'Состояние',
    issued: 'Выдано',
    redeemed: 'Погашено',
    active: 'действует',
    inactive: 'выключен',
    open: 'Изменить',
    switchOff: 'Выключить',
    switchOn: 'Включить',
    anyCategory: 'все',
    noMin: 'нет',
    free: (sku: string) => `бесплатно: ${sku}`,
    validDays: (n: number) => `${count('ru', n, 'days')} с выдачи`,
    validUntil: (date: string) => `до ${date}`,
    fields: {
      title_ru: 'Название по-русски',
      title_en: 'Название по-английски',
      titleHint: 'Видно владельцу карты на карте и в кошельке. До 100 символов.',
      kind: 'Вид',
      percent: 'Скидка, %',
      amount: (c: string) => `Скидка, ${c}`,
      sku: 'Артикул бесплатного товара (SKU)',
      minCheck: (c: string) => `Минимальный чек, ${c}`,
      minCheckHint: 'Пусто или 0 — без минимума.',
      categories: 'Только категории (через запятую)',
      categoriesHint: 'Необязательно: скидка только на позиции чека этих категорий (касса передаёт позиции). Для процента и суммы.',
      validDays: 'Действует дней с выдачи',
      validUntil: 'Или действует до (включительно)',
      validityHint: (tz: string) => `Заполните одно из двух. Дата — по поясу ${tz}.`,
      active: 'Выдаётся (выключенный купон не выдаётся, уже выданные можно погасить)',
    },
    kinds: { percent: 'Процент от чека', amount: 'Сумма', free_item: 'Товар бесплатно' } as Record<string, string>,
    save: 'Сохранить',
    createButton: 'Создать купон',
    saved: 'Купон сохранён.',
    switchedOff: 'Купон выключен: новые не выдаются.',
    switchedOn: 'Купон включён.',
    errors: {
      title: 'Напишите название: от 1 до 100 символов.',
      percent: 'Целое число процентов от 1 до 100.',
      amount: 'Введите сумму больше нуля.',
      sku: 'Укажите артикул: до 100 символов.',
      minCheck: 'Введите сумму (или оставьте пустым).',
      categories: 'До 20 разных категорий, каждая до 64 символов.',
      categoriesFree: 'Категории — только для процента и суммы: бесплатный товар задаётся артикулом.',
      validDays: 'Целое число дней от 1 до 3650.',
      validUntil: 'Укажите дату в будущем.',
      validity: 'Заполните одно: число дней или дату.',
      invalid: 'Купон не сохранён:',
    },
  },
  en: {
    title: 'Coupons',
    lead: 'A coupon is a one-time discount for one card: a percent, an amount or a free item. Campaigns and automations (birthday, win-back) hand them out; the till redeems a coupon once.',
    create: 'New coupon',
    edit: 'Change the coupon',
    list: 'All coupons',
    none: 'No coupons yet.',
    name: 'Name',
    value: 'Gives',
    minCheck: 'Minimum check',
    categories: 'Categories',
    validity: 'Valid',
    state: 'State',
    issued: 'Issued',
    redeemed: 'Redeemed',
    active: 'active',
    inactive: 'switched off',
    open: 'Change',
    switchOff: 'Switch off',
    switchOn: 'Switch on',
    anyCategory: 'all',
    noMin: 'none',
    free: (sku) => `free: ${sku}`,
    validDays: (n) => `${count('en', n, 'days')} from issue`,
    validUntil: (date) => `until ${date}`,
    fields: {
      title_ru: 'Name in Russian',
      title_en: 'Name in English',
      titleHint: 'The card holder sees it on the card and in the wallet. Up to 100 characters.',
      kind: 'Kind',
      percent: 'Discount, %',
      amount: (c) => `Discount, ${c}`,
      sku: 'SKU of the free item',
      minCheck: (c) => `Minimum check, ${c}`,
      minCheckHint: 'Empty or 0: no minimum.',
      categories: 'Only these categories (comma-separated)',
      categoriesHint: 'Optional: the discount applies only to the check lines of these categories (the till sends the lines). Percent and amount only.',
      validDays: 'Valid for days after issue',
      validUntil: 'Or valid until (inclusive)',
      validityHint: (tz) => `Fill in one of the two. The date is in ${tz}.`,
      active: 'Issued (a switched-off coupon is not handed out; coupons already issued can still be redeemed)',
    },
    kinds: { percent: 'Percent off', amount: 'Amount off', free_item: 'Free item' },
    save: 'Save',
    createButton: 'Create the coupon',
    saved: 'Coupon saved.',
    switchedOff: 'Coupon switched off: no new ones are issued.',
    switchedOn: 'Coupon switched on.',
    errors: {
      title: 'Write a name: 1 to 100 characters.',
      percent: 'A whole percent from 1 to 100.',
      amount: 'Enter an amount above zero.',
      sku: 'Enter the SKU: up to 100 characters.',
      minCheck: 'Enter an amount (or leave it empty).',
      categories: 'Up to 20 different categories, each up to 64 characters.',
      categoriesFree: 'Categories are for percent and amount coupons: a free item is named by its SKU.',
      validDays: 'A whole number of days from 1 to 3650.',
      validUntil: 'Enter a date in the future.',
      validity: 'Fill in one: the number of days or the date.',
      invalid: 'The coupon was not saved:',
    },
  },
});
type Msg = (typeof T)['ru'];

const KINDS = ['percent', 'amount', 'free_item'] as const;
const FIELDS = ['title_ru', 'title_en', 'kind', 'percent', 'amount', 'sku', 'minCheck', 'categories', 'validDays', 'validUntil', 'active'] as const;

/** What a definition gives, in words: «−10 %», «−500,00 ₽», «бесплатно: LATTE». */
export function couponValueText(l: Lang, currency: string, d: Pick<CouponDefinitionRow, 'kind' | 'percent' | 'amount' | 'sku'>): string {
  const t = T[l];
  if (d.kind === 'percent') return `−${formatNumber(l, d.percent ?? 0)} %`;
  if (d.kind === 'amount') return `−${formatMoney(l, currency, Number(d.amount ?? 0))}`;
  return t.free(d.sku ?? '');
}

/** A definition as one line of a select: its title and what it gives. */
export const couponOptionLabel = (l: Lang, currency: string, d: CouponDefinitionRow) => `${d.title[l]} (${couponValueText(l, currency, d)})`;

/**
 * The options of a «Coupon for each recipient» select: none, then the definitions that can issue
 * now. `keep` (the value stored already) stays listed even if switched off since, so saving a form
 * unchanged does not drop it; it is marked as switched off.
 */
export async function couponSelectOptions(db: Executor, programId: string, l: Lang, currency: string, now: Date, none: string, keep?: string) {
  const rows = await issuableDefinitions(db, programId, now);
  const options = [{ value: '', label: none }, ...rows.map((d) => ({ value: d.id, label: couponOptionLabel(l, currency, d) }))];
  if (keep && !rows.some((d) => d.id === keep)) {
    const kept = await findDefinition(db, programId, keep);
    if (kept) options.push({ value: kept.id, label: `${couponOptionLabel(l, currency, kept)} — ${T[l].inactive}` });
  }
  return options;
}

/** The form's values of a stored definition. */
function valuesOf(l: Lang, currency: string, timeZone: string, d: CouponDefinitionRow): Record<string, string> {
  return {
    title_ru: d.title.ru,
    title_en: d.title.en,
    kind: d.kind,
    percent: d.percent === null ? '' : String(d.percent),
    amount: d.amount === null ? '' : moneyInputValue(currency, Number(d.amount), l),
    sku: d.sku ?? '',
    minCheck: Number(d.min_check) === 0 ? '' : moneyInputValue(currency, Number(d.min_check), l),
    categories: (d.categories ?? []).join(', '),
    validDays: d.valid_days === null ? '' : String(d.valid_days),
    // "Valid until" is inclusive: the stored moment is the start of the next local day.
    validUntil: d.valid_until ? utcToZonedLocal(new Date(d.valid_until.getTime() - 60_000), timeZone).slice(0, 10) : '',
    active: d.active ? 'yes' : '',
  };
}

const NEW_VALUES: Record<string, string> = { kind: 'percent', validDays: '30', active: 'yes' };

/**
 * The definition the form stands for, or the errors per field. The bounds are the API schema's;
 * the rules of the whole (the kind's value, one validity) are checked here too so that each
 * refusal stands at its field — the service checks them again.
 */
function inputOf(t: Msg, values: Record<string, string>, currency: string, timeZone: string, now: Date): { input?: CreateCouponDefinition; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const kind = (KINDS as readonly string[]).includes(values.kind) ? (values.kind as CreateCouponDefinition['kind']) : 'percent';
  const input: Record<string, unknown> = { title: { ru: values.title_ru, en: values.title_en }, kind, active: values.active === 'yes' };
  if (!values.title_ru || values.title_ru.length > 100) errors.title_ru = t.errors.title;
  if (!values.title_en || values.title_en.length > 100) errors.title_en = t.errors.title;
  if (kind === 'percent') {
    const n = parseWhole(values.percent);
    if (n === undefined || n < 1 || n > 100) errors.percent = t.errors.percent;
    else input.percent = n;
  } else if (kind === 'amount') {
    const n = parseMoney(values.amount, currency);
    if (n === undefined || n < 1) errors.amount = t.errors.amount;
    else input.amount = n;
  } else if (!values.sku || values.sku.length > 100) errors.sku = t.errors.sku;
  else input.sku = values.sku;
  if (values.minCheck) {
    const n = parseMoney(values.minCheck, currency);
    if (n === undefined) errors.minCheck = t.errors.minCheck;
    else input.minCheck = n;
  }
  const categories = [...new Set(values.categories.split(',').map((c) => c.trim()).filter(Boolean))];
  if (categories.length > 0) {
    if (kind === 'free_item') errors.categories = t.errors.categoriesFree;
    else input.categories = categories;
  }
  if (values.validDays && values.validUntil) errors.validUntil = t.errors.validity;
  else if (!values.validDays && !values.validUntil) errors.validDays = t.errors.validity;
  else if (values.validDays) {
    const n = parseWhole(values.validDays);
    if (n === undefined || n < 1 || n > 3650) errors.validDays = t.errors.validDays;
    else input.validDays = n;
  } else {
    // Inclusive: valid through the whole local day, so until the next day's midnight.
    const day = /^\d{4}-\d{2}-\d{2}$/.test(values.validUntil) ? new Date(`${values.validUntil}T00:00:00Z`) : undefined;
    const next = day && !Number.isNaN(day.getTime()) ? zonedLocalToUtc(new Date(day.getTime() + 86_400_000).toISOString().slice(0, 16), timeZone) : undefined;
    if (!next || next.getTime() <= now.getTime() || next.getUTCFullYear() > 2999) errors.validUntil = t.errors.validUntil;
    else input.validUntil = next.toISOString();
  }
  // The API schema's bounds (lengths, counts) for what is left; validUntil is checked above (Value knows no formats).
  const { validUntil, ...rest } = input;
  for (const e of Value.Errors(CreateCouponDefinitionSchema, rest)) {
    const name = e.path.startsWith('/title/') ? `title_${e.path.split('/')[2]}` : (e.path.split('/')[1] ?? '');
    if (!errors[name]) errors[name] = name === 'categories' ? t.errors.categories : (t.errors as Record<string, string>)[name.startsWith('title') ? 'title' : name] ?? e.message;
  }
  void validUntil;
  return Object.keys(errors).length > 0 ? { errors } : { input: input as CreateCouponDefinition, errors };
}

export const couponsScreen: Screen = {
  nav: { path: '/app/coupons', label: { ru: 'Купоны', en: 'Coupons' }, access: 'marketing', group: 'marketing' },
  routes: async (app, { kit }) => {
    const { ctx } = kit;
    const { db } = ctx;

    app.get('/app/coupons', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const rows = await listDefinitions(db, session.programId, 500);
      const counts = await definitionCouponCounts(db, session.programId);
      const q = request.query as Record<string, string | undefined>;
      const info = q.saved ? t.saved : q.off ? t.switchedOff : q.on ? t.switchedOn : undefined;
      const money = (minor: number) => formatMoney(l, program.currency, minor);
      const validity = (d: CouponDefinitionRow) =>
        d.valid_days !== null ? t.validDays(d.valid_days) : d.valid_until ? t.validUntil(formatDate(l, session.timeZone, new Date(d.valid_until.getTime() - 60_000))) : '—';
      const row = (d: CouponDefinitionRow) => {
        const c = counts.get(d.id) ?? { issued: 0, redeemed: 0 };
        return html`<tr data-definition="${d.id}"><th scope="row"><a href="/app/coupons/${d.id}">${d.title[l]}</a></th>
<td data-value>${couponValueText(l, program.currency, d)}</td>
<td class="num">${Number(d.min_check) > 0 ? money(Number(d.min_check)) : t.noMin}</td>
<td>${d.categories?.length ? d.categories.join(', ') : t.anyCategory}</td>
<td>${validity(d)}</td>
<td><span class="badge${d.active ? ' ok' : ''}" data-state>${d.active ? t.active : t.inactive}</span></td>
<td class="num" data-issued>${formatNumber(l, c.issued)}</td><td class="num" data-redeemed>${formatNumber(l, c.redeemed)}</td>
<td><form method="post" action="/app/coupons/${d.id}/${d.active ? 'off' : 'on'}">${csrfInput(session.csrf)}<button class="button secondary" type="submit">${d.active ? t.switchOff : t.switchOn}</button></form></td></tr>`;
      };
      return kit.page(request, reply, {
        title: t.title,
        body: html`<h1>${t.title}</h1>
<p>${t.lead}</p>
${info ? notice(info) : ''}
<p><a class="button" href="/app/coupons/new">${t.create}</a></p>
<section class="panel" aria-labelledby="list-title">
<h2 id="list-title">${t.list}</h2>
${
  rows.length === 0
    ? html`<p class="muted">${t.none}</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th scope="col">${t.name}</th><th scope="col">${t.value}</th><th scope="col" class="num">${t.minCheck}</th><th scope="col">${t.categories}</th><th scope="col">${t.validity}</th><th scope="col">${t.state}</th><th scope="col" class="num">${t.issued}</th><th scope="col" class="num">${t.redeemed}</th><th scope="col"><span class="visually-hidden">${t.switchOff}</span></th></tr></thead>
<tbody>${rows.map(row)}</tbody></table></div>`
}
</section>`,
      });
    });

    interface FormState {
      status?: number;
      values: Record<string, string>;
      errors?: FieldErrors;
      formError?: string;
    }

    async function form(request: FastifyRequest, reply: FastifyReply, id: string | undefined, state: FormState) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const program = await getProgramOr404(db, session.programId);
      const v = state.values;
      const errors = state.errors ?? {};
      const action = id ? `/app/coupons/${id}` : '/app/coupons';
      const title = id ? t.edit : t.create;
      const body: SafeHtml = html`<p><a href="/app/coupons">${t.list}</a></p>
<h1>${title}</h1>
${errorSummary(l, errors, state.formError)}
<form method="post" action="${action}" novalidate>
${csrfInput(session.csrf)}
<section class="panel">
<div class="row">
${field({ name: 'title_ru', label: t.fields.title_ru, value: v.title_ru, hint: t.fields.titleHint, errors, attrs: html` maxlength="100" lang="ru"` })}
${field({ name: 'title_en', label: t.fields.title_en, value: v.title_en, errors, attrs: html` maxlength="100" lang="en"` })}
</div>
${select({ name: 'kind', label: t.fields.kind, value: v.kind, errors, options: KINDS.map((k) => ({ value: k, label: t.kinds[k]! })) })}
<div class="row">
${field({ name: 'percent', label: t.fields.percent, value: v.percent, errors, attrs: html` inputmode="numeric" maxlength="3"` })}
${field({ name: 'amount', label: t.fields.amount(program.currency), value: v.amount, errors, attrs: html` inputmode="decimal" maxlength="16"` })}
${field({ name: 'sku', label: t.fields.sku, value: v.sku, errors, attrs: html` maxlength="100"` })}
</div>
<div class="row">
${field({ name: 'minCheck', label: t.fields.minCheck(program.currency), value: v.minCheck, hint: t.fields.minCheckHint, errors, attrs: html` inputmode="decimal" maxlength="16"` })}
${field({ name: 'categories', label: t.fields.categories, value: v.categories, hint: t.fields.categoriesHint, errors, attrs: html` maxlength="1400"` })}
</div>
<p class="hint">${t.fields.validityHint(session.timeZone)}</p>
<div class="row">
${field({ name: 'validDays', label: t.fields.validDays, value: v.validDays, errors, attrs: html` inputmode="numeric" maxlength="4"` })}
${field({ name: 'validUntil', label: t.fields.validUntil, type: 'date', value: v.validUntil, errors })}
</div>
${checkbox({ name: 'active', label: t.fields.active, checked: v.active === 'yes' })}
<div class="actions"><button class="button large" type="submit">${id ? t.save : t.createButton}</button></div>
</section>
</form>`;
      return kit.page(request, reply, { status: state.status, title, body, path: id ? `/app/coupons/${id}` : '/app/coupons/new', active: '/app/coupons' });
    }

    const readValues = (request: FastifyRequest) => {
      const body = formBody(request);
      return Object.fromEntries(FIELDS.map((f) => [f, formText(body, f, f === 'categories' ? 1400 : f.startsWith('title') || f === 'sku' ? 200 : 20)]));
    };

    /** Saves through the service; its refusal (the rules of the whole) becomes the form's error. */
    async function save(request: FastifyRequest, reply: FastifyReply, id: string | undefined) {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const program = await getProgramOr404(db, session.programId);
      const values = readValues(request);
      const { input, errors } = inputOf(t, values, program.currency, session.timeZone, ctx.clock());
      if (!input) return form(request, reply, id, { status: 422, values, errors });
      try {
        if (id) {
          // A full replacement: fields left empty are dropped (categories null, the other validity dropped by the service).
          await updateDefinition(db, session.programId, id, {
            ...input,
            categories: input.categories ?? null,
            minCheck: input.minCheck ?? 0,
          });
        } else await createDefinition(db, session.programId, input);
      } catch (error) {
        if (error instanceof AppError && error.status === 422) return form(request, reply, id, { status: 422, values, formError: `${t.errors.invalid} ${error.message}` });
        throw error;
      }
      return kit.redirect(reply, '/app/coupons?saved=1');
    }

    app.get('/app/coupons/new', { config: { access: 'marketing' } }, async (request, reply) => form(request, reply, undefined, { values: NEW_VALUES }));
    app.post('/app/coupons', { config: { access: 'marketing' } }, async (request, reply) => save(request, reply, undefined));

    const definitionOr404 = async (programId: string, id: string) => {
      const row = await findDefinition(db, programId, id);
      if (!row) throw new AppError(404, 'not_found', 'Coupon definition not found');
      return row;
    };

    app.get<{ Params: { id: string } }>('/app/coupons/:id', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const program = await getProgramOr404(db, session.programId);
      const row = await definitionOr404(session.programId, uuidParam(request.params.id));
      return form(request, reply, row.id, { values: valuesOf(l, program.currency, session.timeZone, row) });
    });

    app.post<{ Params: { id: string } }>('/app/coupons/:id', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const row = await definitionOr404(session.programId, uuidParam(request.params.id));
      return save(request, reply, row.id);
    });

    for (const to of ['on', 'off'] as const) {
      app.post<{ Params: { id: string } }>(`/app/coupons/:id/${to}`, { config: { access: 'marketing' } }, async (request, reply) => {
        const session = kit.session(request);
        const row = await definitionOr404(session.programId, uuidParam(request.params.id));
        await updateDefinition(db, session.programId, row.id, { active: to === 'on' });
        return kit.redirect(reply, `/app/coupons?${to}=1`);
      });
    }
  },
};
