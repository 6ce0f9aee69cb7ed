import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, TEST_PUBLIC_URL, type TestApp } from '../support/app.js';
import { pushToken, register } from '../support/apple-device.js';
import { csvRecords } from '../support/csv.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

describe(`export of a program's cards as CSV (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let shop: Awaited<ReturnType<typeof createProgramWithKeys>>;
  let other: Awaited<ReturnType<typeof createProgramWithKeys>>;

  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false });
    shop = await createProgramWithKeys(t.app, 'export-shop');
    other = await createProgramWithKeys(t.app, 'export-other');
  });
  afterAll(async () => {
    await t?.close();
  });

  const issue = async (as: typeof shop.as, holder: Record<string, string>, consent = false) => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('admin'), payload: { holder, consent } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; number: string; installUrl: string };
  };

  it('writes one row per card with balance, tier, consent, wallet state and last purchase; UTF-8 with BOM; formulas neutralised', async () => {
    const anna = await issue(shop.as, { name: 'Анна Иванова', phone: '+79161110001', email: 'anna@example.com', birthday: '1990-05-17' }, true);
    const evil = await issue(shop.as, { name: '=HYPERLINK("http://evil.example","click")', phone: '+79161110002' });
    const tricky = await issue(shop.as, { name: 'Smith, "Jr"\nsecond line', phone: '+79161110003', email: 'smith@example.com' });
    const at = await issue(shop.as, { name: '@SUM(1+1)', phone: '+79161110004' });
    const minus = await issue(shop.as, { name: '-2+3', phone: '+79161110005' });
    const stranger = await issue(other.as, { name: 'Чужой Клиент', phone: '+79161110009' });
    const bought = await t.app.inject({
      method: 'POST',
      url: `/api/v1/cards/${anna.id}/purchases`,
      headers: { ...shop.as('pos'), 'idempotency-key': 'export-1' },
      payload: { amount: 123_450 },
    });
    expect(bought.statusCode, bought.body).toBe(201);
    const row = await t.database.handle.db.selectFrom('card').select(['apple_serial', 'apple_auth_token']).where('id', '=', anna.id).executeTakeFirstOrThrow();
    await register(t, 'export-device', { id: anna.id, serial: row.apple_serial, token: row.apple_auth_token, auth: { authorization: `ApplePass ${row.apple_auth_token}` } }, pushToken(0xe1));

    // Anna came in with a plastic card (as an import leaves it): the export keeps its number.
    await t.database.handle.db.updateTable('card').set({ external_number: '2000123456789' }).where('id', '=', anna.id).execute();
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/exports/cards.csv', headers: shop.as('admin') });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(String(res.headers['content-disposition'])).toMatch(/^attachment; filename="export-shop-cards-\d{4}-\d{2}-\d{2}\.csv"$/);
    // The byte-order mark Excel needs to read UTF-8.
    expect([...res.rawPayload.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const records = csvRecords(res.body);
    expect(records).toHaveLength(5);
    // Tenant isolation: another program's card is not in the file.
    expect(records.map((r) => r.card_id)).not.toContain(stranger.id);
    expect(res.body).not.toContain('Чужой');

    const byId = new Map(records.map((r) => [r.card_id, r]));
    const a = byId.get(anna.id)!;
    expect(a).toMatchObject({
      number: anna.number,
      external_number: '2000123456789',
      holder_name: 'Анна Иванова',
      phone: "'+79161110001", // a leading + is a formula to a spreadsheet
      email: 'anna@example.com',
      birthday: '1990-05-17',
      tier: 'standard',
      lifetime_spend: '1234.50',
      marketing_consent: 'yes',
      status: 'active',
      apple_devices: '1',
      google_saved: 'no',
      card_page_url: anna.installUrl,
    });
    expect(a.card_page_url).toBe(`${TEST_PUBLIC_URL}/c/${anna.installUrl.split('/c/')[1]}`);
    const card = await t.app.inject({ method: 'GET', url: `/api/v1/cards/${anna.id}`, headers: shop.as('admin') });
    expect(Number(a.balance)).toBe(card.json().balance);
    expect(new Date(a.last_purchase_at!).getTime()).toBeGreaterThan(0);
    expect(new Date(a.consent_at!).getTime()).toBeGreaterThan(0);
    expect(a.enrolled_at).toBe(card.json().createdAt);

    // CSV injection: cells a spreadsheet would evaluate start with an apostrophe; quotes, commas and line breaks survive.
    expect(byId.get(evil.id)!.holder_name).toBe('\'=HYPERLINK("http://evil.example","click")');
    expect(byId.get(evil.id)!.consent_at).toBe('');
    expect(byId.get(tricky.id)!.holder_name).toBe('Smith, "Jr"\nsecond line');
    expect(byId.get(at.id)!.holder_name).toBe("'@SUM(1+1)");
    expect(byId.get(minus.id)!.holder_name).toBe("'-2+3");
    expect(byId.get(tricky.id)!.last_purchase_at).toBe('');
  });

  it('pages through a base larger than one page, every card exactly once', async () => {
    // 2,500 cards straight into the table (the API would take minutes): the export reads 1,000 per page.
    await sql`
      INSERT INTO card (program_id, number, holder_name, phone, tier, referral_code, public_token, apple_serial, apple_auth_token)
      SELECT ${other.program.id}, 'bulk' || g, 'Bulk ' || g, '+7999' || lpad(g::text, 7, '0'), 'standard', 'bulk' || g, 'bulk-token-' || g, 'bulk-serial-' || g, 'bulk-auth-token-' || g
      FROM generate_series(1, 2500) g
    `.execute(t.database.handle.db);
    const { n } = await t.database.handle.db.selectFrom('card').select((eb) => eb.fn.countAll<string>().as('n')).where('program_id', '=', other.program.id).executeTakeFirstOrThrow();
    expect(Number(n)).toBeGreaterThan(2500);
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/exports/cards.csv', headers: other.as('admin') });
    expect(res.statusCode).toBe(200);
    const records = csvRecords(res.body);
    expect(records).toHaveLength(Number(n));
    expect(new Set(records.map((r) => r.card_id)).size).toBe(Number(n));
    expect(records.filter((r) => r.number.startsWith('bulk'))).toHaveLength(2500);
  });

  it('lists the cards on no wallet with their install link and QR code, and whether they consented to marketing', async () => {
    const invite = await createProgramWithKeys(t.app, 'invite-shop');
    const consenting = await issue(invite.as, { name: 'Согласный', phone: '+79162220001', email: 'yes@example.com' }, true);
    const silent = await issue(invite.as, { name: 'Без согласия', phone: '+79162220002' });
    const onApple = await issue(invite.as, { name: 'На айфоне', phone: '+79162220003' }, true);
    const onGoogle = await issue(invite.as, { name: 'На андроиде', phone: '+79162220004' }, true);
    const db = t.database.handle.db;
    const apple = await db.selectFrom('card').select(['apple_serial', 'apple_auth_token']).where('id', '=', onApple.id).executeTakeFirstOrThrow();
    await register(t, 'invite-device', { id: onApple.id, serial: apple.apple_serial, token: apple.apple_auth_token, auth: { authorization: `ApplePass ${apple.apple_auth_token}` } }, pushToken(0xe2));
    await db
      .insertInto('google_object')
      .values({ card_id: onGoogle.id, program_id: invite.program.id, object_id: 'x.invite', class_id: 'x.c', published_balance: 0, published_tier: 'standard', content_hash: 'h', saved: true })
      .execute();

    const res = await t.app.inject({ method: 'GET', url: '/api/v1/exports/invite-links.csv', headers: invite.as('admin') });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.body.startsWith('\uFEFFcard_id,number,holder_name,phone,email,marketing_consent')).toBe(true);
    const records = csvRecords(res.body);
    expect(records.map((r) => r.card_id).sort()).toEqual([consenting.id, silent.id].sort());
    const yes = records.find((r) => r.card_id === consenting.id)!;
    expect(yes).toMatchObject({ holder_name: 'Согласный', phone: "'+79162220001", email: 'yes@example.com', marketing_consent: 'yes', install_url: consenting.installUrl, qr_url: `${consenting.installUrl}/qr.png` });
    expect(records.find((r) => r.card_id === silent.id)).toMatchObject({ marketing_consent: 'no', consent_at: '' });

    // The QR code of the personal link, for a receipt or a letter.
    const path = yes.qr_url!.slice(TEST_PUBLIC_URL.length);
    const png = await t.app.inject({ method: 'GET', url: `${path}?size=256` });
    expect(png.statusCode).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect([...png.rawPayload.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
    const svg = await t.app.inject({ method: 'GET', url: path.replace(/\.png$/, '.svg') });
    expect(svg.statusCode).toBe(200);
    expect(svg.body).toContain('<svg');
    expect((await t.app.inject({ method: 'GET', url: `${path}?size=100000` })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/c/AAAAAAAAAAAAAAAAAAAAAAAA/qr.png' })).statusCode).toBe(404);
    for (const role of ['pos', 'marketer'] as const) {
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/exports/invite-links.csv', headers: invite.as(role) })).statusCode).toBe(403);
    }
  });

  it('is for the program admin only: pos and marketer keys and the instance key are refused', async () => {
    for (const role of ['pos', 'marketer'] as const) {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/exports/cards.csv', headers: shop.as(role) });
      expect(res.statusCode).toBe(403);
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/exports/cards.csv' })).statusCode).toBe(401);
    const instance = await t.app.inject({ method: 'GET', url: '/api/v1/exports/cards.csv', headers: { authorization: 'Bearer test-admin-key-0123456789abcdef' } });
    expect(instance.statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/exports/cards.csv?x=1', headers: shop.as('admin') })).statusCode).toBe(400);
  });
});
