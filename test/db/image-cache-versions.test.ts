import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { normalizePng } from '../../src/programs/images.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import type { Notifications } from '../../src/db/notifications.js';
import { createPassPackager, DEFAULT_PASS_IMAGES_DIR, loadDefaultImages } from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import { adminHeaders, createProgramWithKeys, startTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app.js';
import { requirePostgres } from '../support/database.js';
import { unpackPkpass } from '../support/pkpass.js';

// The program-image cache is keyed by program.image_version, so an instance that never hears of an
// image change (its notifications are switched off here) still signs the next pass with the new
// image. test/cluster/cluster.test.ts shows the same across processes with notifications on.
const postgres = requirePostgres();

/** Another valid logo: the default one with its colours inverted; and the bytes the service will store for it. */
function invertedLogo(): { upload: Buffer; stored: Buffer } {
  const png = PNG.sync.read(readFileSync('passes/default/logo.png'));
  for (let i = 0; i < png.data.length; i += 4) for (let c = 0; c < 3; c++) png.data[i + c] = 255 - png.data[i + c]!;
  const upload = PNG.sync.write(png);
  return { upload, stored: normalizePng('logo', upload) };
}

const deaf: Notifications = {
  subscribe: () => () => undefined,
  onReset: () => () => undefined,
  ready: async () => undefined,
  close: async () => undefined,
};

describe.skipIf(postgres.skip)(`program images cached per version (postgres) ${postgres.reason}`, () => {
  let a: TestApp;
  let bDatabase: DatabaseHandle;
  let b: App;
  beforeAll(async () => {
    a = await startTestApp({ runWorkers: false });
    bDatabase = openDatabase({ databaseUrl: a.database.url!, poolSize: 4 });
    b = await buildApp({
      config: a.app.ctx.config,
      database: bDatabase,
      adminKey: TEST_ADMIN_KEY,
      apple: { material: a.material, packager: createPassPackager({ signer: new PassSigner(a.material), defaultImages: loadDefaultImages(DEFAULT_PASS_IMAGES_DIR) }), apns: a.apns },
      runWorkers: false,
      notifications: deaf,
    });
    await b.ready();
  });
  afterAll(async () => {
    await b?.close();
    await bDatabase?.close();
    await a?.close();
  });

  it('a logo saved through instance A is in the next pass instance B signs, without any notification', async () => {
    const { program, as } = await createProgramWithKeys(a.app, 'image-versions');
    const issued = await a.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'I', phone: '+79160000077' } } });
    const passPath = new URL(issued.json().applePassUrl).pathname;
    const logoFromB = async () => unpackPkpass((await b.inject({ method: 'GET', url: passPath })).rawPayload)['logo.png'];
    expect(await logoFromB()).toEqual(readFileSync('passes/default/logo.png'));
    const logo = invertedLogo();
    expect(logo.stored).not.toEqual(readFileSync('passes/default/logo.png'));
    const put = await a.app.inject({ method: 'PUT', url: `/api/v1/programs/${program.id}/images/logo`, headers: { ...adminHeaders, 'content-type': 'image/png' }, payload: logo.upload });
    expect(put.statusCode, put.body).toBeLessThan(300);
    expect(await logoFromB()).toEqual(logo.stored);
  });
});
