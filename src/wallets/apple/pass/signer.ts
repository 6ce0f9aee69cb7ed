/**
 * Native `.pkpass` signer: detached CMS SignedData (RFC 5652) over manifest.json.
 *
 * What Apple requires (reference /work/shared/reference/apple-wallet.md, section 4; Apple: Wallet
 * Developer Guide – Building a Pass; `openssl smime -sign -binary ... -md sha1` is Apple's recipe):
 * - DER SignedData, detached (no eContent), SHA-1 digest;
 * - signed attributes contentType, signingTime (required by Wallet) and messageDigest;
 * - certificates: the Pass Type ID certificate and the WWDR intermediate.
 *
 * Why a hand-written DER encoder instead of node-forge's pkcs7: forge does the RSA private-key
 * operation in JavaScript, ~50x slower than OpenSSL and fully synchronous, blocking the event loop
 * for ~60 ms per pass (reference section 5; passkit-generator PR #273). The structure we need is
 * fixed and tiny, so ~100 lines of encoder let the RSA signature run natively via `crypto.sign`
 * (async form → libuv thread pool, off the event loop) with a cached KeyObject, and let us embed the
 * certificates as their original DER bytes (re-encoded certificates were reported to break Wallet).
 */
import { X509Certificate, createHash, sign, type KeyObject } from 'node:crypto';
import type { AppleSigningMaterial } from '../certificates.js';

// ---------------------------------------------------------------------------------------------
// Minimal DER encoder (ITU-T X.690). Only what SignedData needs.
// ---------------------------------------------------------------------------------------------

const TAG_INTEGER = 0x02;
const TAG_OCTET_STRING = 0x04;
const TAG_NULL = 0x05;
const TAG_OID = 0x06;
const TAG_UTC_TIME = 0x17;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_SEQUENCE = 0x30;
const TAG_SET = 0x31;
const TAG_CONTEXT_0_CONSTRUCTED = 0xa0;

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let remaining = length; remaining > 0; remaining = Math.floor(remaining / 256)) bytes.unshift(remaining & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = contents.length === 1 ? contents[0]! : Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) base128.unshift(0x80 | (rest & 0x7f));
    bytes.push(...base128);
  }
  return der(TAG_OID, Buffer.from(bytes));
}

function derSmallInteger(value: number): Buffer {
  return der(TAG_INTEGER, Buffer.from([value]));
}

const DER_NULL = Buffer.from([TAG_NULL, 0x00]);

/**
 * signingTime is a UTCTime for years 1950–2049 and a GeneralizedTime otherwise (RFC 5652 §11.3),
 * always in UTC with seconds and "Z", no fractions (DER).
 */
function derTime(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19);
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return der(TAG_UTC_TIME, Buffer.from(digits.slice(2) + 'Z', 'latin1'));
  return der(TAG_GENERALIZED_TIME, Buffer.from(digits + 'Z', 'latin1'));
}

/** DER requires the elements of a SET OF in ascending order of their encodings (X.690 §11.6). */
function derSetOf(elements: Buffer[], tag = TAG_SET): Buffer {
  return der(tag, ...[...elements].sort(Buffer.compare));
}

// ---------------------------------------------------------------------------------------------
// Minimal DER reader: only to lift issuer and serial number out of the signer certificate.
// ---------------------------------------------------------------------------------------------

interface DerElement {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the element. */
  end: number;
}

function readDerElement(buffer: Buffer, offset: number): DerElement {
  const tag = buffer[offset]!;
  let lengthByte = buffer[offset + 1]!;
  let contentStart = offset + 2;
  let length = lengthByte;
  if (lengthByte & 0x80) {
    const lengthBytes = lengthByte & 0x7f;
    length = 0;
    for (let index = 0; index < lengthBytes; index++) length = length * 256 + buffer[contentStart + index]!;
    contentStart += lengthBytes;
  }
  const end = contentStart + length;
  if (end > buffer.length) throw new Error('Truncated DER in certificate');
  return { tag, start: offset, contentStart, end };
}

/**
 * IssuerAndSerialNumber (RFC 5652 §10.2.4) of a certificate, built from its own bytes so the
 * issuer Name matches exactly what the verifier compares.
 * Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serialNumber, signature, issuer, … } … }
 */
function issuerAndSerialNumber(certificateDer: Buffer): Buffer {
  const certificate = readDerElement(certificateDer, 0);
  const tbs = readDerElement(certificateDer, certificate.contentStart);
  let field = readDerElement(certificateDer, tbs.contentStart);
  if (field.tag === TAG_CONTEXT_0_CONSTRUCTED) field = readDerElement(certificateDer, field.end); // skip version
  const serialNumber = field;
  const signatureAlgorithm = readDerElement(certificateDer, serialNumber.end);
  const issuer = readDerElement(certificateDer, signatureAlgorithm.end);
  return der(
    TAG_SEQUENCE,
    certificateDer.subarray(issuer.start, issuer.end),
    certificateDer.subarray(serialNumber.start, serialNumber.end),
  );
}

// ---------------------------------------------------------------------------------------------
// CMS SignedData
// ---------------------------------------------------------------------------------------------

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_DATA = '1.2.840.113549.1.7.1';
const OID_SHA1 = '1.3.14.3.2.26';
const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_SIGNING_TIME = '1.2.840.113549.1.9.5';

// AlgorithmIdentifiers with explicit NULL parameters, as `openssl smime -md sha1` writes them.
const SHA1_ALGORITHM = der(TAG_SEQUENCE, derOid(OID_SHA1), DER_NULL);
const RSA_ALGORITHM = der(TAG_SEQUENCE, derOid(OID_RSA_ENCRYPTION), DER_NULL);
const CONTENT_TYPE_ATTRIBUTE = der(TAG_SEQUENCE, derOid(OID_CONTENT_TYPE), der(TAG_SET, derOid(OID_DATA)));
const MESSAGE_DIGEST_OID = derOid(OID_MESSAGE_DIGEST);
const SIGNING_TIME_OID = derOid(OID_SIGNING_TIME);
const SIGNED_DATA_OID = derOid(OID_SIGNED_DATA);
const VERSION_1 = derSmallInteger(1);
// Detached: EncapsulatedContentInfo carries the content type only, no eContent (RFC 5652 §5.2).
const DETACHED_ENCAPSULATED_CONTENT_INFO = der(TAG_SEQUENCE, derOid(OID_DATA));

function signAsync(data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // The callback form runs the RSA operation on the libuv thread pool instead of the main thread.
    sign('sha1', data, key, (error, signature) => (error ? reject(error) : resolve(signature)));
  });
}

export class PassSigner {
  private readonly signerKey: KeyObject;
  /** Everything of SignedData before signerInfos that does not depend on the manifest: built once. */
  private readonly signedDataPrefix: Buffer;
  /** SignerInfo fields before signedAttrs: version, sid, digestAlgorithm. */
  private readonly signerInfoPrefix: Buffer;

  constructor(material: AppleSigningMaterial) {
    if (material.signerKey.asymmetricKeyType !== 'rsa') {
      // Pass Type ID certificates are RSA; other key types would need another signatureAlgorithm.
      throw new Error(`Pass signing supports RSA keys only, got ${material.signerKey.asymmetricKeyType}`);
    }
    // Fail at startup, not per pass, when the DER is unusable.
    new X509Certificate(material.signerCertDer);
    new X509Certificate(material.wwdrCertDer);

    this.signerKey = material.signerKey;
    this.signerInfoPrefix = Buffer.concat([VERSION_1, issuerAndSerialNumber(material.signerCertDer), SHA1_ALGORITHM]);
    this.signedDataPrefix = Buffer.concat([
      VERSION_1,
      der(TAG_SET, SHA1_ALGORITHM), // digestAlgorithms
      DETACHED_ENCAPSULATED_CONTENT_INFO,
      // certificates [0] IMPLICIT SET OF: the original DER bytes, DER-sorted like OpenSSL does.
      derSetOf([material.signerCertDer, material.wwdrCertDer], TAG_CONTEXT_0_CONSTRUCTED),
    ]);
  }

  /** Returns the DER `signature` file for the given manifest.json bytes. */
  async sign(manifest: Buffer, signingTime: Date = new Date()): Promise<Buffer> {
    const manifestDigest = createHash('sha1').update(manifest).digest();
    const attributes = [
      CONTENT_TYPE_ATTRIBUTE,
      der(TAG_SEQUENCE, SIGNING_TIME_OID, der(TAG_SET, derTime(signingTime))),
      der(TAG_SEQUENCE, MESSAGE_DIGEST_OID, der(TAG_SET, der(TAG_OCTET_STRING, manifestDigest))),
    ];
    // The signature covers the attributes encoded as a SET OF (tag 0x31, DER-sorted); the same
    // bytes are stored in SignerInfo under the [0] IMPLICIT tag (RFC 5652 §5.4).
    const signedAttributesAsSet = derSetOf(attributes);
    const signature = await signAsync(signedAttributesAsSet, this.signerKey);
    const signedAttributesField = Buffer.from(signedAttributesAsSet);
    signedAttributesField[0] = TAG_CONTEXT_0_CONSTRUCTED;

    const signerInfo = der(
      TAG_SEQUENCE,
      this.signerInfoPrefix,
      signedAttributesField,
      RSA_ALGORITHM,
      der(TAG_OCTET_STRING, signature),
    );
    const signedData = der(TAG_SEQUENCE, this.signedDataPrefix, der(TAG_SET, signerInfo));
    return der(TAG_SEQUENCE, SIGNED_DATA_OID, der(TAG_CONTEXT_0_CONSTRUCTED, signedData));
  }
}
