/**
 * Development certificate chain, loading and startup checks (reference
 * /work/shared/reference/apple-wallet.md, sections 4, 7 "Operations" and 8.1).
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AppleCertificateError,
  checkAppleCertificates,
  ensureDevCertificates,
  generateDevCertificates,
  loadAppleCertificates,
  type AppleSigningMaterial,
} from '../../src/wallets/apple/certificates.js';
import { openssl } from '../support/pkpass-testing.js';
import { getTestCertificates, type TestCertificates } from '../support/test-certificates.js';

const DAY_MS = 86_400_000;
const execFileAsync = promisify(execFile);
const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');

const scratchDirs: string[] = [];
function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'walletcards-cert-test-'));
  scratchDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

/** Copies signerCert.pem, signerKey.pem and wwdr.pem into a new folder so a test can break one of them. */
function copyOfSigningFiles(source: string): string {
  const dir = scratchDir();
  for (const name of ['signerCert.pem', 'signerKey.pem', 'wwdr.pem', 'root.pem']) copyFileSync(path.join(source, name), path.join(dir, name));
  return dir;
}

let certificates: TestCertificates;
let material: AppleSigningMaterial;
const expected = () => ({ passTypeIdentifier: certificates.passTypeIdentifier, teamIdentifier: certificates.teamIdentifier });

beforeAll(async () => {
  certificates = await getTestCertificates();
  material = loadAppleCertificates(certificates.dir);
});

describe('generateDevCertificates', () => {
  it('writes the chain, the signer and the APNs TLS pair; keys are mode 0600', () => {
    const names = readdirSync(certificates.dir).sort();
    expect(names).toEqual(
      ['apns-server.key', 'apns-server.pem', 'root.key', 'root.pem', 'signerCert.pem', 'signerKey.pem', 'wwdr.key', 'wwdr.pem'].sort(),
    );
    for (const key of ['root.key', 'wwdr.key', 'signerKey.pem', 'apns-server.key']) {
      expect(statSync(path.join(certificates.dir, key)).mode & 0o777, key).toBe(0o600);
      expect(readFileSync(path.join(certificates.dir, key), 'utf8'), key).toMatch(/^-----BEGIN (RSA )?PRIVATE KEY-----/);
    }
  });

  it('builds a signer chain that OpenSSL verifies up to the test root', () => {
    const result = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'wwdr.pem', '-purpose', 'any', 'signerCert.pem'], certificates.dir);
    expect(result.stdout).toContain('signerCert.pem: OK');
    expect(result.status).toBe(0);
  });

  it('shapes the signer like an Apple Pass Type ID certificate', () => {
    const signer = new X509Certificate(readFileSync(path.join(certificates.dir, 'signerCert.pem')));
    expect(signer.subject.split('\n')).toEqual([
      'UID=pass.dev.walletcards.test',
      'CN=Pass Type ID: pass.dev.walletcards.test',
      'OU=TEAMID1234',
      'O=Walletcards Test',
      'C=US',
    ]);
    expect(signer.issuer).toContain('CN=Test Apple Worldwide Developer Relations Certification Authority');
    expect(signer.issuer).toContain('OU=G4');
    const text = openssl(['x509', '-in', 'signerCert.pem', '-noout', '-text'], certificates.dir).stdout;
    expect(text).toMatch(/Extended Key Usage:\s*\n\s*TLS Web Client Authentication, 1\.2\.840\.113635\.100\.4\.14/);
    // Extension 1.2.840.113635.100.6.1.16 holds the pass type ID as UTF8String (0C 19 = UTF8String, 25 bytes).
    const der = signer.raw.toString('hex');
    const passTypeIdUtf8 = Buffer.from('pass.dev.walletcards.test').toString('hex');
    expect(der).toContain('060a2a864886f763640601100' + '41b0c19' + passTypeIdUtf8);
    expect(text).toMatch(/1\.2\.840\.113635\.100\.6\.3\.1:/);
    expect(text).toMatch(/1\.2\.840\.113635\.100\.6\.3\.2:/);
    expect(text).toContain('CA:FALSE');
    // Validity: about one year, starting a day in the past.
    const lifetimeDays = (Date.parse(signer.validTo) - Date.parse(signer.validFrom)) / DAY_MS;
    expect(lifetimeDays).toBe(365);
    expect(Date.parse(signer.validFrom)).toBeLessThan(Date.now() - DAY_MS / 2);
  });

  it('makes the WWDR stand-in a G4 CA limited to path length 0, valid 10 years', () => {
    const wwdr = new X509Certificate(readFileSync(path.join(certificates.dir, 'wwdr.pem')));
    expect(wwdr.subject).toContain('CN=Test Apple Worldwide Developer Relations Certification Authority');
    expect(wwdr.subject).toContain('OU=G4');
    expect(wwdr.ca).toBe(true);
    expect(openssl(['x509', '-in', 'wwdr.pem', '-noout', '-text'], certificates.dir).stdout).toContain('CA:TRUE, pathlen:0');
    expect((Date.parse(wwdr.validTo) - Date.parse(wwdr.validFrom)) / DAY_MS).toBe(3650);
  });

  it('makes a localhost TLS server certificate signed by the test root', () => {
    const result = openssl(['verify', '-CAfile', 'root.pem', '-purpose', 'sslserver', 'apns-server.pem'], certificates.dir);
    expect(result.status).toBe(0);
    const server = new X509Certificate(readFileSync(path.join(certificates.dir, 'apns-server.pem')));
    expect(server.subject).toBe('CN=localhost');
    expect(server.subjectAltName).toContain('DNS:localhost');
    expect(server.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkPrivateKey(createPrivateKey(readFileSync(path.join(certificates.dir, 'apns-server.key'))))).toBe(true);
  });
});

describe('ensureDevCertificates and npm run certs:dev', () => {
  it('generates only when the folder has no signerCert.pem', async () => {
    const dir = path.join(scratchDir(), 'certs');
    const options = { passTypeIdentifier: 'pass.dev.walletcards.ensure', teamIdentifier: 'ENSURE1234' };
    expect(await ensureDevCertificates(dir, options)).toBe(true);
    const before = readFileSync(path.join(dir, 'signerCert.pem'));
    expect(await ensureDevCertificates(dir, options)).toBe(false);
    expect(readFileSync(path.join(dir, 'signerCert.pem')).equals(before)).toBe(true);
  });

  it('the CLI writes into APPLE_CERT_DIR, refuses to overwrite, and replaces with --force', async () => {
    const dir = path.join(scratchDir(), 'certs');
    const env = { ...process.env, APPLE_CERT_DIR: dir, APPLE_PASS_TYPE_ID: 'pass.dev.walletcards.cli', APPLE_TEAM_ID: 'CLITEAM123' };
    const tsx = path.join(PROJECT_ROOT, 'node_modules/.bin/tsx');
    const script = path.join(PROJECT_ROOT, 'scripts/certs-dev.ts');
    await execFileAsync(tsx, [script], { env, cwd: PROJECT_ROOT });
    const loaded = loadAppleCertificates(dir);
    expect(loaded.passTypeIdentifier).toBe('pass.dev.walletcards.cli');
    expect(loaded.teamIdentifier).toBe('CLITEAM123');
    const first = readFileSync(path.join(dir, 'signerCert.pem'));

    const refused = await execFileAsync(tsx, [script], { env, cwd: PROJECT_ROOT }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--force/);
    expect(readFileSync(path.join(dir, 'signerCert.pem')).equals(first)).toBe(true);

    await execFileAsync(tsx, [script, '--force'], { env, cwd: PROJECT_ROOT });
    expect(readFileSync(path.join(dir, 'signerCert.pem')).equals(first)).toBe(false);
  });
});

describe('loadAppleCertificates', () => {
  it('returns DER bytes, key object, identifiers and expiry dates', () => {
    expect(material.passTypeIdentifier).toBe(certificates.passTypeIdentifier);
    expect(material.teamIdentifier).toBe(certificates.teamIdentifier);
    expect(material.signerKey.type).toBe('private');
    expect(new X509Certificate(material.signerCertPem).raw.equals(material.signerCertDer)).toBe(true);
    expect(new X509Certificate(material.wwdrPem).raw.equals(material.wwdrCertDer)).toBe(true);
    expect(material.signerKeyPem).toContain('PRIVATE KEY');
    expect(material.signerNotAfter.getTime()).toBeGreaterThan(Date.now() + 300 * DAY_MS);
    expect(material.wwdrNotAfter.getTime()).toBeGreaterThan(material.signerNotAfter.getTime());
  });

  it('names the missing file', () => {
    const dir = copyOfSigningFiles(certificates.dir);
    rmSync(path.join(dir, 'wwdr.pem'));
    expect(() => loadAppleCertificates(dir)).toThrow(AppleCertificateError);
    expect(() => loadAppleCertificates(dir)).toThrow(/wwdr\.pem is missing/);
  });

  it('rejects a key that does not belong to the certificate', () => {
    const dir = copyOfSigningFiles(certificates.dir);
    copyFileSync(path.join(certificates.dir, 'wwdr.key'), path.join(dir, 'signerKey.pem'));
    expect(() => loadAppleCertificates(dir)).toThrow(AppleCertificateError);
    expect(() => loadAppleCertificates(dir)).toThrow(/does not belong/);
  });

  describe('with an encrypted key', () => {
    let dir: string;
    beforeAll(() => {
      dir = copyOfSigningFiles(certificates.dir);
      const key = createPrivateKey(readFileSync(path.join(certificates.dir, 'signerKey.pem')));
      writeFileSync(
        path.join(dir, 'signerKey.pem'),
        key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' }),
      );
    });

    it('loads with the right passphrase', () => {
      const loaded = loadAppleCertificates(dir, 'correct horse');
      expect(loaded.passTypeIdentifier).toBe(certificates.passTypeIdentifier);
      expect(loaded.signerKeyPem).toContain('ENCRYPTED PRIVATE KEY');
    });

    it('explains a wrong passphrase, with the openssl -legacy hint for Keychain exports', () => {
      let error: unknown;
      try {
        loadAppleCertificates(dir, 'wrong passphrase');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(AppleCertificateError);
      expect((error as Error).message).toMatch(/wrong passphrase/);
      expect((error as Error).message).toContain('openssl pkcs12 -legacy');
    });

    it('asks for APPLE_KEY_PASSPHRASE when none is given', () => {
      expect(() => loadAppleCertificates(dir)).toThrow(/APPLE_KEY_PASSPHRASE/);
    });
  });
});

describe('checkAppleCertificates', () => {
  it('passes with matching identifiers and no warnings for fresh certificates', () => {
    expect(checkAppleCertificates(material, expected(), new Date())).toEqual({ warnings: [] });
  });

  it('throws when the certificate UID differs from the configured pass type ID', () => {
    expect(() => checkAppleCertificates(material, { ...expected(), passTypeIdentifier: 'pass.other.id' }, new Date())).toThrow(AppleCertificateError);
    expect(() => checkAppleCertificates(material, { ...expected(), passTypeIdentifier: 'pass.other.id' }, new Date())).toThrow(/UID/);
  });

  it('throws when the certificate OU differs from the configured team ID', () => {
    expect(() => checkAppleCertificates(material, { ...expected(), teamIdentifier: 'OTHERTEAM1' }, new Date())).toThrow(/OU/);
  });

  it('throws when the key does not match the certificate', () => {
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(() => checkAppleCertificates({ ...material, signerKey: otherKey }, expected(), new Date())).toThrow(AppleCertificateError);
  });

  it('throws when wwdr.pem is not the intermediate that issued the signer', () => {
    const notTheIssuer = new X509Certificate(readFileSync(path.join(certificates.dir, 'root.pem'))).raw;
    expect(() => checkAppleCertificates({ ...material, wwdrCertDer: notTheIssuer }, expected(), new Date())).toThrow(/did not issue/);
  });

  it('warns 30 days before a short-lived signer expires, and throws once it has expired', async () => {
    const dir = scratchDir();
    await generateDevCertificates(dir, { ...expected(), signerValidityDays: 20 });
    const shortLived = loadAppleCertificates(dir);
    const now = new Date();
    const { warnings } = checkAppleCertificates(shortLived, expected(), now);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/Pass Type ID certificate/);
    expect(warnings[0]).toMatch(/in 18 days/); // 20 days from yesterday
    expect(() => checkAppleCertificates(shortLived, expected(), new Date(shortLived.signerNotAfter.getTime() + 1000))).toThrow(/expired/);
  });

  it('does not warn 31 days ahead but does at 30', () => {
    const notAfter = material.signerNotAfter.getTime();
    expect(checkAppleCertificates(material, expected(), new Date(notAfter - 31 * DAY_MS)).warnings).toEqual([]);
    expect(checkAppleCertificates(material, expected(), new Date(notAfter - 30 * DAY_MS)).warnings).toHaveLength(1);
  });

  it('warns about the WWDR intermediate too', () => {
    const now = new Date();
    const wwdrEndingSoon = { ...material, wwdrNotAfter: new Date(now.getTime() + 10 * DAY_MS) };
    const { warnings } = checkAppleCertificates(wwdrEndingSoon, expected(), now);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/WWDR/);
    expect(() => checkAppleCertificates({ ...material, wwdrNotAfter: new Date(now.getTime() - 1) }, expected(), now)).toThrow(/WWDR.*expired/);
  });
});
