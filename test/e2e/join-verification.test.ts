import { Writable } from 'node:stream';
import pino from 'pino';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { listUrl, passUrl, pushToken, pushesTo, register, waitForCardJobsIdle } from '../support/apple-device.js';
import { createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { cardTokenOf, createTestClock, formInputs, getPage, newVisitor, openJoinPage, submitJoinForm, type Visitor } from '../support/join-form.js';
import { passJsonOf } from '../support/pkpass.js';
import { startSmsStandIn, type SmsStandIn } from '../support/sms-stand-in.js';

// Issue #11, part 3: bonuses of self-service (join page) enrollments are pending until the person
// is real — the phone answers a one-time code (SMS gateway configured) or the card's first purchase
// at the till completes — and a holder whose phone someone else claimed takes the card over.
describe(`self-service bonuses, phone verification and takeover (${TEST_DATABASE_KIND} database)`, () => {
  type As = Awaited<ReturnType<typeof createProgramWithKeys>>['as'];
  const MIN = 60_000;

  // ---- helpers shared by both apps ------------------------------------------------------------
  async function join(t: TestApp, clock: ReturnType<typeof createTestClock>, slug: string, fields: Record<string, string>, visitor: Visitor = newVisitor(), query = '') {
    const { inputs } = await openJoinPage(t.app, visitor, `/join/${slug}${query}`);
    clock.advance(2_500);
    const res = await submitJoinForm(t.app, visitor, slug, inputs, fields);
    return { res, visitor };
  }
  const cardByToken = (t: TestApp, token: string) => t.database.handle.db.selectFrom('card').selectAll().where('public_token', '=', token).executeTakeFirstOrThrow();
  const cardById = (t: TestApp, id: string) => t.database.handle.db.selectFrom('card').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  /** balance = sum of the ledger and pending_points = sum of unreleased pending bonuses, for every card. */
  async function expectInvariants(t: TestApp) {
    const { rows } = await sql<{ id: string; balance: number; ledger: number; pending: number; pending_rows: number }>`
      SELECT c.id, c.balance, c.pending_points AS pending,
        coalesce((SELECT sum(points) FROM ledger_entry e WHERE e.card_id = c.id), 0)::bigint AS ledger,
        coalesce((SELECT sum(points) FROM pending_bonus p WHERE p.card_id = c.id AND p.released_at IS NULL), 0)::bigint AS pending_rows
      FROM card c
    `.execute(t.database.handle.db);
    for (const row of rows) {
      expect(Number(row.ledger), `ledger of ${row.id}`).toBe(Number(row.balance));
      expect(Number(row.pending_rows), `pending of ${row.id}`).toBe(Number(row.pending));
    }
  }

  async function purchase(t: TestApp, as: As, cardId: string, payload: Record<string, unknown>, key = `p-${Math.random()}`) {
    return t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: { ...as('pos'), 'idempotency-key': key }, payload });
  }

  async function passOf(t: TestApp, card: { apple_serial: string; apple_auth_token: string }) {
    const res = await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, card.apple_serial), headers: { authorization: `ApplePass ${card.apple_auth_token}` } });
    expect(res.statusCode).toBe(200);
    return passJsonOf(res.rawPayload);
  }
  const pendingField = (pass: Record<string, any>) => (pass.storeCard.auxiliaryFields as Array<{ key: string; value: unknown }>).find((f) => f.key === 'pending');

  // ---- without an SMS gateway: pending until the first purchase ------------------------------------
  describe('without an SMS gateway', () => {
    let t: TestApp;
    const clock = createTestClock();
    beforeAll(async () => {
      t = await startTestApp({ clock: clock.now, env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' } });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('keeps the welcome and referral bonuses pending until the first purchase, which cannot spend them; pays the inviter then', async () => {
      const { program, as } = await createProgramWithKeys(t.app, 'pending-shop', { defaultLanguage: 'en' });
      const hook = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: as('admin'), payload: { url: 'https://hooks.example.com/wc', events: ['balance.changed'] } });
      expect(hook.statusCode, hook.body).toBe(201);
      const inviter = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Inviter', phone: '+79165550001' } } })).json();
      expect(inviter).toMatchObject({ balance: 1000, pendingPoints: 0, verification: { channel: 'staff', via: 'staff' } });

      const { res } = await join(t, clock, 'pending-shop', { name: 'Friend', phone: '+79165550002' }, newVisitor(), `?ref=${inviter.referralCode}`);
      const token = cardTokenOf(res);
      const friend = await cardByToken(t, token);
      expect(friend).toMatchObject({ balance: 0, pending_points: 4000, channel: 'self_service', verified_at: null });
      const api = (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${friend.id}`, headers: as('pos') })).json();
      expect(api).toMatchObject({ balance: 0, pendingPoints: 4000, verification: { channel: 'self_service', verifiedAt: null, via: null } });
      const history = (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${friend.id}/history`, headers: as('pos') })).json();
      expect(history).toMatchObject({ balance: 0, ledgerSum: 0, pendingPoints: 4000, ledger: [] });
      expect(history.pending.map((p: { kind: string; points: number }) => [p.kind, p.points])).toEqual([['welcome', 1000], ['referral', 3000]]);
      // The inviter waits for the friend to be real.
      expect((await cardById(t, inviter.id)).balance).toBe(1000);
      expect(await t.database.handle.db.selectFrom('referral').select(['status', 'grant_on']).where('invitee_card_id', '=', friend.id).executeTakeFirstOrThrow()).toEqual({
        status: 'pending',
        grant_on: 'enrollment',
      });

      // Shown everywhere: the card page (no SMS: "after your first purchase"), the Apple pass.
      const page = await getPage(t.app, newVisitor(), `/c/${token}`);
      expect(page.body).toContain('data-pending');
      expect(page.body).toContain('4,000 points are waiting for confirmation');
      expect(page.body).toContain('They unlock after your first purchase at the till.');
      expect(page.body).not.toContain('data-verify-form');
      expect(pendingField(await passOf(t, friend))).toMatchObject({ value: 4000 });
      // … and the till: the cashier sees the pending points apart from the spendable balance.
      await createStaff(t.app, program.id, { name: 'Till', role: 'cashier', email: 'till@pending.example', password: 'till password 123' });
      const till = await signIn(t.app, 'till@pending.example', 'till password 123');
      const tillPage = await till.get(`/app/cashier/cards/${friend.id}`);
      expect(tillPage.body).toMatch(/data-balance>0</);
      expect(tillPage.body).toMatch(/data-pending[^>]*>4[\u00a0\u202f ,]?000</);
      // No SMS gateway: the verify route says so.
      const verify = await t.app.inject({ method: 'POST', url: '/join/pending-shop/verify', payload: { card: token } });
      expect(verify.statusCode).toBe(409);
      expect(verify.json().code).toBe('verification_unavailable');

      // A made-up card cannot pay with its own welcome bonus.
      const spend = await purchase(t, as, friend.id, { amount: 100_000, redeemPoints: 100 });
      expect(spend.statusCode).toBe(422);
      expect(spend.json()).toMatchObject({ code: 'insufficient_points', balance: 0 });

      // The first purchase completes: priced without the bonuses, then they are released.
      const first = await purchase(t, as, friend.id, { amount: 100_000 });
      expect(first.statusCode, first.body).toBe(201);
      expect(first.json()).toMatchObject({ redeemed: 0, accrued: 50, balance: 50 + 4000 });
      const verified = await cardById(t, friend.id);
      expect(verified).toMatchObject({ balance: 4050, pending_points: 0, verified_via: 'purchase' });
      expect((await cardById(t, inviter.id)).balance).toBe(1000 + 3000);
      const released = await t.database.handle.db
        .selectFrom('ledger_entry')
        .select(['kind', 'points', 'purchase_id'])
        .where('card_id', '=', friend.id)
        .where('kind', 'in', ['welcome', 'referral'])
        .orderBy('id')
        .execute();
      expect(released).toEqual([
        { kind: 'welcome', points: 1000, purchase_id: first.json().purchaseId },
        { kind: 'referral', points: 3000, purchase_id: first.json().purchaseId },
      ]);
      expect(await t.database.handle.db.selectFrom('referral').select(['status', 'purchase_id', 'inviter_points']).where('invitee_card_id', '=', friend.id).executeTakeFirstOrThrow()).toEqual({
        status: 'paid',
        purchase_id: first.json().purchaseId,
        inviter_points: 3000,
      });
      // Spendable from the next purchase on; the pass no longer shows pending points.
      const second = await purchase(t, as, friend.id, { amount: 100_000, redeemPoints: 300 });
      expect(second.statusCode, second.body).toBe(201);
      expect(pendingField(await passOf(t, await cardById(t, friend.id)))).toBeUndefined();
      // The release fired balance.changed like any other change (written in its transaction).
      const events = await t.database.handle.db.selectFrom('webhook_event').select('data').where('type', '=', 'balance.changed').execute();
      const releaseEvent = events.map((e) => e.data as any).find((d) => d.cardId === friend.id && d.entries.some((x: { kind: string }) => x.kind === 'welcome'));
      expect(releaseEvent).toMatchObject({ oldBalance: 50, newBalance: 4050, delta: 4000, pendingPoints: 0 });
      await expectInvariants(t);
    });

    it('pays at most maxPerInviterPerDay self-service referrals per inviter in 24 hours (capped: never paid)', async () => {
      const { program, as } = await createProgramWithKeys(t.app, 'capped-shop', { rules: { referral: { maxPerInviterPerDay: 2 } } });
      expect(program.rules.referral).toMatchObject({ maxPerInviterPerDay: 2 });
      const inviter = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Popular', phone: '+79165551000' } } })).json();
      const friends = [];
      for (let i = 1; i <= 3; i++) {
        const { res } = await join(t, clock, 'capped-shop', { name: `Friend ${i}`, phone: `+7916555100${i}` }, newVisitor(), `?ref=${inviter.referralCode}`);
        friends.push(await cardByToken(t, cardTokenOf(res)));
      }
      for (const friend of friends) expect((await purchase(t, as, friend.id, { amount: 10_000 })).statusCode).toBe(201);
      expect((await cardById(t, inviter.id)).balance).toBe(1000 + 2 * 3000);
      const statuses = await t.database.handle.db.selectFrom('referral').select(['invitee_card_id', 'status']).where('inviter_card_id', '=', inviter.id).execute();
      expect(Object.fromEntries(statuses.map((r) => [r.invitee_card_id, r.status]))).toEqual({ [friends[0]!.id]: 'paid', [friends[1]!.id]: 'paid', [friends[2]!.id]: 'capped' });
      // Every invitee still got their own bonus.
      for (const friend of friends) expect((await cardById(t, friend.id)).balance).toBe(1000 + 3000 + 5);
      // Staff-issued invitees are not counted and not capped (today's behaviour).
      const staffInvitee = (
        await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'At the till', phone: '+79165551009' }, referralCode: inviter.referralCode } })
      ).json();
      expect(staffInvitee.balance).toBe(4000);
      expect((await cardById(t, inviter.id)).balance).toBe(1000 + 3 * 3000);
      await expectInvariants(t);
    });
  });

  // ---- with an SMS gateway: one-time codes, limits, takeover ---------------------------------------
  describe('with an SMS gateway', () => {
    let t: TestApp;
    let sms: SmsStandIn;
    const clock = createTestClock();
    let logs = '';

    beforeAll(async () => {
      sms = await startSmsStandIn();
      const logger = pino(
        { level: 'debug' },
        new Writable({
          write(chunk, _encoding, done) {
            logs += chunk.toString();
            done();
          },
        }),
      );
      t = await startTestApp({ clock: clock.now, google: true, logger, env: { SMS_GATEWAY_URL: sms.url, SMS_GATEWAY_TOKEN: 'sms-secret-token-42', SMS_SENDER: 'Cafe' } });
    });
    afterAll(async () => {
      await t?.close();
      await sms?.close();
    });

    /** Posts the verify form as a browser: the fields of the page's form, plus `fields`. */
    async function postVerify(visitor: Visitor, slug: string, fields: Record<string, string>) {
      const res = await t.app.inject({
        method: 'POST',
        url: `/join/${slug}/verify`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': visitor.userAgent, ...(visitor.jar.cookies.size ? { cookie: visitor.jar.header() } : {}) },
        payload: new URLSearchParams(fields).toString(),
        remoteAddress: visitor.remoteAddress,
      });
      visitor.jar.store(res.headers['set-cookie']);
      return res;
    }
    const verifyFormOf = (body: string) => formInputs(/<form[^>]*data-verify-form[^>]*>([\s\S]*?)<\/form>/.exec(body)![1]!);
    const codeFormOf = (body: string) => formInputs(/<form[^>]*data-code-form[^>]*>([\s\S]*?)<\/form>/.exec(body)![1]!);

    it('releases pending bonuses with a code sent by SMS: 6 digits, 5 attempts, 10 minutes, stored hashed, never logged', async () => {
      const { as } = await createProgramWithKeys(t.app, 'otp-shop', { name: 'Cafe Otp', defaultLanguage: 'en' });
      const inviter = (await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Inviter', phone: '+79166660001' } } })).json();
      const browser = newVisitor();
      const { res } = await join(t, clock, 'otp-shop', { name: 'Newcomer', phone: '+79166660002' }, browser, `?ref=${inviter.referralCode}`);
      const token = cardTokenOf(res);
      const card = await cardByToken(t, token);
      expect(card).toMatchObject({ balance: 0, pending_points: 4000 });
      // The device that installed the pass gets the release through the update path.
      await register(t, 'device-newcomer', { id: card.id, serial: card.apple_serial, token: card.apple_auth_token, auth: { authorization: `ApplePass ${card.apple_auth_token}` } }, pushToken(0x0701));
      await waitForCardJobsIdle(t);

      const page = await getPage(t.app, browser, `/c/${token}`);
      expect(page.body).toContain('Confirm +7916***0002 with a code by SMS');
      const send = await postVerify(browser, 'otp-shop', verifyFormOf(page.body));
      expect(send.statusCode, send.body).toBe(200);
      expect(send.body).toContain('We sent a 6-digit code to +7916***0002. It is valid for 10 minutes.');
      expect(sms.to('+79166660002')).toHaveLength(1);
      const message = sms.to('+79166660002')[0]!;
      expect(message.text).toMatch(/^\d{6} is your code for the Cafe Otp card\. Do not share it\.$/);
      expect(message.headers.authorization).toBe('Bearer sms-secret-token-42');
      expect(message.sender).toBe('Cafe');
      const code = sms.lastCode('+79166660002');
      const row = await t.database.handle.db.selectFrom('phone_verification').selectAll().executeTakeFirstOrThrow();
      expect(row.code_hash).not.toContain(code);
      expect(row.phone_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(row)).not.toContain('9166660002');

      // Four wrong codes: each counted, the form stays.
      const wrong = code === '000000' ? '111111' : '000000';
      for (let left = 4; left >= 1; left--) {
        const bad = await postVerify(browser, 'otp-shop', { ...codeFormOf(send.body), code: wrong });
        expect(bad.statusCode).toBe(422);
        expect(bad.body).toContain(`That code is not right. Attempts left: ${left}.`);
      }
      expect((await cardById(t, card.id)).pending_points).toBe(4000);
      // The right code on the 5th attempt is accepted.
      const ok = await postVerify(browser, 'otp-shop', { ...codeFormOf(send.body), code });
      expect(ok.statusCode, ok.body).toBe(303);
      expect(ok.headers.location).toBe(`/c/${token}?verified=1`);
      const after = await cardById(t, card.id);
      expect(after).toMatchObject({ balance: 4000, pending_points: 0, verified_via: 'otp', public_token: token, apple_serial: card.apple_serial });
      expect((await cardById(t, inviter.id)).balance).toBe(4000);
      expect((await getPage(t.app, browser, `/c/${token}?verified=1`)).body).toContain('Phone confirmed. The card is yours.');
      // A used code does not work twice.
      const again = await postVerify(browser, 'otp-shop', { ...codeFormOf(send.body), code });
      expect(again.statusCode).toBe(410);
      await waitFor(() => pushesTo(t, pushToken(0x0701)).length > 0, { what: 'the push for the released bonuses' });

      // The code never reached a log; the SMS token neither.
      expect(logs).toContain('phone verified');
      expect(logs).not.toContain(code);
      expect(logs).not.toContain('sms-secret-token-42');
      expect(logs).not.toContain('+79166660002');
      await expectInvariants(t);
    });

    it('locks a code after 5 wrong attempts, expires it after 10 minutes, and limits sends per phone and per IP', async () => {
      await createProgramWithKeys(t.app, 'limit-shop');
      const phone = '+79167770001';
      const browser = newVisitor();
      await join(t, clock, 'limit-shop', { name: 'Limited', phone }, browser);
      const api = (body: Record<string, unknown>, ip = browser.remoteAddress) =>
        t.app.inject({ method: 'POST', url: '/join/limit-shop/verify', payload: body, remoteAddress: ip });

      expect((await api({ phone })).statusCode).toBe(202);
      const first = sms.lastCode(phone);
      for (let i = 0; i < 4; i++) expect((await api({ phone, code: first === '999999' ? '123456' : '999999' })).json().code).toBe('verification_code_wrong');
      const locked = await api({ phone, code: first === '999999' ? '123456' : '999999' });
      expect(locked.statusCode).toBe(429);
      expect(locked.json().code).toBe('verification_locked');
      expect((await api({ phone, code: first })).json().code).toBe('verification_locked');

      // A new code only after the resend pause.
      const tooSoon = await api({ phone });
      expect(tooSoon.statusCode).toBe(429);
      expect(tooSoon.json()).toMatchObject({ code: 'verification_send_limit' });
      clock.advance(MIN + 1000);
      expect((await api({ phone })).statusCode).toBe(202);
      const second = sms.lastCode(phone);
      // Expired after 10 minutes.
      clock.advance(10 * MIN + 1000);
      expect((await api({ phone, code: second })).json().code).toBe('verification_expired');
      // Per phone: 3 codes an hour (this one is the third), then refused until the hour has passed.
      expect((await api({ phone })).statusCode).toBe(202);
      clock.advance(MIN + 1000);
      const perPhone = await api({ phone });
      expect(perPhone.statusCode).toBe(429);
      expect(perPhone.json().retryAfterSeconds).toBeGreaterThan(30 * 60);
      expect(sms.to(phone)).toHaveLength(3);

      // Per IP: 10 codes an hour, whatever the phones.
      const ip = '10.77.0.1';
      for (let i = 0; i < 10; i++) {
        const p = `+7916888${String(1000 + i)}`;
        await join(t, clock, 'limit-shop', { name: `Member ${i}`, phone: p }, newVisitor());
        expect((await api({ phone: p }, ip)).statusCode).toBe(202);
      }
      await join(t, clock, 'limit-shop', { name: 'Eleventh', phone: '+79168882000' }, newVisitor());
      const perIp = await api({ phone: '+79168882000' }, ip);
      expect(perIp.statusCode).toBe(429);
      expect(perIp.json().code).toBe('verification_send_limit');
      expect(sms.to('+79168882000')).toHaveLength(0);

      // A failing gateway: 503, and the code that went nowhere is unusable.
      clock.advance(2 * 60 * MIN);
      sms.status = 503;
      try {
        const down = await api({ phone });
        expect(down.statusCode).toBe(503);
        expect(down.json().code).toBe('sms_unavailable');
      } finally {
        sms.status = 202;
      }
      expect((await api({ phone, code: sms.lastCode(phone) })).json().code).toBe('verification_expired');
    });

    it('lets the owner of a claimed phone take the card over: new number and credentials, the old Apple pass voided, the old Google object inactive', async () => {
      const { as } = await createProgramWithKeys(t.app, 'takeover-shop', { defaultLanguage: 'en' });
      const victimPhone = '+79169990001';
      // Someone else enrolls the victim's number and installs the card in both wallets.
      const squatter = newVisitor();
      const { res } = await join(t, clock, 'takeover-shop', { name: 'Squatter', phone: victimPhone, email: 'squatter@example.com', consent: 'yes' }, squatter);
      const oldToken = cardTokenOf(res);
      const claimed = await cardByToken(t, oldToken);
      const oldDevice = 'device-squatter';
      await register(t, oldDevice, { id: claimed.id, serial: claimed.apple_serial, token: claimed.apple_auth_token, auth: { authorization: `ApplePass ${claimed.apple_auth_token}` } }, pushToken(0x0a01));
      const save = await t.app.inject({ method: 'GET', url: `/c/${oldToken}/google` });
      expect(save.statusCode).toBe(302);
      const oldObject = (await cardById(t, claimed.id)).google_object_id!;
      expect(oldObject).toBeTruthy();
      // The victim buys at the till (the cashier finds the card by phone): points the squatter could spend.
      expect((await purchase(t, as, claimed.id, { amount: 200_000 })).statusCode).toBe(201);
      await waitForCardJobsIdle(t);
      const before = await cardById(t, claimed.id);
      expect(before).toMatchObject({ balance: 1000 + 100, verified_via: 'purchase' });

      // The victim tries to join: "already a member", with a way to prove the number.
      const victim = newVisitor();
      const { res: already } = await join(t, clock, 'takeover-shop', { name: 'Victim', phone: victimPhone }, victim);
      expect(already.statusCode).toBe(200);
      expect(already.body).toContain('This phone number already has a card');
      expect(already.body).not.toContain(oldToken);
      const send = await postVerify(victim, 'takeover-shop', verifyFormOf(already.body));
      expect(send.statusCode, send.body).toBe(200);
      const pushesBefore = pushesTo(t, pushToken(0x0a01)).length;
      const done = await postVerify(victim, 'takeover-shop', { ...codeFormOf(send.body), code: sms.lastCode(victimPhone) });
      expect(done.statusCode, done.body).toBe(303);
      const newToken = /^\/c\/([A-Za-z0-9_-]+)\?verified=1$/.exec(String(done.headers.location))![1]!;
      expect(newToken).not.toBe(oldToken);

      const after = await cardById(t, claimed.id);
      expect(after).toMatchObject({ balance: before.balance, lifetime_spend: before.lifetime_spend, verified_via: 'otp', public_token: newToken, google_object_id: null, google_generation: 1 });
      // The squatter's consent and email are not the owner's.
      expect(before).toMatchObject({ consent: true, email: 'squatter@example.com' });
      expect(after).toMatchObject({ consent: false, consent_at: null, consent_version: null, email: null, birthday: null });
      expect(after.number).not.toBe(before.number);
      expect(after.apple_serial).not.toBe(before.apple_serial);
      expect(after.apple_auth_token).not.toBe(before.apple_auth_token);
      // What the squatter holds stops working: the card page, the barcode at the till.
      expect((await getPage(t.app, squatter, `/c/${oldToken}`)).statusCode).toBe(404);
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/cards/by-barcode/${before.number}`, headers: as('pos') })).statusCode).toBe(404);
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/cards/by-barcode/${after.number}`, headers: as('pos') })).json().id).toBe(claimed.id);
      // The victim's browser now holds the card.
      expect((await getPage(t.app, victim, `/c/${newToken}`)).body).toContain(after.number.replace(/(\d{4})(?=\d)/g, '$1 '));

      // Apple: the old device is pushed, lists its old serial, and fetches a voided pass.
      await waitFor(() => pushesTo(t, pushToken(0x0a01)).length > pushesBefore, { what: 'the push to the old device' });
      const listed = await t.app.inject({ method: 'GET', url: listUrl(oldDevice, t.material.passTypeIdentifier, '0') });
      expect(listed.json().serialNumbers).toEqual([before.apple_serial]);
      const voided = await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, before.apple_serial), headers: { authorization: `ApplePass ${before.apple_auth_token}` } });
      expect(voided.statusCode).toBe(200);
      const voidedPass = passJsonOf(voided.rawPayload);
      expect(voidedPass).toMatchObject({ voided: true, serialNumber: before.apple_serial, authenticationToken: before.apple_auth_token });
      expect(JSON.stringify(voidedPass)).not.toContain(after.number);
      expect((await t.database.handle.db.selectFrom('retired_apple_pass').select('fetched_at').executeTakeFirstOrThrow()).fetched_at).not.toBeNull();
      // The new credentials serve the live pass; the old token is no key to it.
      expect((await passOf(t, after)).serialNumber).toBe(after.apple_serial);
      expect((await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, after.apple_serial), headers: { authorization: `ApplePass ${before.apple_auth_token}` } })).statusCode).toBe(401);
      // Later changes no longer push the old device (it has its voided pass).
      await waitForCardJobsIdle(t);
      const pushedOld = pushesTo(t, pushToken(0x0a01)).length;
      expect((await purchase(t, as, claimed.id, { amount: 10_000 })).statusCode).toBe(201);
      await waitForCardJobsIdle(t);
      expect(pushesTo(t, pushToken(0x0a01))).toHaveLength(pushedOld);

      // Google: the old object set INACTIVE by the update path; the new holder gets a new object.
      await waitFor(() => t.google!.fake.callsTo('patchObject').some((c) => c.path.includes(oldObject) && (c.body as { state?: string })?.state === 'INACTIVE'), {
        what: 'the old Google object set INACTIVE',
      });
      const newSave = await t.app.inject({ method: 'GET', url: `/c/${newToken}/google` });
      expect(newSave.statusCode).toBe(302);
      const newObject = (await cardById(t, claimed.id)).google_object_id!;
      expect(newObject).toBe(`${oldObject}-g1`);

      // The phone is proven now: another proof of it (a new phone of the same person) rotates nothing.
      clock.advance(2 * MIN);
      const later = newVisitor();
      const sendAgain = await t.app.inject({ method: 'POST', url: '/join/takeover-shop/verify', payload: { phone: victimPhone }, remoteAddress: later.remoteAddress });
      expect(sendAgain.statusCode).toBe(202);
      const confirm = await t.app.inject({ method: 'POST', url: '/join/takeover-shop/verify', payload: { phone: victimPhone, code: sms.lastCode(victimPhone) }, remoteAddress: later.remoteAddress });
      expect(confirm.json()).toMatchObject({ cardUrl: `/c/${newToken}`, takenOver: false });
      await expectInvariants(t);
    });
  });
});
