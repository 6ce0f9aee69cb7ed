import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD_RESET_MAIL_QUEUE } from '../../src/cabinet/password-reset.js';
import { createProgramWithKeys, startTestApp, TEST_PUBLIC_URL, waitFor, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { startSmtpStandIn, type ReceivedMail, type SmtpStandIn } from '../support/smtp-stand-in.js';

// Password reset by email (/app/reset) against a local SMTP server, over HTTP.
describe(`cabinet password reset by email (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let smtp: SmtpStandIn;
  let offsetMs = 0;
  const logs: string[] = [];
  const OLD = 'correct horse battery';
  const NEW = 'a brand new pass phrase';
  let program: { id: string };

  beforeAll(async () => {
    smtp = await startSmtpStandIn({ user: 'mailer@wallet.test', password: 'smtp p@ss:word/1' });
    t = await startTestApp({
      env: { SMTP_URL: smtp.url, MAIL_FROM: 'Карты лояльности <no-reply@wallet.test>' },
      clock: () => new Date(Date.now() + offsetMs),
      cabinet: { maxResetsPerAccount: 3, maxResetsPerIp: 4, postsPerMinute: 1000 },
      logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(line) }),
    });
    ({ program } = await createProgramWithKeys(t.app, 'reset-ru'));
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
  });

  const mailsTo = (email: string) => smtp.received.filter((m) => m.envelopeTo.includes(email));
  async function waitForMail(email: string, count = 1): Promise<ReceivedMail> {
    await waitFor(() => mailsTo(email).length >= count, { what: `mail ${count} to ${email}` });
    return mailsTo(email)[count - 1];
  }
  const linkIn = (mail: ReceivedMail) => {
    const match = /https:\/\/wallet\.test\/app\/reset\/([A-Za-z0-9_-]{43})(?=\s|$)/.exec(mail.text);
    if (!match) throw new Error(`no reset link in the mail:\n${mail.text}`);
    return { url: match[0], path: new URL(match[0]).pathname, token: match[1] };
  };

  /** Asks for a reset like a browser: the form, then the POST; returns the POST's response. */
  async function requestReset(client: CabinetClient, email: string) {
    const form = await client.get('/app/reset');
    expect(form.statusCode).toBe(200);
    return client.post('/app/reset', { _csrf: client.csrf(form.body), email });
  }

  it('answers a staff email and an unknown one alike; only the staff member gets a mail, with the link by SMTP', async () => {
    await createStaff(t.app, program.id, { name: 'Ольга Владелец', role: 'owner', email: 'olga@example.com', password: OLD });
    const signInPage = await new CabinetClient(t.app).get('/app/sign-in');
    expect(signInPage.body).toContain('<a href="/app/reset">Забыли пароль?</a>');

    const stranger = new CabinetClient(t.app, {}, '10.1.0.1');
    const unknown = await requestReset(stranger, 'nobody@example.com');
    const member = new CabinetClient(t.app, {}, '10.1.0.2');
    const known = await requestReset(member, ' Olga@Example.com ');
    for (const res of [unknown, known]) {
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/app/reset?sent=1');
    }
    const [unknownPage, knownPage] = [await stranger.get('/app/reset?sent=1'), await member.get('/app/reset?sent=1')];
    expect(knownPage.statusCode).toBe(200);
    expect(knownPage.body).toContain('Если этот адрес принадлежит сотруднику, мы отправили на него письмо');
    expect(knownPage.body).toContain('действует 30 минут');
    expect(unknownPage.body).toBe(knownPage.body);

    // Jobs run in order: once the staff member's mail is here, a mail for the unknown address would be too.
    const mail = await waitForMail('olga@example.com');
    expect(smtp.received.filter((m) => m.envelopeTo.includes('nobody@example.com'))).toEqual([]);
    expect(await t.database.handle.db.selectFrom('staff_password_reset').select('email').execute()).toEqual([{ email: 'olga@example.com' }]);

    expect(mail.user).toBe('mailer@wallet.test'); // SMTP_URL's credentials, percent-decoded
    expect(mail.envelopeFrom).toBe('no-reply@wallet.test');
    expect(mail.headers.get('from')).toBe('Карты лояльности <no-reply@wallet.test>');
    expect(mail.subject).toBe('Сброс пароля: кабинет программы «Program reset-ru»');
    expect(mail.text).toContain('Здравствуйте, Ольга Владелец!');
    expect(mail.text).toContain('действует 30 минут');
    const link = linkIn(mail);
    expect(link.url.startsWith(`${TEST_PUBLIC_URL}/app/reset/`)).toBe(true);

    // Only the token's SHA-256 is stored; neither the reset row nor the job carries the token, and no log line does.
    await waitFor(async () => (await t.database.handle.db.selectFrom('staff_password_reset').select('sent_at').executeTakeFirstOrThrow()).sent_at);
    const rows = await t.database.handle.db.selectFrom('staff_password_reset').selectAll().execute();
    expect(rows[0].token_hash).toBe(createHash('sha256').update(link.token).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(link.token);
    const jobs = await sql<{ data: unknown }>`SELECT data FROM pgboss.job WHERE name = ${PASSWORD_RESET_MAIL_QUEUE}`.execute(t.database.handle.db);
    expect(jobs.rows.length).toBe(1);
    expect(JSON.stringify(jobs.rows)).not.toContain(link.token);
    await new CabinetClient(t.app).get(link.path); // a request whose URL carries the token
    expect(logs.join('')).toContain('/app/reset/[redacted]');
    expect(logs.join('')).not.toContain(link.token);
    expect(logs.join('')).not.toContain('p@ss');
  });

  it('the link sets a new password once: the old one fails, the new one works, every session ended, no reuse', async () => {
    const staff = await createStaff(t.app, program.id, { name: 'Кира Кассир', role: 'cashier', email: 'kira@example.com', password: OLD });
    const open = await signIn(t.app, 'kira@example.com', OLD);
    expect((await open.get('/app/cashier')).statusCode).toBe(200);

    const client = new CabinetClient(t.app, {}, '10.2.0.1');
    await requestReset(client, 'kira@example.com');
    await requestReset(client, 'kira@example.com'); // a second request: a second link
    const first = linkIn(await waitForMail('kira@example.com', 1));
    const second = linkIn(await waitForMail('kira@example.com', 2));
    expect(second.token).not.toBe(first.token);

    // Opening the link only shows the form (twice: a mail scanner's preview spends nothing).
    const browser = new CabinetClient(t.app, {}, '10.2.0.2');
    expect((await new CabinetClient(t.app).get(second.path)).statusCode).toBe(200);
    const form = await browser.get(second.path);
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('Новый пароль для kira@example.com');
    expect(form.body).toContain('autocomplete="new-password"');
    expect((await browser.post(second.path, { password: NEW, repeat: NEW })).statusCode).toBe(403); // no CSRF token
    const csrf = browser.csrf(form.body);
    const short = await browser.post(second.path, { _csrf: csrf, password: 'short', repeat: 'short' });
    expect(short.statusCode).toBe(422);
    expect(short.body).toContain('Пароль слишком короткий');
    const mismatch = await browser.post(second.path, { _csrf: csrf, password: NEW, repeat: `${NEW}!` });
    expect(mismatch.statusCode).toBe(422);
    expect(mismatch.body).toContain('Пароли не совпадают');
    expect((await browser.post(second.path, { _csrf: csrf, password: 'kira@example.com', repeat: 'kira@example.com' })).body).toContain('не должен совпадать с e-mail');

    const done = await browser.post(second.path, { _csrf: csrf, password: NEW, repeat: NEW });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe('/app/sign-in?reset=1');
    expect((await browser.get('/app/sign-in?reset=1')).body).toContain('Пароль изменён, все прежние сеансы завершены');

    const stored = await t.database.handle.db.selectFrom('staff_member').select('password_hash').where('id', '=', staff.id).executeTakeFirstOrThrow();
    expect(stored.password_hash).toMatch(/^\$argon2id\$/);
    // The session opened before the reset is gone.
    expect((await open.get('/app/cashier')).statusCode).toBe(303);
    // The old password fails, the new one signs in.
    const old = new CabinetClient(t.app, {}, '10.2.0.3');
    await old.get('/app/sign-in');
    expect((await old.post('/app/sign-in', { _csrf: old.csrf(), email: 'kira@example.com', password: OLD })).statusCode).toBe(401);
    expect((await signIn(t.app, 'kira@example.com', NEW)).cookies.has('wc_session')).toBe(true);

    // Used: neither this link nor the other one of the same member works any more.
    for (const link of [second, first]) {
      const again = new CabinetClient(t.app, {}, '10.2.0.4');
      const page = await again.get(link.path);
      expect(page.statusCode).toBe(410);
      expect(page.body).toContain('Ссылка недействительна');
      expect(page.body).toContain('href="/app/reset"');
      await again.get('/app/sign-in');
      expect((await again.post(link.path, { _csrf: again.csrf(), password: 'yet another pass phrase', repeat: 'yet another pass phrase' })).statusCode).toBe(410);
    }
    expect((await signIn(t.app, 'kira@example.com', NEW)).cookies.has('wc_session')).toBe(true);
  });

  it('refuses an expired link (test clock); the password stays as it was', async () => {
    await createStaff(t.app, program.id, { name: 'Марк Маркетолог', role: 'marketer', email: 'mark@example.com', password: OLD });
    const client = new CabinetClient(t.app, {}, '10.3.0.1');
    await requestReset(client, 'mark@example.com');
    const link = linkIn(await waitForMail('mark@example.com'));
    const page = await client.get(link.path);
    expect(page.statusCode).toBe(200);
    offsetMs += 31 * 60_000;
    try {
      expect((await client.post(link.path, { _csrf: client.csrf(page.body), password: NEW, repeat: NEW })).statusCode).toBe(410);
      const late = await client.get(link.path);
      expect(late.statusCode).toBe(410);
      expect(late.body).toContain('срок истёк');
    } finally {
      offsetMs -= 31 * 60_000;
    }
    expect((await signIn(t.app, 'mark@example.com', OLD)).cookies.has('wc_session')).toBe(true);
  });

  it('limits requests per email and per IP (429 with Retry-After), known email or not', async () => {
    // Per email: the fourth request for the same address within 15 minutes, from anywhere.
    for (let i = 0; i < 3; i++) {
      const res = await requestReset(new CabinetClient(t.app, {}, `10.4.0.${i + 1}`), 'ghost@example.com');
      expect(res.statusCode).toBe(303);
    }
    const limited = await requestReset(new CabinetClient(t.app, {}, '10.4.0.9'), 'ghost@example.com');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('900');
    expect(limited.body).toContain('Слишком много запросов на сброс пароля');

    // Per IP: many addresses from one IP.
    const spray = new CabinetClient(t.app, {}, '10.4.1.1');
    for (let i = 0; i < 4; i++) expect((await requestReset(spray, `spray${i}@example.com`)).statusCode).toBe(303);
    expect((await requestReset(spray, 'olga@example.com')).statusCode).toBe(429);
    // Reset requests never lock sign-in.
    const fromSprayIp = new CabinetClient(t.app, {}, '10.4.1.1');
    await fromSprayIp.get('/app/sign-in');
    expect((await fromSprayIp.post('/app/sign-in', { _csrf: fromSprayIp.csrf(), email: 'olga@example.com', password: OLD })).statusCode).toBe(303);

    // The window passes.
    offsetMs += 16 * 60_000;
    try {
      expect((await requestReset(new CabinetClient(t.app, {}, '10.4.0.9'), 'ghost@example.com')).statusCode).toBe(303);
    } finally {
      offsetMs -= 16 * 60_000;
    }
    // A malformed address is a form error, not a request.
    const bad = await requestReset(new CabinetClient(t.app, {}, '10.4.2.1'), 'not an email');
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('aria-invalid="true"');
  });

  it('writes the mail in the program language (English)', async () => {
    const en = await createProgramWithKeys(t.app, 'reset-en', { defaultLanguage: 'en' });
    await createStaff(t.app, en.program.id, { name: 'Emma Owner', role: 'owner', email: 'emma@example.com', password: OLD });
    await requestReset(new CabinetClient(t.app, {}, '10.5.0.1'), 'emma@example.com');
    const mail = await waitForMail('emma@example.com');
    expect(mail.subject).toBe('Password reset: Program reset-en cabinet');
    expect(mail.text).toContain('Hello Emma Owner,');
    expect(mail.text).toContain('It works once, for 30 minutes from the request:');
    const link = linkIn(mail);
    const form = await new CabinetClient(t.app, { 'accept-language': 'en' }).get(link.path);
    expect(form.body).toContain('A new password for emma@example.com');
  });
});
