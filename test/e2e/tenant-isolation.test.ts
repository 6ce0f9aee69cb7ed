import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { hashApiKey } from '../../src/http/auth.js';
import { adminHeaders, createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Two programs on one instance: no key of one program may read or change the other's cards,
// purchases, settings, keys or images; roles and key states are enforced on every endpoint.

type Role = 'admin' | 'marketer' | 'pos';
type Headers = Record<string, string>;
type Tenant = Awaited<ReturnType<typeof createProgramWithKeys>>;

// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

interface Endpoint {
  name: string;
  /** card: program-key endpoints (requireProgramRole); program: settings (instance or program admin). */
  kind: 'card' | 'program';
  /** Program roles allowed on the endpoint. */
  roles: Role[];
  request: () => InjectOptions;
}

function expectProblem(res: LightMyRequestResponse, status: number, code?: string, context = '') {
  expect(res.statusCode, `${context} ${res.body}`).toBe(status);
  expect(res.headers['content-type'], context).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body, context).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String), requestId: expect.any(String) });
  if (code) expect(body.code, context).toBe(code);
  return body;
}

describe(`tenant isolation and key roles (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let A: Tenant;
  let B: Tenant;
  let cardA: any;
  let cardB: any;
  let purchaseA: string;
  let keyIdsA: Record<Role, string>;
  let keyIdsB: Record<Role, string>;
  /** Strings that identify A's data; none may appear in a response to B. */
  let secretsOfA: string[];

  const db = () => t.database.handle.db;
  const inject = (options: InjectOptions) => t.app.inject(options);

  async function keyIds(tenant: Tenant) {
    const res = await inject({ method: 'GET', url: `/api/v1/programs/${tenant.program.id}/keys`, headers: adminHeaders });
    expect(res.statusCode).toBe(200);
    const ids = {} as Record<Role, string>;
    for (const key of res.json() as { id: string; role: Role }[]) ids[key.role] = key.id;
    return ids;
  }

  async function stateOfA() {
    const card = await db().selectFrom('card').selectAll().where('id', '=', cardA.id).executeTakeFirstOrThrow();
    const purchases = await db().selectFrom('purchase').select(['id', 'status']).where('program_id', '=', A.program.id).orderBy('id').execute();
    const ledger = await db().selectFrom('ledger_entry').select('id').where('program_id', '=', A.program.id).execute();
    const cards = await db().selectFrom('card').select('id').where('program_id', '=', A.program.id).execute();
    const keys = await db().selectFrom('api_key').select(['id', 'role', 'name', 'revoked_at']).where('program_id', '=', A.program.id).orderBy('id').execute();
    const program = await db().selectFrom('program').select(['name', 'rules', 'design', 'updated_at']).where('id', '=', A.program.id).executeTakeFirstOrThrow();
    const images = await db().selectFrom('program_image').select('name').where('program_id', '=', A.program.id).execute();
    return {
      balance: card.balance,
      spend: card.lifetime_spend,
      tier: card.tier,
      purchases,
      ledgerRows: ledger.length,
      cards: cards.length,
      keys,
      program,
      images: images.length,
    };
  }

  beforeAll(async () => {
    t = await startTestApp();
    A = await createProgramWithKeys(t.app, 'tenant-a');
    B = await createProgramWithKeys(t.app, 'tenant-b');
    const issuedA = await inject({
      method: 'POST',
      url: '/api/v1/cards',
      headers: A.as('pos'),
      payload: { holder: { name: 'Алиса Альфа', phone: '+79161112233', email: 'alice@a.example', birthday: '1991-02-03' } },
    });
    expect(issuedA.statusCode).toBe(201);
    cardA = issuedA.json();
    // B's holder has a name with the same prefix, so a name search in B has something to find.
    const issuedB = await inject({ method: 'POST', url: '/api/v1/cards', headers: B.as('pos'), payload: { holder: { name: 'Алиса Бета', phone: '+79035556677' } } });
    expect(issuedB.statusCode).toBe(201);
    cardB = issuedB.json();
    const bought = await inject({ method: 'POST', url: `/api/v1/cards/${cardA.id}/purchases`, headers: A.as('pos'), payload: { amount: 250000, receiptId: 'A-1' } });
    expect(bought.statusCode).toBe(201);
    purchaseA = bought.json().purchaseId;
    keyIdsA = await keyIds(A);
    keyIdsB = await keyIds(B);
    secretsOfA = [cardA.id, cardA.number, '9161112233', 'Алиса Альфа', 'alice@a.example', cardA.referralCode, purchaseA, cardA.installUrl, A.program.id, A.keys.admin, A.keys.pos];
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Every program-scoped endpoint, aimed at A's resources. */
  const endpoints = (): Endpoint[] => [
    { name: 'GET card', kind: 'card', roles: ['admin', 'pos'], request: () => ({ method: 'GET', url: `/api/v1/cards/${cardA.id}` }) },
    { name: 'GET card by barcode', kind: 'card', roles: ['admin', 'pos'], request: () => ({ method: 'GET', url: `/api/v1/cards/by-barcode/${cardA.number}` }) },
    { name: 'GET card history', kind: 'card', roles: ['admin', 'pos'], request: () => ({ method: 'GET', url: `/api/v1/cards/${cardA.id}/history` }) },
    {
      name: 'POST purchase',
      kind: 'card',
      roles: ['admin', 'pos'],
      request: () => ({ method: 'POST', url: `/api/v1/cards/${cardA.id}/purchases`, payload: { amount: 100000 } }),
    },
    { name: 'POST refund', kind: 'card', roles: ['admin', 'pos'], request: () => ({ method: 'POST', url: `/api/v1/purchases/${purchaseA}/refund` }) },
    {
      name: 'POST adjustment',
      kind: 'card',
      roles: ['admin'],
      request: () => ({ method: 'POST', url: `/api/v1/cards/${cardA.id}/adjustments`, payload: { points: 500, reason: 'probe' } }),
    },
    { name: 'GET program', kind: 'program', roles: ['admin'], request: () => ({ method: 'GET', url: `/api/v1/programs/${A.program.id}` }) },
    {
      name: 'PATCH program',
      kind: 'program',
      roles: ['admin'],
      request: () => ({ method: 'PATCH', url: `/api/v1/programs/${A.program.id}`, payload: { name: 'Hijacked', rules: { ...A.program.rules, welcomeBonus: 999999 } } }),
    },
    { name: 'GET keys', kind: 'program', roles: ['admin'], request: () => ({ method: 'GET', url: `/api/v1/programs/${A.program.id}/keys` }) },
    {
      name: 'POST key',
      kind: 'program',
      roles: ['admin'],
      request: () => ({ method: 'POST', url: `/api/v1/programs/${A.program.id}/keys`, payload: { role: 'admin', name: 'intruder' } }),
    },
    {
      name: 'DELETE key',
      kind: 'program',
      roles: ['admin'],
      request: () => ({ method: 'DELETE', url: `/api/v1/programs/${A.program.id}/keys/${keyIdsA.pos}` }),
    },
    {
      name: 'PUT image',
      kind: 'program',
      roles: ['admin'],
      request: () => ({ method: 'PUT', url: `/api/v1/programs/${A.program.id}/images/logo`, headers: { 'content-type': 'image/png' }, payload: PNG }),
    },
  ];

  const withAuth = (endpoint: Endpoint, auth: Headers): InjectOptions => {
    const request = endpoint.request();
    return { ...request, headers: { ...(request.headers as Headers | undefined), ...auth } };
  };

  it("never lets program B's keys see or change program A's resources (404, or 403 for a role the endpoint refuses)", async () => {
    const before = await stateOfA();
    for (const endpoint of endpoints()) {
      for (const role of ['admin', 'marketer', 'pos'] as const) {
        const context = `B ${role} → ${endpoint.name}`;
        const res = await inject(withAuth(endpoint, B.as(role)));
        expect(res.statusCode, context).not.toBe(200);
        const roleAllowed = endpoint.roles.includes(role);
        // A program endpoint answers 404 to any other program's key (it learns nothing about A);
        // a card endpoint checks the role first (403 says nothing about A) and then answers 404.
        if (endpoint.kind === 'program' || roleAllowed) {
          const body = expectProblem(res, 404, undefined, context);
          expect(body.code, context).toMatch(/^(card|purchase|program|key)_not_found$/);
        } else {
          expectProblem(res, 403, 'forbidden', context);
        }
        for (const secret of secretsOfA) expect(res.body, `${context} leaks ${secret}`).not.toContain(secret);
      }
    }
    // Same with an Idempotency-Key that A already used: B's key space is B's own.
    const withKey = await inject({
      method: 'POST',
      url: `/api/v1/cards/${cardA.id}/purchases`,
      headers: { ...B.as('pos'), 'idempotency-key': 'shared-key' },
      payload: { amount: 100000 },
    });
    expectProblem(withKey, 404, 'card_not_found');

    expect(await stateOfA()).toEqual(before);
    // A's pos key still works (B's DELETE did not revoke it).
    expect((await inject({ method: 'GET', url: `/api/v1/cards/${cardA.id}`, headers: A.as('pos') })).statusCode).toBe(200);
  });

  it("search with B's keys never returns A's cards", async () => {
    const queries = [cardA.number, '+79161112233', '8 916 111-22-33', 'Алиса', 'алиса альфа', 'Ал'];
    for (const query of queries) {
      for (const role of ['admin', 'pos'] as const) {
        const res = await inject({ method: 'GET', url: `/api/v1/cards?query=${encodeURIComponent(query)}`, headers: B.as(role) });
        expect(res.statusCode, query).toBe(200);
        const items = res.json().items as { id: string; programId: string }[];
        expect(items.every((c) => c.programId === B.program.id), query).toBe(true);
        expect(items.map((c) => c.id), query).not.toContain(cardA.id);
        for (const secret of secretsOfA) expect(res.body, `${query} leaks ${secret}`).not.toContain(secret);
      }
    }
    // The name search does work in B, and in A.
    const inB = await inject({ method: 'GET', url: `/api/v1/cards?query=${encodeURIComponent('Алиса')}`, headers: B.as('pos') });
    expect(inB.json().items.map((c: { id: string }) => c.id)).toEqual([cardB.id]);
    const inA = await inject({ method: 'GET', url: `/api/v1/cards?query=${encodeURIComponent('Алиса')}`, headers: A.as('pos') });
    expect(inA.json().items.map((c: { id: string }) => c.id)).toEqual([cardA.id]);
    expectProblem(await inject({ method: 'GET', url: '/api/v1/cards?query=Alice', headers: B.as('marketer') }), 403, 'forbidden');
  });

  it("enrolling A's holder phone or referral code with B's key touches nothing of A", async () => {
    const before = await stateOfA();
    const samePhone = await inject({ method: 'POST', url: '/api/v1/cards', headers: B.as('pos'), payload: { holder: { name: 'Другая', phone: '+79161112233' } } });
    expect(samePhone.statusCode).toBe(201); // a new member of B, not A's card
    expect(samePhone.json().id).not.toBe(cardA.id);
    expect(samePhone.json().programId).toBe(B.program.id);
    expect(samePhone.json().balance).toBe(1000);
    for (const secret of secretsOfA) expect(samePhone.body).not.toContain(secret);

    const foreignCode = await inject({
      method: 'POST',
      url: '/api/v1/cards',
      headers: B.as('pos'),
      payload: { holder: { name: 'Третий', phone: '+79267778899' }, referralCode: cardA.referralCode },
    });
    expectProblem(foreignCode, 422, 'referral_code_unknown');
    expect(await stateOfA()).toEqual(before);
  });

  it("refuses A's own weaker roles with 403", async () => {
    const before = await stateOfA();
    const issue: Endpoint = {
      name: 'POST card',
      kind: 'card',
      roles: ['admin', 'pos'],
      request: () => ({ method: 'POST', url: '/api/v1/cards', payload: { holder: { name: 'Новый', phone: '+79169990000' } } }),
    };
    const search: Endpoint = { name: 'GET search', kind: 'card', roles: ['admin', 'pos'], request: () => ({ method: 'GET', url: '/api/v1/cards?query=Алиса' }) };
    for (const endpoint of [...endpoints(), issue, search]) {
      for (const role of ['marketer', 'pos'] as const) {
        if (endpoint.roles.includes(role)) continue;
        const context = `A ${role} → ${endpoint.name}`;
        const res = await inject(withAuth(endpoint, A.as(role)));
        expectProblem(res, 403, 'forbidden', context);
        expect(res.body, context).not.toContain(cardA.number);
      }
    }
    expect(await stateOfA()).toEqual(before);
  });

  it('answers 401 to no key, an unknown key, a malformed header and a revoked key, on every endpoint', async () => {
    // A pos key of A, revoked through the API.
    const created = await inject({ method: 'POST', url: `/api/v1/programs/${A.program.id}/keys`, headers: A.as('admin'), payload: { role: 'pos', name: 'till 9' } });
    expect(created.statusCode).toBe(201);
    const revokedKey: string = created.json().key;
    expect((await inject({ method: 'GET', url: `/api/v1/cards/${cardA.id}`, headers: { authorization: `Bearer ${revokedKey}` } })).statusCode).toBe(200);
    const revoke = await inject({ method: 'DELETE', url: `/api/v1/programs/${A.program.id}/keys/${created.json().id}`, headers: A.as('admin') });
    expect(revoke.statusCode).toBe(204);

    const before = await stateOfA();
    const extra: Endpoint[] = [
      { name: 'POST card', kind: 'card', roles: ['admin', 'pos'], request: () => ({ method: 'POST', url: '/api/v1/cards', payload: { holder: { name: 'X', phone: '+79169990001' } } }) },
      { name: 'GET search', kind: 'card', roles: ['admin', 'pos'], request: () => ({ method: 'GET', url: '/api/v1/cards?query=Алиса' }) },
      { name: 'POST program', kind: 'program', roles: [], request: () => ({ method: 'POST', url: '/api/v1/programs', payload: { slug: 'evil', name: 'Evil' } }) },
      { name: 'GET programs', kind: 'program', roles: [], request: () => ({ method: 'GET', url: '/api/v1/programs' }) },
    ];
    const credentials: [string, Headers][] = [
      ['no key', {}],
      ['unknown key', { authorization: 'Bearer wc_admin_thisKeyDoesNotExist0000000000000000000000' }],
      ['admin key without Bearer', { authorization: A.keys.admin }],
      ['Basic scheme', { authorization: `Basic ${Buffer.from(`x:${A.keys.admin}`).toString('base64')}` }],
      ['revoked key', { authorization: `Bearer ${revokedKey}` }],
      ['hash of a key used as the key', { authorization: `Bearer ${hashApiKey(A.keys.admin)}` }],
    ];
    for (const endpoint of [...endpoints(), ...extra]) {
      for (const [label, auth] of credentials) {
        const res = await inject(withAuth(endpoint, auth));
        expectProblem(res, 401, 'unauthorized', `${label} → ${endpoint.name}`);
        for (const secret of secretsOfA) expect(res.body).not.toContain(secret);
      }
    }
    expect(await stateOfA()).toEqual(before);
  });

  it('refuses the instance admin key on card endpoints with 403 program_key_required', async () => {
    const before = await stateOfA();
    const cardEndpoints = [
      ...endpoints().filter((e) => e.kind === 'card'),
      { name: 'POST card', kind: 'card', roles: [], request: () => ({ method: 'POST', url: '/api/v1/cards', payload: { holder: { name: 'X', phone: '+79169990002' } } }) },
      { name: 'GET search', kind: 'card', roles: [], request: () => ({ method: 'GET', url: '/api/v1/cards?query=Алиса' }) },
    ] as Endpoint[];
    for (const endpoint of cardEndpoints) {
      const res = await inject(withAuth(endpoint, adminHeaders));
      expectProblem(res, 403, 'program_key_required', endpoint.name);
    }
    expect(await stateOfA()).toEqual(before);
  });

  it('lets only the instance key create and list programs', async () => {
    for (const role of ['admin', 'marketer', 'pos'] as const) {
      expectProblem(await inject({ method: 'GET', url: '/api/v1/programs', headers: A.as(role) }), 403, 'forbidden', role);
      expectProblem(
        await inject({ method: 'POST', url: '/api/v1/programs', headers: A.as(role), payload: { slug: `by-${role}`, name: 'x' } }),
        403,
        'forbidden',
        role,
      );
    }
    const list = await inject({ method: 'GET', url: '/api/v1/programs', headers: adminHeaders });
    expect(list.statusCode).toBe(200);
    expect(list.json().map((p: { slug: string }) => p.slug).sort()).toEqual(['tenant-a', 'tenant-b']);
  });

  it("does the work for A's own keys (the refusals above are not just broken endpoints)", async () => {
    for (const endpoint of endpoints()) {
      const res = await inject(withAuth(endpoint, A.as('admin')));
      expect([200, 201, 204], `A admin → ${endpoint.name}: ${res.body}`).toContain(res.statusCode);
    }
    const after = await stateOfA();
    expect(after.program.name).toBe('Hijacked');
    expect(after.images).toBe(1);
    expect(after.purchases.find((p) => p.id === purchaseA)?.status).toBe('refunded');
    expect(after.keys.find((k) => k.id === keyIdsA.pos)?.revoked_at).not.toBeNull();
    // B's data were not touched by A's changes either.
    expect((await inject({ method: 'GET', url: `/api/v1/cards/${cardB.id}`, headers: B.as('pos') })).json().balance).toBe(1000);
    const programB = await inject({ method: 'GET', url: `/api/v1/programs/${B.program.id}`, headers: B.as('admin') });
    expect(programB.json().name).toBe('Program tenant-b');
    expect(programB.json().rules.welcomeBonus).toBe(1000);
    expect((await inject({ method: 'GET', url: `/api/v1/cards/${cardB.id}`, headers: B.as('pos') })).statusCode).toBe(200);
    // The instance key manages both programs.
    const viaInstance = await inject({ method: 'GET', url: `/api/v1/programs/${B.program.id}/keys`, headers: adminHeaders });
    expect(viaInstance.statusCode).toBe(200);
    expect(viaInstance.json().map((k: { id: string }) => k.id).sort()).toEqual(Object.values(keyIdsB).sort());
  });

  it("does not revoke another program's key through this program's path", async () => {
    const res = await inject({ method: 'DELETE', url: `/api/v1/programs/${A.program.id}/keys/${keyIdsB.pos}`, headers: A.as('admin') });
    expectProblem(res, 404, 'key_not_found');
    const viaInstance = await inject({ method: 'DELETE', url: `/api/v1/programs/${A.program.id}/keys/${keyIdsB.pos}`, headers: adminHeaders });
    expectProblem(viaInstance, 404, 'key_not_found');
    const row = await db().selectFrom('api_key').select('revoked_at').where('id', '=', keyIdsB.pos).executeTakeFirstOrThrow();
    expect(row.revoked_at).toBeNull();
    expect((await inject({ method: 'GET', url: `/api/v1/cards/${cardB.id}`, headers: B.as('pos') })).statusCode).toBe(200);
    expectProblem(
      await inject({ method: 'DELETE', url: `/api/v1/programs/${A.program.id}/keys/00000000-0000-4000-8000-000000000000`, headers: A.as('admin') }),
      404,
      'key_not_found',
    );
  });

  it('shows a new key once, never lists it or its hash, and records when it was last used', async () => {
    const created = await inject({ method: 'POST', url: `/api/v1/programs/${B.program.id}/keys`, headers: B.as('admin'), payload: { role: 'pos', name: 'till 2' } });
    expect(created.statusCode).toBe(201);
    const { id, key, role, name } = created.json();
    expect(role).toBe('pos');
    expect(name).toBe('till 2');
    expect(key).toMatch(/^wc_pos_[A-Za-z0-9_-]{40,}$/);
    const stored = await db().selectFrom('api_key').select(['key_hash', 'last_used_at']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(stored.key_hash).toBe(hashApiKey(key));
    expect(stored.key_hash).not.toContain(key);
    expect(stored.last_used_at).toBeNull();

    const listKeys = async () => {
      const res = await inject({ method: 'GET', url: `/api/v1/programs/${B.program.id}/keys`, headers: B.as('admin') });
      expect(res.statusCode).toBe(200);
      for (const secret of [key, stored.key_hash, B.keys.admin, B.keys.pos, B.keys.marketer, hashApiKey(B.keys.pos)]) {
        expect(res.body).not.toContain(secret);
      }
      for (const item of res.json() as Record<string, unknown>[]) {
        expect(Object.keys(item).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'revokedAt', 'role']);
      }
      return res.json() as { id: string; lastUsedAt: string | null; revokedAt: string | null; createdAt: string }[];
    };
    const unused = (await listKeys()).find((k) => k.id === id)!;
    expect(unused.lastUsedAt).toBeNull();
    expect(unused.revokedAt).toBeNull();
    // The program document does not carry keys either.
    const programDoc = await inject({ method: 'GET', url: `/api/v1/programs/${B.program.id}`, headers: adminHeaders });
    expect(programDoc.body).not.toContain(key);
    expect(programDoc.body).not.toContain(stored.key_hash);

    expect((await inject({ method: 'GET', url: `/api/v1/cards/${cardB.id}`, headers: { authorization: `Bearer ${key}` } })).statusCode).toBe(200);
    const used = (await listKeys()).find((k) => k.id === id)!;
    expect(used.lastUsedAt).not.toBeNull();
    expect(new Date(used.lastUsedAt!).getTime()).toBeGreaterThanOrEqual(new Date(used.createdAt).getTime() - 1000);
    const row = await db().selectFrom('api_key').select('last_used_at').where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.last_used_at).not.toBeNull();
    // Keys that were used in this file carry a time; keys never used do not.
    const all = await listKeys();
    expect(all.find((k) => k.id === keyIdsB.pos)!.lastUsedAt).not.toBeNull();
  });
});
