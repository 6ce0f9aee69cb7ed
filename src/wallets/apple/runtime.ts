import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config.js';
import { createApnsSender, type ApnsSender } from './apns.js';
import {
  checkAppleCertificates,
  ensureDevCertificates,
  loadAppleCertificates,
  type AppleSigningMaterial,
} from './certificates.js';
import { createPassPackager, DEFAULT_PASS_IMAGES_DIR, loadDefaultImages } from './pass/build-pkpass.js';

export { DEFAULT_PASS_IMAGES_DIR };
import { PassSigner } from './pass/signer.js';
import type { PassPackager } from './pass-service.js';


export interface AppleRuntime {
  material: AppleSigningMaterial;
  packager: PassPackager;
  apns: ApnsSender;
}

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Loads (or, in development, first creates) the Pass Type ID certificate, checks it against the
 * configuration, and builds the pass packager and the APNs sender from it.
 */
export async function createAppleRuntime(config: Config, logger: Logger): Promise<AppleRuntime> {
  const certDir = path.resolve(config.APPLE_CERT_DIR);
  if (config.NODE_ENV !== 'production') {
    const created = await ensureDevCertificates(certDir, {
      passTypeIdentifier: config.APPLE_PASS_TYPE_ID ?? 'pass.dev.walletcards.demo',
      teamIdentifier: config.APPLE_TEAM_ID ?? 'DEVTEAM123',
    });
    if (created) logger.warn({ dir: certDir }, 'generated DEVELOPMENT Apple certificates: passes will not install on a real iPhone');
  }
  const material = loadAppleCertificates(certDir, config.APPLE_KEY_PASSPHRASE);
  // Refuses a mismatched or expired certificate. Its expiry warnings are logged by the certificate
  // monitor the app starts (certificate-monitor.ts), at start-up and as each band is crossed.
  checkAppleCertificates(material, { passTypeIdentifier: config.APPLE_PASS_TYPE_ID, teamIdentifier: config.APPLE_TEAM_ID }, new Date());
  logger.info(
    { passTypeIdentifier: material.passTypeIdentifier, teamIdentifier: material.teamIdentifier, expires: material.signerNotAfter },
    'Apple Pass Type ID certificate loaded',
  );
  const packager = createPassPackager({
    signer: new PassSigner(material),
    defaultImages: loadDefaultImages(DEFAULT_PASS_IMAGES_DIR),
  });
  const apns = createApnsSender({
    certPem: material.signerCertPem,
    keyPem: material.signerKeyPem,
    passphrase: config.APPLE_KEY_PASSPHRASE,
    host: config.APNS_HOST,
    port: config.APNS_PORT,
    caPem: config.APNS_CA_FILE ? readFileSync(config.APNS_CA_FILE, 'utf8') : undefined,
    logger,
  });
  return { material, packager, apns };
}
