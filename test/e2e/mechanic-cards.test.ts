import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { pushToken, waitForCardJobsIdle } from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf, unpackPkpass, verifyPkpassWithOpenssl } from '../support/pkpass.js';
import { parsePassStrings } from '../support/pkpass-testing.js';
import { filledStamps, pngSize } from '../support/stamps.js';
import { formatMoney } from '../../src/i18n/format.js';
import { stampStripVersion } from '../../src/wallets/stamp-strip.js';

// Issue #17 item 5 end to end: a discount card and a stamp card on Apple Wallet (signed pass,
// fields, strip images) and Google Wallet (the object in the fake), and a change of stamps or
// discount reaching both like a balance change (APNs stand-in push, Google PATCH that notifies).

const RUB = 100;
const name = (ru: string, en: string) => ({ ru, en });
const DESIGN = { backgroundColor: '#3b2314', foregroundColor: '#ffd27f', labelColor: '#e8d5c0' };
const STYLE = { perReward: 6, background: DESIGN.backgroundColor, filled: DESIGN.foregroundColor, empty: DESIGN.labelColor };
const COFFEE_RULES = {
  mechanic: 'stamps',
  welcomeBonus: 0,
  stamps: { perReward: 6, reward: { name: name('Кофе в подарок', 'A free coffee') } },
};
const CLOTHING_RULES = {
  mechanic: 'discount',
  welcomeBonus: 0,
  tiers: [
    { code: 'base', name: name('Базовая', 'Base'), accrualPercent: 0, threshold: 0, discountPercent: 5 },
    { code: 'gold', name: name('Золотая', 'Gold'), accrualPercent: 0, threshold: 50_000 * RUB, discountPercent: 10 },
  ],
};

type Field = { key: string; value: string | number; label?: string; changeMessage?: string };
const fieldsOf = (pass: Record<string, any>): Field[] =>
  ['headerFields', 'primaryFields', 'secondaryFields', 'auxiliaryFields', 'backFields'].flatMap((k) => pass.storeCard[k] as Field[]);

describe(`cards show the mechanic (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let phone = 7_770_000;
  beforeAll(async () => {
    t = await startTestApp({ google: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function issue(headers: Record<string, string>) {
    phone += 1;
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers, payload: { holder: { name: 'Анна', phone: `+7916${phone}` } } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }
  async function buy(headers: Record<string, string>, cardId: string, amount: number, key: string) {
    const res = await t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: { ...headers, 'idempotency-key': key }, payload: { amount } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }
  async function download(card: { applePassUrl: string }) {
    const res = await t.app.inject({ method: 'GET', url: new URL(card.applePassUrl).pathname });
    expect(res.statusCode).toBe(200);
    expect(verifyPkpassWithOpenssl(res.rawPayload, path.join(t.certDir, 'root.pem'))).toEqual({ ok: true });
    const files = unpackPkpass(res.rawPayload);
    return { pass: passJsonOf(res.rawPayload), files, strings: { ru: parsePassStrings(files['ru.lproj/pass.strings']), en: parsePassStrings(files['en.lproj/pass.strings']) } };
  }
  /** Registers a device for the card's pass (the APNs stand-in then receives its pushes). */
  async function register(pass: Record<string, any>, n: number) {
    const token = pushToken(n);
    const res = await t.app.inject({
      method: 'POST',
      url: `/apple/v1/devices/device-${n}/registrations/${pass.passTypeIdentifier}/${pass.serialNumber}`,
      headers: { authorization: `ApplePass ${pass.authenticationToken}` },
      payload: { pushToken: token },
    });
    expect(res.statusCode).toBe(201);
    return token;
  }
  async function saveToGoogle(card: { googleSaveUrl: string }) {
    const link = await t.app.inject({ method: 'GET', url: new URL(card.googleSaveUrl).pathname });
    expect(link.statusCode).toBe(302);
    const objectId = [...t.google!.fake.objects.keys()].find((id) => t.google!.fake.objects.get(id)!.accountId === (card as any).number)!;
    expect(objectId).toBeDefined();
    return objectId;
  }

  it('shows a stamp card: "n / 6" over a strip of n filled stamps at every Apple size, the reward on the back, and the same picture as a Google image module', async () => {
    const { as } = await createProgramWithKeys(t.app, 'coffee-stamps', { rules: COFFEE_RULES, design: DESIGN });
    const card = await issue(as('pos'));
    await buy(as('pos'), card.id, 300 * RUB, 's-1');
    await buy(as('pos'), card.id, 300 * RUB, 's-2');

    const { pass, files, strings } = await download(card);
    expect(pass.storeCard.primaryFields).toEqual([expect.objectContaining({ key: 'stamps', value: '2 / 6' })]);
    // No points balance on a stamp card.
    expect(fieldsOf(pass).some((f) => f.key === 'balance')).toBe(false);
    const stampsField = pass.storeCard.primaryFields[0];
    expect(strings.ru[stampsField.label]).toBe('Штампы');
    expect(strings.en[stampsField.label]).toBe('Stamps');
    expect(strings.en[stampsField.changeMessage]).toBe('Stamps: %@');
    const reward = fieldsOf(pass).find((f) => f.key === 'backReward')!;
    expect(strings.ru[reward.value as string]).toBe('Кофе в подарок — когда на карте 6 штампов');
    expect(strings.en[reward.value as string]).toBe('A free coffee when the card has 6 stamps');
    for (const [file, scale] of [['strip.png', 1], ['strip@2x.png', 2], ['strip@3x.png', 3]] as const) {
      expect(files[file], file).toBeDefined();
      expect(pngSize(files[file])).toEqual([375 * scale, 123 * scale]);
      expect(filledStamps(files[file], STYLE, scale)).toEqual({ filled: 2, hollow: 4 });
    }
    // The strips are listed in the signed manifest (the openssl check above covers its signature).
    expect(Object.keys(JSON.parse(files['manifest.json'].toString()))).toEqual(expect.arrayContaining(['strip.png', 'strip@2x.png', 'strip@3x.png']));

    // Google: the points slot shows the stamps, the image module points at the public picture.
    const { fake } = t.google!;
    const objectId = await saveToGoogle(card);
    const object = fake.objects.get(objectId)!;
    expect(object.loyaltyPoints).toMatchObject({ label: 'Штампы', balance: { string: '2 / 6' } });
    const version = stampStripVersion(STYLE);
    const uri = object.imageModulesData![0].mainImage!.sourceUri!.uri!;
    expect(uri).toBe(`https://wallet.test/programs/coffee-stamps/stamps/${version}/2.png`);
    expect(object.imageModulesData![0].mainImage!.contentDescription!.defaultValue!.value).toBe('Собрано: 2 из 6');
    expect(object.textModulesData!.find((m) => m.id === 'reward')!.body).toBe('Кофе в подарок — когда на карте 6 штампов');
    const picture = await t.app.inject({ method: 'GET', url: new URL(uri).pathname });
    expect(picture.statusCode).toBe(200);
    expect(picture.headers['content-type']).toBe('image/png');
    expect(picture.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(pngSize(picture.rawPayload)).toEqual([1125, 369]);
    expect(filledStamps(picture.rawPayload, STYLE, 3)).toEqual({ filled: 2, hollow: 4 });
    // An outdated version still answers the count, briefly cached; a count over perReward, an unknown program or a points program are 404.
    const stale = await t.app.inject({ method: 'GET', url: `/programs/coffee-stamps/stamps/000000000000/5.png?scale=1` });
    expect(stale.statusCode).toBe(200);
    expect(stale.headers['cache-control']).toBe('public, max-age=300');
    expect(filledStamps(stale.rawPayload, STYLE, 1)).toEqual({ filled: 5, hollow: 1 });
    expect((await t.app.inject({ method: 'GET', url: `/programs/coffee-stamps/stamps/${version}/7.png` })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/programs/no-such-program/stamps/${version}/1.png` })).statusCode).toBe(404);
    await createProgramWithKeys(t.app, 'plain-points');
    expect((await t.app.inject({ method: 'GET', url: `/programs/plain-points/stamps/${version}/1.png` })).statusCode).toBe(404);
  });

  it('pushes a new stamp like a balance change: one APNs push, a new pass with one more stamp, a notifying Google PATCH with the new picture', async () => {
    const { as } = await createProgramWithKeys(t.app, 'coffee-push', { rules: COFFEE_RULES, design: DESIGN });
    const card = await issue(as('pos'));
    await buy(as('pos'), card.id, 300 * RUB, 'p-1');
    const { pass } = await download(card);
    const objectId = await saveToGoogle(card);
    await waitForCardJobsIdle(t);
    const token = await register(pass, 17_001);
    const { fake } = t.google!;
    const patches = () => fake.callsTo('patchObject').filter((c) => c.status === 200 && c.path.includes(objectId));
    expect(patches()).toHaveLength(0);

    await buy(as('pos'), card.id, 300 * RUB, 'p-2');
    await waitForCardJobsIdle(t);
    await waitFor(() => (fake.objects.get(objectId)!.loyaltyPoints as any).balance.string === '2 / 6', { what: 'the stamps at Google' });
    expect(t.apnsStandIn.received.filter((p) => p.token === token)).toHaveLength(1);
    const after = await download(card);
    expect(after.pass.storeCard.primaryFields[0].value).toBe('2 / 6');
    expect(filledStamps(after.files['strip@2x.png'], STYLE, 2)).toEqual({ filled: 2, hollow: 4 });
    expect(patches()).toHaveLength(1);
    expect((patches()[0].body as any).notifyPreference).toBe('NOTIFY_ON_UPDATE');
    expect((patches()[0].body as any).imageModulesData[0].mainImage.sourceUri.uri).toMatch(/\/2\.png$/);

    // The sixth stamp completes the card: the reward takes them, the card shows 0 / 6 again.
    for (let i = 3; i <= 6; i++) await buy(as('pos'), card.id, 300 * RUB, `p-${i}`);
    await waitForCardJobsIdle(t);
    await waitFor(() => (fake.objects.get(objectId)!.loyaltyPoints as any).balance.string === '0 / 6', { what: 'the reset stamps at Google' });
    const reset = await download(card);
    expect(reset.pass.storeCard.primaryFields[0].value).toBe('0 / 6');
    expect(filledStamps(reset.files['strip.png'], STYLE, 1)).toEqual({ filled: 0, hollow: 6 });
  });

  it('shows a discount card: the percent instead of points, the spend to the next level, and pushes the new percent when the tier grows', async () => {
    const { as } = await createProgramWithKeys(t.app, 'clothing', { rules: CLOTHING_RULES });
    const card = await issue(as('pos'));
    await buy(as('pos'), card.id, 10_000 * RUB, 'd-1');
    const { pass, strings, files } = await download(card);
    const primary = pass.storeCard.primaryFields;
    expect(primary).toHaveLength(1);
    expect(primary[0].key).toBe('discount');
    expect(strings.ru[primary[0].value]).toBe('5\u00a0%');
    expect(strings.en[primary[0].value]).toBe('5%');
    expect(strings.en[primary[0].changeMessage]).toBe('Your discount: %@');
    expect(fieldsOf(pass).some((f) => f.key === 'balance')).toBe(false);
    // 10,000 RUB spent before the discount: 9,500 paid, so 40,500 to go (lifetime spend is what was paid).
    const next = fieldsOf(pass).find((f) => f.key === 'nextDiscount')!;
    expect(pass.storeCard.auxiliaryFields.map((f: Field) => f.key)).toContain('nextDiscount');
    const cardNow = (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${card.id}`, headers: as('pos') })).json();
    expect(cardNow.nextDiscount).toEqual({ percent: 10, spendToGo: 50_000 * RUB - cardNow.lifetimeSpend });
    expect(strings.en[next.value as string]).toBe(`10% discount after ${formatMoney('en', 'RUB', 50_000 * RUB - cardNow.lifetimeSpend)} more in purchases`);
    expect(strings.ru[next.value as string]).toMatch(/^Скидка 10\u00a0% — осталось купить на [\d\s\u00a0]+,00\u00a0₽$/);
    // The program has no uploaded strip: the default strip stays (only stamp cards draw their own).
    expect(files['strip.png']).toBeDefined();

    const { fake } = t.google!;
    const objectId = await saveToGoogle(card);
    expect(fake.objects.get(objectId)!.loyaltyPoints).toMatchObject({ label: 'Скидка', balance: { string: '5\u00a0%' } });
    expect(fake.objects.get(objectId)!.imageModulesData).toBeUndefined();
    expect(fake.objects.get(objectId)!.textModulesData!.find((m) => m.id === 'next-discount')!.header).toBe('Следующий уровень');
    await waitForCardJobsIdle(t);
    const token = await register(pass, 17_002);

    // Crossing 50,000 RUB: the tier grows, the card shows 10 % and the top-level text.
    const big = await buy(as('pos'), card.id, 45_000 * RUB, 'd-2');
    expect(big.tierChanged).toBe(true);
    await waitForCardJobsIdle(t);
    expect(t.apnsStandIn.received.filter((p) => p.token === token)).toHaveLength(1);
    const after = await download(card);
    expect(after.strings.ru[after.pass.storeCard.primaryFields[0].value]).toBe('10\u00a0%');
    const top = fieldsOf(after.pass).find((f) => f.key === 'nextDiscount')!;
    expect(after.strings.en[top.value as string]).toBe('You have the top discount');
    await waitFor(() => (fake.objects.get(objectId)!.loyaltyPoints as any).balance.string === '10\u00a0%', { what: 'the new percent at Google' });
    const patch = fake.callsTo('patchObject').filter((c) => c.status === 200 && c.path.includes(objectId)).at(-1)!;
    expect((patch.body as any).notifyPreference).toBe('NOTIFY_ON_UPDATE');
  });
});
