/**
 * Ids and payload builders for loyalty classes and objects (reference google-wallet.md sections 1.2–1.3,
 * checklist 6–13, 37), checked on their own and against the local fake's validation.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GoogleWalletClient } from '../../src/wallets/google/client.js';
import { createServiceAccountTokenProvider } from '../../src/wallets/google/auth.js';
import {
  buildLoyaltyClass,
  buildLoyaltyObject,
  classIdFor,
  GooglePayloadError,
  idSegment,
  lintLoyaltyClass,
  lintLoyaltyObject,
  loyaltyPoints,
  MODULE_ID_PATTERN,
  objectIdFor,
  RESOURCE_ID_PATTERN,
  tierChangePatch,
  type LoyaltyClassInput,
  type LoyaltyObjectInput,
} from '../../src/wallets/google/payloads.js';
import { createTokenBucket } from '../../src/wallets/google/rate-limiter.js';
import { createTestServiceAccount, startGoogleFake, type GoogleFake } from '../support/google-fake.js';

const ISSUER = '3388000000012345678';

function classInput(overrides: Partial<LoyaltyClassInput> = {}): LoyaltyClassInput {
  return {
    issuerId: ISSUER,
    programSlug: 'blokpost',
    defaultLanguage: 'ru',
    issuerName: { ru: 'БлокПОСТ', en: 'BlokPOST' },
    programName: { ru: 'Бонусы БлокПОСТ', en: 'BlokPOST Bonus' },
    logoUrl: 'https://cdn.example.com/logo.png',
    backgroundColor: '#1a2b3c',
    tier: { code: 'standard', name: { ru: 'Базовый', en: 'Base' }, label: { ru: 'Уровень', en: 'Tier' } },
    callbackUrl: 'https://cards.example.com/google/callback',
    ...overrides,
  };
}

function objectInput(overrides: Partial<LoyaltyObjectInput> = {}): LoyaltyObjectInput {
  return {
    issuerId: ISSUER,
    programSlug: 'blokpost',
    cardId: '6f1c2a8e-5b1d-4a57-9a53-0d2a7c1e9b11',
    classId: classIdFor(ISSUER, 'blokpost', 'standard'),
    state: 'ACTIVE',
    defaultLanguage: 'ru',
    cardNumber: '2000000012348',
    holderName: 'Ада Лавлейс',
    balance: 1000,
    pointsLabel: { ru: 'Баллы', en: 'Points' },
    ...overrides,
  };
}

describe('ids (checklist 6)', () => {
  it('builds <issuer>.<program>.<tier> and <issuer>.<program>.<card>', () => {
    expect(classIdFor(ISSUER, 'blokpost', 'gold')).toBe(`${ISSUER}.blokpost.gold`);
    expect(objectIdFor(ISSUER, 'blokpost', 'card-42')).toBe(`${ISSUER}.blokpost.card-42`);
  });

  it('sanitizes unsafe input deterministically and keeps distinct inputs distinct', () => {
    const a = objectIdFor(ISSUER, 'кофейня', 'a b');
    expect(a).toMatch(RESOURCE_ID_PATTERN);
    expect(objectIdFor(ISSUER, 'кофейня', 'a b')).toBe(a);
    expect(objectIdFor(ISSUER, 'кофейня', 'a/b')).not.toBe(a);
    expect(objectIdFor(ISSUER, 'кофейня', 'a_b')).not.toBe(a);
    // A dot inside a segment would make "<program>.<card>" ambiguous.
    expect(idSegment('a.b')).not.toContain('.');
  });

  it('property: any input gives a valid, deterministic id; different inputs give different ids', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, unit: 'grapheme' }), fc.string({ minLength: 1, unit: 'grapheme' }), (program, card) => {
        const id = objectIdFor(ISSUER, program, card);
        expect(id).toMatch(RESOURCE_ID_PATTERN);
        expect(id.startsWith(`${ISSUER}.`)).toBe(true);
        expect(objectIdFor(ISSUER, program, card)).toBe(id);
        expect(idSegment(card)).toMatch(MODULE_ID_PATTERN);
      }),
    );
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1 }), { minLength: 2, maxLength: 30 }), (cards) => {
        const ids = cards.map((card) => objectIdFor(ISSUER, 'p', card));
        expect(new Set(ids).size).toBe(cards.length);
      }),
    );
  });

  it('rejects a non-numeric issuer and empty segments', () => {
    expect(() => classIdFor('abc', 'p', 't')).toThrow(GooglePayloadError);
    expect(() => objectIdFor(ISSUER, '', 'c')).toThrow(GooglePayloadError);
  });
});

describe('buildLoyaltyClass (checklist 8, 12, 13, 37)', () => {
  it('has the required fields, tier, colour, callback and UNDER_REVIEW', () => {
    const cls = buildLoyaltyClass(
      classInput({
        locations: Array.from({ length: 12 }, (_, i) => ({ latitude: 55 + i / 100, longitude: 37 })),
        texts: [{ id: 'terms.v2', header: { ru: 'Условия', en: 'Terms' }, body: { ru: 'Текст', en: 'Text' } }],
        links: [{ id: 'phone', url: 'tel:+74950000000', description: { ru: 'Позвонить', en: 'Call' } }],
      }),
    );
    expect(cls).toMatchObject({
      id: `${ISSUER}.blokpost.standard`,
      issuerName: 'БлокПОСТ',
      programName: 'Бонусы БлокПОСТ',
      programLogo: { sourceUri: { uri: 'https://cdn.example.com/logo.png' } },
      hexBackgroundColor: '#1a2b3c',
      rewardsTier: 'Базовый',
      localizedRewardsTier: { defaultValue: { language: 'ru', value: 'Базовый' }, translatedValues: [{ language: 'en', value: 'Base' }] },
      rewardsTierLabel: 'Уровень',
      callbackOptions: { url: 'https://cards.example.com/google/callback' },
      reviewStatus: 'UNDER_REVIEW',
    });
    expect(cls.localizedProgramName?.translatedValues).toEqual([{ language: 'en', value: 'BlokPOST Bonus' }]);
    expect(cls.merchantLocations).toHaveLength(10);
    expect(cls).not.toHaveProperty('locations');
    expect(cls.textModulesData![0]!.id).toMatch(MODULE_ID_PATTERN);
    expect(cls.linksModuleData!.uris![0]!.uri).toBe('tel:+74950000000');
  });

  it.each([
    [{ logoUrl: 'http://cdn.example.com/logo.png' }, /logoUrl must be an https/],
    [{ callbackUrl: 'http://cards.example.com/cb' }, /callbackUrl must be an https/],
    [{ backgroundColor: 'red' }, /backgroundColor/],
    [{ programName: { ru: '', en: 'x' } }, /programName needs both ru and en/],
    [{ links: [{ id: 'x', url: 'javascript:alert(1)', description: { ru: 'a', en: 'a' } }] }, /must start with https/],
  ])('rejects %o', (overrides, pattern) => {
    expect(() => buildLoyaltyClass(classInput(overrides as Partial<LoyaltyClassInput>))).toThrow(pattern);
  });

  it('warns about recommended lengths instead of cutting tier names', () => {
    const cls = buildLoyaltyClass(classInput({ tier: { code: 'standard', name: { ru: 'Стандартный', en: 'Standard' } } }));
    expect(cls.rewardsTier).toBe('Стандартный');
    expect(lintLoyaltyClass(cls).join('\n')).toMatch(/rewardsTier is 11 characters/);
    expect(lintLoyaltyClass(buildLoyaltyClass(classInput()))).toEqual([]);
  });
});

describe('buildLoyaltyObject (checklist 7, 10, 11, 12)', () => {
  it('has id, classId, state, account, points and the same barcode as the Apple pass', () => {
    const obj = buildLoyaltyObject(objectInput());
    expect(obj).toEqual({
      id: `${ISSUER}.blokpost.6f1c2a8e-5b1d-4a57-9a53-0d2a7c1e9b11`,
      classId: `${ISSUER}.blokpost.standard`,
      state: 'ACTIVE',
      accountId: '2000000012348',
      accountName: 'Ада Лавлейс',
      loyaltyPoints: {
        label: 'Баллы',
        localizedLabel: { defaultValue: { language: 'ru', value: 'Баллы' }, translatedValues: [{ language: 'en', value: 'Points' }] },
        balance: { int: 1000 },
      },
      barcode: { type: 'QR_CODE', value: '2000000012348', alternateText: '2000000012348' },
    });
  });

  it('truncates accountName to 20 and the points label to 9 characters (code points)', () => {
    const obj = buildLoyaltyObject(
      objectInput({ holderName: 'Александра Константиновна Преображенская', pointsLabel: { ru: 'Бонусные баллы', en: 'Bonus points' } }),
    );
    expect(Array.from(obj.accountName!)).toHaveLength(20);
    expect(obj.accountName).toBe('Александра Константи');
    expect(obj.loyaltyPoints!.label).toBe('Бонусные ');
    expect(obj.loyaltyPoints!.localizedLabel!.translatedValues![0]!.value).toBe('Bonus poi');
  });

  it('requires an int32 balance', () => {
    expect(() => loyaltyPoints(2 ** 31, { ru: 'Б', en: 'P' }, 'ru')).toThrow(/int32/);
    expect(() => loyaltyPoints(1.5, { ru: 'Б', en: 'P' }, 'ru')).toThrow(/int32/);
    expect(loyaltyPoints(2 ** 31 - 1, { ru: 'Б', en: 'P' }, 'ru').balance).toEqual({ int: 2147483647 });
    expect(lintLoyaltyObject(buildLoyaltyObject(objectInput({ balance: 12_345_678 }))).join()).toMatch(/over 7 characters/);
  });

  it('adds the referral text (with the link) and promos with dot-free ids, and a links module', () => {
    const obj = buildLoyaltyObject(
      objectInput({
        referral: {
          url: 'https://cards.example.com/join/blokpost?ref=AB12',
          header: { ru: 'Пригласите друга', en: 'Invite a friend' },
          body: { ru: 'По 3000 баллов вам и другу', en: '3000 points each' },
          linkDescription: { ru: 'Ссылка', en: 'Link' },
        },
        promos: [{ id: 'spring.2026', header: { ru: 'Весна', en: 'Spring' }, body: { ru: '-20%', en: '-20%' } }],
      }),
    );
    const ids = obj.textModulesData!.map((m) => m.id!);
    expect(ids[0]).toBe('referral');
    for (const id of ids) expect(id).toMatch(MODULE_ID_PATTERN);
    expect(obj.textModulesData![0]!.body).toContain('https://cards.example.com/join/blokpost?ref=AB12');
    expect(obj.linksModuleData!.uris![0]).toMatchObject({ id: 'referral', uri: 'https://cards.example.com/join/blokpost?ref=AB12' });
  });

  it('rejects a classId of another issuer', () => {
    expect(() => buildLoyaltyObject(objectInput({ classId: '1.blokpost.standard' }))).toThrow(/not an id of issuer/);
  });

  it('a tier change is a PATCH of classId alone (checklist 13)', () => {
    expect(tierChangePatch(ISSUER, 'blokpost', 'general')).toEqual({ classId: `${ISSUER}.blokpost.general` });
  });
});

describe('built payloads against the fake', () => {
  let fake: GoogleFake;
  let client: GoogleWalletClient;
  beforeAll(async () => {
    const account = createTestServiceAccount();
    fake = await startGoogleFake({ issuerId: ISSUER, serviceAccountPublicKey: account.publicKeyPem, clientEmail: account.serviceAccount.client_email });
    client = new GoogleWalletClient({
      apiBaseUrl: fake.apiBaseUrl,
      tokens: createServiceAccountTokenProvider({ serviceAccount: account.serviceAccount, tokenUrl: fake.tokenUrl }),
      limiter: createTokenBucket({ ratePerSecond: 1000, burst: 1000 }),
      sleep: async () => {},
    });
  });
  afterAll(() => fake.close());

  it('the fake accepts the built class and object, and a tier change moves the object to the other class', async () => {
    const standard = buildLoyaltyClass(classInput());
    const general = buildLoyaltyClass(classInput({ tier: { code: 'general', name: { ru: 'Общий', en: 'General' } }, backgroundColor: '#000' }));
    await client.insertClass(standard);
    await client.insertClass(general);
    const obj = buildLoyaltyObject(
      objectInput({ promos: [{ id: 'a.b', header: { ru: 'x', en: 'x' }, body: { ru: 'y', en: 'y' } }] }),
    );
    await client.insertObject(obj);
    const moved = await client.patchObject(obj.id!, tierChangePatch(ISSUER, 'blokpost', 'general'));
    expect(moved.resource.classId).toBe(general.id);
    expect(fake.objects.get(obj.id!)!.classId).toBe(general.id);
    expect(fake.callsTo('patchObject')[0]!.body).toEqual({ classId: general.id });
  });

  it('the fake rejects tier data written onto the object (it is a class field)', async () => {
    const obj = { ...buildLoyaltyObject(objectInput({ cardId: 'x1' })), rewardsTier: 'Gold' };
    await expect(client.insertObject(obj as never)).rejects.toMatchObject({ status: 400 });
  });
});
