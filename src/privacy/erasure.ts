/**
 * Erasure of a holder's personal data on request (152-FZ art. 21, GDPR art. 17), in the caller's
 * transaction: either all of it happens or none.
 *
 * Removed (docs/privacy.md has the table): the card's name, phone, e-mail, birthday, marketing
 * consent (flag, time, version), external id and personalised promo; the referral code (replaced by a
 * random one: the old one is a link shared with friends); the free-text reasons of the card's ledger
 * entries and pending bonuses (staff may have typed the holder's name); campaign parameters of the
 * card; the one-time-code records of the phone in this program; the external id and ledger reasons
 * copied into the card's webhook events (their delivery bodies are built from those events).
 *
 * Kept, for the program's accounting (and because they identify no one without the removed data):
 * the card row with its id, number, tier, balance and lifetime spend, the ledger entries (kind,
 * points, time, actor), the purchases (amounts, store, receipt), referral links between card ids,
 * wallet events and statistics. Ledger totals are therefore unchanged: an erasure is not a points
 * movement. The card's status becomes 'erased' and nothing serves it any more (POS answers 410
 * card_erased; campaigns, search and the join page skip it; the phone may enrol again as a new card).
 *
 * The wallets: the card change goes through the one update path (updates/card-changes.ts). Apple:
 * the registered devices are pushed and fetch the pass, now `voided: true` and without the holder's
 * name (wallets/apple/pass-service.ts); the devices' registrations (push tokens) stay until then —
 * a registration is what lets a device ask which passes changed — and are removed by retention
 * 30 days after the erasure (jobs/retention.ts). Google: the object is patched to state EXPIRED with
 * the name removed (wallets/google/service.ts).
 */
import { sql } from 'kysely';
import { lockCardInProgram } from '../cards/repository.js';
import type { Executor } from '../db/database.js';
import { cardErased, notFound } from '../http/errors.js';
import { generateReferralCode } from '../loyalty/card-number.js';
import { cardChangedColumns, type CardChangeRecorder } from '../updates/card-changes.js';

export interface ErasureResult {
  cardId: string;
  status: 'erased';
  erasedAt: string;
  erasedBy: string;
}

export interface ErasureDeps {
  cardChanges: CardChangeRecorder;
  /** The HMAC the one-time-code rows of a phone are stored under (verification/phone-verification.ts). */
  phoneHash(phone: string): string;
}

/** The audit row of an erased card as the API shows it. */
async function erasureOf(trx: Executor, programId: string, cardId: string): Promise<ErasureResult | undefined> {
  const row = await trx.selectFrom('card_erasure').select(['actor', 'erased_at']).where('program_id', '=', programId).where('card_id', '=', cardId).executeTakeFirst();
  return row ? { cardId, status: 'erased', erasedAt: new Date(row.erased_at).toISOString(), erasedBy: row.actor } : undefined;
}

/**
 * Erases the holder's personal data of one card. An already erased card answers its first erasure
 * (`repeated: true`) and changes nothing.
 */
export async function eraseCard(
  trx: Executor,
  deps: ErasureDeps,
  command: { programId: string; cardId: string; actor: string },
): Promise<ErasureResult & { repeated: boolean }> {
  const { programId, cardId } = command;
  const card = await lockCardInProgram(trx, programId, cardId);
  if (!card) throw notFound('card');
  if (card.status === 'erased') {
    const earlier = await erasureOf(trx, programId, cardId);
    if (!earlier) throw cardErased();
    return { ...earlier, repeated: true };
  }
  const phoneHash = deps.phoneHash(card.phone);

  await trx
    .updateTable('card')
    .set({
      status: 'erased',
      erased_at: new Date(),
      holder_name: '',
      // Unique per program and never a phone number: the phone may enrol again as a new card.
      phone: `erased:${card.id}`,
      email: null,
      birthday: null,
      consent: false,
      consent_at: null,
      consent_version: null,
      external_id: null,
      // Imported cards (src/imports): the plastic number stops finding the card, the old system's notes go.
      external_number: null,
      store: null,
      notes: null,
      promo: null,
      referral_code: generateReferralCode(),
      ...cardChangedColumns(),
    })
    .where('id', '=', card.id)
    .execute();
  await trx.updateTable('ledger_entry').set({ reason: null }).where('program_id', '=', programId).where('card_id', '=', cardId).where('reason', 'is not', null).execute();
  await trx.updateTable('pending_bonus').set({ reason: null }).where('program_id', '=', programId).where('card_id', '=', cardId).where('reason', 'is not', null).execute();
  await trx.updateTable('campaign_recipient').set({ params: null }).where('program_id', '=', programId).where('card_id', '=', cardId).where('params', 'is not', null).execute();
  await trx.deleteFrom('phone_verification').where('program_id', '=', programId).where('phone_hash', '=', phoneHash).execute();
  await scrubWebhookEvents(trx, programId, cardId);
  const erased = await trx
    .insertInto('card_erasure')
    .values({ program_id: programId, card_id: cardId, actor: command.actor })
    .returning(['erased_at'])
    .executeTakeFirstOrThrow();
  // The Apple devices get a push and fetch the voided pass; Google's object becomes EXPIRED.
  await deps.cardChanges.enqueue(trx, [cardId]);
  return { cardId, status: 'erased', erasedAt: new Date(erased.erased_at).toISOString(), erasedBy: command.actor, repeated: false };
}

/**
 * Card events carry ids, never contact data (webhooks/events.ts), with two exceptions that may:
 * `card.issued.externalId` (an id in the business's own system) and the free-text `reason` of ledger
 * entries in `balance.changed`. Deliveries not yet sent are built from these rows, so they go out scrubbed.
 */
async function scrubWebhookEvents(trx: Executor, programId: string, cardId: string) {
  const events = await trx
    .selectFrom('webhook_event')
    .select(['id', 'data'])
    .where('program_id', '=', programId)
    .where(sql<boolean>`data->>'cardId' = ${cardId}`)
    .execute();
  for (const event of events) {
    const data = event.data as Record<string, unknown>;
    let changed = false;
    if (typeof data.externalId === 'string') {
      data.externalId = null;
      changed = true;
    }
    if (Array.isArray(data.entries)) {
      for (const entry of data.entries as Array<Record<string, unknown>>) {
        if (entry && typeof entry === 'object' && entry.reason !== null && entry.reason !== undefined) {
          entry.reason = null;
          changed = true;
        }
      }
    }
    if (changed) await trx.updateTable('webhook_event').set({ data: JSON.stringify(data) }).where('id', '=', event.id).execute();
  }
}
