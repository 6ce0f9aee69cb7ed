/**
 * Pure builders for Google Wallet loyalty classes and objects, and their ids.
 *
 * Reference: /work/shared/reference/google-wallet.md, sections 1.2 (LoyaltyClass), 1.3 (LoyaltyObject)
 * and checklist 6–13, 37.
 *
 * Tier decision (checklist 13): one class per (program, tier). The tier name (`rewardsTier`,
 * `localizedRewardsTier`) and the card colour (`hexBackgroundColor`, "class-only") are class fields, so a
 * per-tier class is the only way to show both; moving a card to another tier is a PATCH of the object's
 * `classId` alone (see {@link tierChangePatch}).
 * Is `classId` patchable? The Discovery document lists it as "Required. The class associated with this
 * object. The class must … already exist, and must be approved" and does not mark it read-only or
 * immutable (unlike `hasUsers`/`classReference`, "set by the platform"), and a PATCH "changes only sent
 * fields" (reference section 1.1). So PATCH `{classId}` is the documented way; how fast a device re-renders
 * the new class's colour is (unconfirmed) and belongs to the "needs Google" checks of reference
 * section 10. To make a silent refusal visible, GoogleWalletClient.patchObject fails when Google answers
 * with a different `classId` than the one sent. Fallback if demo mode ever shows it unreliable: keep the
 * class, and show the tier per object as `secondaryLoyaltyPoints {label: "Tier", balance: {string}}`
 * (loses the per-tier colour).
 *
 * Soft limits (checklist 12): accountName and the points label are truncated (as the brief says: they
 * are shown in fixed slots); everything else over a recommended length is reported by
 * {@link lintLoyaltyClass}/{@link lintLoyaltyObject} and sent as is (Google's hard limits are not
 * published, so cutting a tier name or a text would be a guess). Lists with a documented cap
 * (merchantLocations ≤ 10) are cut to the cap.
 */
import type { walletobjects_v1 } from '@googleapis/walletobjects';
import { createHash } from 'node:crypto';

type LoyaltyClass = walletobjects_v1.Schema$LoyaltyClass;
type LoyaltyObject = walletobjects_v1.Schema$LoyaltyObject;
type LocalizedString = walletobjects_v1.Schema$LocalizedString;
type TextModuleData = walletobjects_v1.Schema$TextModuleData;
type Uri = walletobjects_v1.Schema$Uri;
type Image = walletobjects_v1.Schema$Image;
type LoyaltyPoints = walletobjects_v1.Schema$LoyaltyPoints;
type ImageModuleData = walletobjects_v1.Schema$ImageModuleData;

export type WalletLanguage = 'ru' | 'en';
/** A text in both languages the service ships (same shape as the Apple pass input). */
export interface LocalizedText {
  ru: string;
  en: string;
}

export class GooglePayloadError extends Error {
  override readonly name = 'GooglePayloadError';
}

// ---- ids -----------------------------------------------------------------------------------------

/** Whole resource id: "issuer ID.identifier", only alphanumerics, '.', '_', '-' (reference section 1.1). */
export const RESOURCE_ID_PATTERN = /^[0-9]+\.[A-Za-z0-9._-]+$/;
/** Text-module ids: `[A-Za-z0-9_-]`, no dots (reference section 1.3; checklist 7). */
export const MODULE_ID_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * One id segment: kept as is when already made of `[A-Za-z0-9_-]`; otherwise the unsafe characters
 * become `_` and a short SHA-256 of the original is appended, so the mapping stays deterministic (same
 * member → same id, checklist 6/30) and two different inputs that sanitize alike ("a b", "a/b") still get
 * different ids. Dots are never kept inside a segment: they separate segments.
 */
export function idSegment(value: string): string {
  if (value === '') throw new GooglePayloadError('An id segment must not be empty');
  if (MODULE_ID_PATTERN.test(value)) return value;
  const readable = value
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
  const digest = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12);
  return readable ? `${readable}-${digest}` : digest;
}

function checkIssuerId(issuerId: string): void {
  if (!/^[0-9]+$/.test(issuerId)) throw new GooglePayloadError(`issuerId must be digits, got "${issuerId}"`);
}

/**
 * `<issuer>.<program>.<tier>`. Pass a stable program key: a class id can never be renamed (there is no
 * DELETE, reference section 1.1), so if slugs can change, give the program's immutable id instead.
 */
export function classIdFor(issuerId: string, programSlug: string, tierCode: string): string {
  checkIssuerId(issuerId);
  return `${issuerId}.${idSegment(programSlug)}.${idSegment(tierCode)}`;
}

/** `<issuer>.<program>.<card>`: deterministic, so issuing twice for one card gives one object (checklist 30). */
export function objectIdFor(issuerId: string, programSlug: string, cardId: string): string {
  checkIssuerId(issuerId);
  return `${issuerId}.${idSegment(programSlug)}.${idSegment(cardId)}`;
}

// ---- shared pieces -------------------------------------------------------------------------------

/** LocalizedString: default value in the program language, the other language as a translation. */
export function localized(text: LocalizedText, defaultLanguage: WalletLanguage): LocalizedString {
  const other: WalletLanguage = defaultLanguage === 'ru' ? 'en' : 'ru';
  const result: LocalizedString = { defaultValue: { language: defaultLanguage, value: text[defaultLanguage] } };
  if (text[other] && text[other] !== text[defaultLanguage]) result.translatedValues = [{ language: other, value: text[other] }];
  return result;
}

function requireText(text: LocalizedText | undefined, what: string): LocalizedText {
  if (!text || typeof text.ru !== 'string' || typeof text.en !== 'string' || text.ru.trim() === '' || text.en.trim() === '') {
    throw new GooglePayloadError(`${what} needs both ru and en text`);
  }
  return text;
}

function requireHttps(url: string, what: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GooglePayloadError(`${what} is not a URL: "${url}"`);
  }
  // Google downloads images itself, over the public internet (reference section 1.3: "public HTTPS URL").
  if (parsed.protocol !== 'https:') throw new GooglePayloadError(`${what} must be an https:// URL, got "${url}"`);
  return url;
}

/** Link URIs need a scheme: https:, tel:, mailto: (reference section 1.3). */
function requireLinkUri(url: string, what: string): string {
  if (!/^(https:\/\/|tel:|mailto:)/i.test(url)) throw new GooglePayloadError(`${what} must start with https://, tel: or mailto:, got "${url}"`);
  return url;
}

function image(url: string, description: LocalizedText | undefined, lang: WalletLanguage, what: string): Image {
  const result: Image = { sourceUri: { uri: requireHttps(url, what) } };
  if (description) result.contentDescription = localized(description, lang);
  return result;
}

/** First `max` code points (not UTF-16 units: a Cyrillic or emoji name must not be split mid-character). */
export function truncate(value: string, max: number): string {
  const chars = Array.from(value);
  return chars.length <= max ? value : chars.slice(0, max).join('');
}

const length = (value: string | null | undefined) => (value ? Array.from(value).length : 0);

export interface TextModuleInput {
  /** Any string; made into a dot-free module id (checklist 7). */
  id: string;
  header: LocalizedText;
  body: LocalizedText;
}

export interface LinkInput {
  id: string;
  url: string;
  description: LocalizedText;
}

function textModule(input: TextModuleInput, lang: WalletLanguage): TextModuleData {
  const header = requireText(input.header, `text module ${input.id} header`);
  const body = requireText(input.body, `text module ${input.id} body`);
  return {
    id: idSegment(input.id),
    header: header[lang],
    body: body[lang],
    localizedHeader: localized(header, lang),
    localizedBody: localized(body, lang),
  };
}

function link(input: LinkInput, lang: WalletLanguage): Uri {
  const description = requireText(input.description, `link ${input.id} description`);
  return {
    id: idSegment(input.id),
    uri: requireLinkUri(input.url, `link ${input.id}`),
    description: description[lang],
    localizedDescription: localized(description, lang),
  };
}

// ---- class ---------------------------------------------------------------------------------------

export const MAX_MERCHANT_LOCATIONS = 10;

export interface LoyaltyClassInput {
  issuerId: string;
  /** Stable program key used in the class id (see classIdFor). */
  programSlug: string;
  defaultLanguage: WalletLanguage;
  /** Business name (≤ 20 recommended). */
  issuerName: LocalizedText;
  /** Programme name (≈ 20 recommended). */
  programName: LocalizedText;
  /** Public HTTPS PNG, ≥ 660 × 660, square; Google masks it to a circle. */
  logoUrl: string;
  logoDescription?: LocalizedText;
  wideLogoUrl?: string;
  heroImageUrl?: string;
  /** `#rrggbb` or `#rgb`; class-only in Google Wallet. */
  backgroundColor: string;
  tier: {
    code: string;
    /** Shown as `rewardsTier` (≤ 7 recommended). */
    name: LocalizedText;
    /** Shown as `rewardsTierLabel` (≤ 9), e.g. "Уровень" / "Tier". */
    label?: LocalizedText;
  };
  accountIdLabel?: LocalizedText;
  accountNameLabel?: LocalizedText;
  /** Store coordinates; Google uses them for geofenced notices. Only the first 10 are sent. */
  locations?: ReadonlyArray<{ latitude: number; longitude: number }>;
  /** HTTPS URL of our callback route (save/delete events); set on every class (checklist 37). */
  callbackUrl: string;
  /** Back-of-card texts shown to every holder (contacts, terms, …). */
  texts?: TextModuleInput[];
  links?: LinkInput[];
  homepageUrl?: string;
  /** Default unset (Google's default is (unconfirmed)); `ONE_USER_ALL_DEVICES` stops forwarded links. */
  multipleDevicesAndHoldersAllowedStatus?: 'MULTIPLE_HOLDERS' | 'ONE_USER_ALL_DEVICES' | 'ONE_USER_ONE_DEVICE';
}

const HEX_COLOUR = /^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})$/;

export function buildLoyaltyClass(input: LoyaltyClassInput): LoyaltyClass {
  const lang = input.defaultLanguage;
  const issuerName = requireText(input.issuerName, 'issuerName');
  const programName = requireText(input.programName, 'programName');
  const tierName = requireText(input.tier.name, 'tier.name');
  if (!HEX_COLOUR.test(input.backgroundColor)) {
    throw new GooglePayloadError(`backgroundColor must be #rrggbb or #rgb, got "${input.backgroundColor}"`);
  }
  const cls: LoyaltyClass = {
    id: classIdFor(input.issuerId, input.programSlug, input.tier.code),
    issuerName: issuerName[lang],
    localizedIssuerName: localized(issuerName, lang),
    programName: programName[lang],
    localizedProgramName: localized(programName, lang),
    programLogo: image(input.logoUrl, input.logoDescription ?? programName, lang, 'logoUrl'),
    hexBackgroundColor: input.backgroundColor,
    rewardsTier: tierName[lang],
    localizedRewardsTier: localized(tierName, lang),
    // Checklist 37 + reference section 4: callbacks are configured per class.
    callbackOptions: { url: requireHttps(input.callbackUrl, 'callbackUrl') },
    // Never DRAFT ("A draft class cannot be used to create any object"); Google approves UNDER_REVIEW
    // automatically (reference section 1.2; checklist 8).
    reviewStatus: 'UNDER_REVIEW',
  };
  if (input.tier.label) {
    const label = requireText(input.tier.label, 'tier.label');
    cls.rewardsTierLabel = label[lang];
    cls.localizedRewardsTierLabel = localized(label, lang);
  }
  if (input.accountIdLabel) {
    const label = requireText(input.accountIdLabel, 'accountIdLabel');
    cls.accountIdLabel = label[lang];
    cls.localizedAccountIdLabel = localized(label, lang);
  }
  if (input.accountNameLabel) {
    const label = requireText(input.accountNameLabel, 'accountNameLabel');
    cls.accountNameLabel = label[lang];
    cls.localizedAccountNameLabel = localized(label, lang);
  }
  if (input.wideLogoUrl) cls.wideProgramLogo = image(input.wideLogoUrl, programName, lang, 'wideLogoUrl');
  if (input.heroImageUrl) cls.heroImage = image(input.heroImageUrl, undefined, lang, 'heroImageUrl');
  if (input.locations && input.locations.length > 0) {
    // `merchantLocations` (≤ 10), not the deprecated `locations` (reference section 1.2).
    cls.merchantLocations = input.locations.slice(0, MAX_MERCHANT_LOCATIONS).map(({ latitude, longitude }) => {
      if (!(latitude >= -90 && latitude <= 90 && longitude >= -180 && longitude <= 180)) {
        throw new GooglePayloadError(`location ${latitude},${longitude} is out of range`);
      }
      return { latitude, longitude };
    });
  }
  if (input.texts && input.texts.length > 0) cls.textModulesData = input.texts.map((text) => textModule(text, lang));
  if (input.links && input.links.length > 0) cls.linksModuleData = { uris: input.links.map((l) => link(l, lang)) };
  if (input.homepageUrl) cls.homepageUri = { uri: requireHttps(input.homepageUrl, 'homepageUrl') };
  if (input.multipleDevicesAndHoldersAllowedStatus) cls.multipleDevicesAndHoldersAllowedStatus = input.multipleDevicesAndHoldersAllowedStatus;
  assertUniqueModuleIds(cls.textModulesData, 'class text modules');
  return cls;
}

// ---- object --------------------------------------------------------------------------------------

export const MAX_ACCOUNT_NAME = 20;
export const MAX_POINTS_LABEL = 9;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

export type LoyaltyObjectState = 'ACTIVE' | 'INACTIVE' | 'EXPIRED' | 'COMPLETED';

export interface LoyaltyObjectInput {
  issuerId: string;
  programSlug: string;
  cardId: string;
  /** The class of the card's current tier (classIdFor). */
  classId: string;
  state: LoyaltyObjectState;
  defaultLanguage: WalletLanguage;
  /** Printed card number: accountId, barcode value and barcode text, as on the Apple pass. */
  cardNumber: string;
  holderName: string;
  /** Points, integer (int32). */
  balance: number;
  /** Label of the balance, ≤ 9 (truncated). */
  pointsLabel: LocalizedText;
  /** The invitation text; the link is appended to the body and also listed in the links module. */
  referral?: { url: string; header: LocalizedText; body: LocalizedText; linkDescription: LocalizedText };
  /** Current promos; ids are made dot-free. */
  promos?: TextModuleInput[];
  links?: LinkInput[];
  /**
   * The program's mechanic when it is not points (omitted = a points card, as always): what the
   * points slot shows instead of the balance ("5 %", "4 / 6"), text modules placed first (the next
   * discount level, the stamps reward) and, for stamps, the picture of the stamps as an image module.
   */
  mechanic?: {
    label: LocalizedText;
    value: LocalizedText;
    texts?: TextModuleInput[];
    image?: { id: string; url: string; description: LocalizedText };
  };
}

/** A points slot showing a text (a percent, "4 / 6"): `balance.string`, the label truncated like the points label. */
export function displayPoints(label: LocalizedText, value: LocalizedText, lang: WalletLanguage): LoyaltyPoints {
  const text = requireText(label, 'mechanic.label');
  const shown = requireText(value, 'mechanic.value');
  const truncated: LocalizedText = { ru: truncate(text.ru, MAX_POINTS_LABEL), en: truncate(text.en, MAX_POINTS_LABEL) };
  return { label: truncated[lang], localizedLabel: localized(truncated, lang), balance: { string: shown[lang] } };
}

/** The whole `loyaltyPoints` (a balance PATCH sends it whole, reference section 3; checklist 16). */
export function loyaltyPoints(balance: number, label: LocalizedText, lang: WalletLanguage): LoyaltyPoints {
  if (!Number.isInteger(balance) || balance < INT32_MIN || balance > INT32_MAX) {
    // `balance.int` is int32 (reference section 1.3; checklist 10).
    throw new GooglePayloadError(`balance must be an int32 integer, got ${balance}`);
  }
  const text = requireText(label, 'pointsLabel');
  const truncated: LocalizedText = { ru: truncate(text.ru, MAX_POINTS_LABEL), en: truncate(text.en, MAX_POINTS_LABEL) };
  return { label: truncated[lang], localizedLabel: localized(truncated, lang), balance: { int: balance } };
}

export function buildLoyaltyObject(input: LoyaltyObjectInput): LoyaltyObject {
  const lang = input.defaultLanguage;
  if (!RESOURCE_ID_PATTERN.test(input.classId) || !input.classId.startsWith(`${input.issuerId}.`)) {
    throw new GooglePayloadError(`classId "${input.classId}" is not an id of issuer ${input.issuerId}`);
  }
  if (input.cardNumber.trim() === '') throw new GooglePayloadError('cardNumber must not be empty');
  const holder = input.holderName.trim();
  const obj: LoyaltyObject = {
    id: objectIdFor(input.issuerId, input.programSlug, input.cardId),
    classId: input.classId,
    state: input.state,
    accountId: input.cardNumber,
    accountName: truncate(holder, MAX_ACCOUNT_NAME),
    loyaltyPoints: input.mechanic
      ? displayPoints(input.mechanic.label, input.mechanic.value, lang)
      : loyaltyPoints(input.balance, input.pointsLabel, lang),
    // QR_CODE (canonical name, not the deprecated lower-camel alias); same payload as the Apple pass
    // barcode so one scanner rule serves both wallets (checklist 11).
    barcode: { type: 'QR_CODE', value: input.cardNumber, alternateText: input.cardNumber },
  };
  const texts: TextModuleData[] = [];
  const uris: Uri[] = [];
  for (const text of input.mechanic?.texts ?? []) texts.push(textModule(text, lang));
  if (input.mechanic?.image) {
    const { id, url, description } = input.mechanic.image;
    const modules: ImageModuleData[] = [{ id: idSegment(id), mainImage: image(url, description, lang, 'mechanic.image.url') }];
    obj.imageModulesData = modules;
  }
  if (input.referral) {
    const { referral } = input;
    const url = requireHttps(referral.url, 'referral.url');
    const body = requireText(referral.body, 'referral.body');
    texts.push(textModule({ id: 'referral', header: referral.header, body: { ru: `${body.ru}\n${url}`, en: `${body.en}\n${url}` } }, lang));
    uris.push(link({ id: 'referral', url, description: referral.linkDescription }, lang));
  }
  for (const promo of input.promos ?? []) texts.push(textModule({ ...promo, id: `promo-${promo.id}` }, lang));
  for (const l of input.links ?? []) uris.push(link(l, lang));
  if (texts.length > 0) obj.textModulesData = texts;
  if (uris.length > 0) obj.linksModuleData = { uris };
  assertUniqueModuleIds(obj.textModulesData, 'object text modules');
  return obj;
}

/** PATCH body that moves a card to another tier: only `classId` (see the module comment). */
export function tierChangePatch(issuerId: string, programSlug: string, tierCode: string): LoyaltyObject {
  return { classId: classIdFor(issuerId, programSlug, tierCode) };
}

function assertUniqueModuleIds(modules: TextModuleData[] | undefined, what: string): void {
  const seen = new Set<string>();
  for (const m of modules ?? []) {
    if (seen.has(m.id!)) throw new GooglePayloadError(`${what}: duplicate id "${m.id}"`);
    seen.add(m.id!);
  }
}

// ---- soft limits ---------------------------------------------------------------------------------

/** Recommended lengths Google documents (reference sections 1.2, 1.3; checklist 12). */
export function lintLoyaltyClass(cls: LoyaltyClass): string[] {
  const warnings: string[] = [];
  const check = (what: string, value: string | null | undefined, max: number) => {
    if (length(value) > max) warnings.push(`${what} is ${length(value)} characters (recommended ≤ ${max})`);
  };
  check('issuerName', cls.issuerName, 20);
  check('programName', cls.programName, 20);
  check('rewardsTier', cls.rewardsTier, 7);
  check('rewardsTierLabel', cls.rewardsTierLabel, 9);
  check('accountIdLabel', cls.accountIdLabel, 15);
  check('accountNameLabel', cls.accountNameLabel, 15);
  for (const value of [cls.localizedRewardsTier?.defaultValue, ...(cls.localizedRewardsTier?.translatedValues ?? [])]) {
    if (value) check(`rewardsTier (${value.language})`, value.value, 7);
  }
  if ((cls.merchantLocations?.length ?? 0) > MAX_MERCHANT_LOCATIONS) warnings.push('more than 10 merchantLocations');
  if ((cls.messages?.length ?? 0) > 10) warnings.push('more than 10 messages');
  lintModules(cls.textModulesData, warnings);
  return [...new Set(warnings)];
}

export function lintLoyaltyObject(obj: LoyaltyObject): string[] {
  const warnings: string[] = [];
  if (length(obj.accountId) > 20) warnings.push(`accountId is ${length(obj.accountId)} characters (recommended ≤ 20)`);
  if (length(obj.accountName) > MAX_ACCOUNT_NAME) warnings.push(`accountName is over ${MAX_ACCOUNT_NAME} characters`);
  if (length(obj.loyaltyPoints?.label) > MAX_POINTS_LABEL) warnings.push(`loyaltyPoints.label is over ${MAX_POINTS_LABEL} characters`);
  const balance = obj.loyaltyPoints?.balance;
  if (balance) {
    const shown = balance.int ?? balance.double ?? balance.string ?? balance.money?.micros;
    if (length(String(shown ?? '')) > 7) warnings.push(`loyaltyPoints.balance "${shown}" is over 7 characters`);
  }
  if ((obj.messages?.length ?? 0) > 10) warnings.push('more than 10 messages');
  if ((obj.merchantLocations?.length ?? 0) > MAX_MERCHANT_LOCATIONS) warnings.push('more than 10 merchantLocations');
  if ((obj.textModulesData?.length ?? 0) > 10) warnings.push('more than 10 text modules (only 10 are shown)');
  lintModules(obj.textModulesData, warnings);
  return warnings;
}

function lintModules(modules: TextModuleData[] | undefined, warnings: string[]): void {
  for (const m of modules ?? []) {
    if (length(m.header) > 35) warnings.push(`text module ${m.id}: header over 35 characters`);
    if (length(m.body) > 500) warnings.push(`text module ${m.id}: body over 500 characters`);
  }
}
