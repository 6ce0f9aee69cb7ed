import { Writable } from 'node:stream';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, TEST_ADMIN_KEY, waitFor, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signInLink } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { cardTokenOf, newVisitor, openJoinPage, submitJoinForm } from '../support/join-form.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Secrets stay out of the logs (issue #11: database error logs carried phones, names, card tokens
 * and ApplePass tokens; request logs carried card tokens). The service runs with its logs captured
 * (pino, level debug, into a buffer) through a representative flow — cards issued, purchases and a
 * refund, the pass download, Apple registration and pass fetch, the card page and Google link, the
 * join form, a cabinet sign-in link, a failing webhook and a database error — and then no key,
 * card token, ApplePass token, sign-in token, phone number, e-mail or holder name may appear in them.
 */
describe(`no secrets or personal data in the logs (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let log = '';
  const secrets = new Map<string, string>();
  const remember = (what: string, value: string | undefined | null) => {
    if (value) secrets.set(value, what);
  };

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        log += chunk.toString('utf8');
        callback();
      },
    });
    t = await startTestApp({
      logger: pino({ level: 'debug' }, stream),
      google: true,
      // The failing receiver is on 127.0.0.1.
      env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' },
      joinForm: { minFillMs: 0 },
      webhooks: { retryDelaysSeconds: [30], timeoutMs: 2000 },
    });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('runs the flow and finds none of them in any log line', async () => {
    const { app } = t;
    remember('instance admin key', TEST_ADMIN_KEY);
    const { program, keys, as } = await createProgramWithKeys(app, 'log-scan');
    for (const [role, key] of Object.entries(keys)) remember(`${role} key`, key);

    // A webhook whose receiver fails: the delivery failure is logged.
    receiver.respond('/failing', 500);
    const webhook = await app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: as('admin'), payload: { url: receiver.url('/failing'), events: ['card.issued', 'purchase.created'] } });
    expect(webhook.statusCode).toBe(201);
    remember('webhook secret', webhook.json().secret);

    // Cards through the API, purchases, a refund.
    const holder = { name: 'Секретова Анна', phone: '8 (916) 555-43-21', email: 'anna.secret@example.org' };
    const issued = await app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder, consent: true } });
    expect(issued.statusCode).toBe(201);
    const card = issued.json();
    remember('phone as typed', holder.phone);
    remember('phone E.164', '+79165554321');
    remember('phone digits', '9165554321');
    remember('holder name', holder.name);
    remember('email', holder.email);
    const purchase = await app.inject({
      method: 'POST',
      url: `/api/v1/cards/${card.id}/purchases`,
      headers: { ...as('pos'), 'idempotency-key': 'log-scan-1' },
      payload: { amount: 250_000, receiptId: 'R-LOG-1' },
    });
    expect(purchase.statusCode).toBe(201);
    await app.inject({ method: 'POST', url: `/api/v1/cards/${card.id}/purchases`, headers: { ...as('pos'), 'idempotency-key': 'log-scan-2' }, payload: { amount: 10_000 } });
    const refund = await app.inject({ method: 'POST', url: `/api/v1/purchases/${purchase.json().purchaseId}/refund`, headers: { ...as('pos'), 'idempotency-key': 'log-scan-3' } });
    expect(refund.statusCode).toBe(200);
    await app.inject({ method: 'GET', url: `/api/v1/cards?query=${encodeURIComponent('+79165554321')}`, headers: as('pos') });

    // The public card links and the pass.
    const row = await t.database.handle.db.selectFrom('card').select(['public_token', 'apple_serial', 'apple_auth_token']).where('id', '=', card.id).executeTakeFirstOrThrow();
    remember('card token', row.public_token);
    remember('ApplePass token', row.apple_auth_token);
    expect((await app.inject({ method: 'GET', url: `/c/${row.public_token}` })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/c/${row.public_token}/card.pkpass` })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/c/${row.public_token}/google` })).statusCode).toBe(302);
    // A wrong card token is not a secret, but is redacted the same way.
    expect((await app.inject({ method: 'GET', url: `/c/${'x'.repeat(24)}/card.pkpass` })).statusCode).toBe(404);

    // The Apple device: registration, list, pass fetch (the ApplePass token is in Authorization).
    const applePass = { authorization: `ApplePass ${row.apple_auth_token}` };
    const ptid = t.material.passTypeIdentifier;
    const pushToken = 'c'.repeat(64);
    expect((await app.inject({ method: 'POST', url: `/apple/v1/devices/logscandevice/registrations/${ptid}/${row.apple_serial}`, headers: applePass, payload: { pushToken } })).statusCode).toBe(201);
    expect((await app.inject({ method: 'GET', url: `/apple/v1/devices/logscandevice/registrations/${ptid}` })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/apple/v1/passes/${ptid}/${row.apple_serial}`, headers: applePass })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `/apple/v1/passes/${ptid}/${row.apple_serial}`, headers: { authorization: 'ApplePass wrong-token-000000000' } })).statusCode).toBe(401);

    // The join form: a customer enrolls with another phone.
    const visitor = newVisitor();
    const { inputs } = await openJoinPage(app, visitor, `/join/${program.slug}`);
    const joined = await submitJoinForm(app, visitor, program.slug, inputs, { name: 'Формова Вера', phone: '+7 917 444-32-10', email: 'vera.form@example.org', consent: 'yes' });
    remember('join phone', '+79174443210');
    remember('join phone digits', '9174443210');
    remember('join name', 'Формова Вера');
    remember('join email', 'vera.form@example.org');
    remember('join card token', cardTokenOf(joined));
    expect((await app.inject({ method: 'GET', url: `/c/${cardTokenOf(joined)}`, headers: { cookie: visitor.jar.header() } })).statusCode).toBe(200);

    // A cabinet sign-in link, used.
    const staff = await createStaff(app, program.id, { name: 'Логов Сотрудник', role: 'owner' });
    const link = await signInLink(app, program.id, staff.id);
    const linkPath = new URL(link.url).pathname;
    remember('sign-in link token', linkPath.split('/').pop());
    const browser = new CabinetClient(app);
    await browser.get(linkPath);
    expect((await browser.post(linkPath, { _csrf: browser.csrf() })).statusCode).toBe(303);
    remember('session cookie', browser.cookies.get('wc_session'));

    // A database error on a statement that carries personal data and tokens: a trigger refuses the
    // next card insert, whose parameters hold the name, phone, card token and ApplePass token.
    await sql
      .raw(`
        CREATE FUNCTION log_scan_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.holder_name = 'Ошибкова Ирина' THEN
            RAISE EXCEPTION 'log scan: card insert refused' USING DETAIL = 'holder ' || NEW.holder_name || ' phone ' || NEW.phone;
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER log_scan_refuse BEFORE INSERT ON card FOR EACH ROW EXECUTE FUNCTION log_scan_refuse();`)
      .execute(t.database.handle.db);
    const failed = await app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Ошибкова Ирина', phone: '+7 918 333-22-11', email: 'irina.err@example.org' } } });
    expect(failed.statusCode).toBe(500);
    remember('failed phone', '+79183332211');
    remember('failed phone digits', '9183332211');
    remember('failed name', 'Ошибкова Ирина');
    remember('failed email', 'irina.err@example.org');

    // The webhook deliveries fail and are logged.
    await waitFor(() => log.includes('webhook delivery attempt failed'), { what: 'a logged webhook failure', timeoutMs: 30_000 });

    // The logs say what happened (so the scan below reads real lines)…
    const lines = log.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>);
    const errorLine = lines.find((l) => l.msg === 'unhandled error');
    expect(errorLine?.err).toMatchObject({ code: 'P0001', message: 'log scan: card insert refused' });
    expect(errorLine?.err.detail).toBeUndefined();
    expect(lines.some((l) => l.req?.url === '/c/[redacted]/card.pkpass')).toBe(true);
    expect(lines.some((l) => l.req?.url === '/app/sign-in/link/[redacted]')).toBe(true);
    expect(lines.filter((l) => l.req).length).toBeGreaterThan(20);

    // …and none of these strings is in any of them.
    const found = [...secrets].filter(([value]) => log.includes(value)).map(([value, what]) => `${what}: ${value}`);
    console.log(`[log-scan] ${TEST_DATABASE_KIND}: ${lines.length} log lines, ${secrets.size} secrets and personal values checked, ${found.length} found`);
    expect(found).toEqual([]);
  });
});
