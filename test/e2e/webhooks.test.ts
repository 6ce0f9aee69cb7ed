import { createHmac, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createProgramWithKeys, sleep, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { issueCard as issueAppleCard, register, registrationUrl } from '../support/apple-device.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { signCallback } from '../support/google-fake.js';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../support/webhook-receiver.js';
import { emitEvent } from '../../src/webhooks/events.js';
import { pruneWebhookLog } from '../../src/webhooks/delivery.js';

// Webhooks end to end: subscriptions through the API, events emitted in the business transactions,
// signed deliveries to a local receiver, retries, disabling, tenant isolation and the outbox rule
// (an event is delivered if and only if its change committed).
describe(`Webhooks (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let phone = 0;
  const nextPhone = () => `+7916${String(5_000_000 + ++phone)}`;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    // Short retry delays and disable span (deps override, not configuration).
    // The receiver is on 127.0.0.1: private networks must be allowed explicitly (src/webhooks/url-policy.ts).
    t = await startTestApp({ google: true, env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' }, webhooks: { retryDelaysSeconds: [0.2, 0.2, 0.2, 0.2, 0.2, 0.2], disableAfterSeconds: 1.5, timeoutMs: 2000 } });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  type As = Awaited<ReturnType<typeof createProgramWithKeys>>['as'];

  async function subscribe(as: As, path: string, events: string[] = ALL_EVENTS) {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: as('marketer'), payload: { url: receiver.url(path), events } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; secret: string; url: string; events: string[]; enabled: boolean };
  }

  async function issue(as: As, extra: Record<string, unknown> = {}) {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Holder', phone: nextPhone() }, ...extra } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; number: string; balance: number; installUrl: string; googleSaveUrl: string };
  }

  async function purchase(as: As, cardId: string, payload: Record<string, unknown>) {
    return t.app.inject({ method: 'POST', url: `/api/v1/cards/${cardId}/purchases`, headers: { ...as('pos'), 'idempotency-key': `p-${Math.random()}` }, payload });
  }

  const eventsAt = (path: string, type?: string, cardId?: string) =>
    receiver.at(path).filter((r) => (type === undefined || r.json?.type === type) && (cardId === undefined || r.json?.data?.cardId === cardId));

  async function arrived(path: string, type: string, cardId?: string): Promise<ReceivedWebhook> {
    return waitFor(() => eventsAt(path, type, cardId)[0], { what: `${type} at ${path}` });
  }

  function expectSigned(request: ReceivedWebhook, secret: string) {
    const timestamp = String(request.headers['webhook-timestamp']);
    const expected = createHmac('sha256', secret).update(`${timestamp}.${request.body}`).digest('hex');
    expect(request.method).toBe('POST');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['webhook-signature']).toBe(`v1=${expected}`);
    expect(Math.abs(Date.now() / 1000 - Number(timestamp))).toBeLessThan(30);
    expect(request.headers['webhook-id']).toBe(request.json.id);
    expect(Object.keys(request.json)).toEqual(['id', 'type', 'createdAt', 'programId', 'data']);
    expect(new Date(request.json.createdAt).toISOString()).toBe(request.json.createdAt);
  }

  const ALL_EVENTS = ['card.issued', 'card.installed', 'card.removed', 'balance.changed', 'tier.changed', 'purchase.created', 'purchase.refunded', 'campaign.finished'];

  it('manages webhooks: roles, URL rules, the secret shown once and never again', async () => {
    const { app } = t;
    const { as } = await createProgramWithKeys(app, 'wh-manage');
    const other = await createProgramWithKeys(app, 'wh-manage-other');
    const post = (headers: Record<string, string>, payload: unknown) => app.inject({ method: 'POST', url: '/api/v1/webhooks', headers, payload: payload as object });
    const good = { url: receiver.url('/manage'), events: ['card.issued'] };

    expect((await post(as('pos'), good)).statusCode).toBe(403);
    expect((await post(adminHeaders, good)).json().code).toBe('program_key_required');
    expect((await app.inject({ method: 'GET', url: '/api/v1/webhooks' })).statusCode).toBe(401);
    for (const url of ['http://example.com/hook', 'ftp://example.com/hook', 'https://user:pw@example.com/hook', 'https://example.com/hook#x', 'https://0.0.0.0/hook', 'https://169.254.169.254/latest', 'https://[::ffff:10.1.2.3]/hook', 'not a url']) {
      const res = await post(as('admin'), { url, events: ['card.issued'] });
      expect(res.statusCode, url).toBe(422);
      expect(res.json().code).toBe('invalid_webhook_url');
    }
    const badEvents = await post(as('admin'), { url: good.url, events: ['card.exploded'] });
    expect(badEvents.statusCode).toBe(400);
    expect(badEvents.json().code).toBe('validation_failed');
    expect((await post(as('admin'), { url: good.url, events: [] })).statusCode).toBe(400);
    expect((await post(as('admin'), { ...good, extra: 1 })).statusCode).toBe(400);

    expect((await post(as('admin'), { url: good.url, events: ['card.issued', 'card.issued'] })).statusCode).toBe(400);

    const created = await post(as('marketer'), { url: 'https://hooks.example.com/walletcards', events: ['purchase.created', 'card.issued'] });
    expect(created.statusCode).toBe(201);
    const webhook = created.json();
    expect(webhook.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(webhook).toMatchObject({ url: 'https://hooks.example.com/walletcards', events: ['card.issued', 'purchase.created'], enabled: true, consecutiveFailures: 0, failingSince: null });

    const responses = [
      await app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: as('admin') }),
      await app.inject({ method: 'GET', url: `/api/v1/webhooks/${webhook.id}`, headers: as('marketer') }),
      await app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${webhook.id}`, headers: as('admin'), payload: { events: ['card.issued', 'tier.changed'] } }),
      await app.inject({ method: 'GET', url: `/api/v1/webhooks/${webhook.id}/deliveries`, headers: as('admin') }),
    ];
    for (const res of responses) {
      expect(res.statusCode, res.body).toBe(200);
      expect(res.body).not.toContain(webhook.secret);
      expect(res.body).not.toContain('"secret"');
    }
    expect(responses[0].json().items).toHaveLength(1);
    expect(responses[2].json().events).toEqual(['card.issued', 'tier.changed']);
    expect(responses[3].json()).toEqual({ items: [], nextBefore: null });
    const patchedUrl = await app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${webhook.id}`, headers: as('admin'), payload: { url: 'http://hooks.example.com/x' } });
    expect(patchedUrl.json().code).toBe('invalid_webhook_url');
    expect((await app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${webhook.id}`, headers: as('admin'), payload: {} })).statusCode).toBe(400);

    // Another program's key learns nothing about it.
    expect((await app.inject({ method: 'GET', url: `/api/v1/webhooks/${webhook.id}`, headers: other.as('admin') })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${webhook.id}`, headers: other.as('admin') })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: other.as('admin') })).json().items).toEqual([]);

    // Rotation shows the new secret once.
    const rotated = await app.inject({ method: 'POST', url: `/api/v1/webhooks/${webhook.id}/rotate-secret`, headers: as('admin') });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json().secret).toMatch(/^whsec_/);
    expect(rotated.json().secret).not.toBe(webhook.secret);
    const after = await app.inject({ method: 'GET', url: `/api/v1/webhooks/${webhook.id}`, headers: as('admin') });
    expect(after.body).not.toContain(rotated.json().secret);

    // At most 10 per program.
    for (let i = 1; i < 10; i++) expect((await post(as('admin'), good)).statusCode).toBe(201);
    const tooMany = await post(as('admin'), good);
    expect(tooMany.statusCode).toBe(422);
    expect(tooMany.json().code).toBe('webhook_limit_reached');

    expect((await app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${webhook.id}`, headers: as('admin') })).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: `/api/v1/webhooks/${webhook.id}`, headers: as('admin') })).json().code).toBe('webhook_not_found');
  });

  it('delivers every event type, signed, for the action that caused it, and only to its own program', async () => {
    const { app } = t;
    const a = await createProgramWithKeys(app, 'wh-a');
    const b = await createProgramWithKeys(app, 'wh-b');
    const quiet = await createProgramWithKeys(app, 'wh-quiet');
    const hookA = await subscribe(a.as, '/a');
    const hookB = await subscribe(b.as, '/b');

    // Issue: card.issued (+ balance.changed for the welcome bonus).
    const card = await issue(a.as, { externalId: 'crm-42', source: 'till' });
    const issued = await arrived('/a', 'card.issued', card.id);
    expectSigned(issued, hookA.secret);
    expect(issued.json).toMatchObject({
      type: 'card.issued',
      programId: a.program.id,
      data: { cardId: card.id, number: card.number, tier: 'standard', balance: 1000, externalId: 'crm-42', source: 'till', referredBy: null, staffId: null },
    });
    expect(issued.body).not.toContain('+7916'); // no personal data in payloads
    const welcome = await arrived('/a', 'balance.changed', card.id);
    expectSigned(welcome, hookA.secret);
    expect(welcome.json.data).toMatchObject({ oldBalance: 0, newBalance: 1000, delta: 1000, entries: [{ kind: 'welcome', points: 1000 }], purchaseId: null });

    // A purchase that crosses the tier threshold: balance.changed, tier.changed, purchase.created.
    const big = await purchase(a.as, card.id, { amount: 6_000_000, redeemPoints: 100, receiptId: 'r-1' });
    expect(big.statusCode, big.body).toBe(201);
    const result = big.json();
    expect(result.tierChanged).toBe(true);
    const created = await arrived('/a', 'purchase.created', card.id);
    expectSigned(created, hookA.secret);
    expect(created.json.data).toEqual({
      purchaseId: result.purchaseId,
      cardId: card.id,
      amount: 6_000_000,
      redeemed: 100,
      accrued: result.accrued,
      payable: result.payable,
      storeId: null,
      receiptId: 'r-1',
      balance: result.balance,
      tier: 'general',
      tierChanged: true,
    });
    const tier = await arrived('/a', 'tier.changed', card.id);
    expectSigned(tier, hookA.secret);
    expect(tier.json.data).toEqual({ cardId: card.id, number: card.number, oldTier: 'standard', newTier: 'general' });
    await waitFor(() => eventsAt('/a', 'balance.changed', card.id).length === 2, { what: 'the purchase balance.changed' });
    const moved = eventsAt('/a', 'balance.changed', card.id).find((r) => r.json.data.purchaseId === result.purchaseId)!;
    expect(moved.json.data).toMatchObject({ oldBalance: 1000, newBalance: result.balance, delta: result.accrued - 100 });
    expect(moved.json.data.entries).toEqual([
      { kind: 'redemption', points: -100, reason: null },
      { kind: 'accrual', points: result.accrued, reason: null },
    ]);

    // A refund: purchase.refunded.
    const refund = await app.inject({ method: 'POST', url: `/api/v1/purchases/${result.purchaseId}/refund`, headers: a.as('pos') });
    expect(refund.statusCode, refund.body).toBe(200);
    const refunded = await arrived('/a', 'purchase.refunded', card.id);
    expectSigned(refunded, hookA.secret);
    expect(refunded.json.data).toMatchObject({ purchaseId: result.purchaseId, pointsReturned: 100, pointsReversed: result.accrued, balance: refund.json().balance });

    // Apple: the first device registering is an install; the last one leaving, a removal.
    const appleCard = await issueAppleCard(t, a.as);
    await register(t, 'wh-device-1', appleCard, 'b'.repeat(64));
    const installed = await arrived('/a', 'card.installed', appleCard.id);
    expectSigned(installed, hookA.secret);
    expect(installed.json.data).toEqual({ cardId: appleCard.id, wallet: 'apple' });
    await register(t, 'wh-device-2', appleCard, 'c'.repeat(64)); // a second device is no new install
    const unregister = (device: string) =>
      app.inject({ method: 'DELETE', url: registrationUrl(device, t.material.passTypeIdentifier, appleCard.serial), headers: appleCard.auth });
    expect((await unregister('wh-device-1')).statusCode).toBe(200);
    expect((await unregister('wh-device-2')).statusCode).toBe(200);
    const removed = await arrived('/a', 'card.removed', appleCard.id);
    expect(removed.json.data).toEqual({ cardId: appleCard.id, wallet: 'apple' });
    expect(eventsAt('/a', 'card.installed', appleCard.id)).toHaveLength(1);

    // Google: the save callback is an install.
    const link = await app.inject({ method: 'GET', url: new URL(card.googleSaveUrl).pathname });
    expect(link.statusCode).toBe(302);
    const object = await t.database.handle.db.selectFrom('google_object').selectAll().where('card_id', '=', card.id).executeTakeFirstOrThrow();
    const { callbackKeys, issuerId } = t.google!;
    const save = signCallback({ keys: callbackKeys, issuerId, eventType: 'save', objectId: object.object_id, classId: object.class_id, nonce: 'wh-nonce-1' });
    expect((await app.inject({ method: 'POST', url: '/google/callback', payload: save })).json()).toEqual({ status: 'recorded' });
    const googleInstalled = await arrived('/a', 'card.installed', card.id);
    expect(googleInstalled.json.data).toEqual({ cardId: card.id, wallet: 'google' });

    // campaign.finished is emitted by the campaigns module through the same function.
    await t.database.handle.db.transaction().execute((trx) =>
      emitEvent(trx, { programId: a.program.id, type: 'campaign.finished', data: { campaignId: 'c-1', targeted: 3, processed: 3 } }),
    );
    expect((await arrived('/a', 'campaign.finished')).json.data).toEqual({ campaignId: 'c-1', targeted: 3, processed: 3 });

    // Program B got none of it; the quiet program (no webhooks) emitted nothing at all.
    const quietCard = await issue(quiet.as);
    expect((await purchase(quiet.as, quietCard.id, { amount: 10_000 })).statusCode).toBe(201);
    const bCard = await issue(b.as);
    const bIssued = await arrived('/b', 'card.issued', bCard.id);
    expectSigned(bIssued, hookB.secret);
    expect(bIssued.json.programId).toBe(b.program.id);
    await sleep(1000);
    expect(receiver.at('/b').every((r) => r.json.programId === b.program.id)).toBe(true);
    expect(receiver.at('/b').map((r) => r.json.type).sort()).toEqual(['balance.changed', 'card.issued']);
    expect(receiver.at('/a').every((r) => r.json.programId === a.program.id)).toBe(true);
    const quietEvents = await t.database.handle.db.selectFrom('webhook_event').select('id').where('program_id', '=', quiet.program.id).execute();
    expect(quietEvents).toEqual([]);
    expect(receiver.received.some((r) => JSON.stringify(r.json).includes(quietCard.id))).toBe(false);

    // Every event reached /a once, and the delivery log says so.
    const ids = receiver.at('/a').map((r) => r.json.id);
    expect(new Set(ids).size).toBe(ids.length);
    const log = await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hookA.id}/deliveries?limit=5`, headers: a.as('admin') });
    expect(log.statusCode).toBe(200);
    expect(log.json().items).toHaveLength(5);
    expect(log.json().nextBefore).toEqual(expect.any(Number));
    for (const d of log.json().items) {
      expect(d).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200, lastError: null, nextAttemptAt: null });
      expect(ids).toContain(d.eventId);
    }
    const older = await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hookA.id}/deliveries?limit=200&before=${log.json().nextBefore}`, headers: a.as('admin') });
    expect(log.json().items.length + older.json().items.length).toBe(ids.length);
  });

  it('emits nothing for a change that rolled back', async () => {
    const { app } = t;
    const { as, program } = await createProgramWithKeys(app, 'wh-rollback');
    await subscribe(as, '/rollback');
    const card = await issue(as);
    await arrived('/rollback', 'card.issued', card.id);
    // The welcome bonus's balance.changed is the issue's second event: counted once it is in, so
    // a late delivery of it is not taken for an event of the rolled-back work below.
    await arrived('/rollback', 'balance.changed', card.id);
    const before = receiver.at('/rollback').length;

    // A refused redemption changes nothing and emits nothing.
    const refused = await purchase(as, card.id, { amount: 100_000, redeemPoints: 5000 });
    expect(refused.statusCode).toBe(422);
    // A transaction that emitted an event and then failed takes the event with it.
    await expect(
      t.database.handle.db.transaction().execute(async (trx) => {
        const id = await emitEvent(trx, { programId: program.id, type: 'campaign.finished', data: { campaignId: 'rolled-back' } });
        expect(id).toEqual(expect.any(String));
        throw new Error('business failure');
      }),
    ).rejects.toThrow('business failure');
    await sleep(1500);
    expect(receiver.at('/rollback')).toHaveLength(before);
    const events = await t.database.handle.db.selectFrom('webhook_event').select('type').where('program_id', '=', program.id).execute();
    expect(events.map((e) => e.type).sort()).toEqual(['balance.changed', 'card.issued']);
  });

  it('never fails the business change for a webhook problem', async () => {
    const { app } = t;
    const { as, program } = await createProgramWithKeys(app, 'wh-broken');
    await subscribe(as, '/broken');
    const db = t.database.handle.db;
    // The outbox insert fails (as a full disk or a bug would): the purchase still commits.
    await sql`CREATE FUNCTION wh_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'webhook outbox unavailable'; END $$`.execute(db);
    await sql`CREATE TRIGGER wh_test_refuse BEFORE INSERT ON webhook_delivery FOR EACH ROW EXECUTE FUNCTION wh_test_refuse()`.execute(db);
    try {
      const card = await issue(as);
      const bought = await purchase(as, card.id, { amount: 50_000 });
      expect(bought.statusCode, bought.body).toBe(201);
      const row = await db.selectFrom('card').select('balance').where('id', '=', card.id).executeTakeFirstOrThrow();
      expect(row.balance).toBe(bought.json().balance);
      const events = await db.selectFrom('webhook_event').select('id').where('program_id', '=', program.id).execute();
      expect(events).toEqual([]);
    } finally {
      await sql`DROP TRIGGER wh_test_refuse ON webhook_delivery`.execute(db);
      await sql`DROP FUNCTION wh_test_refuse()`.execute(db);
    }
  });

  it('retries a failing endpoint with backoff, then disables it; re-enabling resumes delivery', async () => {
    const { app } = t;
    const { as } = await createProgramWithKeys(app, 'wh-failing');
    receiver.respond('/failing', 500);
    const hook = await subscribe(as, '/failing', ['card.issued']);
    const first = await issue(as);

    const disabled = await waitFor(
      async () => {
        const res = (await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}`, headers: as('admin') })).json();
        return res.enabled === false ? res : undefined;
      },
      { what: 'the endpoint to be disabled' },
    );
    expect(disabled.disabledReason).toMatch(/HTTP 500/);
    expect(disabled.disabledAt).toEqual(expect.any(String));
    expect(disabled.consecutiveFailures).toBeGreaterThanOrEqual(2);
    const attempts = eventsAt('/failing', 'card.issued', first.id);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    // Every attempt carries the same event id, each freshly signed.
    expect(new Set(attempts.map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const attempt of attempts) expectSigned(attempt, hook.secret);
    // Backoff: attempts are spaced by at least the retry delay.
    for (let i = 1; i < attempts.length; i++) expect(attempts[i].at - attempts[i - 1].at).toBeGreaterThanOrEqual(150);

    const log = (await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}/deliveries`, headers: as('admin') })).json();
    expect(log.items).toHaveLength(1);
    expect(log.items[0]).toMatchObject({ eventId: attempts[0].json.id, type: 'card.issued', status: 'failed', attempts: attempts.length, lastStatusCode: 500, nextAttemptAt: null, deliveredAt: null });
    expect(log.items[0].lastError).toMatch(/HTTP 500/);

    // Disabled: new events are not even queued for it.
    const seen = receiver.at('/failing').length;
    const second = await issue(as);
    await sleep(1500);
    expect(receiver.at('/failing')).toHaveLength(seen);
    expect((await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}/deliveries`, headers: as('admin') })).json().items).toHaveLength(1);
    expect(eventsAt('/failing', 'card.issued', second.id)).toHaveLength(0);

    // Re-enabled through PATCH (the receiver is fixed): the failure state is cleared, delivery resumes.
    receiver.respond('/failing', 204);
    const enabled = await app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${hook.id}`, headers: as('marketer'), payload: { enabled: true } });
    expect(enabled.json()).toMatchObject({ enabled: true, disabledAt: null, disabledReason: null, failingSince: null, consecutiveFailures: 0 });
    const third = await issue(as);
    expectSigned(await arrived('/failing', 'card.issued', third.id), hook.secret);
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}`, headers: as('admin') })).json().lastSuccessAt, {
      what: 'lastSuccessAt',
    });
  });

  it('prunes settled events after the retention period, keeping those still being delivered', async () => {
    const { app } = t;
    const { as, program } = await createProgramWithKeys(app, 'wh-prune');
    const hook = await subscribe(as, '/prune', ['card.issued']);
    const delivered = await issue(as);
    await arrived('/prune', 'card.issued', delivered.id);
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}/deliveries?status=delivered`, headers: as('admin') })).json().items.length === 1);
    const db = t.database.handle.db;
    // A pending delivery (an attempt waiting for its retry) is never pruned.
    const waiting = randomUUID();
    await db.insertInto('webhook_event').values({ id: waiting, program_id: program.id, type: 'card.issued', data: '{}' }).execute();
    await db.insertInto('webhook_delivery').values({ endpoint_id: hook.id, event_id: waiting }).execute();
    await db.updateTable('webhook_event').set({ created_at: sql<Date>`now() - interval '31 days'` }).where('program_id', '=', program.id).execute();
    expect(await pruneWebhookLog(db, 30)).toBe(1);
    const left = await db.selectFrom('webhook_event').select('id').where('program_id', '=', program.id).execute();
    expect(left.map((e) => e.id)).toEqual([waiting]);
    const deliveries = await db.selectFrom('webhook_delivery').select(['event_id', 'status']).where('endpoint_id', '=', hook.id).execute();
    expect(deliveries).toEqual([{ event_id: waiting, status: 'pending' }]);
    // Younger events stay.
    await db.updateTable('webhook_event').set({ created_at: sql<Date>`now() - interval '29 days'` }).where('id', '=', waiting).execute();
    await db.updateTable('webhook_delivery').set({ status: 'failed' }).where('event_id', '=', waiting).execute();
    expect(await pruneWebhookLog(db, 30)).toBe(0);
  });

  it('never follows a redirect', async () => {
    const { app } = t;
    const { as } = await createProgramWithKeys(app, 'wh-redirect');
    receiver.respond('/redirect', 302, { location: receiver.url('/redirect-target') });
    const hook = await subscribe(as, '/redirect', ['card.issued']);
    await issue(as);
    const delivery = await waitFor(
      async () => {
        const [item] = (await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}/deliveries`, headers: as('admin') })).json().items;
        return item?.attempts >= 1 ? item : undefined;
      },
      { what: 'the first attempt' },
    );
    expect(delivery.lastStatusCode).toBe(302);
    expect(delivery.lastError).toMatch(/redirects are not followed/);
    expect(receiver.at('/redirect-target')).toHaveLength(0);
    // Stop the retries.
    await app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${hook.id}`, headers: as('admin'), payload: { enabled: false } });
    const settled = (await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}/deliveries`, headers: as('admin') })).json().items[0];
    expect(settled.status === 'failed' || settled.status === 'pending').toBe(true);
  });
});
