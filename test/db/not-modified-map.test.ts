import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { createNotifications, NOTIFICATIONS_APPLICATION_NAME, type Notifications } from '../../src/db/notifications.js';
import { createPassPackager, DEFAULT_PASS_IMAGES_DIR, loadDefaultImages } from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import { APPLE_PASS_CHANGED_CHANNEL, notifyApplePassesChanged } from '../../src/wallets/apple/not-modified-map.js';
import { createCardChangeRecorder } from '../../src/updates/card-changes.js';
import { createProgramWithKeys, startTestApp, TEST_ADMIN_KEY, waitFor, type TestApp } from '../support/app.js';
import {
  adjustOk,
  issueCard,
  passUrl,
  pushesTo,
  pushToken,
  register,
  waitForCardJobsIdle,
  type IssuedCard,
  type RoleHeaders,
} from '../support/apple-device.js';
import { requirePostgres, TEST_DATABASE_KIND } from '../support/database.js';

// Issue #14: the PassKit web service answers "not modified" from a per-process map of serial →
// Last-Modified and token digest. No trigger tells it of card writes (that serialised every
// card-writing commit): the Apple wallet-update job notifies `apple_pass_changed` before its pushes.
// Its answers must be the database's answers once that job ran, and always for a pushed device.
// Changes here are made with plain SQL, as another instance would, followed by what its job sends.

type Db = TestApp['database']['handle']['db'];
const lastModifiedOf = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000).toUTCString();

/** What the web service answers without any map: the database's state, by the rules of webservice.ts. */
async function databaseAnswer(db: Db, serial: string, token: string, ifModifiedSince: string): Promise<number> {
  const card = await db.selectFrom('card').select(['apple_auth_token', 'updated_at']).where('apple_serial', '=', serial).executeTakeFirst();
  if (!card) {
    const retired = await db.selectFrom('retired_apple_pass').select(['auth_token', 'retired_at']).where('serial_number', '=', serial).executeTakeFirst();
    if (!retired || retired.auth_token !== token) return 401;
    return Date.parse(lastModifiedOf(retired.retired_at)) <= Date.parse(ifModifiedSince) ? 304 : 200;
  }
  if (card.apple_auth_token !== token) return 401;
  return Date.parse(lastModifiedOf(card.updated_at)) <= Date.parse(ifModifiedSince) ? 304 : 200;
}

const askNotModified = async (app: App, ptid: string, serial: string, token: string, ifModifiedSince: string) =>
  (await app.inject({ method: 'GET', url: passUrl(ptid, serial), headers: { authorization: `ApplePass ${token}`, 'if-modified-since': ifModifiedSince } })).statusCode;

/**
 * Resolves once `notifications` has delivered everything committed before this call: notifications
 * reach a listener in commit order, so a marker sent now arrives after them.
 */
async function caughtUp(db: Db, notifications: Notifications) {
  const marker = `marker-${randomUUID()}`;
  let seen = false;
  const unsubscribe = notifications.subscribe(APPLE_PASS_CHANGED_CHANNEL, (payload) => {
    if (payload === marker) seen = true;
  });
  try {
    await notifications.ready();
    await sql`SELECT pg_notify(${APPLE_PASS_CHANGED_CHANNEL}, ${marker})`.execute(db);
    await waitFor(() => seen, { what: 'the marker notification' });
  } finally {
    unsubscribe();
  }
}

const cardRowOf = (db: Db, id: string) => db.selectFrom('card').select(['apple_serial', 'apple_auth_token', 'updated_at']).where('id', '=', id).executeTakeFirstOrThrow();

describe(`the 304 map answers what the database answers (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let as: RoleHeaders;
  let ptid: string;
  const db = () => t.database.handle.db;
  beforeAll(async () => {
    t = await startTestApp({ runWorkers: true });
    await t.app.ctx.notifications.ready();
    ptid = t.material.passTypeIdentifier;
    ({ as } = await createProgramWithKeys(t.app, 'not-modified-map'));
  });
  afterAll(async () => {
    await t?.close();
  });
  /** A card issued here, whose wallet-update job ran and was heard: this process no longer holds it out of the map. */
  const issueSettled = async () => {
    const card = await issueCard(t, as);
    await waitForCardJobsIdle(t);
    await caughtUp(db(), t.app.ctx.notifications);
    return card;
  };

  it('a card write alone tells no map (it costs nothing); the wallet-update notification does', async () => {
    const card = await issueSettled();
    const before = await cardRowOf(db(), card.id);
    const lm = lastModifiedOf(before.updated_at);
    expect(await askNotModified(t.app, ptid, card.serial, card.token, lm)).toBe(304); // kept in the map
    // A write that enqueues no Apple job reaches nobody: the map still says 304 although the
    // database says 200 — which shows the 304 came from the map and no trigger runs on `card`.
    await sql`UPDATE card SET updated_at = updated_at + interval '1 hour' WHERE id = ${card.id}`.execute(db());
    expect(await databaseAnswer(db(), card.serial, card.token, lm)).toBe(200);
    expect(await askNotModified(t.app, ptid, card.serial, card.token, lm)).toBe(304);
    await notifyApplePassesChanged(db(), [card.id]);
    await caughtUp(db(), t.app.ctx.notifications);
    expect(await askNotModified(t.app, ptid, card.serial, card.token, lm)).toBe(200);
  });

  it("a pushed device never gets a stale 304: another instance's change, its job, then the push", async () => {
    const card = await issueSettled();
    const token = pushToken(0x304a);
    await register(t, 'device-map-pushed', card, token);
    const lm = lastModifiedOf((await cardRowOf(db(), card.id)).updated_at);
    expect(await askNotModified(t.app, ptid, card.serial, card.token, lm)).toBe(304); // kept in the map
    // A write nobody was told of: the map's answer stays (it is the map that answers, not the database).
    await sql`UPDATE card SET updated_at = updated_at + interval '1 hour' WHERE id = ${card.id}`.execute(db());
    expect(await askNotModified(t.app, ptid, card.serial, card.token, lm)).toBe(304);
    // Another instance's change: its own recorder (not this process's, which would hold the card).
    const elsewhere = createCardChangeRecorder(t.app.ctx.jobs, { debounceSeconds: 0, wallets: ['apple'] });
    await db()
      .transaction()
      .execute(async (trx) => {
        await sql`UPDATE card SET holder_name = 'Changed Elsewhere' WHERE id = ${card.id}`.execute(trx);
        await elsewhere.record(trx, [card.id]);
      });
    await waitFor(() => pushesTo(t, token).length > 0, { what: 'the push of the change' });
    // The push left after the notification; it may still be on its way to this process's listener
    // (a device needs longer than that to fetch): the marker waits for it, as the device would.
    await caughtUp(db(), t.app.ctx.notifications);
    const res = await t.app.inject({ method: 'GET', url: passUrl(ptid, card.serial), headers: { authorization: `ApplePass ${card.token}`, 'if-modified-since': lm } });
    expect(res.statusCode).toBe(200);
    const after = await cardRowOf(db(), card.id);
    expect(res.headers['last-modified']).toBe(lastModifiedOf(after.updated_at));
    expect(res.headers['content-type']).toContain('application/vnd.apple.pkpass');
    await waitForCardJobsIdle(t);
  });

  it("one statement names every serial of the job's cards (live and retired) in payloads under 8000 bytes", async () => {
    const card = await issueCard(t, as);
    // The issue's own wallet-update job notifies this card's serial too: let it run and its
    // notification arrive before listening, or the window below sees the serial twice.
    await waitForCardJobsIdle(t);
    await caughtUp(db(), t.app.ctx.notifications);
    const row = await db().selectFrom('card').select(['program_id', 'number']).where('id', '=', card.id).executeTakeFirstOrThrow();
    // 80 retired serials of the longest kind (100 characters): more than one notification's worth.
    const retired = Array.from({ length: 80 }, (_, i) => `${String(i).padStart(3, '0')}${'r'.repeat(97)}`);
    await db()
      .insertInto('retired_apple_pass')
      .values(retired.map((serial) => ({ serial_number: serial, auth_token: 'old-token-0123456789', card_id: card.id, program_id: row.program_id, number: row.number, retired_at: new Date() })))
      .execute();
    const payloads: string[] = [];
    const unsubscribe = t.app.ctx.notifications.subscribe(APPLE_PASS_CHANGED_CHANNEL, (payload) => {
      if (payload.includes(card.id)) payloads.push(payload);
    });
    try {
      await notifyApplePassesChanged(db(), [card.id]);
      await caughtUp(db(), t.app.ctx.notifications);
    } finally {
      unsubscribe();
    }
    expect(payloads.length).toBeGreaterThan(1);
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(8000);
    const items = payloads.flatMap((p) => p.split(','));
    expect(items.sort()).toEqual([card.serial, ...retired].map((serial) => `${card.id}:${serial}`).sort());
  });

  it('a change to the program row empties the map', async () => {
    const card = await issueSettled();
    const lm = lastModifiedOf((await cardRowOf(db(), card.id)).updated_at);
    expect(await askNotModified(t.app, ptid, card.serial, card.token, lm)).toBe(304);
    await sql`UPDATE card SET updated_at = updated_at + interval '1 hour' WHERE id = ${card.id}`.execute(db());
    expect(await askNotModified(t.app, ptid, card.serial, card.token, lm)).toBe(304); // the map, not told
    await sql`UPDATE program SET updated_at = now() WHERE id = (SELECT program_id FROM card WHERE id = ${card.id})`.execute(db());
    await caughtUp(db(), t.app.ctx.notifications);
    expect(await askNotModified(t.app, ptid, card.serial, card.token, lm)).toBe(200);
  });

  it('across changes of Last-Modified, token and serial, every answer equals the database path', async () => {
    const card = await issueCard(t, as);
    const other = await issueCard(t, as);
    let serial = card.serial;
    let token = card.token;
    const oldSerial = card.serial;
    const oldToken = card.token;
    const ask = async (what: string) => {
      const row = await cardRowOf(db(), card.id);
      const lm = Date.parse(lastModifiedOf(row.updated_at));
      const variants: Array<[string, string, string]> = [];
      for (const ims of [lm - 1000, lm, lm + 3600_000].map((ms) => new Date(ms).toUTCString())) {
        for (const [s, k] of [[serial, token], [serial, other.token], [oldSerial, oldToken], [serial, oldToken]] as const) variants.push([s, k, ims]);
      }
      for (const [s, k, ims] of variants) {
        // Each asked twice: the first may fill the map, the second is answered from it.
        for (const round of [1, 2]) {
          const got = await askNotModified(t.app, ptid, s, k, ims);
          const want = await databaseAnswer(db(), s, k, ims);
          expect({ what, round, serial: s === serial ? 'current' : 'old', token: k === token ? 'current' : 'other', ims, got }).toEqual({
            what,
            round,
            serial: s === serial ? 'current' : 'old',
            token: k === token ? 'current' : 'other',
            ims,
            got: want,
          });
        }
      }
    };
    await ask('issued');
    // This process's own change (the ledger's path): answered at once, no waiting for its job.
    await adjustOk(t, as, card.id, 5);
    await ask('adjusted through the API');
    await waitForCardJobsIdle(t);
    await caughtUp(db(), t.app.ctx.notifications);
    await ask('adjusted through the API, its job done');
    await sql`UPDATE card SET updated_at = updated_at + interval '2 seconds' WHERE id = ${card.id}`.execute(db());
    await notifyApplePassesChanged(db(), [card.id]); // what its wallet-update job sends
    await caughtUp(db(), t.app.ctx.notifications);
    await ask('Last-Modified moved with SQL');
    token = `token-${randomUUID()}`;
    await sql`UPDATE card SET apple_auth_token = ${token} WHERE id = ${card.id}`.execute(db());
    await notifyApplePassesChanged(db(), [card.id]); // what its wallet-update job sends
    await caughtUp(db(), t.app.ctx.notifications);
    await ask('token replaced with SQL');
    serial = `serial-${randomUUID()}`;
    await sql`UPDATE card SET apple_serial = ${serial} WHERE id = ${card.id}`.execute(db());
    await notifyApplePassesChanged(db(), [card.id]); // what its wallet-update job sends
    await caughtUp(db(), t.app.ctx.notifications);
    await ask('serial replaced with SQL');
    // A card update that changes none of the three leaves the answers right without any notification.
    await sql`UPDATE card SET holder_name = 'Renamed Holder' WHERE id = ${card.id}`.execute(db());
    await ask('holder renamed with SQL');
  });
});

// Two instances on one PostgreSQL: B keeps its map; changes come through A or plain SQL.
const postgres = requirePostgres();

describe.skipIf(postgres.skip)(`the 304 map across instances and connection cuts (postgres) ${postgres.reason}`, () => {
  let a: TestApp;
  let as: RoleHeaders;
  let ptid: string;
  let bDatabase: DatabaseHandle;
  let b: App;
  let bNotifications: Notifications;
  let losses = 0;
  const db = () => a.database.handle.db;
  beforeAll(async () => {
    // A runs the wallet-update jobs (which notify); B only answers.
    a = await startTestApp({ runWorkers: true });
    await a.app.ctx.notifications.ready();
    ptid = a.material.passTypeIdentifier;
    bDatabase = openDatabase({ databaseUrl: a.database.url!, poolSize: 4 });
    // B reconnects its listening connection only after a minute: the cut below stays a cut.
    bNotifications = createNotifications(bDatabase, { reconnectMinMs: 60_000, reconnectMaxMs: 60_000 });
    bNotifications.onLost?.(() => losses++);
    b = await buildApp({
      config: a.app.ctx.config,
      database: bDatabase,
      adminKey: TEST_ADMIN_KEY,
      apple: { material: a.material, packager: createPassPackager({ signer: new PassSigner(a.material), defaultImages: loadDefaultImages(DEFAULT_PASS_IMAGES_DIR) }), apns: a.apns },
      runWorkers: false,
      notifications: bNotifications,
    });
    await b.ready();
    await bNotifications.ready();
    ({ as } = await createProgramWithKeys(a.app, 'not-modified-two'));
  });
  afterAll(async () => {
    await b?.close();
    await bDatabase?.close();
    await a?.close();
  });

  const expectSame = async (what: string, card: IssuedCard, token: string, ims: string) => {
    const want = await databaseAnswer(db(), card.serial, token, ims);
    expect({ what, b: await askNotModified(b, ptid, card.serial, token, ims) }).toEqual({ what, b: want });
    expect({ what, a: await askNotModified(a.app, ptid, card.serial, token, ims) }).toEqual({ what, a: want });
    return want;
  };

  it("a change made through instance A is answered by B's map as the database answers once A's job ran", async () => {
    const card = await issueCard(a, as);
    const lm = lastModifiedOf((await cardRowOf(db(), card.id)).updated_at);
    expect(await expectSame('issued', card, card.token, lm)).toBe(304);
    expect(await askNotModified(b, ptid, card.serial, card.token, lm)).toBe(304); // from B's map
    await adjustOk(a, as, card.id, 7);
    await waitForCardJobsIdle(a);
    await caughtUp(db(), bNotifications);
    expect(await expectSame('adjusted on A', card, card.token, lm)).toBe(200);
    const newLm = lastModifiedOf((await cardRowOf(db(), card.id)).updated_at);
    expect(await expectSame('adjusted on A, new Last-Modified', card, card.token, newLm)).toBe(304);
    const token = `token-${randomUUID()}`;
    await sql`UPDATE card SET apple_auth_token = ${token} WHERE id = ${card.id}`.execute(db());
    await notifyApplePassesChanged(db(), [card.id]); // what the job of a token rotation sends
    await caughtUp(db(), bNotifications);
    expect(await expectSame('old token after its replacement', card, card.token, newLm)).toBe(401);
    expect(await expectSame('new token', card, token, newLm)).toBe(304);
  });

  it("a device pushed for A's change never gets a stale 304 from B", async () => {
    const card = await issueCard(a, as);
    await waitForCardJobsIdle(a);
    await caughtUp(db(), bNotifications);
    const token = pushToken(0x304b);
    await register(a, 'device-map-two', card, token);
    const lm = lastModifiedOf((await cardRowOf(db(), card.id)).updated_at);
    expect(await askNotModified(b, ptid, card.serial, card.token, lm)).toBe(304); // in B's map
    // A write nobody was told of: B keeps answering from its map (shows the map is what answers).
    await sql`UPDATE card SET updated_at = updated_at + interval '1 hour' WHERE id = ${card.id}`.execute(db());
    expect(await askNotModified(b, ptid, card.serial, card.token, lm)).toBe(304);
    const pushesBefore = pushesTo(a, token).length;
    await adjustOk(a, as, card.id, 4);
    await waitFor(() => pushesTo(a, token).length > pushesBefore, { what: "the push of A's change" });
    await caughtUp(db(), bNotifications); // what the device's own round trip after the push gives it
    const res = await b.inject({ method: 'GET', url: passUrl(ptid, card.serial), headers: { authorization: `ApplePass ${card.token}`, 'if-modified-since': lm } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['last-modified']).toBe(lastModifiedOf((await cardRowOf(db(), card.id)).updated_at));
    await waitForCardJobsIdle(a);
  });

  it('after the listening connection is cut, B asks the database: never a stale 304, nothing kept until it is back', async () => {
    const card = await issueCard(a, as);
    const lm = lastModifiedOf((await cardRowOf(db(), card.id)).updated_at);
    expect(await askNotModified(b, ptid, card.serial, card.token, lm)).toBe(304); // in B's map
    const lossesBefore = losses;
    // Cut every listening connection of this database (A's reconnects at once, B's not for a minute).
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${NOTIFICATIONS_APPLICATION_NAME} AND datname = current_database()`.execute(db());
    await waitFor(() => losses > lossesBefore, { what: "B to notice its listening connection's loss" });
    expect(bNotifications.isListening?.(APPLE_PASS_CHANGED_CHANNEL)).toBe(false);
    // Changed while B cannot hear of it: B must not answer from what it had.
    await sql`UPDATE card SET updated_at = updated_at + interval '1 hour' WHERE id = ${card.id}`.execute(db());
    expect(await askNotModified(b, ptid, card.serial, card.token, lm)).toBe(200);
    // Still down: B's answers are read each time, so a second change unheard of is seen too.
    const lm2 = lastModifiedOf((await cardRowOf(db(), card.id)).updated_at);
    expect(await askNotModified(b, ptid, card.serial, card.token, lm2)).toBe(304);
    await sql`UPDATE card SET updated_at = updated_at + interval '1 hour' WHERE id = ${card.id}`.execute(db());
    expect(await askNotModified(b, ptid, card.serial, card.token, lm2)).toBe(200);
    const lm3 = lastModifiedOf((await cardRowOf(db(), card.id)).updated_at);
    expect(await askNotModified(b, ptid, card.serial, card.token, lm3)).toBe(304);
    // Back: B listens again and its map is used and kept current again.
    await bNotifications.ready();
    expect(bNotifications.isListening?.(APPLE_PASS_CHANGED_CHANNEL)).toBe(true);
    expect(await askNotModified(b, ptid, card.serial, card.token, lm3)).toBe(304);
    await adjustOk(a, as, card.id, 3);
    await waitForCardJobsIdle(a);
    await caughtUp(db(), bNotifications);
    expect(await expectSame('changed after the reconnect', card, card.token, lm3)).toBe(200);
  });
});
