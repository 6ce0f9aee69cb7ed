/**
 * Test certificate chain shared by all tests in one process (vitest runs each file in its own
 * process, so this is once per test file). Generation takes a fraction of a second with native RSA
 * keys, but there is no reason to repeat it per test.
 *
 * The folder holds (see src/wallets/apple/certificates.ts): root.pem/root.key (test root CA),
 * wwdr.pem/wwdr.key, signerCert.pem/signerKey.pem (Pass Type ID certificate, unencrypted key) and
 * apns-server.pem/apns-server.key (TLS for a local APNs stand-in, CN=localhost, signed by root.pem).
 */
import { generateDevCertificates } from '../../src/wallets/apple/certificates.js';
import { createTestTempDir } from './temp-dirs.js';

export interface TestCertificates {
  dir: string;
  passTypeIdentifier: string;
  teamIdentifier: string;
}

export const TEST_PASS_TYPE_IDENTIFIER = 'pass.dev.walletcards.test';
export const TEST_TEAM_IDENTIFIER = 'TEAMID1234';

let cached: Promise<TestCertificates> | undefined;

export function getTestCertificates(): Promise<TestCertificates> {
  cached ??= (async () => {
    const dir = createTestTempDir('walletcards-test-certs');
    await generateDevCertificates(dir, {
      passTypeIdentifier: TEST_PASS_TYPE_IDENTIFIER,
      teamIdentifier: TEST_TEAM_IDENTIFIER,
      organizationName: 'Walletcards Test',
    });
    return { dir, passTypeIdentifier: TEST_PASS_TYPE_IDENTIFIER, teamIdentifier: TEST_TEAM_IDENTIFIER };
  })();
  // A failed generation should not be cached forever within the process.
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}
