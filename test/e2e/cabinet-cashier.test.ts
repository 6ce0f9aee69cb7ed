import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf } from '../support/pkpass.js';

// The till over HTTP: search, accrue, redeem (the cap), refund, double submission, a card scanned
// into the amount field, a new card, and what each role sees of the phone number.
describe(`cabinet till (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let program: { id: string };
  let as: (role: 'admin' | 'marketer' | 'pos') => Record<string, string>;
  let cashierStaff: { id: string };
  let till: CabinetClient;
  let card: { id: string; number: string; installUrl: string };
  const PASSWORD = 'till password 123';

  beforeAll(async () => {
    t = await startTestApp();
    ({ program, as } = await createProgramWithKeys(t.app, 'cabinet-till'));
    cashierStaff = await createStaff(t.app, program.id, { name: 'Кассир', role: 'cashier', email: 'till@example.com', password: PASSWORD });
    await createStaff(t.app, program.id, { name: 'Владелец', role: 'owner', email: 'boss@example.com', password: PASSWORD });
    card = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Иван Петров', phone: '+79161112233' } } })).json();
    await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Иван Сидоров', phone: '+79161112244' } } });
    till = await signIn(t.app, 'till@example.com', PASSWORD);
  });
  afterAll(async () => {
    await t?.close();
  });

  const purchases = () => t.database.handle.db.selectFrom('purchase').selectAll().where('card_id', '=', card.id).orderBy('created_at').execute();
  const balance = async () => (await t.database.handle.db.selectFrom('card').select('balance').where('id', '=', card.id).executeTakeFirstOrThrow()).balance;

  it('finds a card by number (as a scanner types it), phone or name', async () => {
    const page = await till.get('/app/cashier');
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<input id="f-q" name="q" type="search"[^>]* autofocus/);
    const scanned = await till.get(`/app/cashier?q=${encodeURIComponent(card.number.replace(/(\d{4})/g, '$1 '))}`);
    expect(scanned.statusCode).toBe(303);
    expect(scanned.headers.location).toBe(`/app/cashier/cards/${card.id}`);
    expect((await till.get(`/app/cashier?q=${encodeURIComponent('8 916 111-22-33')}`)).headers.location).toBe(`/app/cashier/cards/${card.id}`);
    const byName = await till.get(`/app/cashier?q=${encodeURIComponent('иван')}`);
    expect(byName.statusCode).toBe(200);
    expect(byName.body).toContain('Найдено карт: 2');
    expect(byName.body).toContain('+7 916 *** 22 33'); // a cashier sees a masked phone
    const none = await till.get('/app/cashier?q=000000000000');
    expect(none.body).toContain('не найдена');
  });

  it('shows the card with holder, tier, balance, the cap from the rules, and the amount field focused', async () => {
    const page = await till.get(`/app/cashier/cards/${card.id}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Иван Петров');
    expect(page.body).toContain('Стандартная');
    expect(page.body).toMatch(/data-balance>1\u00a0000</);
    expect(page.body).toMatch(/name="amount"[^>]* autofocus/);
    expect(page.body).toContain('не больше 30 % чека (1 балл = 1,00');
    expect(page.body).toMatch(/name="idem" value="[0-9a-f-]{36}"/);
  });

  it('accrues by check amount, shows the result, and a second submission of the same form charges nothing', async () => {
    const page = await till.get(`/app/cashier/cards/${card.id}`);
    const form = { _csrf: till.csrf(page.body), idem: till.hidden('idem', page.body), amount: '1 250,50', points: '', mode: 'accrue' };
    const first = await till.post(`/app/cashier/cards/${card.id}/purchase`, form);
    expect(first.statusCode).toBe(303);
    expect(first.headers.location).toBe(`/app/cashier/cards/${card.id}?done=${form.idem}`);
    const second = await till.post(`/app/cashier/cards/${card.id}/purchase`, form);
    expect(second.headers.location).toBe(first.headers.location);
    expect(await purchases()).toHaveLength(1);
    expect(await balance()).toBe(1000 + 62);
    const result = await till.get(first.headers.location!);
    expect(result.body).toMatch(/data-accrued>62</);
    expect(result.body).toMatch(/data-redeemed>0</);
    expect(result.body).toMatch(/data-payable>1\u00a0250,50\u00a0₽</);
    expect(result.body).toMatch(/data-new-balance>1\u00a0062</);
    // After a result the search field takes the focus (next customer).
    expect(result.body).toMatch(/name="q"[^>]* autofocus/);
    const ledger = await t.database.handle.db.selectFrom('ledger_entry').select(['actor', 'kind']).where('card_id', '=', card.id).where('kind', '=', 'accrual').execute();
    expect(ledger).toEqual([{ actor: `staff:${cashierStaff.id}`, kind: 'accrual' }]);
  });

  it('redeems: empty points take the most the cap allows; above the cap is refused with nothing changed', async () => {
    let page = await till.get(`/app/cashier/cards/${card.id}`);
    const over = await till.post(`/app/cashier/cards/${card.id}/purchase`, { _csrf: till.csrf(page.body), idem: till.hidden('idem', page.body), amount: '1000', points: '301', mode: 'redeem' });
    expect(over.statusCode).toBe(422);
    expect(over.body).toContain('не больше 300 баллов');
    expect(await purchases()).toHaveLength(1);
    // Points typed but "Accrue" pressed (Enter without the script): asked, not guessed.
    const ambiguous = await till.post(`/app/cashier/cards/${card.id}/purchase`, { _csrf: till.csrf(over.body), idem: till.hidden('idem', over.body), amount: '1000', points: '100', mode: 'accrue' });
    expect(ambiguous.statusCode).toBe(422);
    expect(ambiguous.body).toContain('нажали «Начислить»'.replace('нажали', 'выбрали'));
    page = await till.get(`/app/cashier/cards/${card.id}`);
    const redeem = await till.post(`/app/cashier/cards/${card.id}/purchase`, { _csrf: till.csrf(page.body), idem: till.hidden('idem', page.body), amount: '1000', points: '', mode: 'redeem' });
    expect(redeem.statusCode).toBe(303);
    const result = await till.get(redeem.headers.location!);
    expect(result.body).toMatch(/data-redeemed>300</);
    expect(result.body).toMatch(/data-payable>700,00\u00a0₽</);
    expect(result.body).toMatch(/data-accrued>35</);
    expect(await balance()).toBe(1062 - 300 + 35);
    // The same form again (a double click that got through): replayed, not a second redemption.
    const again = await till.post(`/app/cashier/cards/${card.id}/purchase`, { _csrf: till.csrf(page.body), idem: till.hidden('idem', page.body), amount: '1000', points: '', mode: 'redeem' });
    expect(again.headers.location).toBe(redeem.headers.location);
    expect(await purchases()).toHaveLength(2);
    expect(await balance()).toBe(797);
  });

  it('refunds a recent purchase once', async () => {
    const page = await till.get(`/app/cashier/cards/${card.id}`);
    const [, second] = await purchases();
    const formMatch = new RegExp(`action="/app/cashier/purchases/${second.id}/refund"[^>]*>.*?name="_csrf" value="([^"]+)".*?name="idem" value="([^"]+)"`, 's').exec(page.body)!;
    const form = { _csrf: formMatch[1], idem: formMatch[2] };
    const res = await till.post(`/app/cashier/purchases/${second.id}/refund`, form);
    expect(res.statusCode).toBe(303);
    const result = await till.get(res.headers.location!);
    expect(result.body).toContain('Возврат проведён: возвращено 300 баллов');
    expect(await balance()).toBe(1062);
    expect((await till.post(`/app/cashier/purchases/${second.id}/refund`, form)).headers.location).toBe(res.headers.location);
    const fresh = await till.post(`/app/cashier/purchases/${second.id}/refund`, { _csrf: form._csrf, idem: crypto.randomUUID() });
    expect(fresh.statusCode).toBe(409);
    expect(fresh.body).toContain('уже возвращена');
    expect(await balance()).toBe(1062);
  });

  it('a card number scanned into the amount field opens that card instead of charging', async () => {
    const page = await till.get(`/app/cashier/cards/${card.id}`);
    const res = await till.post(`/app/cashier/cards/${card.id}/purchase`, { _csrf: till.csrf(page.body), idem: till.hidden('idem', page.body), amount: card.number, points: '', mode: 'accrue' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/app/cashier?q=${card.number}`);
    expect(await purchases()).toHaveLength(2);
  });

  it('the Apple pass shows the new balance', async () => {
    const token = card.installUrl.split('/c/')[1];
    const pkpass = await t.app.inject({ method: 'GET', url: `/c/${token}/card.pkpass` });
    expect(pkpass.statusCode).toBe(200);
    const pass = passJsonOf(pkpass.rawPayload);
    const fields = [...pass.storeCard.headerFields, ...pass.storeCard.primaryFields, ...pass.storeCard.secondaryFields];
    expect(fields.find((f: { key: string }) => f.key === 'balance').value).toBe(1062);
  });

  it('issues a new card attributed to the cashier, and the owner sees the full phone', async () => {
    const page = await till.get('/app/cashier');
    const bad = await till.post('/app/cashier/cards', { _csrf: till.csrf(page.body), name: '', phone: '123' });
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('Укажите имя');
    const res = await till.post('/app/cashier/cards', { _csrf: till.csrf(page.body), name: 'Мария', phone: '8 916 700 00 09', consent: 'yes' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toMatch(/\/app\/cashier\/cards\/[0-9a-f-]{36}\?issued=1$/);
    const issued = await t.database.handle.db.selectFrom('card').selectAll().where('phone', '=', '+79167000009').executeTakeFirstOrThrow();
    expect(issued).toMatchObject({ staff_id: cashierStaff.id, source: 'cabinet', consent: true, balance: 1000 });
    const shown = await till.get(res.headers.location!);
    expect(shown.body).toContain('<details class="panel" open>');
    expect(shown.body).toContain('role="img"');
    const again = await till.post('/app/cashier/cards', { _csrf: till.csrf(page.body), name: 'Мария', phone: '+79167000009' });
    expect(again.headers.location).toBe(`/app/cashier/cards/${issued.id}?existing=1`);

    const owner = await signIn(t.app, 'boss@example.com', PASSWORD);
    // Written as people write it (libphonenumber-js); the cashier sees it masked.
    expect((await owner.get(`/app/cashier/cards/${card.id}`)).body).toContain('+7 916 111 22 33');
    const forCashier = (await till.get(`/app/cashier/cards/${card.id}`)).body;
    expect(forCashier).not.toContain('+7 916 111 22 33');
    expect(forCashier).toContain('+7 916 *** 22 33');
  });

  it("never shows another program's card", async () => {
    const other = await createProgramWithKeys(t.app, 'cabinet-till-other');
    const foreign = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: other.as('pos'), payload: { holder: { name: 'Чужой', phone: '+79169990000' } } })).json();
    expect((await till.get(`/app/cashier/cards/${foreign.id}`)).statusCode).toBe(404);
    expect((await till.get(`/app/cashier?q=${foreign.number}`)).body).toContain('не найдена');
    const page = await till.get(`/app/cashier/cards/${card.id}`);
    const res = await till.post(`/app/cashier/cards/${foreign.id}/purchase`, { _csrf: till.csrf(page.body), idem: crypto.randomUUID(), amount: '100', points: '', mode: 'accrue' });
    expect(res.statusCode).toBe(404);
  });
});
