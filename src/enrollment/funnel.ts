import { createHmac } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { Database, WalletEventKind, WalletKind } from '../db/schema.js';
import { emitEvent } from '../webhooks/events.js';

/**
 * The install funnel: join-page views, and wallet installs/removals. Cards issued come from the
 * card table itself (`card.source`, `card.staff_id`, `card.referred_by`).
 */

export interface WalletEvent {
  programId: string;
  cardId: string;
  wallet: WalletKind;
  kind: WalletEventKind;
  /** Default: the database's now(). */
  at?: Date;
}

/**
 * Records that a card was installed into or removed from a wallet. Apple events come from the
 * PassKit web service (first device registered / last one gone, see `trackAppleRegistrations`);
 * the Google save/delete callback calls this directly, in its own transaction if it has one.
 * Emits the `card.installed` / `card.removed` webhook event with it.
 */
export async function recordWalletEvent(executor: Executor, event: WalletEvent): Promise<void> {
  await executor
    .insertInto('wallet_event')
    .values({
      program_id: event.programId,
      card_id: event.cardId,
      wallet: event.wallet,
      kind: event.kind,
      ...(event.at ? { created_at: event.at } : {}),
    })
    .execute();
  await emitEvent(executor, {
    programId: event.programId,
    type: event.kind === 'installed' ? 'card.installed' : 'card.removed',
    data: { cardId: event.cardId, wallet: event.wallet },
  });
}

function countAppleRegistrations(executor: Executor, passTypeIdentifier: string, serialNumber: string) {
  return executor
    .selectFrom('apple_registration')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('pass_type_identifier', '=', passTypeIdentifier)
    .where('serial_number', '=', serialNumber)
    .executeTakeFirstOrThrow()
    .then((row) => Number(row.n));
}

/**
 * Runs a change to a card's Apple registrations and records the funnel event it causes: the card's
 * first registration → `installed`; its last registration gone → `removed`. Other changes (a
 * second device, a push-token refresh) record nothing. The card row is locked for the transaction
 * so two devices registering at once cannot both count as "first".
 */
export async function trackAppleRegistrations<T>(
  db: Db,
  pass: { cardId: string; passTypeIdentifier: string; serialNumber: string },
  at: Date,
  change: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const card = await trx.selectFrom('card').select(['id', 'program_id']).where('id', '=', pass.cardId).forUpdate().executeTakeFirst();
    const before = await countAppleRegistrations(trx, pass.passTypeIdentifier, pass.serialNumber);
    const result = await change(trx);
    const after = await countAppleRegistrations(trx, pass.passTypeIdentifier, pass.serialNumber);
    const kind: WalletEventKind | undefined = before === 0 && after > 0 ? 'installed' : before > 0 && after === 0 ? 'removed' : undefined;
    if (kind && card) await recordWalletEvent(trx, { programId: card.program_id, cardId: card.id, wallet: 'apple', kind, at });
    return result;
  });
}

/** A time zone both Intl and (almost surely) PostgreSQL know; UTC when the program's is unknown. */
export function safeTimeZone(timeZone: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return timeZone;
  } catch {
    return 'UTC';
  }
}

/** The local calendar day (YYYY-MM-DD) of an instant in a time zone. */
export function localDay(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: safeTimeZone(timeZone), year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
}

/**
 * The stored visitor key: HMAC of the random visitor cookie, the program and the day. It is not
 * personal data, and the same visitor on two days gives two unrelated hashes.
 */
export function visitorHash(key: Buffer, programId: string, day: string, visitorId: string): string {
  return createHmac('sha256', key).update(`${programId}|${day}|${visitorId}`).digest('base64url').slice(0, 32);
}

export interface JoinView {
  programId: string;
  day: string;
  visitorHash: string;
  source: string | null;
  staffId: string | null;
  referrerCardId: string | null;
  at: Date;
}

/** Counts a join-page view once per visitor per program per local day (the first view's attribution wins). */
export async function recordJoinView(executor: Executor, view: JoinView): Promise<boolean> {
  const result = await executor
    .insertInto('join_view')
    .values({
      program_id: view.programId,
      day: view.day,
      visitor_hash: view.visitorHash,
      source: view.source,
      staff_id: view.staffId,
      referrer_card_id: view.referrerCardId,
      created_at: view.at,
    })
    .onConflict((oc) => oc.columns(['program_id', 'day', 'visitor_hash']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}
