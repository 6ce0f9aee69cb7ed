/**
 * Campaigns: a lock-screen message (and optionally bonus points) to every card of an audience,
 * through the one update path. How a campaign travels:
 *
 *   send ─▶ campaign-start job ─▶ recipients materialized (one INSERT … SELECT) ─▶ campaign-chunk
 *   jobs, one after another: each takes the next `chunkSize` pending recipients (keyset on card id),
 *   sets the cards' promo (+ bonus via postToLedger), records the card change (`cardChanges`:
 *   update tag + wallet-update job), marks the recipients processed and sends the next chunk job,
 *   all in ONE transaction. The wallet-update workers then push (Apple) and patch/message (Google)
 *   and report per-card outcomes, which `recordOutcomes` attributes to the recipients.
 *
 * Exactly once, whatever crashes: a chunk's effects and its recipients' status commit together; a
 * chunk job only runs while `campaign.next_chunk` equals its number (a fence, checked under the
 * campaign row lock), so a retried, duplicated or stale job does nothing; a crash before commit
 * leaves everything as it was, and the job (retried by pg-boss, or re-sent by the stall watchdog)
 * does the chunk again. Memory is flat: one chunk of rows at a time, whatever the audience size.
 *
 * Pacing: after a chunk, the next may start only when the chunk's Apple devices have had time to
 * fetch and the service to sign their updated passes: devices / `pushRatePerSecond` seconds
 * (`campaign.not_before`, honoured by whichever process runs the next chunk).
 *
 * Cancel takes the campaign row lock (it waits for a running chunk), so no chunk starts after it.
 */
import { sql, type Transaction } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { CampaignStatus, CampaignTable, Database, Localized, ProgramRow } from '../db/schema.js';
import type { Selectable } from 'kysely';
import { AppError, notFound } from '../http/errors.js';
import type { JobQueue } from '../jobs/queue.js';
import { runScheduled } from '../jobs/scheduled.js';
import { postToLedger } from '../loyalty/ledger.js';
import { expiryDue, type LoyaltyRules } from '../loyalty/rules.js';
import { cardChangedColumns, dueCardUpdates, ensureWalletUpdateQueues, type CardChangeRecorder, type PublishOutcome } from '../updates/card-changes.js';
import type { GoogleWalletService } from '../wallets/google/service.js';
import { campaignEffect } from './effect.js';
import { checkCouponDefinition, issueCouponsToCards } from '../coupons/service.js';
import { hasPlaceholders, renderMessage } from './message.js';
import { DEFAULT_CONTROL_SHARE, DEFAULT_EFFECT_WINDOW_DAYS, type Audience, type CampaignDto, type CampaignEffect, type CreateCampaign } from './schemas.js';
import { segmentedCards, thresholdsOf, type SegmentCode } from './segments.js';

export type CampaignRow = Selectable<CampaignTable>;

/** Who grants campaign bonus points: without limit (program admin, owner) or within the program's cap (marketer). */
export type BonusGrant = 'unlimited' | 'capped';

/**
 * Campaign (and birthday) bonus points mint points for a whole audience: a marketer may grant at
 * most `rules.campaignBonusCap` per card (set by a program admin); more needs the admin role, as a
 * manual adjustment does. 403 `campaign_bonus_over_cap` otherwise, nothing changed.
 */
export function checkBonusGrant(program: ProgramRow, bonusPoints: number, grant: BonusGrant) {
  const cap = (program.rules as LoyaltyRules).campaignBonusCap ?? 0;
  if (grant === 'capped' && bonusPoints > cap) {
    throw new AppError(403, 'campaign_bonus_over_cap', `A marketer may grant at most ${cap} bonus points per card; more needs a program admin`, {
      cap,
      requested: bonusPoints,
    });
  }
}
type Trx = Transaction<Database>;

export const CAMPAIGN_QUEUES = {
  start: 'campaign-start',
  chunk: 'campaign-chunk',
  googleClass: 'campaign-google-class',
  tick: 'campaigns-tick',
} as const;

export interface CampaignSettings {
  /** Recipients per chunk job (one transaction). */
  chunkSize: number;
  /** Apple devices per second the fan-out may reach: what the service can re-sign when they fetch. */
  pushRatePerSecond: number;
  /** A sending campaign that has not moved for this long is resumed by the watchdog. */
  stallSeconds: number;
  /**
   * Backpressure: a chunk waits while more wallet-update jobs than this are due (past their
   * debounce, not yet taken) in the queues of `backpressureWallets` (default twice the chunk size;
   * 0 = off). The pushes, and the devices' re-fetches they cause, then run at what this machine can
   * actually do, and the queue stays short (pg-boss fetches slow down as a queue grows).
   */
  maxUpdateBacklog?: number;
  /**
   * Apple only by default: its devices come back to this service for a freshly signed pass. Google
   * is paced by its own rate limiter (20 requests/s), and its backlog waits in the database.
   */
  backpressureWallets: string[];
  /**
   * The fetch window: before chunk n, wait until the devices pushed by chunk n-3 have fetched their
   * new pass (90 % of them, or no new fetch for this many seconds: the rest are offline). This paces
   * the pushes at the rate the service actually re-signs passes, whatever the machine; `pushRatePerSecond`
   * stays a ceiling. 0 = off.
   */
  fetchWindowIdleSeconds: number;
}

/** The recipients of one chunk: card ids after `after` (exclusive) up to `upTo` (inclusive). */
export interface ChunkRange {
  after: string | null;
  upTo: string;
}

export interface ChunkJob {
  campaignId: string;
  chunk: number;
  /** The ranges of the chunks before this one, the latest first (up to FETCH_WINDOW_CHUNKS). */
  recent?: ChunkRange[];
}

/**
 * Chunk n waits for the devices of chunk n − FETCH_WINDOW_CHUNKS. Enough chunks stay in flight to
 * cover the way from a chunk's commit to its devices' fetches being counted (update job pick-up,
 * pushes, downloads, the fetch counts written once a second): with fewer, bench:campaign left the
 * machine idle between chunks.
 */
const FETCH_WINDOW_CHUNKS = 3;

/** Share of a watched chunk's pushed devices that must have fetched before the next chunk goes. */
const FETCH_WINDOW_SHARE = 0.9;
/** A chunk never waits longer than this for the devices of an earlier chunk. */
const MAX_FETCH_WINDOW_WAIT_MS = 60_000;

export const DEFAULT_CAMPAIGN_SETTINGS: CampaignSettings = {
  chunkSize: 1000,
  pushRatePerSecond: 1500,
  stallSeconds: 60,
  backpressureWallets: ['apple'],
  fetchWindowIdleSeconds: 3,
};
/** A chunk never waits longer than this for the update path (e.g. no process runs wallet workers). */
const MAX_BACKPRESSURE_WAIT_MS = 60_000;

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface CampaignFinished {
  programId: string;
  campaignId: string;
  name: string;
  automation: string | null;
  targeted: number;
  delivered: number;
  skipped: number;
  startedAt: string | null;
  finishedAt: string;
}

export interface CampaignDeps {
  db: Db;
  jobs: JobQueue;
  cardChanges: CardChangeRecorder;
  clock: () => Date;
  /** Wallets the update path publishes to (the wallet-update queues). */
  wallets: readonly string[];
  passTypeIdentifier: string;
  google?: GoogleWalletService;
  settings?: Partial<CampaignSettings>;
  logger?: Logger;
  /** Called in the transaction that finishes a campaign (webhooks: campaign.finished). */
  onFinished?: (trx: Trx, event: CampaignFinished) => Promise<unknown>;
}

interface ClassMessageState {
  classId: string;
  tier: string;
  objects: number;
  sent: boolean;
  notified: boolean;
  downgraded: boolean;
}

interface ChunkRow {
  card_id: string;
  params: Record<string, string> | null;
  card_status: 'active' | 'blocked';
  consent: boolean;
  balance: number;
  tier: string;
  created_at: Date;
  devices: number;
  has_google: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const noopLogger: Logger = { info() {}, warn() {}, error() {} };

export class CampaignService {
  readonly settings: CampaignSettings;
  private readonly logger: Logger;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly deps: CampaignDeps) {
    this.settings = { ...DEFAULT_CAMPAIGN_SETTINGS, ...deps.settings };
    this.logger = deps.logger ?? noopLogger;
  }

  private get db() {
    return this.deps.db;
  }

  // ---- API operations ------------------------------------------------------------------------

  /**
   * `executor`: a transaction to write in (the route's Idempotency-Key transaction). `grant`: whether
   * the creator may grant any bonus (program admin key, owner) or only up to the program's
   * `rules.campaignBonusCap` (marketer key or staff).
   */
  async create(
    program: ProgramRow,
    input: CreateCampaign,
    actor: string,
    executor: Executor = this.db,
    grant: BonusGrant = 'capped',
  ): Promise<CampaignRow> {
    checkAudience(program, input.audience);
    checkBonusGrant(program, input.bonusPoints ?? 0, grant);
    if (input.couponDefinitionId) await checkCouponDefinition(executor, program.id, input.couponDefinitionId, this.deps.clock());
    const scheduledAt = input.scheduledAt ? new Date(input.scheduledAt) : null;
    return executor
      .insertInto('campaign')
      .values({
        program_id: program.id,
        name: input.name,
        message: JSON.stringify(input.message),
        audience: JSON.stringify(input.audience),
        bonus_points: input.bonusPoints ?? 0,
        coupon_definition_id: input.couponDefinitionId ?? null,
        control_share: input.controlShare ?? DEFAULT_CONTROL_SHARE,
        effect_window_days: input.effectWindowDays ?? DEFAULT_EFFECT_WINDOW_DAYS,
        status: scheduledAt ? 'scheduled' : 'draft',
        scheduled_at: scheduledAt,
        created_by: actor,
        created_at: this.deps.clock(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async find(programId: string, campaignId: string): Promise<CampaignRow> {
    const row = await this.db.selectFrom('campaign').selectAll().where('id', '=', campaignId).where('program_id', '=', programId).executeTakeFirst();
    if (!row) throw notFound('campaign');
    return row;
  }

  /** `automations`: only the campaigns of these automations (`birthday`, `winback`, `expiry_reminder`, `expiry`, `tier_upgrade`). */
  async list(programId: string, options: { limit: number; status?: CampaignStatus; automation?: boolean; automations?: readonly string[] }): Promise<CampaignRow[]> {
    let query = this.db.selectFrom('campaign').selectAll().where('program_id', '=', programId);
    if (options.status) query = query.where('status', '=', options.status);
    if (options.automation === true) query = query.where('automation', 'is not', null);
    if (options.automation === false) query = query.where('automation', 'is', null);
    if (options.automations) query = query.where('automation', 'in', options.automations.length ? [...options.automations] : ['']);
    return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(options.limit).execute();
  }

  /** Draft or scheduled → sending, now; in `outer` when given (the route's Idempotency-Key transaction). */
  async send(programId: string, campaignId: string, outer?: Trx): Promise<CampaignRow> {
    const run = async (trx: Trx) => {
      const row = await lockCampaign(trx, campaignId, programId);
      if (!row) throw notFound('campaign');
      if (row.status !== 'draft' && row.status !== 'scheduled') {
        throw new AppError(409, 'campaign_not_sendable', `A ${row.status} campaign cannot be sent`);
      }
      return this.beginSending(trx, row.id);
    };
    return outer ? run(outer) : this.db.transaction().execute(run);
  }

  async cancel(programId: string, campaignId: string): Promise<CampaignRow> {
    return this.db.transaction().execute(async (trx) => {
      // The row lock waits for a running chunk: once this commits, no further chunk does anything.
      const row = await lockCampaign(trx, campaignId, programId);
      if (!row) throw notFound('campaign');
      if (row.status === 'sent' || row.status === 'cancelled') {
        throw new AppError(409, 'campaign_not_cancellable', `A ${row.status} campaign cannot be cancelled`);
      }
      await trx.updateTable('campaign_recipient').set({ status: 'cancelled' }).where('campaign_id', '=', row.id).where('status', '=', 'pending').execute();
      return trx
        .updateTable('campaign')
        .set({ status: 'cancelled', cancelled_at: this.deps.clock(), updated_at: new Date() })
        .where('id', '=', row.id)
        .returningAll()
        .executeTakeFirstOrThrow();
    });
  }

  private async beginSending(trx: Trx, campaignId: string): Promise<CampaignRow> {
    const updated = await trx
      .updateTable('campaign')
      .set({ status: 'sending', started_at: this.deps.clock(), progress_at: sql<Date>`now()`, updated_at: new Date() })
      .where('id', '=', campaignId)
      .returningAll()
      .executeTakeFirstOrThrow();
    await this.deps.jobs.send(trx, CAMPAIGN_QUEUES.start, { campaignId });
    return updated;
  }

  /**
   * Creates a campaign that is already sending, with its recipients written by `insertRecipients`
   * in the same transaction (automations). Returns null (and leaves no trace) when it found nobody.
   */
  async createPrepared(
    trx: Trx,
    spec: {
      programId: string;
      name: string;
      message: Localized;
      automation: string;
      bonusPoints?: number;
      ledgerKind?: 'campaign_bonus' | 'birthday' | 'expiry';
      effect?: 'promo' | 'expire';
      requiresConsent: boolean;
      /** The automation's standing control share (percent); its cards go to campaign_control. */
      controlShare?: number;
      /** Every recipient also gets a coupon of this definition (src/coupons). */
      couponDefinitionId?: string;
    },
    insertRecipients: (campaignId: string) => Promise<number>,
  ): Promise<string | null> {
    const now = this.deps.clock();
    const row = await trx
      .insertInto('campaign')
      .values({
        program_id: spec.programId,
        name: spec.name,
        message: JSON.stringify(spec.message),
        audience: JSON.stringify({ automation: spec.automation }),
        bonus_points: spec.bonusPoints ?? 0,
        ledger_kind: spec.ledgerKind ?? 'campaign_bonus',
        effect: spec.effect ?? 'promo',
        requires_consent: spec.requiresConsent,
        automation: spec.automation,
        control_share: spec.controlShare ?? 0,
        coupon_definition_id: spec.couponDefinitionId ?? null,
        status: 'sending',
        started_at: now,
        created_at: now,
        materialized: true,
        progress_at: sql<Date>`now()`,
        created_by: `automation:${spec.automation}`,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const targeted = await insertRecipients(row.id);
    const heldOut = await countHeldOut(trx, row.id);
    // A campaign whose every card was held back stays: its control group is measured like any other.
    if (targeted === 0 && heldOut === 0) {
      await trx.deleteFrom('campaign').where('id', '=', row.id).execute();
      return null;
    }
    await trx.updateTable('campaign').set({ targeted, held_out: heldOut }).where('id', '=', row.id).execute();
    await this.deps.jobs.send(trx, CAMPAIGN_QUEUES.chunk, { campaignId: row.id, chunk: 0 });
    return row.id;
  }

  // ---- the scheduler tick and the stall watchdog ----------------------------------------------

  /** Starts scheduled campaigns that are due (app clock) and resumes stalled ones. */
  async tick(): Promise<{ started: string[]; resumed: string[] }> {
    const due = await this.db
      .selectFrom('campaign')
      .select('id')
      .where('status', '=', 'scheduled')
      .where('scheduled_at', '<=', this.deps.clock())
      .orderBy('scheduled_at')
      .execute();
    const started: string[] = [];
    for (const { id } of due) {
      const ok = await this.db.transaction().execute(async (trx) => {
        const row = await lockCampaign(trx, id);
        if (row?.status !== 'scheduled') return false;
        await this.beginSending(trx, id);
        return true;
      });
      if (ok) started.push(id);
    }
    const resumed = await this.resumeStalled();
    return { started, resumed };
  }

  /**
   * A sending campaign whose fan-out has not moved for `stallSeconds` (its process died mid-chunk)
   * gets its next job again. Harmless if the original job is still coming: the fence lets only one
   * of them do the chunk.
   */
  async resumeStalled(): Promise<string[]> {
    const stalled = await this.db
      .updateTable('campaign')
      .set({ progress_at: sql<Date>`now()` })
      .where('status', '=', 'sending')
      .where((eb) =>
        eb.or([eb('progress_at', 'is', null), eb('progress_at', '<', sql<Date>`now() - make_interval(secs => ${this.settings.stallSeconds})`)]),
      )
      .returning(['id', 'materialized', 'next_chunk'])
      .execute();
    for (const row of stalled) {
      if (!row.materialized) await this.deps.jobs.send(this.db, CAMPAIGN_QUEUES.start, { campaignId: row.id });
      else await this.deps.jobs.send(this.db, CAMPAIGN_QUEUES.chunk, { campaignId: row.id, chunk: row.next_chunk });
      this.logger.warn({ campaignId: row.id, chunk: row.next_chunk }, 'campaign fan-out stalled; resuming');
    }
    return stalled.map((r) => r.id);
  }

  // ---- workers --------------------------------------------------------------------------------

  async ensureQueues() {
    const { jobs } = this.deps;
    await ensureWalletUpdateQueues(jobs, this.deps.wallets);
    await jobs.ensureQueue(CAMPAIGN_QUEUES.start, { retryLimit: 10, retryDelay: 5, retryBackoff: true, expireInSeconds: 600 });
    await jobs.ensureQueue(CAMPAIGN_QUEUES.chunk, { retryLimit: 20, retryDelay: 2, retryBackoff: true, expireInSeconds: 300 });
    await jobs.ensureQueue(CAMPAIGN_QUEUES.googleClass, { retryLimit: 10, retryDelay: 30, retryBackoff: true, expireInSeconds: 600 });
    await jobs.ensureQueue(CAMPAIGN_QUEUES.tick, { retryLimit: 0, expireInSeconds: 120 });
    // A campaign turns into a wallet-update job per card, and each job's row is written three
    // times (created, active, completed): vacuum those pg-boss tables early, not after 20 % of
    // them is dead, or every fetch wades through dead index entries (bench:campaign).
    await sql`
      DO $$
      DECLARE t text;
      BEGIN
        FOR t IN
          SELECT q.partition_name FROM pgboss.queue q
          JOIN pg_class c ON c.relname = q.partition_name
          JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'pgboss'
          WHERE q.name LIKE 'wallet-update-%'
            AND NOT coalesce(c.reloptions, '{}') @> ARRAY['autovacuum_vacuum_scale_factor=0.01']
        LOOP
          EXECUTE format('ALTER TABLE pgboss.%I SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02)', t);
        END LOOP;
      END $$
    `.execute(this.db);
  }

  /**
   * Starts the campaign workers (one chunk at a time per process), the every-minute scheduler tick
   * (a pg-boss schedule) and an immediate tick (resume after a restart). `watchdogSeconds` adds an
   * in-process stall check at that interval (tests; the tick does it every minute anyway).
   */
  async startWorkers(options: { watchdogSeconds?: number } = {}) {
    const { jobs } = this.deps;
    await this.ensureQueues();
    await jobs.work<{ campaignId: string }>(CAMPAIGN_QUEUES.start, { batchSize: 1 }, async ([job]) => this.runStart(job!.data.campaignId));
    await jobs.work<ChunkJob>(CAMPAIGN_QUEUES.chunk, { batchSize: 1 }, async ([job]) => this.runChunk(job!.data.campaignId, job!.data.chunk, job!.data));
    await jobs.work<{ campaignId: string }>(CAMPAIGN_QUEUES.googleClass, { batchSize: 1 }, async ([job]) =>
      this.runGoogleClassMessages(job!.data.campaignId),
    );
    // Once per tick across all workers, never overlapping (jobs/scheduled.ts); the lease matches the
    // tick job's expiry.
    const lease = { leaseSeconds: 120 };
    await jobs.work(CAMPAIGN_QUEUES.tick, { batchSize: 1 }, async () => {
      await runScheduled(this.db, CAMPAIGN_QUEUES.tick, { ...lease, minIntervalSeconds: 30 }, () => this.tick());
    });
    await jobs.boss.schedule(CAMPAIGN_QUEUES.tick, '* * * * *');
    // At start (resume after a restart), unless another worker is ticking right now.
    await runScheduled(this.db, CAMPAIGN_QUEUES.tick, lease, () => this.tick());
    if (options.watchdogSeconds) {
      this.watchdog = setInterval(() => void this.resumeStalled().catch((error) => this.logger.error({ err: error }, 'campaign watchdog failed')), options.watchdogSeconds * 1000);
      this.watchdog.unref();
    }
  }

  stopWorkers() {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  // ---- start: materialize the audience ---------------------------------------------------------

  async runStart(campaignId: string): Promise<void> {
    const targeted = await this.db.transaction().execute(async (trx) => {
      const campaign = await lockCampaign(trx, campaignId);
      if (!campaign || campaign.status !== 'sending' || campaign.materialized) return 0;
      const program = await trx.selectFrom('program').selectAll().where('id', '=', campaign.program_id).executeTakeFirstOrThrow();
      const audience = campaign.audience as Audience;
      let targeted: number;
      let heldOut = 0;
      if (campaign.control_share > 0) {
        // The control group: the first control_share % of the audience in the order of
        // md5(campaign id, card id) — random, but the same audience always splits the same way —
        // written down here, in the transaction that writes the recipients.
        const result = await sql`
          WITH audience (campaign_id, card_id, program_id) AS MATERIALIZED (${audienceSelect(campaign.id, program, audience, this.deps.clock())}),
          ranked AS (
            SELECT card_id, program_id, row_number() OVER (ORDER BY md5(${campaign.id}::text || card_id::text), card_id) AS rank, count(*) OVER () AS size
            FROM audience
          ),
          control AS (
            INSERT INTO campaign_control (campaign_id, card_id, program_id)
            SELECT ${campaign.id}::uuid, card_id, program_id FROM ranked WHERE rank <= round(size * ${campaign.control_share} / 100.0)
            ON CONFLICT DO NOTHING
          )
          INSERT INTO campaign_recipient (campaign_id, card_id, program_id)
          SELECT ${campaign.id}::uuid, card_id, program_id FROM ranked WHERE rank > round(size * ${campaign.control_share} / 100.0)
          ON CONFLICT DO NOTHING
        `.execute(trx);
        targeted = Number(result.numAffectedRows ?? 0);
        heldOut = await countHeldOut(trx, campaign.id);
      } else {
        const result = await sql`
          INSERT INTO campaign_recipient (campaign_id, card_id, program_id)
          ${audienceSelect(campaign.id, program, audience, this.deps.clock())}
          ON CONFLICT DO NOTHING
        `.execute(trx);
        targeted = Number(result.numAffectedRows ?? 0);
      }
      const classes = await this.chooseGoogleClasses(trx, campaign, program, audience);
      await trx
        .updateTable('campaign')
        .set({ materialized: true, targeted, held_out: heldOut, google_classes: JSON.stringify(classes), progress_at: sql<Date>`now()`, updated_at: new Date() })
        .where('id', '=', campaign.id)
        .execute();
      await this.deps.jobs.send(trx, CAMPAIGN_QUEUES.chunk, { campaignId: campaign.id, chunk: 0 });
      if (classes.length > 0) await this.deps.jobs.send(trx, CAMPAIGN_QUEUES.googleClass, { campaignId: campaign.id });
      this.logger.info({ campaignId, targeted, googleClasses: classes.length }, 'campaign audience materialized');
      return targeted;
    });
    await this.analyzeRecipients(targeted);
  }

  /** The campaign's effect: recipients against the control group (src/campaigns/effect.ts). */
  effect(row: CampaignRow): Promise<CampaignEffect | null> {
    return campaignEffect(this.db, row, this.deps.clock());
  }

  /**
   * Fresh statistics after many recipients arrived at once: without them the planner takes the new
   * rows for a handful and every chunk's statements scan the whole table (measured: 1.5 s instead of
   * 20 ms per statement at 250,000 recipients). Autovacuum would catch up only a minute later.
   */
  async analyzeRecipients(added: number) {
    if (added < 5000) return;
    await sql`ANALYZE campaign_recipient`.execute(this.db);
  }

  /**
   * Google classes whose every object belongs to a recipient get one class message instead of one
   * message per object (a class message reaches every holder of the class, so one holder without
   * consent rules it out). Only for audiences by tier or all, with one message for everybody.
   */
  private async chooseGoogleClasses(trx: Trx, campaign: CampaignRow, program: ProgramRow, audience: Audience): Promise<ClassMessageState[]> {
    if (!this.deps.google || audience.segments || hasPlaceholders(campaign.message)) return [];
    const tiers = audience.all ? null : (audience.tiers ?? null);
    // A card of the control group must see nothing: its class gets no class message (called after the
    // control group is written, in the same transaction).
    const { rows } = await sql<{ class_id: string; tier_code: string; objects: number; eligible: number }>`
      SELECT g.class_id, k.tier_code, count(*)::int AS objects,
        count(*) FILTER (WHERE c.status = 'active' AND c.consent ${tiers ? sql`AND c.tier = ANY(${tiers}::text[])` : sql``}
          AND NOT EXISTS (SELECT 1 FROM campaign_control x WHERE x.campaign_id = ${campaign.id} AND x.card_id = c.id))::int AS eligible
      FROM google_object g
      JOIN card c ON c.id = g.card_id
      JOIN google_class k ON k.class_id = g.class_id
      WHERE g.program_id = ${program.id}
      GROUP BY g.class_id, k.tier_code
    `.execute(trx);
    return rows
      .filter((r) => r.objects > 0 && r.objects === r.eligible && (tiers === null || tiers.includes(r.tier_code)))
      .map((r) => ({ classId: r.class_id, tier: r.tier_code, objects: r.objects, sent: false, notified: false, downgraded: false }));
  }

  async runGoogleClassMessages(campaignId: string): Promise<void> {
    const google = this.deps.google;
    if (!google) return;
    const campaign = await this.db.selectFrom('campaign').selectAll().where('id', '=', campaignId).executeTakeFirst();
    if (!campaign || campaign.status === 'cancelled') return;
    const program = await this.db.selectFrom('program').selectAll().where('id', '=', campaign.program_id).executeTakeFirstOrThrow();
    for (const entry of campaign.google_classes as ClassMessageState[]) {
      if (entry.sent) continue;
      // Idempotent: the message id is the campaign's, and a class already carrying it is left alone.
      const result = await google.sendClassMessage(program, entry.tier, campaign.message, `campaign-${campaign.id}`);
      await this.db.transaction().execute(async (trx) => {
        const fresh = await lockCampaign(trx, campaignId);
        if (!fresh) return;
        const classes = (fresh.google_classes as ClassMessageState[]).map((c) =>
          c.classId === entry.classId ? { ...c, sent: true, notified: c.notified || result.notified, downgraded: c.downgraded || result.downgraded } : c,
        );
        await trx.updateTable('campaign').set({ google_classes: JSON.stringify(classes) }).where('id', '=', campaignId).execute();
      });
    }
  }

  // ---- chunks ---------------------------------------------------------------------------------

  async runChunk(campaignId: string, chunk: number, job: Partial<ChunkJob> = {}): Promise<void> {
    // Pacing: wait (outside any transaction) until the previous chunk's devices have had their time.
    const head = await this.db.selectFrom('campaign').select(['status', 'next_chunk', 'not_before']).where('id', '=', campaignId).executeTakeFirst();
    if (!head || head.status !== 'sending' || head.next_chunk !== chunk) return;
    const wait = head.not_before ? head.not_before.getTime() - Date.now() : 0;
    if (wait > 0) await sleep(Math.min(wait, 60_000));
    await this.waitForUpdatePath();
    const watched = job.recent?.[FETCH_WINDOW_CHUNKS - 1];
    if (watched) await this.waitForFetches(campaignId, watched);
    const startedAt = Date.now();
    await this.db.transaction().execute((trx) => this.processChunk(trx, campaignId, chunk, startedAt, job.recent ?? []));
  }

  /**
   * The fetch window (see `fetchWindowIdleSeconds`): waits until the devices pushed for the recipients
   * in `range` have downloaded the pass version the campaign made (`apple_pass_fetch`, written by the
   * web service once a second), or until their fetches stop coming in.
   */
  private async waitForFetches(campaignId: string, range: ChunkRange) {
    const idleMs = this.settings.fetchWindowIdleSeconds * 1000;
    if (idleMs <= 0 || !this.deps.wallets.includes('apple')) return;
    const started = Date.now();
    let lastFetched = -1;
    let lastProgressAt = started;
    for (;;) {
      const { rows } = await sql<{ pushed: number; fetched: number; awaiting: number; sending: boolean }>`
        SELECT (SELECT status = 'sending' FROM campaign WHERE id = ${campaignId}) AS sending,
          count(*) FILTER (WHERE r.apple_pushes_accepted > 0)::int AS pushed,
          count(*) FILTER (WHERE r.apple_pushes_accepted > 0 AND EXISTS (
            SELECT 1 FROM apple_pass_fetch f WHERE f.card_id = r.card_id AND f.update_tag >= r.update_tag))::int AS fetched,
          count(*) FILTER (WHERE r.status = 'processed' AND r.apple_published_at IS NULL)::int AS awaiting
        FROM campaign_recipient r
        WHERE r.campaign_id = ${campaignId} AND r.card_id <= ${range.upTo}
          ${range.after ? sql`AND r.card_id > ${range.after}` : sql``}
      `.execute(this.db);
      const { pushed, fetched, awaiting, sending } = rows[0]!;
      if (!sending) return; // cancelled meanwhile: the chunk will do nothing
      if (awaiting === 0 && fetched >= pushed * FETCH_WINDOW_SHARE) return;
      const now = Date.now();
      if (fetched > lastFetched) {
        lastFetched = fetched;
        lastProgressAt = now;
      } else if (awaiting === 0 && now - lastProgressAt >= idleMs) {
        return; // the others are not fetching now (offline devices); their passes wait for them
      }
      if (now - started >= MAX_FETCH_WINDOW_WAIT_MS) {
        this.logger.warn({ campaignId, pushed, fetched, awaiting }, 'devices are slow to fetch; campaign chunk goes ahead');
        return;
      }
      await sleep(250);
    }
  }

  /** Backpressure: wait while the update path has more than `maxUpdateBacklog` jobs waiting. */
  private async waitForUpdatePath() {
    const limit = this.settings.maxUpdateBacklog ?? this.settings.chunkSize * 2;
    const wallets = this.settings.backpressureWallets.filter((wallet) => this.deps.wallets.includes(wallet));
    if (limit <= 0 || wallets.length === 0) return;
    const deadline = Date.now() + MAX_BACKPRESSURE_WAIT_MS;
    for (;;) {
      let backlog = 0;
      for (const wallet of wallets) backlog = Math.max(backlog, await dueCardUpdates(this.deps.jobs, wallet));
      if (backlog <= limit) return;
      if (Date.now() > deadline) {
        this.logger.warn({ backlog, limit }, 'wallet updates are not draining; campaign chunk goes ahead');
        return;
      }
      await sleep(200);
    }
  }

  private async processChunk(trx: Trx, campaignId: string, chunk: number, startedAt: number, recent: ChunkRange[] = []): Promise<void> {
    const campaign = await lockCampaign(trx, campaignId);
    // The fence: only the chunk the campaign expects runs; duplicates and stale retries do nothing.
    if (!campaign || campaign.status !== 'sending' || !campaign.materialized || campaign.next_chunk !== chunk) return;
    const program = await trx.selectFrom('program').selectAll().where('id', '=', campaign.program_id).executeTakeFirstOrThrow();
    const rules = program.rules as LoyaltyRules;
    const size = this.settings.chunkSize;
    // The next recipients by keyset on the primary key (campaign_id, card_id), then their cards by
    // primary key: whatever the audience size, this reads one chunk of rows. Cards whose points
    // change are locked first (postToLedger reads the balance); a promo alone needs no lock (the
    // campaign row lock and the recipients' status make it once only).
    const postsLedger = campaign.effect === 'expire' || campaign.bonus_points > 0;
    const { rows } = await sql<ChunkRow>`
      WITH next AS MATERIALIZED (
        SELECT card_id, params FROM campaign_recipient
        WHERE campaign_id = ${campaign.id} AND status = 'pending'
          ${campaign.cursor_card_id ? sql`AND card_id > ${campaign.cursor_card_id}` : sql``}
        ORDER BY card_id
        LIMIT ${size}
      )
      SELECT r.card_id, r.params, c.status AS card_status, c.consent, c.balance, c.tier, c.created_at,
        (SELECT count(*) FROM apple_registration a
          WHERE a.pass_type_identifier = ${this.deps.passTypeIdentifier} AND a.serial_number = c.apple_serial)::int AS devices,
        EXISTS (SELECT 1 FROM google_object g WHERE g.card_id = c.id) AS has_google
      FROM next r
      JOIN card c ON c.id = r.card_id
      ORDER BY r.card_id
      ${postsLedger ? sql`FOR UPDATE OF c` : sql``}
    `.execute(trx);

    const deliver: ChunkRow[] = [];
    const skip: string[] = [];
    for (const row of rows) {
      if (row.card_status !== 'active' || (campaign.requires_consent && !row.consent)) skip.push(row.card_id);
      else deliver.push(row);
    }
    if (campaign.effect === 'expire') await this.keepExpiring(trx, rules, deliver, skip);

    if (deliver.length > 0) await this.deliver(trx, campaign, program, deliver);
    if (skip.length > 0) {
      await trx
        .updateTable('campaign_recipient')
        .set({ status: 'skipped', processed_at: new Date() })
        .where('campaign_id', '=', campaign.id)
        .where('card_id', 'in', skip)
        .execute();
    }

    const done = rows.length < size;
    const devices = deliver.reduce((sum, r) => sum + Number(r.devices), 0);
    const paceMs = Math.round((devices / this.settings.pushRatePerSecond) * 1000);
    const finishedAt = this.deps.clock();
    const updated = await trx
      .updateTable('campaign')
      .set({
        processed: sql<number>`processed + ${deliver.length}`,
        skipped: sql<number>`skipped + ${skip.length}`,
        next_chunk: chunk + 1,
        cursor_card_id: rows.length > 0 ? rows[rows.length - 1]!.card_id : campaign.cursor_card_id,
        // Measured from this chunk's start: its own processing time counts towards the pace.
        not_before: new Date(startedAt + paceMs),
        progress_at: sql<Date>`now()`,
        updated_at: new Date(),
        ...(done ? { status: 'sent' as const, finished_at: finishedAt } : {}),
      })
      .where('id', '=', campaign.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (!done) {
      const range: ChunkRange = { after: campaign.cursor_card_id, upTo: rows[rows.length - 1]!.card_id };
      const next: ChunkJob = { campaignId: campaign.id, chunk: chunk + 1, recent: [range, ...recent].slice(0, FETCH_WINDOW_CHUNKS) };
      await this.deps.jobs.send(trx, CAMPAIGN_QUEUES.chunk, next);
    } else {
      await this.deps.onFinished?.(trx, {
        programId: updated.program_id,
        campaignId: updated.id,
        name: updated.name,
        automation: updated.automation,
        targeted: updated.targeted,
        delivered: updated.processed,
        skipped: updated.skipped,
        startedAt: updated.started_at?.toISOString() ?? null,
        finishedAt: finishedAt.toISOString(),
      });
      this.logger.info({ campaignId, targeted: updated.targeted, delivered: updated.processed, skipped: updated.skipped }, 'campaign sent');
    }
  }

  /**
   * Expiry: only cards that still have points and are still inactive by the rule (`expiryDue`) when
   * their chunk runs; a purchase or any positive ledger entry since the sweep moves the expiry and
   * the card is skipped.
   */
  private async keepExpiring(trx: Trx, rules: LoyaltyRules, deliver: ChunkRow[], skip: string[]) {
    if (deliver.length === 0) return;
    const purchases = await trx
      .selectFrom('purchase')
      .select(['card_id', sql<Date>`max(created_at)`.as('last')])
      .where('card_id', 'in', deliver.map((r) => r.card_id))
      .groupBy('card_id')
      .execute();
    const lastPurchase = new Map(purchases.map((p) => [p.card_id, new Date(p.last)]));
    // Any positive ledger entry is activity too (a bonus, points returned), not only purchases.
    const credits = await trx
      .selectFrom('ledger_entry')
      .select(['card_id', sql<Date>`max(created_at)`.as('last')])
      .where('card_id', 'in', deliver.map((r) => r.card_id))
      .where('points', '>', 0)
      .groupBy('card_id')
      .execute();
    const lastCredit = new Map(credits.map((p) => [p.card_id, new Date(p.last)]));
    const now = this.deps.clock();
    const keep = deliver.filter((row) => {
      const times = [row.created_at.getTime(), lastPurchase.get(row.card_id)?.getTime() ?? 0, lastCredit.get(row.card_id)?.getTime() ?? 0];
      if (row.params?.since) times.push(Date.parse(row.params.since));
      const due = expiryDue(rules, new Date(Math.max(...times)), now);
      const expires = row.balance > 0 && due !== null && due.expireAt.getTime() <= now.getTime();
      if (!expires) skip.push(row.card_id);
      return expires;
    });
    deliver.splice(0, deliver.length, ...keep);
  }

  /** The chunk's effects on its cards, in the chunk's transaction: promo, points, the card change. */
  private async deliver(trx: Trx, campaign: CampaignRow, program: ProgramRow, rows: ChunkRow[]) {
    const ids = rows.map((r) => r.card_id);
    const rules = program.rules as LoyaltyRules;
    const message = campaign.message;
    const uniform = !hasPlaceholders(message);
    const postsLedger = campaign.effect === 'expire' || campaign.bonus_points > 0;
    // Coupons first: the card change recorded below (promo update or ledger posting) carries them too.
    if (campaign.coupon_definition_id) {
      await issueCouponsToCards(trx, {
        programId: program.id,
        definitionId: campaign.coupon_definition_id,
        cardIds: ids,
        source: campaign.automation ? 'automation' : 'campaign',
        campaignId: campaign.id,
        actor: `campaign:${campaign.id}`,
        now: this.deps.clock(),
      });
    }
    // With points, postToLedger bumps the update tag and enqueues; otherwise the promo update does.
    const changed = postsLedger ? sql`` : sql`, update_tag = ${cardChangedColumns().update_tag}, updated_at = ${cardChangedColumns().updated_at}`;
    if (uniform) {
      await sql`UPDATE card SET promo = ${JSON.stringify(message)}::jsonb ${changed} WHERE id = ANY(${ids}::uuid[])`.execute(trx);
    } else {
      const tierName = (code: string) => rules.tiers.find((t) => t.code === code)?.name ?? { ru: code, en: code };
      const promos = rows.map((r) => JSON.stringify(renderMessage(message, { points: r.balance, date: r.params?.date, tier: tierName(r.tier) })));
      await sql`
        UPDATE card SET promo = v.promo ${changed}
        FROM unnest(${ids}::uuid[], ${promos}::jsonb[]) AS v(id, promo)
        WHERE card.id = v.id
      `.execute(trx);
    }
    if (postsLedger) {
      const actor = `campaign:${campaign.id}`;
      for (const row of rows) {
        const points = campaign.effect === 'expire' ? -row.balance : Number(campaign.bonus_points);
        await postToLedger(trx, this.deps.cardChanges, [
          { programId: program.id, cardId: row.card_id, kind: campaign.ledger_kind, points, actor, idempotencyKey: actor, reason: campaign.name },
        ]);
      }
    } else {
      // Each wallet only for the cards it holds: a card on no device has nothing to push, and its
      // next download is the new pass anyway. (At a quarter of a million cards, half of them not on
      // an iPhone, this halves the update path's jobs.)
      const apple = rows.filter((r) => Number(r.devices) > 0).map((r) => r.card_id);
      const google = rows.filter((r) => r.has_google).map((r) => r.card_id);
      if (apple.length > 0) await this.deps.cardChanges.enqueue(trx, apple, ['apple']);
      if (google.length > 0) await this.deps.cardChanges.enqueue(trx, google, ['google']);
      const others = this.deps.wallets.filter((wallet) => wallet !== 'apple' && wallet !== 'google');
      if (others.length > 0) await this.deps.cardChanges.enqueue(trx, ids, others);
    }
    const classes = (campaign.google_classes as ClassMessageState[]).map((c) => c.classId);
    if (this.deps.google && uniform && classes.length > 0) await this.deps.google.markPromoAnnounced(trx, ids, classes, message);
    // Wallets with nothing to report for a card (no device, no Google object) are marked reported.
    const googleEnabled = this.deps.wallets.includes('google');
    await sql`
      UPDATE campaign_recipient r
      SET status = 'processed', processed_at = now(), update_tag = c.update_tag,
        apple_published_at = CASE WHEN v.devices > 0 THEN NULL ELSE now() END,
        google_published_at = CASE WHEN v.has_google AND ${googleEnabled} THEN NULL ELSE now() END
      FROM unnest(${ids}::uuid[], ${rows.map((r) => Number(r.devices))}::int[], ${rows.map((r) => r.has_google)}::bool[]) AS v(card_id, devices, has_google),
        card c
      WHERE r.campaign_id = ${campaign.id} AND r.card_id = v.card_id AND c.id = v.card_id
    `.execute(trx);
  }

  // ---- delivery figures -----------------------------------------------------------------------

  /**
   * The update path's report for these cards, attributed to every recipient waiting for it. A first
   * report may leave deliveries pending (a wallet outage); a retry's report (`retry`) settles them on
   * the recipients still counting them as pending.
   */
  async recordOutcomes(wallet: string, outcomes: PublishOutcome[]): Promise<void> {
    const first = outcomes.filter((o) => !o.retry);
    const retried = outcomes.filter((o) => o.retry);
    if (wallet === 'apple') {
      if (first.length > 0) {
        await sql`
          UPDATE campaign_recipient r
          SET apple_published_at = now(), apple_pushes_accepted = o.accepted, apple_pushes_failed = o.failed, apple_pushes_pending = o.pending
          FROM unnest(${first.map((o) => o.cardId)}::uuid[], ${first.map((o) => o.pushesAccepted ?? 0)}::int[], ${first.map((o) => o.pushesFailed ?? 0)}::int[],
                      ${first.map((o) => o.pushesPending ?? 0)}::int[]) AS o(card_id, accepted, failed, pending)
          WHERE r.card_id = o.card_id AND r.status = 'processed' AND r.apple_published_at IS NULL
        `.execute(this.db);
      }
      if (retried.length > 0) {
        // A token's push counts for each of this card's recipients still waiting for one.
        await sql`
          UPDATE campaign_recipient r
          SET apple_pushes_accepted = coalesce(r.apple_pushes_accepted, 0) + least(o.accepted, r.apple_pushes_pending),
            apple_pushes_failed = coalesce(r.apple_pushes_failed, 0) + least(o.failed, r.apple_pushes_pending - least(o.accepted, r.apple_pushes_pending)),
            apple_pushes_pending = greatest(0, r.apple_pushes_pending - o.accepted - o.failed)
          FROM unnest(${retried.map((o) => o.cardId)}::uuid[], ${retried.map((o) => o.pushesAccepted ?? 0)}::int[], ${retried.map((o) => o.pushesFailed ?? 0)}::int[])
            AS o(card_id, accepted, failed)
          WHERE r.card_id = o.card_id AND r.apple_pushes_pending > 0
        `.execute(this.db);
      }
    } else if (wallet === 'google') {
      if (first.length > 0) {
        await sql`
          UPDATE campaign_recipient r
          SET google_published_at = now(), google_updated = o.updated, google_notified = o.notified, google_downgraded = o.downgraded,
            google_pending = o.pending, google_failed = o.failed
          FROM unnest(${first.map((o) => o.cardId)}::uuid[], ${first.map((o) => Boolean(o.updated))}::bool[], ${first.map((o) => Boolean(o.notified))}::bool[],
                      ${first.map((o) => Boolean(o.downgraded))}::bool[], ${first.map((o) => Boolean(o.pending))}::bool[], ${first.map((o) => Boolean(o.failed))}::bool[])
            AS o(card_id, updated, notified, downgraded, pending, failed)
          WHERE r.card_id = o.card_id AND r.status = 'processed' AND r.google_published_at IS NULL
        `.execute(this.db);
      }
      if (retried.length > 0) {
        await sql`
          UPDATE campaign_recipient r
          SET google_updated = r.google_updated OR o.updated, google_notified = r.google_notified OR o.notified,
            google_downgraded = r.google_downgraded OR o.downgraded, google_pending = false, google_failed = o.failed
          FROM unnest(${retried.map((o) => o.cardId)}::uuid[], ${retried.map((o) => Boolean(o.updated))}::bool[], ${retried.map((o) => Boolean(o.notified))}::bool[],
                      ${retried.map((o) => Boolean(o.downgraded))}::bool[], ${retried.map((o) => Boolean(o.failed))}::bool[])
            AS o(card_id, updated, notified, downgraded, failed)
          WHERE r.card_id = o.card_id AND r.google_pending
        `.execute(this.db);
      }
    }
  }

  async toDto(row: CampaignRow, options: { withDelivery: boolean }): Promise<CampaignDto> {
    const dto: CampaignDto = {
      id: row.id,
      name: row.name,
      message: row.message,
      audience: row.audience,
      automation: row.automation,
      bonusPoints: Number(row.bonus_points),
      ...(row.coupon_definition_id ? { couponDefinitionId: row.coupon_definition_id } : {}),
      status: row.status,
      scheduledAt: row.scheduled_at?.toISOString() ?? null,
      startedAt: row.started_at?.toISOString() ?? null,
      finishedAt: row.finished_at?.toISOString() ?? null,
      cancelledAt: row.cancelled_at?.toISOString() ?? null,
      createdAt: row.created_at.toISOString(),
      control: { share: row.control_share, heldOut: row.held_out, windowDays: row.effect_window_days },
      progress: { targeted: row.targeted, processed: row.processed + row.skipped, delivered: row.processed, skipped: row.skipped },
    };
    if (options.withDelivery) {
      const { rows } = await sql<{
        accepted: number;
        failed: number;
        reached: number;
        updated: number;
        notified: number;
        downgraded: number;
        awaiting: number;
        apple_pending: number;
        google_pending: number;
        google_failed: number;
      }>`
        SELECT coalesce(sum(apple_pushes_accepted), 0)::bigint AS accepted,
          coalesce(sum(apple_pushes_failed), 0)::bigint AS failed,
          count(*) FILTER (WHERE apple_pushes_accepted > 0)::int AS reached,
          count(*) FILTER (WHERE google_updated)::int AS updated,
          count(*) FILTER (WHERE google_notified)::int AS notified,
          count(*) FILTER (WHERE google_downgraded)::int AS downgraded,
          count(*) FILTER (WHERE status = 'processed' AND (apple_published_at IS NULL OR google_published_at IS NULL))::int AS awaiting,
          coalesce(sum(apple_pushes_pending), 0)::bigint AS apple_pending,
          count(*) FILTER (WHERE google_pending)::int AS google_pending,
          count(*) FILTER (WHERE google_failed)::int AS google_failed
        FROM campaign_recipient WHERE campaign_id = ${row.id}
      `.execute(this.db);
      const { rows: fetched } = await sql<{ fetches: number }>`
        SELECT coalesce(sum(f.fetches), 0)::bigint AS fetches
        FROM campaign_recipient r
        JOIN apple_pass_fetch f ON f.card_id = r.card_id AND f.update_tag = r.update_tag
        WHERE r.campaign_id = ${row.id} AND r.status = 'processed'
      `.execute(this.db);
      const f = rows[0]!;
      dto.delivery = {
        apple: {
          pushesAccepted: Number(f.accepted),
          pushesFailed: Number(f.failed),
          pushesPending: Number(f.apple_pending),
          cardsReached: Number(f.reached),
          passesFetched: Number(fetched[0]?.fetches ?? 0),
        },
        google: {
          objectsUpdated: Number(f.updated),
          notificationsSent: Number(f.notified),
          notificationsDowngraded: Number(f.downgraded),
          objectsPending: Number(f.google_pending),
          objectsFailed: Number(f.google_failed),
          classMessages: row.google_classes as ClassMessageState[],
        },
        awaitingReports: Number(f.awaiting),
      };
    }
    return dto;
  }
}

async function countHeldOut(executor: Executor, campaignId: string): Promise<number> {
  const row = await executor
    .selectFrom('campaign_control')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('campaign_id', '=', campaignId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function lockCampaign(trx: Executor, campaignId: string, programId?: string) {
  let query = trx.selectFrom('campaign').selectAll().where('id', '=', campaignId);
  if (programId !== undefined) query = query.where('program_id', '=', programId);
  return query.forUpdate().executeTakeFirst();
}

/** `all`, or tiers and/or segments; tiers must exist in the program's rules. */
export function checkAudience(program: ProgramRow, audience: Audience) {
  const hasFilter = Boolean(audience.tiers || audience.segments);
  if (audience.all && hasFilter) throw new AppError(400, 'invalid_audience', 'Give either `all` or `tiers`/`segments`, not both');
  if (!audience.all && !hasFilter) throw new AppError(400, 'invalid_audience', 'Give `all: true`, `tiers` or `segments`');
  const known = (program.rules as LoyaltyRules).tiers.map((t) => t.code);
  const unknown = (audience.tiers ?? []).filter((t) => !known.includes(t));
  if (unknown.length > 0) {
    throw new AppError(400, 'unknown_tier', `The program has no tier ${unknown.map((t) => `"${t}"`).join(', ')}`, { unknown, known });
  }
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * How many cards `audience` reaches now: the cards `send` would write down as recipients (the same
 * statement, counted). The cabinet shows it while the audience is chosen.
 */
export async function audienceSize(executor: Executor, program: ProgramRow, audience: Audience, now: Date): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM (${audienceSelect(NIL_UUID, program, audience, now)}) a
  `.execute(executor);
  return Number(rows[0]?.n ?? 0);
}

/**
 * `SELECT campaign_id, card_id` of the audience: active cards with marketing consent (152-FZ / GDPR:
 * marketing messages only to holders who agreed), of the tiers and/or segments.
 */
function audienceSelect(campaignId: string, program: ProgramRow, audience: Audience, now: Date) {
  const tiers = audience.tiers ? sql`AND c.tier = ANY(${audience.tiers}::text[])` : sql``;
  const segments = audience.segments as SegmentCode[] | undefined;
  const segmentJoin = segments
    ? sql`JOIN (${segmentedCards(program.id, thresholdsOf(program.segments), now)}) s ON s.card_id = c.id AND s.segment = ANY(${segments}::text[])`
    : sql``;
  return sql`
    SELECT ${campaignId}::uuid, c.id, c.program_id
    FROM card c
    ${segmentJoin}
    WHERE c.program_id = ${program.id} AND c.status = 'active' AND c.consent ${tiers}
  `;
}
