import { createHash } from 'node:crypto';
import type { Db } from '../../db/database.js';
import type { Executor } from '../../db/database.js';
import type { CardRow, Localized, ProgramRow } from '../../db/schema.js';
import type { LoyaltyRules } from '../../loyalty/rules.js';
import { referralUrl } from '../../cards/dto.js';
import { DEFAULT_DESIGN } from '../../programs/service.js';
import type { Design, Texts } from '../../programs/schemas.js';
import type { PublishOutcome, WalletAdapter } from '../../updates/card-changes.js';
import type { GoogleWalletClient, LoyaltyClass, LoyaltyObject } from './client.js';
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
} from './payloads.js';
import { buildSaveUrl } from './save-link.js';

interface Logger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface GoogleDeliveryStats {
  objectsUpdated: number;
  notificationsSent: number;
  notificationsDowngraded: number;
}

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
      state: card.status === 'active' ? 'ACTIVE' : 'INACTIVE',
      defaultLanguage: program.default_language,
      cardNumber: card.number,
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
    });
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
   */
  adapter(): WalletAdapter {
    return {
      wallet: 'google',
      publish: async (cardIds) => {
        if (cardIds.length === 0) return [];
        await this.retireObjects(cardIds);
        const rows = await this.db
          .selectFrom('google_object as g')
          .innerJoin('card as c', 'c.id', 'g.card_id')
          .selectAll('c')
          .select(['g.object_id', 'g.class_id', 'g.published_balance', 'g.published_tier', 'g.content_hash as object_hash', 'g.published_promo_hash'])
          .where('g.card_id', 'in', cardIds)
          .execute();
        const outcomes = new Map<string, PublishOutcome>(cardIds.map((cardId) => [cardId, { cardId, updated: false, notified: false, downgraded: false }]));
        if (rows.length === 0) return [...outcomes.values()];
        const programs = new Map<string, ProgramRow>();
        const stats: GoogleDeliveryStats = { objectsUpdated: 0, notificationsSent: 0, notificationsDowngraded: 0 };
        for (const row of rows) {
          let program = programs.get(row.program_id);
          if (!program) {
            program = await this.db.selectFrom('program').selectAll().where('id', '=', row.program_id).executeTakeFirstOrThrow();
            programs.set(program.id, program);
          }
          await this.publishOne(row, program, stats, outcomes.get(row.id)!);
        }
        this.onDelivered?.(stats);
        return [...outcomes.values()];
      },
    };
  }

  /**
   * Objects of taken-over cards (retired_google_object, enrollment/takeover.ts): set INACTIVE (they
   * move to the old holder's "Expired passes"; Google has no DELETE, reference checklist 19), once.
   */
  private async retireObjects(cardIds: string[]) {
    const retired = await this.db
      .selectFrom('retired_google_object')
      .select('object_id')
      .where('card_id', 'in', cardIds)
      .where('expired_at', 'is', null)
      .execute();
    for (const row of retired) {
      await this.client.patchObject(row.object_id, { state: 'INACTIVE' }, { notify: false });
      await this.db.updateTable('retired_google_object').set({ expired_at: this.clock() }).where('object_id', '=', row.object_id).execute();
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
    if (sent.notified) {
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
    let notify = false;
    if ((balanceChanged || tierChanged) && !announced) {
      notify = decideNotification(await this.notificationHistory(row.object_id, now), now).notify;
      if (!notify) {
        stats.notificationsDowngraded++;
        outcome.downgraded = true;
      }
    }
    // PATCH only what changes; arrays (text modules, links) are sent whole (reference 1.1, 3).
    const patch: LoyaltyObject = {
      loyaltyPoints: loyaltyPoints(card.balance, POINTS_LABEL, program.default_language),
      state: object.state,
      accountName: object.accountName,
      textModulesData: object.textModulesData,
      linksModuleData: object.linksModuleData,
    };
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
      .set({ class_id: classId, published_balance: card.balance, published_tier: card.tier, content_hash: contentHash, updated_at: now })
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
