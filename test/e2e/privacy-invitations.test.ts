import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { pushToken, register } from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { startSmsStandIn, type SmsStandIn } from '../support/sms-stand-in.js';
import { startSmtpStandIn, type SmtpStandIn } from '../support/smtp-stand-in.js';

describe(`invitations to the wallet by SMS and e-mail (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let sms: SmsStandIn;
  let smtp: SmtpStandIn;

  beforeAll(async () => {
    sms = await startSmsStandIn();
    smtp = await startSmtpStandIn();
    t = await startTestApp({
      env: { SMS_GATEWAY_URL: sms.url, SMTP_URL: smtp.url, MAIL_FROM: 'Карты <no-reply@wallet.test>' },
      // One card per page and one page per job: the batch goes through four jobs, each from the saved cursor.
      invitations: { perSecond: 1000, pageSize: 1, pagesPerJob: 1 },
    });
  });
  afterAll(async () => {
    await t?.close();
    await sms?.close();
    await smtp?.close();
  });

  it('sends each consenting holder of a card on no wallet their own link, once per channel, and counts', async () => {
    const shop = await createProgramWithKeys(t.app, 'invite-send', { defaultLanguage: 'ru' });
    const issue = async (holder: Record<string, string>, consent: boolean) => {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: shop.as('admin'), payload: { holder, consent } });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; installUrl: string };
    };
    const withMail = await issue({ name: 'Анна', phone: '+79163330001', email: 'anna@example.com' }, true);
    const phoneOnly = await issue({ name: 'Борис', phone: '+79163330002' }, true);
    await issue({ name: 'Вера', phone: '+79163330003', email: 'vera@example.com' }, false);
    const installed = await issue({ name: 'Глеб', phone: '+79163330004', email: 'gleb@example.com' }, true);
    const row = await t.database.handle.db.selectFrom('card').select(['apple_serial', 'apple_auth_token']).where('id', '=', installed.id).executeTakeFirstOrThrow();
    await register(t, 'invite-send-device', { id: installed.id, serial: row.apple_serial, token: row.apple_auth_token, auth: { authorization: `ApplePass ${row.apple_auth_token}` } }, pushToken(0x1e));

    for (const role of ['pos', 'marketer'] as const) {
      expect((await t.app.inject({ method: 'POST', url: '/api/v1/invitations', headers: shop.as(role), payload: { channels: ['sms'] } })).statusCode).toBe(403);
    }
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/invitations', headers: shop.as('admin'), payload: { channels: [] } })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/invitations', headers: shop.as('admin'), payload: { channels: ['fax'] } })).statusCode).toBe(400);

    const headers = { ...shop.as('admin'), 'idempotency-key': 'invite-1' };
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/invitations', headers, payload: { channels: ['sms', 'email'] } });
    expect(res.statusCode, res.body).toBe(202);
    const id: string = res.json().id;
    const replay = await t.app.inject({ method: 'POST', url: '/api/v1/invitations', headers, payload: { channels: ['sms', 'email'] } });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json().id).toBe(id);

    const done = await waitFor(
      async () => {
        const batch = (await t.app.inject({ method: 'GET', url: `/api/v1/invitations/${id}`, headers: shop.as('admin') })).json();
        return batch.status === 'finished' ? batch : undefined;
      },
      { what: 'the invitation batch to finish' },
    );
    const jobs = await sql<{ n: string }>`SELECT count(*) AS n FROM pgboss.job WHERE name = 'invitations-send'`.execute(t.database.handle.db);
    expect(Number(jobs.rows[0]!.n)).toBeGreaterThanOrEqual(4);
    expect(done).toMatchObject({ channels: ['sms', 'email'], cards: 3, skippedNoConsent: 1, sms: { sent: 2, failed: 0 }, email: { sent: 1, failed: 0, noAddress: 1 } });

    // Each consenting holder got their own link; the one without consent and the installed card got nothing.
    expect(sms.received).toHaveLength(2);
    expect(sms.to('+79163330001')).toHaveLength(1);
    expect(sms.to('+79163330001')[0]!.text).toContain(withMail.installUrl);
    expect(sms.to('+79163330001')[0]!.text).toContain('Apple Wallet');
    expect(sms.to('+79163330002')[0]!.text).toContain(phoneOnly.installUrl);
    expect(sms.to('+79163330003')).toHaveLength(0);
    expect(sms.to('+79163330004')).toHaveLength(0);
    await waitFor(() => smtp.received.length >= 1, { what: 'the mail' });
    expect(smtp.received).toHaveLength(1);
    expect(smtp.received[0]!.envelopeTo).toEqual(['anna@example.com']);
    expect(smtp.received[0]!.subject).toContain('Program invite-send');
    expect(smtp.received[0]!.text.replace(/\s+/g, '')).toContain(withMail.installUrl);

    // The job running again (a retry after a crash) sends nothing twice.
    await t.database.handle.db.updateTable('invitation_batch').set({ status: 'sending', cursor_card_id: null }).where('id', '=', id).execute();
    await t.app.ctx.jobs.send(t.database.handle.db, 'invitations-send', { programId: shop.program.id, batchId: id });
    await waitFor(async () => (await t.database.handle.db.selectFrom('invitation_batch').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status === 'finished', {
      what: 'the rerun to finish',
    });
    expect(sms.received).toHaveLength(2);
    expect(smtp.received).toHaveLength(1);

    // Another program's key does not see the batch.
    const other = await createProgramWithKeys(t.app, 'invite-other');
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/invitations/${id}`, headers: other.as('admin') })).statusCode).toBe(404);
  });
});
