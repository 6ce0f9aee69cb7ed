import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// The Pass Type ID certificate nearing expiry, as the running service shows it: /readyz (still
// ready), /metrics, and a warning on the owner's cabinet overview (not the marketer's).
describe(`certificate expiry in the running service (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let now = new Date();
  const DAY = 86_400_000;

  beforeAll(async () => {
    t = await startTestApp({ clock: () => now, runWorkers: false });
    now = new Date(t.material.signerNotAfter.getTime() - 5 * DAY - 3_600_000);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('reports the certificate in /readyz and /metrics; the instance stays ready', async () => {
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ok', certificate: { state: 'expiring', daysLeft: 5, expiresAt: t.material.signerNotAfter.toISOString() } });
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/apple_certificate_expiry_days\{certificate="pass_type_id"\} 5\.04/);
  });

  it("warns the owner on the cabinet overview, in the owner's language; the marketer does not see it", async () => {
    const { program } = await createProgramWithKeys(t.app, 'cert-expiry');
    await createStaff(t.app, program.id, { name: 'Owner', role: 'owner', email: 'owner-cert@example.com', password: 'correct horse battery' });
    await createStaff(t.app, program.id, { name: 'Marketer', role: 'marketer', email: 'marketer-cert@example.com', password: 'correct horse battery' });
    const owner = await signIn(t.app, 'owner-cert@example.com', 'correct horse battery');
    const overview = await owner.get('/app');
    expect(overview.statusCode).toBe(200);
    expect(overview.body).toMatch(/<div class="notice warn" role="alert" data-certificate-expiry>Сертификат Apple Wallet \(Pass Type ID\) истекает .* — через 5 дней\./);
    const marketer = await signIn(t.app, 'marketer-cert@example.com', 'correct horse battery');
    expect((await marketer.get('/app')).body).not.toContain('data-certificate-expiry');
    // Far from expiry: no warning.
    now = new Date(t.material.signerNotAfter.getTime() - 31 * DAY);
    await createStaff(t.app, program.id, { name: 'Owner 2', role: 'owner', email: 'owner2-cert@example.com', password: 'correct horse battery' });
    const calm = await (await signIn(t.app, 'owner2-cert@example.com', 'correct horse battery')).get('/app');
    expect(calm.statusCode).toBe(200);
    expect(calm.body).toContain('<h1>Обзор</h1>');
    expect(calm.body).not.toContain('data-certificate-expiry');
  });
});
