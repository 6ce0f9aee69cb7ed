import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { pushToken, register } from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { createTestClock, formInputs, getPage, newVisitor, type Visitor } from '../support/join-form.js';
import { startSmsStandIn, type SmsStandIn } from '../support/sms-stand-in.js';

// Issue #12: "I already have a card" on the join page. The holder of an imported plastic card gives
// its number and their phone and gets the EXISTING card's page (balance kept, never a second card);
// the phone is proven by a one-time code when an SMS gateway is configured, otherwise by the card's
// first purchase at the till. A wrong number and a wrong phone get the same answer.
describe(`join page: "I already have a card" (${TEST_DATABASE_KIND} database)`, () => {
  type Shop = Awaited<ReturnType<typeof createProgramWithKeys>>;

  const CSV = ['Номер карты;Телефон;ФИО;Баланс', '3000 0001;8 916 555-00-01;Анна;1500', '3000-0002;+79165550002;Борис;250', '30000003;+79165550003;Вера;0'].join('\r\n');

  async function importBase(t: TestApp, slug: string): Promise<Shop> {
    const shop = await createProgramWithKeys(t.app, slug, { defaultLanguage: 'en' });
    const admin = shop.as('admin');
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/imports', headers: { ...admin, 'content-type': 'text/csv' }, payload: CSV });
    expect(res.statusCode, res.body).toBe(202);
    const id: string = res.json().id;
    await waitFor(async () => (await t.app.inject({ method: 'GET', url: `/api/v1/imports/${id}`, headers: admin })).json().status === 'finished', { what: 'the import' });
    return shop;
  }

  const cardsOf = (t: TestApp, programId: string) =>
    t.database.handle.db.selectFrom('card').selectAll().where('program_id', '=', programId).orderBy('external_number').execute();
  const ledgerCount = async (t: TestApp, programId: string) =>
    Number((await t.database.handle.db.selectFrom('ledger_entry').select((eb) => eb.fn.countAll().as('n')).where('program_id', '=', programId).executeTakeFirstOrThrow()).n);
  const claimOf = (t: TestApp, cardId: string) => t.database.handle.db.selectFrom('card_claim').selectAll().where('card_id', '=', cardId).executeTakeFirst();

  /** Opens the have-card page, waits like a person, posts the form. */
  async function claim(t: TestApp, clock: ReturnType<typeof createTestClock>, slug: string, fields: Record<string, string>, visitor: Visitor = newVisitor()) {
    const page = await getPage(t.app, visitor, `/join/${slug}/have-card`);
    expect(page.statusCode).toBe(200);
    clock.advance(2_500);
    return post(t, visitor, slug, { ...formInputs(page.body), ...fields });
  }
  async function post(t: TestApp, visitor: Visitor, slug: string, fields: Record<string, string>) {
    const res = await t.app.inject({
      method: 'POST',
      url: `/join/${slug}/have-card`,
      headers: { 'user-agent': visitor.userAgent, 'content-type': 'application/x-www-form-urlencoded', ...(visitor.jar.cookies.size ? { cookie: visitor.jar.header() } : {}) },
      payload: new URLSearchParams(fields).toString(),
      remoteAddress: visitor.remoteAddress,
    });
    visitor.jar.store(res.headers['set-cookie']);
    return res;
  }
  const tokenOf = (res: { statusCode: number; headers: Record<string, unknown>; body: string }) => {
    expect(res.statusCode, res.body.slice(0, 2000)).toBe(303);
    const match = /^\/c\/([A-Za-z0-9_-]+)(\?verified=1)?$/.exec(String(res.headers.location));
    expect(match, String(res.headers.location)).not.toBeNull();
    return { token: match![1], verified: match![2] !== undefined };
  };
  const formError = (body: string) => /<div class="summary"[^>]*data-form-error>[\s\S]*?<\/div>/.exec(body)?.[0];

  describe('without an SMS gateway', () => {
    let t: TestApp;
    const clock = createTestClock();
    let shop: Shop;
    beforeAll(async () => {
      t = await startTestApp({ clock: clock.now });
      shop = await importBase(t, 'plastic-shop');
    });
    afterAll(async () => {
      await t?.close();
    });

    it('links from the join page only when the program has plastic cards', async () => {
      const join = await getPage(t.app, newVisitor(), '/join/plastic-shop');
      expect(join.body).toContain('href="/join/plastic-shop/have-card?lang=en" data-have-card');
      expect(join.body).toContain('I already have a plastic card');
      await createProgramWithKeys(t.app, 'no-plastic', { defaultLanguage: 'en' });
      const other = await getPage(t.app, newVisitor(), '/join/no-plastic');
      expect(other.statusCode).toBe(200);
      expect(other.body).not.toContain('data-have-card');
      const ru = await getPage(t.app, newVisitor(), '/join/plastic-shop/have-card?lang=ru');
      expect(ru.body).toContain('Номер пластиковой карты');
    });

    it('takes the existing card with its balance to the card page, unverified until the first purchase', async () => {
      const before = await cardsOf(t, shop.program.id);
      expect(before).toHaveLength(3);
      const ledgerBefore = await ledgerCount(t, shop.program.id);
      const anna = before.find((c) => c.external_number === '30000001')!;
      expect(anna).toMatchObject({ balance: 1500, phone: '+79165550001' });

      const visitor = newVisitor();
      // Typed as people type it: spaces in the number, the phone in national format.
      const { token, verified } = tokenOf(await claim(t, clock, 'plastic-shop', { number: '3000 0001', phone: '8 (916) 555-00-01' }, visitor));
      expect(verified).toBe(false);
      expect(token).toBe(anna.public_token);
      expect(await cardsOf(t, shop.program.id)).toHaveLength(3);
      expect(await ledgerCount(t, shop.program.id)).toBe(ledgerBefore);
      expect(await claimOf(t, anna.id)).toMatchObject({ verified_at: null, verified_via: null });

      const page = await getPage(t.app, visitor, `/c/${token}`);
      expect(page.statusCode).toBe(200);
      expect(page.body).toMatch(/data-balance>1,500 points</);
      expect(page.body).toContain('data-unverified-claim');
      expect(page.body).toContain('Your phone is not confirmed yet');
      // The migration funnel's "link opened" step counts the claimed card.
      const funnel = (await t.app.inject({ method: 'GET', url: '/api/v1/stats/migration', headers: shop.as('marketer') })).json();
      expect(funnel.totals).toMatchObject({ imported: 3, opened: 1 });

      // The first purchase at the till confirms the claim.
      const buy = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${anna.id}/purchases`, headers: { ...shop.as('pos'), 'idempotency-key': 'claim-buy-1' }, payload: { amount: 10_000 } });
      expect(buy.statusCode, buy.body).toBe(201);
      expect(await claimOf(t, anna.id)).toMatchObject({ verified_via: 'purchase' });
      expect((await claimOf(t, anna.id))!.verified_at).not.toBeNull();
      const after = await getPage(t.app, visitor, `/c/${token}`);
      expect(after.body).not.toContain('data-unverified-claim');
      // The holder's data export shows the claim.
      const exported = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${anna.id}/personal-data`, headers: shop.as('admin') });
      expect(exported.statusCode, exported.body).toBe(200);
      expect(exported.json().card.plasticClaim).toMatchObject({ verifiedVia: 'purchase' });
      expect(exported.json().card.plasticClaim.claimedAt).toEqual(expect.any(String));
    });

    it('answers a wrong phone and an unknown number alike, and issues nothing', async () => {
      const ledgerBefore = await ledgerCount(t, shop.program.id);
      const wrongPhone = await claim(t, clock, 'plastic-shop', { number: '30000002', phone: '+79165550009' });
      const unknownNumber = await claim(t, clock, 'plastic-shop', { number: '99999999', phone: '+79165550002' });
      // Another holder's phone with a real number is a mismatch too.
      const otherHolder = await claim(t, clock, 'plastic-shop', { number: '30000002', phone: '+79165550003' });
      for (const res of [wrongPhone, unknownNumber, otherHolder]) {
        expect(res.statusCode).toBe(422);
        expect(res.headers.location).toBeUndefined();
        expect(res.body).toContain('We could not find a card with this number and phone.');
      }
      expect(formError(wrongPhone.body)).toBeDefined();
      expect(formError(wrongPhone.body)).toBe(formError(unknownNumber.body));
      expect(formError(wrongPhone.body)).toBe(formError(otherHolder.body));
      // The typed values come back, nothing else (no masked phone, no name of the holder).
      expect(unknownNumber.body).not.toContain('Борис');
      expect(wrongPhone.body).not.toContain('*** 00 02');
      expect(await cardsOf(t, shop.program.id)).toHaveLength(3);
      expect(await ledgerCount(t, shop.program.id)).toBe(ledgerBefore);
      const boris = (await cardsOf(t, shop.program.id)).find((c) => c.external_number === '30000002')!;
      expect(await claimOf(t, boris.id)).toBeUndefined();

      // Field errors and the bot checks, as on the join form.
      const empty = await claim(t, clock, 'plastic-shop', { number: '', phone: 'abc' });
      expect(empty.statusCode).toBe(422);
      expect(empty.body).toContain('Enter the card number');
      expect(empty.body).toContain('This does not look like a phone number');
      const visitor = newVisitor();
      const page = await getPage(t.app, visitor, '/join/plastic-shop/have-card');
      const tooFast = await post(t, visitor, 'plastic-shop', { ...formInputs(page.body), number: '30000002', phone: '+79165550002' });
      expect(tooFast.statusCode).toBe(422);
      expect(tooFast.body).toContain('We could not accept the form');
      clock.advance(2_500);
      const honeypot = await post(t, visitor, 'plastic-shop', { ...formInputs(page.body), number: '30000002', phone: '+79165550002', website: 'spam' });
      expect(honeypot.statusCode).toBe(422);
      expect(await claimOf(t, boris.id)).toBeUndefined();
    });

    it('gives a card already in a wallet the same card again: no duplicate, the device keeps it', async () => {
      const boris = (await cardsOf(t, shop.program.id)).find((c) => c.external_number === '30000002')!;
      // Installed from an invitation before: an Apple device holds the pass.
      await register(t, 'have-card-device', { id: boris.id, serial: boris.apple_serial, token: boris.apple_auth_token, auth: { authorization: `ApplePass ${boris.apple_auth_token}` } }, pushToken(0x42));
      const first = tokenOf(await claim(t, clock, 'plastic-shop', { number: '3000-0002', phone: '+7 916 555 00 02' }));
      const second = tokenOf(await claim(t, clock, 'plastic-shop', { number: '30000002', phone: '89165550002' }));
      expect(first.token).toBe(boris.public_token);
      expect(second.token).toBe(boris.public_token);
      const now = (await cardsOf(t, shop.program.id)).find((c) => c.external_number === '30000002')!;
      // Same credentials: nothing rotated, the installed pass keeps working.
      expect(now).toMatchObject({ id: boris.id, number: boris.number, apple_serial: boris.apple_serial, balance: 250 });
      expect(await cardsOf(t, shop.program.id)).toHaveLength(3);
      expect(await t.database.handle.db.selectFrom('card_claim').select('card_id').where('card_id', '=', boris.id).execute()).toHaveLength(1);
    });

    it('limits the attempts per client like the join form', async () => {
      const visitor = newVisitor();
      const page = await getPage(t.app, visitor, '/join/plastic-shop/have-card');
      clock.advance(2_500);
      const inputs = formInputs(page.body);
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await post(t, visitor, 'plastic-shop', { ...inputs, number: `4000000${i}`, phone: '+79165550003' })).statusCode);
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(422));
      expect(statuses.slice(10)).toEqual([429, 429]);
      const limited = await post(t, visitor, 'plastic-shop', { ...inputs, number: '30000003', phone: '+79165550003' });
      expect(limited.statusCode).toBe(429);
      expect(limited.body).toContain('Too many attempts');
      // Even the right pair waits out the limit: nothing was claimed.
      const vera = (await cardsOf(t, shop.program.id)).find((c) => c.external_number === '30000003')!;
      expect(await claimOf(t, vera.id)).toBeUndefined();
    });
  });

  describe('with an SMS gateway', () => {
    let t: TestApp;
    let sms: SmsStandIn;
    const clock = createTestClock();
    let shop: Shop;
    beforeAll(async () => {
      sms = await startSmsStandIn();
      t = await startTestApp({ clock: clock.now, env: { SMS_GATEWAY_URL: sms.url } });
      shop = await importBase(t, 'plastic-sms');
    });
    afterAll(async () => {
      await t?.close();
      await sms?.close();
    });

    it('proves the phone with a one-time code, then gives the existing card, verified', async () => {
      const anna = (await cardsOf(t, shop.program.id)).find((c) => c.external_number === '30000001')!;
      const visitor = newVisitor();
      const codePage = await claim(t, clock, 'plastic-sms', { number: '30000001', phone: '8 916 555-00-01' }, visitor);
      expect(codePage.statusCode, codePage.body.slice(0, 1500)).toBe(200);
      expect(codePage.body).toContain('data-code-form');
      expect(codePage.body).toContain('+7 916 *** 00 01');
      expect(sms.to('+79165550001')).toHaveLength(1);
      // Nothing is claimed before the code.
      expect(await claimOf(t, anna.id)).toBeUndefined();
      const code = sms.lastCode('+79165550001');
      const hidden = { lang: 'en', number: '30000001', phone: '8 916 555-00-01', step: 'check' };

      const wrong = await post(t, visitor, 'plastic-sms', { ...hidden, code: code === '000000' ? '111111' : '000000' });
      expect(wrong.statusCode).toBe(422);
      expect(wrong.body).toContain('Attempts left: 4');
      expect(await claimOf(t, anna.id)).toBeUndefined();

      const { token, verified } = tokenOf(await post(t, visitor, 'plastic-sms', { ...hidden, code }));
      expect(verified).toBe(true);
      expect(token).toBe(anna.public_token);
      expect(await claimOf(t, anna.id)).toMatchObject({ verified_via: 'otp' });
      const card = (await cardsOf(t, shop.program.id)).find((c) => c.id === anna.id)!;
      expect(card).toMatchObject({ balance: 1500, verified_via: 'otp', number: anna.number });
      expect(await cardsOf(t, shop.program.id)).toHaveLength(3);
      const page = await getPage(t.app, visitor, `/c/${token}?verified=1`);
      expect(page.body).toContain('Phone confirmed');
      expect(page.body).not.toContain('data-unverified-claim');

      // A code for this flow is not accepted with a changed number (the pair is checked again).
      const swapped = await post(t, visitor, 'plastic-sms', { ...hidden, number: '30000002', code });
      expect(swapped.statusCode).toBe(422);
      expect(swapped.body).toContain('We could not find a card with this number and phone.');
    });

    it('sends no code for a mismatch and answers it like an unknown number', async () => {
      const sent = sms.received.length;
      const mismatch = await claim(t, clock, 'plastic-sms', { number: '30000002', phone: '+79165550001' });
      const unknown = await claim(t, clock, 'plastic-sms', { number: '12345678', phone: '+79165550002' });
      expect(mismatch.statusCode).toBe(422);
      expect(formError(mismatch.body)).toBe(formError(unknown.body));
      expect(sms.received.length).toBe(sent);
      // The code steps re-check the pair too: a forged "send" for a mismatch sends nothing.
      const forged = await post(t, newVisitor(), 'plastic-sms', { lang: 'en', number: '30000002', phone: '+79165550001', step: 'send' });
      expect(forged.statusCode).toBe(422);
      expect(sms.received.length).toBe(sent);
    });
  });
});
