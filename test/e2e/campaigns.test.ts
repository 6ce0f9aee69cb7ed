import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { adjustOk, passUrl, pushToken, waitForCardJobsIdle } from '../support/apple-device.js';
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
      payload: { controlShare: 0, name: 'Win back sleepers', message, audience: { segments: ['sleeping'] } },
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
    expect(figures.apple).toEqual({ pushesAccepted: 2, pushesFailed: 0, pushesPending: 0, cardsReached: 2, passesFetched: 1 });
    expect(figures.google).toMatchObject({ objectsPending: 0, objectsFailed: 0 });
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
        payload: { controlShare: 0, name: 'To sleepers', message: { ru: 'Привет', en: 'Hello' }, audience: { segments: ['sleeping'] } },
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
        payload: { controlShare: 0, name: 'Everyone standard', message: { ru: 'Новое меню', en: 'New menu' }, audience: { tiers: ['standard'] }, bonusPoints: 50 },
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
        payload: { controlShare: 0, name: `At ${scheduledAt.toISOString()}`, message: { ru: 'Утро', en: 'Morning' }, audience: { all: true }, scheduledAt: scheduledAt.toISOString() },
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

  it('replays POST /campaigns and POST /campaigns/{id}/send retried with the same Idempotency-Key', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'campaign-idempotency');
    const c = await issueConsentingCard(t, as);
    await installOnDevice(t, c, pushToken(0x1de));
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;
    const withKey = (key?: string) => ({ ...as('marketer'), ...(key ? { 'idempotency-key': key } : {}) });
    const post = (payload: object, key?: string) => t.app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: withKey(key), payload });
    const send = (id: string, key?: string) => t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${id}/send`, headers: withKey(key) });
    const count = async () => (await t.database.handle.db.selectFrom('campaign').select('id').where('program_id', '=', program.id).execute()).length;
    const body = { name: 'Once', message: { ru: 'Один раз', en: 'Once' }, audience: { all: true } };

    const first = await post(body, 'create-once-1');
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    // The retry (same body, keys in another order) replays the first answer: no second campaign.
    const retry = await post({ audience: { all: true }, message: body.message, name: 'Once' }, 'create-once-1');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    expect(await count()).toBe(1);
    // The same key with another body is refused, as for the POS endpoints.
    const reused = await post({ ...body, name: 'Twice' }, 'create-once-1');
    expect(reused.statusCode).toBe(422);
    expect(reused.json().code).toBe('idempotency_key_reused');
    expect(await count()).toBe(1);
    // Without the header nothing changes: each POST creates a campaign.
    const a = await post(body);
    const b = await post(body);
    expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
    expect(a.json().id).not.toBe(b.json().id);
    expect(await count()).toBe(3);

    const id = first.json().id;
    const sent = await send(id, 'send-once-1');
    expect(sent.statusCode).toBe(202);
    expect(sent.json().status).toBe('sending');
    const again = await send(id, 'send-once-1');
    expect(again.statusCode).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(sent.json());
    // Another key, or none, still finds the campaign no longer sendable.
    expect((await send(id, 'send-once-2')).json().code).toBe('campaign_not_sendable');
    expect((await send(id)).statusCode).toBe(409);
    const done = await waitForCampaignDelivered(t, as, id);
    expect(done.progress).toEqual({ targeted: 1, processed: 1, delivered: 1, skipped: 0 });
    // Retried after the campaign was sent: the first 202 again, nothing sent twice.
    const late = await send(id, 'send-once-1');
    expect(late.statusCode).toBe(202);
    expect(late.json()).toEqual(sent.json());
    await waitForCardJobsIdle(t);
    expect(t.apnsStandIn.received.filter((p) => p.token === pushToken(0x1de))).toHaveLength(1);
    expect((await getCampaign(t, as, id)).progress).toEqual(done.progress);
    // The key belongs to that send: the same key for another campaign's send is refused.
    const other = await send(a.json().id, 'send-once-1');
    expect(other.statusCode).toBe(422);
    expect(other.json().code).toBe('idempotency_key_reused');
    expect((await getCampaign(t, as, a.json().id)).status).toBe('draft');
  });

  it('lists campaigns filtered by status', async () => {
    const { as } = await createProgramWithKeys(t.app, 'campaign-status-filter');
    const create = async (name: string) =>
      (await t.app.inject({ method: 'POST', url: '/api/v1/campaigns', headers: as('marketer'), payload: { controlShare: 0, name, message: { ru: name, en: name }, audience: { all: true } } })).json();
    const draft = await create('Draft');
    const sent = await create('Sent');
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${sent.id}/send`, headers: as('marketer') })).statusCode).toBe(202);
    await waitForCampaignDelivered(t, as, sent.id);
    const list = async (query: string) => {
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/campaigns${query}`, headers: as('marketer') });
      expect(res.statusCode).toBe(200);
      return res.json().map((x: { id: string; status: string }) => [x.id, x.status]);
    };
    expect(await list('?status=draft')).toEqual([[draft.id, 'draft']]);
    expect(await list('?status=sent')).toEqual([[sent.id, 'sent']]);
    expect(await list('?status=scheduled')).toEqual([]);
    expect((await list('')).map(([id]: [string]) => id).sort()).toEqual([draft.id, sent.id].sort());
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/campaigns?status=done', headers: as('marketer') })).statusCode).toBe(400);
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
        payload: { controlShare: 0, name: 'Slow', message: { ru: 'Медленно', en: 'Slowly' }, audience: { all: true } },
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

describe(`bulk card changes in batch jobs (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    // Chunks of 20 recipients; the Apple update path takes them in jobs of 8 cards (8 + 8 + 4).
    t = await startTestApp({ env: { CAMPAIGN_CHUNK_SIZE: '20', CAMPAIGN_PUSH_RATE: '1000', APPLE_UPDATE_CARDS_PER_JOB: '8' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('pushes every device of a campaign exactly once through batch jobs, and single changes stay one job per card', async () => {
    const { as } = await createProgramWithKeys(t.app, 'batch-jobs');
    const cards: TestCard[] = [];
    for (let i = 0; i < 40; i++) {
      const c = await issueConsentingCard(t, as);
      await installOnDevice(t, c, pushToken(0xba00 + i));
      cards.push(c);
    }
    await waitForCardJobsIdle(t);
    t.apnsStandIn.received.length = 0;
    const db = t.database.handle.db;
    const { rows: jobsBefore } = await sql<{ id: string }>`
      SELECT id FROM pgboss.job WHERE name = 'wallet-update-apple' UNION ALL SELECT id FROM pgboss.archive WHERE name = 'wallet-update-apple'
    `.execute(db);

    const created = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/campaigns',
        headers: as('marketer'),
        payload: { controlShare: 0, name: 'Batches', message: { ru: 'Пачками', en: 'In batches' }, audience: { all: true } },
      })
    ).json();
    await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${created.id}/send`, headers: as('marketer') });
    await waitForCampaignDelivered(t, as, created.id);
    await waitForCardJobsIdle(t);

    // One push per device, none twice.
    const tokens = t.apnsStandIn.received.map((r) => r.token).sort();
    expect(tokens).toEqual(cards.map((_, i) => pushToken(0xba00 + i)).sort());
    // The campaign's two chunks became 2 × (8 + 8 + 4) cards in six jobs, not forty.
    const { rows } = await sql<{ cards: number }>`
      SELECT jsonb_array_length(data -> 'cardIds') AS cards FROM pgboss.job
      WHERE name = 'wallet-update-apple' AND NOT (id = ANY(${jobsBefore.map((j) => j.id)}::uuid[]))
      UNION ALL
      SELECT jsonb_array_length(data -> 'cardIds') FROM pgboss.archive
      WHERE name = 'wallet-update-apple' AND NOT (id = ANY(${jobsBefore.map((j) => j.id)}::uuid[]))
    `.execute(db);
    expect(rows.map((r) => r.cards).sort((a, b) => a - b)).toEqual([4, 4, 8, 8, 8, 8]);
    const figures = await getCampaign(t, as, created.id);
    expect(figures.delivery.apple).toMatchObject({ pushesAccepted: 40, pushesFailed: 0, cardsReached: 40 });

    // A single change (a POS adjustment) is one job for that card, keyed by it so bursts coalesce.
    await adjustOk(t, as, cards[0]!.id, 10);
    const single = await sql<{ data: { cardId?: string; cardIds?: string[] }; singleton_key: string }>`
      SELECT data, singleton_key FROM pgboss.job WHERE name = 'wallet-update-apple' AND data ->> 'cardId' = ${cards[0]!.id}
        AND NOT (id = ANY(${jobsBefore.map((j) => j.id)}::uuid[]))
    `.execute(db);
    expect(single.rows).toEqual([{ data: { cardId: cards[0]!.id }, singleton_key: cards[0]!.id }]);
  });
});

describe(`campaign fetch window (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    // Chunks of 10, no rate ceiling to speak of; the fetch window waits up to 30 s for fetches to stop.
    t = await startTestApp({ env: { CAMPAIGN_CHUNK_SIZE: '10', CAMPAIGN_PUSH_RATE: '100000', CAMPAIGN_FETCH_WINDOW_SECONDS: '30' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('runs chunk n only once the devices pushed by chunk n-3 have fetched their new pass', async () => {
    const { as } = await createProgramWithKeys(t.app, 'fetch-window');
    const cards: TestCard[] = [];
    for (let i = 0; i < 40; i++) {
      const c = await issueConsentingCard(t, as);
      await installOnDevice(t, c, pushToken(0xfe00 + i));
      cards.push(c);
    }
    await waitForCardJobsIdle(t);
    const created = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/campaigns',
        headers: as('marketer'),
        payload: { controlShare: 0, name: 'Windowed', message: { ru: 'Окно', en: 'Window' }, audience: { all: true } },
      })
    ).json();
    await t.app.inject({ method: 'POST', url: `/api/v1/campaigns/${created.id}/send`, headers: as('marketer') });

    // Chunks 0, 1 and 2 go at once; chunk 3 waits for chunk 0's devices, which do not fetch yet.
    await waitFor(async () => (await getCampaign(t, as, created.id)).progress.processed >= 30, { what: 'the first three chunks' });
    await waitFor(async () => (await getCampaign(t, as, created.id)).delivery.apple.pushesAccepted >= 30, { what: 'their pushes' });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect((await getCampaign(t, as, created.id)).progress.processed).toBe(30);

    // Nine of chunk 0's ten devices fetch the new pass (chunk 0 = the ten smallest card ids).
    const chunk0 = [...cards].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, 10);
    for (const card of chunk0.slice(0, 9)) {
      const pass = await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, card.serial), headers: card.auth });
      expect(pass.statusCode).toBe(200);
    }
    await waitFor(async () => (await getCampaign(t, as, created.id)).progress.processed === 40, { what: 'the fourth chunk' });
    // The (empty) fifth chunk watches chunk 1: once its devices fetch, the campaign is sent.
    const sorted = [...cards].sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const card of sorted.slice(10, 20)) {
      await t.app.inject({ method: 'GET', url: passUrl(t.material.passTypeIdentifier, card.serial), headers: card.auth });
    }
    await waitFor(async () => (await getCampaign(t, as, created.id)).status === 'sent', { what: 'the campaign to finish' });
  });
});
