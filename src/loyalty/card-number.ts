/**
 * Card numbers, referral codes and secret tokens.
 *
 * A card number is 12 digits: 11 random digits (the first non-zero, so the number never loses
 * a leading zero in a spreadsheet or a POS field typed as a number) and a Luhn check digit, so
 * a cashier who mistypes one digit, or swaps two neighbours, gets "no such card" instead of
 * somebody else's card.
 */
import { randomBytes, randomInt } from 'node:crypto';

export const CARD_NUMBER_LENGTH = 12;

/** Returns an integer in [min, max), like crypto.randomInt(min, max). Injectable for tests. */
export type RandomInt = (min: number, max: number) => number;

const secureRandomInt: RandomInt = (min, max) => randomInt(min, max);

/** The Luhn check digit for a string of digits (the payload without its check digit). */
export function luhnCheckDigit(payload: string): number {
  if (!/^\d+$/.test(payload)) throw new TypeError('Luhn payload must be digits only');
  let sum = 0;
  // Walk from the right; the digit next to the (future) check digit is doubled first.
  for (let offset = 0; offset < payload.length; offset++) {
    let digit = payload.charCodeAt(payload.length - 1 - offset) - 48;
    if (offset % 2 === 0) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return (10 - (sum % 10)) % 10;
}

export function generateCardNumber(random: RandomInt = secureRandomInt): string {
  let payload = String(random(1, 10));
  for (let index = 1; index < CARD_NUMBER_LENGTH - 1; index++) payload += String(random(0, 10));
  return payload + String(luhnCheckDigit(payload));
}

/** True for exactly the shape generateCardNumber produces, with a correct check digit. */
export function isValidCardNumber(value: string): boolean {
  if (!/^[1-9]\d+$/.test(value) || value.length !== CARD_NUMBER_LENGTH) return false;
  return luhnCheckDigit(value.slice(0, -1)) === Number(value.at(-1));
}

/**
 * What a barcode scanner or a cashier typed, reduced to the value itself: scanners in keyboard
 * mode add a trailing Enter/Tab and sometimes control characters (e.g. the GS separator), and
 * people copy numbers as "1234 5678 9012" or "1234-5678-9012".
 */
export function normalizeScannedValue(value: string): string {
  // \s covers spaces, NBSP, tabs and line breaks; the dash class covers hyphen-minus and the
  // Unicode hyphens/dashes/minus that autocorrect and copy-paste produce.
  return value.replace(/[\s\u0000-\u001f\u007f\-\u2010-\u2015\u2212]/g, '');
}

// No 0/O, 1/I/L: the code is read aloud, typed from a screenshot, or printed in small type.
export const REFERRAL_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const REFERRAL_CODE_LENGTH = 8;

export function generateReferralCode(random: RandomInt = secureRandomInt): string {
  let code = '';
  for (let index = 0; index < REFERRAL_CODE_LENGTH; index++) {
    code += REFERRAL_CODE_ALPHABET[random(0, REFERRAL_CODE_ALPHABET.length)];
  }
  return code;
}

/** A URL-safe secret (card page tokens, Apple authentication tokens, API keys). */
export function generateToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 1) throw new RangeError(`token size must be a positive integer, got ${bytes}`);
  return randomBytes(bytes).toString('base64url');
}
