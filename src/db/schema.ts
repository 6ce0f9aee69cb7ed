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
  status: Generated<'active' | 'blocked'>;
  public_token: string;
  apple_serial: string;
  apple_auth_token: string;
  google_object_id: string | null;
  promo: ColumnType<Localized | null, string | null | undefined, string | null>;
  update_tag: Generated<number>;
  updated_at: Timestamp;
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
  | 'campaign_bonus';

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
  scope: string;
  key: string;
  request_hash: string;
  status_code: number | null;
  response: ColumnType<unknown, string | null, string | null>;
  created_at: Timestamp;
}

export interface AppleRegistrationTable {
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

export interface Database {
  program: ProgramTable;
  program_image: ProgramImageTable;
  api_key: ApiKeyTable;
  staff_member: StaffMemberTable;
  card: CardTable;
  purchase: PurchaseTable;
  ledger_entry: LedgerEntryTable;
  idempotency_record: IdempotencyRecordTable;
  apple_registration: AppleRegistrationTable;
  consent_text: ConsentTextTable;
  join_view: JoinViewTable;
  wallet_event: WalletEventTable;
}

export type ProgramRow = Selectable<ProgramTable>;
export type CardRow = Selectable<CardTable>;
export type NewCard = Insertable<CardTable>;
export type CardUpdate = Updateable<CardTable>;
export type PurchaseRow = Selectable<PurchaseTable>;
export type LedgerEntryRow = Selectable<LedgerEntryTable>;
