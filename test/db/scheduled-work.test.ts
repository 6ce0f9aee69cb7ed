import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScheduled } from '../../src/jobs/scheduled.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { waitFor } from '../support/app.js';
import { createTestDatabase, TEST_DATABASE_KIND, type TestDatabase } from '../support/database.js';

// Scheduled work once per tick across all workers (jobs/scheduled.ts): ticks that overlap run once;
// a duplicate within the minimum interval is skipped; a dead holder's lease is taken over.
describe(`scheduled work leases (${TEST_DATABASE_KIND} database)`, () => {
  let database: TestDatabase;
  /** On PostgreSQL a second pool: as another process would be. */
  let other: DatabaseHandle | undefined;
  beforeAll(async () => {
    database = await createTestDatabase();
    if (database.url) other = openDatabase({ databaseUrl: database.url, poolSize: 4 });
  });
  afterAll(async () => {
    await other?.close();
    await database?.drop();
  });

  it('runs a tick once when several workers fire it at the same time', async () => {
    const dbs = [database.handle.db, (other ?? database.handle).db];
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const work = async () => {
      runs++;
      await gate;
      return 'done';
    };
    const first = runScheduled(dbs[0]!, 'tick-a', { leaseSeconds: 60 }, work);
    // While the first holds the lease (its work has started), every other attempt (either "process") is skipped.
    await waitFor(() => runs === 1, { what: 'the first tick to start' });
    const others = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => runScheduled(dbs[i % 2]!, 'tick-a', { leaseSeconds: 60 }, work)));
    expect(others.every((r) => !r.ran)).toBe(true);
    release();
    expect(await first).toEqual({ ran: true, result: 'done' });
    expect(runs).toBe(1);
    // Released: the next tick runs.
    expect((await runScheduled(dbs[1]!, 'tick-a', { leaseSeconds: 60 }, work)).ran).toBe(true);
    expect(runs).toBe(2);
  });

  it('skips a duplicate of a tick that ran within the minimum interval, and releases the lease when the work fails', async () => {
    const db = database.handle.db;
    expect((await runScheduled(db, 'tick-b', { leaseSeconds: 60, minIntervalSeconds: 3600 }, async () => 1)).ran).toBe(true);
    expect((await runScheduled(db, 'tick-b', { leaseSeconds: 60, minIntervalSeconds: 3600 }, async () => 2)).ran).toBe(false);
    // Without the interval it runs (a start-up tick); a failing run still releases the lease.
    await expect(runScheduled(db, 'tick-b', { leaseSeconds: 60 }, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect((await runScheduled(db, 'tick-b', { leaseSeconds: 60 }, async () => 3)).result).toBe(3);
  });

  it("takes over the lease of a worker that died mid-tick once it has expired, not before", async () => {
    const db = database.handle.db;
    await sql`INSERT INTO scheduled_task (name, holder, running_until, last_started_at)
              VALUES ('tick-c', 'dead-worker', now() + interval '1 hour', now() - interval '1 minute')`.execute(db);
    expect((await runScheduled(db, 'tick-c', { leaseSeconds: 60 }, async () => 'x')).ran).toBe(false);
    await sql`UPDATE scheduled_task SET running_until = now() - interval '1 second' WHERE name = 'tick-c'`.execute(db);
    expect(await runScheduled(db, 'tick-c', { leaseSeconds: 60 }, async () => 'taken over')).toEqual({ ran: true, result: 'taken over' });
  });
});
