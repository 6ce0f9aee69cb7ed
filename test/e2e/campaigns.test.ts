import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { passUrl, pushToken, waitForCardJobsIdle } from '../support/apple-device.js';
import {
  getCampaign,
  installOnDevice,
  issueConsentingCard,
  saveToGoogle,
  setHistory,
  waitForCampaignDelivered,
  type TestCard,
} from '../support/campaigns.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { passJsonOf, unpackPkpass } from '../support/pkpass.js';
import { parsePassStrings } from '../support/pkpass-testing.js';

// Campaigns end to end, through HTTP, with the real APNs client against the APNs stand-in and the
// real Google client against the Google fake.
describe(`campaigns (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let now = new Date();
  beforeAll(async () => {
    t = await startTestApp({ google: true, clock: () => now });
  });
  afterAll(async () => {
    await t?.close();
  });

  const objectMessages = (objectId: string) =>
    t.google!.fake.callsTo('addObjectMessage').filter((c) => c.status === 200 && c.path.includes(encodeURIComponent(objectId)));

  it('a campaign to a segment reaches exactly that segment on both wallets; the pass fetched afterwards shows the promo', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'seg-campaign');
    const card = async (label: string, options: { consent?: boolean; sleeping: boolean; apple?: number; google?: boolean }) => {
      const c = await issueConsentingCard(t, as, { consent: options.consent ?? true, name: label });
      await setHistory(t, program.id, c.id, now, 400, [options.sleeping ? 70 : 3]);
      if (options.apple !== undefined) await installOnDevice(t, c, pushToken(options.apple));
      if (options.google) await saveToGoogle(t, c);
      return c;
    };
    const a = await card('A', { sleeping: true, apple: 0xa1, google: true });
    const b = await card('B', { sleeping: true, apple: 0xb1 });
    const c = await card('C no consent', { sleeping: true, consent: false, apple: 0xc1, google: true });
    const d = await card('D active', { sleeping: false, apple: 0xd1, google: true });
    const e = await card('E google only', { sleeping: true, google: true });
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;
    t.google!.fake.calls.length = 0;

    const message = { ru: 'Скучаем! −20% на всё до воскресенья', en: 'We miss you! 20% off until Sunday' };
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/campaigns',
      headers: as('marketer'),
      payload: { name: 'Win back sleepers', message, audience: { segments: ['sleeping'] } },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ status: 'draft', progress: { targeted: 0, processed: 0 } });
    const id = created.json().id;
    const sent = await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${id}/send`, headers: as('marketer') });
    expect(sent.statusCode).toBe(202);
    expect(sent.json().status).toBe('sending');

    const done = await waitForCampaignDelivered(t, as, id);
    expect(done.progress).toEqual({ targeted: 3, processed: 3, delivered: 3, skipped: 0 });

    // Apple: one push to each targeted device, none to the others.
    const pushed = t.apnsStandIn.received.map((p) => p.token).sort();
    expect(pushed).toEqual([pushToken(0xa1), pushToken(0xb1)].sort());
    // Google: one notifying message per targeted object, none to the others; no class message.
    expect(objectMessages(a.objectId!)).toHaveLength(1);
    expect(objectMessages(e.objectId!)).toHaveLength(1);
    expect(objectMessages(c.objectId!)).toHaveLength(0);
    expect(objectMessages(d.objectId!)).toHaveLength(0);
    expect(t.google!.fake.callsTo('addClassMessage')).toHaveLength(0);
    const sentMessage = (objectMessages(a.objectId!)[0]!.body as { message: { messageType: string; body: string } }).message;
    expect(sentMessage.messageType).toBe('TEXT_AND_NOTIFY');
    expect(sentMessage.body).toBe(message.ru);
    // The object's promo text module is patched too.
    expect(JSON.stringify(t.google!.fake.objects.get(a.objectId!)!.textModulesData)).toContain(message.ru);

    // Only the segment's consenting cards carry the promo.
    const promos = await t.database.handle.db.selectFrom('card').select(['id', 'promo']).where('program_id', '=', program.id).execute();
    const withPromo = promos.filter((p) => p.promo !== null).map((p) => p.id).sort();
    expect(withPromo).toEqual([a.id, b.id, e.id].sort());

    // The device fetches the updated pass: the promo is on the front with a lock-screen changeMessage.
    const fetched = await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, a.serial), headers: a.auth });
    expect(fetched.statusCode).toBe(200);
    const pass = passJsonOf(fetched.rawPayload);
    const promoField = pass.storeCard.auxiliaryFields.find((f: { key: string }) => f.key === 'promo');
    const files = unpackPkpass(fetched.rawPayload);
    const ru = parsePassStrings(files['ru.lproj/pass.strings']!);
    const en = parsePassStrings(files['en.lproj/pass.strings']!);
    expect(ru[promoField.value]).toBe(message.ru);
    expect(en[promoField.value]).toBe(message.en);
    expect(ru[promoField.changeMessage]).toBe('%@'); // the lock-screen text is the message itself

    await waitFor(async () => (await getCampaign(t, as, id)).delivery.apple.passesFetched === 1, { what: 'the pass fetch to be counted' });
    const figures = (await getCampaign(t, as, id)).delivery;
    expect(figures.apple).toEqual({ pushesAccepted: 2, pushesFailed: 0, cardsReached: 2, passesFetched: 1 });
    expect(figures.google).toMatchObject({ objectsUpdated: 2, notificationsSent: 2, notificationsDowngraded: 0, classMessages: [] });

    // Listed, newest first.
    const list = await t.app.inject({ method: 'GET', url: '/api/v1/campaigns', headers: as('admin') });
    expect(list.json().map((x: { id: string }) => x.id)).toEqual([id]);
  });

  it('sends TEXT past the 3-per-day notification limit, and one class message when the audience is a whole class', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'google-campaign');
    const cards: TestCard[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await issueConsentingCard(t, as);
      await setHistory(t, program.id, c.id, now, 400, [100]);
      await saveToGoogle(t, c);
      cards.push(c);
    }
    await waitForCardJobsIdle(t);
    // The first object has already had three notifications today.
    for (let i = 0; i < 3; i++) {
      await t.database.handle.db.insertInto('google_notification').values({ object_id: cards[0]!.objectId!, kind: 'update', sent_at: new Date(now.getTime() - (i + 1) * 60_000) }).execute();
    }
    t.google!.fake.calls.length = 0;
    const segmentCampaign = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/campaigns',
        headers: as('marketer'),
        payload: { name: 'To sleepers', message: { ru: 'Привет', en: 'Hello' }, audience: { segments: ['sleeping'] } },
      })
    ).json();
    await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${segmentCampaign.id}/send`, headers: as('marketer') });
    const first = await waitForCampaignDelivered(t, as, segmentCampaign.id);
    expect(first.delivery.google).toMatchObject({ objectsUpdated: 3, notificationsSent: 2, notificationsDowngraded: 1 });
    const types = cards.map((c) => (objectMessages(c.objectId!)[0]!.body as { message: { messageType: string } }).message.messageType);
    expect(types).toEqual(['TEXT', 'TEXT_AND_NOTIFY', 'TEXT_AND_NOTIFY']);

    // Every Google holder of the tier is in the audience: one class message, no object messages.
    t.google!.fake.calls.length = 0;
    const tierCampaign = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/campaigns',
        headers: as('marketer'),
        payload: { name: 'Everyone standard', message: { ru: 'Новое меню', en: 'New menu' }, audience: { tiers: ['standard'] }, bonusPoints: 50 },
      })
    ).json();
    await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${tierCampaign.id}/send`, headers: as('marketer') });
    const second = await waitForCampaignDelivered(t, as, tierCampaign.id);
    await waitFor(async () => (await getCampaign(t, as, tierCampaign.id)).delivery.google.classMessages[0]?.sent, { what: 'the class message' });
    const classMessages = t.google!.fake.callsTo('addClassMessage').filter((c) => c.status === 200);
    expect(classMessages).toHaveLength(1);
    expect((classMessages[0]!.body as { message: { messageType: string; body: string } }).message).toMatchObject({ messageType: 'TEXT_AND_NOTIFY', body: 'Новое меню' });
    expect(t.google!.fake.callsTo('addObjectMessage')).toHaveLength(0);
    expect(second.progress.delivered).toBe(3);
    expect((await getCampaign(t, as, tierCampaign.id)).delivery.google.classMessages).toEqual([
      expect.objectContaining({ tier: 'standard', objects: 3, sent: true, notified: true, downgraded: false }),
    ]);
    // The bonus reached the ledger (campaign_bonus) and the objects' balance.
    const bonus = await t.database.handle.db.selectFrom('ledger_entry').select(['card_id', 'points']).where('kind', '=', 'campaign_bonus').where('program_id', '=', program.id).execute();
    expect(bonus).toHaveLength(3);
    expect(bonus.every((entry) => entry.points === 50)).toBe(true);
  });

  it('starts a scheduled campaign at the scheduler tick, not before', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'scheduled');
    const c = await issueConsentingCard(t, as);
    await installOnDevice(t, c, pushToken(0x5c1));
    await setHistory(t, program.id, c.id, now, 10, [1]);
    const create = (scheduledAt: Date) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/campaigns',
        headers: as('marketer'),
        payload: { name: `At ${scheduledAt.toISOString()}`, message: { ru: 'Утро', en: 'Morning' }, audience: { all: true }, scheduledAt: scheduledAt.toISOString() },
      });
    const past = (await create(new Date(now.getTime() - 60_000))).json();
    const future = (await create(new Date(now.getTime() + 3_600_000))).json();
    expect(past.status).toBe('scheduled');
    expect(future.status).toBe('scheduled');

    const tick = await t.app.campaigns.tick();
    expect(tick.started).toContain(past.id);
    expect(tick.started).not.toContain(future.id);
    await waitForCampaignDelivered(t, as, past.id);
    expect((await getCampaign(t, as, future.id)).status).toBe('scheduled');

    now = new Date(now.getTime() + 2 * 3_600_000);
    try {
      expect((await t.app.campaigns.tick()).started).toEqual([future.id]);
      const done = await waitForCampaignDelivered(t, as, future.id);
      expect(done.progress.delivered).toBe(1);
      expect(done.startedAt).toBe(now.toISOString());
    } finally {
      now = new Date(now.getTime() - 2 * 3_600_000);
    }
    // A second tick starts nothing twice.
    expect((await t.app.campaigns.tick()).started).toEqual([]);
  });

  it('validates audiences and states, and keeps programs apart', async () => {
    const { as } = await createProgramWithKeys(t.app, 'campaign-rules');
    const other = await createProgramWithKeys(t.app, 'campaign-rules-other');
    const post = (payload: object, headers = as('marketer')) => t.app.inject({ method: 'POST', url: '/api/v1/campaigns', headers, payload });
    const msg = { ru: 'Привет', en: 'Hi' };
    expect((await post({ name: 'x', message: msg, audience: { all: true, tiers: ['standard'] } })).json().code).toBe('invalid_audience');
    expect((await post({ name: 'x', message: msg, audience: {} })).json().code).toBe('invalid_audience');
    expect((await post({ name: 'x', message: msg, audience: { tiers: ['gold'] } })).json().code).toBe('unknown_tier');
    expect((await post({ name: 'x', message: msg, audience: { segments: ['vip'] } })).statusCode).toBe(400);
    expect((await post({ name: 'x', message: { ru: 'only ru' }, audience: { all: true } })).statusCode).toBe(400);
    expect((await post({ name: 'x', message: msg, audience: { all: true } }, as('pos'))).statusCode).toBe(403);

    const draft = (await post({ name: 'x', message: msg, audience: { all: true } })).json();
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/campaigns/${draft.id}`, headers: other.as('marketer') })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${draft.id}/send`, headers: other.as('admin') })).statusCode).toBe(404);
    const cancelled = await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${draft.id}/cancel`, headers: as('marketer') });
    expect(cancelled.json().status).toBe('cancelled');
    const resend = await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${draft.id}/send`, headers: as('marketer') });
    expect(resend.statusCode).toBe(409);
    expect(resend.json().code).toBe('campaign_not_sendable');
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${draft.id}/cancel`, headers: as('marketer') })).json().code).toBe('campaign_not_cancellable');
  });
});

describe(`campaign cancel mid-way (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    // Chunks of 10 recipients, each with a device, at 4 devices a second: a chunk every 2.5 s.
    t = await startTestApp({ env: { CAMPAIGN_CHUNK_SIZE: '10', CAMPAIGN_PUSH_RATE: '4' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('stops the remaining chunks: no card after the cancel gets the message or a push', async () => {
    const { as } = await createProgramWithKeys(t.app, 'cancel-me');
    const cards: TestCard[] = [];
    for (let i = 0; i < 40; i++) {
      const c = await issueConsentingCard(t, as);
      await installOnDevice(t, c, pushToken(0xcc00 + i));
      cards.push(c);
    }
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;
    const created = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/campaigns',
        headers: as('marketer'),
        payload: { name: 'Slow', message: { ru: 'Медленно', en: 'Slowly' }, audience: { all: true } },
      })
    ).json();
    await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${created.id}/send`, headers: as('marketer') });
    await waitFor(async () => (await getCampaign(t, as, created.id)).progress.processed >= 10, { what: 'the first chunk' });
    const cancel = await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${created.id}/cancel`, headers: as('marketer') });
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json().status).toBe('cancelled');
    const processedAtCancel = cancel.json().progress.processed;
    expect(processedAtCancel).toBeGreaterThanOrEqual(10);
    expect(processedAtCancel).toBeLessThan(40);

    await new Promise((resolve) => setTimeout(resolve, 6000)); // two more chunks' time
    await waitForCardJobsIdle(t);
    const after = await getCampaign(t, as, created.id);
    expect(after.status).toBe('cancelled');
    expect(after.progress).toMatchObject({ targeted: 40, processed: processedAtCancel });
    const db = t.database.handle.db;
    const statuses = await db.selectFrom('campaign_recipient').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('campaign_id', '=', created.id).groupBy('status').execute();
    expect(Object.fromEntries(statuses.map((s) => [s.status, Number(s.n)]))).toEqual({ processed: processedAtCancel, cancelled: 40 - processedAtCancel });
    const withPromo = await db.selectFrom('card').select('id').where('promo', 'is not', null).where('id', 'in', cards.map((c) => c.id)).execute();
    expect(withPromo).toHaveLength(processedAtCancel);
    expect(t.apnsStandIn.received).toHaveLength(processedAtCancel);
  });
});
