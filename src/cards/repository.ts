import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import { CompiledStatement } from '../db/compiled-statement.js';
import type { CardRow } from '../db/schema.js';

export function findCardInProgram(executor: Executor, programId: string, cardId: string) {
  return executor.selectFrom('card').selectAll().where('id', '=', cardId).where('program_id', '=', programId).executeTakeFirst();
}

/** Locks the card row for the rest of the transaction: concurrent changes to one card serialize. */
export function lockCardInProgram(executor: Executor, programId: string, cardId: string) {
  return executor
    .selectFrom('card')
    .selectAll()
    .where('id', '=', cardId)
    .where('program_id', '=', programId)
    .forUpdate()
    .executeTakeFirst();
}

/**
 * `lockCardInProgram` that also reads the program row's version (`xmin`) in the same statement, so
 * the caller can take the program from the cache without a round trip of its own (issue #14). Only
 * the card row is locked.
 */
export async function lockCardWithProgramVersion(executor: Executor, programId: string, cardId: string) {
  const { rows } = await lockCardWithProgramVersionStatement.execute(executor, { programId, cardId });
  return rows[0];
}

// Every purchase runs it: built once (src/db/compiled-statement.ts).
const lockCardWithProgramVersionStatement = new CompiledStatement((executor, slots: { programId: string; cardId: string }) =>
  executor
    .selectFrom('card as c')
    .innerJoin('program as p', 'p.id', 'c.program_id')
    .selectAll('c')
    .select(sql<string>`p.xmin::text`.as('program_version'))
    .where('c.id', '=', slots.cardId)
    .where('c.program_id', '=', slots.programId)
    .forUpdate(['c']),
);

export function findCardByNumber(executor: Executor, programId: string, number: string) {
  return executor.selectFrom('card').selectAll().where('program_id', '=', programId).where('number', '=', number).executeTakeFirst();
}

/**
 * The card a scanned barcode belongs to: the wallet card's number, or the plastic number an import
 * kept (docs/import.md). A wallet number wins if both match (they never should: plastic numbers are
 * the old system's, wallet numbers are Luhn-checked 12 digits of our own).
 */
export function findCardByBarcode(executor: Executor, programId: string, value: string) {
  return executor
    .selectFrom('card')
    .selectAll()
    .where('program_id', '=', programId)
    .where((eb) => eb.or([eb('number', '=', value), eb('external_number', '=', value)]))
    .orderBy(sql`number = ${value}`, 'desc')
    .limit(1)
    .executeTakeFirst();
}

export function findCardByPhone(executor: Executor, programId: string, phone: string) {
  return executor.selectFrom('card').selectAll().where('program_id', '=', programId).where('phone', '=', phone).executeTakeFirst();
}

export function findCardByReferralCode(executor: Executor, programId: string, code: string) {
  return executor
    .selectFrom('card')
    .selectAll()
    .where('program_id', '=', programId)
    .where('referral_code', '=', code)
    .executeTakeFirst();
}

export function findCardByPublicToken(executor: Executor, token: string) {
  return executor.selectFrom('card').selectAll().where('public_token', '=', token).executeTakeFirst();
}

/**
 * The card behind an Apple serial with its program's row version (`xmin`: the transaction that last
 * wrote the program row, so any change to the program changes it): the pass download reads the
 * program itself only when that version is not cached yet.
 */
export type CardWithProgramVersion = CardRow & { program_version: string };

export function findCardWithProgramVersion(executor: Executor, serial: string): Promise<CardWithProgramVersion | undefined> {
  return executor
    .selectFrom('card as c')
    .innerJoin('program as p', 'p.id', 'c.program_id')
    .selectAll('c')
    .select(sql<string>`p.xmin::text`.as('program_version'))
    .where('c.apple_serial', '=', serial)
    .executeTakeFirst();
}

/**
 * What the PassKit web service needs to authenticate a request and answer 304: three columns,
 * not the whole row (devices poll far more often than passes change; see bench:passes section 2).
 */
export function findApplePassAuth(executor: Executor, serial: string) {
  return executor.selectFrom('card').select(['id', 'apple_auth_token', 'updated_at']).where('apple_serial', '=', serial).executeTakeFirst();
}

export type ApplePassAuth = Pick<CardRow, 'id' | 'apple_auth_token' | 'updated_at'>;

/** Cashier search: exact card number or phone, or a name prefix. */
export function searchCards(executor: Executor, programId: string, q: { number?: string; externalNumber?: string; phone?: string; namePrefix: string }, limit: number) {
  return executor
    .selectFrom('card')
    .selectAll()
    .where('program_id', '=', programId)
    // An erased card has no holder left to find.
    .where('status', '!=', 'erased')
    .where((eb) => {
      const ors = [eb(eb.fn('lower', ['holder_name']), 'like', `${q.namePrefix.toLowerCase().replace(/[\\%_]/g, '\\$&')}%`)];
      if (q.number) ors.push(eb('number', '=', q.number));
      // An imported plastic number finds its card too.
      if (q.externalNumber) ors.push(eb('external_number', '=', q.externalNumber));
      if (q.phone) ors.push(eb('phone', '=', q.phone));
      return eb.or(ors);
    })
    .orderBy('holder_name')
    .limit(limit)
    .execute();
}

export async function appleDeviceCounts(executor: Executor, serials: string[]): Promise<Map<string, number>> {
  if (serials.length === 0) return new Map();
  const rows = await executor
    .selectFrom('apple_registration')
    .select(['serial_number', (eb) => eb.fn.countAll<number>().as('devices')])
    .where('serial_number', 'in', serials)
    .groupBy('serial_number')
    .execute();
  return new Map(rows.map((r) => [r.serial_number, Number(r.devices)]));
}

/** Cards whose Google Wallet object is currently saved by its holder (save/delete callbacks). */
export async function googleSavedCards(executor: Executor, cardIds: string[]): Promise<Set<string>> {
  if (cardIds.length === 0) return new Set();
  const rows = await executor.selectFrom('google_object').select('card_id').where('card_id', 'in', cardIds).where('saved', '=', true).execute();
  return new Set(rows.map((r) => r.card_id));
}

export type { CardRow };
