import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Columns the database fills in but callers may set. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export interface Localized {
  ru: string;
  en: string;
}

export interface ProgramTable {
  id: Generated<string>;
  slug: string;
  name: string;
  default_language: ColumnType<'ru' | 'en', 'ru' | 'en' | undefined, 'ru' | 'en'>;
  currency: ColumnType<string, string | undefined, string>;
  time_zone: ColumnType<string, string | undefined, string>;
  design: Json<Record<string, unknown>>;
  apple: Json<Record<string, unknown>>;
  google: Json<Record<string, unknown>>;
  texts: Json<Record<string, unknown>>;
  locations: Json<unknown[]>;
  rules: Json<Record<string, unknown>>;
  /** RFM segment thresholds (campaigns/segments.ts); '{}' = defaults. */
  segments: ColumnType<Record<string, unknown>, string | undefined, string>;
  /** Automation switches and texts (campaigns/automations.ts); '{}' = all off. */
  automations: ColumnType<Record<string, unknown>, string | undefined, string>;
  /** Bumped by every image change: the per-process image cache is keyed by it (issue #13). */
  image_version: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ProgramImageTable {
  program_id: string;
  name: string;
  png: Buffer | Uint8Array;
  updated_at: Timestamp;
}

export interface ApiKeyTable {
  id: Generated<string>;
  program_id: string;
  role: 'admin' | 'marketer' | 'pos';
  name: string;
  key_hash: string;
  created_at: Timestamp;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface StaffMemberTable {
  id: Generated<string>;
  program_id: string;
  name: string;
  role: 'owner' | 'marketer' | 'cashier';
  created_at: Timestamp;
  /** Soft delete: cards keep their enrolling staff member for the leaderboard. */
  deleted_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** Cabinet sign-in (lower-cased; unique among active staff of the instance). */
  email: ColumnType<string | null, string | null | undefined, string | null>;
  /** argon2id (PHC string); null = no password, sign-in links only. */
  password_hash: ColumnType<string | null, string | null | undefined, string | null>;
  password_changed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  last_sign_in_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface StaffSessionTable {
  token_hash: string;
  staff_id: string;
  program_id: string;
  csrf_token: string;
  created_at: Timestamp;
  last_seen_at: Timestamp;
  expires_at: Date;
  method: 'password' | 'link';
  user_agent: string | null;
}

export interface StaffSignInLinkTable {
  token_hash: string;
  staff_id: string;
  program_id: string;
  created_by: string;
  created_at: Timestamp;
  expires_at: Date;
  used_at: Date | null;
}

export interface SignInFailureTable {
  id: Generated<number>;
  subject: string;
  at: Timestamp;
}

/** Where an account (sign-in e-mail) last signed in successfully (cabinet/auth.ts: sign-in throttling). */
export interface SignInKnownAddressTable {
  email: string;
  ip: string;
  last_success_at: Timestamp;
}

export interface StaffPasswordResetTable {
  id: Generated<string>;
  staff_id: string;
  program_id: string;
  email: string;
  /** SHA-256 of the token in the mail; null until the mail job mints it. */
  token_hash: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  expires_at: Date;
  sent_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface CardTable {
  id: Generated<string>;
  program_id: string;
  number: string;
  holder_name: string;
  phone: string;
  email: string | null;
  birthday: ColumnType<Date | null, string | null | undefined, string | null>;
  consent: Generated<boolean>;
  consent_at: Date | null;
  /** The consent_text version the holder agreed to (public join form); null via the API. */
  consent_version: ColumnType<string | null, string | null | undefined, string | null>;
  tier: string;
  balance: Generated<number>;
  lifetime_spend: Generated<number>;
  referral_code: string;
  referred_by: string | null;
  staff_id: string | null;
  source: string | null;
  external_id: string | null;
  /** 'erased': the holder's personal data was erased on request (privacy/erasure.ts); the row stays for accounting. */
  status: Generated<'active' | 'blocked' | 'erased'>;
  public_token: string;
  apple_serial: string;
  apple_auth_token: string;
  google_object_id: string | null;
  promo: ColumnType<Localized | null, string | null | undefined, string | null>;
  update_tag: Generated<number>;
  updated_at: Timestamp;
  created_at: Timestamp;
  /** 'staff' (POS/admin key, cabinet) or 'self_service' (the public join page). */
  channel: ColumnType<CardChannel, CardChannel | undefined, CardChannel>;
  /** When the holder became known to be real (null: an unverified self-service card). */
  verified_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  verified_via: ColumnType<VerifiedVia | null, VerifiedVia | null | undefined, VerifiedVia | null>;
  /** Bonuses shown but not spendable yet: the sum of the card's unreleased pending_bonus rows. */
  pending_points: Generated<number>;
  /** Bumped by a takeover: the Google object id of the new holder differs from the old one. */
  google_generation: Generated<number>;
  /** The plastic card's number from an import (unique per program): the till finds the card by it too. */
  external_number: ColumnType<string | null, string | null | undefined, string | null>;
  /** The import that created the card, and the store and notes its row carried (src/imports). */
  import_id: ColumnType<string | null, string | null | undefined, string | null>;
  store: ColumnType<string | null, string | null | undefined, string | null>;
  notes: ColumnType<string | null, string | null | undefined, string | null>;
  /** When the holder's personal data was erased (status 'erased'). */
  erased_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** Stamps mechanic: the sum of the card's stamp entries (never negative). */
  stamps: Generated<number>;
  /** When the card last got a stamp (stamps expiry). */
  last_stamp_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** The usable coupons the wallets show (src/coupons keeps it in the transaction that changes them). */
  coupons: ColumnType<CardCouponsShown, string | undefined, string>;
}

/** card.coupons: what a pass and a Google object show of the card's coupons. */
export interface CardCouponsShown {
  active: Array<{ code: string; title: Localized; expiresAt: string }>;
  /** The coupon issued last (set by an issue only): the pass's lock-screen message on issue. */
  latest?: { code: string; title: Localized } | null;
}

export type CouponKind = 'percent' | 'amount' | 'free_item';
export type CardCouponStatus = 'issued' | 'redeemed' | 'expired' | 'void';
export type CardCouponSource = 'admin' | 'campaign' | 'automation' | 'stamps';

export interface CouponDefinitionTable {
  program_id: string;
  id: Generated<string>;
  title: Json<Localized>;
  kind: CouponKind;
  percent: number | null;
  amount: ColumnType<number | null, number | null | undefined, number | null>;
  sku: string | null;
  min_check: ColumnType<number, number | undefined, number>;
  categories: ColumnType<string[] | null, string | null, string | null>;
  valid_days: number | null;
  valid_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CardCouponTable {
  program_id: string;
  id: Generated<string>;
  card_id: string;
  definition_id: string;
  code: string;
  issued_at: Timestamp;
  expires_at: ColumnType<Date, Date | string, Date | string>;
  status: ColumnType<CardCouponStatus, CardCouponStatus | undefined, CardCouponStatus>;
  redeemed_purchase_id: ColumnType<string | null, string | null | undefined, string | null>;
  redeemed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  discount: ColumnType<number | null, number | null | undefined, number | null>;
  source: CardCouponSource;
  campaign_id: ColumnType<string | null, string | null | undefined, string | null>;
  actor: string;
}

/** Audit of erasures: who erased which card and when (no personal data). */
export interface CardErasureTable {
  program_id: string;
  card_id: string;
  actor: string;
  erased_at: Timestamp;
}

export type CardChannel = 'staff' | 'self_service';
export type VerifiedVia = 'staff' | 'otp' | 'purchase' | 'legacy';

export type InvitationChannel = 'sms' | 'email';

/** A request to invite the cards on no wallet (privacy/invitations.ts). */
export interface InvitationBatchTable {
  id: Generated<string>;
  program_id: string;
  channels: InvitationChannel[];
  status: Generated<'queued' | 'sending' | 'finished'>;
  cursor_card_id: string | null;
  cards: Generated<number>;
  skipped_no_consent: Generated<number>;
  created_by: string;
  created_at: Timestamp;
  finished_at: Date | null;
}

/** One card and channel a batch tried ('sending' is written before the send: at most once). */
export interface InvitationTable {
  program_id: string;
  batch_id: string;
  card_id: string;
  channel: InvitationChannel;
  status: 'sending' | 'sent' | 'failed' | 'no_address';
  created_at: Timestamp;
}

export interface PurchaseTable {
  id: Generated<string>;
  program_id: string;
  card_id: string;
  amount: number;
  redeemed: number;
  accrued: number;
  payable: number;
  store_id: string | null;
  receipt_id: string | null;
  status: Generated<'completed' | 'refunded'>;
  created_at: Timestamp;
  refunded_at: Date | null;
  /** Points the refund could not take back because they were already spent (null until refunded). */
  refund_shortfall: ColumnType<number | null, number | null | undefined, number | null>;
  /** Money off the check (mechanic "discount"), minor units. */
  discount: Generated<number>;
  /** The check's lines as the till sent them (null: a whole-check purchase). */
  items: ColumnType<unknown | null, string | null | undefined, string | null>;
  stamps_added: Generated<number>;
  rewards_earned: Generated<number>;
}

export type StampEntryKind = 'stamp' | 'reward' | 'expiry' | 'reversal';

export interface StampEntryTable {
  id: Generated<number>;
  program_id: string;
  card_id: string;
  purchase_id: string | null;
  kind: StampEntryKind;
  stamps: number;
  actor: string;
  created_at: Timestamp;
}

/** A completed stamp card, for the coupons module to turn into a coupon ('revoked' by a refund). */
export interface StampRewardTable {
  id: Generated<string>;
  program_id: string;
  card_id: string;
  purchase_id: string;
  status: Generated<'earned' | 'revoked'>;
  created_at: Timestamp;
  revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** The coupon the reward issued (rules.stamps.reward.coupon), if any. */
  coupon_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export type ReferralStatus = 'pending' | 'paid' | 'capped' | 'reversed';

/** One row per invited card: whether and by what its referral bonuses were paid (structured, no LIKE). */
export interface ReferralTable {
  invitee_card_id: string;
  program_id: string;
  inviter_card_id: string;
  status: ReferralStatus;
  /** rules.referral.grantOn when the card enrolled. */
  grant_on: 'enrollment' | 'first_purchase';
  invitee_points: Generated<number>;
  inviter_points: Generated<number>;
  /** The purchase that caused the payment (a first purchase); its refund reverses it. */
  purchase_id: ColumnType<string | null, string | null | undefined, string | null>;
  paid_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  reversed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: Timestamp;
}

/** A bonus of a self-service card that is shown but not spendable until the holder is verified. */
export interface PendingBonusTable {
  id: Generated<number>;
  program_id: string;
  card_id: string;
  kind: 'welcome' | 'referral';
  points: number;
  actor: string;
  reason: string | null;
  created_at: Timestamp;
  released_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  release_purchase_id: ColumnType<string | null, string | null | undefined, string | null>;
  ledger_entry_id: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface PhoneVerificationTable {
  id: Generated<string>;
  program_id: string;
  /** HMAC of the E.164 phone (no personal data stored). */
  phone_hash: string;
  purpose: string;
  /** HMAC of the code; the code itself is never stored. */
  code_hash: string;
  ip_hash: string;
  attempts: Generated<number>;
  created_at: Timestamp;
  expires_at: Date;
  sent_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  consumed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

/** The Apple serial and token of a card before a takeover: they answer with a voided pass. */
export interface RetiredApplePassTable {
  serial_number: string;
  auth_token: string;
  card_id: string;
  program_id: string;
  number: string;
  update_tag: Generated<number>;
  retired_at: Timestamp;
  fetched_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

/** A Google object of a card before a takeover: set INACTIVE by the update path. */
export interface RetiredGoogleObjectTable {
  object_id: string;
  card_id: string;
  program_id: string;
  retired_at: Timestamp;
  expired_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export type LedgerKind =
  | 'welcome'
  | 'referral'
  | 'accrual'
  | 'redemption'
  | 'adjustment'
  | 'expiry'
  | 'reversal'
  | 'birthday'
  | 'campaign_bonus'
  /** An imported opening balance, or an update-mode import's delta (src/imports). */
  | 'import';

export interface LedgerEntryTable {
  id: Generated<number>;
  program_id: string;
  card_id: string;
  kind: LedgerKind;
  points: number;
  purchase_id: string | null;
  idempotency_key: string | null;
  actor: string;
  reason: string | null;
  created_at: Timestamp;
}

export interface IdempotencyRecordTable {
  /** The program of a program-scoped key (`scope` is its id); filled by a trigger (the Citus path, issue #13). */
  program_id: ColumnType<string | null, string | null | undefined, string | null>;
  scope: string;
  key: string;
  request_hash: string;
  status_code: number | null;
  response: ColumnType<unknown, string | null, string | null>;
  created_at: Timestamp;
}

export interface AppleRegistrationTable {
  /** The program (filled from the parent row by a trigger when not given; the Citus path, issue #13). */
  program_id: ColumnType<string, string | undefined, string>;
  device_library_identifier: string;
  pass_type_identifier: string;
  serial_number: string;
  push_token: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ConsentTextTable {
  version: string;
  program_id: string;
  language: 'ru' | 'en';
  body: string;
  created_at: Timestamp;
}

export interface JoinViewTable {
  id: Generated<number>;
  program_id: string;
  /** Local day in the program's time zone (YYYY-MM-DD on insert). */
  day: ColumnType<Date, string, string>;
  visitor_hash: string;
  source: string | null;
  staff_id: string | null;
  referrer_card_id: string | null;
  created_at: Timestamp;
}

export type WalletKind = 'apple' | 'google';
export type WalletEventKind = 'installed' | 'removed';

export interface WalletEventTable {
  id: Generated<number>;
  program_id: string;
  card_id: string;
  wallet: WalletKind;
  kind: WalletEventKind;
  created_at: Timestamp;
}

export interface GoogleClassTable {
  class_id: string;
  program_id: string;
  tier_code: string;
  content_hash: string;
  updated_at: Timestamp;
}

export interface GoogleObjectTable {
  card_id: string;
  program_id: string;
  object_id: string;
  class_id: string;
  published_balance: number;
  published_tier: string;
  /** Stamps on the card when the object was last sent (a change notifies like a balance change). */
  published_stamps: Generated<number>;
  content_hash: string;
  saved: Generated<boolean>;
  saved_changed_at: Date | null;
  /** Hash of the promo last announced with a message (null = none yet). */
  published_promo_hash: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface GoogleNotificationTable {
  /** The program (filled from the parent row by a trigger when not given; the Citus path, issue #13). */
  program_id: ColumnType<string, string | undefined, string>;
  id: Generated<number>;
  object_id: string;
  kind: 'update' | 'message';
  sent_at: Timestamp;
}

export interface GoogleCallbackNonceTable {
  nonce: string;
  event_type: string;
  object_id: string;
  received_at: Timestamp;
}

export interface WebhookEndpointTable {
  id: Generated<string>;
  program_id: string;
  url: string;
  events: string[];
  /** The signing key; shown once by the API, never selected for its responses. */
  secret: string;
  enabled: Generated<boolean>;
  disabled_at: Date | null;
  disabled_reason: string | null;
  failing_since: Date | null;
  consecutive_failures: Generated<number>;
  last_success_at: Date | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookEventTable {
  id: string;
  program_id: string;
  type: string;
  data: Json<unknown>;
  created_at: Timestamp;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDeliveryTable {
  /** The program (filled from the parent row by a trigger when not given; the Citus path, issue #13). */
  program_id: ColumnType<string, string | undefined, string>;
  id: Generated<number>;
  endpoint_id: string;
  event_id: string;
  status: Generated<WebhookDeliveryStatus>;
  attempts: Generated<number>;
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: Date | null;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  created_at: Timestamp;
}

export type CampaignStatus = 'draft' | 'scheduled' | 'sending' | 'sent' | 'cancelled';

export interface CampaignTable {
  id: Generated<string>;
  program_id: string;
  name: string;
  message: Json<Localized>;
  audience: Json<Record<string, unknown>>;
  bonus_points: Generated<number>;
  ledger_kind: ColumnType<'campaign_bonus' | 'birthday' | 'expiry', 'campaign_bonus' | 'birthday' | 'expiry' | undefined, never>;
  effect: ColumnType<'promo' | 'expire', 'promo' | 'expire' | undefined, never>;
  /** Every recipient also gets a coupon of this definition (src/coupons). */
  coupon_definition_id: ColumnType<string | null, string | null | undefined, never>;
  requires_consent: Generated<boolean>;
  automation: string | null;
  status: CampaignStatus;
  scheduled_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  cancelled_at: Date | null;
  materialized: Generated<boolean>;
  targeted: Generated<number>;
  processed: Generated<number>;
  skipped: Generated<number>;
  next_chunk: Generated<number>;
  cursor_card_id: string | null;
  not_before: Date | null;
  progress_at: Date | null;
  google_classes: ColumnType<unknown[], string | undefined, string>;
  created_by: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** Percent of the audience held back as the control group (0-50). */
  control_share: ColumnType<number, number | undefined, number>;
  /** Days after the start over which the campaign's effect is measured. */
  effect_window_days: ColumnType<number, number | undefined, number>;
  /** Cards held back (campaign_control). */
  held_out: Generated<number>;
}

export interface CampaignControlTable {
  campaign_id: string;
  card_id: string;
  program_id: string;
}

export interface CampaignRecipientTable {
  /** The program (filled from the parent row by a trigger when not given; the Citus path, issue #13). */
  program_id: ColumnType<string, string | undefined, string>;
  campaign_id: string;
  card_id: string;
  status: Generated<'pending' | 'processed' | 'skipped' | 'cancelled'>;
  params: ColumnType<Record<string, string> | null, string | null | undefined, string | null>;
  processed_at: Date | null;
  update_tag: number | null;
  apple_published_at: Date | null;
  apple_pushes_accepted: number | null;
  apple_pushes_failed: number | null;
  google_published_at: Date | null;
  google_updated: boolean | null;
  google_notified: boolean | null;
  google_downgraded: boolean | null;
  /** Pushes to this recipient's devices waiting for a retry (wallet_delivery_pending). */
  apple_pushes_pending: ColumnType<number | null, number | null | undefined, number | null>;
  /** The object update waits for a retry / failed for good (a non-retryable answer). */
  google_pending: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
  google_failed: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
}

/**
 * A wallet delivery kept for a retry until it is delivered or known dead (updates/pending-deliveries.ts).
 * Apple: one row per push token; Google: one row per card.
 */
export interface WalletDeliveryPendingTable {
  wallet: 'apple' | 'google';
  target: string;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: Date;
  wanted: ColumnType<number, number | undefined, number>;
  first_failed_at: Timestamp;
  last_attempt_at: Timestamp;
  last_status: number;
  last_reason: string | null;
}

/** The card page's first view per card: the "link opened" step of the migration funnel (src/imports/funnel.ts). */
export interface CardPageViewTable {
  program_id: string;
  card_id: string;
  first_at: Timestamp;
}

/** A plastic card taken to the wallet from the join page ("I already have a card", enrollment/claim.ts). */
export interface CardClaimTable {
  program_id: string;
  card_id: string;
  claimed_at: Timestamp;
  /** null: claimed without a code; the card's first completed purchase after it confirms the phone. */
  verified_at: Date | null;
  verified_via: 'otp' | 'purchase' | null;
}

export interface ApplePassFetchTable {
  /** The program (filled from the parent row by a trigger when not given; the Citus path, issue #13). */
  program_id: ColumnType<string, string | undefined, string>;
  card_id: string;
  update_tag: number;
  fetches: number;
  first_at: Timestamp;
  last_at: Timestamp;
}

export interface AutomationDeliveryTable {
  card_id: string;
  automation: string;
  occasion: string;
  program_id: string;
  campaign_id: string | null;
  created_at: Timestamp;
}

export interface CardTierChangeTable {
  id: Generated<number>;
  program_id: string;
  card_id: string;
  from_tier: string;
  to_tier: string;
  changed_at: Timestamp;
}

/** @fastify/rate-limit counters shared by every instance (http/rate-limit-store.ts). */
export interface RateLimitCounterTable {
  key: string;
  hits: number;
  reset_at: Date;
}

/** The next free slot of an outgoing API's deployment-wide rate limit (wallets/google/rate-limiter.ts). */
export interface ApiRateSlotTable {
  name: string;
  next_at: Date;
}

/** Leases of scheduled work: once per tick across all workers (jobs/scheduled.ts). */
export interface ScheduledTaskTable {
  name: string;
  holder: string | null;
  running_until: Date | null;
  last_started_at: Date | null;
  last_finished_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface AnonymousCheckTable {
  id: Generated<string>;
  program_id: string;
  amount: number;
  store_id: string | null;
  receipt_id: string | null;
  created_at: Timestamp;
}

export interface EconomicsRollupTable {
  program_id: string;
  time_zone: string;
  days_through: ColumnType<string | null, string | null | undefined, string | null>;
  months_through: ColumnType<string | null, string | null | undefined, string | null>;
  updated_at: Timestamp;
}

export interface EconomicsDayTable {
  program_id: string;
  day: ColumnType<string, string, string>;
  cards_enrolled: number;
  purchases: number;
  amount: number;
  paid: number;
  refunds: number;
  refunded_amount: number;
  refunded_paid: number;
  checks: number;
  check_amount: number;
}

export interface EconomicsLedgerDayTable {
  program_id: string;
  day: ColumnType<string, string, string>;
  kind: string;
  points_in: number;
  points_out: number;
}

export interface EconomicsCardMonthTable {
  program_id: string;
  month: ColumnType<string, string, string>;
  card_id: string;
  cohort: ColumnType<string, string, string>;
  purchases: number;
  amount: number;
  paid: number;
  refunds: number;
  refunded_amount: number;
  refunded_paid: number;
  bonus_kinds: number;
  prior: number;
}

export interface EconomicsCardTable {
  program_id: string;
  card_id: string;
  first_month: ColumnType<string, string, string>;
  second_month: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface EconomicsMonthTable {
  program_id: string;
  month: ColumnType<string, string, string>;
  active_cards: number;
  new_buyers: number;
  purchases: number;
  ever_buyers: number;
  repeat_buyers: number;
}

export interface EconomicsBonusMonthTable {
  program_id: string;
  month: ColumnType<string, string, string>;
  kind: string;
  cards: number;
  paid: number;
}

export interface EconomicsCohortMonthTable {
  program_id: string;
  cohort: ColumnType<string, string, string>;
  month: ColumnType<string, string, string>;
  active_cards: number;
  purchases: number;
  amount: number;
  paid: number;
  refunded_amount: number;
  refunded_paid: number;
}

export interface SegmentWeekTable {
  program_id: string;
  week_start: ColumnType<string, string, string>;
  flows: Json<Array<{ from: string; to: string; cards: number }>>;
  thresholds: Json<Record<string, unknown>>;
  computed_at: Timestamp;
}

export type CardImportStatus = 'queued' | 'running' | 'finished' | 'cancelled';
export type CardImportMode = 'create' | 'update';

/** One import of a card base (src/imports). */
export interface CardImportTable {
  id: Generated<string>;
  program_id: string;
  mode: CardImportMode;
  status: CardImportStatus;
  file_name: string | null;
  encoding: string;
  delimiter: string;
  columns: Json<{ mapping: Record<string, string>; ignored: string[] }>;
  rows_read: Generated<number>;
  rows_valid: Generated<number>;
  created: Generated<number>;
  updated: Generated<number>;
  unchanged: Generated<number>;
  failed: Generated<number>;
  next_chunk: Generated<number>;
  cursor_row: Generated<number>;
  progress_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_by: string;
  created_at: Timestamp;
  started_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  finished_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  cancelled_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export type CardImportRowStatus = 'pending' | 'created' | 'updated' | 'unchanged' | 'failed';

export interface CardImportRowTable {
  import_id: string;
  program_id: string;
  row_no: number;
  status: CardImportRowStatus;
  data: ColumnType<Record<string, unknown> | null, string | null, string | null>;
  issues: ColumnType<Array<{ column: string; value: string; reason: string }> | null, string | null, string | null>;
  card_id: string | null;
}

export interface Database {
  program: ProgramTable;
  program_image: ProgramImageTable;
  api_key: ApiKeyTable;
  staff_member: StaffMemberTable;
  card: CardTable;
  card_erasure: CardErasureTable;
  invitation_batch: InvitationBatchTable;
  invitation: InvitationTable;
  purchase: PurchaseTable;
  ledger_entry: LedgerEntryTable;
  stamp_entry: StampEntryTable;
  stamp_rewards: StampRewardTable;
  idempotency_record: IdempotencyRecordTable;
  apple_registration: AppleRegistrationTable;
  consent_text: ConsentTextTable;
  join_view: JoinViewTable;
  wallet_event: WalletEventTable;
  card_page_view: CardPageViewTable;
  card_claim: CardClaimTable;
  google_class: GoogleClassTable;
  google_object: GoogleObjectTable;
  google_notification: GoogleNotificationTable;
  google_callback_nonce: GoogleCallbackNonceTable;
  webhook_endpoint: WebhookEndpointTable;
  webhook_event: WebhookEventTable;
  webhook_delivery: WebhookDeliveryTable;
  campaign: CampaignTable;
  campaign_recipient: CampaignRecipientTable;
  apple_pass_fetch: ApplePassFetchTable;
  automation_delivery: AutomationDeliveryTable;
  card_tier_change: CardTierChangeTable;
  staff_session: StaffSessionTable;
  staff_sign_in_link: StaffSignInLinkTable;
  sign_in_failure: SignInFailureTable;
  sign_in_known_address: SignInKnownAddressTable;
  staff_password_reset: StaffPasswordResetTable;
  referral: ReferralTable;
  pending_bonus: PendingBonusTable;
  phone_verification: PhoneVerificationTable;
  retired_apple_pass: RetiredApplePassTable;
  retired_google_object: RetiredGoogleObjectTable;
  wallet_delivery_pending: WalletDeliveryPendingTable;
  rate_limit_counter: RateLimitCounterTable;
  api_rate_slot: ApiRateSlotTable;
  scheduled_task: ScheduledTaskTable;
  campaign_control: CampaignControlTable;
  anonymous_check: AnonymousCheckTable;
  economics_rollup: EconomicsRollupTable;
  economics_day: EconomicsDayTable;
  economics_ledger_day: EconomicsLedgerDayTable;
  economics_card_month: EconomicsCardMonthTable;
  economics_cohort_month: EconomicsCohortMonthTable;
  economics_card: EconomicsCardTable;
  economics_month: EconomicsMonthTable;
  economics_bonus_month: EconomicsBonusMonthTable;
  segment_week: SegmentWeekTable;
  card_import: CardImportTable;
  card_import_row: CardImportRowTable;
  coupon_definitions: CouponDefinitionTable;
  card_coupons: CardCouponTable;
}

export type ProgramRow = Selectable<ProgramTable>;
export type CardRow = Selectable<CardTable>;
export type NewCard = Insertable<CardTable>;
export type CardUpdate = Updateable<CardTable>;
export type PurchaseRow = Selectable<PurchaseTable>;
export type LedgerEntryRow = Selectable<LedgerEntryTable>;
