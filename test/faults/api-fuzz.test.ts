import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { LightMyRequestResponse } from 'fastify';
import { adminHeaders, createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { auditDocument, operationsOf, variantsFor, type OpenApiDocument, type Operation, type Variant } from '../support/fuzz.js';

/**
 * The OpenAPI-driven fuzz test (issue #11, "no 5xx from any input"). Every operation in
 * `/docs/json` gets at least 20 malformed requests — wrong types, NUL characters, unpaired
 * surrogates, huge numbers, dates out of range, over-long strings and paths, broken bodies — once
 * with a key that may call it and once without. Then:
 *
 * - no answer is a 5xx;
 * - every error is problem+json (status and code in the body), except the documented HTML pages
 *   (join form, card page) and the PassKit web service's empty 401 (Apple's protocol);
 * - no refused request changed anything: a digest of every table (and of the job queue) is the same
 *   before and after; and no malformed request that may write (POST, PUT, PATCH, DELETE) succeeded.
 *
 * Routes hidden from the document (cabinet sign-in, health, metrics) are fuzzed the same way for
 * "no 5xx". The figures are printed for the report.
 */

interface Outcome {
  op: string;
  variant: string;
  auth: string;
  status: number;
  contentType: string;
  body: string;
}

// Columns a refused request may still touch by design: when a key was last used (recorded at most
// once a minute, before the request is validated) and a session's sliding expiry.
const VOLATILE_COLUMNS = ['last_used_at', 'last_seen_at', 'expires_at'];
// Tables a GET or a refused sign-in writes by design: join-page views (counted per visitor and
// day), a card page's first view (the migration funnel's "link opened"), pass downloads, failed sign-ins (the throttle's memory), the per-address request counters
// of the rate-limited routes (kept in the database for every instance, issue #13), and the leases
// of scheduled ticks, which run on their own clock.
const SKIPPED_TABLES = new Set([
  'join_view',
  'card_page_view',
  'apple_pass_fetch',
  'sign_in_failure',
  'rate_limit_counter',
  'scheduled_task',
  'kysely_migration',
  'kysely_migration_lock',
]);

describe(`OpenAPI-driven fuzzing: no 5xx, problem details, no state change (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let doc: OpenApiDocument;
  const pathValues: Record<string, string> = {};
  let adminOfA: Record<string, string>;
  let applePass: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false, google: true, joinForm: { postsPerMinute: 100_000 } });
    const A = await createProgramWithKeys(t.app, 'fuzz-a');
    await createProgramWithKeys(t.app, 'fuzz-b');
    adminOfA = A.as('admin');
    const card = await t.app.inject({
      method: 'POST',
      url: '/api/v1/cards',
      headers: A.as('pos'),
      payload: { holder: { name: 'Фаззи Тестов', phone: '+79160000001', email: 'fuzzy@example.com', birthday: '1990-05-01' }, consent: true },
    });
    expect(card.statusCode).toBe(201);
    const purchase = await t.app.inject({
      method: 'POST',
      url: `/api/v1/cards/${card.json().id}/purchases`,
      headers: { ...A.as('pos'), 'idempotency-key': 'fuzz-seed-1' },
      payload: { amount: 150_000, receiptId: 'fuzz-r1' },
    });
    expect(purchase.statusCode).toBe(201);
    const staff = await t.app.inject({ method: 'POST', url: `/api/v1/programs/${A.program.id}/staff`, headers: adminOfA, payload: { name: 'Кассир', role: 'cashier' } });
    const webhook = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: adminOfA, payload: { url: 'https://example.com/hook', events: ['card.issued'] } });
    const campaign = await t.app.inject({
      method: 'POST',
      url: '/api/v1/campaigns',
      headers: adminOfA,
      payload: { name: 'Fuzz', message: { ru: 'Привет', en: 'Hello' }, audience: { all: true } },
    });
    const key = await t.app.inject({ method: 'POST', url: `/api/v1/programs/${A.program.id}/keys`, headers: adminOfA, payload: { role: 'pos', name: 'spare' } });
    for (const res of [staff, webhook, campaign, key]) expect(res.statusCode, res.body).toBe(201);
    const row = await t.database.handle.db.selectFrom('card').select(['apple_serial', 'apple_auth_token', 'public_token', 'number']).where('id', '=', card.json().id).executeTakeFirstOrThrow();
    applePass = { authorization: `ApplePass ${row.apple_auth_token}` };
    const registered = await t.app.inject({
      method: 'POST',
      url: `/apple/v1/devices/fuzzdevice/registrations/${t.material.passTypeIdentifier}/${row.apple_serial}`,
      headers: applePass,
      payload: { pushToken: 'a'.repeat(64) },
    });
    expect(registered.statusCode).toBe(201);
    // The Google object is created by the first save link (a GET that writes, by design): create it now.
    expect((await t.app.inject({ method: 'GET', url: `/c/${row.public_token}/google` })).statusCode).toBe(302);
    Object.assign(pathValues, {
      programId: A.program.id,
      keyId: key.json().id,
      name: 'icon',
      cardId: card.json().id,
      value: row.number,
      purchaseId: purchase.json().purchaseId,
      staffId: staff.json().id,
      webhookId: webhook.json().id,
      campaignId: campaign.json().id,
      deviceLibraryIdentifier: 'fuzzdevice',
      passTypeIdentifier: t.material.passTypeIdentifier,
      serialNumber: row.apple_serial,
      cardToken: row.public_token,
      slug: A.program.slug,
      token: 'A'.repeat(43),
    });
    const res = await t.app.inject({ method: 'GET', url: '/docs/json' });
    doc = res.json();
  });

  afterAll(async () => {
    await t?.close();
  });

  /** A digest of every table's rows (volatile columns left out) and of the job queue. */
  async function snapshot(): Promise<Record<string, string>> {
    const db = t.database.handle.db;
    const tables = await sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`.execute(db);
    const out: Record<string, string> = {};
    for (const { table_name: table } of tables.rows) {
      if (SKIPPED_TABLES.has(table)) continue;
      const { rows } = await sql<{ digest: string | null }>`
        SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS digest
        FROM (SELECT to_jsonb(t) - ${sql.raw(`array[${VOLATILE_COLUMNS.map((c) => `'${c}'`).join(',')}]`)}::text[] AS x FROM ${sql.table(table)} t) s`.execute(db);
      out[table] = rows[0]?.digest ?? '';
    }
    const jobs = await sql<{ digest: string }>`SELECT md5(coalesce(string_agg(name || ':' || data::text, ',' ORDER BY name, data::text), '')) AS digest FROM pgboss.job`.execute(db);
    out['pgboss.job'] = jobs.rows[0].digest;
    return out;
  }

  /** Which credentials may call an operation: the instance key for program management, the program's admin key, or the pass's ApplePass token. */
  function authFor(op: Operation): { name: string; headers: Record<string, string> }[] {
    const none = { name: 'no key', headers: {} };
    if (op.path.startsWith('/apple/')) return [none, { name: 'ApplePass token', headers: applePass }];
    if (!op.path.startsWith('/api/')) return [none];
    const instance = op.path === '/api/v1/programs';
    return [none, { name: instance ? 'instance key' : 'program admin key', headers: instance ? adminHeaders : adminOfA }];
  }

  const bodies: Record<string, unknown> = {
    'POST /api/v1/programs': { slug: 'fuzz-new', name: 'Fuzz' },
    'PATCH /api/v1/programs/{programId}': { name: 'Fuzz renamed' },
    'POST /api/v1/programs/{programId}/keys': { role: 'pos', name: 'k' },
    'POST /api/v1/cards': { holder: { name: 'Фаззи', phone: '+79160001122' }, consent: true },
    'POST /api/v1/cards/{cardId}/adjustments': { points: 10, reason: 'fuzz' },
    'POST /api/v1/cards/{cardId}/purchases': { amount: 10_000 },
    'POST /api/v1/programs/{programId}/staff': { name: 'S', role: 'cashier' },
    'PATCH /api/v1/programs/{programId}/staff/{staffId}': { name: 'S2' },
    'POST /api/v1/programs/{programId}/staff/{staffId}/password': { password: 'long-enough-password' },
    'POST /api/v1/webhooks': { url: 'https://example.com/h', events: ['card.issued'] },
    'PATCH /api/v1/webhooks/{webhookId}': { enabled: true },
    'POST /api/v1/campaigns': { name: 'C', message: { ru: 'a', en: 'a' }, audience: { all: true } },
    'POST /apple/v1/devices/{deviceLibraryIdentifier}/registrations/{passTypeIdentifier}/{serialNumber}': { pushToken: 'b'.repeat(64) },
    'POST /apple/v1/log': { logs: ['x'] },
  };

  // Routes the OpenAPI document does not list (HTML cabinet, health, metrics): fuzzed for "no 5xx".
  const hidden: Operation[] = [
    ['GET', '/'],
    ['GET', '/livez'],
    ['GET', '/readyz'],
    ['GET', '/metrics'],
    ['GET', '/app'],
    ['GET', '/app/sign-in'],
    ['POST', '/app/sign-in'],
    ['GET', '/app/sign-in/link/{token}'],
    ['POST', '/app/sign-in/link/{token}'],
    ['GET', '/app/reset/{token}'],
    ['GET', '/app/cashier/cards/{cardId}'],
    ['GET', '/app/qr/materials/{format}'],
  ].map(([method, path]) => ({
    method,
    path,
    pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map((m) => ({ name: m[1], in: 'path' as const })),
    queryParams: [],
    headerParams: [],
  }));

  // Answers that are errors by design but not problem+json: HTML pages for people, and Apple's empty 401.
  function errorFormatAllowed(op: Operation, res: LightMyRequestResponse): boolean {
    const type = String(res.headers['content-type'] ?? '');
    if (op.path.startsWith('/apple/') && res.statusCode === 401 && res.body === '') return true;
    // The verify route answers a form post with pages and a JSON post with problem details; the
    // plastic-card form ("I already have a card") is pages only, like the join form.
    const htmlPage =
      op.path === '/join/{slug}' || op.path === '/join/{slug}/verify' || op.path === '/join/{slug}/have-card' || op.path === '/c/{cardToken}';
    return htmlPage && type.startsWith('text/html');
  }

  it('every number, date, string and array a request may carry is bounded (the OpenAPI document says so)', () => {
    // Accepted on purpose: loyalty rules are validated by their own bounded schema in the service
    // (src/loyalty/rules.ts, with defaults merged); the Google callback body is a signed token
    // checked by the verifier (16 KB body limit); Apple's device log lines are cut when logged
    // (64 KB body limit, "always 200"); an over-long update tag means "no tag" (reference 1.3).
    const accepted = [
      /^(POST \/api\/v1\/programs|PATCH \/api\/v1\/programs\/\{programId\}) body\.rules: a value of any type$/,
      /^POST \/google\/callback body: a value of any type$/,
      /^POST \/apple\/v1\/log body\.logs\[\]: a string without maxLength$/,
      /^GET \/apple\/v1\/devices\/.* query:passesUpdatedSince: a string without maxLength$/,
    ];
    const unbounded = auditDocument(doc).filter((line) => !accepted.some((re) => re.test(line)));
    expect(unbounded).toEqual([]);
  });

  it('answers every malformed request without a 5xx, as problem details, and changes nothing', async () => {
    const documented = operationsOf(doc);
    // The public routes the issue names must be among them (or among the hidden ones below).
    const paths = new Set([...documented, ...hidden].map((op) => `${op.method} ${op.path}`));
    for (const route of [
      'GET /join/{slug}',
      'POST /join/{slug}',
      'GET /c/{cardToken}',
      'GET /c/{cardToken}/card.pkpass',
      'GET /programs/{slug}/qr.png',
      'GET /programs/{slug}/qr.svg',
      'GET /apple/v1/passes/{passTypeIdentifier}/{serialNumber}',
      'POST /apple/v1/devices/{deviceLibraryIdentifier}/registrations/{passTypeIdentifier}/{serialNumber}',
      'POST /google/callback',
    ]) {
      expect(paths.has(route), route).toBe(true);
    }

    const before = await snapshot();
    const outcomes: Outcome[] = [];
    const failures: string[] = [];
    let requests = 0;
    const started = Date.now();
    for (const [op, isHidden] of [...documented.map((o) => [o, false] as const), ...hidden.map((o) => [o, true] as const)]) {
      const variants: Variant[] = variantsFor(op, { pathValues, bodies });
      if (!isHidden) expect(variants.length, `${op.method} ${op.path}`).toBeGreaterThanOrEqual(20);
      for (const auth of authFor(op)) {
        for (const variant of variants) {
          const res = await t.app.inject({
            method: op.method as 'GET',
            url: variant.url,
            // The variant's headers last: a broken Authorization replaces the valid one, never the reverse.
            headers: { ...auth.headers, ...variant.headers },
            ...(variant.payload === undefined ? {} : { payload: variant.payload }),
          });
          requests++;
          const where = `${op.method} ${op.path} [${variant.name}] (${auth.name}) → ${res.statusCode}`;
          const contentType = String(res.headers['content-type'] ?? '');
          outcomes.push({ op: `${op.method} ${op.path}`, variant: variant.name, auth: auth.name, status: res.statusCode, contentType, body: res.body.slice(0, 200) });
          if (res.statusCode >= 500) {
            failures.push(`${where}: ${res.body.slice(0, 300)}`);
            continue;
          }
          if (isHidden) continue;
          if (res.statusCode >= 400 && !errorFormatAllowed(op, res)) {
            if (!contentType.startsWith('application/problem+json')) failures.push(`${where}: not problem+json (${contentType}) ${res.body.slice(0, 120)}`);
            else {
              const body = res.json();
              if (body.status !== res.statusCode || typeof body.code !== 'string') failures.push(`${where}: problem body ${res.body.slice(0, 200)}`);
            }
          }
          // Apple's device log is "always 200" and stores nothing (reference 1.2).
          const writes = !['GET', 'HEAD'].includes(op.method) && op.path !== '/apple/v1/log';
          if (writes && res.statusCode < 400) failures.push(`${where}: a malformed request was accepted ${res.body.slice(0, 200)}`);
        }
      }
    }
    const after = await snapshot();
    const changed = Object.keys(before).filter((table) => before[table] !== after[table]);

    const byStatus = new Map<number, number>();
    for (const o of outcomes) byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
    const fiveXx = outcomes.filter((o) => o.status >= 500).length;
    console.log(
      `[fuzz] ${TEST_DATABASE_KIND}: ${documented.length} documented operations + ${hidden.length} hidden routes, ${requests} requests, ` +
        `5xx: ${fiveXx}, statuses: ${[...byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ')}, ` +
        `tables unchanged: ${Object.keys(before).length - changed.length}/${Object.keys(before).length}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    expect(failures.slice(0, 40), `${failures.length} failures`).toEqual([]);
    expect(changed).toEqual([]);
  });
});
