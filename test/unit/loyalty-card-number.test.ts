import { randomInt } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CARD_NUMBER_LENGTH,
  REFERRAL_CODE_ALPHABET,
  generateCardNumber,
  generateReferralCode,
  generateToken,
  isValidCardNumber,
  luhnCheckDigit,
  normalizeScannedValue,
  type RandomInt,
} from '../../src/loyalty/card-number.js';

/** A RandomInt that plays back fixed choices (each reduced into the requested range). */
function scriptedRandom(choices: number[]): RandomInt {
  let next = 0;
  return (min, max) => {
    const choice = choices[next++ % choices.length];
    return min + (((choice % (max - min)) + (max - min)) % (max - min));
  };
}

const randomChoices = fc.array(fc.nat(), { minLength: 1, maxLength: 20 });
const cardNumbers = randomChoices.map((choices) => generateCardNumber(scriptedRandom(choices)));

describe('luhnCheckDigit', () => {
  it('matches published Luhn examples', () => {
    expect(luhnCheckDigit('7992739871')).toBe(3); // the Wikipedia example, 79927398713
    expect(luhnCheckDigit('453201511283036')).toBe(6); // a Visa test number, 4532015112830366
    expect(luhnCheckDigit('0')).toBe(0);
  });

  it('rejects non-digits', () => {
    expect(() => luhnCheckDigit('12a4')).toThrow(TypeError);
  });
});

describe('generateCardNumber', () => {
  it('builds 11 chosen digits plus the Luhn digit, first digit from 1..9', () => {
    const calls: Array<[number, number]> = [];
    const random: RandomInt = (min, max) => {
      calls.push([min, max]);
      return min === 1 ? 7 : 9;
    };
    expect(generateCardNumber(random)).toBe('79999999999' + String(luhnCheckDigit('79999999999')));
    expect(calls[0]).toEqual([1, 10]);
    expect(calls.slice(1)).toEqual(Array.from({ length: 10 }, () => [0, 10]));
  });

  it('works with crypto.randomInt passed explicitly and by default', () => {
    expect(isValidCardNumber(generateCardNumber(randomInt))).toBe(true);
    const numbers = new Set(Array.from({ length: 200 }, () => generateCardNumber()));
    for (const number of numbers) expect(isValidCardNumber(number)).toBe(true);
    // 10^11 possibilities: 200 draws colliding would mean the randomness is broken.
    expect(numbers.size).toBe(200);
  });

  it('always produces a valid 12-digit number without a leading zero (property)', () => {
    fc.assert(
      fc.property(cardNumbers, (number) => {
        expect(number).toMatch(/^[1-9]\d{11}$/);
        expect(number).toHaveLength(CARD_NUMBER_LENGTH);
        expect(isValidCardNumber(number)).toBe(true);
      }),
    );
  });
});

describe('isValidCardNumber', () => {
  it('detects every single-digit error (property)', () => {
    fc.assert(
      fc.property(
        cardNumbers,
        fc.nat({ max: CARD_NUMBER_LENGTH - 1 }),
        fc.integer({ min: 1, max: 9 }),
        (number, position, shift) => {
          const wrongDigit = (Number(number[position]) + shift) % 10;
          const mistyped = number.slice(0, position) + String(wrongDigit) + number.slice(position + 1);
          expect(isValidCardNumber(mistyped)).toBe(false);
        },
      ),
    );
  });

  it('detects swapped neighbours except the one pair Luhn cannot see, 09 ↔ 90 (property)', () => {
    fc.assert(
      fc.property(cardNumbers, fc.nat({ max: CARD_NUMBER_LENGTH - 2 }), (number, position) => {
        const pair = number.slice(position, position + 2);
        fc.pre(pair[0] !== pair[1] && pair !== '09' && pair !== '90');
        const swapped = number.slice(0, position) + pair[1] + pair[0] + number.slice(position + 2);
        expect(isValidCardNumber(swapped)).toBe(false);
      }),
    );
  });

  it('rejects wrong shapes even with a correct check digit', () => {
    const elevenDigits = '7992739871' + String(luhnCheckDigit('7992739871'));
    expect(isValidCardNumber(elevenDigits)).toBe(false);
    const leadingZero = '01234567890' + String(luhnCheckDigit('01234567890'));
    expect(isValidCardNumber(leadingZero)).toBe(false);
    const valid = '12345678901' + String(luhnCheckDigit('12345678901'));
    expect(isValidCardNumber(valid)).toBe(true);
    expect(isValidCardNumber(valid + '0')).toBe(false);
    expect(isValidCardNumber(` ${valid}`)).toBe(false);
    expect(isValidCardNumber('')).toBe(false);
  });
});

describe('normalizeScannedValue', () => {
  it('strips what scanners and copy-paste add around a number', () => {
    expect(normalizeScannedValue('1234 5678 9012\r\n')).toBe('123456789012');
    expect(normalizeScannedValue('1234-5678-9012\t')).toBe('123456789012');
    expect(normalizeScannedValue('\u001d1234\u00a05678\u20139012')).toBe('123456789012');
    expect(normalizeScannedValue('ABC-def')).toBe('ABCdef');
  });

  it('turns any spaced or dashed rendering of a valid number back into it (property)', () => {
    const separators = fc.constantFrom('', ' ', '-', ' - ', '\u00a0', '\u2014');
    fc.assert(
      fc.property(cardNumbers, fc.array(separators, { minLength: 13, maxLength: 13 }), (number, gaps) => {
        const decorated = gaps[0] + [...number].map((digit, index) => digit + gaps[index + 1]).join('');
        expect(isValidCardNumber(normalizeScannedValue(decorated))).toBe(true);
        expect(normalizeScannedValue(decorated)).toBe(number);
      }),
    );
  });
});

describe('generateReferralCode', () => {
  it('uses 8 characters from an alphabet without 0, O, 1, I, L', () => {
    expect(REFERRAL_CODE_ALPHABET).not.toMatch(/[0O1IL]/);
    expect(REFERRAL_CODE_ALPHABET).toBe(REFERRAL_CODE_ALPHABET.toUpperCase());
    expect(new Set(REFERRAL_CODE_ALPHABET).size).toBe(REFERRAL_CODE_ALPHABET.length);
    for (let index = 0; index < 200; index++) {
      expect(generateReferralCode()).toMatch(/^[2-9A-HJKMNP-Z]{8}$/);
    }
  });

  it('can reach every letter of the alphabet (the whole range is asked for)', () => {
    const seen = new Set<string>();
    let step = 0;
    const counting: RandomInt = (min, max) => min + (step++ % (max - min));
    for (let index = 0; index < 10; index++) for (const char of generateReferralCode(counting)) seen.add(char);
    expect([...seen].sort().join('')).toBe([...REFERRAL_CODE_ALPHABET].sort().join(''));
  });
});

describe('generateToken', () => {
  it('returns base64url text carrying the requested number of random bytes', () => {
    for (const bytes of [16, 24, 32, 33]) {
      const token = generateToken(bytes);
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(bytes);
    }
    expect(Buffer.from(generateToken(), 'base64url')).toHaveLength(32);
    expect(generateToken(32)).not.toBe(generateToken(32));
  });

  it('rejects sizes that are not positive integers', () => {
    expect(() => generateToken(0)).toThrow(RangeError);
    expect(() => generateToken(1.5)).toThrow(RangeError);
  });
});
