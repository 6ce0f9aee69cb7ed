import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import type { Transaction } from 'kysely';
import type { Database, CardRow, ProgramRow } from '../db/schema.js';
import { AppError, unprocessable } from '../http/errors.js';
import { findCardByPhone, findCardByReferralCode, lockCardInProgram } from '../cards/repository.js';
import { generateCardNumber, generateReferralCode, generateToken } from '../loyalty/card-number.js';
import { postToLedger } from '../loyalty/ledger.js';
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
 * bonuses once (when the program grants them at enrollment). Runs in the caller's transaction.
 */
export async function issueCard(
  trx: Transaction<Database>,
  cardChanges: CardChangeRecorder,
  program: ProgramRow,
  input: IssueCard,
  actor: string,
): Promise<IssueResult> {
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

  const card = await insertCard(trx, program, rules, phone, input, inviter?.id ?? null);
  if (!card) {
    // A concurrent enrollment with the same phone won the race: answer with its card.
    const winner = await findCardByPhone(trx, program.id, phone);
    if (!winner) throw new Error('card insert failed without a conflicting phone');
    return { card: winner, created: false };
  }

  const bonuses = inviter ? referralBonuses(rules, 'enrollment') : null;
  // The referral reasons below are how recordPurchase sees that the bonuses were already paid.
  const postings = [];
  if (rules.welcomeBonus > 0) {
    postings.push({ programId: program.id, cardId: card.id, kind: 'welcome' as const, points: rules.welcomeBonus, actor });
  }
  if (bonuses && bonuses.invitee > 0) {
    postings.push({ programId: program.id, cardId: card.id, kind: 'referral' as const, points: bonuses.invitee, actor, reason: `invited by ${inviter!.number}` });
  }
  let current = card;
  if (postings.length > 0) {
    const after = await postToLedger(trx, cardChanges, postings);
    current = { ...card, balance: after.balance };
  }
  if (inviter && bonuses && bonuses.inviter > 0) {
    await lockCardInProgram(trx, program.id, inviter.id);
    await postToLedger(trx, cardChanges, [
      { programId: program.id, cardId: inviter.id, kind: 'referral', points: bonuses.inviter, actor, reason: `invited ${card.number}` },
    ]);
  }
  const fresh = await trx.selectFrom('card').selectAll().where('id', '=', current.id).executeTakeFirstOrThrow();
  await emitEvent(trx, {
    programId: program.id,
    type: 'card.issued',
    data: {
      cardId: fresh.id,
      number: fresh.number,
      tier: fresh.tier,
      balance: fresh.balance,
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
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) return inserted;
    if (await findCardByPhone(trx, program.id, phone)) return undefined;
  }
  throw new AppError(503, 'card_number_exhausted', 'Could not allocate a unique card number; try again');
}
