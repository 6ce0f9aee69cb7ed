import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_DATABASE_KIND, type TestDatabase } from '../support/database.js';

// The Citus path (docs/architecture.md, "Beyond one database"): every table carries program_id
// unless it is listed here as instance-wide, and every unique key without program_id is listed here
// with what happens to it at the move. A new table or unique key must be added to the plan (here
// and in the document) or carry program_id: this test fails until it is.
const INSTANCE_TABLES = [
  'api_rate_slot', // one row per outgoing API limit of the deployment
  'google_callback_nonce', // Google's callback nonces, per issuer (the object may be unknown)
  'kysely_migration', // the schema's own history
  'kysely_migration_lock',
  'program', // the distribution key itself: a reference table
  'rate_limit_counter', // per client address, across programs
  'scheduled_task', // leases of deployment-wide scheduled work
  'sign_in_failure', // per address and per email, before any program is known
  'sign_in_known_address', // per email and address, before any program is known
  'wallet_delivery_pending', // per push token (a device's token spans programs) or card: distributed by (wallet, target)
];

/** Unique keys without program_id: `table: index` → the plan at the move (see the document). */
const UNIQUE_WITHOUT_PROGRAM: Record<string, string> = {
  // Surrogate keys (random uuid or sequence): unique by construction; at the move the primary key
  // becomes (program_id, id) and the foreign keys to it (program_id, …_id).
  'api_key: api_key_pkey': 'reference table',
  'anonymous_check: anonymous_check_pkey': 'surrogate',
  'campaign: campaign_pkey': 'surrogate',
  'card: card_pkey': 'surrogate',
  'card_import: card_import_pkey': 'surrogate',
  'card_tier_change: card_tier_change_pkey': 'surrogate',
  'google_notification: google_notification_pkey': 'surrogate',
  'join_view: join_view_pkey': 'surrogate',
  'pending_bonus: pending_bonus_pkey': 'surrogate',
  'phone_verification: phone_verification_pkey': 'surrogate',
  'ledger_entry: ledger_entry_pkey': 'surrogate',
  'purchase: purchase_pkey': 'surrogate',
  'staff_member: staff_member_pkey': 'reference table',
  'staff_password_reset: staff_password_reset_pkey': 'reference table',
  'wallet_event: wallet_event_pkey': 'surrogate',
  'webhook_delivery: webhook_delivery_pkey': 'surrogate',
  'webhook_endpoint: webhook_endpoint_pkey': 'surrogate',
  'webhook_event: webhook_event_pkey': 'surrogate',
  // Keys of child rows whose parent key implies the program: program_id is prepended at the move.
  'apple_pass_fetch: apple_pass_fetch_pkey': 'prepend program_id',
  'automation_delivery: automation_delivery_pkey': 'prepend program_id',
  'campaign_recipient: campaign_recipient_pkey': 'prepend program_id',
  'campaign_control: campaign_control_pkey': 'prepend program_id',
  'card_import_row: card_import_row_pkey': 'prepend program_id',
  'google_object: google_object_pkey': 'prepend program_id',
  'idempotency_record: idempotency_record_pkey': 'prepend program_id (scope is the program)',
  'referral: referral_pkey': 'prepend program_id',
  'webhook_delivery: webhook_delivery_endpoint_id_event_id_key': 'prepend program_id',
  'consent_text: consent_text_pkey': 'prepend program_id',
  // Looked up without knowing the program (public URLs, devices, Google, sign-in): the queries that
  // need care. Globally unique random values; at the move, a lookup table distributed by the value.
  'card: card_apple_serial_key': 'lookup table card_handle(apple_serial)',
  'card: card_public_token_key': 'lookup table card_handle(public_token)',
  'retired_apple_pass: retired_apple_pass_pkey': 'old serials: in the same lookup table card_handle(apple_serial)',
  'retired_google_object: retired_google_object_pkey': 'object ids embed the program slug',
  'google_object: google_object_object_id_key': 'object ids embed the program slug: lookup by prefix',
  'google_class: google_class_pkey': 'class ids embed the program slug',
  'apple_registration: apple_registration_pkey': 'prepend program_id; the device list query (all programs of a device) fans out',
  // Instance-wide by design: reference tables (small, read everywhere, written rarely).
  'api_key: api_key_key_hash_key': 'reference table',
  'staff_password_reset: staff_password_reset_token_hash_key': 'reference table',
  'staff_session: staff_session_pkey': 'distributed by token_hash',
  'staff_sign_in_link: staff_sign_in_link_pkey': 'distributed by token_hash',
};

describe(`schema ready to be distributed by program (${TEST_DATABASE_KIND} database)`, () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('every table carries program_id, except the listed instance-wide ones', async () => {
    const { rows } = await sql<{ name: string }>`
      SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'program_id' AND NOT a.attisdropped)
      ORDER BY 1
    `.execute(database.handle.db);
    expect(rows.map((r) => r.name)).toEqual(INSTANCE_TABLES);
  });

  it('every unique key includes program_id, except the listed ones (on instance tables, or planned for the move)', async () => {
    const { rows } = await sql<{ key: string }>`
      SELECT t.relname || ': ' || i.relname AS key
      FROM pg_index ix
      JOIN pg_class i ON i.oid = ix.indexrelid
      JOIN pg_class t ON t.oid = ix.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND ix.indisunique
        AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'program_id' AND a.attnum = ANY (ix.indkey))
      ORDER BY 1
    `.execute(database.handle.db);
    const unplanned = rows.map((r) => r.key).filter((key) => !INSTANCE_TABLES.includes(key.split(':')[0]!) && !(key in UNIQUE_WITHOUT_PROGRAM));
    expect(unplanned).toEqual([]);
    // And the plan names no key that no longer exists.
    expect(Object.keys(UNIQUE_WITHOUT_PROGRAM).filter((key) => !rows.some((r) => r.key === key))).toEqual([]);
  });

  it('the six tables that gained program_id get it from their parent row on every insert', async () => {
    const db = database.handle.db;
    const program = await db
      .insertInto('program')
      .values({ slug: 'citus', name: 'Citus', rules: '{"tiers":[]}', design: '{}', apple: '{}', google: '{}', texts: '{}', locations: '[]' }).returning('id').executeTakeFirstOrThrow();
    const card = await db
      .insertInto('card')
      .values({ program_id: program.id, number: '1', holder_name: 'H', phone: '+1', tier: 'standard', referral_code: 'r', public_token: 'pt-citus', apple_serial: 'as-citus', apple_auth_token: 'a'.repeat(16) })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db.insertInto('apple_registration').values({ device_library_identifier: 'd', pass_type_identifier: 'p', serial_number: 'as-citus', push_token: 't' }).execute();
    await db.insertInto('apple_pass_fetch').values({ card_id: card.id, update_tag: 1, fetches: 1 }).execute();
    const campaign = await db
      .insertInto('campaign')
      .values({ program_id: program.id, name: 'c', message: '{"ru":"x","en":"x"}', audience: '{"all":true}', status: 'draft' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db.insertInto('campaign_recipient').values({ campaign_id: campaign.id, card_id: card.id }).execute();
    await db.insertInto('google_object').values({ card_id: card.id, program_id: program.id, object_id: '1.o', class_id: '1.c', published_balance: 0, published_tier: 's', content_hash: 'h' }).execute();
    await db.insertInto('google_notification').values({ object_id: '1.o', kind: 'update' }).execute();
    const endpoint = await db
      .insertInto('webhook_endpoint')
      .values({ program_id: program.id, url: 'https://example.com/h', events: ['card.issued'], secret: 's' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db.insertInto('webhook_event').values({ id: '00000000-0000-4000-8000-000000000001', program_id: program.id, type: 'card.issued', data: '{}' }).execute();
    await db.insertInto('webhook_delivery').values({ endpoint_id: endpoint.id, event_id: '00000000-0000-4000-8000-000000000001' }).execute();
    await db.insertInto('idempotency_record').values({ scope: program.id, key: 'k', request_hash: 'h', status_code: null, response: null }).execute();
    for (const table of ['apple_registration', 'apple_pass_fetch', 'campaign_recipient', 'google_notification', 'webhook_delivery', 'idempotency_record'] as const) {
      const rows = await db.selectFrom(table).select('program_id').execute();
      expect(rows, table).toEqual([{ program_id: program.id }]);
    }
  });
});
