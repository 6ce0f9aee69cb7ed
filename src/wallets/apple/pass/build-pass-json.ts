/**
 * Pure builder: StoreCardPassInput → pass.json object + `en.lproj`/`ru.lproj` pass.strings.
 *
 * Rules followed (reference /work/shared/reference/apple-wallet.md, sections 3 and 7; Apple:
 * PassKit Package Format Reference – Top-Level Keys, Pass Design and Creation, Field Dictionary Keys):
 * - formatVersion 1, one style key `storeCard`, all required top-level keys;
 * - ≤ 3 header fields, 1 primary field, ≤ 4 secondary + auxiliary fields, keys unique across the pass;
 * - fields that should notify carry a `changeMessage` containing `%@`;
 * - `barcodes` (not the deprecated `barcode`) with `messageEncoding: "iso-8859-1"` and an ASCII message;
 * - ≤ 10 locations, no `relevantDate` on a store card; colours as `rgb(r, g, b)`.
 */
import { en } from '../../../i18n/en.js';
import { ru } from '../../../i18n/ru.js';
import {
  PASS_LANGUAGES,
  type LocalizedText,
  type PassBarcodeFormat,
  type PassLanguage,
  type StoreCardPassInput,
} from './types.js';

/** Thrown when the input cannot produce a pass Wallet would accept. */
export class PassInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PassInputError';
  }
}

export interface PassField {
  key: string;
  label?: string;
  value: string | number;
  changeMessage?: string;
  textAlignment?: 'PKTextAlignmentLeft' | 'PKTextAlignmentCenter' | 'PKTextAlignmentRight' | 'PKTextAlignmentNatural';
  numberStyle?: 'PKNumberStyleDecimal' | 'PKNumberStylePercent' | 'PKNumberStyleScientific' | 'PKNumberStyleSpellOut';
  dataDetectorTypes?: Array<'PKDataDetectorTypePhoneNumber' | 'PKDataDetectorTypeLink' | 'PKDataDetectorTypeAddress' | 'PKDataDetectorTypeCalendarEvent'>;
}

export interface PassBarcode {
  format: PassBarcodeFormat;
  message: string;
  messageEncoding: 'iso-8859-1';
  altText?: string;
}

export interface PassLocation {
  latitude: number;
  longitude: number;
  relevantText?: string;
}

export interface StoreCardPassJson {
  formatVersion: 1;
  passTypeIdentifier: string;
  serialNumber: string;
  teamIdentifier: string;
  organizationName: string;
  description: string;
  logoText?: string;
  foregroundColor: string;
  backgroundColor: string;
  labelColor: string;
  webServiceURL: string;
  authenticationToken: string;
  barcodes: PassBarcode[];
  locations?: PassLocation[];
  voided?: boolean;
  storeCard: {
    headerFields: PassField[];
    primaryFields: PassField[];
    secondaryFields: PassField[];
    auxiliaryFields: PassField[];
    backFields: PassField[];
  };
}

export interface BuiltPassJson {
  passJson: StoreCardPassJson;
  /** Localization tables: key (as used in pass.json) → text, per language. */
  localizedStrings: Record<PassLanguage, Record<string, string>>;
  /** Encoded `<lang>.lproj/pass.strings` files (UTF-16LE with BOM, see {@link encodePassStrings}). */
  passStrings: Record<PassLanguage, Buffer>;
}

/** Apple limits (reference section 3). */
export const MAX_HEADER_FIELDS = 3;
export const MAX_PRIMARY_FIELDS = 1;
export const MAX_SECONDARY_AND_AUXILIARY_FIELDS = 4;
export const MAX_LOCATIONS = 10;
export const MIN_AUTHENTICATION_TOKEN_LENGTH = 16;

/** Built-in field labels; programs supply only their own texts (tier names, terms, …). */
export const FIELD_LABELS = {
  tier: { en: 'Tier', ru: 'Уровень' },
  balance: { en: 'Points', ru: 'Баллы' },
  holder: { en: 'Member', ru: 'Владелец' },
  cardNumber: { en: 'Card number', ru: 'Номер карты' },
  frontPromo: { en: 'Offer', ru: 'Акция' },
  pending: { en: 'Pending points', ru: 'Ожидают подтверждения' },
  contacts: { en: 'Contacts', ru: 'Контакты' },
  terms: { en: 'Programme terms', ru: 'Условия программы' },
  backPromo: { en: 'Current offer', ru: 'Текущая акция' },
  referral: { en: 'Invite a friend', ru: 'Пригласите друга' },
  // Mechanics (issue #17): the texts live in the i18n catalogues.
  discount: { en: en.wallet.discountLabel, ru: ru.wallet.discountLabel },
  nextDiscount: { en: en.wallet.nextDiscountLabel, ru: ru.wallet.nextDiscountLabel },
  stamps: { en: en.wallet.stampsLabel, ru: ru.wallet.stampsLabel },
  reward: { en: en.wallet.rewardLabel, ru: ru.wallet.rewardLabel },
  coupons: { en: 'Your coupons', ru: 'Ваши купоны' },
  latestCoupon: { en: 'Latest coupon', ru: 'Последний купон' },
} as const satisfies Record<string, LocalizedText>;

/**
 * Lock-screen texts for changed fields. Each contains `%@` (else Wallet shows no notification,
 * reference section 3). Russian puts the number last so no plural form is needed
 * ("Баланс баллов: 1 250", not "1 250 баллов/балла").
 */
export const CHANGE_MESSAGES = {
  balance: { en: 'Points balance: %@', ru: 'Баланс баллов: %@' },
  tier: { en: 'Your tier: %@', ru: 'Ваш уровень: %@' },
  // A campaign message is the notification itself.
  promo: { en: '%@', ru: '%@' },
  discount: { en: en.wallet.discountChange, ru: ru.wallet.discountChange },
  stamps: { en: en.wallet.stampsChange, ru: ru.wallet.stampsChange },
  // Set only by an issue (the field holds the coupon issued last), so redeeming one stays silent.
  coupon: { en: 'New coupon: %@', ru: 'Новый купон: %@' },
} as const satisfies Record<string, LocalizedText>;

/** Stable field keys (unique across the pass; the web service and tests rely on them). */
export const FIELD_KEYS = {
  tier: 'tier',
  balance: 'balance',
  holder: 'holder',
  cardNumber: 'cardNumber',
  frontPromo: 'promo',
  pending: 'pending',
  contacts: 'backContacts',
  terms: 'backTerms',
  backPromo: 'backPromo',
  referral: 'backReferral',
  discount: 'discount',
  nextDiscount: 'nextDiscount',
  stamps: 'stamps',
  reward: 'backReward',
  coupons: 'backCoupons',
  latestCoupon: 'backLatestCoupon',
} as const;

const ZERO_WIDTH_SPACE = '\u200b';

/**
 * Collects localizable texts and hands out pass.json keys.
 *
 * A key is the text in the default language, not a symbolic name: when a device language matches
 * no shipped `.lproj`, Wallet may show the raw key (reference section 3, Forums 757013), and a
 * readable key keeps the card readable then. Two texts with the same default-language wording but
 * different translations get distinct keys by appending invisible zero-width spaces.
 * Trade-off: a literal value (holder name, card number) equal to one of these keys would be
 * translated too; holder names and digits do not collide with the label wordings in practice.
 */
class LocalizationTable {
  private readonly texts = new Map<string, LocalizedText>();

  constructor(private readonly defaultLanguage: PassLanguage) {}

  key(text: LocalizedText): string {
    let key = text[this.defaultLanguage];
    for (;;) {
      const existing = this.texts.get(key);
      if (existing === undefined) {
        this.texts.set(key, { en: text.en, ru: text.ru });
        return key;
      }
      if (existing.en === text.en && existing.ru === text.ru) return key;
      key += ZERO_WIDTH_SPACE;
    }
  }

  table(language: PassLanguage): Record<string, string> {
    // Null prototype: keys are programme texts, and a text such as "__proto__" must stay a plain key.
    const table: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [key, text] of this.texts) table[key] = text[language];
    return table;
  }
}

const PASS_STRINGS_SPECIAL_CHARACTER = /[\\"\u0000-\u001f]/;

/** Escapes a pass.strings (old-style property list) string: `\`, `"`, newlines and other control characters. */
export function escapePassStringsValue(text: string): string {
  if (!PASS_STRINGS_SPECIAL_CHARACTER.test(text)) return text; // the common case: nothing to escape
  return text.replace(/[\\"\u0000-\u001f]/g, (character) => {
    switch (character) {
      case '\\':
        return '\\\\';
      case '"':
        return '\\"';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return '\\U' + character.charCodeAt(0).toString(16).padStart(4, '0');
    }
  });
}

/** `"key" = "value";` lines. */
export function formatPassStrings(table: Record<string, string>): string {
  // Parts joined once: a flat string, where `+=` built a rope that encoding had to flatten (issue #14).
  const parts: string[] = [];
  for (const key in table) parts.push('"', escapePassStringsValue(key), '" = "', escapePassStringsValue(table[key]!), '";\n');
  return parts.join('');
}

/**
 * ENCODING DECISION: pass.strings are written as UTF-16LE with a byte-order mark (FF FE).
 * Apple's Pass Design guide says "Use UTF-16 encoding for non-ASCII characters", and whether Wallet
 * renders UTF-8 Cyrillic is unconfirmed (reference section 3). passkit-generator can only write UTF-8,
 * but we sign bundles ourselves, so nothing stops us following Apple's documented format
 * (@walletpass/pass-js makes the same choice). Revisit only if a device test shows a problem;
 * the test "pass.strings are UTF-16LE with BOM" pins this decision.
 */
export const PASS_STRINGS_BYTE_ORDER_MARK = Buffer.from([0xff, 0xfe]);

export function encodePassStrings(table: Record<string, string>): Buffer {
  const text = formatPassStrings(table);
  // One allocation of the exact size (2 bytes per UTF-16 code unit) instead of encoding and concatenating.
  const encoded = Buffer.allocUnsafe(PASS_STRINGS_BYTE_ORDER_MARK.length + text.length * 2);
  PASS_STRINGS_BYTE_ORDER_MARK.copy(encoded, 0);
  encoded.write(text, PASS_STRINGS_BYTE_ORDER_MARK.length, 'utf16le');
  return encoded;
}

/** `#rrggbb` → `rgb(r, g, b)` (the only colour syntax Wallet accepts). */
export function hexColorToRgb(hex: string): string {
  const match = /^#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})$/.exec(hex.trim());
  if (!match) throw new PassInputError(`Colour "${hex}" is not in #rrggbb form.`);
  const [r, g, b] = match.slice(1, 4).map((component) => parseInt(component, 16));
  return `rgb(${r}, ${g}, ${b})`;
}

/**
 * Strips one trailing slash: the device appends `/v1/...`, and a trailing slash produced `//v1/...`
 * (reference section 1.1, tinovyatkin/pass-js#127).
 */
export function normalizeWebServiceURL(url: string): string {
  // HTTPS is required on real devices; plain HTTP is accepted here because devices in developer mode
  // can allow it ("Allow HTTP Services") and the development PUBLIC_URL is http://localhost.
  if (!/^https?:\/\/[^/]/i.test(url)) {
    throw new PassInputError(`webServiceURL "${url}" must be an absolute https:// URL.`);
  }
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

// Printable ASCII: the barcode is encoded as ISO-8859-1, and keeping it ASCII avoids any scanner
// ambiguity (Cyrillic is not representable in ISO-8859-1; reference section 3).
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

function hasText(text: LocalizedText | undefined): text is LocalizedText {
  return text !== undefined && (text.en.trim() !== '' || text.ru.trim() !== '');
}

function requireBothLanguages(text: LocalizedText, what: string): void {
  for (const language of PASS_LANGUAGES) {
    if (typeof text[language] !== 'string' || text[language].trim() === '') {
      throw new PassInputError(`${what} has no ${language} text.`);
    }
  }
}

function buildBarcodes(input: StoreCardPassInput): PassBarcode[] {
  const { message } = input.barcode;
  if (!PRINTABLE_ASCII.test(message)) {
    throw new PassInputError(`Barcode message "${message}" must be printable ASCII (it is encoded as iso-8859-1).`);
  }
  const format = input.barcode.format ?? 'PKBarcodeFormatQR';
  const barcode = (barcodeFormat: PassBarcodeFormat): PassBarcode => ({
    format: barcodeFormat,
    message,
    messageEncoding: 'iso-8859-1',
    altText: input.card.number,
  });
  // Wallet shows the first barcode the device supports; watchOS cannot show Code128, so a
  // Code128-only pass would show nothing on a watch (reference section 3).
  return format === 'PKBarcodeFormatCode128' ? [barcode(format), barcode('PKBarcodeFormatQR')] : [barcode(format)];
}

/**
 * Builds pass.json and both pass.strings for one store card. Pure: same input → same output.
 */
export function buildStoreCardPassJson(input: StoreCardPassInput): BuiltPassJson {
  const defaultLanguage = input.defaultLanguage ?? 'en';
  const strings = new LocalizationTable(defaultLanguage);
  const localize = (text: LocalizedText): string => strings.key(text);

  if (input.authenticationToken.length < MIN_AUTHENTICATION_TOKEN_LENGTH) {
    throw new PassInputError(`authenticationToken must be at least ${MIN_AUTHENTICATION_TOKEN_LENGTH} characters (Apple rule).`);
  }
  for (const [name, value] of [
    ['passTypeIdentifier', input.passTypeIdentifier],
    ['teamIdentifier', input.teamIdentifier],
    ['serialNumber', input.serialNumber],
    ['organizationName', input.organizationName],
  ] as const) {
    if (value.trim() === '') throw new PassInputError(`${name} is required.`);
  }
  requireBothLanguages(input.description, 'description');
  requireBothLanguages(input.card.tierName, 'card.tierName');
  if (!Number.isSafeInteger(input.card.balance)) {
    throw new PassInputError(`card.balance must be an integer number of points, got ${input.card.balance}.`);
  }

  // Header fields are the only ones visible while passes are stacked (reference section 3), so
  // the tier goes there; the balance is the primary field shown over the strip image.
  const headerFields: PassField[] = [
    {
      key: FIELD_KEYS.tier,
      label: localize(FIELD_LABELS.tier),
      value: localize(input.card.tierName),
      changeMessage: localize(CHANGE_MESSAGES.tier),
      textAlignment: 'PKTextAlignmentRight',
    },
  ];
  const mechanic = input.mechanic;
  // A discount or stamp card shows its mechanic where a points card shows the balance (the primary
  // field, over the strip); its change notifies like a balance change.
  const primaryFields: PassField[] =
    mechanic?.kind === 'discount'
      ? [{ key: FIELD_KEYS.discount, label: localize(FIELD_LABELS.discount), value: localize(mechanic.percent), changeMessage: localize(CHANGE_MESSAGES.discount) }]
      : mechanic?.kind === 'stamps'
        ? [{ key: FIELD_KEYS.stamps, label: localize(FIELD_LABELS.stamps), value: mechanic.value, changeMessage: localize(CHANGE_MESSAGES.stamps) }]
        : [
            {
              key: FIELD_KEYS.balance,
              label: localize(FIELD_LABELS.balance),
              // A number (not a string) so Wallet formats it in the device locale ("12,345" / "12 345").
              value: input.card.balance,
              numberStyle: 'PKNumberStyleDecimal',
              changeMessage: localize(CHANGE_MESSAGES.balance),
            },
          ];
  const secondaryFields: PassField[] = [
    { key: FIELD_KEYS.holder, label: localize(FIELD_LABELS.holder), value: input.card.holderName },
    {
      key: FIELD_KEYS.cardNumber,
      label: localize(FIELD_LABELS.cardNumber),
      value: input.card.number,
      textAlignment: 'PKTextAlignmentRight',
    },
  ];
  const auxiliaryFields: PassField[] = [];
  if (hasText(input.frontPromo)) {
    auxiliaryFields.push({
      key: FIELD_KEYS.frontPromo,
      label: localize(FIELD_LABELS.frontPromo),
      value: localize(input.frontPromo),
      changeMessage: localize(CHANGE_MESSAGES.promo),
    });
  }

  // Bonuses of a self-service card not yet spendable (shown, not counted in the balance). No
  // changeMessage: their release moves the balance, whose message tells the holder.
  if (input.card.pendingPoints !== undefined && input.card.pendingPoints > 0) {
    if (!Number.isSafeInteger(input.card.pendingPoints)) throw new PassInputError(`card.pendingPoints must be an integer, got ${input.card.pendingPoints}.`);
    auxiliaryFields.push({
      key: FIELD_KEYS.pending,
      label: localize(FIELD_LABELS.pending),
      value: input.card.pendingPoints,
      numberStyle: 'PKNumberStyleDecimal',
    });
  }

  const backFields: PassField[] = [];
  if (mechanic?.kind === 'discount') {
    const next: PassField = { key: FIELD_KEYS.nextDiscount, label: localize(FIELD_LABELS.nextDiscount), value: localize(mechanic.next) };
    // On the front when there is room (≤ 4 secondary + auxiliary fields), else first on the back.
    if (secondaryFields.length + auxiliaryFields.length < MAX_SECONDARY_AND_AUXILIARY_FIELDS) auxiliaryFields.unshift(next);
    else backFields.push(next);
  }
  if (mechanic?.kind === 'stamps') {
    backFields.push({ key: FIELD_KEYS.reward, label: localize(FIELD_LABELS.reward), value: localize(mechanic.reward) });
  }
  const back = input.back ?? {};
  if (hasText(back.promo)) {
    backFields.push({ key: FIELD_KEYS.backPromo, label: localize(FIELD_LABELS.backPromo), value: localize(back.promo) });
  }
  if (hasText(back.latestCoupon)) {
    backFields.push({
      key: FIELD_KEYS.latestCoupon,
      label: localize(FIELD_LABELS.latestCoupon),
      value: localize(back.latestCoupon),
      changeMessage: localize(CHANGE_MESSAGES.coupon),
    });
  }
  if (hasText(back.coupons)) {
    backFields.push({ key: FIELD_KEYS.coupons, label: localize(FIELD_LABELS.coupons), value: localize(back.coupons) });
  }
  if (back.referral && hasText(back.referral.text)) {
    const { text, url } = back.referral;
    backFields.push({
      key: FIELD_KEYS.referral,
      label: localize(FIELD_LABELS.referral),
      // The URL on its own line becomes tappable through the link data detector.
      value: localize({ en: `${text.en}\n${url}`, ru: `${text.ru}\n${url}` }),
      dataDetectorTypes: ['PKDataDetectorTypeLink'],
    });
  }
  if (hasText(back.contacts)) {
    backFields.push({ key: FIELD_KEYS.contacts, label: localize(FIELD_LABELS.contacts), value: localize(back.contacts) });
  }
  if (hasText(back.terms)) {
    backFields.push({ key: FIELD_KEYS.terms, label: localize(FIELD_LABELS.terms), value: localize(back.terms) });
  }

  const locations: PassLocation[] = (input.locations ?? []).slice(0, MAX_LOCATIONS).map((location) => {
    const passLocation: PassLocation = { latitude: location.latitude, longitude: location.longitude };
    if (hasText(location.relevantText)) passLocation.relevantText = localize(location.relevantText);
    return passLocation;
  });

  const passJson: StoreCardPassJson = {
    formatVersion: 1,
    passTypeIdentifier: input.passTypeIdentifier,
    serialNumber: input.serialNumber,
    teamIdentifier: input.teamIdentifier,
    organizationName: input.organizationName,
    description: localize(input.description),
    ...(hasText(input.logoText) ? { logoText: localize(input.logoText) } : {}),
    foregroundColor: hexColorToRgb(input.colors.foreground),
    backgroundColor: hexColorToRgb(input.colors.background),
    labelColor: hexColorToRgb(input.colors.label),
    webServiceURL: normalizeWebServiceURL(input.webServiceURL),
    authenticationToken: input.authenticationToken,
    barcodes: buildBarcodes(input),
    ...(locations.length > 0 ? { locations } : {}),
    ...(input.voided ? { voided: true } : {}),
    storeCard: { headerFields, primaryFields, secondaryFields, auxiliaryFields, backFields },
  };

  // Layout limits are fixed by this builder; asserting keeps future edits honest.
  if (headerFields.length > MAX_HEADER_FIELDS || primaryFields.length > MAX_PRIMARY_FIELDS ||
      secondaryFields.length + auxiliaryFields.length > MAX_SECONDARY_AND_AUXILIARY_FIELDS) {
    throw new Error('storeCard layout exceeds Apple field limits');
  }

  const localizedStrings = { en: strings.table('en'), ru: strings.table('ru') };
  return {
    passJson,
    localizedStrings,
    passStrings: { en: encodePassStrings(localizedStrings.en), ru: encodePassStrings(localizedStrings.ru) },
  };
}
