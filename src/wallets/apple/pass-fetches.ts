import { sql } from 'kysely';
import type { Db } from '../../db/database.js';

interface Logger {
  error(obj: object, msg?: string): void;
}

/**
 * Counts pass downloads per card version (card id + update tag) in `apple_pass_fetch`: which
 * devices fetched which update, e.g. a campaign's "devices that fetched the updated pass".
 *
 * Devices fetch passes in bursts after a push (a campaign re-fetches a pass per device), so a
 * write per download would sit on the hottest path. Counts are gathered in memory and written
 * with one statement per second (or per `maxPending` distinct versions); a crash loses at most
 * that second of statistics, never a pass.
 */
export class PassFetchRecorder {
  readonly #pending = new Map<string, { cardId: string; updateTag: number; fetches: number; at: Date }>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly options: { flushIntervalMs?: number; maxPending?: number; logger?: Logger } = {},
  ) {}

  record(cardId: string, updateTag: number, at: Date = new Date()) {
    const key = `${cardId}:${updateTag}`;
    const entry = this.#pending.get(key);
    if (entry) {
      entry.fetches++;
      entry.at = at;
    } else {
      this.#pending.set(key, { cardId, updateTag, fetches: 1, at });
    }
    if (this.#pending.size >= (this.options.maxPending ?? 5000)) void this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush(), this.options.flushIntervalMs ?? 1000);
      this.#timer.unref();
    }
  }

  /** Writes what was counted so far (also called on shutdown). */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    if (batch.length === 0) return this.#flushing;
    // One write at a time, in order.
    this.#flushing = this.#flushing.then(() =>
      sql`
        INSERT INTO apple_pass_fetch (card_id, update_tag, fetches, first_at, last_at)
        SELECT f.card_id, f.update_tag, f.fetches, f.at, f.at
        FROM unnest(${batch.map((b) => b.cardId)}::uuid[], ${batch.map((b) => b.updateTag)}::bigint[],
                    ${batch.map((b) => b.fetches)}::int[], ${batch.map((b) => b.at.toISOString())}::timestamptz[])
          AS f(card_id, update_tag, fetches, at)
        WHERE EXISTS (SELECT 1 FROM card WHERE card.id = f.card_id)
        ON CONFLICT (card_id, update_tag) DO UPDATE
          SET fetches = apple_pass_fetch.fetches + excluded.fetches, last_at = excluded.last_at
      `
        .execute(this.db)
        .then(
          () => undefined,
          (error: unknown) => this.options.logger?.error({ err: error, versions: batch.length }, 'recording pass fetches failed'),
        ),
    );
    return this.#flushing;
  }
}
