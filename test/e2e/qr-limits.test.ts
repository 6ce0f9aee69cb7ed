import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QR_SIZE, QrRenderer } from '../../src/enrollment/qr.js';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { decodePng } from '../support/png.js';

/**
 * The public QR endpoints cannot stall the service (issue #11: eight 4096-pixel PNGs in parallel
 * kept /livez waiting 26 s): a size ceiling, a cache, PNGs drawn on a worker thread with a bounded
 * queue. Proved by counting and ordering, never by timing.
 */
describe(`QR code limits (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false });
    await createProgramWithKeys(t.app, 'qr-limits');
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`refuses sizes above ${QR_SIZE.max} pixels with a 400 problem and serves the ceiling itself`, async () => {
    for (const size of [QR_SIZE.max + 1, 4096, 20_000]) {
      const res = await t.app.inject({ method: 'GET', url: `/programs/qr-limits/qr.png?size=${size}` });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect((await t.app.inject({ method: 'GET', url: `/programs/qr-limits/qr.svg?size=${size}` })).statusCode).toBe(400);
    }
    const top = await t.app.inject({ method: 'GET', url: `/programs/qr-limits/qr.png?size=${QR_SIZE.max}&source=ceiling` });
    expect(top.statusCode).toBe(200);
    expect(decodePng(top.rawPayload).width).toBe(QR_SIZE.max);
  });

  it('draws a code once: the same link and size again come from the cache', async () => {
    const url = '/programs/qr-limits/qr.png?size=300&source=cache-check';
    const before = t.app.ctx.qr.rendered;
    const first = await t.app.inject({ method: 'GET', url });
    const again = await Promise.all([1, 2, 3].map(() => t.app.inject({ method: 'GET', url })));
    expect(first.statusCode).toBe(200);
    for (const res of again) expect(res.rawPayload.equals(first.rawPayload)).toBe(true);
    expect(t.app.ctx.qr.rendered - before).toBe(1);
    // Another size is another code.
    await t.app.inject({ method: 'GET', url: '/programs/qr-limits/qr.png?size=310&source=cache-check' });
    expect(t.app.ctx.qr.rendered - before).toBe(2);
  });

  it('keeps answering /livez while large QR codes are being drawn (they are drawn off the main thread)', async () => {
    const qr = t.app.ctx.qr;
    // Six distinct codes at the ceiling (distinct sources: no cache hits), all sent at once.
    const drawing = Array.from({ length: 6 }, (_v, i) => t.app.inject({ method: 'GET', url: `/programs/qr-limits/qr.png?size=${QR_SIZE.max}&source=stall-${i}` }));
    // Wait until the worker has all of them.
    while (qr.pending < 6) await new Promise((resolve) => setImmediate(resolve));
    // Twenty health checks, one after another, each answered while codes are still being drawn: a
    // renderer on the main thread would finish a whole code between two of our turns and could
    // never be seen with work outstanding here.
    const seenPending: number[] = [];
    for (let i = 0; i < 20; i++) {
      const live = await t.app.inject({ method: 'GET', url: '/livez' });
      expect(live.statusCode).toBe(200);
      seenPending.push(qr.pending);
    }
    expect(Math.min(...seenPending)).toBeGreaterThan(0);
    const done = await Promise.all(drawing);
    expect(done.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(qr.pending).toBe(0);
  });

  it('refuses more than its queue holds with 503 qr_busy instead of piling work up', async () => {
    const renderer = new QrRenderer({ maxPending: 2 });
    try {
      const accepted = [renderer.png('https://wallet.test/join/a', 1500), renderer.png('https://wallet.test/join/b', 1500)];
      await expect(renderer.png('https://wallet.test/join/c', 1500)).rejects.toMatchObject({ status: 503, code: 'qr_busy', details: { retryAfterSeconds: 5 } });
      const pngs = await Promise.all(accepted);
      expect(pngs.map((png) => decodePng(png).width)).toEqual([1500, 1500]);
      // With the queue drained, the same code is drawn.
      expect(decodePng(await renderer.png('https://wallet.test/join/c', 200)).width).toBe(200);
    } finally {
      await renderer.close();
    }
  });
});
