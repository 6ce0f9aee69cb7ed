import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, createProgramWithKeys, type TestApp } from '../support/app.js';
import { waitForCardJobsIdle } from '../support/apple-device.js';
import { passJsonOf, unpackPkpass, verifyPkpassWithOpenssl } from '../support/pkpass.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Issue #3's end-to-end test: enroll with a referral code → both bonuses → purchase with
// redemption → the device registered for the card gets exactly one push and fetches a pass with
// the new balance and tier, with their lock-screen change messages in both languages.
describe(`loyalty to wallet (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('referral bonuses, a purchase with redemption and a tier upgrade reach the registered device once', async () => {
    const { app, apnsStandIn } = t;
    const { as } = await createProgramWithKeys(app, 'bakery');
    const ptid = t.material.passTypeIdentifier;

    const inviter = (
      await app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Олег', phone: '+79161110000' } } })
    ).json();
    const inviteeRes = await app.inject({
      method: 'POST',
      url: '/api/v1/cards',
      headers: as('pos'),
      payload: { holder: { name: 'Ирина', phone: '+79162220000' }, referralCode: inviter.referralCode },
    });
    expect(inviteeRes.statusCode).toBe(201);
    const invitee = inviteeRes.json();
    expect(invitee.balance).toBe(1000 + 3000);
    expect(invitee.referredBy).toBe(inviter.id);
    const inviterAfter = (await app.inject({ method: 'GET', url: `/api/v1/cards/${inviter.id}`, headers: as('pos') })).json();
    expect(inviterAfter.balance).toBe(1000 + 3000);

    // The invitee installs the pass on one device.
    const pass = passJsonOf((await app.inject({ method: 'GET', url: new URL(invitee.applePassUrl).pathname })).rawPayload);
    const auth = { authorization: `ApplePass ${pass.authenticationToken}` };
    const token = 'b'.repeat(64);
    const reg = await app.inject({ method: 'POST', url: `/apple/v1/devices/iphone-1/registrations/${ptid}/${pass.serialNumber}`, headers: auth, payload: { pushToken: token } });
    expect(reg.statusCode).toBe(201);
    await waitForCardJobsIdle(t);
    const pushesBefore = apnsStandIn.received.length;

    // A 60,000.00 RUB purchase paying 3,000 points: crosses the General threshold (50,000 RUB).
    const purchase = await app.inject({
      method: 'POST',
      url: `/api/v1/cards/${invitee.id}/purchases`,
      headers: { ...as('pos'), 'idempotency-key': 'check-1' },
      payload: { amount: 6_000_000, redeemPoints: 3000, receiptId: 'R-1' },
    });
    expect(purchase.statusCode).toBe(201);
    const result = purchase.json();
    expect(result).toMatchObject({ redeemed: 3000, payable: 5_700_000, accrued: 2850, balance: 4000 - 3000 + 2850, tier: 'general', tierChanged: true });

    await waitForCardJobsIdle(t);
    expect(apnsStandIn.received.slice(pushesBefore).map((p) => p.token)).toEqual([token]);

    const fetched = await app.inject({ method: 'GET', url: `/apple/v1/passes/${ptid}/${pass.serialNumber}`, headers: auth });
    expect(fetched.statusCode).toBe(200);
    expect(verifyPkpassWithOpenssl(fetched.rawPayload, path.join(t.certDir, 'root.pem'))).toEqual({ ok: true });
    const files = unpackPkpass(fetched.rawPayload);
    const updated = JSON.parse(files['pass.json'].toString('utf8'));
    const fields = [...updated.storeCard.headerFields, ...updated.storeCard.primaryFields, ...updated.storeCard.secondaryFields, ...updated.storeCard.auxiliaryFields];
    const balanceField = fields.find((f: any) => f.key === 'balance');
    const tierField = fields.find((f: any) => f.key === 'tier');
    expect(balanceField.value).toBe(3850);
    expect(balanceField.changeMessage).toContain('%@');
    expect(tierField.changeMessage).toContain('%@');
    // Both languages carry the change messages.
    const stringsText = (name: string) => {
      const bytes = files[name];
      return bytes[0] === 0xff && bytes[1] === 0xfe ? bytes.subarray(2).toString('utf16le') : bytes.toString('utf8');
    };
    const ru = stringsText('ru.lproj/pass.strings');
    const en = stringsText('en.lproj/pass.strings');
    expect(ru).toContain('Генеральная');
    expect(en).toContain('General');
    expect(ru).toContain('%@');
    expect(en).toContain('%@');
  });
});
