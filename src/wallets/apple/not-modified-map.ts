import { hash } from 'node:crypto';
import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { Notifications } from '../../db/notifications.js';
import { NotifiedCache } from '../../db/notified-cache.js';

/** What a 304 depends on, per live serial (the token only as its digest: no secret kept in memory). */
export interface PassAuthEntry {
  id: string;
  updated_at: Date;
  tokenDigest: Buffer;
  /**
   * The pass's Last-Modified header value (`updated_at` cut to the second, as HTTP dates are) and
   * its time in ms: computed once when the entry is loaded, not on every 304 (webservice.ts).
   */
  lastModified: string;
  lastModifiedMs: number;
}

/** Channel of `notifyApplePassesChanged`: `card id:serial` items, comma-separated, or '*' (forget all). */
export const APPLE_PASS_CHANGED_CHANNEL = 'apple_pass_changed';
/** Program rows changed (migrations/20261205T130100_cluster.sql's trigger; payload: the program id). */
const PROGRAM_CHANGED_CHANNEL = 'program_changed';
/** Payload bytes per notification: PostgreSQL refuses payloads of 8000 bytes or more. */
export const APPLE_PASS_CHANGED_PAYLOAD_BYTES = 7000;

/**
 * Tells every process's 304 map that these cards' passes changed: ONE statement that sends the
 * items `card id:serial` of the cards' live serials and of their retired (taken-over) serials, in
 * notifications of at most APPLE_PASS_CHANGED_PAYLOAD_BYTES + one item (a serial is at most 100
 * characters, the web service's identifier pattern; an item at most 137 bytes).
 *
 * The Apple wallet-update job calls it before it sends the pushes, outside the transaction that
 * changed the cards (issue #14). Why that is enough: a device learns that its pass changed only
 * through the push, which leaves after this notification was committed; a fetch that races the
 * notification sees the pass as it was a moment earlier — the same as having fetched a moment
 * earlier — and the push that follows makes it fetch again. Not a trigger on `card`: a NOTIFY at a
 * card write's commit serialised every card-writing commit (docs/benchmarks.md, the 304 map).
 */
export async function notifyApplePassesChanged(executor: Executor, cardIds: readonly string[]): Promise<void> {
  if (cardIds.length === 0) return;
  // Chunks by the running byte total of the items: an item belongs to the chunk its end falls in.
  await sql`
    SELECT pg_notify(${APPLE_PASS_CHANGED_CHANNEL}, string_agg(item, ',' ORDER BY item))
      FROM (
        SELECT item, (sum(octet_length(item) + 1) OVER (ORDER BY item ROWS UNBOUNDED PRECEDING) - 1) / ${APPLE_PASS_CHANGED_PAYLOAD_BYTES} AS chunk
          FROM (
            SELECT id::text || ':' || apple_serial AS item FROM card WHERE id = ANY(${[...cardIds]}::uuid[])
            UNION
            SELECT card_id::text || ':' || serial_number FROM retired_apple_pass WHERE card_id = ANY(${[...cardIds]}::uuid[])
          ) items
      ) chunked
     GROUP BY chunk`.execute(executor);
}

/** SHA-256 of a token (one-shot `crypto.hash`: no Hash object per request). */
export const tokenDigest = (value: string): Buffer => hash('sha256', value, 'buffer');

/**
 * A card changed by this process is not answered from the map from the moment its change is
 * recorded (before its commit) until a notification names it (its wallet-update job, after the
 * debounce): a device may ask right away (test/e2e/apple-webservice.test.ts, two changes within one
 * second). The hold must outlast the change's transaction — after the commit the database answers
 * the new state, so what is loaded then may be kept. A rolled-back change, or one without an Apple
 * job (a campaign's cards on no iPhone), is never notified: the hold then ends after this long.
 */
const OWN_CHANGE_HOLD_MS = 10_000;
/** More cards than this held at once (a campaign, an import): the map answers nothing until they expire. */
const MAX_HELD_CARDS = 10_000;

/**
 * The 304 map (issue #14): serial → the card's Last-Modified and token digest, so a device asking
 * "has my pass changed?" about an unchanged pass is answered without a database round trip.
 *
 * - NotifiedCache's rules: filled only from committed reads made while `apple_pass_changed` is
 *   being listened to, answered only while it still is, emptied when the listening connection is
 *   found lost. A serial is forgotten when the Apple wallet-update job of its card runs
 *   (`notifyApplePassesChanged`, before the pushes). Every write that changes what a 304 depends
 *   on — updated_at, token, serial: the ledger, campaigns, imports, takeover, erasure, a program's
 *   design — bumps the card's update tag and enqueues that job (updates/card-changes.ts). A change
 *   to any program row empties the whole map (rare: design, images, segments, automations).
 * - Changes made by this process (every one goes through the card-change recorder, which calls
 *   `cardsChanging` inside the transaction): those cards are read from the database, and not kept,
 *   until a notification names them (or OWN_CHANGE_HOLD_MS).
 * - Another instance's change reaches this one when its job runs (debounce plus queue latency after
 *   the commit); until then this instance may answer 304 for the old state to a device that asks on
 *   its own — never to one that got the push, which is sent after the notification. Entries also
 *   live at most 30 s: a bound for changes sent no Apple job, and should a silent network cut hide
 *   notifications until the connection's health check notices (db/notifications.ts).
 * - Only live serials are kept; a retired or unknown serial always asks the database.
 *   100,000 entries take ~25 MB.
 */
export class PassAuthMap {
  readonly #map = new NotifiedCache<string, PassAuthEntry | undefined>({ maxAgeMs: 30_000, maxEntries: 100_000 });
  /** Card id → serial of the entries stored (to forget a card's entry when this process changes it). */
  readonly #serialById = new Map<string, string>();
  /** Card id → until when it is held (this process changed it). */
  readonly #held = new Map<string, number>();
  #allHeldUntil = 0;
  readonly detach: () => void;

  constructor(notifications: Notifications) {
    this.detach = this.#map.attach(notifications, APPLE_PASS_CHANGED_CHANNEL, (payload) => {
      if (payload === '*') {
        this.#map.clear();
        return;
      }
      for (const item of payload.split(',')) {
        const colon = item.indexOf(':');
        if (colon < 0) continue;
        const id = item.slice(0, colon);
        this.#map.forget(item.slice(colon + 1));
        // The card's entry under a serial it no longer has (a serial replaced without a retired pass).
        const stored = this.#serialById.get(id);
        if (stored !== undefined) this.#map.forget(stored);
        this.#held.delete(id);
      }
    });
    const detachPrograms = this.#map.attach(notifications, PROGRAM_CHANGED_CHANNEL, () => this.#map.clear());
    const detachPasses = this.detach;
    this.detach = () => {
      detachPasses();
      detachPrograms();
    };
  }

  /** Cards whose change this process is recording (inside the change's transaction). */
  cardsChanging(cardIds: readonly string[]): void {
    const now = Date.now();
    const until = now + OWN_CHANGE_HOLD_MS;
    if (this.#held.size + cardIds.length > MAX_HELD_CARDS) {
      for (const [id, heldUntil] of this.#held) if (heldUntil <= now) this.#held.delete(id);
    }
    if (this.#held.size + cardIds.length > MAX_HELD_CARDS) {
      this.#allHeldUntil = until;
      this.#held.clear();
      this.#serialById.clear();
      this.#map.clear();
      return;
    }
    for (const id of cardIds) {
      this.#held.set(id, until);
      const serial = this.#serialById.get(id);
      // Forgetting also keeps a load already in flight from being stored.
      if (serial !== undefined) this.#map.forget(serial);
    }
  }

  #isHeld(id: string, now: number): boolean {
    if (now < this.#allHeldUntil) return true;
    const until = this.#held.get(id);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#held.delete(id);
    return false;
  }

  /**
   * The serial's entry when the map may answer for it right now (present, fresh, listening, the
   * card not held), else undefined — synchronously: the 304 fast path asks on every poll.
   */
  peek(serial: string): PassAuthEntry | undefined {
    const entry = this.#map.peek(serial);
    return entry !== undefined && !this.#isHeld(entry.id, Date.now()) ? entry : undefined;
  }

  /** The serial's entry: from the map when it may answer, else `load()` (kept when safe). */
  async lookup(serial: string, load: () => Promise<PassAuthEntry | undefined>): Promise<PassAuthEntry | undefined> {
    let held = false;
    let heldValue: PassAuthEntry | undefined;
    const entry = await this.#map.get(
      serial,
      async () => {
        const loaded = await load();
        // Not kept while this process's own change of the card may be uncommitted or unnotified.
        if (loaded && this.#isHeld(loaded.id, Date.now())) {
          held = true;
          heldValue = loaded;
          return undefined;
        }
        return loaded;
      },
      (cached) => cached !== undefined && !this.#isHeld(cached.id, Date.now()),
    );
    if (held) return heldValue;
    if (entry) {
      if (this.#serialById.size >= 100_000) this.#serialById.clear();
      this.#serialById.set(entry.id, serial);
    }
    return entry;
  }
}
