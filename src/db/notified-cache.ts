import type { Notifications } from './notifications.js';

/**
 * A process-local cache of rows that any instance may change (issue #14: the hot paths read the
 * same program row, API key and webhook endpoint list on every request), kept correct across
 * instances by `LISTEN/NOTIFY` (db/notifications.ts): a trigger notifies every change at commit,
 * each process forgets the entry, and after the listening connection was lost everything is
 * dropped (notifications may have been missed). The process that makes a change forgets at once
 * too (`forget…`), so its own next request never waits for the notification.
 *
 * - It only caches while at least one notification source is attached and every attached source
 *   is listening (`Notifications.isListening`): before the first LISTEN completes and from the
 *   moment the connection is found lost (`onLost`) until it is back, it neither answers from nor
 *   fills the cache — a process that cannot hear of changes reads the database every time.
 * - A load that overlapped an invalidation is answered but not stored: it may have read the row
 *   just before the change committed.
 * - Entries also expire after `maxAgeMs`, a bound on staleness should a notification ever be lost
 *   without the connection noticing.
 * - Fill it only from reads that see committed data: outside a transaction, or in one that has not
 *   written those rows (a rolled-back write would never be notified).
 */
export class NotifiedCache<K, V> {
  readonly #entries = new Map<K, { value: V; at: number }>();
  #generation = 0;
  #sources = 0;
  /** Per attached source: whether its channel is being listened to right now. */
  readonly #listening = new Set<() => boolean>();

  constructor(
    private readonly options: { maxAgeMs: number; maxEntries: number },
  ) {}

  /** Whether entries are kept and answered (a notification source is attached and listening). */
  get active(): boolean {
    if (this.#sources === 0) return false;
    for (const listening of this.#listening) if (!listening()) return false;
    return true;
  }

  /**
   * Calls `onNotification` (which forgets what the payload names) on each notification of
   * `channel`, and forgets everything after a reset. Returns the detach (call it at close).
   */
  attach(notifications: Notifications, channel: string, onNotification: (payload: string) => void): () => void {
    this.#sources++;
    const unsubscribe = notifications.subscribe(channel, onNotification);
    const unreset = notifications.onReset(() => this.clear());
    const unlost = notifications.onLost?.(() => this.clear()) ?? (() => undefined);
    const listening = () => notifications.isListening?.(channel) ?? true;
    this.#listening.add(listening);
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      unsubscribe();
      unreset();
      unlost();
      this.#listening.delete(listening);
      this.#sources--;
      if (this.#sources === 0) this.clear();
    };
  }

  forget(key: K): void {
    this.#generation++;
    this.#entries.delete(key);
  }

  forgetWhere(predicate: (key: K, value: V) => boolean): void {
    this.#generation++;
    for (const [key, entry] of this.#entries) if (predicate(key, entry.value)) this.#entries.delete(key);
  }

  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }

  /** The cached value when present, fresh and answerable now (see `active`), else undefined. */
  peek(key: K): V | undefined {
    if (!this.active) return undefined;
    const entry = this.#entries.get(key);
    return entry && Date.now() - entry.at < this.options.maxAgeMs ? entry.value : undefined;
  }

  /** The cached value when present, fresh and `accept`ed, else `load()` (stored when safe). */
  async get(key: K, load: () => Promise<V>, accept: (value: V) => boolean = () => true): Promise<V> {
    const active = this.active;
    if (active) {
      const entry = this.#entries.get(key);
      if (entry && Date.now() - entry.at < this.options.maxAgeMs && accept(entry.value)) return entry.value;
    }
    const generation = this.#generation;
    const value = await load();
    // Stored only if the source was listening before the load began and nothing was forgotten since
    // (a loss clears the cache, which moves the generation too).
    if (active && generation === this.#generation && value !== undefined) {
      if (this.#entries.size >= this.options.maxEntries) this.#entries.clear();
      this.#entries.set(key, { value, at: Date.now() });
    }
    return value;
  }

  get size(): number {
    return this.#entries.size;
  }
}
