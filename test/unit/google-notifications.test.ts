/**
 * Notification policy (3 notifying sends per object per rolling 24 h, ≤ 10 messages) and its use against
 * the fake (reference google-wallet.md section 3, checklist 21–25).
 */
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServiceAccountTokenProvider } from '../../src/wallets/google/auth.js';
import { GoogleWalletClient, type LoyaltyObject, type WalletMessage } from '../../src/wallets/google/client.js';
import { sendObjectMessage } from '../../src/wallets/google/messaging.js';
import { buildMessage, decideNotification, messageId, NOTIFICATION_WINDOW_MS, pruneMessages } from '../../src/wallets/google/notifications.js';
import { buildLoyaltyClass, buildLoyaltyObject, classIdFor } from '../../src/wallets/google/payloads.js';
import { createTokenBucket } from '../../src/wallets/google/rate-limiter.js';
import { createTestServiceAccount, startGoogleFake, type GoogleFake, type TestServiceAccount } from '../support/google-fake.js';

const ISSUER = '3388000000012345678';
const HOUR = 60 * 60 * 1000;
const T0 = Date.UTC(2026, 0, 10, 12);

describe('decideNotification (checklist 23)', () => {
  it('allows 3 in a rolling 24 h window and blocks the 4th until the oldest leaves it', () => {
    const now = new Date(T0);
    const sent = [new Date(T0 - 20 * HOUR), new Date(T0 - 2 * HOUR), new Date(T0 - HOUR)];
    expect(decideNotification(sent.slice(0, 2), now)).toEqual({ notify: true, remaining: 0 });
    expect(decideNotification(sent, now)).toEqual({ notify: false, remaining: 0, nextAllowedAt: new Date(T0 + 4 * HOUR) });
    expect(decideNotification(sent, new Date(T0 + 4 * HOUR)).notify).toBe(true);
    expect(decideNotification([], now)).toEqual({ notify: true, remaining: 2 });
  });

  it('ignores entries older than 24 h or in the future', () => {
    const now = new Date(T0);
    const old = new Date(T0 - NOTIFICATION_WINDOW_MS);
    const future = new Date(T0 + HOUR);
    expect(decideNotification([old, old, old, future, future], now).notify).toBe(true);
  });

  it('property: agrees with counting sends in (now − 24 h, now]', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -2 * NOTIFICATION_WINDOW_MS, max: HOUR }), { maxLength: 8 }), (offsets) => {
        const history = offsets.map((o) => new Date(T0 + o));
        const inWindow = offsets.filter((o) => o > -NOTIFICATION_WINDOW_MS && o <= 0).length;
        expect(decideNotification(history, new Date(T0)).notify).toBe(inWindow < 3);
      }),
    );
  });
});

describe('pruneMessages (checklist 24)', () => {
  const msg = (id: string, start?: string): WalletMessage => ({ id, header: id, body: id, ...(start ? { displayInterval: { start: { date: start } } } : {}) });

  it('keeps everything under the cap', () => {
    const messages = Array.from({ length: 9 }, (_, i) => msg(`m${i}`));
    expect(pruneMessages(messages)).toEqual({ keep: messages, dropped: [] });
  });

  it('drops the oldest to make room for the new one', () => {
    const messages = Array.from({ length: 10 }, (_, i) => msg(`m${i}`, new Date(T0 + (i === 3 ? -HOUR : i * HOUR)).toISOString()));
    const { keep, dropped } = pruneMessages(messages);
    expect(dropped.map((m) => m.id)).toEqual(['m3']);
    expect(keep).toHaveLength(9);
    // Messages without a start date count as oldest; `dropped` keeps array order.
    expect(pruneMessages([...messages, msg('x'), msg('y')], 10, 1).dropped.map((m) => m.id)).toEqual(['m3', 'x', 'y']);
  });
});

describe('messages', () => {
  it('uses TEXT_AND_NOTIFY only when notifying (checklist 22)', () => {
    const base = { id: 'm', header: { ru: 'Акция', en: 'Promo' }, body: { ru: 'Скидка', en: 'Discount' }, defaultLanguage: 'ru' as const };
    expect(buildMessage({ ...base, notify: true }).messageType).toBe('TEXT_AND_NOTIFY');
    expect(buildMessage({ ...base, notify: false }).messageType).toBe('TEXT');
    expect(buildMessage({ ...base, notify: false }).localizedBody?.translatedValues).toEqual([{ language: 'en', value: 'Discount' }]);
  });

  it('message ids are unique per object (random) or deterministic per key', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => messageId(undefined, new Date(T0))));
    expect(ids.size).toBe(1000);
    expect(messageId('campaign.42')).toBe(messageId('campaign.42'));
    expect(messageId('campaign.42')).not.toBe(messageId('campaign.43'));
  });
});

describe('against the fake', () => {
  let account: TestServiceAccount;
  let fake: GoogleFake;
  let client: GoogleWalletClient;
  let objectId: string;
  beforeAll(() => {
    account = createTestServiceAccount();
  });
  const closers: GoogleFake[] = [];
  afterEach(async () => {
    for (const f of closers.splice(0)) await f.close();
  });

  async function setup(): Promise<void> {
    fake = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email, now: T0 });
    closers.push(fake);
    client = new GoogleWalletClient({
      apiBaseUrl: fake.apiBaseUrl,
      tokens: createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }),
      limiter: createTokenBucket({ ratePerSecond: 1000, burst: 1000 }),
      sleep: async () => {},
    });
    const name = { ru: 'Базовый', en: 'Base' };
    await client.ensureClass(
      buildLoyaltyClass({
        issuerId: ISSUER, programSlug: 'p', defaultLanguage: 'ru', issuerName: name, programName: name,
        logoUrl: 'https://cdn.example.com/l.png', backgroundColor: '#123456', tier: { code: 't', name }, callbackUrl: 'https://x.example/cb',
      }),
    );
    const obj = buildLoyaltyObject({
      issuerId: ISSUER, programSlug: 'p', cardId: 'c1', classId: classIdFor(ISSUER, 'p', 't'), state: 'ACTIVE', defaultLanguage: 'ru',
      cardNumber: '100', holderName: 'A', balance: 0, pointsLabel: { ru: 'Баллы', en: 'Points' },
    });
    objectId = (await client.ensureObject(obj)).resource.id!;
  }

  const send = (history: Date[], notify = true, now = new Date(T0)) =>
    sendObjectMessage(client, objectId, { header: { ru: 'Акция', en: 'Promo' }, body: { ru: 'Скидка', en: 'Sale' }, defaultLanguage: 'ru', notify, history, now });

  it('3 notifying messages go out; the 4th in 24 h is downgraded to TEXT by our own counter', async () => {
    await setup();
    const history: Date[] = [];
    for (let i = 0; i < 4; i++) {
      const result = await send(history);
      if (result.notified) history.push(new Date(T0));
      expect(result.downgraded).toBe(i === 3);
    }
    const types = fake.callsTo('addObjectMessage').map((c) => ((c.body as { message: WalletMessage }).message.messageType));
    expect(types).toEqual(['TEXT_AND_NOTIFY', 'TEXT_AND_NOTIFY', 'TEXT_AND_NOTIFY', 'TEXT']);
    expect(fake.notificationsInWindow(objectId)).toBe(3);
    expect(fake.callsTo('addObjectMessage').every((c) => c.status === 200)).toBe(true);
  });

  it("when our history is incomplete, Google's quota error downgrades to one TEXT re-send, never a notifying retry (checklist 25)", async () => {
    await setup();
    for (let i = 0; i < 3; i++) await send([]);
    const result = await send([]);
    expect(result).toMatchObject({ notified: false, downgraded: true });
    expect(fake.callsTo('addObjectMessage').map((c) => `${(c.body as { message: WalletMessage }).message.messageType} ${c.status}`)).toEqual([
      'TEXT_AND_NOTIFY 200',
      'TEXT_AND_NOTIFY 200',
      'TEXT_AND_NOTIFY 200',
      'TEXT_AND_NOTIFY 429',
      'TEXT 200',
    ]);
    expect(fake.objects.get(objectId)!.messages).toHaveLength(4);
  });

  it('notifying PATCHes and messages share the budget; a quota-hit PATCH is re-sent without notifyPreference (checklist 21, 23)', async () => {
    await setup();
    const points = (n: number): LoyaltyObject => ({ loyaltyPoints: { label: 'Баллы', balance: { int: n } } });
    expect((await client.patchObject(objectId, points(1), { notify: true })).notified).toBe(true);
    expect((await client.patchObject(objectId, points(2))).notified).toBe(false);
    await send([]);
    await send([]);
    const fourth = await client.patchObject(objectId, points(3), { notify: true });
    expect(fourth).toMatchObject({ notified: false, downgraded: true });
    expect(fake.objects.get(objectId)!.loyaltyPoints!.balance!.int).toBe(3);
    const patches = fake.callsTo('patchObject').map((c) => [(c.body as LoyaltyObject).notifyPreference ?? null, c.status]);
    expect(patches).toEqual([
      ['NOTIFY_ON_UPDATE', 200],
      [null, 200],
      ['NOTIFY_ON_UPDATE', 429],
      [null, 200],
    ]);
    // Ephemeral: never stored on the object.
    expect(fake.objects.get(objectId)).not.toHaveProperty('notifyPreference');
  });

  it('the window rolls: after 24 h notifying works again', async () => {
    await setup();
    for (let i = 0; i < 3; i++) await send([]);
    fake.clock.advance(NOTIFICATION_WINDOW_MS);
    const result = await send([], true, new Date(T0 + NOTIFICATION_WINDOW_MS));
    expect(result.notified).toBe(true);
  });

  it('with 10 messages present, the oldest is pruned (full-array PATCH) before adding (checklist 24)', async () => {
    await setup();
    for (let i = 0; i < 10; i++) await sendObjectMessage(client, objectId, {
      header: { ru: `h${i}`, en: `h${i}` }, body: { ru: 'b', en: 'b' }, defaultLanguage: 'ru', notify: false, history: [], now: new Date(T0 + i * 1000),
    });
    expect(fake.objects.get(objectId)!.messages).toHaveLength(10);
    const result = await send([], false, new Date(T0 + 60_000));
    expect(result.pruned).toBe(1);
    const messages = fake.objects.get(objectId)!.messages!;
    expect(messages).toHaveLength(10);
    expect(messages.map((m) => m.header)).not.toContain('h0');
    const prunePatch = fake.callsTo('patchObject').at(-1)!.body as LoyaltyObject;
    expect(Object.keys(prunePatch)).toEqual(['messages']);
    expect(prunePatch.messages).toHaveLength(9);
    // Without pruning the fake refuses an 11th message.
    await expect(client.addObjectMessage(objectId, { id: 'extra', header: 'x', body: 'y' })).rejects.toMatchObject({ status: 400 });
  });
});
