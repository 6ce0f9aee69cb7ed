import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifications, notify, NOTIFICATIONS_APPLICATION_NAME, type Notifications } from '../../src/db/notifications.js';
import { waitFor } from '../support/app.js';
import { createTestDatabase, TEST_DATABASE_KIND, type TestDatabase } from '../support/database.js';

// Cross-instance notifications (db/notifications.ts) on both databases; on PostgreSQL the listening
// connection is killed and must come back, with the reset callback telling subscribers that
// notifications may have been missed.
describe(`LISTEN/NOTIFY notifications (${TEST_DATABASE_KIND} database)`, () => {
  let database: TestDatabase;
  let listener: Notifications;
  const received: string[] = [];
  let resets = 0;

  beforeAll(async () => {
    database = await createTestDatabase();
    listener = createNotifications(database.handle, { reconnectMinMs: 50, reconnectMaxMs: 200 });
    listener.subscribe('test_channel', (payload) => received.push(payload));
    listener.onReset(() => resets++);
    await listener.ready();
  });
  afterAll(async () => {
    await listener?.close();
    await database?.drop();
  });

  it('delivers what a transaction notified when it commits, and nothing of a rolled-back one', async () => {
    const db = database.handle.db;
    await db
      .transaction()
      .execute(async (trx) => {
        await notify(trx, 'test_channel', 'rolled back');
        throw new Error('rollback');
      })
      .catch(() => undefined);
    await db.transaction().execute(async (trx) => {
      await notify(trx, 'test_channel', 'first');
      await notify(trx, 'test_channel', 'second');
    });
    await notify(db, 'test_channel', 'third');
    await waitFor(() => received.length >= 3, { what: 'three notifications' });
    // In commit order; the rolled-back one never came (it would have been first).
    expect(received).toEqual(['first', 'second', 'third']);
    expect(resets).toBe(0);
  });

  it('refuses a channel name that is not a plain identifier', async () => {
    expect(() => listener.subscribe('bad channel"; DROP', () => undefined)).toThrow(/Invalid notification channel/);
    await expect(notify(database.handle.db, 'Bad-Channel', 'x')).rejects.toThrow(/Invalid notification channel/);
  });

  it.skipIf(TEST_DATABASE_KIND !== 'postgres')(`reconnects after its connection is killed, resets subscribers, and delivers again${TEST_DATABASE_KIND !== 'postgres' ? ' (needs real PostgreSQL: set DATABASE_URL)' : ''}`, async () => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const killed = await admin.query('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [
        NOTIFICATIONS_APPLICATION_NAME,
      ]);
      expect(killed.rowCount).toBe(1);
      await waitFor(() => resets === 1, { what: 'the reset after reconnecting' });
      await listener.ready();
      received.length = 0;
      await notify(database.handle.db, 'test_channel', 'after reconnect');
      await waitFor(() => received.length === 1, { what: 'a notification after reconnecting' });
      expect(received).toEqual(['after reconnect']);
    } finally {
      await admin.end();
    }
  });
});
