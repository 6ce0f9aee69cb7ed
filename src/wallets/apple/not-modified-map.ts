import { createHash } from 'node:crypto';
import type { Notifications } from '../../db/notifications.js';
import { NotifiedCache } from '../../db/notified-cache.js';

/** What a 304 depends on, per live serial (the token only as its digest: no secret kept in memory). */
export interface PassAuthEntry {
  id: string;
  updated_at: Date;
  tokenDigest: Buffer;
}

/** The channel of migrations/20261205T161000_apple_pass_changed.sql: `card id:serial` items, comma-separated, or '*'. */
export const APPLE_PASS_CHANGED_CHANNEL = 'apple_pass_changed';

export const tokenDigest = (value: string) => createHash('sha256').update(value).digest();

/**
 * A card changed by this process is not answered from the map from the moment its change is
 * recorded (before its commit) until a notification names it: its own notification arrives a little
 * after the commit, and a device may ask right away (test/e2e/apple-webservice.test.ts, two changes
 * within one second). A rolled-back change is never notified: the hold then ends after this long.
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
 *   found lost; a serial is forgotten when its card's updated_at, token or serial change anywhere
 *   (the trigger notifies at commit), or the card is deleted.
 * - Changes made by this process (every one goes through the card-change recorder, which calls
 *   `cardsChanging` inside the transaction): those cards are read from the database, and not kept,
 *   until a notification names them (or OWN_CHANGE_HOLD_MS) — the commit and its notification come
 *   after the call.
 * - Another instance's change reaches this one with its notification, milliseconds after the
 *   commit; in between this instance may still answer 304 for the old state. Entries also live at
 *   most 30 s, a bound should a silent network cut hide notifications until the connection's health
 *   check notices (db/notifications.ts).
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
        this.#map.forget(item.slice(colon + 1));
        this.#held.delete(item.slice(0, colon));
      }
    });
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
