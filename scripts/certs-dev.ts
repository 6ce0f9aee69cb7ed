/**
 * `npm run certs:dev [-- --force]`: writes a development Apple certificate chain (test root CA,
 * WWDR-like intermediate, Pass Type ID signer, local APNs TLS pair) into APPLE_CERT_DIR.
 *
 * These certificates let the whole service run and be tested locally; real iPhones will refuse
 * passes signed with them (they do not chain to Apple's root). Never commit real certificates.
 *
 * Environment: APPLE_CERT_DIR (default ./certs), APPLE_PASS_TYPE_ID (default
 * pass.dev.walletcards.demo), APPLE_TEAM_ID (default DEVTEAM123).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { APPLE_CERTIFICATE_FILES, generateDevCertificates } from '../src/wallets/apple/certificates.js';

async function main(): Promise<void> {
  const force = process.argv.slice(2).includes('--force');
  const dir = path.resolve(process.env.APPLE_CERT_DIR || './certs');
  const passTypeIdentifier = process.env.APPLE_PASS_TYPE_ID || 'pass.dev.walletcards.demo';
  const teamIdentifier = process.env.APPLE_TEAM_ID || 'DEVTEAM123';

  const signerCertPath = path.join(dir, APPLE_CERTIFICATE_FILES.signerCert);
  if (existsSync(signerCertPath) && !force) {
    // The folder may hold real, mounted certificates: overwriting them would break signing and pushes.
    console.error(`${signerCertPath} already exists; not overwriting it. Re-run with --force to replace the certificates in ${dir}.`);
    process.exitCode = 1;
    return;
  }

  await generateDevCertificates(dir, { passTypeIdentifier, teamIdentifier });
  console.log(`Development certificates written to ${dir}`);
  console.log(`  pass type ID (subject UID): ${passTypeIdentifier}`);
  console.log(`  team ID (subject OU):       ${teamIdentifier}`);
  console.log('  files: ' + Object.values(APPLE_CERTIFICATE_FILES).join(', '));
  console.log('Passes signed with these certificates verify with `openssl cms -verify ... -CAfile root.pem` but do not install on a real device.');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
