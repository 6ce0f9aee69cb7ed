/**
 * The pure pass.json / pass.strings builder (no signing): layout limits and localization rules from
 * the reference (/work/shared/reference/apple-wallet.md, sections 3 and 7), including property-based
 * checks over arbitrary texts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildStoreCardPassJson,
  escapePassStringsValue,
  hexColorToRgb,
  normalizeWebServiceURL,
  PassInputError,
  type StoreCardPassJson,
} from '../../src/wallets/apple/pass/build-pass-json.js';
import type { LocalizedText, StoreCardPassInput } from '../../src/wallets/apple/pass/types.js';
import { parsePassStrings, sampleStoreCardInput } from '../support/pkpass-testing.js';

const ids = { passTypeIdentifier: 'pass.dev.walletcards.test', teamIdentifier: 'TEAMID1234' };
const input = (overrides: Partial<StoreCardPassInput> = {}) => sampleStoreCardInput(ids, overrides);

function allFields(passJson: StoreCardPassJson) {
  const groups = passJson.storeCard;
  return [...groups.headerFields, ...groups.primaryFields, ...groups.secondaryFields, ...groups.auxiliaryFields, ...groups.backFields];
}

describe('buildStoreCardPassJson', () => {
  it('is pure: the same input gives the same output', () => {
    const first = buildStoreCardPassJson(input());
    const second = buildStoreCardPassJson(input());
    expect(second.passJson).toEqual(first.passJson);
    expect(second.passStrings.ru.equals(first.passStrings.ru)).toBe(true);
  });

  it('uses default-language texts as readable keys (what Wallet shows when no .lproj matches)', () => {
    const ru = buildStoreCardPassJson(input({ defaultLanguage: 'ru' })).passJson;
    const en = buildStoreCardPassJson(input({ defaultLanguage: 'en' })).passJson;
    expect(ru.description).toBe('Карта лояльности БлокПОСТ');
    expect(en.description).toBe('BlokPOST loyalty card');
    expect(ru.storeCard.primaryFields[0]!.label).toBe('Баллы');
    expect(en.storeCard.primaryFields[0]!.label).toBe('Points');
  });

  it('gives distinct keys to equal default-language texts with different translations', () => {
    // The tier is called "Member" in English like the built-in holder label, but translated differently.
    const built = buildStoreCardPassJson(
      input({ defaultLanguage: 'en', card: { ...input().card, tierName: { en: 'Member', ru: 'Участник' } } }),
    );
    const tier = built.passJson.storeCard.headerFields.find((field) => field.key === 'tier')!;
    const holder = built.passJson.storeCard.secondaryFields.find((field) => field.key === 'holder')!;
    expect(tier.value).not.toBe(holder.label);
    expect(built.localizedStrings.ru[String(tier.value)]).toBe('Участник');
    expect(built.localizedStrings.ru[holder.label!]).toBe('Владелец');
    expect(built.localizedStrings.en[String(tier.value)]).toBe('Member');
  });

  it('omits optional fields that have no text and keeps the layout valid', () => {
    const { passJson } = buildStoreCardPassJson(input({ frontPromo: undefined, back: undefined, locations: undefined, logoText: undefined }));
    expect(passJson.storeCard.auxiliaryFields).toEqual([]);
    expect(passJson.storeCard.backFields).toEqual([]);
    expect('locations' in passJson).toBe(false);
    expect('logoText' in passJson).toBe(false);
  });

  it('marks a retired card as voided', () => {
    expect(buildStoreCardPassJson(input({ voided: true })).passJson.voided).toBe(true);
    expect('voided' in buildStoreCardPassJson(input()).passJson).toBe(false);
  });

  it('rejects inputs Wallet would refuse', () => {
    expect(() => buildStoreCardPassJson(input({ authenticationToken: '123456789012345' }))).toThrow(PassInputError);
    expect(() => buildStoreCardPassJson(input({ webServiceURL: 'cards.example.com/apple' }))).toThrow(PassInputError);
    expect(() => buildStoreCardPassJson(input({ colors: { background: 'red', foreground: '#fff', label: '#000000' } }))).toThrow(PassInputError);
    expect(() => buildStoreCardPassJson(input({ card: { ...input().card, balance: 1.5 } }))).toThrow(PassInputError);
    expect(() => buildStoreCardPassJson(input({ description: { en: 'Card', ru: '' } }))).toThrow(PassInputError);
    expect(() => buildStoreCardPassJson(input({ barcode: { message: '' } }))).toThrow(PassInputError);
  });

  it('converts colours and strips exactly one trailing slash from webServiceURL', () => {
    expect(hexColorToRgb('#0F766e')).toBe('rgb(15, 118, 110)');
    expect(normalizeWebServiceURL('https://x.example/apple/')).toBe('https://x.example/apple');
    expect(normalizeWebServiceURL('https://x.example/apple')).toBe('https://x.example/apple');
  });

  it('escapes pass.strings specials', () => {
    expect(escapePassStringsValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });
});

const localizedText = fc.record({ ru: fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }), en: fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }) });
const nonBlankLocalizedText: fc.Arbitrary<LocalizedText> = localizedText.filter((text) => text.ru.trim() !== '' && text.en.trim() !== '');

describe('properties over arbitrary programme texts', () => {
  const arbitraryInput = fc.record({
    defaultLanguage: fc.constantFrom<'ru' | 'en'>('ru', 'en'),
    tierName: nonBlankLocalizedText,
    description: nonBlankLocalizedText,
    frontPromo: fc.option(localizedText, { nil: undefined }),
    backPromo: fc.option(localizedText, { nil: undefined }),
    terms: fc.option(localizedText, { nil: undefined }),
    contacts: fc.option(localizedText, { nil: undefined }),
    holderName: fc.string({ maxLength: 30 }),
    balance: fc.integer({ min: 0, max: 10_000_000 }),
    locationCount: fc.integer({ min: 0, max: 15 }),
  }).map((generated): StoreCardPassInput => input({
    defaultLanguage: generated.defaultLanguage,
    description: generated.description,
    frontPromo: generated.frontPromo,
    back: { promo: generated.backPromo, terms: generated.terms, contacts: generated.contacts },
    card: { ...input().card, holderName: generated.holderName, balance: generated.balance, tierName: generated.tierName },
    locations: Array.from({ length: generated.locationCount }, (_, index) => ({
      latitude: 55 + index / 1000,
      longitude: 37,
      relevantText: generated.tierName,
    })),
  }));

  it('layout limits, unique keys, ≤ 10 locations and %@ in every changeMessage always hold', () => {
    fc.assert(
      fc.property(arbitraryInput, (passInput) => {
        const { passJson, localizedStrings } = buildStoreCardPassJson(passInput);
        const groups = passJson.storeCard;
        const keys = allFields(passJson).map((field) => field.key);
        expect(new Set(keys).size).toBe(keys.length);
        expect(groups.headerFields.length).toBeLessThanOrEqual(3);
        expect(groups.primaryFields).toHaveLength(1);
        expect(groups.secondaryFields.length + groups.auxiliaryFields.length).toBeLessThanOrEqual(4);
        expect((passJson.locations ?? []).length).toBeLessThanOrEqual(10);
        for (const field of allFields(passJson)) {
          if (field.changeMessage === undefined) continue;
          expect(localizedStrings.en[field.changeMessage]).toContain('%@');
          expect(localizedStrings.ru[field.changeMessage]).toContain('%@');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('pass.strings always parse back to exactly the localization tables (any characters)', () => {
    fc.assert(
      fc.property(arbitraryInput, (passInput) => {
        const built = buildStoreCardPassJson(passInput);
        expect(parsePassStrings(built.passStrings.en)).toEqual(built.localizedStrings.en);
        expect(parsePassStrings(built.passStrings.ru)).toEqual(built.localizedStrings.ru);
        // Every localized value in pass.json resolves to the input text in both languages.
        const tier = built.passJson.storeCard.headerFields[0]!;
        expect(built.localizedStrings.ru[String(tier.value)]).toBe(passInput.card.tierName.ru);
        expect(built.localizedStrings.en[String(tier.value)]).toBe(passInput.card.tierName.en);
        expect(built.localizedStrings.ru[built.passJson.description]).toBe(passInput.description.ru);
      }),
      { numRuns: 200 },
    );
  });
});
