import { googleCouponModule } from '../../coupons/display.js';
import { shownCardNumber } from '../../cards/shown-number.js';
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../../db/database.js';
import type { Executor } from '../../db/database.js';
import type { CardRow, Localized, ProgramRow } from '../../db/schema.js';
import type { LoyaltyRules } from '../../loyalty/rules.js';
import { referralUrl } from '../../cards/dto.js';
import { DEFAULT_DESIGN } from '../../programs/service.js';
import type { Design, Texts } from '../../programs/schemas.js';
import type { PublishOutcome, WalletAdapter } from '../../updates/card-changes.js';
import {
  DEFAULT_DELIVERY_RETRY_POLICY,
  deferDeliveries,
  markWanted,
  settleDeliveries,
  type DeliveryFailure,
  type DeliveryRetryPolicy,
  type Settlement,
} from '../../updates/pending-deliveries.js';
import { GoogleAuthError } from './auth.js';
import { GoogleApiError, type GoogleWalletClient, type LoyaltyClass, type LoyaltyObject } from './client.js';
import type { GoogleWalletSettings } from './config.js';
import { sendObjectMessage } from './messaging.js';
import { NOTIFICATION_WINDOW_MS, buildMessage, decideNotification, messageId, pruneMessages } from './notifications.js';
import {
  buildLoyaltyClass,
  buildLoyaltyObject,
  classIdFor,
  loyaltyPoints,
  objectIdFor,
  type LocalizedText,
  type TextModuleInput,
  type LoyaltyObjectInput,
} from './payloads.js';
import { buildSaveUrl } from './save-link.js';
import { MECHANIC_LABELS, mechanicDisplay } from '../mechanic-display.js';
import { stampStripUrl } from '../stamp-strip.js';

interface Logger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface GoogleDeliveryStats {
  objectsUpdated: number;
  notificationsSent: number;
  notificationsDowngraded: number;
  /** Updates kept pending for a retry (429/5xx/network) / refused for good (another 4xx). */
  deferred: number;
  failed: number;
  /** Final failures by HTTP status (`http-404`, …). */
  failedBy: Record<string, number>;
  /** The stats of a retry round. */
  retry: boolean;
}

/**
 * Whether a later attempt can succeed (reference section 5: "429 … Back off"; 5xx and network
 * failures are transient): 408, 429, 5xx and no answer at all, from the Wallet API or the OAuth token
 * endpoint. Any other 4xx is a fact about the request (bad data, no permission, no such object) that
 * repeating cannot change: recorded as failed, not retried forever.
 */
export function isRetryableGoogleFailure(error: unknown): error is GoogleApiError | GoogleAuthError {
  if (!(error instanceof GoogleApiError) && !(error instanceof GoogleAuthError)) return false;
  const status = error.status;
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

const newStats = (retry: boolean): GoogleDeliveryStats => ({
  objectsUpdated: 0,
  notificationsSent: 0,
  notificationsDowngraded: 0,
  deferred: 0,
  failed: 0,
  failedBy: {},
  retry,
});

const failureOf = (cardId: string, error: GoogleApiError | GoogleAuthError): DeliveryFailure => ({
  target: cardId,
  status: error.status,
  reason: error instanceof GoogleApiError ? (error.reason ?? error.operation) : 'TOKEN',
  retryAfterMs: error instanceof GoogleApiError && error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : undefined,
});

const POINTS_LABEL: LocalizedText = { ru: 'Баллы', en: 'Points' };
const TIER_LABEL: LocalizedText = { ru: 'Уровень', en: 'Tier' };

const hashOf = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

/** Identifies a promo text (independent of jsonb key order): what was announced on an object. */
export const promoHash = (promo: Localized) => createHash('sha256').update(`${promo.ru}\u0000${promo.en}`).digest('hex');
/** The deterministic message id of a promo announcement: a retried job finds it and sends nothing. */
const promoMessageKey = (hash: string) => `promo-${hash.slice(0, 24)}`;

type PublishedRow = CardRow & {
  object_id: string;
  class_id: string;
  published_balance: number;
  published_tier: string;
  published_stamps: number;
  object_hash: string;
  published_promo_hash: string | null;
};

/**
 * Google Wallet's side of the card: one loyalty class per program tier (tier name and background
 * colour are class fields in Google's model), one loyalty object per card that was offered to
 * Google Wallet (created lazily by the first "Add to Google Wallet" click, so cards never offered
 * cost no API calls), and the update adapter that keeps those objects current.
 *
 * Notifications: a balance or tier change PATCHes the object with `notifyPreference:
 * NOTIFY_ON_UPDATE` while the object has had fewer than 3 notifying sends in the last 24 hours
 * (Google: "Both message and update notifications are limited to 3 per pass within a 24-hour
 * period"); past that, the update is sent silently. Sends are counted per object in the database.
 */
export class GoogleWalletService {
  constructor(
    private readonly db: Db,
    private readonly client: GoogleWalletClient,
    private readonly settings: GoogleWalletSettings,
    private readonly publicUrl: string,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
    private readonly onDelivered?: (stats: GoogleDeliveryStats) => void,
  ) {}

  get callbackUrl() {
    return `${this.publicUrl}/google/callback`;
  }

  classFor(program: ProgramRow, tierCode: string): LoyaltyClass {
    const design = { ...DEFAULT_DESIGN, ...(program.design as Partial<Design>) };
    const texts = program.texts as Texts;
    const rules = program.rules as LoyaltyRules;
    const tier = rules.tiers.find((t) => t.code === tierCode) ?? rules.tiers[0];
    const apple = program.apple as { organizationName?: string };
    const name = apple.organizationName ?? program.name;
    const backTexts: TextModuleInput[] = [];
    if (texts.contacts) backTexts.push({ id: 'contacts', header: { ru: 'Контакты', en: 'Contacts' }, body: texts.contacts });
    if (texts.terms) backTexts.push({ id: 'terms', header: { ru: 'Условия', en: 'Terms' }, body: texts.terms });
    return buildLoyaltyClass({
      issuerId: this.settings.issuerId,
      programSlug: program.slug,
      defaultLanguage: program.default_language,
      issuerName: { ru: name, en: name },
      programName: design.logoText ?? { ru: program.name, en: program.name },
      logoUrl: `${this.publicUrl}/programs/${program.slug}/google-logo.png`,
      backgroundColor: design.backgroundColor,
      tier: { code: tier.code, name: tier.name, label: TIER_LABEL },
      locations: program.locations as { latitude: number; longitude: number }[],
      callbackUrl: this.callbackUrl,
      texts: backTexts,
    });
  }

  objectFor(card: CardRow, program: ProgramRow): LoyaltyObject {
    const texts = program.texts as Texts;
    const promos: TextModuleInput[] = [];
    const promo = card.promo ?? texts.promo;
    if (promo) promos.push({ id: 'promo', header: { ru: 'Акция', en: 'Promotion' }, body: promo });
    // The card's usable coupons (src/coupons/display.ts).
    const coupons = googleCouponModule(card.coupons, this.clock());
    if (coupons) promos.push(coupons);
    // Bonuses of a self-service card that are shown but not spendable yet (loyalty/bonuses.ts).
    if (card.pending_points > 0) {
      promos.push({
        id: 'pending',
        header: { ru: 'Ожидают подтверждения', en: 'Pending points' },
        body: {
          ru: `${card.pending_points} — станут доступны после подтверждения телефона или первой покупки`,
          en: `${card.pending_points}: spendable once your phone is confirmed or after your first purchase`,
        },
      });
    }
    return buildLoyaltyObject({
      issuerId: this.settings.issuerId,
      programSlug: program.slug,
      // A taken-over card's next object gets a new id: the old one stays with its old holder, INACTIVE.
      cardId: card.google_generation > 0 ? `${card.id}-g${card.google_generation}` : card.id,
      classId: classIdFor(this.settings.issuerId, program.slug, card.tier),
      // An erased card's object expires (privacy/erasure.ts): it moves to the holder's "Expired passes".
      state: card.status === 'active' ? 'ACTIVE' : card.status === 'erased' ? 'EXPIRED' : 'INACTIVE',
      defaultLanguage: program.default_language,
      cardNumber: shownCardNumber(card, program.design as { showPlasticNumber?: boolean }),
      holderName: card.holder_name,
      balance: card.balance,
      pointsLabel: POINTS_LABEL,
      referral: {
        url: referralUrl(this.publicUrl, program, card),
        header: { ru: 'Пригласите друга', en: 'Invite a friend' },
        body: texts.referral ?? { ru: 'Бонусы получите вы оба', en: 'You both get bonus points' },
        linkDescription: { ru: 'Ссылка', en: 'Link' },
      },
      promos,
      mechanic: this.mechanicFor(card, program),
    });
  }

  /** A discount or stamp card's slot, modules and stamp picture (mechanic-display.ts); undefined for points. */
  private mechanicFor(card: CardRow, program: ProgramRow): LoyaltyObjectInput['mechanic'] {
    const display = mechanicDisplay(card, program);
    if (display.kind === 'discount') {
      return {
        label: MECHANIC_LABELS.discount,
        value: display.percentText,
        texts: [{ id: 'next-discount', header: MECHANIC_LABELS.nextDiscount, body: display.next }],
      };
    }
    if (display.kind === 'stamps') {
      return {
        label: MECHANIC_LABELS.stamps,
        value: { ru: display.value, en: display.value },
        texts: [{ id: 'reward', header: MECHANIC_LABELS.reward, body: display.reward }],
        image: { id: 'stamps', url: stampStripUrl(this.publicUrl, program.slug, display.style, display.count), description: display.imageDescription },
      };
    }
    return undefined;
  }

  /** Inserts or updates the class of one tier when its content changed since the last send. */
  async ensureClass(program: ProgramRow, tierCode: string): Promise<string> {
    const cls = this.classFor(program, tierCode);
    const classId = cls.id!;
    const contentHash = hashOf(cls);
    const known = await this.db.selectFrom('google_class').select('content_hash').where('class_id', '=', classId).executeTakeFirst();
    if (known?.content_hash === contentHash) return classId;
    await this.client.ensureClass(cls);
    await this.db
      .insertInto('google_class')
      .values({ class_id: classId, program_id: program.id, tier_code: tierCode, content_hash: contentHash })
      .onConflict((oc) => oc.column('class_id').doUpdateSet({ content_hash: contentHash, updated_at: new Date() }))
      .execute();
    return classId;
  }

  /** The card's object exists at Google (inserted once; a concurrent insert's 409 is "exists"). */
  async ensureObject(card: CardRow, program: ProgramRow): Promise<{ objectId: string; classId: string }> {
    const existing = await this.db.selectFrom('google_object').select(['object_id', 'class_id']).where('card_id', '=', card.id).executeTakeFirst();
    if (existing) return { objectId: existing.object_id, classId: existing.class_id };
    const classId = await this.ensureClass(program, card.tier);
    const object = this.objectFor(card, program);
    await this.client.ensureObject(object, { cls: this.classFor(program, card.tier) });
    const objectId = object.id!;
    await this.db
      .insertInto('google_object')
      .values({
        card_id: card.id,
        program_id: program.id,
        object_id: objectId,
        class_id: classId,
        published_balance: card.balance,
        published_tier: card.tier,
        published_stamps: card.stamps,
        content_hash: hashOf(object),
      })
      .onConflict((oc) => oc.column('card_id').doNothing())
      .execute();
    await this.db.updateTable('card').set({ google_object_id: objectId }).where('id', '=', card.id).execute();
    return { objectId, classId };
  }

  /**
   * "Add to Google Wallet": the object is inserted first and the JWT carries only its id, which
   * keeps the link far below Google's 1,800-character limit (reference section 2, skinny JWT).
   */
  async saveUrl(card: CardRow, program: ProgramRow): Promise<string> {
    const { objectId, classId } = await this.ensureObject(card, program);
    return buildSaveUrl({
      serviceAccount: this.settings.serviceAccount,
      origins: this.settings.origins,
      objectId,
      classId,
      saveUrlPrefix: this.settings.saveUrlPrefix,
    });
  }

  /**
   * The update path's Google adapter: patch each changed object, notifying within the quota, and
   * announce a new promo with a message (the Google side of the pass's promo changeMessage).
   * Reports one outcome per card it was given.
   *
   * Through outages (issue #11): an update that fails with 429/5xx/network (after the client's own
   * retries) is kept pending per card in `wallet_delivery_pending` before the job completes, and the
   * retry worker publishes the card's latest state with backoff until Google takes it; one card's
   * failure no longer fails the cards after it. A card that is pending is left to the retry worker.
   * Another 4xx is recorded as failed and not retried. A promo message is never sent twice: a retry
   * first looks for the message's deterministic id on the object (announcePromo).
   */
  adapter(options: { retryPolicy?: DeliveryRetryPolicy } = {}): WalletAdapter {
    const policy = options.retryPolicy ?? DEFAULT_DELIVERY_RETRY_POLICY;
    const selectRows = (cardIds: string[]) =>
      this.db
        .selectFrom('google_object as g')
        .innerJoin('card as c', 'c.id', 'g.card_id')
        .selectAll('c')
        .select(['g.object_id', 'g.class_id', 'g.published_balance', 'g.published_tier', 'g.published_stamps', 'g.content_hash as object_hash', 'g.published_promo_hash'])
        .where('g.card_id', 'in', cardIds);
    return {
      wallet: 'google',
      publish: async (cardIds) => {
        if (cardIds.length === 0) return [];
        // Objects of taken-over cards are retired first; one Google refused for now stays pending.
        const retireFailures = await this.retireObjects(cardIds);
        const rows = await selectRows(cardIds)
          .leftJoin('wallet_delivery_pending as p', (join) => join.on('p.wallet', '=', 'google').on(sql<boolean>`p.target = g.card_id::text`))
          .select('p.target as pending')
          .execute();
        const outcomes = new Map<string, PublishOutcome>(cardIds.map((cardId) => [cardId, { cardId, updated: false, notified: false, downgraded: false }]));
        if (rows.length === 0) {
          await deferDeliveries(this.db, 'google', [...retireFailures.values()], policy);
          return [...outcomes.values()];
        }
        // Pending cards get their update from the retry worker, which publishes the latest state.
        const leftToRetry = await markWanted(this.db, 'google', rows.filter((row) => row.pending !== null).map((row) => row.id));
        const stats = newStats(false);
        const programs = new Map<string, ProgramRow>();
        const failures: DeliveryFailure[] = [...retireFailures.values()];
        try {
          for (const row of rows) {
            const outcome = outcomes.get(row.id)!;
            if (leftToRetry.has(row.id)) {
              outcome.pending = true;
              continue;
            }
            const result = await this.publishCard(row, programs, stats, outcome);
            if (result !== 'delivered') {
              if (result.retryable) {
                failures.push(failureOf(row.id, result.error));
                outcome.pending = true;
              } else outcome.failed = true;
            }
          }
        } finally {
          // Written before the job completes (or fails on an unexpected error): nothing retryable is lost.
          await deferDeliveries(this.db, 'google', failures, policy);
          this.onDelivered?.(stats);
        }
        return [...outcomes.values()];
      },

      redeliver: async (claimed) => {
        if (claimed.length === 0) return [];
        const retireFailures = await this.retireObjects(claimed.map((c) => c.target));
        const rows = await selectRows(claimed.map((c) => c.target)).execute();
        const byCard = new Map(rows.map((row) => [row.id, row]));
        const stats = newStats(true);
        const programs = new Map<string, ProgramRow>();
        const settlements: Settlement[] = [];
        const outcomes: PublishOutcome[] = [];
        try {
          for (const c of claimed) {
            const retireFailure = retireFailures.get(c.target);
            if (retireFailure) {
              settlements.push({ result: 'retry', attempts: c.attempts, ...retireFailure });
              continue;
            }
            const row = byCard.get(c.target);
            // The card (or its object) is gone: nothing left to deliver.
            if (!row) {
              settlements.push({ target: c.target, result: 'done' });
              continue;
            }
            const outcome: PublishOutcome = { cardId: row.id, updated: false, notified: false, downgraded: false, retry: true };
            const result = await this.publishCard(row, programs, stats, outcome);
            if (result === 'delivered') {
              settlements.push({ target: c.target, result: 'delivered', wanted: c.wanted });
              outcomes.push(outcome);
            } else if (result.retryable) {
              settlements.push({ result: 'retry', attempts: c.attempts, ...failureOf(c.target, result.error) });
            } else {
              settlements.push({ target: c.target, result: 'done' });
              outcome.failed = true;
              outcomes.push(outcome);
            }
          }
        } finally {
          await settleDeliveries(this.db, 'google', settlements, policy);
          this.onDelivered?.(stats);
        }
        return outcomes;
      },
    };
  }

  /**
   * Objects of taken-over cards (retired_google_object, enrollment/takeover.ts): set INACTIVE (they
   * move to the old holder's "Expired passes"; Google has no DELETE, reference checklist 19), once.
   * A retryable refusal (429/5xx) is returned per card so that card stays pending (issue #11); any
   * other refusal is logged and the object left as it is.
   */
  private async retireObjects(cardIds: string[]): Promise<Map<string, DeliveryFailure>> {
    const failures = new Map<string, DeliveryFailure>();
    const retired = await this.db
      .selectFrom('retired_google_object')
      .select(['object_id', 'card_id'])
      .where('card_id', 'in', cardIds)
      .where('expired_at', 'is', null)
      .execute();
    for (const row of retired) {
      try {
        await this.client.patchObject(row.object_id, { state: 'INACTIVE' }, { notify: false });
      } catch (error) {
        if (isRetryableGoogleFailure(error)) {
          failures.set(row.card_id, failureOf(row.card_id, error));
          continue;
        }
        this.logger.error({ cardId: row.card_id, objectId: row.object_id, err: error instanceof Error ? error.message : String(error) }, 'Google Wallet refused to retire an object');
      }
      await this.db.updateTable('retired_google_object').set({ expired_at: this.clock() }).where('object_id', '=', row.object_id).execute();
    }
    return failures;
  }

  /** One card through publishOne, with its failure classified (issue #11). Unexpected errors are thrown. */
  private async publishCard(
    row: PublishedRow,
    programs: Map<string, ProgramRow>,
    stats: GoogleDeliveryStats,
    outcome: PublishOutcome,
  ): Promise<'delivered' | { retryable: boolean; error: GoogleApiError | GoogleAuthError }> {
    let program = programs.get(row.program_id);
    if (!program) {
      program = await this.db.selectFrom('program').selectAll().where('id', '=', row.program_id).executeTakeFirstOrThrow();
      programs.set(program.id, program);
    }
    try {
      await this.publishOne(row, program, stats, outcome);
      return 'delivered';
    } catch (error) {
      if (isRetryableGoogleFailure(error)) {
        stats.deferred++;
        return { retryable: true, error };
      }
      if (error instanceof GoogleApiError || error instanceof GoogleAuthError) {
        stats.failed++;
        const key = `http-${error.status}`;
        stats.failedBy[key] = (stats.failedBy[key] ?? 0) + 1;
        this.logger.error(
          { cardId: row.id, objectId: row.object_id, status: error.status, reason: error instanceof GoogleApiError ? error.reason : undefined, err: error.message },
          'Google Wallet refused the object update; recorded as failed, not retried',
        );
        return { retryable: false, error };
      }
      throw error;
    }
  }

  /** Notifying sends of an object in the last 24 h (messages and NOTIFY_ON_UPDATE PATCHes). */
  private async notificationHistory(objectId: string, now: Date): Promise<Date[]> {
    const history = await this.db
      .selectFrom('google_notification')
      .select('sent_at')
      .where('object_id', '=', objectId)
      .where('sent_at', '>', new Date(now.getTime() - NOTIFICATION_WINDOW_MS))
      .execute();
    return history.map((h) => h.sent_at);
  }

  /**
   * A promo the object has not announced yet gets a message: TEXT_AND_NOTIFY within the 3-per-24h
   * budget, TEXT past it (sendObjectMessage). The message id comes from the promo text, so a retried
   * job finds its own message on the object and sends nothing twice. Recorded before anything else
   * can fail.
   */
  private async announcePromo(row: PublishedRow, program: ProgramRow, promo: Localized, hash: string, now: Date, outcome: PublishOutcome) {
    const name: LocalizedText = { ru: program.name, en: program.name };
    const sent = await sendObjectMessage(this.client, row.object_id, {
      header: name,
      body: promo,
      defaultLanguage: program.default_language,
      notify: true,
      history: await this.notificationHistory(row.object_id, now),
      now,
      key: promoMessageKey(hash),
    });
    // A message found on the object was added by an earlier attempt whose answer was lost (or whose
    // process died before recording it): if it notified, it counts against the 3-per-24h budget.
    const foundNotifying =
      sent.alreadySent === true && sent.resource.messages?.some((m) => m.id === sent.messageId && m.messageType === 'TEXT_AND_NOTIFY') === true;
    if (sent.notified || foundNotifying) {
      await this.db.insertInto('google_notification').values({ object_id: row.object_id, kind: 'message', sent_at: now }).execute();
    }
    await this.db.updateTable('google_object').set({ published_promo_hash: hash }).where('card_id', '=', row.id).execute();
    outcome.notified = sent.notified;
    outcome.downgraded = sent.downgraded;
    return sent.notified || sent.downgraded || Boolean(sent.alreadySent);
  }

  private async publishOne(row: PublishedRow, program: ProgramRow, stats: GoogleDeliveryStats, outcome: PublishOutcome) {
    const card: CardRow = row;
    const now = this.clock();
    // A new promo is announced first; the holder then got this change's notification already.
    let announced = false;
    const promoNow = card.promo ? promoHash(card.promo) : null;
    if (card.promo && promoNow !== row.published_promo_hash) {
      announced = await this.announcePromo(row, program, card.promo, promoNow!, now, outcome);
      if (outcome.notified) stats.notificationsSent++;
      if (outcome.downgraded) stats.notificationsDowngraded++;
    }
    const classId = await this.ensureClass(program, card.tier);
    const object = this.objectFor(card, program);
    const contentHash = hashOf(object);
    if (contentHash === row.object_hash && classId === row.class_id) return; // nothing Google shows changed
    const balanceChanged = card.balance !== row.published_balance;
    const tierChanged = card.tier !== row.published_tier;
    // A stamp is the stamp card's balance change: it notifies the same way (issue #17).
    const stampsChanged = card.stamps !== row.published_stamps;
    let notify = false;
    if ((balanceChanged || tierChanged || stampsChanged) && !announced) {
      notify = decideNotification(await this.notificationHistory(row.object_id, now), now).notify;
      if (!notify) {
        stats.notificationsDowngraded++;
        outcome.downgraded = true;
      }
    }
    // PATCH only what changes; arrays (text modules, links) are sent whole (reference 1.1, 3).
    const patch: LoyaltyObject = {
      loyaltyPoints: object.loyaltyPoints,
      state: object.state,
      accountName: object.accountName,
      textModulesData: object.textModulesData,
      linksModuleData: object.linksModuleData,
    };
    // Only stamp cards carry the picture; a points object's PATCH stays what it was.
    if (object.imageModulesData) patch.imageModulesData = object.imageModulesData;
    if (classId !== row.class_id) patch.classId = classId; // a tier change moves the card to its tier's class
    const result = await this.client.patchObject(row.object_id, patch, { notify });
    stats.objectsUpdated++;
    outcome.updated = true;
    if (result.notified) {
      stats.notificationsSent++;
      outcome.notified = true;
      await this.db.insertInto('google_notification').values({ object_id: row.object_id, kind: 'update', sent_at: now }).execute();
    } else if (notify && result.downgraded) {
      stats.notificationsDowngraded++;
      outcome.downgraded = true;
    }
    await this.db
      .updateTable('google_object')
      .set({ class_id: classId, published_balance: card.balance, published_tier: card.tier, published_stamps: card.stamps, content_hash: contentHash, updated_at: now })
      .where('card_id', '=', card.id)
      .execute();
  }

  /**
   * One message for every holder of a tier's class (reference section 3: "Class updates reach
   * every holder of the class"), for a campaign whose audience is the whole class. Idempotent by
   * `key`: a class that already carries the message id is left alone. Pruned to 10 like objects.
   */
  async sendClassMessage(
    program: ProgramRow,
    tierCode: string,
    body: Localized,
    key: string,
  ): Promise<{ classId: string; notified: boolean; downgraded: boolean; alreadySent: boolean }> {
    const classId = await this.ensureClass(program, tierCode);
    const id = messageId(key);
    const current = await this.client.getClass(classId);
    if (current?.messages?.some((m) => m.id === id)) return { classId, notified: false, downgraded: false, alreadySent: true };
    const { keep, dropped } = pruneMessages(current?.messages ?? []);
    if (dropped.length > 0) await this.client.patchClass(classId, { messages: keep });
    const now = this.clock();
    const result = await this.client.addClassMessage(
      classId,
      buildMessage({ id, header: { ru: program.name, en: program.name }, body, defaultLanguage: program.default_language, notify: true, displayFrom: now }),
    );
    return { classId, notified: result.notified, downgraded: result.downgraded, alreadySent: false };
  }

  /**
   * Marks `promo` as announced on these cards' objects in `classIds` (a class message carried it),
   * in the caller's transaction, so the update path patches them without a message of their own.
   */
  async markPromoAnnounced(executor: Executor, cardIds: string[], classIds: string[], promo: Localized): Promise<void> {
    if (cardIds.length === 0 || classIds.length === 0) return;
    await executor
      .updateTable('google_object')
      .set({ published_promo_hash: promoHash(promo) })
      .where('card_id', 'in', cardIds)
      .where('class_id', 'in', classIds)
      .execute();
  }
}
