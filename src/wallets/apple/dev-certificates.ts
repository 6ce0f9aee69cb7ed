/**
 * Development certificate generation (node-forge). Loaded lazily by `generateDevCertificates`
 * (certificates.ts): only development, tests and benchmarks generate certificates, so production
 * never loads node-forge. The chain is described in certificates.ts.
 */
import { generateKeyPair } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { APPLE_CERTIFICATE_FILES, type DevCertificateOptions } from './certificates.js';

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

/** The development chain (see generateDevCertificates in certificates.ts, which loads this module). */
export async function generateDevCertificateChain(dir: string, opts: DevCertificateOptions): Promise<void> {
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
