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
import { X509Certificate, createPrivateKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';

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

// Apple-specific OIDs checked by Wallet (Apple Security source, tp_verifyPassbookSigningOpts; reference section 4).
const OID_PASS_TYPE_ID_EXTENSION = '1.2.840.113635.100.6.1.16';
const OID_PASSBOOK_SIGNING_EKU = '1.2.840.113635.100.4.14';
// APNs environment markers: development (sandbox) and production. Real Pass Type ID certificates carry
// only the production one; the sandbox one is here because @parse/node-apn demands it for a non-Apple
// address (reference section 8.1).
const OID_APNS_DEVELOPMENT = '1.2.840.113635.100.6.3.1';
const OID_APNS_PRODUCTION = '1.2.840.113635.100.6.3.2';
const OID_USER_ID = '0.9.2342.19200300.100.1.1';

const generateKeyPairAsync = promisify(generateKeyPair);

interface KeyPairPem {
  privateKeyPem: string;
  forgePrivateKey: forge.pki.rsa.PrivateKey;
  forgePublicKey: forge.pki.rsa.PublicKey;
}

async function newRsaKeyPair(): Promise<KeyPairPem> {
  // Node's native RSA key generation is ~100x faster than node-forge's pure-JS one and runs on the
  // libuv thread pool; forge only needs the key to build and sign certificates.
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const forgePrivateKey = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const forgePublicKey = forge.pki.setRsaPublicKey(forgePrivateKey.n, forgePrivateKey.e);
  return { privateKeyPem, forgePrivateKey, forgePublicKey };
}

function randomPositiveSerialHex(): string {
  // 16 random bytes with the top bit cleared: a positive INTEGER, as RFC 5280 4.1.2.2 requires.
  const bytes = forge.random.getBytesSync(16);
  const hex = forge.util.bytesToHex(bytes);
  return (parseInt(hex[0]!, 16) & 0x7).toString(16) + hex.slice(1);
}

function derOf(asn1Value: forge.asn1.Asn1): string {
  return forge.asn1.toDer(asn1Value).getBytes();
}

function utf8StringDer(text: string): string {
  return derOf(forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.UTF8, false, forge.util.encodeUtf8(text)));
}

/**
 * A subject attribute encoded as UTF8String (Apple's Pass Type ID certificates use UTF8String; the
 * organisation name may be non-ASCII). forge reads the string type from `valueTagClass`, which its
 * type definitions mistype as an asn1.Class, hence the cast.
 */
function utf8Attribute(field: { name?: string; type?: string; value: string }): forge.pki.CertificateField {
  return { ...field, valueTagClass: forge.asn1.Type.UTF8 } as unknown as forge.pki.CertificateField;
}

function nullDer(): string {
  return derOf(forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.NULL, false, ''));
}

interface CertificateRequest {
  subject: forge.pki.CertificateField[];
  subjectKey: KeyPairPem;
  issuer: { cert: forge.pki.Certificate; key: KeyPairPem } | 'self';
  notBefore: Date;
  notAfter: Date;
  extensions: object[];
}

function issueCertificate(request: CertificateRequest): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.serialNumber = randomPositiveSerialHex();
  cert.publicKey = request.subjectKey.forgePublicKey;
  cert.validity.notBefore = request.notBefore;
  cert.validity.notAfter = request.notAfter;
  cert.setSubject(request.subject);
  const issuerCert = request.issuer === 'self' ? cert : request.issuer.cert;
  const issuerKey = request.issuer === 'self' ? request.subjectKey : request.issuer.key;
  cert.setIssuer(request.issuer === 'self' ? request.subject : issuerCert.subject.attributes);
  cert.setExtensions([
    ...request.extensions,
    { name: 'subjectKeyIdentifier' },
    // Point at the issuer's key explicitly: forge's `keyIdentifier: true` would use the subject's own key.
    { name: 'authorityKeyIdentifier', keyIdentifier: issuerCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(issuerKey.forgePrivateKey, forge.md.sha256.create());
  return cert;
}

function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}

/**
 * Writes a complete development chain into `dir` (created if needed): test root CA, WWDR-like
 * intermediate, a Pass Type ID signer shaped like Apple's, and a TLS pair for a local APNs stand-in.
 * Existing files are overwritten; use {@link ensureDevCertificates} to keep an existing set.
 */
export async function generateDevCertificates(dir: string, opts: DevCertificateOptions): Promise<void> {
  const organizationName = opts.organizationName ?? 'Walletcards Development';
  const signerValidityDays = opts.signerValidityDays ?? 365;
  // Start one day in the past so that small clock differences between machines never make a fresh
  // certificate "not yet valid".
  const notBefore = addDays(new Date(), -1);

  const [rootKey, wwdrKey, signerKey, apnsServerKey] = await Promise.all([
    newRsaKeyPair(),
    newRsaKeyPair(),
    newRsaKeyPair(),
    newRsaKeyPair(),
  ]);

  const rootCert = issueCertificate({
    subject: [
      { name: 'commonName', value: 'Test Apple Root CA' },
      { name: 'organizationalUnitName', value: 'Test Apple Certification Authority' },
      { name: 'organizationName', value: 'Test Apple Inc.' },
      { name: 'countryName', value: 'US' },
    ],
    subjectKey: rootKey,
    issuer: 'self',
    notBefore,
    notAfter: addDays(notBefore, 3650),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });

  const wwdrCert = issueCertificate({
    subject: [
      { name: 'commonName', value: 'Test Apple Worldwide Developer Relations Certification Authority' },
      { name: 'organizationalUnitName', value: 'G4' },
      { name: 'organizationName', value: 'Test Apple Inc.' },
      { name: 'countryName', value: 'US' },
    ],
    subjectKey: wwdrKey,
    issuer: { cert: rootCert, key: rootKey },
    notBefore,
    notAfter: addDays(notBefore, 3650),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });

  const signerCert = issueCertificate({
    // Same attribute order as Apple's Pass Type ID certificates (reference section 8.1).
    subject: [
      utf8Attribute({ type: OID_USER_ID, value: opts.passTypeIdentifier }),
      utf8Attribute({ name: 'commonName', value: `Pass Type ID: ${opts.passTypeIdentifier}` }),
      { name: 'organizationalUnitName', value: opts.teamIdentifier },
      utf8Attribute({ name: 'organizationName', value: organizationName }),
      { name: 'countryName', value: 'US' },
    ],
    subjectKey: signerKey,
    issuer: { cert: wwdrCert, key: wwdrKey },
    notBefore,
    notAfter: addDays(notBefore, signerValidityDays),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      // EKU: clientAuth (APNs TLS) + Apple's pass-signing purpose; the keys are OIDs for forge.
      { name: 'extKeyUsage', clientAuth: true, [OID_PASSBOOK_SIGNING_EKU]: true },
      { id: OID_PASS_TYPE_ID_EXTENSION, value: utf8StringDer(opts.passTypeIdentifier) },
      { id: OID_APNS_DEVELOPMENT, value: nullDer() },
      { id: OID_APNS_PRODUCTION, value: nullDer() },
    ],
  });

  const apnsServerCert = issueCertificate({
    subject: [{ name: 'commonName', value: 'localhost' }],
    subjectKey: apnsServerKey,
    issuer: { cert: rootCert, key: rootKey },
    notBefore,
    notAfter: addDays(notBefore, 3650),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' }, // dNSName
          { type: 7, ip: '127.0.0.1' }, // iPAddress
        ],
      },
    ],
  });

  await mkdir(dir, { recursive: true });
  const files = APPLE_CERTIFICATE_FILES;
  await Promise.all([
    writeCertificateFile(path.join(dir, files.rootCert), forge.pki.certificateToPem(rootCert)),
    writeKeyFile(path.join(dir, files.rootKey), rootKey.privateKeyPem),
    writeCertificateFile(path.join(dir, files.wwdrCert), forge.pki.certificateToPem(wwdrCert)),
    writeKeyFile(path.join(dir, files.wwdrKey), wwdrKey.privateKeyPem),
    writeCertificateFile(path.join(dir, files.signerCert), forge.pki.certificateToPem(signerCert)),
    writeKeyFile(path.join(dir, files.signerKey), signerKey.privateKeyPem),
    writeCertificateFile(path.join(dir, files.apnsServerCert), forge.pki.certificateToPem(apnsServerCert)),
    writeKeyFile(path.join(dir, files.apnsServerKey), apnsServerKey.privateKeyPem),
  ]);
}

async function writeCertificateFile(filePath: string, pem: string): Promise<void> {
  await writeFile(filePath, pem, { mode: 0o644 });
}

async function writeKeyFile(filePath: string, pem: string): Promise<void> {
  await writeFile(filePath, pem, { mode: 0o600 });
  // `mode` only applies when the file is created; tighten an overwritten file too.
  await chmod(filePath, 0o600);
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
