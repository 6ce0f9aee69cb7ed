import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import type { Transaction } from 'kysely';
import type { Database, CardChannel, CardRow, ProgramRow } from '../db/schema.js';
import { AppError, unprocessable } from '../http/errors.js';
import { findCardByPhone, findCardByReferralCode, lockCardInProgram } from '../cards/repository.js';
import { generateCardNumber, generateReferralCode, generateToken } from '../loyalty/card-number.js';
import { postToLedger } from '../loyalty/ledger.js';
import { addPendingBonuses } from '../loyalty/bonuses.js';
import { referralBonuses, tierFor, type LoyaltyRules } from '../loyalty/rules.js';
import type { CardChangeRecorder } from '../updates/card-changes.js';
import type { IssueCard } from '../cards/schemas.js';
import { emitEvent } from '../webhooks/events.js';

// A national number ("8 916 123-45-67") is read in the country of the program's currency.
const COUNTRY_BY_CURRENCY: Record<string, CountryCode> = { RUB: 'RU', KZT: 'KZ', BYN: 'BY', UZS: 'UZ', USD: 'US', GBP: 'GB' };

export function normalizePhone(input: string, currency: string): string {
  const parsed = parsePhoneNumberFromString(input.trim(), COUNTRY_BY_CURRENCY[currency]);
  if (!parsed || !parsed.isValid()) {
    throw unprocessable('invalid_phone', `"${input}" is not a valid phone number; use the international format, e.g. +79161234567`);
  }
  return parsed.number;
}

export interface IssueResult {
  card: CardRow;
  created: boolean;
}

/**
 * Enrolls a holder: one card per phone per program, the welcome bonus once, and the referral
 * bonuses once. Runs in the caller's transaction.
 *
 * `channel` says who enrolled the card. 'staff' (the API's POS/admin keys, the cabinet): bonuses go
 * to the ledger at once, the inviter is paid at enrollment (or at the first purchase, by the rules).
 * 'self_service' (the public join page): the card is unverified, its welcome and invitee bonuses are
 * pending (loyalty/bonuses.ts) and the inviter waits until the card is verified.
 */
export async function issueCard(
  trx: Transaction<Database>,
  cardChanges: CardChangeRecorder,
  program: ProgramRow,
  input: IssueCard,
  actor: string,
  options: { channel?: CardChannel } = {},
): Promise<IssueResult> {
  const channel = options.channel ?? 'staff';
  const rules = program.rules as LoyaltyRules;
  const phone = normalizePhone(input.holder.phone, program.currency);
  const existing = await findCardByPhone(trx, program.id, phone);
  if (existing) return { card: existing, created: false };

  let inviter: CardRow | undefined;
  if (input.referralCode) {
    inviter = await findCardByReferralCode(trx, program.id, input.referralCode.trim().toUpperCase());
    if (!inviter || inviter.status !== 'active') {
      throw unprocessable('referral_code_unknown', 'No active card has this referral code');
    }
  }
  if (input.staffId) {
    const staff = await trx
      .selectFrom('staff_member')
      .select('id')
      .where('id', '=', input.staffId)
      .where('program_id', '=', program.id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (!staff) throw unprocessable('staff_not_found', 'No staff member with this id in the program');
  }

  const card = await insertCard(trx, program, rules, phone, input, inviter?.id ?? null, channel);
  if (!card) {
    // A concurrent enrollment with the same phone won the race: answer with its card.
    const winner = await findCardByPhone(trx, program.id, phone);
    if (!winner) throw new Error('card insert failed without a conflicting phone');
    return { card: winner, created: false };
  }

  const atEnrollment = inviter ? referralBonuses(rules, 'enrollment') : null;
  const inviteeBonus = atEnrollment?.invitee ?? 0;
  if (channel === 'self_service') {
    // Shown, not spendable: released by a one-time code or by the first purchase (loyalty/bonuses.ts).
    await addPendingBonuses(
      trx,
      card,
      [
        { kind: 'welcome', points: rules.welcomeBonus },
        ...(inviter ? [{ kind: 'referral' as const, points: inviteeBonus, reason: `invited by ${inviter.number}` }] : []),
      ],
      actor,
    );
    if (inviter) {
      await trx
        .insertInto('referral')
        .values({
          invitee_card_id: card.id,
          program_id: program.id,
          inviter_card_id: inviter.id,
          status: 'pending',
          grant_on: rules.referral.grantOn,
          invitee_points: inviteeBonus,
        })
        .execute();
    }
  } else {
    const postings = [];
    if (rules.welcomeBonus > 0) {
      postings.push({ programId: program.id, cardId: card.id, kind: 'welcome' as const, points: rules.welcomeBonus, actor });
    }
    if (inviteeBonus > 0) {
      postings.push({ programId: program.id, cardId: card.id, kind: 'referral' as const, points: inviteeBonus, actor, reason: `invited by ${inviter!.number}` });
    }
    if (postings.length > 0) await postToLedger(trx, cardChanges, postings);
    if (inviter) {
      // Whether and when the referral was paid is a row of its own (no more matching reason texts).
      await trx
        .insertInto('referral')
        .values({
          invitee_card_id: card.id,
          program_id: program.id,
          inviter_card_id: inviter.id,
          status: atEnrollment ? 'paid' : 'pending',
          grant_on: rules.referral.grantOn,
          invitee_points: inviteeBonus,
          inviter_points: atEnrollment?.inviter ?? 0,
          paid_at: atEnrollment ? new Date() : null,
        })
        .execute();
    }
    if (inviter && atEnrollment && atEnrollment.inviter > 0) {
      await lockCardInProgram(trx, program.id, inviter.id);
      await postToLedger(trx, cardChanges, [
        { programId: program.id, cardId: inviter.id, kind: 'referral', points: atEnrollment.inviter, actor, reason: `invited ${card.number}` },
      ]);
    }
  }
  const fresh = await trx.selectFrom('card').selectAll().where('id', '=', card.id).executeTakeFirstOrThrow();
  await emitEvent(trx, {
    programId: program.id,
    type: 'card.issued',
    data: {
      cardId: fresh.id,
      number: fresh.number,
      tier: fresh.tier,
      balance: fresh.balance,
      pendingPoints: fresh.pending_points,
      channel: fresh.channel,
      referredBy: fresh.referred_by,
      staffId: fresh.staff_id,
      source: fresh.source,
      externalId: fresh.external_id,
      createdAt: new Date(fresh.created_at).toISOString(),
    },
  });
  return { card: fresh, created: true };
}

async function insertCard(
  trx: Transaction<Database>,
  program: ProgramRow,
  rules: LoyaltyRules,
  phone: string,
  input: IssueCard,
  referredBy: string | null,
  channel: CardChannel,
): Promise<CardRow | undefined> {
  // Numbers, referral codes and tokens are random; a collision is rare but possible, so retry.
  for (let attempt = 0; attempt < 5; attempt++) {
    const inserted = await trx
      .insertInto('card')
      .values({
        program_id: program.id,
        number: generateCardNumber(),
        holder_name: input.holder.name.trim(),
        phone,
        email: input.holder.email ?? null,
        birthday: input.holder.birthday ?? null,
        consent: input.consent ?? false,
        consent_at: input.consent ? new Date() : null,
        tier: tierFor(rules, 0).code,
        referral_code: generateReferralCode(),
        referred_by: referredBy,
        staff_id: input.staffId ?? null,
        source: input.source ?? null,
        external_id: input.externalId ?? null,
        public_token: generateToken(24),
        // Short serials keep pass URLs short (Apple advice); 16 random bytes never collide in practice.
        apple_serial: generateToken(16),
        apple_auth_token: generateToken(24),
        channel,
        ...(channel === 'staff' ? { verified_at: new Date(), verified_via: 'staff' as const } : {}),
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) return inserted;
    if (await findCardByPhone(trx, program.id, phone)) return undefined;
  }
  throw new AppError(503, 'card_number_exhausted', 'Could not allocate a unique card number; try again');
}
