/**
 * Plain-data input for one Apple Wallet store card (no database types): the caller maps a program
 * and a card onto this shape, the builder turns it into pass.json + pass.strings, the packager
 * into a signed .pkpass.
 */

/** Languages shipped in every pass (`en.lproj`, `ru.lproj`). */
export const PASS_LANGUAGES = ['en', 'ru'] as const;
export type PassLanguage = (typeof PASS_LANGUAGES)[number];

/** A text in both shipped languages. */
export interface LocalizedText {
  ru: string;
  en: string;
}

/** Barcode formats Wallet supports (Apple: Pass Design – barcodes). */
export type PassBarcodeFormat =
  | 'PKBarcodeFormatQR'
  | 'PKBarcodeFormatPDF417'
  | 'PKBarcodeFormatAztec'
  | 'PKBarcodeFormatCode128';

export interface StoreCardLocation {
  latitude: number;
  longitude: number;
  /** Lock-screen text near this location. */
  relevantText?: LocalizedText;
}

export interface StoreCardPassInput {
  /** Must equal the signer certificate subject UID (reference section 3). */
  passTypeIdentifier: string;
  /** Must equal the signer certificate subject OU (reference section 3). */
  teamIdentifier: string;
  /** Brand name shown on the lock screen and in notifications; used literally (not localized). */
  organizationName: string;
  /** Fixed for the card's life: "Any field on a pass can be updated except for the authentication token and serial number." */
  serialNumber: string;
  /** ≥ 16 characters, random per pass, never rotated (reference section 1.1). */
  authenticationToken: string;
  /** Prefix that hosts `/v1` (e.g. `https://cards.example.com/apple`); one trailing slash is stripped. */
  webServiceURL: string;
  /**
   * Language whose texts become the localization keys in pass.json. Wallet shows the raw key when
   * no shipped `.lproj` matches the device (reference section 3), so keys are readable text in the
   * program's main language rather than symbolic names. Default: `en`.
   */
  defaultLanguage?: PassLanguage;

  /** Accessibility/Spotlight description of the pass ("Loyalty card of …"). Required by Apple. */
  description: LocalizedText;
  /** Text next to the logo. */
  logoText?: LocalizedText;
  /** `#rrggbb` colours, converted to Apple's `rgb(r, g, b)`. */
  colors: {
    background: string;
    foreground: string;
    label: string;
  };

  card: {
    /** Printed card number (also the barcode alt text). */
    number: string;
    holderName: string;
    /** Points balance, integer. */
    balance: number;
    /** Bonuses shown but not spendable yet (an unverified self-service card); omitted or 0 = no field. */
    pendingPoints?: number;
    tierName: LocalizedText;
  };

  /**
   * The program's mechanic when it is not points (omitted = a points card, as always): a discount
   * card shows its percent instead of the balance and the next level; a stamp card shows "4 / 6"
   * over its strip (the caller supplies the strip images) and the reward on the back.
   */
  mechanic?:
    | { kind: 'discount'; percent: LocalizedText; next: LocalizedText }
    | { kind: 'stamps'; value: string; reward: LocalizedText };

  barcode: {
    /** Barcode payload, ASCII only (encoded as ISO-8859-1); usually the card number. */
    message: string;
    /** Default QR. Code128 gets a QR fallback because watchOS cannot show Code128. */
    format?: PassBarcodeFormat;
  };

  /** A campaign message on the front; changes notify the holder (changeMessage "%@"). */
  frontPromo?: LocalizedText;

  back?: {
    contacts?: LocalizedText;
    terms?: LocalizedText;
    promo?: LocalizedText;
    referral?: { text: LocalizedText; url: string };
    /** The card's usable coupons, one line each (src/coupons); omitted or empty = no field. */
    coupons?: LocalizedText;
    /** The coupon issued last: its change shows on the lock screen ("New coupon: …"). */
    latestCoupon?: LocalizedText;
  };

  /** At most 10 are used (Apple limit); extras are dropped. */
  locations?: StoreCardLocation[];

  /** Retires the card on the device (pushed like any other update). */
  voided?: boolean;

  /**
   * Program-uploaded images, top level only (e.g. `logo.png`, `strip@2x.png`); they override the
   * default images of the same name. Buffers are treated as immutable (their SHA-1 is cached by identity).
   */
  images?: Record<string, Buffer>;
}
