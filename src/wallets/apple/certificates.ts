/**
 * Apple Wallet signing certificates: development chain generation, loading and startup checks.
 *
 * Reference: /work/shared/reference/apple-wallet.md, section 4 (what Wallet checks in the
 * certificate) and section 8.1 (a fake Apple chain for local work).
 *
 * The development chain mirrors Apple's real one so that every code path (pass signing, APNs
 * TLS client authentication, startup checks) runs unchanged against it:
 *
 *   root.pem  "Test Apple Root CA"                       (stand-in for Apple Root CA)
 *   └─ wwdr.pem  "Test Apple Worldwide Developer Relations Certification Authority", OU=G4
 *      └─ signerCert.pem  "Pass Type ID: <id>", UID=<id>, OU=<team>   (the Pass Type ID certificate)
 *   └─ apns-server.pem  CN=localhost                     (TLS for a local APNs stand-in, section 8.3)
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Raised for every certificate problem the operator has to fix (missing file, mismatch, expiry). */
export class AppleCertificateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppleCertificateError';
  }
}

/** Everything pass signing and the APNs client need, loaded once at startup. */
export interface AppleSigningMaterial {
  signerCertPem: string;
  wwdrPem: string;
  /** PEM of the private key as stored on disk (possibly encrypted); the APNs TLS client uses it with the passphrase. */
  signerKeyPem: string;
  /** Decrypted key object, cached so that every signature skips PEM parsing and decryption. */
  signerKey: KeyObject;
  /** Original DER bytes; the CMS signature embeds them unchanged (re-encoding has been reported to break Wallet, reference section 5). */
  signerCertDer: Buffer;
  wwdrCertDer: Buffer;
  /** Signer subject UID: must equal pass.json passTypeIdentifier (reference section 4). */
  passTypeIdentifier: string;
  /** Signer subject OU: must equal pass.json teamIdentifier (reference section 4). */
  teamIdentifier: string;
  signerNotAfter: Date;
  wwdrNotAfter: Date;
}

export interface DevCertificateOptions {
  passTypeIdentifier: string;
  teamIdentifier: string;
  organizationName?: string;
  /** Lifetime of the Pass Type ID certificate; real ones last about a year. Tests shorten it to exercise expiry warnings. */
  signerValidityDays?: number;
}

/** File names inside a certificate folder (APPLE_CERT_DIR). */
export const APPLE_CERTIFICATE_FILES = {
  rootCert: 'root.pem',
  rootKey: 'root.key',
  wwdrCert: 'wwdr.pem',
  wwdrKey: 'wwdr.key',
  signerCert: 'signerCert.pem',
  signerKey: 'signerKey.pem',
  apnsServerCert: 'apns-server.pem',
  apnsServerKey: 'apns-server.key',
} as const;

/** Alert this long before a certificate's notAfter (reference section 4: "Alert 30 days before notAfter"). */
export const CERTIFICATE_EXPIRY_WARNING_DAYS = 30;

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Writes a complete development chain into `dir` (created if needed): test root CA, WWDR-like
 * intermediate, a Pass Type ID signer shaped like Apple's, and a TLS pair for a local APNs stand-in.
 * Existing files are overwritten; use {@link ensureDevCertificates} to keep an existing set.
 *
 * The generator (and node-forge with it) is loaded only when called: production never generates
 * certificates, so the production image runs without ever loading forge (issue #13).
 */
export async function generateDevCertificates(dir: string, opts: DevCertificateOptions): Promise<void> {
  const { generateDevCertificateChain } = await import('./dev-certificates.js');
  await generateDevCertificateChain(dir, opts);
}

/**
 * Generates a development chain into `dir` only when it holds no signerCert.pem yet, so that real
 * (mounted) certificates and earlier development ones are never replaced. Returns true when it generated.
 */
export async function ensureDevCertificates(dir: string, opts: DevCertificateOptions): Promise<boolean> {
  if (existsSync(path.join(dir, APPLE_CERTIFICATE_FILES.signerCert))) return false;
  await generateDevCertificates(dir, opts);
  return true;
}

function readRequiredFile(dir: string, fileName: string, purpose: string): string {
  const filePath = path.join(dir, fileName);
  try {
    return readFileSync(filePath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'is missing' : `cannot be read (${code ?? String(error)})`;
    throw new AppleCertificateError(
      `${filePath} ${reason}: it must hold the ${purpose}. ` +
        'Set APPLE_CERT_DIR to the folder with signerCert.pem, signerKey.pem and wwdr.pem, ' +
        'or run `npm run certs:dev` for development certificates.',
      { cause: error },
    );
  }
}

function parseCertificate(pem: string, filePath: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new AppleCertificateError(`${filePath} is not a PEM X.509 certificate: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Reads one attribute from an X509Certificate subject string ("UID=...\nCN=...\nOU=...").
 * Node prints one attribute per line; multi-valued attributes are not expected in Apple certificates.
 */
export function subjectAttribute(certificate: X509Certificate, attribute: string): string | undefined {
  for (const line of certificate.subject.split('\n')) {
    const separator = line.indexOf('=');
    if (separator > 0 && line.slice(0, separator) === attribute) return line.slice(separator + 1);
  }
  return undefined;
}

function loadPrivateKey(pem: string, filePath: string, passphrase: string | undefined): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = (error as Error).message;
    const encrypted = /ENCRYPTED/.test(pem);
    if (code === 'ERR_MISSING_PASSPHRASE' || (encrypted && passphrase === undefined)) {
      throw new AppleCertificateError(
        `${filePath} is encrypted: set APPLE_KEY_PASSPHRASE to its passphrase.`,
        { cause: error },
      );
    }
    if (encrypted || /bad decrypt|decrypt/i.test(message)) {
      throw new AppleCertificateError(
        `${filePath} could not be decrypted with APPLE_KEY_PASSPHRASE (wrong passphrase?). ` +
          'If the key was exported from Keychain as .p12, extract it with OpenSSL 3 using ' +
          '`openssl pkcs12 -legacy -in Certificates.p12 -nocerts -out signerKey.pem` ' +
          '(without -legacy OpenSSL 3 fails with "unsupported ... RC2-40-CBC").',
        { cause: error },
      );
    }
    throw new AppleCertificateError(`${filePath} is not a PEM private key: ${message}`, { cause: error });
  }
}

function keyMismatchError(): AppleCertificateError {
  return new AppleCertificateError(
    'signerKey.pem does not belong to signerCert.pem (the public keys differ). ' +
      'Export the certificate and its private key from the same Keychain entry.',
  );
}

/**
 * Loads the Pass Type ID certificate, its private key and the WWDR intermediate from `dir`.
 * Fails with {@link AppleCertificateError} on missing files, a wrong passphrase or a key that does
 * not match the certificate; run {@link checkAppleCertificates} afterwards for configuration and expiry.
 */
export function loadAppleCertificates(dir: string, passphrase?: string): AppleSigningMaterial {
  const files = APPLE_CERTIFICATE_FILES;
  const signerCertPem = readRequiredFile(dir, files.signerCert, 'Pass Type ID certificate (PEM)');
  const signerKeyPem = readRequiredFile(dir, files.signerKey, 'private key of the Pass Type ID certificate (PEM)');
  const wwdrPem = readRequiredFile(dir, files.wwdrCert, 'Apple WWDR G4 intermediate certificate (PEM)');

  const signerCertificate = parseCertificate(signerCertPem, path.join(dir, files.signerCert));
  const wwdrCertificate = parseCertificate(wwdrPem, path.join(dir, files.wwdrCert));
  const signerKey = loadPrivateKey(signerKeyPem, path.join(dir, files.signerKey), passphrase || undefined);
  if (!signerCertificate.checkPrivateKey(signerKey)) throw keyMismatchError();

  const passTypeIdentifier = subjectAttribute(signerCertificate, 'UID');
  const teamIdentifier = subjectAttribute(signerCertificate, 'OU');
  if (!passTypeIdentifier || !teamIdentifier) {
    throw new AppleCertificateError(
      `${path.join(dir, files.signerCert)} has no subject UID/OU; it is not a Pass Type ID certificate ` +
        `(subject: ${signerCertificate.subject.replace(/\n/g, ', ')}).`,
    );
  }

  return {
    signerCertPem,
    wwdrPem,
    signerKeyPem,
    signerKey,
    signerCertDer: signerCertificate.raw,
    wwdrCertDer: wwdrCertificate.raw,
    passTypeIdentifier,
    teamIdentifier,
    signerNotAfter: new Date(signerCertificate.validTo),
    wwdrNotAfter: new Date(wwdrCertificate.validTo),
  };
}

/**
 * Startup check (reference section 7, "Operations"): key matches, WWDR issued the signer, certificate UID/OU match the
 * configured pass type ID and team ID (else Wallet refuses the pass: "The passTypeIdentifier or
 * teamIdentifier provided may not match your certificate"), nothing expired. Returns warnings for
 * certificates that expire within {@link CERTIFICATE_EXPIRY_WARNING_DAYS} days.
 */
export function checkAppleCertificates(
  material: AppleSigningMaterial,
  expected: { passTypeIdentifier?: string; teamIdentifier?: string },
  now: Date,
): { warnings: string[] } {
  const signerCertificate = new X509Certificate(material.signerCertDer);
  if (!signerCertificate.checkPrivateKey(material.signerKey)) throw keyMismatchError();

  // A wrong intermediate is a classic "pass could not be opened" cause (e.g. the expired pre-G4
  // WWDR instead of G4; reference sections 4 and 6): the signer must be issued and signed by it.
  const wwdrCertificate = new X509Certificate(material.wwdrCertDer);
  if (!signerCertificate.checkIssued(wwdrCertificate) || !signerCertificate.verify(wwdrCertificate.publicKey)) {
    throw new AppleCertificateError(
      `wwdr.pem (${wwdrCertificate.subject.replace(/\n/g, ', ')}) did not issue signerCert.pem ` +
        `(issuer: ${signerCertificate.issuer.replace(/\n/g, ', ')}). Use Apple's WWDR G4 intermediate certificate.`,
    );
  }

  if (expected.passTypeIdentifier !== undefined && expected.passTypeIdentifier !== material.passTypeIdentifier) {
    throw new AppleCertificateError(
      `The signing certificate is for pass type ID "${material.passTypeIdentifier}" (subject UID) but ` +
        `"${expected.passTypeIdentifier}" is configured; Wallet would reject every pass.`,
    );
  }
  if (expected.teamIdentifier !== undefined && expected.teamIdentifier !== material.teamIdentifier) {
    throw new AppleCertificateError(
      `The signing certificate belongs to team "${material.teamIdentifier}" (subject OU) but ` +
        `"${expected.teamIdentifier}" is configured; Wallet would reject every pass.`,
    );
  }

  const warnings: string[] = [];
  const certificates = [
    { name: `Pass Type ID certificate (${material.passTypeIdentifier})`, notAfter: material.signerNotAfter, renew: 'renew it for the same pass type ID in the Apple Developer portal' },
    { name: 'Apple WWDR intermediate certificate', notAfter: material.wwdrNotAfter, renew: 'download the current WWDR G4 certificate from Apple' },
  ];
  for (const certificate of certificates) {
    const remainingMs = certificate.notAfter.getTime() - now.getTime();
    if (remainingMs <= 0) {
      // Installed passes keep working, but nothing can be signed or pushed (reference section 4).
      throw new AppleCertificateError(
        `The ${certificate.name} expired on ${certificate.notAfter.toISOString()}: ${certificate.renew}.`,
      );
    }
    if (remainingMs <= CERTIFICATE_EXPIRY_WARNING_DAYS * DAY_MS) {
      const days = Math.floor(remainingMs / DAY_MS);
      warnings.push(
        `The ${certificate.name} expires on ${certificate.notAfter.toISOString()} (in ${days} days): ${certificate.renew}.`,
      );
    }
  }
  return { warnings };
}
