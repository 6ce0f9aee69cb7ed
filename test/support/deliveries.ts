/**
 * Helpers for the fault tests (test/faults): the pending-delivery table, job states and /metrics.
 */
import { sql } from 'kysely';
import { waitFor, type TestApp } from './app.js';
import { pendingCardJobs } from './apple-device.js';

/** Targets pending for a retry (Apple: push tokens; Google: card ids). */
export async function pendingTargets(t: TestApp, wallet: 'apple' | 'google'): Promise<string[]> {
  const rows = await t.database.handle.db.selectFrom('wallet_delivery_pending').select('target').where('wallet', '=', wallet).execute();
  return rows.map((row) => row.target).sort();
}

/** Wallet-update jobs by state (a failed job would be an update given up on). */
export async function walletJobStates(t: TestApp): Promise<Record<string, number>> {
  const { rows } = await sql<{ state: string; n: number }>`
    select state, count(*)::int as n from pgboss.job where name like 'wallet-update-%' group by state
  `.execute(t.database.handle.db);
  return Object.fromEntries(rows.map((row) => [row.state, Number(row.n)]));
}

/** Waits until no wallet-update job is waiting or running and nothing is pending for a retry. */
export async function waitForDeliveriesSettled(t: TestApp, timeoutMs = 60_000) {
  await waitFor(
    async () => (await pendingCardJobs(t)) === 0 && (await t.database.handle.db.selectFrom('wallet_delivery_pending').select('target').limit(1).execute()).length === 0,
    { what: 'every wallet delivery to settle', timeoutMs },
  );
}

/** One sample of a Prometheus metric from /metrics (0 when absent), e.g. metric(t, 'wallet_deliveries_pending', { wallet: 'apple' }). */
export async function metric(t: TestApp, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await t.app.inject({ method: 'GET', url: '/metrics' });
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of res.body.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = /\{([^}]*)\}/.exec(line)?.[1] ?? '';
    const have = labelText.split(',').filter(Boolean);
    if (wanted.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
