import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';
import type { ClaimedDelivery } from './pending-deliveries.js';

/**
 * The one path every card change takes to every wallet (spec: "One path carries every card
 * change"): whoever changes what a wallet card shows calls `recordCardChange` inside the same
 * transaction. It bumps the card's update tag and enqueues the wallet-update job; the job's
 * worker hands the card to each wallet adapter. The ledger knows no wallet.
 */
/** One queue per wallet, so one wallet's failure and retries never repeat the other's pushes. */
export const walletUpdateQueue = (wallet: string) => `wallet-update-${wallet}`;

/** One card's change, or (bulk changes: campaigns, design edits) a batch of cards in one job. */
export type CardChangedJob = { cardId: string; cardIds?: undefined } | { cardIds: string[]; cardId?: undefined };

/** The cards of a wallet-update job, whichever shape it has. */
export const cardsOfJob = (data: CardChangedJob): string[] => data.cardIds ?? [data.cardId];

/**
 * A bulk change of more than this many cards goes into jobs of up to this many cards each, for the
 * wallets listed in `cardsPerJob`. One pg-boss job per card costs an insert, a fetch, a completion
 * and an archive row each; for a quarter of a million cards that was more PostgreSQL work than the
 * pushes themselves (bench:campaign). Single changes keep one job per card: those coalesce.
 */
export const DEFAULT_CARDS_PER_JOB: Readonly<Record<string, number>> = { apple: 250 };
// Google stays one job per card: its calls are paced at 20/s, so a job of 250 objects would run for
// half a minute and a retry would repeat all of them.

/** At most this many cards per adapter call, however many jobs one fetch brought. */
const MAX_CARDS_PER_PUBLISH = 1000;

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

/** Cards waiting in a wallet's update queue (due now, not yet taken): the update path's backlog. */
export const dueCardUpdates = (queue: JobQueue, wallet: string) => queue.dueItems(walletUpdateQueue(wallet), 'cardIds');

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
  options: {
    debounceSeconds: number;
    wallets: readonly string[];
    cardsPerJob?: Readonly<Record<string, number>>;
    /** Called with the cards of every change this process records, inside its transaction (the 304 map holds them). */
    onChanging?: (cardIds: readonly string[]) => void;
  },
): CardChangeRecorder {
  const cardsPerJob = options.cardsPerJob ?? DEFAULT_CARDS_PER_JOB;
  const enqueue = async (executor: Executor, cardIds: string[], onlyWallets?: readonly string[]) => {
    const wallets = onlyWallets ? options.wallets.filter((wallet) => onlyWallets.includes(wallet)) : options.wallets;
    const unique = [...new Set(cardIds)];
    options.onChanging?.(unique);
    const startAfter = String(options.debounceSeconds);
    // Each queue is "stately": at most one waiting job per singletonKey, so a burst of changes to
    // one card within the debounce window becomes one job and one push per device. A batch job has
    // a key of its own (it never coalesces; a card in a batch and in a single job at once is pushed
    // twice at worst, which Wallet answers with one fetch and a 304). One statement for all jobs.
    const jobs = wallets.flatMap((wallet): Array<{ name: string; data: CardChangedJob; singletonKey: string; startAfter: string }> => {
      const name = walletUpdateQueue(wallet);
      const perJob = cardsPerJob[wallet] ?? 1;
      if (perJob <= 1 || unique.length <= perJob) {
        return unique.map((cardId) => ({ name, data: { cardId } satisfies CardChangedJob, singletonKey: cardId, startAfter }));
      }
      const batches: Array<{ name: string; data: CardChangedJob; singletonKey: string; startAfter: string }> = [];
      for (let i = 0; i < unique.length; i += perJob) {
        // No debounce: a batch never coalesces with anything, so waiting would only delay the pushes
        // (and a campaign's fetch window, which waits for them).
        batches.push({ name, data: { cardIds: unique.slice(i, i + perJob) } satisfies CardChangedJob, singletonKey: `batch:${randomUUID()}`, startAfter: '0' });
      }
      return batches;
    });
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
  /** Apple: pushes to this card's devices that APNs accepted / refused for good (dead token, certificate, topic). */
  pushesAccepted?: number;
  pushesFailed?: number;
  /** Apple: pushes to this card's devices kept pending for a retry (updates/pending-deliveries.ts). */
  pushesPending?: number;
  /** Google: the object was patched; a notification was sent; one was wanted but downgraded (quota). */
  updated?: boolean;
  notified?: boolean;
  downgraded?: boolean;
  /** Google: the update is kept pending for a retry / was refused for good (a non-retryable 4xx). */
  pending?: boolean;
  failed?: boolean;
  /**
   * The report of a retry round: it settles deliveries an earlier report left pending (Apple: adds to
   * the accepted/failed pushes; Google: the final state of a pending update).
   */
  retry?: boolean;
}

/** A wallet's side of the update path: publish the current state of these cards. */
export interface WalletAdapter {
  readonly wallet: string;
  /**
   * Publishes, and reports one outcome per card it was given (or nothing). Retryable failures are
   * recorded as pending deliveries before it returns: the job completes with nothing lost.
   */
  publish(cardIds: string[]): Promise<PublishOutcome[] | void>;
  /** Retries claimed pending deliveries (redelivery.ts) and settles them; reports per-card outcomes. */
  redeliver?(claimed: ClaimedDelivery[]): Promise<PublishOutcome[] | void>;
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
      const cardIds = [...new Set(jobs.flatMap((job) => cardsOfJob(job.data)))];
      for (let i = 0; i < cardIds.length; i += MAX_CARDS_PER_PUBLISH) {
        const slice = cardIds.slice(i, i + MAX_CARDS_PER_PUBLISH);
        let outcomes: PublishOutcome[] | void;
        try {
          outcomes = await adapter.publish(slice);
        } catch (error) {
          logger.error({ err: error, wallet: adapter.wallet, cards: slice.length }, 'wallet update failed; it will be retried');
          throw error;
        }
        // Recording outcomes must never fail the job: a retry would push the same cards again.
        if (outcomes && outcomes.length > 0 && options.onPublished) {
          await options.onPublished(adapter.wallet, outcomes).catch((error: unknown) => {
            logger.error({ err: error, wallet: adapter.wallet }, 'recording wallet outcomes failed');
          });
        }
      }
    });
  }
}
