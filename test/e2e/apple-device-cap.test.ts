import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DEVICES_PER_PASS } from '../../src/wallets/apple/webservice.js';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { adjustOk, issueCard, pushesTo, pushToken, registrations, registrationUrl, waitForCardJobsIdle, type RoleHeaders } from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

/**
 * At most 50 devices per pass (issue #11: 10,000 registrations on one pass turned one balance change
 * into 10,002 pushes). The 51st device is refused with a 409 problem; the devices already registered
 * are kept and may still refresh their push tokens; concurrent registrations cannot overshoot.
 */
describe(`Apple: at most ${MAX_DEVICES_PER_PASS} devices per pass (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let as: RoleHeaders;

  beforeAll(async () => {
    t = await startTestApp();
    ({ as } = await createProgramWithKeys(t.app, 'device-cap'));
  });
  afterAll(async () => {
    await t?.close();
  });

  const registerRaw = (card: Awaited<ReturnType<typeof issueCard>>, device: string, token: string) =>
    t.app.inject({ method: 'POST', url: registrationUrl(device, t.material.passTypeIdentifier, card.serial), headers: card.auth, payload: { pushToken: token } });

  it('refuses the 51st device, keeps the first 50, and one change pushes each of them once', async () => {
    expect(MAX_DEVICES_PER_PASS).toBe(50);
    const card = await issueCard(t, as);
    for (let i = 0; i < 50; i++) expect((await registerRaw(card, `cap-device-${i}`, pushToken(1000 + i))).statusCode).toBe(201);
    const refused = await registerRaw(card, 'cap-device-50', pushToken(1050));
    expect(refused.statusCode).toBe(409);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.json()).toMatchObject({ status: 409, code: 'device_limit_reached' });
    const rows = await registrations(t, { serial: card.serial });
    expect(rows).toHaveLength(50);
    expect(rows.map((r) => r.device_library_identifier)).not.toContain('cap-device-50');

    // A registered device still refreshes its push token (200).
    expect((await registerRaw(card, 'cap-device-7', pushToken(2007))).statusCode).toBe(200);
    expect((await registrations(t, { device: 'cap-device-7' }))[0].push_token).toBe(pushToken(2007));

    // One balance change: one push per registered device, none to the refused one.
    await waitForCardJobsIdle(t);
    const before = t.apnsStandIn.received.length;
    await adjustOk(t, as, card.id, 10);
    await waitForCardJobsIdle(t);
    const pushes = t.apnsStandIn.received.slice(before);
    expect(pushes).toHaveLength(50);
    expect(new Set(pushes.map((p) => p.token)).size).toBe(50);
    expect(pushesTo(t, pushToken(1050))).toHaveLength(0);

    // A device that leaves makes room for a new one.
    const removed = await t.app.inject({ method: 'DELETE', url: registrationUrl('cap-device-3', t.material.passTypeIdentifier, card.serial), headers: card.auth });
    expect(removed.statusCode).toBe(200);
    expect((await registerRaw(card, 'cap-device-50', pushToken(1050))).statusCode).toBe(201);
    expect((await registerRaw(card, 'cap-device-51', pushToken(1051))).statusCode).toBe(409);
    // Another pass on the same devices is counted on its own.
    const other = await issueCard(t, as);
    expect((await registerRaw(other, 'cap-device-51', pushToken(1051))).statusCode).toBe(201);
  });

  it('never overshoots under concurrent registrations', async () => {
    const card = await issueCard(t, as);
    for (let i = 0; i < 45; i++) expect((await registerRaw(card, `race-device-${i}`, pushToken(3000 + i))).statusCode).toBe(201);
    const results = await Promise.all(Array.from({ length: 12 }, (_v, i) => registerRaw(card, `race-new-${i}`, pushToken(4000 + i))));
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.filter((s) => s === 409)).toHaveLength(7);
    expect(await registrations(t, { serial: card.serial })).toHaveLength(50);
  });
});
