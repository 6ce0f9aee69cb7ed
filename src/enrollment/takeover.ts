import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import type { CardRow, ProgramRow } from '../db/schema.js';
import { notFound } from '../http/errors.js';
import { verifyCard } from '../loyalty/bonuses.js';
import { generateCardNumber, generateToken } from '../loyalty/card-number.js';
import type { LoyaltyRules } from '../loyalty/rules.js';
import { cardChangedColumns, type CardChangeRecorder } from '../updates/card-changes.js';

/**
 * What a proven phone gets: the card enrolled with that phone.
 *
 * The person who answered the one-time code owns the phone. Three cases:
 *
 * - the request already holds the card (its page token): the card is verified — pending bonuses
 *   released, the inviter paid (loyalty/bonuses.ts);
 * - someone else may hold it, and its phone was never proven by a code (a self-service card, or
 *   one typed in by staff): the card is **taken over** — a new card number (the barcode a till
 *   accepts), page token, Apple serial and authentication token, and a new Google object, so what
 *   the other holder has stops working; their Apple pass is voided and their Google object set
 *   INACTIVE through the update path (`retired_apple_pass`, `retired_google_object`). Then verified;
 * - its phone was proven by a code before: the owner is the same person as then; they just get the
 *   card (nothing rotates, the devices they have keep working).
 *
 * Points, history, tier and referral code stay with the card: they belong to the phone's owner.
 * Marketing consent, email and birthday are cleared by a takeover: they were given by whoever
 * enrolled the number.
 */
export async function claimCardByPhone(
  trx: Executor,
  cardChanges: CardChangeRecorder,
  program: ProgramRow,
  phone: string,
  options: { heldToken?: string; actor: string },
): Promise<{ card: CardRow; takenOver: boolean; released: number }> {
  const card = await trx.selectFrom('card').selectAll().where('program_id', '=', program.id).where('phone', '=', phone).forUpdate().executeTakeFirst();
  if (!card) throw notFound('card');
  const holds = options.heldToken !== undefined && options.heldToken === card.public_token;
  const takenOver = !holds && card.verified_via !== 'otp';
  if (takenOver) await retireCredentials(trx, cardChanges, card);
  const { released } = await verifyCard(trx, cardChanges, { card, rules: program.rules as LoyaltyRules, via: 'otp', actor: options.actor });
  const fresh = await trx.selectFrom('card').selectAll().where('id', '=', card.id).executeTakeFirstOrThrow();
  return { card: fresh, takenOver, released };
}

/**
 * Gives the card new credentials and retires the old ones in the caller's transaction. Apple: "Any
 * field on a pass can be updated except for the authentication token and serial number", so the old
 * pass cannot be turned into the new one; its serial and token keep answering with a voided pass
 * until its devices fetched it (wallets/apple/webservice.ts), and the update path pushes them
 * (updates-adapter.ts). Google: the old object is set INACTIVE by the update path; the card's next
 * object gets a new id (`google_generation`).
 */
export async function retireCredentials(trx: Executor, cardChanges: CardChangeRecorder, card: CardRow): Promise<void> {
  await trx
    .insertInto('retired_apple_pass')
    .values({ serial_number: card.apple_serial, auth_token: card.apple_auth_token, card_id: card.id, program_id: card.program_id, number: card.number })
    .execute();
  const google = await trx.selectFrom('google_object').select('object_id').where('card_id', '=', card.id).executeTakeFirst();
  if (google) {
    await trx.insertInto('retired_google_object').values({ object_id: google.object_id, card_id: card.id, program_id: card.program_id }).execute();
    await trx.deleteFrom('google_object').where('card_id', '=', card.id).execute();
  }
  // A fresh number: 11 random digits rarely collide, but the number is unique per program.
  let number = generateCardNumber();
  for (let attempt = 0; attempt < 5; attempt++) {
    const taken = await trx.selectFrom('card').select('id').where('program_id', '=', card.program_id).where('number', '=', number).executeTakeFirst();
    if (!taken) break;
    number = generateCardNumber();
  }
  await trx
    .updateTable('card')
    .set({
      number,
      public_token: generateToken(24),
      apple_serial: generateToken(16),
      apple_auth_token: generateToken(24),
      google_object_id: null,
      google_generation: sql<number>`google_generation + 1`,
      // Whoever enrolled the number gave these, not necessarily the phone's owner: marketing consent
      // must come from the owner, and the email and birthday may be someone else's.
      consent: false,
      consent_at: null,
      consent_version: null,
      email: null,
      birthday: null,
      ...cardChangedColumns(),
    })
    .where('id', '=', card.id)
    .execute();
  await cardChanges.enqueue(trx, [card.id]);
}
