/**
 * Verification of Google Wallet save/delete callbacks.
 *
 * Reference: /work/shared/reference/google-wallet.md, section 4 (Google: "Use callbacks for saves and
 * deletions"; the scheme is Google Pay's "Payment data cryptography" ECv2SigningOnly without decryption)
 * and checklist 32–34. There is no official Node library (Tink's is Java), so this follows section 4
 * step by step:
 *
 *   1. root keys from the keys URL: keep `protocolVersion === "ECv2SigningOnly"` and
 *      `keyExpiration > now`; cache until the earliest kept expiry; reload once when a signature does
 *      not verify (key rotation);
 *   2. LV(s) = 4-byte little-endian length ‖ UTF-8 bytes;
 *   3. `protocolVersion` must be ECv2SigningOnly; one of `intermediateSigningKey.signatures` must verify
 *      with a root key over LV(sender) ‖ LV("ECv2SigningOnly") ‖ LV(signedKey);
 *   4. `signedKey.keyExpiration` must be in the future;
 *   5. `signature` must verify with the intermediate key over
 *      LV(sender) ‖ LV(issuerId) ‖ LV("ECv2SigningOnly") ‖ LV(signedMessage);
 *   6. `signedMessage`: `expTimeMillis` in the future, `classId`/`objectId` start with "<issuerId>.",
 *      `eventType` is save or del. Nonce de-duplication is the caller's (it needs the database).
 *
 * Keys are base64 DER SPKI P-256, signatures base64 DER ECDSA-SHA256. Signatures cover the JSON *strings*
 * `signedKey` and `signedMessage`, so the body can be parsed by Fastify's normal JSON parser.
 *
 * Forced reloads are rate-limited (`minReloadIntervalMs`): otherwise every forged POST to the public
 * callback route would make us fetch Google's keys, which turns the route into a request amplifier.
 */
import { verify as cryptoVerify, type KeyObject, createPublicKey } from 'node:crypto';
import { GOOGLE_WALLET_DEFAULTS } from './config.js';

export const CALLBACK_PROTOCOL_VERSION = 'ECv2SigningOnly';

export interface CallbackMessage {
  classId: string;
  objectId: string;
  eventType: 'save' | 'del';
  expTimeMillis: number;
  count: number;
  nonce: string;
}

export type CallbackVerification =
  | { ok: true; message: CallbackMessage }
  /**
   * `retryable`: we could not check (root keys unreachable), the callback itself may be fine; the route
   * may answer 503 so Google retries. Everything else is a client error (answer 400, never 5xx).
   */
  | { ok: false; reason: string; retryable?: boolean };

export interface CallbackVerifierOptions {
  issuerId: string;
  /** Default `GooglePayPasses` (reference section 4). */
  senderId?: string;
  /** Default `https://pay.google.com/gp/m/issuer/keys`. */
  keysUrl?: string;
  fetch?: typeof fetch;
  /** Milliseconds clock. */
  now?: () => number;
  /** Minimum time between two reloads forced by a failed verification (default 60 s). */
  minReloadIntervalMs?: number;
  logger?: { warn(obj: object, msg?: string): void };
}

export interface CallbackVerifier {
  verify(body: unknown): Promise<CallbackVerification>;
}

interface RootKeys {
  keys: KeyObject[];
  /** Earliest expiry of the kept keys: the cache is valid until then. */
  validUntil: number;
}

/** LV(s): 4-byte little-endian length, then the UTF-8 bytes (reference section 4, step 2). */
export function lv(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(bytes.length, 0);
  return Buffer.concat([length, bytes]);
}

/** Bytes the root key signs: LV(sender) ‖ LV(protocol) ‖ LV(signedKey). */
export function intermediateSignedData(senderId: string, signedKey: string): Buffer {
  return Buffer.concat([lv(senderId), lv(CALLBACK_PROTOCOL_VERSION), lv(signedKey)]);
}

/** Bytes the intermediate key signs: LV(sender) ‖ LV(recipient = issuer id) ‖ LV(protocol) ‖ LV(signedMessage). */
export function messageSignedData(senderId: string, issuerId: string, signedMessage: string): Buffer {
  return Buffer.concat([lv(senderId), lv(issuerId), lv(CALLBACK_PROTOCOL_VERSION), lv(signedMessage)]);
}

function publicKeyFromBase64(der: string): KeyObject | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(der, 'base64'), format: 'der', type: 'spki' });
    // ECv2 keys are NIST P-256.
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? key : undefined;
  } catch {
    return undefined;
  }
}

function verifySignature(key: KeyObject, data: Buffer, signatureB64: string): boolean {
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'der' }, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function createCallbackVerifier(opts: CallbackVerifierOptions): CallbackVerifier {
  const senderId = opts.senderId ?? GOOGLE_WALLET_DEFAULTS.callbackSenderId;
  const keysUrl = opts.keysUrl ?? GOOGLE_WALLET_DEFAULTS.issuerKeysUrl;
  const fetchImpl = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  const minReloadInterval = opts.minReloadIntervalMs ?? 60_000;
  const issuerPrefix = `${opts.issuerId}.`;

  let cache: RootKeys | undefined;
  let loading: Promise<RootKeys> | undefined;
  let lastLoadAt = -Infinity;

  async function loadRootKeys(): Promise<RootKeys> {
    lastLoadAt = now();
    const response = await fetchImpl(keysUrl, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`root keys: HTTP ${response.status}`);
    const document = (await response.json()) as unknown;
    const entries = isRecord(document) && Array.isArray(document['keys']) ? document['keys'] : [];
    const t = now();
    const keys: KeyObject[] = [];
    let validUntil = Infinity;
    for (const entry of entries) {
      if (!isRecord(entry) || entry['protocolVersion'] !== CALLBACK_PROTOCOL_VERSION || !isString(entry['keyValue'])) continue;
      const expiration = Number(entry['keyExpiration']);
      // Step 1: only unexpired ECv2SigningOnly keys. A key without a readable expiry is not trusted.
      if (!Number.isFinite(expiration) || expiration <= t) continue;
      const key = publicKeyFromBase64(entry['keyValue']);
      if (!key) continue;
      keys.push(key);
      validUntil = Math.min(validUntil, expiration);
    }
    if (keys.length === 0) throw new Error('root keys: no unexpired ECv2SigningOnly key');
    return { keys, validUntil };
  }

  function rootKeys(force: boolean): Promise<RootKeys> {
    if (!force && cache && cache.validUntil > now()) return Promise.resolve(cache);
    if (!loading) {
      loading = loadRootKeys().then(
        (loaded) => {
          cache = loaded;
          loading = undefined;
          return loaded;
        },
        (error: unknown) => {
          loading = undefined;
          throw error;
        },
      );
    }
    return loading;
  }

  return {
    async verify(body) {
      if (!isRecord(body)) return { ok: false, reason: 'body is not a JSON object' };
      const { signature, intermediateSigningKey, protocolVersion, signedMessage } = body;
      if (!isString(protocolVersion)) return { ok: false, reason: 'missing protocolVersion' };
      if (protocolVersion !== CALLBACK_PROTOCOL_VERSION) return { ok: false, reason: `unsupported protocolVersion ${protocolVersion}` };
      if (!isString(signature) || !isString(signedMessage) || !isRecord(intermediateSigningKey)) {
        return { ok: false, reason: 'missing signature, signedMessage or intermediateSigningKey' };
      }
      const { signedKey, signatures } = intermediateSigningKey;
      if (!isString(signedKey) || !Array.isArray(signatures) || !signatures.every(isString) || signatures.length === 0) {
        return { ok: false, reason: 'malformed intermediateSigningKey' };
      }

      // Step 3: the intermediate key must be signed by a current root key.
      const data = intermediateSignedData(senderId, signedKey);
      const signedByAny = (roots: RootKeys) => roots.keys.some((key) => signatures.some((sig) => verifySignature(key, data, sig)));
      let roots: RootKeys;
      let fresh = false;
      try {
        const wasLoaded = cache !== undefined && cache.validUntil > now();
        roots = await rootKeys(false);
        fresh = !wasLoaded;
      } catch (error) {
        opts.logger?.warn({ err: (error as Error).message, keysUrl }, 'Google callback root keys unavailable');
        return { ok: false, reason: 'root keys unavailable', retryable: true };
      }
      if (!signedByAny(roots)) {
        // Once per verification, and not more often than minReloadIntervalMs: Google may have rotated.
        if (fresh || now() - lastLoadAt < minReloadInterval) return { ok: false, reason: 'intermediate key not signed by a current root key' };
        try {
          roots = await rootKeys(true);
        } catch (error) {
          opts.logger?.warn({ err: (error as Error).message, keysUrl }, 'Google callback root keys reload failed');
          return { ok: false, reason: 'root keys unavailable', retryable: true };
        }
        if (!signedByAny(roots)) return { ok: false, reason: 'intermediate key not signed by a current root key' };
      }

      // Step 4: the intermediate key and its expiry.
      const keyDoc = parseJson(signedKey);
      if (!isRecord(keyDoc) || !isString(keyDoc['keyValue'])) return { ok: false, reason: 'malformed signedKey' };
      const keyExpiration = Number(keyDoc['keyExpiration']);
      if (!Number.isFinite(keyExpiration)) return { ok: false, reason: 'signedKey has no keyExpiration' };
      if (keyExpiration <= now()) return { ok: false, reason: 'intermediate signing key expired' };
      const intermediate = publicKeyFromBase64(keyDoc['keyValue']);
      if (!intermediate) return { ok: false, reason: 'signedKey.keyValue is not a P-256 public key' };

      // Step 5: the message signature, recipient = our issuer id.
      if (!verifySignature(intermediate, messageSignedData(senderId, opts.issuerId, signedMessage), signature)) {
        return { ok: false, reason: 'message signature does not verify' };
      }

      // Step 6: the message itself.
      const message = parseJson(signedMessage);
      if (!isRecord(message)) return { ok: false, reason: 'signedMessage is not a JSON object' };
      const { classId, objectId, eventType, expTimeMillis, count, nonce } = message;
      if (!isString(classId) || !isString(objectId) || !isString(eventType) || !isString(nonce) || nonce === '') {
        return { ok: false, reason: 'signedMessage lacks classId, objectId, eventType or nonce' };
      }
      if (typeof expTimeMillis !== 'number' || !Number.isFinite(expTimeMillis)) return { ok: false, reason: 'signedMessage lacks expTimeMillis' };
      if (expTimeMillis <= now()) return { ok: false, reason: 'message expired' };
      if (!classId.startsWith(issuerPrefix) || !objectId.startsWith(issuerPrefix)) return { ok: false, reason: 'message is for another issuer' };
      if (eventType !== 'save' && eventType !== 'del') return { ok: false, reason: `unknown eventType ${eventType}` };
      // `count` is in every real payload; its meaning is undocumented, so only its type is checked.
      const countValue = typeof count === 'number' && Number.isFinite(count) ? count : undefined;
      if (countValue === undefined) return { ok: false, reason: 'signedMessage lacks count' };
      return { ok: true, message: { classId, objectId, eventType, expTimeMillis, count: countValue, nonce } };
    },
  };
}
