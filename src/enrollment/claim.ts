import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import type { CardRow, ProgramRow } from '../db/schema.js';
import { verifyCard } from '../loyalty/bonuses.js';
import { normalizeScannedValue } from '../loyalty/card-number.js';
import type { LoyaltyRules } from '../loyalty/rules.js';
import type { CardChangeRecorder } from '../updates/card-changes.js';

/**
 * "I already have a card" (issue #12): the holder of an imported plastic card brings the SAME card
 * to the wallet from the join page. They give the plastic number (the card's `external_number`) and
 * their phone; the phone must be the one the import brought. What they get is the existing card's
 * page — its balance, tier and history — never a second card.
 *
 * Who may claim: the plastic number is already a bearer credential at the till (a cashier scanning
 * it can pay with the card's points), so number + the matching phone gives nothing the plastic does
 * not. The phone is proven with a one-time code when an SMS gateway is configured; without one the
 * claim is recorded unverified and the card's first completed purchase after it confirms it, as
 * join-page bonuses wait for it (docs/enrollment.md).
 */

/** The plastic number as typed, reduced like a scanner's value: the import stored it the same way (imports/parse.ts). */
export function normalizePlasticNumber(value: string): string {
  return normalizeScannedValue(value);
}

/**
 * The active card with this plastic number and this phone, or undefined — one answer for a wrong
 * number and a wrong phone alike: the caller must not tell them apart (no oracle for which is wrong).
 */
export async function findClaimableCard(executor: Executor, programId: string, plasticNumber: string, phone: string): Promise<CardRow | undefined> {
  if (!plasticNumber) return undefined;
  const card = await executor
    .selectFrom('card')
    .selectAll()
    .where('program_id', '=', programId)
    .where('external_number', '=', plasticNumber)
    .where('status', '=', 'active')
    .executeTakeFirst();
  return card && card.phone === phone ? card : undefined;
}

/**
 * Records the claim (first one wins its `claimed_at`; a later proven one marks it verified). With
 * `via: 'otp'` the phone was proven: the card is verified by code like the join page's cards
 * (loyalty/bonuses.ts: pending bonuses released, if any). Returns the card as it is now.
 */
export async function claimPlasticCard(
  trx: Executor,
  cardChanges: CardChangeRecorder,
  program: ProgramRow,
  cardId: string,
  options: { via: 'otp' | null; actor: string },
): Promise<{ card: CardRow; verified: boolean }> {
  const card = await trx.selectFrom('card').selectAll().where('program_id', '=', program.id).where('id', '=', cardId).forUpdate().executeTakeFirstOrThrow();
  const claim = await trx
    .insertInto('card_claim')
    .values({
      program_id: program.id,
      card_id: card.id,
      verified_at: options.via ? sql<Date>`now()` : null,
      verified_via: options.via,
    })
    .onConflict((oc) =>
      oc.columns(['program_id', 'card_id']).doUpdateSet({
        verified_at: sql<Date | null>`coalesce(card_claim.verified_at, excluded.verified_at)`,
        verified_via: sql<'otp' | 'purchase' | null>`coalesce(card_claim.verified_via, excluded.verified_via)`,
      }),
    )
    .returning(['verified_at'])
    .executeTakeFirstOrThrow();
  if (options.via === 'otp') {
    await verifyCard(trx, cardChanges, { card, rules: program.rules as LoyaltyRules, via: 'otp', actor: options.actor });
  }
  const fresh = await trx.selectFrom('card').selectAll().where('id', '=', card.id).executeTakeFirstOrThrow();
  return { card: fresh, verified: claim.verified_at !== null };
}

/** A completed purchase confirms an unverified claim of its card (the caller holds the card lock). */
export async function confirmClaimByPurchase(trx: Executor, programId: string, cardId: string): Promise<void> {
  await trx
    .updateTable('card_claim')
    .set({ verified_at: sql<Date>`now()`, verified_via: 'purchase' })
    .where('program_id', '=', programId)
    .where('card_id', '=', cardId)
    .where('verified_at', 'is', null)
    .execute();
}

/** Whether the card has a claim still waiting for its confirming purchase. */
export async function hasUnverifiedClaim(executor: Executor, programId: string, cardId: string): Promise<boolean> {
  const row = await executor
    .selectFrom('card_claim')
    .select('verified_at')
    .where('program_id', '=', programId)
    .where('card_id', '=', cardId)
    .executeTakeFirst();
  return row !== undefined && row.verified_at === null;
}
