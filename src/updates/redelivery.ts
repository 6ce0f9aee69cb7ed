import type { Db } from '../db/database.js';
import type { PublishListener, WalletAdapter } from './card-changes.js';
import { claimDueDeliveries, DEFAULT_DELIVERY_RETRY_POLICY, type DeliveryRetryPolicy, type DeliveryWallet } from './pending-deliveries.js';

/**
 * The retry worker of the update path: per wallet, claims pending deliveries that are due and hands
 * them to the wallet's adapter (`redeliver`), which delivers and settles them. A loop per wallet in
 * every process that runs the wallet workers; claims use a lease and SKIP LOCKED, so processes share
 * the work and a process that dies gives its rows back when the lease ends.
 *
 * Why a table and a poller rather than re-enqueued pg-boss jobs: a pending delivery is one narrow row
 * per push token (Apple) or card (Google), so any number of changes during an outage coalesce into one
 * retry per device; pg-boss's retryLimit and its job-per-attempt rows never bound or bloat an outage of
 * hours; and the pending and failed figures (`/metrics`, campaign delivery) are one indexed query. The
 * healthy path pays nothing but a LEFT JOIN that finds no row (docs/wallets.md, "Delivery through
 * outages", has the measurement); the poll is one index probe per wallet per `pollMs`.
 */
export interface RedeliverySettings {
  /** How long a wallet's loop sleeps when fewer than a batch of deliveries were due. */
  pollMs: number;
  /** Targets claimed per round (Apple: push tokens, one push() call; Google: cards, paced at its rate limit). */
  batch: Record<string, number>;
  /** A claim holds its rows this long (longer than a round can take). */
  leaseMs: number;
  policy: DeliveryRetryPolicy;
}

export const DEFAULT_REDELIVERY_SETTINGS: RedeliverySettings = {
  pollMs: 1_000,
  batch: { apple: 1_000, google: 20 },
  leaseMs: 300_000,
  policy: DEFAULT_DELIVERY_RETRY_POLICY,
};

interface Logger {
  error(obj: object, msg?: string): void;
}

export interface Redelivery {
  /** Stops the loops after their current round. */
  stop(): Promise<void>;
}

export function startRedelivery(
  db: Db,
  adapters: WalletAdapter[],
  logger: Logger,
  options: { settings?: Partial<RedeliverySettings>; onPublished?: PublishListener } = {},
): Redelivery {
  const settings = { ...DEFAULT_REDELIVERY_SETTINGS, ...options.settings };
  let stopped = false;
  const wakers = new Set<() => void>();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakers.add(done);
    });

  const loop = async (adapter: WalletAdapter & Required<Pick<WalletAdapter, 'redeliver'>>) => {
    const wallet = adapter.wallet as DeliveryWallet;
    const batch = settings.batch[wallet] ?? 100;
    while (!stopped) {
      let claimed = 0;
      try {
        const due = await claimDueDeliveries(db, wallet, batch, settings.leaseMs);
        claimed = due.length;
        if (claimed > 0) {
          const outcomes = await adapter.redeliver(due);
          if (outcomes && outcomes.length > 0 && options.onPublished) {
            await options.onPublished(wallet, outcomes).catch((error: unknown) => {
              logger.error({ err: error, wallet }, 'recording wallet retry outcomes failed');
            });
          }
        }
      } catch (error) {
        // The claimed rows come back when their lease ends; nothing is lost.
        if (!stopped) logger.error({ err: error, wallet, claimed }, 'wallet delivery retry round failed; its deliveries stay pending');
        claimed = 0;
      }
      if (claimed < batch && !stopped) await pause(settings.pollMs);
    }
  };

  const running = adapters
    .filter((adapter): adapter is WalletAdapter & Required<Pick<WalletAdapter, 'redeliver'>> => typeof adapter.redeliver === 'function')
    .map((adapter) => loop(adapter));

  return {
    async stop() {
      stopped = true;
      for (const wake of [...wakers]) wake();
      await Promise.all(running);
    },
  };
}
