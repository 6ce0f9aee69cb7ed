/**
 * Welcome and referral bonuses that depend on who the holder is.
 *
 * - A card issued by staff (POS/admin key, cabinet) is trusted: its bonuses go straight to the
 *   ledger, as they always did.
 * - A self-service card (the public join page) is unverified until its phone answers a one-time
 *   code or its first purchase at the till completes. Until then its welcome and referral bonuses
 *   are **pending**: `pending_bonus` rows and the card's `pending_points`, shown on the card page,
 *   the passes and in the API, but not ledger entries, so they cannot pay for anything and the
 *   balance stays exactly the sum of the ledger. Verification releases them into the ledger (kind
 *   `welcome`/`referral`, through postToLedger: wallet update and `balance.changed` as any change),
 *   and only then is the inviter paid, at most `rules.referral.maxPerInviterPerDay` such referrals
 *   per inviter in 24 hours.
 *
 * Referrals are structured data (`referral`, one row per invited card): whether, when and by which
 * purchase they were paid, so a refund of that purchase can reverse them on both sides.
 */
import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import type { CardRow, ReferralTable } from '../db/schema.js';
import type { Selectable } from 'kysely';
import { lockCardInProgram } from '../cards/repository.js';
import type { CardChangeRecorder } from '../updates/card-changes.js';
import { postToLedger } from './ledger.js';
import type { LoyaltyRules } from './rules.js';

export type ReferralRow = Selectable<ReferralTable>;

/** The card's referral row, locked (the caller holds the invitee card's lock already). */
export function lockReferral(trx: Executor, inviteeCardId: string): Promise<ReferralRow | undefined> {
  return trx.selectFrom('referral').selectAll().where('invitee_card_id', '=', inviteeCardId).forUpdate().executeTakeFirst();
}

/** Adds not-yet-spendable bonuses to a card; returns their sum. */
export async function addPendingBonuses(
  trx: Executor,
  card: Pick<CardRow, 'id' | 'program_id'>,
  bonuses: Array<{ kind: 'welcome' | 'referral'; points: number; reason?: string }>,
  actor: string,
): Promise<number> {
  const rows = bonuses.filter((b) => b.points > 0);
  if (rows.length === 0) return 0;
  await trx
    .insertInto('pending_bonus')
    .values(rows.map((b) => ({ program_id: card.program_id, card_id: card.id, kind: b.kind, points: b.points, actor, reason: b.reason ?? null })))
    .execute();
  const sum = rows.reduce((total, b) => total + b.points, 0);
  await trx.updateTable('card').set({ pending_points: sql<number>`pending_points + ${sum}` }).where('id', '=', card.id).execute();
  return sum;
}

/**
 * Posts a card's pending bonuses to the ledger: spendable from now on. `purchaseId`: the first
 * purchase that released them (its refund takes them back). The caller holds the card lock.
 */
export async function releasePendingBonuses(
  trx: Executor,
  cardChanges: CardChangeRecorder,
  card: Pick<CardRow, 'id' | 'program_id'>,
  options: { actor: string; purchaseId?: string | null },
): Promise<number> {
  const pending = await trx
    .selectFrom('pending_bonus')
    .selectAll()
    .where('card_id', '=', card.id)
    .where('released_at', 'is', null)
    .orderBy('id')
    .forUpdate()
    .execute();
  if (pending.length === 0) return 0;
  const sum = pending.reduce((total, row) => total + row.points, 0);
  const after = await postToLedger(
    trx,
    cardChanges,
    pending.map((row) => ({
      programId: card.program_id,
      cardId: card.id,
      kind: row.kind,
      points: row.points,
      actor: options.actor,
      purchaseId: options.purchaseId ?? null,
      reason: row.reason ? `${row.reason} (released)` : 'released',
    })),
    { pendingPointsDelta: -sum },
  );
  for (const [index, row] of pending.entries()) {
    await trx
      .updateTable('pending_bonus')
      .set({ released_at: sql<Date>`now()`, release_purchase_id: options.purchaseId ?? null, ledger_entry_id: after.entryIds[index] ?? null })
      .where('id', '=', row.id)
      .execute();
  }
  return sum;
}

/**
 * Pays the inviter of a referral that became due and records it: `paid`, or `capped` when the
 * invitee is a self-service card and the inviter already had `maxPerInviterPerDay` such referrals
 * paid in the last 24 hours (the inviter row lock serialises the count). `inviteePoints`: what the
 * invitee got with it (recorded for the refund). `purchaseId`: the purchase that made it due.
 */
export async function payInviter(
  trx: Executor,
  cardChanges: CardChangeRecorder,
  input: {
    referral: ReferralRow;
    rules: LoyaltyRules;
    invitee: Pick<CardRow, 'number' | 'channel'>;
    inviteePoints: number;
    actor: string;
    purchaseId: string | null;
  },
): Promise<'paid' | 'capped'> {
  const { referral, rules, invitee } = input;
  const inviter = await lockCardInProgram(trx, referral.program_id, referral.inviter_card_id);
  let status: 'paid' | 'capped' = 'paid';
  if (invitee.channel === 'self_service') {
    const { n } = await trx
      .selectFrom('referral as r')
      .innerJoin('card as c', 'c.id', 'r.invitee_card_id')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('r.inviter_card_id', '=', referral.inviter_card_id)
      .where('r.status', '=', 'paid')
      .where('r.paid_at', '>', sql<Date>`now() - interval '24 hours'`)
      .where('c.channel', '=', 'self_service')
      .executeTakeFirstOrThrow();
    if (Number(n) >= rules.referral.maxPerInviterPerDay) status = 'capped';
  }
  const inviterPoints = status === 'paid' && inviter ? rules.referral.inviterBonus : 0;
  if (inviterPoints > 0) {
    await postToLedger(trx, cardChanges, [
      {
        programId: referral.program_id,
        cardId: referral.inviter_card_id,
        kind: 'referral',
        points: inviterPoints,
        actor: input.actor,
        reason: `referral: ${invitee.number} joined`,
      },
    ]);
  }
  await trx
    .updateTable('referral')
    .set({
      status,
      inviter_points: inviterPoints,
      invitee_points: sql<number>`invitee_points + ${input.inviteePoints}`,
      purchase_id: input.purchaseId,
      paid_at: sql<Date>`now()`,
    })
    .where('invitee_card_id', '=', referral.invitee_card_id)
    .execute();
  return status;
}

/**
 * The card's holder is real: by a one-time code sent to the phone (`otp`) or by its first
 * completed purchase (`purchase`). Releases the pending bonuses and pays the inviter of a referral
 * granted at enrollment. The caller holds the card lock. Returns the points released.
 */
export async function verifyCard(
  trx: Executor,
  cardChanges: CardChangeRecorder,
  input: { card: CardRow; rules: LoyaltyRules; via: 'otp' | 'purchase'; actor: string; purchaseId?: string | null },
): Promise<{ released: number; referral: 'paid' | 'capped' | null }> {
  const { card, via } = input;
  if (!card.verified_at || (via === 'otp' && card.verified_via !== 'otp')) {
    await trx
      .updateTable('card')
      .set({ verified_at: card.verified_at ?? sql<Date>`now()`, verified_via: via === 'otp' ? 'otp' : (card.verified_via ?? 'purchase') })
      .where('id', '=', card.id)
      .execute();
  }
  const released = await releasePendingBonuses(trx, cardChanges, card, { actor: input.actor, purchaseId: input.purchaseId });
  let referral: 'paid' | 'capped' | null = null;
  if (card.referred_by) {
    const row = await lockReferral(trx, card.id);
    if (row && row.status === 'pending' && row.grant_on === 'enrollment') {
      referral = await payInviter(trx, cardChanges, {
        referral: row,
        rules: input.rules,
        invitee: card,
        inviteePoints: 0,
        actor: input.actor,
        purchaseId: input.purchaseId ?? null,
      });
    }
  }
  return { released, referral };
}
