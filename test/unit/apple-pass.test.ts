/**
 * Signed .pkpass package: the "Pass content and package" checklist of the reference
 * (/work/shared/reference/apple-wallet.md, section 7), checked on real packages with OpenSSL
 * (section 8.2) and an independent pass.strings parser.
 */
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAppleCertificates, subjectAttribute, type AppleSigningMaterial } from '../../src/wallets/apple/certificates.js';
import {
  createPassPackager,
  DEFAULT_PASS_IMAGES_DIR,
  loadDefaultImages,
  PKPASS_CONTENT_TYPE,
  type PassPackager,
} from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassInputError, type StoreCardPassJson } from '../../src/wallets/apple/pass/build-pass-json.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import type { StoreCardPassInput } from '../../src/wallets/apple/pass/types.js';
import {
  openssl,
  opensslPrintSignature,
  opensslVerifyPass,
  parsePassStrings,
  sampleStoreCardInput,
  unzipPkpass,
  writeFilesToTempDir,
} from '../support/pkpass-testing.js';
import { getTestCertificates, type TestCertificates } from '../support/test-certificates.js';

let certificates: TestCertificates;
let material: AppleSigningMaterial;
let packager: PassPackager;
let rootPemPath: string;
let defaultImages: Record<string, Buffer>;

beforeAll(async () => {
  certificates = await getTestCertificates();
  material = loadAppleCertificates(certificates.dir);
  defaultImages = loadDefaultImages(DEFAULT_PASS_IMAGES_DIR);
  packager = createPassPackager({ signer: new PassSigner(material), defaultImages });
  rootPemPath = path.join(certificates.dir, 'root.pem');
});

function input(overrides: Partial<StoreCardPassInput> = {}): StoreCardPassInput {
  return sampleStoreCardInput(certificates, overrides);
}

async function buildFiles(overrides: Partial<StoreCardPassInput> = {}, signingTime?: Date) {
  const pkpass = await packager.build(input(overrides), signingTime);
  const files = unzipPkpass(pkpass);
  const passJson = JSON.parse(files['pass.json']!.toString('utf8')) as StoreCardPassJson;
  return { pkpass, files, passJson };
}

function sha1Hex(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

const STYLE_KEYS = ['boardingPass', 'coupon', 'eventTicket', 'generic', 'storeCard'];

/** Every localizable string in pass.json (reference section 3: description, logoText, label, value, changeMessage, relevantText). */
function localizableStrings(passJson: StoreCardPassJson): string[] {
  const strings: string[] = [passJson.description];
  if (passJson.logoText) strings.push(passJson.logoText);
  const groups = passJson.storeCard;
  const fields = [...groups.headerFields, ...groups.primaryFields, ...groups.secondaryFields, ...groups.auxiliaryFields, ...groups.backFields];
  for (const field of fields) {
    if (field.label) strings.push(field.label);
    if (field.changeMessage) strings.push(field.changeMessage);
  }
  for (const location of passJson.locations ?? []) if (location.relevantText) strings.push(location.relevantText);
  return strings;
}

/** Field values that are localized texts (tier, promos, back texts), as opposed to literal data. */
function localizedFieldValues(passJson: StoreCardPassJson): string[] {
  const byKey = new Map(
    [...passJson.storeCard.headerFields, ...passJson.storeCard.auxiliaryFields, ...passJson.storeCard.backFields].map((field) => [field.key, field.value]),
  );
  return ['tier', 'promo', 'backPromo', 'backReferral', 'backContacts', 'backTerms'].map((key) => String(byKey.get(key)));
}

describe('pass.json content', () => {
  it('has formatVersion 1, every required top-level key and exactly one style key (storeCard)', async () => {
    const { passJson } = await buildFiles();
    expect(passJson.formatVersion).toBe(1);
    for (const key of ['passTypeIdentifier', 'teamIdentifier', 'serialNumber', 'organizationName', 'description'] as const) {
      expect(typeof passJson[key]).toBe('string');
      expect(passJson[key].length).toBeGreaterThan(0);
    }
    expect(STYLE_KEYS.filter((key) => key in passJson)).toEqual(['storeCard']);
  });

  it('uses the signer certificate subject UID as passTypeIdentifier and OU as teamIdentifier', async () => {
    const { passJson, files } = await buildFiles();
    // Read the certificate from the package's own signature, not from our loader.
    const dir = writeFilesToTempDir(files);
    const printed = openssl(['pkcs7', '-inform', 'DER', '-in', 'signature', '-print_certs'], dir);
    expect(printed.status).toBe(0);
    const signerPem = printed.stdout
      .split(/(?=-----BEGIN CERTIFICATE-----)/)
      .map((block) => block.slice(block.indexOf('-----BEGIN')))
      .find((pem) => pem.includes('BEGIN') && new X509Certificate(pem).subject.includes('UID='));
    expect(signerPem).toBeDefined();
    const signer = new X509Certificate(signerPem!);
    expect(passJson.passTypeIdentifier).toBe(subjectAttribute(signer, 'UID'));
    expect(passJson.teamIdentifier).toBe(subjectAttribute(signer, 'OU'));
    expect(passJson.passTypeIdentifier).toBe(certificates.passTypeIdentifier);
    expect(passJson.teamIdentifier).toBe(certificates.teamIdentifier);
  });

  it('carries an authenticationToken of ≥ 16 characters and an https webServiceURL without trailing slash', async () => {
    const { passJson } = await buildFiles({ webServiceURL: 'https://cards.example.com/apple/' });
    expect(passJson.authenticationToken.length).toBeGreaterThanOrEqual(16);
    expect(passJson.webServiceURL).toBe('https://cards.example.com/apple');
    expect(passJson.webServiceURL.startsWith('https://')).toBe(true);
    await expect(packager.build(input({ authenticationToken: 'too-short-token' }))).rejects.toThrow(PassInputError);
  });

  it('keeps token and serial number unchanged when the card data changes', async () => {
    const before = (await buildFiles()).passJson;
    const after = (await buildFiles({ card: { ...input().card, balance: 99_999, tierName: { ru: 'Генерал', en: 'General' } } })).passJson;
    expect(after.storeCard.primaryFields[0]!.value).not.toEqual(before.storeCard.primaryFields[0]!.value);
    expect(after.authenticationToken).toBe(before.authenticationToken);
    expect(after.serialNumber).toBe(before.serialNumber);
  });

  it('has unique field keys and at most 3 header, 1 primary, 4 secondary + auxiliary fields', async () => {
    const { passJson } = await buildFiles();
    const groups = passJson.storeCard;
    const keys = [...groups.headerFields, ...groups.primaryFields, ...groups.secondaryFields, ...groups.auxiliaryFields, ...groups.backFields].map((field) => field.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(groups.headerFields.length).toBeGreaterThanOrEqual(1);
    expect(groups.headerFields.length).toBeLessThanOrEqual(3);
    expect(groups.primaryFields).toHaveLength(1);
    expect(groups.secondaryFields.length + groups.auxiliaryFields.length).toBeLessThanOrEqual(4);
  });

  it('gives balance, tier and promo a changeMessage with %@, in both languages', async () => {
    const { passJson, files } = await buildFiles();
    const en = parsePassStrings(files['en.lproj/pass.strings']!);
    const ru = parsePassStrings(files['ru.lproj/pass.strings']!);
    const all = [...passJson.storeCard.headerFields, ...passJson.storeCard.primaryFields, ...passJson.storeCard.auxiliaryFields];
    for (const key of ['balance', 'tier', 'promo']) {
      const field = all.find((candidate) => candidate.key === key);
      expect(field, key).toBeDefined();
      expect(field!.changeMessage, key).toBeDefined();
      expect(en[field!.changeMessage!], `en ${key}`).toContain('%@');
      expect(ru[field!.changeMessage!], `ru ${key}`).toContain('%@');
    }
    // Russian wording puts the number last (no plural forms needed).
    const balance = passJson.storeCard.primaryFields[0]!;
    expect(ru[balance.changeMessage!]).toBe('Баланс баллов: %@');
    expect(balance.value).toBe(12_450);
    expect(balance.numberStyle).toBe('PKNumberStyleDecimal');
  });

  it('puts the tier in a header field (the only fields visible when passes are stacked)', async () => {
    const { passJson } = await buildFiles();
    expect(passJson.storeCard.headerFields.map((field) => field.key)).toContain('tier');
  });

  it('has barcodes[0] with a supported format, ASCII message, iso-8859-1 encoding and the card number as altText', async () => {
    const { passJson } = await buildFiles();
    const [barcode] = passJson.barcodes;
    expect(barcode).toEqual({
      format: 'PKBarcodeFormatQR',
      message: '2000012345674',
      messageEncoding: 'iso-8859-1',
      altText: '2000012345674',
    });
    expect('barcode' in passJson).toBe(false); // deprecated singular key
  });

  it('never ships Code128 alone (watchOS cannot show it): a QR fallback follows', async () => {
    const { passJson } = await buildFiles({ barcode: { message: '2000012345674', format: 'PKBarcodeFormatCode128' } });
    expect(passJson.barcodes.map((barcode) => barcode.format)).toEqual(['PKBarcodeFormatCode128', 'PKBarcodeFormatQR']);
  });

  it('rejects a non-ASCII barcode message', async () => {
    await expect(packager.build(input({ barcode: { message: 'Карта-1' } }))).rejects.toThrow(/ASCII/);
  });

  it('keeps at most 10 locations, no beacons beyond 10 and no relevantDate', async () => {
    const locations = Array.from({ length: 13 }, (_, index) => ({ latitude: 55 + index / 100, longitude: 37.6 }));
    const { passJson } = await buildFiles({ locations });
    expect(passJson.locations).toHaveLength(10);
    expect(passJson.locations![9]!.latitude).toBeCloseTo(55.09);
    expect(((passJson as unknown as { beacons?: unknown[] }).beacons ?? []).length).toBeLessThanOrEqual(10);
    expect('relevantDate' in passJson).toBe(false);
    expect('relevantDates' in passJson).toBe(false);
  });

  it('uses rgb(r, g, b) colours', async () => {
    const { passJson } = await buildFiles();
    expect(passJson.backgroundColor).toBe('rgb(15, 118, 110)');
    expect(passJson.foregroundColor).toBe('rgb(255, 255, 255)');
    expect(passJson.labelColor).toBe('rgb(204, 251, 241)');
  });
});

describe('images', () => {
  const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const pngSize = (png: Buffer) => ({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) });

  it('ships icon.png with @2x and @3x, all images are PNG, and no image lives in an .lproj', async () => {
    const { files } = await buildFiles();
    for (const name of ['icon.png', 'icon@2x.png', 'icon@3x.png']) expect(Object.keys(files)).toContain(name);
    const imageNames = Object.keys(files).filter((name) => /\.(png|jpe?g|gif)$/i.test(name));
    expect(imageNames.length).toBeGreaterThanOrEqual(3);
    for (const name of imageNames) {
      expect(name.endsWith('.png'), name).toBe(true);
      expect(files[name]!.subarray(0, 8).equals(PNG_SIGNATURE), name).toBe(true);
      expect(name.includes('/'), `${name} must be top level`).toBe(false);
    }
    const lprojFiles = Object.keys(files).filter((name) => name.includes('.lproj/'));
    expect(lprojFiles.sort()).toEqual(['en.lproj/pass.strings', 'ru.lproj/pass.strings']);
  });

  it('default images have Apple store-card sizes at 1x, 2x and 3x', () => {
    const expected: Record<string, [number, number]> = { icon: [29, 29], logo: [160, 50], strip: [375, 123] };
    for (const [name, [width, height]] of Object.entries(expected)) {
      for (const scale of [1, 2, 3]) {
        const fileName = scale === 1 ? `${name}.png` : `${name}@${scale}x.png`;
        expect(defaultImages[fileName], fileName).toBeDefined();
        expect(pngSize(defaultImages[fileName]!), fileName).toEqual({ width: width * scale, height: height * scale });
      }
    }
  });

  it('program images override the defaults of the same name', async () => {
    const customLogo = Buffer.from(defaultImages['icon.png']!); // any valid PNG, different content from logo.png
    const { files } = await buildFiles({ images: { 'logo.png': customLogo } });
    expect(files['logo.png']!.equals(customLogo)).toBe(true);
    const manifest = JSON.parse(files['manifest.json']!.toString('utf8')) as Record<string, string>;
    expect(manifest['logo.png']).toBe(sha1Hex(customLogo));
  });

  it('an uploaded image replaces its whole default family, so Retina devices never show the default brand', async () => {
    const customLogo = Buffer.from(defaultImages['icon.png']!);
    const customLogo2x = Buffer.from(defaultImages['icon@2x.png']!);
    const { files } = await buildFiles({ images: { 'logo.png': customLogo, 'logo@2x.png': customLogo2x } });
    expect(files['logo@2x.png']!.equals(customLogo2x)).toBe(true);
    expect(files['logo@3x.png']).toBeUndefined(); // the default @3x would win on a 3x screen
    // Other families keep their defaults.
    for (const name of ['icon.png', 'icon@2x.png', 'icon@3x.png', 'strip.png', 'strip@2x.png', 'strip@3x.png']) {
      expect(files[name]!.equals(defaultImages[name]!), name).toBe(true);
    }
  });

  it('rejects non-PNG uploads and names outside the store-card image set (e.g. paths into .lproj)', async () => {
    await expect(packager.build(input({ images: { 'logo.png': Buffer.from('GIF89a...') } }))).rejects.toThrow(/PNG/);
    for (const name of ['ru.lproj/logo.png', '../logo.png', 'thumbnail.png', 'background.png', 'logo.jpg']) {
      await expect(packager.build(input({ images: { [name]: defaultImages['logo.png']! } })), name).rejects.toThrow(PassInputError);
    }
  });

  it('refuses to build without icon.png', async () => {
    const { ['icon.png']: _icon, ...withoutIcon } = defaultImages;
    const packagerWithoutIcon = createPassPackager({ signer: new PassSigner(material), defaultImages: withoutIcon });
    await expect(packagerWithoutIcon.build(input())).rejects.toThrow(/icon\.png/);
  });
});

describe('pass.strings', () => {
  it('exist for en and ru and contain every localizable key of pass.json', async () => {
    const { files, passJson } = await buildFiles();
    const en = parsePassStrings(files['en.lproj/pass.strings']!);
    const ru = parsePassStrings(files['ru.lproj/pass.strings']!);
    for (const key of [...localizableStrings(passJson), ...localizedFieldValues(passJson)]) {
      expect(en, `en: ${key}`).toHaveProperty([key]);
      expect(ru, `ru: ${key}`).toHaveProperty([key]);
    }
    expect(Object.keys(en).sort()).toEqual(Object.keys(ru).sort());
  });

  it('parse back to the exact texts, including Cyrillic, quotes, backslashes and newlines', async () => {
    const sample = input();
    const { files, passJson } = await buildFiles();
    const en = parsePassStrings(files['en.lproj/pass.strings']!);
    const ru = parsePassStrings(files['ru.lproj/pass.strings']!);
    const byKey = new Map(passJson.storeCard.backFields.map((field) => [field.key, String(field.value)]));

    expect(ru[byKey.get('backTerms')!]).toBe(sample.back!.terms!.ru); // «», "…", \, ₽
    expect(en[byKey.get('backTerms')!]).toBe(sample.back!.terms!.en);
    expect(ru[byKey.get('backContacts')!]).toBe(sample.back!.contacts!.ru); // newline
    expect(ru[byKey.get('backReferral')!]).toBe(`${sample.back!.referral!.text.ru}\n${sample.back!.referral!.url}`);
    expect(ru[passJson.description]).toBe('Карта лояльности БлокПОСТ');
    expect(en[passJson.description]).toBe('BlokPOST loyalty card');
  });

  it('escape every special character so that the file stays parseable', async () => {
    const nasty = { ru: 'Кавычки " и \\ и \\" и\nновая\r\nстрока\tтаб \u0001 конец\\', en: 'Quote " back \\ both \\" and\nnew\r\nline\ttab \u0001 end\\' };
    const { files, passJson } = await buildFiles({ frontPromo: nasty });
    const promo = passJson.storeCard.auxiliaryFields.find((field) => field.key === 'promo')!;
    expect(parsePassStrings(files['ru.lproj/pass.strings']!)[String(promo.value)]).toBe(nasty.ru);
    expect(parsePassStrings(files['en.lproj/pass.strings']!)[String(promo.value)]).toBe(nasty.en);
  });

  it('are UTF-16LE with a byte-order mark (FF FE): the encoding decision, see passes/README.md', async () => {
    const { files } = await buildFiles();
    for (const language of ['en', 'ru']) {
      const data = files[`${language}.lproj/pass.strings`]!;
      expect([...data.subarray(0, 2)], language).toEqual([0xff, 0xfe]);
      expect(data.length % 2, language).toBe(0);
      const text = data.subarray(2).toString('utf16le');
      // Round-trips as UTF-16LE and is not UTF-8 in disguise: ASCII letters are followed by 00 bytes.
      expect(Buffer.from(text, 'utf16le').equals(data.subarray(2)), language).toBe(true);
      expect(data[3], language).toBe(0x00);
      expect(text.startsWith('"'), language).toBe(true);
    }
    expect(files['ru.lproj/pass.strings']!.subarray(2).toString('utf16le')).toContain('Баланс баллов: %@');
  });
});

describe('manifest.json', () => {
  it('lists every file except manifest.json and signature, with correct SHA-1, and nothing else', async () => {
    const { files } = await buildFiles();
    const manifest = JSON.parse(files['manifest.json']!.toString('utf8')) as Record<string, string>;
    const packaged = Object.keys(files).filter((name) => name !== 'manifest.json' && name !== 'signature').sort();
    expect(Object.keys(manifest).sort()).toEqual(packaged);
    for (const [name, digest] of Object.entries(manifest)) expect(digest, name).toBe(sha1Hex(files[name]!));
    expect(Object.keys(files)).toContain('signature');
  });

  it('detects a tampered file (the manifest check fails)', async () => {
    const { files } = await buildFiles();
    const manifest = JSON.parse(files['manifest.json']!.toString('utf8')) as Record<string, string>;
    const tampered = Buffer.from(files['pass.json']!.toString('utf8').replace('12450', '99999'));
    expect(sha1Hex(tampered)).not.toBe(manifest['pass.json']);
  });
});

describe('signature', () => {
  it('verifies with openssl cms -verify against the test root', async () => {
    const { files } = await buildFiles();
    const dir = writeFilesToTempDir(files);
    const result = opensslVerifyPass(dir, rootPemPath);
    expect(result.stderr).toContain('Verification successful');
    expect(result.status).toBe(0);
  });

  it('fails verification when manifest.json is tampered with', async () => {
    const { files } = await buildFiles();
    const dir = writeFilesToTempDir(files);
    const manifest = JSON.parse(files['manifest.json']!.toString('utf8')) as Record<string, string>;
    manifest['pass.json'] = '0'.repeat(40);
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    const result = opensslVerifyPass(dir, rootPemPath);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/verification failure/i);
  });

  it('fails verification against a root that did not issue the chain', async () => {
    const { files } = await buildFiles();
    const dir = writeFilesToTempDir(files);
    // The APNs server certificate is a leaf, not the root of the pass chain.
    const result = opensslVerifyPass(dir, path.join(certificates.dir, 'apns-server.pem'));
    expect(result.status).not.toBe(0);
  });

  it('is detached SHA-1 SignedData with contentType, signingTime and messageDigest', async () => {
    const signingTime = new Date('2031-02-03T04:05:06Z');
    const { files } = await buildFiles({}, signingTime);
    const printed = opensslPrintSignature(writeFilesToTempDir(files));
    expect(printed).toMatch(/contentType: pkcs7-signedData/);
    expect(printed).toMatch(/eContent: <ABSENT>/);
    expect(printed).toMatch(/algorithm: sha1 \(1\.3\.14\.3\.2\.26\)/);
    expect(printed).toMatch(/object: contentType \(1\.2\.840\.113549\.1\.9\.3\)/);
    expect(printed).toMatch(/object: signingTime \(1\.2\.840\.113549\.1\.9\.5\)/);
    expect(printed).toMatch(/object: messageDigest \(1\.2\.840\.113549\.1\.9\.4\)/);
    expect(printed).toMatch(/UTCTIME:Feb\s+3 04:05:06 2031 GMT/);
    const digest = createHash('sha1').update(files['manifest.json']!).digest('hex').toUpperCase();
    const printedHex = printed.replace(/[\s:-]/g, '').toUpperCase();
    expect(printedHex).toContain(digest.slice(0, 16));
  });

  it('stores the signed attributes in DER SET OF order (OpenSSL verifies even unsorted ones, so check it directly)', async () => {
    const { files } = await buildFiles();
    const parsed = openssl(['asn1parse', '-inform', 'DER', '-in', 'signature'], writeFilesToTempDir(files));
    expect(parsed.status).toBe(0);
    const attributeOrder = parsed.stdout
      .split('\n')
      .map((line) => /OBJECT\s+:(contentType|signingTime|messageDigest)\s*$/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined);
    // Sorted by encoding: the SEQUENCE lengths differ (contentType 0x18 < signingTime 0x1c < messageDigest 0x23),
    // the same order `openssl smime -sign` produces.
    expect(attributeOrder).toEqual(['contentType', 'signingTime', 'messageDigest']);
  });

  it('encodes signingTime from 2050 on as GeneralizedTime and still verifies', async () => {
    const { files } = await buildFiles({}, new Date('2051-06-07T08:09:10Z'));
    const dir = writeFilesToTempDir(files);
    expect(opensslPrintSignature(dir)).toMatch(/GENERALIZEDTIME:Jun\s+7 08:09:10 2051 GMT/);
    expect(opensslVerifyPass(dir, rootPemPath).status).toBe(0);
  });

  it('embeds exactly the signer and WWDR certificates, byte-identical to the files', async () => {
    const { files } = await buildFiles();
    const dir = writeFilesToTempDir(files);
    const printed = openssl(['pkcs7', '-inform', 'DER', '-in', 'signature', '-print_certs'], dir);
    expect(printed.status).toBe(0);
    const pems = printed.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    const ders = pems.map((pem) => new X509Certificate(pem).raw);
    expect(ders).toHaveLength(2);
    expect(ders.some((der) => der.equals(material.signerCertDer))).toBe(true);
    expect(ders.some((der) => der.equals(material.wwdrCertDer))).toBe(true);
  });

  it('changes with signingTime while pass content stays the same ("unchanged" is decided from data, not bytes)', async () => {
    const first = await buildFiles({}, new Date('2030-01-01T00:00:00Z'));
    const second = await buildFiles({}, new Date('2030-01-01T00:00:01Z'));
    expect(first.files['manifest.json']!.equals(second.files['manifest.json']!)).toBe(true);
    expect(first.files['signature']!.equals(second.files['signature']!)).toBe(false);
  });
});

describe('package', () => {
  it('is a zip whose entries are exactly the manifest files + manifest.json + signature', async () => {
    const { pkpass, files } = await buildFiles();
    expect(pkpass.subarray(0, 4).toString('latin1')).toBe('PK\u0003\u0004');
    expect(Object.keys(files)).toContain('manifest.json');
  });

  it('passes unzip -t (every CRC-32 right) with stored entries', async () => {
    const { pkpass } = await buildFiles();
    const dir = writeFilesToTempDir({ 'card.pkpass': pkpass });
    const tested = spawnSync('unzip', ['-t', path.join(dir, 'card.pkpass')], { encoding: 'utf8' });
    expect(tested.stdout).toContain('No errors detected');
    expect(tested.status).toBe(0);
  });

  it('declares the download content type application/vnd.apple.pkpass', () => {
    expect(PKPASS_CONTENT_TYPE).toBe('application/vnd.apple.pkpass');
  });
});
