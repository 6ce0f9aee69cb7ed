/**
 * Everything stored about one holder (152-FZ art. 14, GDPR art. 15 "right of access"), as one JSON
 * document: the card and every row that refers to it. Tables were found by their card_id / phone /
 * serial columns (src/db/schema.ts); docs/privacy.md lists them. Left out on purpose: secrets that
 * protect the holder (the pass's authentication token, the page token is given as the card page URL
 * they already have), and the devices' push tokens (APNs addresses, meaningless to a person; the
 * devices are listed by their identifiers).
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { CardRow, ProgramRow } from '../db/schema.js';
import { listCardCoupons } from '../coupons/repository.js';
import { cardCouponDto } from '../coupons/service.js';

const iso = (value: Date | string | null | undefined) => (value === null || value === undefined ? null : new Date(value).toISOString());
const num = (value: unknown) => (value === null || value === undefined ? null : Number(value));

export interface PersonalDataDeps {
  publicUrl: string;
  passTypeIdentifier: string;
  /** The HMAC one-time-code rows are stored under (verification/phone-verification.ts). */
  phoneHash(phone: string): string;
}

export async function personalData(db: Db, program: ProgramRow, card: CardRow, deps: PersonalDataDeps) {
  const cardId = card.id;
  const programId = program.id;
  const [birthday, consentText, ledger, purchases, pendingBonuses, invitedBy, invited, devices, passFetches, google, walletEvents, campaigns, controls, automations, tierChanges, verifications, webhookEvents, erasure, invitations, pageView, coupons] =
    await Promise.all([
      sql<{ day: string | null }>`SELECT to_char(birthday, 'YYYY-MM-DD') AS day FROM card WHERE id = ${cardId}`.execute(db),
      card.consent_version
        ? db.selectFrom('consent_text').select(['version', 'language', 'body', 'created_at']).where('program_id', '=', programId).where('version', '=', card.consent_version).executeTakeFirst()
        : Promise.resolve(undefined),
      db.selectFrom('ledger_entry').selectAll().where('program_id', '=', programId).where('card_id', '=', cardId).orderBy('id').execute(),
      db.selectFrom('purchase').selectAll().where('program_id', '=', programId).where('card_id', '=', cardId).orderBy('created_at').execute(),
      db.selectFrom('pending_bonus').selectAll().where('program_id', '=', programId).where('card_id', '=', cardId).orderBy('id').execute(),
      db.selectFrom('referral').selectAll().where('program_id', '=', programId).where('invitee_card_id', '=', cardId).executeTakeFirst(),
      db.selectFrom('referral').selectAll().where('program_id', '=', programId).where('inviter_card_id', '=', cardId).orderBy('created_at').execute(),
      db
        .selectFrom('apple_registration')
        .select(['device_library_identifier', 'created_at', 'updated_at'])
        .where('pass_type_identifier', '=', deps.passTypeIdentifier)
        .where('serial_number', '=', card.apple_serial)
        .orderBy('created_at')
        .execute(),
      db.selectFrom('apple_pass_fetch').selectAll().where('card_id', '=', cardId).orderBy('update_tag').execute(),
      db.selectFrom('google_object').select(['object_id', 'saved', 'saved_changed_at', 'created_at']).where('card_id', '=', cardId).executeTakeFirst(),
      db.selectFrom('wallet_event').select(['wallet', 'kind', 'created_at']).where('program_id', '=', programId).where('card_id', '=', cardId).orderBy('id').execute(),
      db
        .selectFrom('campaign_recipient as r')
        .innerJoin('campaign as c', 'c.id', 'r.campaign_id')
        .select(['r.campaign_id', 'c.name', 'r.status', 'r.params', 'r.processed_at'])
        .where('r.program_id', '=', programId)
        .where('r.card_id', '=', cardId)
        .orderBy('c.created_at')
        .execute(),
      db.selectFrom('campaign_control').select('campaign_id').where('program_id', '=', programId).where('card_id', '=', cardId).execute(),
      db.selectFrom('automation_delivery').select(['automation', 'occasion', 'campaign_id', 'created_at']).where('program_id', '=', programId).where('card_id', '=', cardId).orderBy('created_at').execute(),
      db.selectFrom('card_tier_change').select(['from_tier', 'to_tier', 'changed_at']).where('program_id', '=', programId).where('card_id', '=', cardId).orderBy('id').execute(),
      card.status === 'erased'
        ? Promise.resolve([])
        : db
            .selectFrom('phone_verification')
            .select(['purpose', 'attempts', 'created_at', 'sent_at', 'consumed_at'])
            .where('program_id', '=', programId)
            .where('phone_hash', '=', deps.phoneHash(card.phone))
            .orderBy('created_at')
            .execute(),
      db
        .selectFrom('webhook_event')
        .select(['id', 'type', 'data', 'created_at'])
        .where('program_id', '=', programId)
        .where(sql<boolean>`data->>'cardId' = ${cardId}`)
        .orderBy('created_at')
        .execute(),
      db.selectFrom('card_erasure').select(['actor', 'erased_at']).where('program_id', '=', programId).where('card_id', '=', cardId).executeTakeFirst(),
      db.selectFrom('invitation').select(['batch_id', 'channel', 'status', 'created_at']).where('program_id', '=', programId).where('card_id', '=', cardId).orderBy('created_at').execute(),
      db.selectFrom('card_page_view').select('first_at').where('program_id', '=', programId).where('card_id', '=', cardId).executeTakeFirst(),
      listCardCoupons(db, programId, cardId, 10_000),
    ]);

  return {
    generatedAt: new Date().toISOString(),
    program: { id: program.id, slug: program.slug, name: program.name },
    card: {
      id: card.id,
      number: card.number,
      status: card.status,
      holder: { name: card.holder_name, phone: card.status === 'erased' ? null : card.phone, email: card.email, birthday: birthday.rows[0]?.day ?? null },
      consent: {
        marketing: card.consent,
        at: iso(card.consent_at),
        version: card.consent_version,
        text: consentText ? { language: consentText.language, body: consentText.body } : null,
      },
      tier: card.tier,
      balance: Number(card.balance),
      pendingPoints: Number(card.pending_points),
      lifetimeSpend: Number(card.lifetime_spend),
      stamps: card.stamps,
      referralCode: card.referral_code,
      referredBy: card.referred_by,
      enrolledByStaffId: card.staff_id,
      source: card.source,
      externalId: card.external_id,
      channel: card.channel,
      verifiedAt: iso(card.verified_at),
      verifiedVia: card.verified_via,
      promo: card.promo,
      cardPageUrl: card.status === 'erased' ? null : `${deps.publicUrl}/c/${card.public_token}`,
      cardPageFirstViewedAt: iso(pageView?.first_at),
      createdAt: iso(card.created_at),
      updatedAt: iso(card.updated_at),
      erasedAt: iso(card.erased_at),
    },
    ledger: ledger.map((e) => ({ id: num(e.id), kind: e.kind, points: Number(e.points), purchaseId: e.purchase_id, reason: e.reason, actor: e.actor, createdAt: iso(e.created_at) })),
    purchases: purchases.map((p) => ({
      id: p.id,
      amount: Number(p.amount),
      redeemed: Number(p.redeemed),
      accrued: Number(p.accrued),
      payable: Number(p.payable),
      // Issue #17: the discount given, the stamps and rewards, and what was bought (the till's lines).
      discount: Number(p.discount),
      stampsAdded: p.stamps_added,
      rewardsEarned: p.rewards_earned,
      items: p.items ?? null,
      storeId: p.store_id,
      receiptId: p.receipt_id,
      status: p.status,
      createdAt: iso(p.created_at),
      refundedAt: iso(p.refunded_at),
    })),
    pendingBonuses: pendingBonuses.map((b) => ({ kind: b.kind, points: Number(b.points), reason: b.reason, createdAt: iso(b.created_at), releasedAt: iso(b.released_at) })),
    referrals: {
      invitedBy: invitedBy ? { inviterCardId: invitedBy.inviter_card_id, status: invitedBy.status, points: Number(invitedBy.invitee_points), createdAt: iso(invitedBy.created_at) } : null,
      invited: invited.map((r) => ({ inviteeCardId: r.invitee_card_id, status: r.status, points: Number(r.inviter_points), createdAt: iso(r.created_at) })),
    },
    wallets: {
      appleDevices: devices.map((d) => ({ deviceLibraryIdentifier: d.device_library_identifier, registeredAt: iso(d.created_at), updatedAt: iso(d.updated_at) })),
      applePassFetches: passFetches.map((f) => ({ updateTag: num(f.update_tag), fetches: Number(f.fetches), firstAt: iso(f.first_at), lastAt: iso(f.last_at) })),
      google: google ? { objectId: google.object_id, saved: google.saved, savedChangedAt: iso(google.saved_changed_at), createdAt: iso(google.created_at) } : null,
      events: walletEvents.map((e) => ({ wallet: e.wallet, kind: e.kind, at: iso(e.created_at) })),
    },
    campaigns: campaigns.map((c) => ({ campaignId: c.campaign_id, name: c.name, status: c.status, params: c.params, processedAt: iso(c.processed_at) })),
    controlGroups: controls.map((c) => ({ campaignId: c.campaign_id })),
    automations: automations.map((a) => ({ automation: a.automation, occasion: a.occasion, campaignId: a.campaign_id, at: iso(a.created_at) })),
    tierChanges: tierChanges.map((c) => ({ from: c.from_tier, to: c.to_tier, at: iso(c.changed_at) })),
    phoneVerifications: verifications.map((v) => ({ purpose: v.purpose, attempts: Number(v.attempts), createdAt: iso(v.created_at), sentAt: iso(v.sent_at), consumedAt: iso(v.consumed_at) })),
    webhookEvents: webhookEvents.map((e) => ({ id: e.id, type: e.type, data: e.data, createdAt: iso(e.created_at) })),
    invitations: invitations.map((i) => ({ batchId: i.batch_id, channel: i.channel, status: i.status, at: iso(i.created_at) })),
    coupons: coupons.map((c) => cardCouponDto(c, new Date())),
    erasure: erasure ? { actor: erasure.actor, erasedAt: iso(erasure.erased_at) } : null,
  };
}
