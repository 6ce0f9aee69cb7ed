import type { Db, Executor } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';
import { AppError, conflict, notFound } from '../http/errors.js';
import { defaultRules, mechanicOf, validateRules, type LoyaltyRules } from '../loyalty/rules.js';
import type { CardChangeRecorder } from '../updates/card-changes.js';
import { findProgram } from './repository.js';
import { forgetProgram } from './cache.js';
import type { CreateProgram, Design, ProgramDto, Texts, UpdateProgram } from './schemas.js';

export const DEFAULT_DESIGN: Design = {
  backgroundColor: '#1f2a44',
  foregroundColor: '#ffffff',
  labelColor: '#c9d3ea',
};

export interface AppleIdentity {
  passTypeIdentifier: string;
  teamIdentifier: string;
}

function checkedRules(input: unknown): LoyaltyRules {
  const result = validateRules(input);
  if (!result.ok) {
    throw new AppError(400, 'invalid_rules', `Invalid loyalty rules: ${result.errors.join('; ')}`, { errors: result.errors });
  }
  return result.rules;
}

export function programDto(row: ProgramRow, apple: AppleIdentity): ProgramDto {
  const appleSettings = row.apple as { organizationName?: string };
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    defaultLanguage: row.default_language,
    currency: row.currency,
    timeZone: row.time_zone,
    design: { ...DEFAULT_DESIGN, ...(row.design as Partial<Design>) },
    apple: {
      organizationName: appleSettings.organizationName ?? row.name,
      // One Pass Type ID certificate per instance: every program's passes carry its identifiers.
      passTypeIdentifier: apple.passTypeIdentifier,
      teamIdentifier: apple.teamIdentifier,
    },
    texts: row.texts as Texts,
    locations: row.locations as ProgramDto['locations'],
    rules: row.rules as LoyaltyRules,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export async function createProgram(db: Db, input: CreateProgram): Promise<ProgramRow> {
  const rules = input.rules === undefined ? defaultRules() : checkedRules(input.rules);
  const inserted = await db
    .insertInto('program')
    .values({
      slug: input.slug,
      name: input.name,
      default_language: input.defaultLanguage,
      currency: input.currency,
      time_zone: input.timeZone,
      design: JSON.stringify({ ...DEFAULT_DESIGN, ...input.design }),
      apple: JSON.stringify(input.apple ?? { organizationName: input.name }),
      google: JSON.stringify({}),
      texts: JSON.stringify(input.texts ?? {}),
      locations: JSON.stringify(input.locations ?? []),
      rules: JSON.stringify(rules),
    })
    .onConflict((oc) => oc.column('slug').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!inserted) throw conflict('slug_taken', `A program with slug "${input.slug}" already exists`);
  return inserted;
}

/** Fields whose change alters every card's pass (design, texts, locations, tier names). */
const PASS_FIELDS: (keyof UpdateProgram)[] = ['name', 'design', 'apple', 'texts', 'locations', 'rules'];

export async function updateProgram(
  db: Db,
  cardChanges: CardChangeRecorder,
  programId: string,
  patch: UpdateProgram,
): Promise<ProgramRow> {
  const updated = await db.transaction().execute(async (trx) => {
    const current = await lockProgram(trx, programId);
    const set: Record<string, unknown> = { updated_at: new Date() };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.defaultLanguage !== undefined) set.default_language = patch.defaultLanguage;
    if (patch.currency !== undefined) set.currency = patch.currency;
    if (patch.timeZone !== undefined) set.time_zone = patch.timeZone;
    if (patch.design !== undefined) set.design = JSON.stringify({ ...(current.design as object), ...patch.design });
    if (patch.apple !== undefined) set.apple = JSON.stringify(patch.apple);
    if (patch.texts !== undefined) set.texts = JSON.stringify(patch.texts);
    if (patch.locations !== undefined) set.locations = JSON.stringify(patch.locations);
    const rules = patch.rules !== undefined ? checkedRules(patch.rules) : undefined;
    if (rules) await refuseMechanicSwitchWithCards(trx, programId, current.rules as LoyaltyRules, rules);
    if (rules) set.rules = JSON.stringify(rules);
    const updated = await trx.updateTable('program').set(set).where('id', '=', programId).returningAll().executeTakeFirstOrThrow();
    if (rules) await reassignRemovedTiers(trx, programId, rules);
    if (PASS_FIELDS.some((field) => patch[field] !== undefined)) {
      await touchAllCards(trx, cardChanges, programId);
    }
    return updated;
  });
  // This process's cached row goes now; the others' when the program_changed notification arrives.
  forgetProgram(programId);
  return updated;
}

/** A design change reaches every card through the same update path as a balance change. */
export async function touchAllCards(trx: Executor, cardChanges: CardChangeRecorder, programId: string) {
  const cards = await trx.selectFrom('card').select('id').where('program_id', '=', programId).execute();
  // Chunked so a program with many cards does not build one giant statement.
  for (let i = 0; i < cards.length; i += 1000) {
    await cardChanges.record(trx, cards.slice(i, i + 1000).map((c) => c.id));
  }
}

/**
 * A program's mechanic is what its cards hold (points, a discount level, stamps): switching it under
 * live cards would silently strand balances or stamps, so it is refused once the program has a card.
 * The caller holds the program row FOR UPDATE; a card insert takes a key-share lock on it (the
 * foreign key), so no card can be issued between this check and the commit.
 */
async function refuseMechanicSwitchWithCards(trx: Executor, programId: string, before: LoyaltyRules, after: LoyaltyRules) {
  const from = mechanicOf(before);
  const to = mechanicOf(after);
  if (from === to) return;
  const anyCard = await trx.selectFrom('card').select('id').where('program_id', '=', programId).limit(1).executeTakeFirst();
  if (anyCard) {
    throw new AppError(409, 'mechanic_change_refused', `The program has cards: its mechanic cannot change from "${from}" to "${to}"`, { from, to });
  }
}

async function lockProgram(trx: Executor, programId: string) {
  const row = await trx.selectFrom('program').selectAll().where('id', '=', programId).forUpdate().executeTakeFirst();
  if (!row) throw notFound('program');
  return row;
}

export async function getProgramOr404(executor: Executor, programId: string) {
  const row = await findProgram(executor, programId);
  if (!row) throw notFound('program');
  return row;
}

/**
 * Cards whose tier was removed from the rules move to the tier their lifetime spend earns, so no
 * card is left on a tier the rules no longer know (purchases would refuse it as unknown_tier).
 * Cards on tiers that still exist keep them: changing thresholds never downgrades anyone.
 */
async function reassignRemovedTiers(trx: Executor, programId: string, rules: LoyaltyRules) {
  const codes = rules.tiers.map((t) => t.code);
  // Highest tier first: each card lands in the highest tier it qualifies for, then has a known code.
  for (const tier of [...rules.tiers].reverse()) {
    await trx
      .updateTable('card')
      .set({ tier: tier.code })
      .where('program_id', '=', programId)
      .where('tier', 'not in', codes)
      .where('lifetime_spend', '>=', tier.threshold)
      .execute();
  }
}
