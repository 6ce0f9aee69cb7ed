/**
 * Cross-check against passkit-generator 3.6.1, the most complete open-source generator (reference
 * /work/shared/reference/apple-wallet.md, section 5): the same card, built by both with the same
 * certificates, must verify with OpenSSL and carry the same pass.json content.
 *
 * The card goes into passkit-generator through its validating API (field arrays, setBarcodes,
 * setLocations, localize), not as a finished pass.json, so its Joi schemas also check our field
 * shapes: a field it considers invalid is dropped (with a console warning) and the comparison fails.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PKPass } from 'passkit-generator';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAppleCertificates } from '../../src/wallets/apple/certificates.js';
import { buildStoreCardPassJson, escapePassStringsValue } from '../../src/wallets/apple/pass/build-pass-json.js';
import { createPassPackager, loadDefaultImages } from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import { opensslVerifyPass, parsePassStrings, sampleStoreCardInput, unzipPkpass, writeFilesToTempDir } from '../support/pkpass-testing.js';
import { getTestCertificates, type TestCertificates } from '../support/test-certificates.js';

let certificates: TestCertificates;
let ours: Record<string, Buffer>;
let theirs: Record<string, Buffer>;

/**
 * What passkit-generator may add to or normalize in pass.json, removed before comparing. With this
 * card, 3.6.1 adds and changes nothing (it re-serializes the same keys in the same order), so the
 * list is empty; if a later version adds a key (e.g. a default it fills in), list it here with the
 * reason rather than loosening the comparison.
 */
const KEYS_PASSKIT_GENERATOR_ADDS: string[] = [];

function comparable(passJson: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...passJson };
  for (const key of KEYS_PASSKIT_GENERATOR_ADDS) delete copy[key];
  return copy;
}

beforeAll(async () => {
  certificates = await getTestCertificates();
  const input = sampleStoreCardInput(certificates);
  const images = loadDefaultImages();

  const material = loadAppleCertificates(certificates.dir);
  const packager = createPassPackager({ signer: new PassSigner(material), defaultImages: images });
  ours = unzipPkpass(await packager.build(input));

  const { passJson, localizedStrings } = buildStoreCardPassJson(input);
  const { storeCard, barcodes, locations, ...topLevel } = passJson;
  const pass = new PKPass(
    { 'pass.json': Buffer.from(JSON.stringify({ ...topLevel, storeCard: {} })), ...images },
    {
      wwdr: readFileSync(path.join(certificates.dir, 'wwdr.pem')),
      signerCert: readFileSync(path.join(certificates.dir, 'signerCert.pem')),
      signerKey: readFileSync(path.join(certificates.dir, 'signerKey.pem')),
    },
  );
  pass.headerFields.push(...storeCard.headerFields);
  pass.primaryFields.push(...storeCard.primaryFields);
  pass.secondaryFields.push(...storeCard.secondaryFields);
  pass.auxiliaryFields.push(...storeCard.auxiliaryFields);
  pass.backFields.push(...storeCard.backFields);
  pass.setBarcodes(...barcodes);
  pass.setLocations(...(locations ?? []));
  for (const language of ['en', 'ru'] as const) {
    // passkit-generator writes `"key" = "value";` without escaping (reference section 5), so it gets
    // pre-escaped texts; otherwise quotes and newlines in our sample would corrupt its file.
    const escaped = Object.fromEntries(
      Object.entries(localizedStrings[language]).map(([key, value]) => [escapePassStringsValue(key), escapePassStringsValue(value)]),
    );
    pass.localize(language, escaped);
  }
  theirs = unzipPkpass(pass.getAsBuffer());
});

describe('cross-check with passkit-generator', () => {
  it('both packages verify with openssl against the test root', () => {
    const rootPem = path.join(certificates.dir, 'root.pem');
    const oursResult = opensslVerifyPass(writeFilesToTempDir(ours), rootPem);
    const theirsResult = opensslVerifyPass(writeFilesToTempDir(theirs), rootPem);
    expect(oursResult.stderr).toContain('Verification successful');
    expect(theirsResult.stderr).toContain('Verification successful');
  });

  it('both carry the same pass.json content', () => {
    const oursJson = JSON.parse(ours['pass.json']!.toString('utf8')) as Record<string, unknown>;
    const theirsJson = JSON.parse(theirs['pass.json']!.toString('utf8')) as Record<string, unknown>;
    expect(comparable(theirsJson)).toEqual(comparable(oursJson));
  });

  it('both contain the same files, and the same localization tables (ours UTF-16LE, theirs UTF-8)', () => {
    expect(Object.keys(theirs).sort()).toEqual(Object.keys(ours).sort());
    for (const language of ['en', 'ru']) {
      const file = `${language}.lproj/pass.strings`;
      expect([...ours[file]!.subarray(0, 2)]).toEqual([0xff, 0xfe]);
      expect(theirs[file]![0]).not.toBe(0xff); // passkit-generator can only write UTF-8
      expect(parsePassStrings(theirs[file]!)).toEqual(parsePassStrings(ours[file]!));
    }
  });

  it('both list the same SHA-1 for every shared unchanged file (images)', () => {
    const oursManifest = JSON.parse(ours['manifest.json']!.toString('utf8')) as Record<string, string>;
    const theirsManifest = JSON.parse(theirs['manifest.json']!.toString('utf8')) as Record<string, string>;
    for (const name of Object.keys(oursManifest).filter((file) => file.endsWith('.png'))) {
      expect(theirsManifest[name], name).toBe(oursManifest[name]);
    }
  });
});
