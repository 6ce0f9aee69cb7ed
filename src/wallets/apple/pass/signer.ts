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
import { X509Certificate, createHash, hash, sign, type KeyObject } from 'node:crypto';
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
  const year = date.getUTCFullYear();
  const utcTime = year >= 1950 && year < 2050;
  return der(utcTime ? TAG_UTC_TIME : TAG_GENERALIZED_TIME, Buffer.from(derTimeDigits(date, utcTime), 'latin1'));
}

/** `YYMMDDHHMMSSZ` (UTCTime) or `YYYYMMDDHHMMSSZ` (GeneralizedTime), the contents of {@link derTime}. */
function derTimeDigits(date: Date, utcTime: boolean): string {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19);
  return (utcTime ? digits.slice(2) : digits) + 'Z';
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

function signOnThreadPool(data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // The callback form runs the RSA operation on the libuv thread pool instead of the main thread.
    sign('sha1', data, key, (error, signature) => (error ? reject(error) : resolve(signature)));
  });
}

/** signingTime's DER (UTCTime or GeneralizedTime, see {@link derTime}). */
function derSigningTimeAttribute(signingTime: Date): Buffer {
  return der(TAG_SEQUENCE, SIGNING_TIME_OID, der(TAG_SET, derTime(signingTime)));
}

/**
 * The signed attributes as a DER SET OF (tag 0x31, elements sorted), the bytes the signature covers
 * (RFC 5652 §5.4).
 */
function encodeSignedAttributes(manifestDigest: Buffer, signingTime: Date): Buffer {
  return derSetOf([
    CONTENT_TYPE_ATTRIBUTE,
    derSigningTimeAttribute(signingTime),
    der(TAG_SEQUENCE, MESSAGE_DIGEST_OID, der(TAG_SET, der(TAG_OCTET_STRING, manifestDigest))),
  ]);
}

/**
 * ContentInfo { signedData } around the given per-signer prefixes, signed attributes (as the SET OF
 * that was signed) and signature, every length computed by the DER encoder above. This is the
 * reference encoding: {@link PassSigner.sign} splices the same bytes into a template built with it,
 * and test/unit/apple-pass-signer.test.ts checks that both agree byte for byte.
 */
export function encodeSignedData(
  parts: { signedDataPrefix: Buffer; signerInfoPrefix: Buffer },
  signedAttributesAsSet: Buffer,
  signature: Buffer,
): Buffer {
  // The same bytes are stored in SignerInfo under the [0] IMPLICIT tag instead of SET (RFC 5652 §5.3).
  const signedAttributesField = Buffer.from(signedAttributesAsSet);
  signedAttributesField[0] = TAG_CONTEXT_0_CONSTRUCTED;
  const signerInfo = der(TAG_SEQUENCE, parts.signerInfoPrefix, signedAttributesField, RSA_ALGORITHM, der(TAG_OCTET_STRING, signature));
  const signedData = der(TAG_SEQUENCE, parts.signedDataPrefix, der(TAG_SET, signerInfo));
  return der(TAG_SEQUENCE, SIGNED_DATA_OID, der(TAG_CONTEXT_0_CONSTRUCTED, signedData));
}

/**
 * A whole `signature` file with holes for the per-pass bytes (issue #14: re-encoding SignedData
 * with the DER encoder for every pass cost ~50 µs of CPU, a sixth of the RSA operation).
 * Everything else — certificates, SignerInfo, every length — depends only on the signer and on
 * which time type signingTime takes, because the signature of an RSA key is always exactly the
 * modulus' byte length (RFC 8017 §8.2.1) and SHA-1 digests are 20 bytes.
 */
interface SignatureTemplate {
  /** The signed attributes as the SET OF that is signed, with dummy time and digest. */
  signedAttributes: Buffer;
  /** Offset of signingTime's digits (YYMMDDHHMMSS or YYYYMMDDHHMMSS, then "Z") in signedAttributes. */
  timeOffset: number;
  /** Offset of the 20-byte messageDigest value in signedAttributes. */
  digestOffset: number;
  /** The encoded `signature` file with dummy signed attributes and signature. */
  file: Buffer;
  /** Where the signed attributes ([0] IMPLICIT) start in file. */
  signedAttributesOffset: number;
  /** Where the RSA signature starts in file (it is the last element of the structure). */
  signatureOffset: number;
}

const SHA1_DIGEST_SIZE = 20;

export interface PassSignerOptions {
  /**
   * Where the RSA private-key operation runs. 'threadpool' (default): the async crypto.sign on the
   * libuv pool, so the event loop stays free (~0.3 ms per pass). 'main': synchronous on the calling
   * thread — less CPU per pass (no hand-off between threads; see docs/benchmarks.md "The pass
   * template") but it blocks the event loop for the whole operation; for a process that only signs.
   */
  signOn?: 'threadpool' | 'main';
}

export class PassSigner {
  private readonly signerKey: KeyObject;
  private readonly parts: { signedDataPrefix: Buffer; signerInfoPrefix: Buffer };
  private readonly rsaSignatureSize: number;
  private readonly signOnMainThread: boolean;
  /** Built on first use: [UTCTime form, GeneralizedTime form]. */
  private readonly templates: [SignatureTemplate | undefined, SignatureTemplate | undefined] = [undefined, undefined];

  constructor(material: AppleSigningMaterial, options: PassSignerOptions = {}) {
    if (material.signerKey.asymmetricKeyType !== 'rsa') {
      // Pass Type ID certificates are RSA; other key types would need another signatureAlgorithm.
      throw new Error(`Pass signing supports RSA keys only, got ${material.signerKey.asymmetricKeyType}`);
    }
    // Fail at startup, not per pass, when the DER is unusable.
    new X509Certificate(material.signerCertDer);
    new X509Certificate(material.wwdrCertDer);

    this.signerKey = material.signerKey;
    this.rsaSignatureSize = Math.ceil(material.signerKey.asymmetricKeyDetails!.modulusLength! / 8);
    this.signOnMainThread = options.signOn === 'main';
    this.parts = {
      // SignerInfo fields before signedAttrs: version, sid, digestAlgorithm.
      signerInfoPrefix: Buffer.concat([VERSION_1, issuerAndSerialNumber(material.signerCertDer), SHA1_ALGORITHM]),
      // Everything of SignedData before signerInfos.
      signedDataPrefix: Buffer.concat([
        VERSION_1,
        der(TAG_SET, SHA1_ALGORITHM), // digestAlgorithms
        DETACHED_ENCAPSULATED_CONTENT_INFO,
        // certificates [0] IMPLICIT SET OF: the original DER bytes, DER-sorted like OpenSSL does.
        derSetOf([material.signerCertDer, material.wwdrCertDer], TAG_CONTEXT_0_CONSTRUCTED),
      ]),
    };
  }

  /** The fixed parts of SignedData, for {@link encodeSignedData}. */
  get encodingParts(): { signedDataPrefix: Buffer; signerInfoPrefix: Buffer } {
    return this.parts;
  }

  private templateFor(utcTime: boolean): SignatureTemplate {
    const index = utcTime ? 0 : 1;
    let template = this.templates[index];
    if (template === undefined) {
      // Dummy values: a time of the same type, a digest and a signature of the real sizes.
      const dummyTime = new Date(Date.UTC(utcTime ? 2000 : 2050, 0, 1));
      const signedAttributes = encodeSignedAttributes(Buffer.alloc(SHA1_DIGEST_SIZE), dummyTime);
      const timeDer = derTime(dummyTime);
      // The time's DER is short (< 128 bytes): tag, one length byte, then the digits.
      const timeOffset = signedAttributes.indexOf(timeDer) + 2;
      const file = encodeSignedData(this.parts, signedAttributes, Buffer.alloc(this.rsaSignatureSize));
      const signedAttributesField = Buffer.from(signedAttributes);
      signedAttributesField[0] = TAG_CONTEXT_0_CONSTRUCTED;
      template = {
        signedAttributes,
        timeOffset,
        // messageDigest is the last attribute in DER order (the longest encoding), its value the last bytes.
        digestOffset: signedAttributes.length - SHA1_DIGEST_SIZE,
        file,
        signedAttributesOffset: file.indexOf(signedAttributesField),
        signatureOffset: file.length - this.rsaSignatureSize,
      };
      this.templates[index] = template;
    }
    return template;
  }

  /** The signed attributes (as the SET OF that is signed) for this manifest and time, from the template. */
  private signedAttributesFor(manifest: Buffer, signingTime: Date): { template: SignatureTemplate; signedAttributes: Buffer } {
    const year = signingTime.getUTCFullYear();
    const utcTime = year >= 1950 && year < 2050;
    const template = this.templateFor(utcTime);
    const signedAttributes = Buffer.allocUnsafe(template.signedAttributes.length);
    signedAttributes.set(template.signedAttributes);
    signedAttributes.write(derTimeDigits(signingTime, utcTime), template.timeOffset, 'latin1');
    signedAttributes.set(hash('sha1', manifest, 'buffer'), template.digestOffset);
    return { template, signedAttributes };
  }

  private assemble(template: SignatureTemplate, signedAttributes: Buffer, signature: Buffer): Buffer {
    if (signature.length !== this.rsaSignatureSize) {
      // Not expected for RSA (the signature is always the modulus' length); stay correct anyway.
      return encodeSignedData(this.parts, signedAttributes, signature);
    }
    const file = Buffer.allocUnsafe(template.file.length);
    file.set(template.file);
    file.set(signedAttributes, template.signedAttributesOffset);
    file[template.signedAttributesOffset] = TAG_CONTEXT_0_CONSTRUCTED;
    file.set(signature, template.signatureOffset);
    return file;
  }

  /**
   * Byte length of the `signature` file {@link sign} returns for this signingTime (fixed per signer
   * and time type), so a packager can lay out the archive while the RSA operation runs.
   */
  signatureSize(signingTime: Date): number {
    const year = signingTime.getUTCFullYear();
    return this.templateFor(year >= 1950 && year < 2050).file.length;
  }

  /** Returns the DER `signature` file for the given manifest.json bytes. */
  async sign(manifest: Buffer, signingTime: Date = new Date()): Promise<Buffer> {
    const { template, signedAttributes } = this.signedAttributesFor(manifest, signingTime);
    const signature = this.signOnMainThread
      ? sign('sha1', signedAttributes, this.signerKey)
      : await signOnThreadPool(signedAttributes, this.signerKey);
    return this.assemble(template, signedAttributes, signature);
  }

  /**
   * The same file built with the DER encoder for every field (no template): the reference the
   * template must match byte for byte (test/unit/apple-pass-signer.test.ts).
   */
  signWithEncoder(manifest: Buffer, signingTime: Date = new Date()): Buffer {
    const signedAttributes = encodeSignedAttributes(createHash('sha1').update(manifest).digest(), signingTime);
    return encodeSignedData(this.parts, signedAttributes, sign('sha1', signedAttributes, this.signerKey));
  }
}
