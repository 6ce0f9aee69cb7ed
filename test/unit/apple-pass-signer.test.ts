/**
 * The `signature` file from the per-signer template (issue #14) is byte-identical to the one the DER
 * encoder builds field by field, for both signingTime types and both places the RSA operation can
 * run; and it still verifies with OpenSSL (reference /work/shared/reference/apple-wallet.md, section 4).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAppleCertificates, type AppleSigningMaterial } from '../../src/wallets/apple/certificates.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import { opensslPrintSignature, opensslVerifyPass, writeFilesToTempDir } from '../support/pkpass-testing.js';
import { getTestCertificates, type TestCertificates } from '../support/test-certificates.js';

let certificates: TestCertificates;
let material: AppleSigningMaterial;

beforeAll(async () => {
  certificates = await getTestCertificates();
  material = loadAppleCertificates(certificates.dir);
});

const SIGNING_TIMES = [
  new Date('2026-12-05T15:04:05.678Z'),
  new Date('1950-01-01T00:00:00Z'), // first UTCTime year
  new Date('2049-12-31T23:59:59.999Z'), // last UTCTime second
  new Date('2050-01-01T00:00:00Z'), // first GeneralizedTime year
  new Date('2051-06-07T08:09:10Z'),
  new Date('1949-12-31T23:59:59Z'), // GeneralizedTime before 1950
];

const MANIFESTS = [
  Buffer.from('{"pass.json":"0000000000000000000000000000000000000000"}'),
  Buffer.alloc(0),
  Buffer.from(JSON.stringify({ 'pass.json': 'a'.repeat(40), 'icon.png': 'b'.repeat(40), 'ru.lproj/pass.strings': 'c'.repeat(40) })),
];

describe('PassSigner template', () => {
  for (const signOn of ['threadpool', 'main'] as const) {
    it(`writes the same bytes as the field-by-field DER encoding (RSA on ${signOn})`, async () => {
      const signer = new PassSigner(material, { signOn });
      for (const signingTime of SIGNING_TIMES) {
        for (const manifest of MANIFESTS) {
          const reference = signer.signWithEncoder(manifest, signingTime);
          const fromTemplate = await signer.sign(manifest, signingTime);
          expect(fromTemplate.equals(reference), `${signingTime.toISOString()} / ${manifest.length} B`).toBe(true);
        }
      }
    });
  }

  it('is canonical DER: node-forge parses it and re-encodes the same bytes', async () => {
    const signer = new PassSigner(material);
    for (const signingTime of [SIGNING_TIMES[0]!, SIGNING_TIMES[4]!]) {
      const signature = await signer.sign(MANIFESTS[0]!, signingTime);
      const parsed = forge.asn1.fromDer(forge.util.createBuffer(signature.toString('binary')), true);
      expect(Buffer.from(forge.asn1.toDer(parsed).getBytes(), 'binary').equals(signature)).toBe(true);
    }
  });

  it('concurrent signatures for different manifests and times do not mix', async () => {
    const signer = new PassSigner(material);
    const manifests = Array.from({ length: 12 }, (_, index) => Buffer.from(`{"pass.json":"${String(index).padStart(40, '0')}"}`));
    const times = manifests.map((_, index) => new Date(Date.UTC(2030 + index * 3, index, index + 1, index, index, index)));
    const signatures = await Promise.all(manifests.map((manifest, index) => signer.sign(manifest, times[index]!)));
    for (const [index, signature] of signatures.entries()) {
      expect(signature.equals(signer.signWithEncoder(manifests[index]!, times[index]!))).toBe(true);
    }
  });

  for (const signOn of ['threadpool', 'main'] as const) {
    it(`verifies with openssl cms -verify (RSA on ${signOn}), for UTCTime and GeneralizedTime`, async () => {
      const signer = new PassSigner(material, { signOn });
      for (const signingTime of [SIGNING_TIMES[0]!, SIGNING_TIMES[4]!]) {
        const manifest = MANIFESTS[2]!;
        const dir = writeFilesToTempDir({ 'manifest.json': manifest, signature: await signer.sign(manifest, signingTime) });
        const result = opensslVerifyPass(dir, path.join(certificates.dir, 'root.pem'));
        expect(result.stderr).toContain('Verification successful');
        expect(result.status).toBe(0);
        const printedHex = opensslPrintSignature(dir).replace(/[\s:-]/g, '').toUpperCase();
        expect(printedHex).toContain(createHash('sha1').update(manifest).digest('hex').toUpperCase().slice(0, 16));
      }
    });
  }
});
