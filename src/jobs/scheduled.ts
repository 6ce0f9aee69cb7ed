import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';

/**
 * Scheduled work once per tick across all workers (issue #13).
 *
 * The ticks themselves come from pg-boss's cron (`boss.schedule`): one instance at a time checks the
 * schedules and sends the tick's job with a singleton key per minute, so one tick is one job, taken
 * by one worker. This module adds what pg-boss does not promise: a tick never overlaps the previous
 * one still running elsewhere (a slow automations tick, a start-up tick of a worker that just
 * started), and a duplicate of a tick that already ran within `minIntervalSeconds` is skipped.
 *
 * A lease row per task in `scheduled_task`: taking it is one atomic upsert that succeeds only when
 * no other holder's lease is running (and, with a minimum interval, the last start is old enough).
 * A worker that dies mid-tick leaves its lease to expire after `leaseSeconds`; then the next tick
 * takes it over.
 */
export interface ScheduledRun<T> {
  ran: boolean;
  result?: T;
}

export async function runScheduled<T>(
  db: Db,
  name: string,
  options: { leaseSeconds: number; minIntervalSeconds?: number },
  work: () => Promise<T>,
): Promise<ScheduledRun<T>> {
  const holder = randomUUID();
  const minInterval = options.minIntervalSeconds ?? 0;
  const { rows } = await sql<{ name: string }>`
    INSERT INTO scheduled_task AS t (name, holder, running_until, last_started_at)
    VALUES (${name}, ${holder}, clock_timestamp() + make_interval(secs => ${options.leaseSeconds}), clock_timestamp())
    ON CONFLICT (name) DO UPDATE
      SET holder = excluded.holder, running_until = excluded.running_until, last_started_at = excluded.last_started_at
      WHERE (t.running_until IS NULL OR t.running_until < clock_timestamp())
        AND (t.last_started_at IS NULL OR t.last_started_at <= clock_timestamp() - make_interval(secs => ${minInterval}))
    RETURNING t.name
  `.execute(db);
  if (rows.length === 0) return { ran: false };
  try {
    return { ran: true, result: await work() };
  } finally {
    await db
      .updateTable('scheduled_task')
      .set({ running_until: null, last_finished_at: sql<Date>`clock_timestamp()` })
      .where('name', '=', name)
      .where('holder', '=', holder)
      .execute()
      .catch(() => undefined);
  }
}
