import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';

/**
 * The one path every card change takes to every wallet (spec: "One path carries every card
 * change"): whoever changes what a wallet card shows calls `recordCardChange` inside the same
 * transaction. It bumps the card's update tag and enqueues the wallet-update job; the job's
 * worker hands the card to each wallet adapter. The ledger knows no wallet.
 */
export const CARD_CHANGED_QUEUE = 'card-changed';

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
  /** Enqueue the wallet update for cards whose change columns were set in this transaction. */
  enqueue(executor: Executor, cardIds: string[]): Promise<void>;
  /** Bump the update tag of cards and enqueue their wallet update, in the caller's transaction. */
  record(executor: Executor, cardIds: string[]): Promise<void>;
}

export function createCardChangeRecorder(queue: JobQueue, options: { debounceSeconds: number }): CardChangeRecorder {
  const enqueue = async (executor: Executor, cardIds: string[]) => {
    for (const cardId of new Set(cardIds)) {
      // The queue is "stately": at most one waiting job per card (singletonKey), so a burst of
      // changes within the debounce window becomes one job and one push per device.
      await queue.send(executor, CARD_CHANGED_QUEUE, { cardId } satisfies CardChangedJob, {
        singletonKey: cardId,
        startAfter: options.debounceSeconds,
      });
    }
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

/** A wallet's side of the update path: publish the current state of these cards. */
export interface WalletAdapter {
  readonly wallet: string;
  publish(cardIds: string[]): Promise<void>;
}

export async function startCardChangedWorker(
  queue: JobQueue,
  adapters: WalletAdapter[],
  logger: { error(obj: object, msg?: string): void },
) {
  await queue.ensureQueue(CARD_CHANGED_QUEUE, {
    policy: 'stately',
    retryLimit: 5,
    retryDelay: 5,
    retryBackoff: true,
    expireInSeconds: 300,
  });
  return queue.work<CardChangedJob>(CARD_CHANGED_QUEUE, { batchSize: 200 }, async (jobs) => {
    const cardIds = [...new Set(jobs.map((job) => job.data.cardId))];
    const failures: unknown[] = [];
    // Each wallet is independent: one wallet's outage must not hold back the other.
    for (const adapter of adapters) {
      try {
        await adapter.publish(cardIds);
      } catch (error) {
        logger.error({ err: error, wallet: adapter.wallet, cards: cardIds.length }, 'wallet update failed');
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  });
}
