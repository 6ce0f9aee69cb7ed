import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { adminHeaders, createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// The POS and cards API through HTTP (app.inject) on a real database: enrollment, search,
// personal data, purchases, idempotency, refunds, history, adjustments and rule changes.

type Headers = Record<string, string>;
type Role = 'admin' | 'marketer' | 'pos';

function expectProblem(res: LightMyRequestResponse, status: number, code?: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    code: expect.any(String),
    requestId: expect.any(String),
  });
  expect(body.requestId).not.toBe('');
  if (code) expect(body.code).toBe(code);
  return body;
}

describe(`POS and cards API (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let slugCounter = 0;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  const db = () => t.database.handle.db;

  /** A fresh program (default rules) with one key of each role. */
  async function program(body: Record<string, unknown> = {}) {
    slugCounter += 1;
    return createProgramWithKeys(t.app, `pos-${slugCounter}`, body);
  }

  async function issue(headers: Headers, holder: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    return t.app.inject({ method: 'POST', url: '/api/v1/cards', headers, payload: { holder, ...extra } });
  }

  async function issueOk(headers: Headers, name: string, phone: string, extra: Record<string, unknown> = {}) {
    const res = await issue(headers, { name, phone }, extra);
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }

  async function purchase(headers: Headers, cardId: string, body: Record<string, unknown>, idempotencyKey?: string) {
    return t.app.inject({
      method: 'POST',
      url: `/api/v1/cards/${cardId}/purchases`,
      headers: idempotencyKey ? { ...headers, 'idempotency-key': idempotencyKey } : headers,
      payload: body,
    });
  }

  async function purchaseOk(headers: Headers, cardId: string, body: Record<string, unknown>, idempotencyKey?: string) {
    const res = await purchase(headers, cardId, body, idempotencyKey);
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }

  async function refund(headers: Headers, purchaseId: string, idempotencyKey?: string) {
    return t.app.inject({
      method: 'POST',
      url: `/api/v1/purchases/${purchaseId}/refund`,
      headers: idempotencyKey ? { ...headers, 'idempotency-key': idempotencyKey } : headers,
    });
  }

  async function getCard(headers: Headers, cardId: string) {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}`, headers });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  async function history(headers: Headers, cardId: string) {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${cardId}/history?limit=500`, headers });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  /** What the database holds for a card: the numbers that must not move when a request is refused. */
  async function snapshot(cardId: string) {
    const card = await db().selectFrom('card').select(['balance', 'lifetime_spend', 'tier']).where('id', '=', cardId).executeTakeFirstOrThrow();
    const purchases = await db().selectFrom('purchase').select('id').where('card_id', '=', cardId).execute();
    const ledger = await db().selectFrom('ledger_entry').select(['id', 'points']).where('card_id', '=', cardId).execute();
    return {
      balance: Number(card.balance),
      lifetimeSpend: Number(card.lifetime_spend),
      tier: card.tier,
      purchases: purchases.length,
      ledgerRows: ledger.length,
      ledgerSum: ledger.reduce((sum, e) => sum + Number(e.points), 0),
    };
  }

  async function ledgerKinds(headers: Headers, cardId: string) {
    const h = await history(headers, cardId);
    return (h.ledger as { kind: string; points: number }[]).map((e) => [e.kind, e.points]).sort();
  }

  // ---------------------------------------------------------------------------------------------
  describe('issuing cards', () => {
    it('issues a card with links and the welcome bonus in balance and ledger', async () => {
      const { program: p, as } = await program();
      const res = await issue(as('pos'), { name: 'Мария Иванова', phone: '+79161234567' });
      expect(res.statusCode, res.body).toBe(201);
      const card = res.json();
      expect(card.programId).toBe(p.id);
      expect(card.number).toMatch(/^\d{12}$/);
      expect(card.balance).toBe(1000);
      expect(card.lifetimeSpend).toBe(0);
      expect(card.tier.code).toBe('standard');
      expect(card.installUrl).toMatch(/^https:\/\/wallet\.test\/c\/[A-Za-z0-9_-]+$/);
      // The README tour's <cardToken>: the token of the card page and of the .pkpass.
      expect(card.installUrl).toBe(`https://wallet.test/c/${card.cardToken}`);
      expect(card.applePassUrl).toBe(`${card.installUrl}/card.pkpass`);
      expect(card.referralUrl).toContain(`/join/${p.slug}?ref=${card.referralCode}`);

      const h = await history(as('pos'), card.id);
      expect(h.ledger).toHaveLength(1);
      expect(h.ledger[0]).toMatchObject({ kind: 'welcome', points: 1000, purchaseId: null });
      expect(h.balance).toBe(1000);
      expect(h.ledgerSum).toBe(1000);
    });

    it('returns the existing card (200) for the same phone in another format, with no second welcome bonus', async () => {
      const { as } = await program();
      const first = await issueOk(as('pos'), 'Мария Иванова', '+79161234567');
      const again = await issue(as('pos'), { name: 'Мария И.', phone: '8 916 123-45-67' });
      expect(again.statusCode, again.body).toBe(200);
      expect(again.json().id).toBe(first.id);
      expect(again.json().number).toBe(first.number);
      expect(again.json().balance).toBe(1000);
      // An admin key too: the same card, still one welcome entry.
      const third = await issue(as('admin'), { name: 'Maria', phone: '+7 (916) 123 45 67' });
      expect(third.statusCode).toBe(200);
      expect(third.json().id).toBe(first.id);
      expect(await snapshot(first.id)).toMatchObject({ balance: 1000, ledgerRows: 1, ledgerSum: 1000 });
      const cards = await db().selectFrom('card').select('id').where('program_id', '=', first.programId).where('phone', '=', '+79161234567').execute();
      expect(cards).toHaveLength(1);
    });

    it('refuses an invalid phone with 422 invalid_phone and an unknown referral code with 422', async () => {
      const { program: p, as } = await program();
      expectProblem(await issue(as('pos'), { name: 'Иван', phone: '12345' }), 422, 'invalid_phone');
      expectProblem(await issue(as('pos'), { name: 'Иван', phone: '+7 000 000-00-00' }), 422, 'invalid_phone');
      expectProblem(await issue(as('pos'), { name: 'Иван', phone: '+79161234567' }, { referralCode: 'NOSUCH22' }), 422, 'referral_code_unknown');
      // Nothing was created by the refused requests.
      const cards = await db().selectFrom('card').select('id').where('program_id', '=', p.id).execute();
      expect(cards).toHaveLength(0);
    });

    it('answers validation errors with 400 problem details', async () => {
      const { program: p, as } = await program();
      const cases: Record<string, unknown>[] = [
        {}, // no holder
        { holder: { phone: '+79161234567' } }, // no name
        { holder: { name: 'Иван', phone: '+79161234567' }, unexpected: true }, // extra top-level field
        { holder: { name: 'Иван', phone: '+79161234567', nickname: 'Ваня' } }, // extra holder field
        { holder: { name: 'Иван', phone: '+79161234567', email: 'not-an-email' } },
        { holder: { name: 'Иван', phone: '+79161234567', birthday: '1990-13-45' } },
      ];
      for (const payload of cases) {
        const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload });
        const body = expectProblem(res, 400, 'validation_failed');
        expect(body.type).toBe('urn:walletcards:problem:validation_failed');
        expect(body.title).toBe('Bad Request');
      }
      const cards = await db().selectFrom('card').select('id').where('program_id', '=', p.id).execute();
      expect(cards).toHaveLength(0);
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('referrals', () => {
    it('grants inviter and invitee bonuses at enrollment (default rules), once', async () => {
      const { as } = await program();
      const inviter = await issueOk(as('pos'), 'Ольга Пригласившая', '+79160000001');
      // The code is read aloud and typed: lower case and spaces are accepted.
      const invitee = await issueOk(as('pos'), 'Пётр Приглашённый', '+79160000002', { referralCode: ` ${inviter.referralCode.toLowerCase()} ` });
      expect(invitee.balance).toBe(1000 + 3000);
      expect(invitee.referredBy).toBe(inviter.id);
      expect((await getCard(as('pos'), inviter.id)).balance).toBe(1000 + 3000);
      expect(await ledgerKinds(as('pos'), invitee.id)).toEqual([['referral', 3000], ['welcome', 1000]]);
      expect(await ledgerKinds(as('pos'), inviter.id)).toEqual([['referral', 3000], ['welcome', 1000]]);

      // Enrolling the same phone again with the code changes nothing.
      const again = await issue(as('pos'), { name: 'Пётр', phone: '+79160000002' }, { referralCode: inviter.referralCode });
      expect(again.statusCode).toBe(200);
      expect(await snapshot(invitee.id)).toMatchObject({ balance: 4000, ledgerRows: 2 });
      expect(await snapshot(inviter.id)).toMatchObject({ balance: 4000, ledgerRows: 2 });
    });

    it('grants both bonuses at the first purchase when the program says so, and not at the second', async () => {
      const { program: p, as } = await program();
      const rules = p.rules;
      const patched = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/programs/${p.id}`,
        headers: adminHeaders,
        payload: { rules: { ...rules, referral: { ...rules.referral, grantOn: 'first_purchase' } } },
      });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json().rules.referral).toEqual({ inviterBonus: 3000, inviteeBonus: 3000, grantOn: 'first_purchase', maxPerInviterPerDay: 5 });

      const inviter = await issueOk(as('pos'), 'Ольга', '+79160000011');
      const invitee = await issueOk(as('pos'), 'Пётр', '+79160000012', { referralCode: inviter.referralCode });
      expect(invitee.balance).toBe(1000);
      expect(invitee.referredBy).toBe(inviter.id);
      expect((await getCard(as('pos'), inviter.id)).balance).toBe(1000);
      expect(await ledgerKinds(as('pos'), invitee.id)).toEqual([['welcome', 1000]]);

      const first = await purchaseOk(as('pos'), invitee.id, { amount: 100000 });
      expect(first.accrued).toBe(50);
      expect(first.balance).toBe(1000 + 50 + 3000);
      expect((await getCard(as('pos'), inviter.id)).balance).toBe(1000 + 3000);
      expect(await ledgerKinds(as('pos'), invitee.id)).toEqual([['accrual', 50], ['referral', 3000], ['welcome', 1000]]);
      expect(await ledgerKinds(as('pos'), inviter.id)).toEqual([['referral', 3000], ['welcome', 1000]]);

      const second = await purchaseOk(as('pos'), invitee.id, { amount: 100000 });
      expect(second.balance).toBe(4050 + 50);
      expect((await getCard(as('pos'), inviter.id)).balance).toBe(4000);
      expect(await snapshot(inviter.id)).toMatchObject({ ledgerRows: 2 });
      const invited = await ledgerKinds(as('pos'), invitee.id);
      expect(invited.filter(([kind]) => kind === 'referral')).toHaveLength(1);
    });

    it('does not pay an invitation twice when the program switches to first_purchase after the enrollment', async () => {
      const { program: p, as } = await program();
      const inviter = await issueOk(as('pos'), 'Ольга', '+79160000021');
      const invitee = await issueOk(as('pos'), 'Пётр', '+79160000022', { referralCode: inviter.referralCode });
      expect(invitee.balance).toBe(4000);
      const patched = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/programs/${p.id}`,
        headers: adminHeaders,
        payload: { rules: { ...p.rules, referral: { ...p.rules.referral, grantOn: 'first_purchase' } } },
      });
      expect(patched.statusCode).toBe(200);
      const first = await purchaseOk(as('pos'), invitee.id, { amount: 100000 });
      expect(first.balance).toBe(4000 + 50);
      expect((await getCard(as('pos'), inviter.id)).balance).toBe(4000);

      // A member who was an inviter before making their own first purchase still gets their
      // invitee bonus at that purchase (the program grants at first purchase from the start).
      const q = await program();
      await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/programs/${q.program.id}`,
        headers: adminHeaders,
        payload: { rules: { ...q.program.rules, referral: { ...q.program.rules.referral, grantOn: 'first_purchase' } } },
      });
      const root = await issueOk(q.as('pos'), 'Корень', '+79160000031');
      const middle = await issueOk(q.as('pos'), 'Середина', '+79160000032', { referralCode: root.referralCode });
      const leaf = await issueOk(q.as('pos'), 'Лист', '+79160000033', { referralCode: middle.referralCode });
      expect((await purchaseOk(q.as('pos'), leaf.id, { amount: 100000 })).balance).toBe(1000 + 50 + 3000);
      expect((await getCard(q.as('pos'), middle.id)).balance).toBe(1000 + 3000); // as leaf's inviter
      expect((await purchaseOk(q.as('pos'), middle.id, { amount: 100000 })).balance).toBe(4000 + 50 + 3000);
      expect((await getCard(q.as('pos'), root.id)).balance).toBe(1000 + 3000);
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('search and scanning', () => {
    it('finds cards by full number, by phone in any format, and by Cyrillic name prefix (any case)', async () => {
      const { as } = await program();
      const maria = await issueOk(as('pos'), 'Мария Иванова', '+79161234567');
      const mikhail = await issueOk(as('pos'), 'Михаил Петров', '+79031112233');
      const anna = await issueOk(as('pos'), 'Анна Смирнова', '+79265554433');
      const search = async (query: string) => {
        const res = await t.app.inject({ method: 'GET', url: `/api/v1/cards?query=${encodeURIComponent(query)}`, headers: as('pos') });
        expect(res.statusCode, res.body).toBe(200);
        return (res.json().items as { id: string }[]).map((c) => c.id).sort();
      };

      expect(await search(maria.number)).toEqual([maria.id]);
      expect(await search(`${maria.number.slice(0, 4)} ${maria.number.slice(4, 8)} ${maria.number.slice(8)}`)).toEqual([maria.id]);
      expect(await search(anna.number)).toEqual([anna.id]);
      for (const phone of ['+79161234567', '8 916 123-45-67', '8 (916) 123-45-67', '+7 916 123 45 67', '9161234567']) {
        expect(await search(phone), phone).toEqual([maria.id]);
      }
      expect(await search('+7 903 111-22-33')).toEqual([mikhail.id]);
      expect(await search('Мария')).toEqual([maria.id]);
      expect(await search('мари')).toEqual([maria.id]);
      expect(await search('МИХ')).toEqual([mikhail.id]);
      expect(await search('ми')).toEqual([mikhail.id]);
      expect(await search('аННа см')).toEqual([anna.id]);
      expect(await search('Иванова')).toEqual([]); // a prefix of the name, not a substring
      expect(await search('Борис')).toEqual([]);
      // LIKE wildcards in the query are literal characters, not "match anything".
      expect(await search('%%')).toEqual([]);
      expect(await search('__')).toEqual([]);
      expect(await search('М%')).toEqual([]);
      expect(await search('+79990000000')).toEqual([]);

      const tooShort = await t.app.inject({ method: 'GET', url: '/api/v1/cards?query=%D0%BC', headers: as('pos') });
      expectProblem(tooShort, 400, 'validation_failed');
    });

    it('finds a card by the scanned barcode value, with spaces or dashes; 404 card_not_found otherwise', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария Иванова', '+79161234567');
      const n: string = card.number;
      for (const value of [n, `${n.slice(0, 4)} ${n.slice(4, 8)} ${n.slice(8)}`, `${n.slice(0, 4)}-${n.slice(4, 8)}-${n.slice(8)}`, ` ${n}\t`]) {
        const res = await t.app.inject({ method: 'GET', url: `/api/v1/cards/by-barcode/${encodeURIComponent(value)}`, headers: as('pos') });
        expect(res.statusCode, value).toBe(200);
        expect(res.json().id).toBe(card.id);
      }
      const other = n.slice(0, -1) + String((Number(n.at(-1)) + 1) % 10);
      expectProblem(await t.app.inject({ method: 'GET', url: `/api/v1/cards/by-barcode/${other}`, headers: as('pos') }), 404, 'card_not_found');
      expectProblem(
        await t.app.inject({ method: 'GET', url: '/api/v1/cards/00000000-0000-4000-8000-000000000000', headers: as('pos') }),
        404,
        'card_not_found',
      );
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('personal data', () => {
    it('shows a pos key a masked phone and no email/birthday; a program admin key sees them in full', async () => {
      const { as } = await program();
      const issued = await issue(as('pos'), { name: 'Мария Иванова', phone: '8 916 123-45-67', email: 'maria@example.com', birthday: '1990-05-17' });
      expect(issued.statusCode).toBe(201);
      const asPos = issued.json();
      const check = (card: { holder: { name: string; phone: string; email: string | null; birthday: string | null } }) => {
        expect(card.holder.name).toBe('Мария Иванова');
        expect(card.holder.phone).not.toBe('+79161234567');
        expect(card.holder.phone).toMatch(/\*/);
        expect(card.holder.phone).toBe('+7916***4567');
        expect(card.holder.email).toBeNull();
        expect(card.holder.birthday).toBeNull();
      };
      check(asPos);
      check(await getCard(as('pos'), asPos.id));
      const searched = await t.app.inject({ method: 'GET', url: '/api/v1/cards?query=%D0%9C%D0%B0%D1%80', headers: as('pos') });
      check(searched.json().items[0]);
      const scanned = await t.app.inject({ method: 'GET', url: `/api/v1/cards/by-barcode/${asPos.number}`, headers: as('pos') });
      check(scanned.json());
      for (const res of [issued, searched, scanned]) {
        expect(res.body).not.toContain('9161234567');
        expect(res.body).not.toContain('maria@example.com');
        expect(res.body).not.toContain('1990-05-17');
      }

      const full = await getCard(as('admin'), asPos.id);
      expect(full.holder).toEqual({ name: 'Мария Иванова', phone: '+79161234567', email: 'maria@example.com', birthday: '1990-05-17' });
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('purchases', () => {
    it('accrues 5 % of the check on the standard tier', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const res = await purchaseOk(as('pos'), card.id, { amount: 100000, storeId: 'store-1', receiptId: 'R-1' });
      expect(res).toEqual({
        purchaseId: expect.any(String),
        amount: 100000,
        redeemed: 0,
        accrued: 50,
        payable: 100000,
        balance: 1050,
        tier: 'standard',
        tierChanged: false,
      });
      expect(await snapshot(card.id)).toEqual({ balance: 1050, lifetimeSpend: 100000, tier: 'standard', purchases: 1, ledgerRows: 2, ledgerSum: 1050 });
    });

    it('redeems up to the cap and accrues on what is paid', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const res = await purchaseOk(as('pos'), card.id, { amount: 100000, redeemPoints: 300 });
      expect(res).toMatchObject({ amount: 100000, redeemed: 300, payable: 70000, accrued: 35, balance: 1000 - 300 + 35 });
      expect(await snapshot(card.id)).toMatchObject({ balance: 735, lifetimeSpend: 70000, purchases: 1, ledgerRows: 3, ledgerSum: 735 });
      const h = await history(as('pos'), card.id);
      const rows = (h.ledger as { kind: string; points: number; purchaseId: string | null }[]).filter((e) => e.purchaseId === res.purchaseId);
      expect(rows.map((e) => [e.kind, e.points]).sort()).toEqual([['accrual', 35], ['redemption', -300]]);
    });

    it('refuses a redemption above the cap or above the balance with 422 and changes nothing', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      await purchaseOk(as('pos'), card.id, { amount: 100000 });
      const before = await snapshot(card.id);
      expect(before.balance).toBe(1050);

      const overCap = expectProblem(await purchase(as('pos'), card.id, { amount: 100000, redeemPoints: 301 }, 'cap-1'), 422, 'redemption_cap_exceeded');
      expect(overCap).toMatchObject({ cap: 300, maxRedeemable: 300, requested: 301 });
      expect(await snapshot(card.id)).toEqual(before);

      const overBalance = expectProblem(
        await purchase(as('pos'), card.id, { amount: 10_000_000, redeemPoints: 1051 }, 'balance-1'),
        422,
        'insufficient_points',
      );
      expect(overBalance).toMatchObject({ balance: 1050, requested: 1051 });
      expect(await snapshot(card.id)).toEqual(before);

      // A refusal is that key's answer: a retry with the same key and body gets the same 422
      // (even after the balance has grown), another body under the key is a reused key.
      await purchaseOk(as('pos'), card.id, { amount: 2_000_000 }); // +1000 → 2050
      const afterGrowth = await snapshot(card.id);
      expectProblem(await purchase(as('pos'), card.id, { amount: 10_000_000, redeemPoints: 1051 }, 'balance-1'), 422, 'insufficient_points');
      expectProblem(await purchase(as('pos'), card.id, { amount: 100000, redeemPoints: 301 }, 'cap-1'), 422, 'redemption_cap_exceeded');
      expectProblem(await purchase(as('pos'), card.id, { amount: 100000, redeemPoints: 300 }, 'cap-1'), 422, 'idempotency_key_reused');
      expect(await snapshot(card.id)).toEqual(afterGrowth);
      const retry = await purchaseOk(as('pos'), card.id, { amount: 100000, redeemPoints: 300 }, 'cap-2');
      expect(retry.redeemed).toBe(300);
    });

    it('upgrades the tier in the purchase that crosses 50,000 RUB and accrues 10 % from the next one', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const below = await purchaseOk(as('pos'), card.id, { amount: 4_999_999 });
      expect(below).toMatchObject({ tier: 'standard', tierChanged: false, accrued: 2499 });
      const crossing = await purchaseOk(as('pos'), card.id, { amount: 1 });
      expect(crossing).toMatchObject({ tier: 'general', tierChanged: true, accrued: 0 });
      const next = await purchaseOk(as('pos'), card.id, { amount: 100000 });
      expect(next).toMatchObject({ tier: 'general', tierChanged: false, accrued: 100, payable: 100000 });
      const shown = await getCard(as('pos'), card.id);
      expect(shown.tier).toEqual({ code: 'general', name: { ru: 'Генеральная', en: 'General' } });
      expect(shown.lifetimeSpend).toBe(5_100_000);
    });

    it('a single purchase of 50,000 RUB upgrades at the old rate', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const crossing = await purchaseOk(as('pos'), card.id, { amount: 5_000_000 });
      expect(crossing).toMatchObject({ tier: 'general', tierChanged: true, accrued: 2500 });
      const next = await purchaseOk(as('pos'), card.id, { amount: 100000 });
      expect(next).toMatchObject({ tier: 'general', accrued: 100 });
    });

    it('refuses an unknown card and a malformed body, changing nothing', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      expectProblem(await purchase(as('pos'), '00000000-0000-4000-8000-000000000000', { amount: 100 }), 404, 'card_not_found');
      expectProblem(await purchase(as('pos'), card.id, { amount: 0 }), 400, 'validation_failed');
      expectProblem(await purchase(as('pos'), card.id, { amount: 100.5 }), 400, 'validation_failed');
      expectProblem(await purchase(as('pos'), card.id, { amount: 100, redeemPoints: -1 }), 400, 'validation_failed');
      expectProblem(await purchase(as('pos'), card.id, { amount: 100, bonus: 5 }), 400, 'validation_failed');
      expect(await snapshot(card.id)).toMatchObject({ balance: 1000, purchases: 0, ledgerRows: 1 });
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('idempotency', () => {
    it('replays the same key and body, refuses the same key with another body, and scopes keys per program', async () => {
      const a = await program();
      const b = await program();
      const cardA = await issueOk(a.as('pos'), 'Мария', '+79161234567');
      const cardB = await issueOk(b.as('pos'), 'Мария', '+79161234567');
      const body = { amount: 100000, redeemPoints: 100, storeId: 'S1', receiptId: 'R-100' };

      const first = await purchase(a.as('pos'), cardA.id, body, 'key-1');
      expect(first.statusCode).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const afterFirst = await snapshot(cardA.id);
      expect(afterFirst).toMatchObject({ purchases: 1, ledgerRows: 3 });

      // The same body with its keys in another order is the same request.
      const replay = await purchase(a.as('pos'), cardA.id, { receiptId: 'R-100', storeId: 'S1', redeemPoints: 100, amount: 100000 }, 'key-1');
      expect(replay.statusCode).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.json()).toEqual(first.json());
      const replay2 = await purchase(a.as('pos'), cardA.id, body, 'key-1');
      expect(replay2.statusCode).toBe(201);
      expect(replay2.body).toBe(first.body);
      expect(await snapshot(cardA.id)).toEqual(afterFirst);
      const ledgerOfPurchase = await db().selectFrom('ledger_entry').select(['kind', 'points']).where('purchase_id', '=', first.json().purchaseId).execute();
      expect(ledgerOfPurchase.map((e) => [e.kind, Number(e.points)]).sort()).toEqual([['accrual', 45], ['redemption', -100]]);

      // Same key, another body (or another card) → 422, nothing changes.
      expectProblem(await purchase(a.as('pos'), cardA.id, { ...body, amount: 200000 }, 'key-1'), 422, 'idempotency_key_reused');
      const cardA2 = await issueOk(a.as('pos'), 'Пётр', '+79031112233');
      expectProblem(await purchase(a.as('pos'), cardA2.id, body, 'key-1'), 422, 'idempotency_key_reused');
      expect(await snapshot(cardA.id)).toEqual(afterFirst);
      expect(await snapshot(cardA2.id)).toMatchObject({ purchases: 0, ledgerRows: 1 });

      // Program B uses the same key (and the same receipt id) independently.
      const inB = await purchase(b.as('pos'), cardB.id, body, 'key-1');
      expect(inB.statusCode, inB.body).toBe(201);
      expect(inB.headers['idempotent-replayed']).toBeUndefined();
      expect(inB.json().purchaseId).not.toBe(first.json().purchaseId);
      expect(await snapshot(cardB.id)).toMatchObject({ purchases: 1, balance: 1000 - 100 + 45 });
      expect(await snapshot(cardA.id)).toEqual(afterFirst);

      // The admin key of the same program shares the program's key space.
      const viaAdmin = await purchase(a.as('admin'), cardA.id, body, 'key-1');
      expect(viaAdmin.statusCode).toBe(201);
      expect(viaAdmin.headers['idempotent-replayed']).toBe('true');
      expect(viaAdmin.json()).toEqual(first.json());
    });

    it('refuses a receipt recorded before under a new key with 409 receipt_already_recorded', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const other = await issueOk(as('pos'), 'Пётр', '+79031112233');
      await purchaseOk(as('pos'), card.id, { amount: 100000, receiptId: 'CHECK-42' }, 'k-1');
      const before = await snapshot(card.id);
      expectProblem(await purchase(as('pos'), card.id, { amount: 100000, receiptId: 'CHECK-42' }, 'k-2'), 409, 'receipt_already_recorded');
      expectProblem(await purchase(as('pos'), card.id, { amount: 50000, receiptId: 'CHECK-42' }), 409, 'receipt_already_recorded');
      expectProblem(await purchase(as('pos'), other.id, { amount: 100000, receiptId: 'CHECK-42' }, 'k-3'), 409, 'receipt_already_recorded');
      expect(await snapshot(card.id)).toEqual(before);
      expect(await snapshot(other.id)).toMatchObject({ purchases: 0 });
    });

    it('replays an adjustment with the same key', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const send = (points: number) =>
        t.app.inject({
          method: 'POST',
          url: `/api/v1/cards/${card.id}/adjustments`,
          headers: { ...as('admin'), 'idempotency-key': 'adj-1' },
          payload: { points, reason: 'goodwill' },
        });
      const first = await send(200);
      expect(first.statusCode).toBe(201);
      const again = await send(200);
      expect(again.statusCode).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json()).toEqual(first.json());
      expectProblem(await send(300), 422, 'idempotency_key_reused');
      expect(await snapshot(card.id)).toMatchObject({ balance: 1200, ledgerRows: 2 });
    });

    it('refuses a malformed Idempotency-Key', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const res = await purchase(as('pos'), card.id, { amount: 100 }, 'has space');
      expect(res.statusCode).toBe(400);
      expect(await snapshot(card.id)).toMatchObject({ purchases: 0 });
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('refunds', () => {
    it('returns redeemed points, takes back accrued points, restores balance and spend exactly; refuses a second refund', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const before = await snapshot(card.id);
      const bought = await purchaseOk(as('pos'), card.id, { amount: 100000, redeemPoints: 300 });
      expect(bought.balance).toBe(735);

      const res = await refund(as('pos'), bought.purchaseId, 'refund-1');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({
        purchaseId: bought.purchaseId,
        status: 'refunded',
        pointsReturned: 300,
        pointsReversed: 35,
        bonusesReversed: 0,
        shortfall: 0,
        referral: null,
        balance: 1000,
        tier: 'standard',
        tierChanged: false,
      });
      const after = await snapshot(card.id);
      expect(after).toMatchObject({ balance: before.balance, lifetimeSpend: before.lifetimeSpend, tier: 'standard', purchases: 1, ledgerSum: 1000 });
      const reversal = await db().selectFrom('ledger_entry').select(['kind', 'points']).where('purchase_id', '=', bought.purchaseId).where('kind', '=', 'reversal').execute();
      expect(reversal.map((e) => Number(e.points)).sort((x, y) => x - y)).toEqual([-35, 300]);

      // Replay with the same key: the same 200 body, nothing more changes.
      const replay = await refund(as('pos'), bought.purchaseId, 'refund-1');
      expect(replay.statusCode).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.json()).toEqual(res.json());
      expect(await snapshot(card.id)).toEqual(after);

      // A second refund (another key, or none) → 409.
      expectProblem(await refund(as('pos'), bought.purchaseId, 'refund-2'), 409, 'purchase_already_refunded');
      expectProblem(await refund(as('admin'), bought.purchaseId), 409, 'purchase_already_refunded');
      expect(await snapshot(card.id)).toEqual(after);

      const stored = await db().selectFrom('purchase').select(['status', 'refunded_at']).where('id', '=', bought.purchaseId).executeTakeFirstOrThrow();
      expect(stored.status).toBe('refunded');
      expect(stored.refunded_at).not.toBeNull();

      expectProblem(await refund(as('pos'), '00000000-0000-4000-8000-000000000000'), 404, 'purchase_not_found');
    });

    it('reports a shortfall when the accrued points were already spent, and never goes negative', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const first = await purchaseOk(as('pos'), card.id, { amount: 1_000_000 }); // +500 → 1500
      expect(first.balance).toBe(1500);
      const spend = await purchaseOk(as('pos'), card.id, { amount: 600_000, redeemPoints: 1500 }); // cap 1800; payable 450000 → +225
      expect(spend).toMatchObject({ redeemed: 1500, payable: 450_000, accrued: 225, balance: 225 });

      const res = await refund(as('pos'), first.purchaseId);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ pointsReturned: 0, pointsReversed: 225, shortfall: 275, balance: 0 });
      const after = await snapshot(card.id);
      expect(after).toMatchObject({ balance: 0, ledgerSum: 0, lifetimeSpend: 450_000 });
    });

    it('does not downgrade the tier when a refund drops spend below the General threshold (default policy)', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const bought = await purchaseOk(as('pos'), card.id, { amount: 5_000_000 });
      expect(bought).toMatchObject({ tier: 'general', tierChanged: true });
      const res = await refund(as('pos'), bought.purchaseId);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ tier: 'general', tierChanged: false, pointsReversed: 2500, balance: 1000 });
      const shown = await getCard(as('pos'), card.id);
      expect(shown.tier.code).toBe('general');
      expect(shown.lifetimeSpend).toBe(0);
      // It keeps earning at the General rate.
      expect((await purchaseOk(as('pos'), card.id, { amount: 100000 })).accrued).toBe(100);
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('history', () => {
    it('lists purchases and ledger, keeps ledgerSum equal to balance, and leaves refunded purchases out of stats', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const empty = await history(as('pos'), card.id);
      expect(empty.stats).toEqual({ visits: 0, totalSpend: 0, averageCheck: 0, firstPurchaseAt: null, lastPurchaseAt: null, segment: expect.any(String) });

      const p1 = await purchaseOk(as('pos'), card.id, { amount: 100000, storeId: 'S1', receiptId: 'R1' });
      const p2 = await purchaseOk(as('pos'), card.id, { amount: 300001, redeemPoints: 100 });
      const p3 = await purchaseOk(as('pos'), card.id, { amount: 900000 });
      expect((await refund(as('pos'), p3.purchaseId)).statusCode).toBe(200);

      const h = await history(as('pos'), card.id);
      expect(h.cardId).toBe(card.id);
      expect(h.balance).toBe(p2.balance); // p3's accrual was taken back
      expect(h.ledgerSum).toBe(h.balance);
      expect(h.ledgerSum).toBe((h.ledger as { points: number }[]).reduce((s, e) => s + e.points, 0));

      const byId = new Map((h.purchases as { id: string; createdAt: string }[]).map((p) => [p.id, p]));
      expect(h.purchases).toHaveLength(3);
      expect(byId.get(p1.purchaseId)).toMatchObject({ amount: 100000, redeemed: 0, accrued: 50, payable: 100000, storeId: 'S1', receiptId: 'R1', status: 'completed', refundedAt: null });
      expect(byId.get(p2.purchaseId)).toMatchObject({ amount: 300001, redeemed: 100, payable: 290001, accrued: 145, status: 'completed' });
      expect(byId.get(p3.purchaseId)).toMatchObject({ amount: 900000, status: 'refunded', refundedAt: expect.any(String) });
      // Newest first.
      expect((h.purchases as { id: string }[]).map((p) => p.id)).toEqual([p3.purchaseId, p2.purchaseId, p1.purchaseId]);

      expect((h.ledger as { kind: string }[]).map((e) => e.kind).sort()).toEqual(
        ['welcome', 'accrual', 'accrual', 'redemption', 'accrual', 'reversal'].sort(),
      );

      const created = (id: string) => byId.get(id)!.createdAt;
      expect(h.stats).toEqual({
        visits: 2,
        totalSpend: 400001,
        averageCheck: 200001, // 400001 / 2 = 200000.5, rounded
        firstPurchaseAt: created(p1.purchaseId),
        lastPurchaseAt: created(p2.purchaseId),
        segment: expect.any(String),
      });
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('adjustments', () => {
    it('are for the program admin key only, never overdraw, and refuse zero', async () => {
      const { as } = await program();
      const card = await issueOk(as('pos'), 'Мария', '+79161234567');
      const adjust = (role: Role, points: number, key?: string) =>
        t.app.inject({
          method: 'POST',
          url: `/api/v1/cards/${card.id}/adjustments`,
          headers: key ? { ...as(role), 'idempotency-key': key } : as(role),
          payload: { points, reason: 'test' },
        });

      expectProblem(await adjust('pos', 100), 403, 'forbidden');
      expectProblem(await adjust('marketer', 100), 403, 'forbidden');
      expectProblem(await adjust('admin', -1001), 422, 'insufficient_points');
      expectProblem(await adjust('admin', 0), 400);
      expect(await snapshot(card.id)).toMatchObject({ balance: 1000, ledgerRows: 1 });

      const plus = await adjust('admin', 250, 'a1');
      expect(plus.statusCode).toBe(201);
      expect(plus.json()).toEqual({ cardId: card.id, points: 250, balance: 1250 });
      const minus = await adjust('admin', -1250, 'a2');
      expect(minus.statusCode).toBe(201);
      expect(minus.json().balance).toBe(0);
      const h = await history(as('admin'), card.id);
      expect(h.balance).toBe(0);
      expect(h.ledgerSum).toBe(0);
      expect((h.ledger as { kind: string; reason: string | null }[]).filter((e) => e.kind === 'adjustment')).toHaveLength(2);
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('rule changes', () => {
    it('moves cards on a removed tier to the tier their spend earns', async () => {
      const { program: p, as } = await program();
      const rich = await issueOk(as('pos'), 'Богатый', '+79160000101');
      const richer = await issueOk(as('pos'), 'Богаче', '+79160000102');
      const plain = await issueOk(as('pos'), 'Обычный', '+79160000103');
      await purchaseOk(as('pos'), rich.id, { amount: 5_000_000 });
      await purchaseOk(as('pos'), richer.id, { amount: 12_000_000 });
      await purchaseOk(as('pos'), plain.id, { amount: 100_000 });
      expect((await getCard(as('pos'), rich.id)).tier.code).toBe('general');
      expect((await getCard(as('pos'), richer.id)).tier.code).toBe('general');

      const tiers = [
        { code: 'standard', name: { ru: 'Стандартная', en: 'Standard' }, accrualPercent: 5, threshold: 0 },
        { code: 'silver', name: { ru: 'Серебряная', en: 'Silver' }, accrualPercent: 7, threshold: 3_000_000 },
        { code: 'gold', name: { ru: 'Золотая', en: 'Gold' }, accrualPercent: 15, threshold: 10_000_000 },
      ];
      const patched = await t.app.inject({ method: 'PATCH', url: `/api/v1/programs/${p.id}`, headers: as('admin'), payload: { rules: { ...p.rules, tiers } } });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json().rules.tiers.map((x: { code: string }) => x.code)).toEqual(['standard', 'silver', 'gold']);

      const richNow = await getCard(as('pos'), rich.id);
      expect(richNow.tier).toEqual({ code: 'silver', name: { ru: 'Серебряная', en: 'Silver' } });
      expect((await getCard(as('pos'), richer.id)).tier.code).toBe('gold');
      expect((await getCard(as('pos'), plain.id)).tier.code).toBe('standard');
      const stored = await db().selectFrom('card').select('tier').where('program_id', '=', p.id).execute();
      expect(stored.every((c) => ['standard', 'silver', 'gold'].includes(c.tier))).toBe(true);

      // Purchases keep working on the new tiers.
      expect((await purchaseOk(as('pos'), rich.id, { amount: 100_000 })).accrued).toBe(70);
      expect((await purchaseOk(as('pos'), richer.id, { amount: 100_000 })).accrued).toBe(150);
    });

    it('refuses invalid rules with 400 invalid_rules and keeps the old ones', async () => {
      const { program: p, as } = await program();
      const bad = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/programs/${p.id}`,
        headers: as('admin'),
        payload: { rules: { ...p.rules, tiers: [{ ...p.rules.tiers[0], threshold: 100 }] } },
      });
      expectProblem(bad, 400, 'invalid_rules');
      const now = await t.app.inject({ method: 'GET', url: `/api/v1/programs/${p.id}`, headers: as('admin') });
      expect(now.json().rules).toEqual(p.rules);
    });
  });
});
