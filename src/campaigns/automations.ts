/**
 * Automations: per-program, switchable messages that a pg-boss schedule (`automations-tick`, every
 * 15 minutes) turns into campaigns. Each finds the cards whose occasion has come, writes one
 * `automation_delivery` row per card and occasion (primary key: at most once per card per occasion,
 * also with several processes ticking) and, in the same transaction, a campaign with exactly those
 * recipients, which the campaign fan-out delivers (chunks, pacing, exactly once, delivery figures).
 *
 *   birthday      on the holder's birthday (Feb 29 → Feb 28 in other years), from `sendHour` local
 *                 time: a greeting promo and `bonusPoints` (ledger kind `birthday`). Occasion: the
 *                 year. Needs marketing consent. Missed days (service down) are caught up late, for
 *                 birthdays up to BIRTHDAY_CATCH_UP_DAYS ago, on or after the switch-on day.
 *   winback       a card that ENTERS Sleeping or Lost (RFM) after the automation was switched on: a
 *                 message. Occasion: the segment + the last activity, so a holder who comes back and
 *                 lapses again is messaged again. Needs marketing consent. Catches up by itself: the
 *                 next tick still finds a card that entered while the service was down.
 *   expiry        the program's rule `expiry {inactivityDays, reminderDaysBefore}`: a reminder
 *                 `reminderDaysBefore` days before the points expire, then the expiry itself (all
 *                 points, ledger kind `expiry`, via postToLedger) with a message. Activity = a purchase,
 *                 any positive ledger entry (bonuses included), or enrollment; the moment the automation was switched on counts as activity, so
 *                 long-inactive holders get the full notice. Occasion: the expiry moment. A service
 *                 message: no consent needed.
 *   tierUpgrade   a card that moved up a tier (any cause: the database records tier changes): a
 *                 message with the new tier's name. Occasion: the tier. No consent needed.
 */
import { en } from '../i18n/en.js';
import { ru } from '../i18n/ru.js';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import type { JobQueue } from '../jobs/queue.js';
import { runScheduled } from '../jobs/scheduled.js';
import type { LoyaltyRules } from '../loyalty/rules.js';
import { DEFAULT_CONTROL_SHARE, MessageSchema } from './schemas.js';
import { segmentedCards, thresholdsOf } from './segments.js';
import { checkBonusGrant, type BonusGrant, type CampaignService } from './service.js';
import { checkCouponDefinition } from '../coupons/service.js';

export const AUTOMATIONS_TICK_QUEUE = 'automations-tick';

/**
 * A birthday missed because no tick ran that day (service down, a failed deploy, a long weekend
 * without anyone noticing) is still greeted, late, if it was at most this many days ago. A week
 * covers realistic outages; a "happy birthday" (with bonus points) weeks late reads as a mistake
 * rather than a greeting, so older ones are let go. The greeting stays once per card and year
 * (`automation_delivery`), and never goes for a birthday before the automation was switched on.
 */
export const BIRTHDAY_CATCH_UP_DAYS = 7;

const Enabled = Type.Boolean({ default: false });
const ControlShare = Type.Integer({
  minimum: 0,
  maximum: 50,
  default: DEFAULT_CONTROL_SHARE,
  description: 'Percent of the cards whose occasion came that are held back (never messaged) to measure the effect; default 10',
});
const CouponDefinitionId = Type.Optional(
  // A pattern, not format 'uuid': settingsOf checks stored settings with TypeBox's Value, which knows no formats.
  Type.String({
    pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
    maxLength: 36,
    description: 'Each card also gets a coupon of this definition (src/coupons, docs/coupons.md)',
  }),
);
const Msg = (ru: string, en: string) => Type.Object(MessageSchema.properties, { additionalProperties: false, default: { ru, en } });

export const AutomationSettingsSchema = Type.Object(
  {
    sendHour: Type.Integer({ minimum: 0, maximum: 23, default: 10, description: 'Daily automations send from this hour, program time zone' }),
    birthday: Type.Object(
      {
        enabled: Enabled,
        controlShare: ControlShare,
        bonusPoints: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 500 }),
        couponDefinitionId: CouponDefinitionId,
        message: Msg(ru.push.birthday, en.push.birthday),
      },
      { additionalProperties: false, default: {} },
    ),
    winback: Type.Object(
      { enabled: Enabled, controlShare: ControlShare, couponDefinitionId: CouponDefinitionId, message: Msg(ru.push.winback, en.push.winback) },
      { additionalProperties: false, default: {} },
    ),
    expiry: Type.Object(
      {
        enabled: Enabled,
        controlShare: { ...ControlShare, description: 'Percent of the reminders held back (the expiry itself applies to everyone); default 10' },
        reminderMessage: Msg(ru.push.expiryReminder, en.push.expiryReminder),
        expiredMessage: Msg(ru.push.expired, en.push.expired),
      },
      { additionalProperties: false, default: {} },
    ),
    tierUpgrade: Type.Object(
      { enabled: Enabled, message: Msg(ru.push.tierUpgrade, en.push.tierUpgrade) },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);
export type AutomationSettings = Static<typeof AutomationSettingsSchema>;
export type AutomationKind = 'birthday' | 'winback' | 'expiry' | 'tierUpgrade';
const KINDS: AutomationKind[] = ['birthday', 'winback', 'expiry', 'tierUpgrade'];

/** What is stored on the program: the settings plus when each automation was switched on. */
export type StoredAutomations = AutomationSettings & { enabledAt?: Partial<Record<AutomationKind, string>> };

export function settingsOf(stored: unknown): StoredAutomations {
  const raw = (stored ?? {}) as Record<string, unknown>;
  const { enabledAt, ...rest } = raw;
  const settings = Value.Default(AutomationSettingsSchema, Value.Clone(rest)) as AutomationSettings;
  if (!Value.Check(AutomationSettingsSchema, settings)) return { ...(Value.Default(AutomationSettingsSchema, {}) as AutomationSettings) };
  return { ...settings, enabledAt: (enabledAt ?? {}) as StoredAutomations['enabledAt'] };
}

/** Validates a PUT body (defaults for what is missing) and keeps the switch-on moments. */
export function nextSettings(previous: StoredAutomations, input: unknown, rules: LoyaltyRules, now: Date): StoredAutomations {
  const candidate = Value.Default(AutomationSettingsSchema, Value.Clone(input ?? {}));
  const errors = [...Value.Errors(AutomationSettingsSchema, candidate)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (errors.length > 0) throw new AppError(400, 'invalid_automations', `Invalid automations: ${[...new Set(errors)].join('; ')}`, { errors });
  const settings = candidate as AutomationSettings;
  if (settings.expiry.enabled && rules.expiry === null) {
    throw new AppError(422, 'expiry_rule_missing', 'Points expiry is not part of the loyalty rules: set rules.expiry first');
  }
  const enabledAt: Partial<Record<AutomationKind, string>> = {};
  for (const kind of KINDS) {
    if (!settings[kind].enabled) continue;
    enabledAt[kind] = previous[kind].enabled && previous.enabledAt?.[kind] ? previous.enabledAt[kind] : now.toISOString();
  }
  return { ...settings, enabledAt };
}

/**
 * Saves a program's automations as `PUT /automations` and the cabinet do: the program row locked,
 * `nextSettings` validating the whole object and keeping the switch-on moments.
 */
export async function saveAutomations(db: Db, programId: string, input: unknown, now: Date, grant: BonusGrant = 'capped') {
  return db.transaction().execute(async (trx) => {
    const program = await trx.selectFrom('program').selectAll().where('id', '=', programId).forUpdate().executeTakeFirstOrThrow();
    const rules = program.rules as LoyaltyRules;
    const previous = settingsOf(program.automations);
    const stored = nextSettings(previous, input, rules, now);
    // The birthday bonus goes to every holder with a birthday: a marketer may keep the stored value
    // but set a new one only within the program's campaign bonus cap.
    if (stored.birthday.bonusPoints !== previous.birthday.bonusPoints) checkBonusGrant(program, stored.birthday.bonusPoints, grant);
    // A coupon the automation hands out is a definition of this program that can issue now.
    for (const kind of ['birthday', 'winback'] as const) {
      const definitionId = stored[kind].couponDefinitionId;
      if (definitionId && definitionId !== previous[kind].couponDefinitionId) await checkCouponDefinition(trx, programId, definitionId, now);
    }
    await trx.updateTable('program').set({ automations: JSON.stringify(stored), updated_at: new Date() }).where('id', '=', programId).execute();
    return automationsDto(stored, rules);
  });
}

export function automationsDto(stored: StoredAutomations, rules: LoyaltyRules) {
  const since = (kind: AutomationKind) => (stored[kind].enabled ? (stored.enabledAt?.[kind] ?? null) : null);
  return {
    sendHour: stored.sendHour,
    birthday: { ...stored.birthday, enabledSince: since('birthday') },
    winback: { ...stored.winback, enabledSince: since('winback') },
    expiry: { ...stored.expiry, enabledSince: since('expiry'), rule: rules.expiry },
    tierUpgrade: { ...stored.tierUpgrade, enabledSince: since('tierUpgrade') },
  };
}

/** The local calendar date and hour of `now` in a time zone. */
export function localParts(now: Date, timeZone: string): { year: number; month: number; day: number; hour: number } {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' }).formatToParts(now);
  } catch {
    parts = new Intl.DateTimeFormat('en-CA', { timeZone: 'UTC', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' }).formatToParts(now);
  }
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return { year: get('year'), month: get('month'), day: get('day'), hour: get('hour') % 24 };
}

const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

/**
 * The local days whose birthdays the tick greets: today, then back BIRTHDAY_CATCH_UP_DAYS days,
 * but not before the day the automation was switched on (`since`, local). Feb 29 birthdays are
 * celebrated on Feb 28 in common years.
 */
export function birthdayDays(
  today: { year: number; month: number; day: number },
  since: { year: number; month: number; day: number },
): Array<{ date: string; occasion: string; leapDayToo: boolean }> {
  const iso = (y: number, m: number, d: number) => `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
  const first = iso(since.year, since.month, since.day);
  const days: Array<{ date: string; occasion: string; leapDayToo: boolean }> = [];
  for (let back = 0; back <= BIRTHDAY_CATCH_UP_DAYS; back++) {
    const d = new Date(Date.UTC(today.year, today.month - 1, today.day - back));
    const [y, m, day] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
    const date = iso(y, m, day);
    if (date < first) break;
    days.push({ date, occasion: String(y), leapDayToo: m === 2 && day === 28 && !isLeapYear(y) });
  }
  return days;
}

/**
 * The standing control group of an automation: each card whose occasion came is held back with
 * probability `share` %, decided by md5(campaign id, card id) — reproducible, and independent of
 * how many cards a tick finds (a tick often finds one birthday). The held-back cards are written
 * to campaign_control and their occasion is used up all the same (automation_delivery), so they
 * are never messaged for it.
 */
export function heldBack(campaignId: string, share: number, column = 'card_id') {
  return sql<boolean>`((('x' || substr(md5(${campaignId}::text || ${sql.ref(column)}::text), 1, 8))::bit(32)::bigint % 10000) < ${share * 100})`;
}

export class AutomationService {
  constructor(
    private readonly db: Db,
    private readonly campaigns: CampaignService,
    private readonly clock: () => Date,
    private readonly logger?: { error(obj: object, msg?: string): void },
  ) {}

  async startWorkers(jobs: JobQueue) {
    await jobs.ensureQueue(AUTOMATIONS_TICK_QUEUE, { retryLimit: 0, expireInSeconds: 600 });
    await jobs.work(AUTOMATIONS_TICK_QUEUE, { batchSize: 1 }, async () => {
      // Once per tick across all workers, never overlapping a slow tick elsewhere (jobs/scheduled.ts).
      await runScheduled(this.db, AUTOMATIONS_TICK_QUEUE, { leaseSeconds: 600, minIntervalSeconds: 300 }, () => this.tick());
    });
    await jobs.boss.schedule(AUTOMATIONS_TICK_QUEUE, '*/15 * * * *');
  }

  /** Runs every enabled automation of every program once; returns the campaigns created. */
  async tick(): Promise<Array<{ programId: string; automation: string; campaignId: string }>> {
    const now = this.clock();
    const programs = await this.db.selectFrom('program').selectAll().where(sql<boolean>`automations <> '{}'::jsonb`).execute();
    const created: Array<{ programId: string; automation: string; campaignId: string }> = [];
    for (const program of programs) {
      const settings = settingsOf(program.automations);
      const local = localParts(now, program.time_zone);
      const daily = local.hour >= settings.sendHour;
      const runs: Array<[string, boolean, () => Promise<string | null>]> = [
        ['birthday', settings.birthday.enabled && daily, () => this.birthday(program, settings, now, local)],
        ['winback', settings.winback.enabled && daily, () => this.winback(program, settings, now)],
        ['expiry_reminder', settings.expiry.enabled && daily, () => this.expiry(program, settings, now, 'reminder')],
        ['expiry', settings.expiry.enabled && daily, () => this.expiry(program, settings, now, 'expire')],
        ['tier_upgrade', settings.tierUpgrade.enabled, () => this.tierUpgrade(program, settings)],
      ];
      for (const [automation, due, run] of runs) {
        if (!due) continue;
        try {
          const campaignId = await run();
          if (campaignId) {
            created.push({ programId: program.id, automation, campaignId });
            const { targeted } = await this.db.selectFrom('campaign').select('targeted').where('id', '=', campaignId).executeTakeFirstOrThrow();
            await this.campaigns.analyzeRecipients(targeted);
          }
        } catch (error) {
          this.logger?.error({ err: error, programId: program.id, automation }, 'automation failed');
        }
      }
    }
    return created;
  }

  private birthday(program: ProgramRow, settings: StoredAutomations, now: Date, local: { year: number; month: number; day: number }) {
    const days = birthdayDays(local, localParts(new Date(settings.enabledAt?.birthday ?? now.toISOString()), program.time_zone));
    if (days.length === 0) return Promise.resolve(null); // the clock is behind the switch-on
    const today = days[0]!.date;
    return this.db.transaction().execute((trx) =>
      this.campaigns.createPrepared(
        trx,
        {
          programId: program.id,
          name: `Birthday ${local.year}-${String(local.month).padStart(2, '0')}-${String(local.day).padStart(2, '0')}`,
          message: settings.birthday.message,
          automation: 'birthday',
          bonusPoints: settings.birthday.bonusPoints,
          couponDefinitionId: settings.birthday.couponDefinitionId,
          ledgerKind: 'birthday',
          requiresConsent: true,
          controlShare: settings.birthday.controlShare,
        },
        async (campaignId) => {
          // Today and the missed days of the catch-up window; the occasion is the year of the day the
          // birthday fell on (a Dec 31 birthday caught up on Jan 2 is last year's). A late greeting
          // only goes to a card that existed on its birthday (one enrolled since has missed nothing).
          const result = await sql`
            WITH fresh AS (
              INSERT INTO automation_delivery (card_id, automation, occasion, program_id, campaign_id)
              SELECT c.id, 'birthday', d.occasion, c.program_id, ${campaignId}::uuid
              FROM unnest(${days.map((d) => d.date)}::date[], ${days.map((d) => d.occasion)}::text[], ${days.map((d) => d.leapDayToo)}::bool[])
                AS d(day, occasion, leap_day_too)
              JOIN card c
                ON (extract(month FROM c.birthday) = extract(month FROM d.day) AND extract(day FROM c.birthday) = extract(day FROM d.day))
                  OR (d.leap_day_too AND extract(month FROM c.birthday) = 2 AND extract(day FROM c.birthday) = 29)
              WHERE c.program_id = ${program.id} AND c.status = 'active' AND c.consent AND c.birthday IS NOT NULL
                AND (d.day = ${today}::date OR (c.created_at AT TIME ZONE ${program.time_zone})::date <= d.day)
              ON CONFLICT DO NOTHING
              RETURNING card_id
            ), held AS (
              INSERT INTO campaign_control (campaign_id, card_id, program_id)
              SELECT ${campaignId}::uuid, card_id, ${program.id}::uuid FROM fresh WHERE ${heldBack(campaignId, settings.birthday.controlShare)}
            )
            INSERT INTO campaign_recipient (campaign_id, card_id)
            SELECT ${campaignId}::uuid, card_id FROM fresh WHERE NOT ${heldBack(campaignId, settings.birthday.controlShare)}
          `.execute(trx);
          return Number(result.numAffectedRows ?? 0);
        },
      ),
    );
  }

  private winback(program: ProgramRow, settings: StoredAutomations, now: Date) {
    const t = thresholdsOf(program.segments);
    const since = settings.enabledAt?.winback ?? now.toISOString();
    return this.db.transaction().execute((trx) =>
      this.campaigns.createPrepared(
        trx,
        {
          programId: program.id,
          name: `Win-back ${now.toISOString().slice(0, 10)}`,
          message: settings.winback.message,
          automation: 'winback',
          couponDefinitionId: settings.winback.couponDefinitionId,
          requiresConsent: true,
          controlShare: settings.winback.controlShare,
        },
        async (campaignId) => {
          // "Enters": the moment the card crossed its segment's threshold is after the switch-on.
          const result = await sql`
            WITH fresh AS (
              INSERT INTO automation_delivery (card_id, automation, occasion, program_id, campaign_id)
              SELECT s.card_id, 'winback',
                s.segment || ':' || to_char(s.last_activity_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                ${program.id}::uuid, ${campaignId}::uuid
              FROM (${segmentedCards(program.id, t, now)}) s
              JOIN card c ON c.id = s.card_id
              WHERE c.consent
                AND ((s.segment = 'sleeping' AND s.last_activity_at + make_interval(days => ${t.sleepingAfterDays}) >= ${since}::timestamptz)
                  OR (s.segment = 'lost' AND s.last_activity_at + make_interval(days => ${t.lostAfterDays}) >= ${since}::timestamptz))
              ON CONFLICT DO NOTHING
              RETURNING card_id
            ), held AS (
              INSERT INTO campaign_control (campaign_id, card_id, program_id)
              SELECT ${campaignId}::uuid, card_id, ${program.id}::uuid FROM fresh WHERE ${heldBack(campaignId, settings.winback.controlShare)}
            )
            INSERT INTO campaign_recipient (campaign_id, card_id)
            SELECT ${campaignId}::uuid, card_id FROM fresh WHERE NOT ${heldBack(campaignId, settings.winback.controlShare)}
          `.execute(trx);
          return Number(result.numAffectedRows ?? 0);
        },
      ),
    );
  }

  private expiry(program: ProgramRow, settings: StoredAutomations, now: Date, step: 'reminder' | 'expire') {
    const rule = (program.rules as LoyaltyRules).expiry;
    if (!rule) return Promise.resolve(null);
    const since = settings.enabledAt?.expiry ?? now.toISOString();
    const at = sql`${now.toISOString()}::timestamptz`;
    // Activity: the last purchase (refunded ones too: the holder came), the last positive ledger entry
    // (an accrual, a bonus, points returned: anything that gave the holder points), enrollment, or the
    // switch-on.
    const due =
      step === 'reminder'
        ? sql`${at} >= e.expire_at - make_interval(days => ${rule.reminderDaysBefore}) AND ${at} < e.expire_at`
        : sql`${at} >= e.expire_at`;
    const occasion = step === 'reminder' ? sql`'reminder:' || e.expire_key` : sql`'expire:' || e.expire_key`;
    // Reminders have a control group; the expiry itself applies to everyone.
    const reminderShare = step === 'reminder' ? settings.expiry.controlShare : 0;
    return this.db.transaction().execute((trx) =>
      this.campaigns.createPrepared(
        trx,
        {
          programId: program.id,
          name: `${step === 'reminder' ? 'Points expiry reminder' : 'Points expiry'} ${now.toISOString().slice(0, 10)}`,
          message: step === 'reminder' ? settings.expiry.reminderMessage : settings.expiry.expiredMessage,
          automation: step === 'reminder' ? 'expiry_reminder' : 'expiry',
          effect: step === 'reminder' ? 'promo' : 'expire',
          ledgerKind: step === 'reminder' ? 'campaign_bonus' : 'expiry',
          requiresConsent: false,
          controlShare: reminderShare,
        },
        async (campaignId) => {
          const result = await sql`
            WITH activity AS (
              SELECT c.id AS card_id,
                greatest(c.created_at, p.last_at, l.last_at, ${since}::timestamptz) AS last_activity
              FROM card c
              LEFT JOIN (SELECT card_id, max(created_at) AS last_at FROM purchase WHERE program_id = ${program.id} GROUP BY card_id) p
                ON p.card_id = c.id
              LEFT JOIN (SELECT card_id, max(created_at) AS last_at FROM ledger_entry WHERE program_id = ${program.id} AND points > 0 GROUP BY card_id) l
                ON l.card_id = c.id
              WHERE c.program_id = ${program.id} AND c.status = 'active' AND c.balance > 0
            ), e AS (
              SELECT card_id, last_activity,
                last_activity + make_interval(days => ${rule.inactivityDays}) AS expire_at,
                to_char((last_activity + make_interval(days => ${rule.inactivityDays})) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS expire_key
              FROM activity
            ), fresh AS (
              INSERT INTO automation_delivery (card_id, automation, occasion, program_id, campaign_id)
              SELECT e.card_id, 'expiry', ${occasion}, ${program.id}::uuid, ${campaignId}::uuid
              FROM e WHERE ${due}
              ON CONFLICT DO NOTHING
              RETURNING card_id
            ), held AS (
              INSERT INTO campaign_control (campaign_id, card_id, program_id)
              SELECT ${campaignId}::uuid, card_id, ${program.id}::uuid FROM fresh WHERE ${heldBack(campaignId, reminderShare)}
            )
            INSERT INTO campaign_recipient (campaign_id, card_id, params)
            SELECT ${campaignId}::uuid, f.card_id,
              jsonb_build_object('date', to_char(e.expire_at AT TIME ZONE ${program.time_zone}, 'YYYY-MM-DD'), 'since', e.last_activity)
            FROM fresh f JOIN e ON e.card_id = f.card_id
            WHERE NOT ${heldBack(campaignId, reminderShare, 'f.card_id')}
          `.execute(trx);
          return Number(result.numAffectedRows ?? 0);
        },
      ),
    );
  }

  private tierUpgrade(program: ProgramRow, settings: StoredAutomations) {
    const codes = (program.rules as LoyaltyRules).tiers.map((t) => t.code);
    const since = settings.enabledAt?.tierUpgrade ?? new Date().toISOString();
    return this.db.transaction().execute((trx) =>
      this.campaigns.createPrepared(
        trx,
        { programId: program.id, name: `Tier upgrade ${new Date().toISOString().slice(0, 16)}`, message: settings.tierUpgrade.message, automation: 'tier_upgrade', requiresConsent: false },
        async (campaignId) => {
          // Upgrades recorded since the switch-on (and within a week), to a tier the card still has.
          const result = await sql`
            WITH fresh AS (
              INSERT INTO automation_delivery (card_id, automation, occasion, program_id, campaign_id)
              SELECT DISTINCT t.card_id, 'tier_upgrade', 'tier:' || t.to_tier, ${program.id}::uuid, ${campaignId}::uuid
              FROM card_tier_change t
              JOIN card c ON c.id = t.card_id
              WHERE t.program_id = ${program.id}
                AND t.changed_at >= greatest(${since}::timestamptz, now() - interval '7 days')
                AND array_position(${codes}::text[], t.to_tier) > coalesce(array_position(${codes}::text[], t.from_tier), 0)
                AND c.status = 'active' AND c.tier = t.to_tier
              ON CONFLICT DO NOTHING
              RETURNING card_id
            )
            INSERT INTO campaign_recipient (campaign_id, card_id) SELECT ${campaignId}::uuid, card_id FROM fresh
          `.execute(trx);
          return Number(result.numAffectedRows ?? 0);
        },
      ),
    );
  }
}
