import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signIn, signInLink } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

/**
 * Issue #11: five wrong passwords locked a real staff member out (from everywhere, 15 minutes), and
 * staff e-mail checks answered 409 for another program's owner e-mail (an oracle). Now sign-in
 * failures slow down the address + account they come from (and, for addresses the account never
 * used, the account as a whole); one-time links always work; an e-mail is unique per program.
 */
describe(`cabinet sign-in throttling and staff e-mails (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let offsetMs = 0;
  let programA: { id: string };
  let programB: { id: string };
  let adminA: Record<string, string>;
  let adminB: Record<string, string>;
  const PASSWORD = 'the real password 1';

  beforeAll(async () => {
    // Default settings (3 free failures per address, 5 per account, 5 s first backoff step).
    t = await startTestApp({ clock: () => new Date(Date.now() + offsetMs), cabinet: { postsPerMinute: 10_000 } });
    const a = await createProgramWithKeys(t.app, 'throttle-a');
    const b = await createProgramWithKeys(t.app, 'throttle-b');
    programA = a.program;
    programB = b.program;
    adminA = a.as('admin');
    adminB = b.as('admin');
  });
  afterAll(async () => {
    await t?.close();
  });

  // The sign-in form's token is bound to the browser's pre-session cookie: read it once per client.
  const formTokens = new WeakMap<CabinetClient, string>();
  const attempt = async (client: CabinetClient, email: string, password: string) => {
    if (!formTokens.has(client)) formTokens.set(client, client.csrf((await client.get('/app/sign-in')).body));
    return client.post('/app/sign-in', { _csrf: formTokens.get(client)!, email, password });
  };
  const advance = (ms: number) => {
    offsetMs += ms;
  };

  it('five wrong passwords do not lock a staff member out at their usual address, whatever an attacker elsewhere does', async () => {
    await createStaff(t.app, programA.id, { name: 'Olga', role: 'owner', email: 'olga@throttle.example', password: PASSWORD });
    // Olga signs in from her till's address once: it becomes hers.
    const till = new CabinetClient(t.app, {}, '10.20.0.1');
    expect((await attempt(till, 'olga@throttle.example', PASSWORD)).statusCode).toBe(303);

    // An attacker elsewhere tries 30 passwords, waiting out every backoff it meets.
    const attacker = new CabinetClient(t.app, {}, '203.0.113.66');
    const retryAfter: number[] = [];
    for (let i = 0; i < 30; i++) {
      let res = await attempt(attacker, 'olga@throttle.example', `guess-${i}-password`);
      if (res.statusCode === 429) {
        const wait = Number(res.headers['retry-after']);
        retryAfter.push(wait);
        advance(wait * 1000);
        res = await attempt(attacker, 'olga@throttle.example', `guess-${i}-password`);
      }
      expect(res.statusCode).toBe(401);
    }
    // The waits grow (doubling) up to the 15-minute window: ~30 guesses cost the attacker hours.
    expect(retryAfter.length).toBeGreaterThan(20);
    for (let i = 1; i < retryAfter.length; i++) expect(retryAfter[i]).toBeGreaterThanOrEqual(retryAfter[i - 1]);
    expect(retryAfter.slice(0, 4)).toEqual([5, 10, 20, 40]);
    expect(Math.max(...retryAfter)).toBe(900);
    const attackerNow = await attempt(attacker, 'olga@throttle.example', PASSWORD);
    expect(attackerNow.statusCode).toBe(429);

    // Olga at her till mistypes five times: only her own failures count there.
    for (let i = 0; i < 3; i++) expect((await attempt(till, 'olga@throttle.example', `typo-${i}-password`)).statusCode).toBe(401);
    const fourth = await attempt(till, 'olga@throttle.example', 'typo-3-password');
    expect(fourth.statusCode).toBe(401);
    const early = await attempt(till, 'olga@throttle.example', PASSWORD);
    expect(early.statusCode).toBe(429);
    advance(Number(early.headers['retry-after']) * 1000);
    expect((await attempt(till, 'olga@throttle.example', 'typo-4-password')).statusCode).toBe(401);
    // After the backoff (10 s after five failures) her right password works.
    const waiting = await attempt(till, 'olga@throttle.example', PASSWORD);
    expect(waiting.statusCode).toBe(429);
    expect(Number(waiting.headers['retry-after'])).toBeLessThanOrEqual(10);
    advance(Number(waiting.headers['retry-after']) * 1000);
    expect((await attempt(till, 'olga@throttle.example', PASSWORD)).statusCode).toBe(303);

    // From a new address (a phone on mobile data) the account-wide backoff applies while the
    // attack goes on, but a one-time link from the owner still signs her in.
    const phone = new CabinetClient(t.app, {}, '198.51.100.7');
    expect((await attempt(phone, 'olga@throttle.example', PASSWORD)).statusCode).toBe(429);
    const link = await signInLink(t.app, programA.id, (await staffByEmail(programA.id, 'olga@throttle.example')).id);
    const path = new URL(link.url).pathname;
    await phone.get(path);
    const used = await phone.post(path, { _csrf: phone.csrf() });
    expect(used.statusCode).toBe(303);
    expect((await phone.get('/app')).statusCode).toBe(200);
  });

  it("setting a staff e-mail tells nothing about other programs: no 409 for another program's owner", async () => {
    await createStaff(t.app, programA.id, { name: 'Owner A', role: 'owner', email: 'boss@shared.example', password: 'password of A 123' });
    const b = await createStaff(t.app, programB.id, { name: 'Staff B', role: 'marketer' });
    // Through the API…
    const api = await t.app.inject({
      method: 'POST',
      url: `/api/v1/programs/${programB.id}/staff/${b.id}/password`,
      headers: adminB,
      payload: { password: 'password of B 456', email: 'BOSS@shared.example' },
    });
    expect(api.statusCode).toBe(204);
    // …the same e-mail twice within one program is still refused.
    const twin = await createStaff(t.app, programA.id, { name: 'Twin', role: 'cashier' });
    const dup = await t.app.inject({
      method: 'POST',
      url: `/api/v1/programs/${programA.id}/staff/${twin.id}/password`,
      headers: adminA,
      payload: { password: 'password of twin 1', email: 'boss@shared.example' },
    });
    expect(dup.statusCode).toBe(409);
    // …and through the cabinet's staff screen of program B: saved, no "already used".
    const ownerB = await createStaff(t.app, programB.id, { name: 'Owner B', role: 'owner', email: 'owner-b@throttle.example', password: PASSWORD });
    const cabinetB = await signIn(t.app, 'owner-b@throttle.example', PASSWORD);
    const csrf = cabinetB.csrf((await cabinetB.get('/app/staff')).body);
    const created = await cabinetB.post('/app/staff', { _csrf: csrf, name: 'Cashier B', role: 'cashier', email: 'owner-b-twin@throttle.example', password: 'cashier password 1' });
    expect(created.statusCode).toBe(303);
    const sameAsA = await cabinetB.post('/app/staff', { _csrf: csrf, name: 'Copy of A', role: 'cashier', email: 'olga@throttle.example', password: 'cashier password 2' });
    expect(sameAsA.statusCode).toBe(303);
    expect(ownerB.id).toBeTruthy();

    // Sign-in by e-mail alone: the password says which account.
    const asA = new CabinetClient(t.app, {}, '10.30.0.1');
    expect((await attempt(asA, 'boss@shared.example', 'password of A 123')).statusCode).toBe(303);
    expect((await asA.get('/app')).body).toContain('Program throttle-a');
    const asB = new CabinetClient(t.app, {}, '10.30.0.2');
    expect((await attempt(asB, 'boss@shared.example', 'password of B 456')).statusCode).toBe(303);
    expect((await asB.get('/app')).body).toContain('Program throttle-b');
    expect((await attempt(new CabinetClient(t.app, {}, '10.30.0.3'), 'boss@shared.example', 'neither password')).statusCode).toBe(401);
  });

  async function staffByEmail(programId: string, email: string) {
    return t.database.handle.db.selectFrom('staff_member').select('id').where('program_id', '=', programId).where('email', '=', email).executeTakeFirstOrThrow();
  }
});
