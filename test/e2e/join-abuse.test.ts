import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { cardTokenOf, createTestClock, newVisitor, openJoinPage, submitJoinForm, type Visitor } from '../support/join-form.js';

// Abuse protections of the public join form: one bonus per phone, no self-referral, per-IP rate
// limit, honeypot, signed render time (too fast, too old, tampered).
describe(`join form abuse protections (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  const clock = createTestClock();
  const SLUG = 'abuse-shop';
  let pos: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({ clock: clock.now });
    pos = (await createProgramWithKeys(t.app, SLUG, { defaultLanguage: 'en' })).as('pos');
  });
  afterAll(async () => {
    await t?.close();
  });

  const db = () => t.database.handle.db;
  const cardCount = async () => Number((await db().selectFrom('card').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const pendingOf = (cardId: string) => db().selectFrom('pending_bonus').select(['kind', 'points']).where('card_id', '=', cardId).orderBy('id').execute();
  const ledgerOf = (cardId: string) => db().selectFrom('ledger_entry').select(['kind', 'points']).where('card_id', '=', cardId).orderBy('id').execute();

  async function join(visitor: Visitor, fields: Record<string, string | undefined>, options: { waitMs?: number; query?: string } = {}) {
    const { inputs } = await openJoinPage(t.app, visitor, `/join/${SLUG}${options.query ?? ''}`);
    clock.advance(options.waitMs ?? 2_500);
    return submitJoinForm(t.app, visitor, SLUG, inputs, fields);
  }

  it('gives a known phone no second bonus; its card opens only in a browser that already has it', async () => {
    const browser = newVisitor();
    const first = await join(browser, { name: 'Dup', phone: '+79170000001' });
    const token = cardTokenOf(first);
    const card = await db().selectFrom('card').selectAll().where('public_token', '=', token).executeTakeFirstOrThrow();
    // A self-service card's welcome bonus is pending until the phone or a first purchase confirms it.
    expect(card).toMatchObject({ balance: 0, pending_points: 1000 });

    // The same browser submits again (back button, double tap): back to the same card, no bonus.
    const again = await join(browser, { name: 'Dup again', phone: '8 917 000-00-01' });
    expect(cardTokenOf(again)).toBe(token);

    // Someone else with the same number: no card page (the phone number is no secret), no bonus.
    const stranger = await join(newVisitor(), { name: 'Not Dup', phone: '+79170000001' });
    expect(stranger.statusCode).toBe(200);
    expect(stranger.body).toContain('This phone number already has a card');
    expect(stranger.body).not.toContain(token);
    expect(stranger.body).not.toContain(card.number);

    // The API path answers the same way: existing card, 200, no bonus.
    const api = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: pos, payload: { holder: { name: 'Dup', phone: '+79170000001' } } });
    expect(api.statusCode).toBe(200);
    expect(api.json().id).toBe(card.id);

    const after = await db().selectFrom('card').selectAll().where('id', '=', card.id).executeTakeFirstOrThrow();
    expect(after).toMatchObject({ balance: 0, pending_points: 1000 });
    expect(after.holder_name).toBe('Dup');
    expect(await ledgerOf(card.id)).toEqual([]);
    expect(await pendingOf(card.id)).toEqual([{ kind: 'welcome', points: 1000 }]);
  });

  it('refuses self-referral: the own code from the same phone returns the existing card without a bonus', async () => {
    const browser = newVisitor();
    const token = cardTokenOf(await join(browser, { name: 'Self', phone: '+79170000002' }));
    const card = await db().selectFrom('card').selectAll().where('public_token', '=', token).executeTakeFirstOrThrow();

    const self = await join(browser, { name: 'Self', phone: '+79170000002' }, { query: `?ref=${card.referral_code}` });
    expect(cardTokenOf(self)).toBe(token);
    const after = await db().selectFrom('card').selectAll().where('id', '=', card.id).executeTakeFirstOrThrow();
    expect(after).toMatchObject({ balance: 0, pending_points: 1000 });
    expect(after.referred_by).toBeNull();
    expect(await pendingOf(card.id)).toEqual([{ kind: 'welcome', points: 1000 }]);
    const referralEntries = await db().selectFrom('ledger_entry').select('id').where('kind', '=', 'referral').where('card_id', '=', card.id).execute();
    expect(referralEntries).toHaveLength(0);
  });

  it('refuses a filled honeypot, a too fast submission, an old form and a tampered timestamp, showing the form again', async () => {
    const before = await cardCount();

    const honeypot = await join(newVisitor(), { name: 'Bot', phone: '+79170000010', website: 'http://spam.example' });
    expect(honeypot.statusCode).toBe(422);
    expect(honeypot.body).toContain('We could not accept the form');
    expect(honeypot.body).toContain('value="Bot"');

    const tooFast = await join(newVisitor(), { name: 'Fast', phone: '+79170000011' }, { waitMs: 500 });
    expect(tooFast.statusCode).toBe(422);
    expect(tooFast.body).toContain('We could not accept the form');

    const tooOld = await join(newVisitor(), { name: 'Old', phone: '+79170000012' }, { waitMs: 25 * 60 * 60 * 1000 });
    expect(tooOld.statusCode).toBe(422);

    // The render time moved back by a minute, keeping the signature: refused.
    const visitor = newVisitor();
    const { inputs } = await openJoinPage(t.app, visitor, `/join/${SLUG}`);
    clock.advance(3_000);
    const [ms, signature] = inputs.ts.split('.');
    const tampered = await submitJoinForm(t.app, visitor, SLUG, inputs, { name: 'Tamper', phone: '+79170000013', ts: `${Number(ms) - 60_000}.${signature}` });
    expect(tampered.statusCode).toBe(422);
    const forged = await submitJoinForm(t.app, visitor, SLUG, inputs, { name: 'Tamper', phone: '+79170000013', ts: `${Number(ms) - 60_000}.${'A'.repeat(43)}` });
    expect(forged.statusCode).toBe(422);
    const missing = await submitJoinForm(t.app, visitor, SLUG, inputs, { name: 'Tamper', phone: '+79170000013', ts: '' });
    expect(missing.statusCode).toBe(422);

    expect(await cardCount()).toBe(before);

    // The re-shown form carries a fresh token: a person who waits and submits it again gets the card.
    const fresh = tampered.body.match(/name="ts" value="([^"]+)"/)![1];
    clock.advance(3_000);
    const ok = await submitJoinForm(t.app, visitor, SLUG, inputs, { name: 'Tamper', phone: '+79170000013', ts: fresh });
    expect(ok.statusCode).toBe(303);
    expect(await cardCount()).toBe(before + 1);
  });

  it('rate-limits POST /join per IP (10 a minute) with a 429 page; other IPs are not affected', async () => {
    const ip = '198.51.100.7';
    const visitor = newVisitor({ remoteAddress: ip });
    const { inputs } = await openJoinPage(t.app, visitor, `/join/${SLUG}`);
    clock.advance(3_000);
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const res = await submitJoinForm(t.app, visitor, SLUG, inputs, { name: `Rate ${i}`, phone: `+7917100${String(i).padStart(4, '0')}` });
      statuses.push(res.statusCode);
      if (res.statusCode === 429) {
        expect(res.headers['content-type']).toContain('text/html');
        expect(res.headers['retry-after']).toBeDefined();
        expect(res.body).toContain('Too many attempts');
      }
    }
    expect(statuses.slice(0, 10).every((s) => s === 303)).toBe(true);
    expect(statuses[10]).toBe(429);
    // GET is not limited, and another address may still post.
    expect((await openJoinPage(t.app, visitor, `/join/${SLUG}`)).res.statusCode).toBe(200);
    const other = await join(newVisitor({ remoteAddress: '198.51.100.8' }), { name: 'Other IP', phone: '+79171009999' });
    expect(other.statusCode).toBe(303);
  });
});

describe(`join form behind a reverse proxy (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  const clock = createTestClock();
  const SLUG = 'proxied-shop';
  const PROXY = '10.9.9.9';
  beforeAll(async () => {
    t = await startTestApp({ clock: clock.now, env: { TRUST_PROXY: `${PROXY},192.0.2.0/24` } });
    await createProgramWithKeys(t.app, SLUG, { defaultLanguage: 'en' });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function postMany(visitor: Visitor, count: number, phoneBase: number) {
    const { inputs } = await openJoinPage(t.app, visitor, `/join/${SLUG}`);
    clock.advance(3_000);
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) {
      const res = await submitJoinForm(t.app, visitor, SLUG, inputs, { name: `Proxied ${i}`, phone: `+7917${phoneBase + i}` });
      statuses.push(res.statusCode);
    }
    return statuses;
  }

  it('with TRUST_PROXY the per-IP limit counts the X-Forwarded-For client of a trusted proxy, and ignores it from anyone else', async () => {
    // Two clients behind the trusted proxy: each has its own 10 a minute.
    const first = await postMany(newVisitor({ remoteAddress: PROXY, forwardedFor: '203.0.113.1' }), 11, 2000000);
    expect(first.slice(0, 10).every((s) => s === 303)).toBe(true);
    expect(first[10]).toBe(429);
    expect(await postMany(newVisitor({ remoteAddress: PROXY, forwardedFor: '203.0.113.2' }), 1, 2000100)).toEqual([303]);
    // A peer that is not a trusted proxy cannot borrow or burn another client's allowance.
    expect(await postMany(newVisitor({ remoteAddress: '198.51.100.60', forwardedFor: '203.0.113.1' }), 1, 2000200)).toEqual([303]);
  });
});
