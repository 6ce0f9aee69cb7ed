import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { pushToken, register } from '../support/apple-device.js';
import { createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { signCallback } from '../support/google-fake.js';
import { startSmsStandIn, type SmsStandIn } from '../support/sms-stand-in.js';

// The migration funnel "plastic → wallet" (issue #12 item 4, docs/import.md "Migration funnel"), end
// to end through HTTP: import → SMS invitations → card pages opened → Apple and Google installs →
// purchases, then GET /api/v1/stats/migration and the cabinet's statistics screen.

describe(`migration funnel plastic → wallet (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let sms: SmsStandIn;

  beforeAll(async () => {
    sms = await startSmsStandIn();
    t = await startTestApp({ google: true, env: { SMS_GATEWAY_URL: sms.url }, invitations: { perSecond: 1000 } });
  });
  afterAll(async () => {
    await t?.close();
    await sms?.close();
  });

  it('counts every step per import, store and week, and only imported cards', async () => {
    const { app } = t;
    const db = t.database.handle.db;
    const shop = await createProgramWithKeys(app, 'migrate', { defaultLanguage: 'ru' });
    const admin = shop.as('admin');

    // Six plastic holders in two stores; the sixth gave no marketing consent (gets no SMS).
    const csv = [
      'Номер карты,Телефон,ФИО,Магазин,Согласие',
      '3000001,+79165550001,Анна,Тверская,да',
      '3000002,+79165550002,Борис,Тверская,да',
      '3000003,+79165550003,Вера,Тверская,да',
      '3000004,+79165550004,Глеб,Тверская,да',
      '3000005,+79165550005,Дарья,Арбат,да',
      '3000006,+79165550006,Егор,Арбат,нет',
    ].join('\r\n');
    const imported = await app.inject({ method: 'POST', url: '/api/v1/imports', headers: { ...admin, 'content-type': 'text/csv' }, payload: csv });
    expect(imported.statusCode, imported.body).toBe(202);
    const importId: string = imported.json().id;
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/api/v1/imports/${importId}`, headers: admin })).json().status === 'finished', {
      what: 'the import to finish',
    });

    // A card issued at the till, not imported: invited, opened, installed and used, never counted.
    const walkIn = await app.inject({ method: 'POST', url: '/api/v1/cards', headers: admin, payload: { holder: { name: 'Зоя', phone: '+79165550099' }, consent: true } });
    expect(walkIn.statusCode, walkIn.body).toBe(201);

    const before = (await app.inject({ method: 'GET', url: '/api/v1/stats/migration', headers: shop.as('marketer') })).json();
    expect(before.totals).toMatchObject({ imported: 6, invited: 0, opened: 0, installed: 0, purchased: 0, invitedRate: 0 });

    // Invitations by SMS: the five consenting imported holders and the walk-in.
    const batch = await app.inject({ method: 'POST', url: '/api/v1/invitations', headers: admin, payload: { channels: ['sms'] } });
    expect(batch.statusCode, batch.body).toBe(202);
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/api/v1/invitations/${batch.json().id}`, headers: admin })).json().status === 'finished', {
      what: 'the invitations to be sent',
    });
    expect(sms.received).toHaveLength(6);

    const rows = await db
      .selectFrom('card')
      .select(['id', 'external_number', 'public_token', 'apple_serial', 'apple_auth_token'])
      .where('program_id', '=', shop.program.id)
      .execute();
    const card = (n: string) => rows.find((r) => r.external_number === n)!;
    const walkInRow = rows.find((r) => r.external_number === null)!;
    const open = async (c: { public_token: string }) => expect((await app.inject({ method: 'GET', url: `/c/${c.public_token}` })).statusCode).toBe(200);
    const appleInstall = (c: (typeof rows)[number], device: string, token: number) =>
      register(t, device, { id: c.id, serial: c.apple_serial, token: c.apple_auth_token, auth: { authorization: `ApplePass ${c.apple_auth_token}` } }, pushToken(token));
    const buy = async (c: { id: string }, key: string) => {
      const res = await app.inject({ method: 'POST', url: `/api/v1/cards/${c.id}/purchases`, headers: { ...shop.as('pos'), 'idempotency-key': key }, payload: { amount: 50_000 } });
      expect(res.statusCode, res.body).toBe(201);
    };

    // Pages opened: 1 (twice), 2, 3, 5 and the walk-in.
    for (const n of ['3000001', '3000001', '3000002', '3000003', '3000005']) await open(card(n));
    await open(walkInRow);

    // A purchase with the plastic before the wallet does not count as the wallet card's first purchase.
    await buy(card('3000005'), 'before-install-5');
    await buy(card('3000003'), 'plastic-only-3');

    // Installs: 1 and 5 on Apple, 2 on Google (save link, then Google's signed save callback), the walk-in on Apple.
    await appleInstall(card('3000001'), 'funnel-device-1', 0x31);
    await appleInstall(card('3000005'), 'funnel-device-5', 0x35);
    await appleInstall(walkInRow, 'funnel-device-w', 0x39);
    const link = await app.inject({ method: 'GET', url: `/c/${card('3000002').public_token}/google` });
    expect(link.statusCode).toBe(302);
    const jwtPayload = JSON.parse(Buffer.from(String(link.headers.location).split('/').pop()!.split('.')[1]!, 'base64url').toString());
    const [{ id: objectId, classId }] = jwtPayload.payload.loyaltyObjects;
    const { callbackKeys, issuerId } = t.google!;
    const saved = await app.inject({ method: 'POST', url: '/google/callback', payload: signCallback({ keys: callbackKeys, issuerId, eventType: 'save', objectId, classId, nonce: 'funnel-save-2' }) });
    expect(saved.json()).toEqual({ status: 'recorded' });

    // Purchases with the wallet card: 1 and 2 (and the walk-in, not counted).
    await buy(card('3000001'), 'wallet-1');
    await buy(card('3000002'), 'wallet-2');
    await buy(walkInRow, 'wallet-w');

    const res = await app.inject({ method: 'GET', url: '/api/v1/stats/migration', headers: shop.as('marketer') });
    expect(res.statusCode, res.body).toBe(200);
    const stats = res.json();
    expect(stats.totals).toEqual({
      imported: 6,
      invited: 5,
      opened: 4,
      installed: 3,
      apple: 2,
      google: 1,
      purchased: 2,
      invitedRate: 0.8333,
      openedRate: 0.6667,
      installedRate: 0.5,
      purchasedRate: 0.3333,
    });
    expect(stats.byStore).toEqual([
      { store: 'Тверская', imported: 4, invited: 4, opened: 3, installed: 2, apple: 1, google: 1, purchased: 2, invitedRate: 1, openedRate: 0.75, installedRate: 0.5, purchasedRate: 0.5 },
      { store: 'Арбат', imported: 2, invited: 1, opened: 1, installed: 1, apple: 1, google: 0, purchased: 0, invitedRate: 0.5, openedRate: 0.5, installedRate: 0.5, purchasedRate: 0 },
    ]);
    expect(stats.byImport).toHaveLength(1);
    expect(stats.byImport[0]).toMatchObject({ importId, ...stats.totals });
    expect(stats.byWeek).toHaveLength(1);
    expect(stats.byWeek[0]).toMatchObject({ imported: 6, installed: 3, purchased: 2 });
    expect(stats.byWeek[0].week).toMatch(/^\d{4}-W\d{2}$/);
    // By the week each step happened: every step once per card (summed, as a run may cross a week's end).
    const sum = (key: string) => stats.stepsByWeek.reduce((n: number, w: Record<string, number>) => n + w[key]!, 0);
    expect({ invited: sum('invited'), opened: sum('opened'), installed: sum('installed'), purchased: sum('purchased') }).toEqual({ invited: 5, opened: 4, installed: 3, purchased: 2 });
    expect(stats.stepsByWeek[0].weekStart).toMatch(/^\d{4}-\d{2}-\d{2}$/);

    // Filtered to the import: the same; an unknown import: nothing; bad input: 400; a POS key: 403.
    const only = (await app.inject({ method: 'GET', url: `/api/v1/stats/migration?importId=${importId}`, headers: admin })).json();
    expect(only.totals).toEqual(stats.totals);
    const none = (await app.inject({ method: 'GET', url: '/api/v1/stats/migration?importId=00000000-0000-4000-8000-000000000000', headers: admin })).json();
    expect(none).toMatchObject({ totals: { imported: 0, invitedRate: null }, byImport: [], byStore: [], byWeek: [], stepsByWeek: [] });
    expect((await app.inject({ method: 'GET', url: '/api/v1/stats/migration?importId=nope', headers: admin })).statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/api/v1/stats/migration', headers: shop.as('pos') })).statusCode).toBe(403);

    // The cabinet's statistics screen shows the same funnel: "moved to the wallet: 50 %", per store.
    await createStaff(app, shop.program.id, { name: 'Ольга', role: 'marketer', email: 'olga@migrate.example', password: 'olga password 1' });
    const cabinet = await signIn(app, 'olga@migrate.example', 'olga password 1');
    const page = await cabinet.get('/app/stats?lang=en');
    expect(page.statusCode).toBe(200);
    const section = /<section class="panel" aria-labelledby="migration-title"[\s\S]*?<\/section>/.exec(page.body)?.[0] ?? '';
    expect(section).toContain('Moved to the wallet: 50%');
    expect(section).toContain('id="chart-migration"');
    const storeRow = (name: string) => new RegExp(`<tr><th scope="row">${name}</th>(.*?)</tr>`).exec(section)?.[1]?.match(/<td class="num">([^<]*)<\/td>/g)?.map((c) => c.replace(/<[^>]+>/g, ''));
    expect(storeRow('Тверская')).toEqual(['4', '4', '3', '2', '2', '50%']);
    expect(storeRow('Арбат')).toEqual(['2', '1', '1', '1', '0', '50%']);
    expect(section).toContain('data-table="migration-weeks"');
    expect(section).toContain(`<th scope="row">${stats.stepsByWeek.at(-1).week}</th>`);

    // Another program sees none of it.
    const other = await createProgramWithKeys(app, 'migrate-other');
    expect((await app.inject({ method: 'GET', url: '/api/v1/stats/migration', headers: other.as('admin') })).json().totals.imported).toBe(0);
  });
});
