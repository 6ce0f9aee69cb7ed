import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Issue #17 "Done when": a coffee shop (stamps), a clothing store (a growing discount) and an
// outdoor retailer (points, ×2 on premium, tobacco excluded) are set up from fresh programs through
// the cabinet's settings forms alone (Settings → Rules for tiers, Settings → Mechanic for the rest),
// then serve a purchase at the till (the POS API) with the numbers the setup promises.

const RUB = 100;
type Headers = Record<string, string>;
type Rules = Record<string, unknown> & { tiers: Array<Record<string, unknown>> };

/** What a browser sends for the page's form: inputs, ticked checkboxes and radios, selected options. */
function browserForm(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [tag] of body.matchAll(/<input[^>]*>/g)) {
    const name = /name="([^"]+)"/.exec(tag)?.[1];
    if (!name) continue;
    if (/type="(checkbox|radio)"/.test(tag) && !/ checked/.test(tag)) continue;
    out[name] = /value="([^"]*)"/.exec(tag)?.[1] ?? '';
  }
  for (const [, name, options] of body.matchAll(/<select[^>]*name="([^"]+)"[^>]*>(.*?)<\/select>/gs)) {
    out[name] = /<option value="([^"]*)" selected>/.exec(options)?.[1] ?? /<option value="([^"]*)"/.exec(options)?.[1] ?? '';
  }
  return out;
}

describe(`cabinet: mechanics set up in Settings → Mechanic (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let phone = 5_550_000;
  const PASSWORD = 'mechanic password 1';

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  async function business(slug: string) {
    const created = await createProgramWithKeys(t.app, slug);
    await createStaff(t.app, created.program.id, { name: 'Владелец', role: 'owner', email: `owner@${slug}.example`, password: PASSWORD });
    const owner = await signIn(t.app, `owner@${slug}.example`, PASSWORD);
    return { ...created, owner };
  }
  const rulesOf = async (programId: string) => (await t.database.handle.db.selectFrom('program').select('rules').where('id', '=', programId).executeTakeFirstOrThrow()).rules as Rules;
  /** Opens a settings section, fills the form as a browser would, with `changes` on top (undefined = untick / leave out). */
  async function save(owner: CabinetClient, section: string, changes: Record<string, string | undefined>) {
    const page = await owner.get(`/app/settings/${section}`);
    expect(page.statusCode).toBe(200);
    const form: Record<string, string> = browserForm(page.body);
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined) delete form[key];
      else form[key] = value;
    }
    return owner.post(`/app/settings/${section}`, form);
  }
  async function ok(res: Promise<{ statusCode: number; body: string; json(): any }>, status = 201) {
    const r = await res;
    expect(r.statusCode, r.body).toBe(status);
    return r.json();
  }
  const post = (headers: Headers, url: string, payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url, headers, payload });
  const issueCard = (headers: Headers) => ok(post(headers, '/api/v1/cards', { holder: { name: 'Анна', phone: `+7916${(phone += 1)}` } }));

  it('a coffee shop: every 6th coffee, coffee only, from 150,50 RUB, the reward is a coupon', async () => {
    const shop = await business('cm-coffee');
    // The coupon definition comes from the coupons API (its cabinet screens are another change).
    const freeCoffee = await ok(post(shop.as('marketer'), '/api/v1/coupons/definitions', { title: { ru: 'Бесплатный кофе', en: 'Free coffee' }, kind: 'amount', amount: 250 * RUB, validDays: 30 }));
    const page = await shop.owner.get('/app/settings/mechanic');
    expect(page.body).toContain(`<option value="${freeCoffee.id}">Бесплатный кофе</option>`);
    expect(page.body).toContain('Каждая покупка — штамп');

    // Missing reward names and a silly stamp count: field errors, nothing saved.
    const before = await rulesOf(shop.program.id);
    const bad = await save(shop.owner, 'mechanic', { mechanic: 'stamps', stampsPerReward: '0', rewardRu: '', rewardEn: '' });
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('id="f-stampsPerReward-error">Введите целое число от 1 до 100.');
    expect(bad.body).toContain('id="f-rewardRu-error">Заполните поле.');
    expect(await rulesOf(shop.program.id)).toEqual(before);

    const saved = await save(shop.owner, 'mechanic', {
      mechanic: 'stamps',
      stampsPerReward: '6',
      stampsMinCheck: '150,50',
      stampsCategories: 'coffee',
      stampsExpireDays: '',
      rewardRu: 'Кофе в подарок',
      rewardEn: 'A free coffee',
      rewardCoupon: freeCoffee.id,
    });
    expect(saved.statusCode, saved.body).toBe(303);
    expect(saved.headers.location).toBe('/app/settings/mechanic?saved=1');
    const rules = await rulesOf(shop.program.id);
    expect(rules).toMatchObject({ mechanic: 'stamps', stamps: { perReward: 6, minCheck: 15_050, categories: ['coffee'], reward: { name: { ru: 'Кофе в подарок', en: 'A free coffee' }, coupon: freeCoffee.id } } });
    expect(rules.stamps).not.toHaveProperty('expireDays');
    // Everything outside the section is as stored.
    const { mechanic: _m, stamps: _s, ...rest } = rules;
    const { mechanic: _m0, stamps: _s0, ...restBefore } = before;
    expect(rest).toEqual(restBefore);
    // The page shows it back, with the plural.
    const shown = await shop.owner.get('/app/settings/mechanic?saved=1');
    expect(shown.body).toContain('Сейчас награда — за 6 штампов.');
    expect(shown.body).toContain(`<option value="${freeCoffee.id}" selected>`);
    expect(shown.body).toMatch(/id="f-mechanic-stamps"[^>]* checked/);

    // At the till: a cheap check does not stamp, coffee does (one per cup), the 6th earns the coupon.
    const card = await issueCard(shop.as('pos'));
    const latte = (quantity: number, price = 200 * RUB) => ({ items: [{ sku: 'latte', category: 'coffee', quantity, price }] });
    expect(await ok(post(shop.as('pos'), `/api/v1/cards/${card.id}/purchases`, latte(1, 100 * RUB)))).toMatchObject({ stamps: 0 });
    expect(await ok(post(shop.as('pos'), `/api/v1/cards/${card.id}/purchases`, { items: [{ sku: 'bun', category: 'food', quantity: 2, price: 200 * RUB }] }))).toMatchObject({ stamps: 0 });
    expect(await ok(post(shop.as('pos'), `/api/v1/cards/${card.id}/purchases`, latte(5)))).toMatchObject({ stamps: 5, rewardsEarned: 0 });
    expect(await ok(post(shop.as('pos'), `/api/v1/cards/${card.id}/purchases`, latte(1)))).toMatchObject({ stamps: 0, rewardsEarned: 1 });
    const coupons = await ok(t.app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}/coupons`, headers: shop.as('pos') }), 200);
    expect(coupons).toMatchObject([{ status: 'issued', source: 'stamps' }]);

    // A coupon that is not among the program's active ones is refused.
    const other = await save(shop.owner, 'mechanic', { rewardCoupon: '00000000-0000-4000-8000-000000000000' });
    expect(other.statusCode).toBe(422);
    expect(other.body).toContain('Выберите купон из списка.');
  });

  it('a clothing store: 5 % from the start, 10 % from 50,000 RUB of purchases', async () => {
    const store = await business('cm-clothes');
    // The tiers themselves: Settings → Rules.
    const tiers = await save(store.owner, 'rules', { tier0_ru: 'Базовая', tier0_en: 'Base', tier0_threshold: '0', tier1_ru: 'Золотая', tier1_en: 'Gold', tier1_threshold: '50 000' });
    expect(tiers.statusCode, tiers.body).toBe(303);
    const page = await store.owner.get('/app/settings/mechanic');
    expect(page.body).toContain('Базовая (от 0,00');
    expect(page.body).toContain('Золотая (от 50');

    // A discount falling as the tier rises is the rules' own error, shown on its field; nothing saved.
    const before = await rulesOf(store.program.id);
    const falling = await save(store.owner, 'mechanic', { mechanic: 'discount', tier0_discount: '10', tier1_discount: '5' });
    expect(falling.statusCode).toBe(422);
    expect(falling.body).toMatch(/id="f-tier1_discount-error">must not be lower than/);
    expect(falling.body).toContain('aria-invalid="true"');
    const empty = await save(store.owner, 'mechanic', { mechanic: 'discount', tier0_discount: '5', tier1_discount: '' });
    expect(empty.statusCode).toBe(422);
    expect(empty.body).toContain('id="f-tier1_discount-error">Заполните поле.');
    expect(await rulesOf(store.program.id)).toEqual(before);

    const saved = await save(store.owner, 'mechanic', { mechanic: 'discount', tier0_discount: '5', tier1_discount: '10' });
    expect(saved.statusCode, saved.body).toBe(303);
    const rules = await rulesOf(store.program.id);
    expect(rules.mechanic).toBe('discount');
    expect(rules.tiers.map((tier) => [(tier.name as { en: string }).en, tier.threshold, tier.discountPercent])).toEqual([
      ['Base', 0, 5],
      ['Gold', 50_000 * RUB, 10],
    ]);
    // Saving the rules section afterwards keeps the discount percents.
    expect((await save(store.owner, 'rules', { welcomeBonus: '0' })).statusCode).toBe(303);
    expect((await rulesOf(store.program.id)).tiers.map((tier) => tier.discountPercent)).toEqual([5, 10]);

    const card = await issueCard(store.as('pos'));
    const buy = (amount: number) => ok(post(store.as('pos'), `/api/v1/cards/${card.id}/purchases`, { amount }));
    expect(await buy(2_000 * RUB)).toMatchObject({ discount: 100 * RUB, payable: 1_900 * RUB, accrued: 0 });
    expect(await buy(60_000 * RUB)).toMatchObject({ discount: 3_000 * RUB, payable: 57_000 * RUB });
    // 58,900 RUB paid in all: Gold, 10 % from the next purchase.
    expect(await buy(1_000 * RUB)).toMatchObject({ discount: 100 * RUB, payable: 900 * RUB });
  });

  it('an outdoor retailer: points, ×2 on premium, tobacco excluded; the mechanic cannot switch once it has cards', async () => {
    const shop = await business('cm-outdoor');
    const before = await rulesOf(shop.program.id);
    const first = await save(shop.owner, 'mechanic', { mechanic: 'points', cat0_category: 'premium', cat0_multiplier: '2' });
    expect(first.statusCode, first.body).toBe(303);
    // The saved row is shown, with an empty row under it to add the next.
    const page = await shop.owner.get('/app/settings/mechanic');
    expect(page.body).toContain('name="catCount" value="2"');
    expect(page.body).toContain('Новая категория');

    // An excluded category with a multiplier, and a duplicate: the rules' errors on their rows.
    const wrong = await save(shop.owner, 'mechanic', { cat1_category: 'Premium', cat1_exclude: 'yes', cat1_multiplier: '3' });
    expect(wrong.statusCode).toBe(422);
    expect(wrong.body).toMatch(/id="f-cat1_category-error">duplicate category/);
    expect(wrong.body).toMatch(/id="f-cat1_multiplier-error">an excluded category earns nothing/);

    const second = await save(shop.owner, 'mechanic', { cat1_category: 'tobacco', cat1_exclude: 'yes' });
    expect(second.statusCode, second.body).toBe(303);
    const rules = await rulesOf(shop.program.id);
    expect(rules.categories).toEqual([
      { category: 'premium', multiplier: 2 },
      { category: 'tobacco', exclude: true },
    ]);
    const { mechanic: _m, categories: _c, ...rest } = rules;
    expect(rest).toEqual(before);

    const card = await issueCard(shop.as('pos'));
    const bought = await ok(
      post(shop.as('pos'), `/api/v1/cards/${card.id}/purchases`, {
        items: [
          { sku: 'jacket', category: 'premium', quantity: 1, price: 10_000 * RUB },
          { sku: 'tent', category: 'camping', quantity: 1, price: 5_000 * RUB },
          { sku: 'cigarettes', category: 'tobacco', quantity: 1, price: 300 * RUB },
        ],
      }),
    );
    // 5 % (the Standard tier) of 10,000 × 2 + 5,000; nothing on the tobacco.
    expect(bought).toMatchObject({ payable: 15_300 * RUB, accrued: 1_250 });

    // With a card, switching the mechanic is refused as a form error; nothing is saved.
    const locked = await shop.owner.get('/app/settings/mechanic');
    expect(locked.body).toContain('В программе уже 1 карта: механику можно сменить, только пока карт нет.');
    // (A multiplier is a points rule: with it, a switch is first the rules' own error on that row.)
    const multiplied = await save(shop.owner, 'mechanic', { mechanic: 'stamps', stampsPerReward: '6', rewardRu: 'Подарок', rewardEn: 'A gift' });
    expect(multiplied.statusCode).toBe(422);
    expect(multiplied.body).toMatch(/id="f-cat0_multiplier-error">only the points mechanic/);
    // Removing a row is allowed.
    expect((await save(shop.owner, 'mechanic', { cat0_remove: 'yes' })).statusCode).toBe(303);
    expect((await rulesOf(shop.program.id)).categories).toEqual([{ category: 'tobacco', exclude: true }]);
    const stored = await rulesOf(shop.program.id);
    const refused = await save(shop.owner, 'mechanic', { mechanic: 'stamps', stampsPerReward: '6', rewardRu: 'Подарок', rewardEn: 'A gift' });
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('Механика не изменена: в программе уже есть карты. Ничего не сохранено.');
    // The refused form keeps what was typed.
    expect(refused.body).toMatch(/id="f-mechanic-stamps"[^>]* checked/);
    expect(await rulesOf(shop.program.id)).toEqual(stored);
  });

  it('the section is owner-only and in English too', async () => {
    const shop = await business('cm-english');
    const en = await shop.owner.get('/app/settings/mechanic', { 'accept-language': 'en' });
    expect(en.statusCode).toBe(200);
    expect(en.body).toContain('What a purchase gives');
    expect(en.body).toContain('excluded (no points, no discount)');
    await createStaff(t.app, shop.program.id, { name: 'Кассир', role: 'cashier', email: 'cashier@cm-english.example', password: PASSWORD });
    const cashier = await signIn(t.app, 'cashier@cm-english.example', PASSWORD);
    const denied = await cashier.get('/app/settings/mechanic');
    expect(denied.statusCode).toBe(403);
    const csrf = cashier.csrf((await cashier.get('/app/cashier')).body);
    const post403 = await cashier.post('/app/settings/mechanic', { _csrf: csrf, mechanic: 'discount' });
    expect(post403.statusCode).toBe(403);
    expect((await rulesOf(shop.program.id)).mechanic).toBeUndefined();
  });
});
