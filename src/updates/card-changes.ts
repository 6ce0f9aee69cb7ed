import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';

/**
 * The one path every card change takes to every wallet (spec: "One path carries every card
 * change"): whoever changes what a wallet card shows calls `recordCardChange` inside the same
 * transaction. It bumps the card's update tag and enqueues the wallet-update job; the job's
 * worker hands the card to each wallet adapter. The ledger knows no wallet.
 */
/** One queue per wallet, so one wallet's failure and retries never repeat the other's pushes. */
export const walletUpdateQueue = (wallet: string) => `wallet-update-${wallet}`;

export interface CardChangedJob {
  cardId: string;
}

/**
 * Column values that mark a card's wallet representation as changed.
 *
 * `update_tag` comes from a database sequence: Apple requires each tag to be later than every
 * earlier one, which app clocks cannot promise (reference 1.3).
 * `updated_at` becomes the pass's Last-Modified, in whole seconds; it is kept strictly increasing
 * per card so two changes within one second never answer 304 to a device that saw the first.
 */
export const cardChangedColumns = () => ({
  update_tag: sql<number>`nextval('card_update_tag_seq')`,
  updated_at: sql<Date>`greatest(date_trunc('second', now()), card.updated_at + interval '1 second')`,
});

export interface CardChangeRecorder {
  /**
   * Enqueue the wallet update for cards whose change columns were set in this transaction.
   * `onlyWallets` limits it to those wallets (a caller that knows the cards are on no other).
   */
  enqueue(executor: Executor, cardIds: string[], onlyWallets?: readonly string[]): Promise<void>;
  /** Bump the update tag of cards and enqueue their wallet update, in the caller's transaction. */
  record(executor: Executor, cardIds: string[]): Promise<void>;
}

export function createCardChangeRecorder(
  queue: JobQueue,
  options: { debounceSeconds: number; wallets: readonly string[] },
): CardChangeRecorder {
  const enqueue = async (executor: Executor, cardIds: string[], onlyWallets?: readonly string[]) => {
    const wallets = onlyWallets ? options.wallets.filter((wallet) => onlyWallets.includes(wallet)) : options.wallets;
    // Each queue is "stately": at most one waiting job per card (singletonKey), so a burst of
    // changes within the debounce window becomes one job and one push per device. One statement
    // for all cards and wallets (a campaign chunk changes a thousand cards at once).
    const jobs = [...new Set(cardIds)].flatMap((cardId) =>
      wallets.map((wallet) => ({
        name: walletUpdateQueue(wallet),
        data: { cardId } satisfies CardChangedJob,
        singletonKey: cardId,
        startAfter: String(options.debounceSeconds),
      })),
    );
    await queue.insert(executor, jobs);
  };
  return {
    enqueue,
    async record(executor, cardIds) {
      if (cardIds.length === 0) return;
      await executor.updateTable('card').set(cardChangedColumns()).where('id', 'in', cardIds).execute();
      await enqueue(executor, cardIds);
    },
  };
}

/**
 * What a wallet did for one card in one publish, so others (campaign delivery figures) can
 * attribute it. Apple reports pushes; Google reports the object update and its notification.
 */
export interface PublishOutcome {
  cardId: string;
  /** Apple: pushes to this card's devices that APNs accepted / refused. */
  pushesAccepted?: number;
  pushesFailed?: number;
  /** Google: the object was patched; a notification was sent; one was wanted but downgraded (quota). */
  updated?: boolean;
  notified?: boolean;
  downgraded?: boolean;
}

/** A wallet's side of the update path: publish the current state of these cards. */
export interface WalletAdapter {
  readonly wallet: string;
  /** Publishes, and reports one outcome per card it was given (or nothing). */
  publish(cardIds: string[]): Promise<PublishOutcome[] | void>;
}

export type PublishListener = (wallet: string, outcomes: PublishOutcome[]) => Promise<void>;

/** Creates the wallet-update queues (also for processes that only send to them, e.g. campaign workers). */
export async function ensureWalletUpdateQueues(queue: JobQueue, wallets: readonly string[]) {
  for (const wallet of wallets) {
    await queue.ensureQueue(walletUpdateQueue(wallet), {
      policy: 'stately',
      retryLimit: 5,
      retryDelay: 5,
      retryBackoff: true,
      expireInSeconds: 300,
    });
  }
}

/** Starts one worker per wallet adapter, each on its own queue. */
export async function startWalletUpdateWorkers(
  queue: JobQueue,
  adapters: WalletAdapter[],
  logger: { error(obj: object, msg?: string): void },
  options: { onPublished?: PublishListener } = {},
) {
  await ensureWalletUpdateQueues(queue, adapters.map((adapter) => adapter.wallet));
  for (const adapter of adapters) {
    const name = walletUpdateQueue(adapter.wallet);
    await queue.work<CardChangedJob>(name, { batchSize: 200 }, async (jobs) => {
      const cardIds = [...new Set(jobs.map((job) => job.data.cardId))];
      let outcomes: PublishOutcome[] | void;
      try {
        outcomes = await adapter.publish(cardIds);
      } catch (error) {
        logger.error({ err: error, wallet: adapter.wallet, cards: cardIds.length }, 'wallet update failed; it will be retried');
        throw error;
      }
      // Recording outcomes must never fail the job: a retry would push the same cards again.
      if (outcomes && outcomes.length > 0 && options.onPublished) {
        await options.onPublished(adapter.wallet, outcomes).catch((error: unknown) => {
          logger.error({ err: error, wallet: adapter.wallet }, 'recording wallet outcomes failed');
        });
      }
    });
  }
}
