import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf } from '../support/pkpass.js';

// Issue #12, item 2: "the wallet pass can show the familiar plastic number (program setting)". With
// design.showPlasticNumber, an imported card's Apple pass and Google object show and encode its
// plastic number; the till finds the card by it; cards without one keep the wallet number.
describe(`the plastic number on the wallet cards (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ google: true, runWorkers: false });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('shows and encodes the plastic number when the program says so, on both wallets', async () => {
    const design = { backgroundColor: '#224488', foregroundColor: '#ffffff', labelColor: '#ddeeff' };
    const { program, as } = await createProgramWithKeys(t.app, 'plastic-shown', { design });
    const imported = await t.app.inject({
      method: 'POST',
      url: '/api/v1/imports',
      headers: { ...as('admin'), 'content-type': 'text/csv' },
      payload: 'Номер карты;Телефон;ФИО;Бонусы\n77001234;+79161230001;Пластик Первый;150\n',
    });
    expect(imported.statusCode, imported.body).toBe(202);
    await t.app.imports.runToEnd(imported.json().id);
    const byPlastic = await t.app.inject({ method: 'GET', url: '/api/v1/cards/by-barcode/77001234', headers: as('pos') });
    expect(byPlastic.statusCode).toBe(200);
    const plasticCard = (await t.app.inject({ method: 'GET', url: `/api/v1/cards/${byPlastic.json().id}`, headers: as('pos') })).json();
    const walletOnly = (
      await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Без Пластика', phone: '+79161230002' } } })
    ).json();

    const barcodeOf = async (card: { applePassUrl: string }) => {
      const pass = passJsonOf((await t.app.inject({ method: 'GET', url: new URL(card.applePassUrl).pathname })).rawPayload);
      const numberField = [...pass.storeCard.headerFields, ...pass.storeCard.secondaryFields, ...pass.storeCard.auxiliaryFields].find(
        (f: { key: string }) => f.key === 'cardNumber',
      );
      return { barcodes: pass.barcodes as Array<{ message: string; altText: string }>, numberField: numberField?.value };
    };
    const googleObject = async (card: { googleSaveUrl: string }) => {
      const link = await t.app.inject({ method: 'GET', url: new URL(card.googleSaveUrl).pathname });
      const token = String(link.headers.location).split('/').pop()!;
      const claims = jwt.decode(token) as { payload: { loyaltyObjects: Array<{ id: string }> } };
      return t.google!.fake.objects.get(claims.payload.loyaltyObjects[0]!.id)!;
    };

    // Off (the default): the wallet number everywhere.
    let apple = await barcodeOf(plasticCard);
    expect(apple.barcodes[0]).toMatchObject({ message: plasticCard.number, altText: plasticCard.number });

    const patched = await t.app.inject({ method: 'PATCH', url: `/api/v1/programs/${program.id}`, headers: as('admin'), payload: { design: { ...design, showPlasticNumber: true } } });
    expect(patched.statusCode, patched.body).toBe(200);
    apple = await barcodeOf(plasticCard);
    expect(apple.barcodes.every((b) => b.message === '77001234' && b.altText === '77001234')).toBe(true);
    if (apple.numberField !== undefined) expect(apple.numberField).toBe('77001234');
    const google = await googleObject(plasticCard);
    expect(google).toMatchObject({ accountId: '77001234', barcode: { value: '77001234', alternateText: '77001234' } });
    // What the pass encodes finds the card at the till.
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/cards/by-barcode/${apple.barcodes[0]!.message}`, headers: as('pos') })).json().id).toBe(plasticCard.id);

    // A card without a plastic number keeps its wallet number.
    const plain = await barcodeOf(walletOnly);
    expect(plain.barcodes[0]).toMatchObject({ message: walletOnly.number, altText: walletOnly.number });
    expect(await googleObject(walletOnly)).toMatchObject({ accountId: walletOnly.number });
  });
});
