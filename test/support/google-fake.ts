/**
 * A local fake of Google Wallet for tests: Wallet Objects REST API (loyalty classes and objects, batch),
 * the OAuth 2.0 token endpoint and the callback root-keys endpoint. Fastify on 127.0.0.1, port 0.
 *
 * Reference: /work/shared/reference/google-wallet.md, section 10 ("How to test without Google"), with the
 * rules of sections 1–5. What it enforces (each answer in Google's error envelope
 * `{"error":{"code","message","status","errors"}}`):
 *
 *   POST /token                 grant_type jwt-bearer; assertion RS256, verified with the service
 *                               account's public key: iss = client email, aud = Google's token URL,
 *                               scope = wallet scope, exp − iat = 3600 → {"access_token":"fake-<n>",…}
 *   /walletobjects/v1/*, /batch `Authorization: Bearer fake-<n>` of an issued, unrevoked token, else 401
 *   class insert / PUT          id "<issuer>.[A-Za-z0-9._-]+" (another issuer → 403), issuerName,
 *                               programName, https programLogo, reviewStatus ∈ {DRAFT, UNDER_REVIEW}
 *                               (stored as APPROVED; DRAFT stays DRAFT); duplicate → 409 ALREADY_EXISTS
 *   class PATCH                 404 if unknown; reviewStatus APPROVED → 400; top-level merge (arrays and
 *                               nested objects replaced); UNDER_REVIEW → APPROVED
 *   object insert / PUT         id, classId, state; class missing or not approved → 404; 409 duplicate;
 *                               exactly one balance subtype, int32 `int`, string `money.micros`; barcode
 *                               type canonical, value present, no alternateText with TEXT_ONLY; text
 *                               module ids without dots; unknown top-level fields → 400 (e.g. an object
 *                               `hexBackgroundColor` or `rewardsTier`)
 *   object PATCH                404 if unknown; merge, then the insert rules; a new classId must exist and be
 *                               approved; `notifyPreference: NOTIFY_ON_UPDATE` is ephemeral (never stored)
 *                               and counts as a notification
 *   addMessage                  returns {resource}; an 11th message → 400; a 4th notifying call
 *                               (TEXT_AND_NOTIFY message or NOTIFY_ON_UPDATE PATCH) for one object within
 *                               24 h of the fake's clock → 429 RESOURCE_EXHAUSTED "QuotaExceededException"
 *   lists                       GET /loyaltyClass?issuerId=, /loyaltyObject?classId= (+ maxResults, token)
 *   POST /batch                 multipart/mixed; both Google's generic `application/http` parts and the
 *                               Wallet sample's bare form; every part answered with its own status
 *   GET /gp/m/issuer/keys       `fake.issuerKeys` (callback root keys), requests counted
 *
 * Fault injection per route (`addFault`), optionally for one resource (`pathIncludes`): a status (e.g. 429
 * with Retry-After), a connection reset, a delay, a probability (seeded, deterministic), a count, and
 * `afterProcessing` (the change is applied and then the fault is answered: "Google did it but the answer
 * was lost"). Every request is recorded in
 * `calls` (batch parts too, with `viaBatch`), with the status it got.
 */
import { createHash, generateKeyPairSync, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { walletobjects_v1 } from '@googleapis/walletobjects';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import jwt from 'jsonwebtoken';

type LoyaltyClass = walletobjects_v1.Schema$LoyaltyClass;
type LoyaltyObject = walletobjects_v1.Schema$LoyaltyObject;

export const WALLET_SCOPE = 'https://www.googleapis.com/auth/wallet_object.issuer';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const DAY_MS = 24 * 60 * 60 * 1000;

// ---- throwaway credentials ----------------------------------------------------------------------

export interface TestServiceAccount {
  serviceAccount: { type: 'service_account'; client_email: string; private_key: string; private_key_id: string };
  publicKeyPem: string;
}

/** A fresh RSA-2048 service account (reference section 10). */
export function createTestServiceAccount(email = 'wallet-test@test-project.iam.gserviceaccount.com'): TestServiceAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    serviceAccount: { type: 'service_account', client_email: email, private_key: privateKey, private_key_id: randomUUID().replace(/-/g, '') },
    publicKeyPem: publicKey,
  };
}

export interface EcKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** base64 DER SPKI, as Google publishes keys. */
  publicKeyB64: string;
}

export function createP256KeyPair(): EcKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, publicKeyB64: publicKey.export({ format: 'der', type: 'spki' }).toString('base64') };
}

export interface CallbackKeys {
  root: EcKeyPair;
  intermediate: EcKeyPair;
  /** ms since epoch. */
  rootExpiration: number;
  intermediateExpiration: number;
}

export function createCallbackKeys(opts: { now?: number; rootExpiration?: number; intermediateExpiration?: number } = {}): CallbackKeys {
  const now = opts.now ?? Date.now();
  return {
    root: createP256KeyPair(),
    intermediate: createP256KeyPair(),
    rootExpiration: opts.rootExpiration ?? now + 30 * DAY_MS,
    intermediateExpiration: opts.intermediateExpiration ?? now + 7 * DAY_MS,
  };
}

/** The `{keys: [...]}` document of the issuer-keys URL. */
export function issuerKeysDocument(roots: Array<{ publicKeyB64: string; expiration: number; protocolVersion?: string }>) {
  return {
    keys: roots.map((root) => ({
      keyValue: root.publicKeyB64,
      protocolVersion: root.protocolVersion ?? 'ECv2SigningOnly',
      keyExpiration: String(root.expiration),
    })),
  };
}

function lv(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(bytes.length);
  return Buffer.concat([length, bytes]);
}

export interface SignCallbackOptions {
  keys: CallbackKeys;
  issuerId: string;
  eventType: string;
  objectId: string;
  classId: string;
  nonce?: string;
  expTimeMillis?: number;
  count?: number;
  senderId?: string;
  protocolVersion?: string;
  /** Recipient the message is signed for (default issuerId): forge "wrong issuer". */
  recipientId?: string;
  /** Sign the intermediate key with this root instead (forge "unknown root"). */
  rootSigner?: KeyObject;
  /** Sign the message with this key instead of the intermediate (forge "bad message signature"). */
  messageSigner?: KeyObject;
  /** Overrides the signedKey's expiry (ms). */
  intermediateExpiration?: number;
  /** Extra/overriding message fields; `undefined` values remove a field. */
  message?: Record<string, unknown>;
  /** Applied to signedMessage after signing (tampering). */
  tamper?: (signedMessage: string) => string;
}

export interface CallbackBody {
  signature: string;
  intermediateSigningKey: { signedKey: string; signatures: string[] };
  protocolVersion: string;
  signedMessage: string;
}

/** A callback body signed exactly as reference section 4 describes (genuine unless told otherwise). */
export function signCallback(opts: SignCallbackOptions): CallbackBody {
  const sender = opts.senderId ?? 'GooglePayPasses';
  const protocol = 'ECv2SigningOnly';
  const signedKey = JSON.stringify({
    keyValue: opts.keys.intermediate.publicKeyB64,
    keyExpiration: String(opts.intermediateExpiration ?? opts.keys.intermediateExpiration),
  });
  const keySignature = cryptoSign('sha256', Buffer.concat([lv(sender), lv(protocol), lv(signedKey)]), opts.rootSigner ?? opts.keys.root.privateKey);
  const fields: Record<string, unknown> = {
    classId: opts.classId,
    objectId: opts.objectId,
    eventType: opts.eventType,
    expTimeMillis: opts.expTimeMillis ?? Date.now() + 60_000,
    count: opts.count ?? 1,
    nonce: opts.nonce ?? randomUUID(),
    ...opts.message,
  };
  for (const [k, v] of Object.entries(fields)) if (v === undefined) delete fields[k];
  const signedMessage = JSON.stringify(fields);
  const messageSignature = cryptoSign(
    'sha256',
    Buffer.concat([lv(sender), lv(opts.recipientId ?? opts.issuerId), lv(protocol), lv(signedMessage)]),
    opts.messageSigner ?? opts.keys.intermediate.privateKey,
  );
  return {
    signature: messageSignature.toString('base64'),
    intermediateSigningKey: { signedKey, signatures: [keySignature.toString('base64')] },
    protocolVersion: opts.protocolVersion ?? protocol,
    signedMessage: opts.tamper ? opts.tamper(signedMessage) : signedMessage,
  };
}

// ---- the fake server ----------------------------------------------------------------------------

export type FakeRoute =
  | 'token'
  | 'issuerKeys'
  | 'batch'
  | 'insertClass'
  | 'getClass'
  | 'patchClass'
  | 'putClass'
  | 'listClasses'
  | 'addClassMessage'
  | 'insertObject'
  | 'getObject'
  | 'patchObject'
  | 'putObject'
  | 'listObjects'
  | 'addObjectMessage'
  | 'unknown';

export interface FakeCall {
  route: FakeRoute;
  method: string;
  /** Path with query. */
  path: string;
  /** Parsed JSON when the body is JSON, else the raw text (form, multipart). */
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  /** Status the fake answered (0 for a reset connection). */
  status: number;
  viaBatch?: boolean;
}

export interface FaultRule {
  route: FakeRoute | '*';
  /** Only requests whose path (with query) contains this, e.g. one object's URL-encoded id. */
  pathIncludes?: string;
  /** Probability per matching request, 0–1 (default 1); drawn from a seeded generator. */
  rate?: number;
  /** Apply at most this many times (default unlimited). */
  times?: number;
  /** Answer with this status and Google's envelope. */
  status?: number;
  /** `Retry-After` header value. */
  retryAfter?: string;
  /** Google's `error.status` for the envelope (default from the HTTP status). */
  reason?: string;
  /** Drop the connection without an answer. */
  reset?: boolean;
  /** Wait before answering (real time; for client timeouts use a small client timeout). */
  delayMs?: number;
  /** Apply the request to the state first, then answer with the fault. */
  afterProcessing?: boolean;
}

export interface GoogleFakeOptions {
  issuerId: string;
  /** PEM of the service account's public key, to verify token assertions. */
  serviceAccountPublicKey: string;
  clientEmail: string;
  /** Expected `aud` of assertions (default Google's token URL, which google-auth-library always uses). */
  tokenAudience?: string;
  tokenExpiresIn?: number;
  /** Fake clock start (ms); used for the notification window only. */
  now?: number;
  /** Seed for fault probabilities. */
  seed?: number;
}

interface FakeResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface GoogleFake {
  url: string;
  apiBaseUrl: string;
  tokenUrl: string;
  issuerKeysUrl: string;
  calls: FakeCall[];
  classes: Map<string, LoyaltyClass>;
  objects: Map<string, LoyaltyObject>;
  /** Fake-clock times of notifying sends per object (and per class id for class messages). */
  notificationsSent: Map<string, number[]>;
  /** Decoded claims of every accepted token assertion. */
  tokenAssertions: Array<Record<string, unknown>>;
  issuedTokens: string[];
  /** Document served at the issuer-keys URL. */
  issuerKeys: unknown;
  clock: { now(): number; set(ms: number): void; advance(ms: number): void };
  addFault(rule: FaultRule): () => void;
  clearFaults(): void;
  /** Invalidate every issued access token (next API call answers 401). */
  revokeTokens(): void;
  /** Convenience: calls to one route. */
  callsTo(route: FakeRoute): FakeCall[];
  /** Notifying sends of an object within the last 24 h of the fake clock. */
  notificationsInWindow(id: string): number;
  close(): Promise<void>;
}

const CLASS_FIELDS = new Set([
  'accountIdLabel', 'accountNameLabel', 'allowMultipleUsersPerObject', 'appLinkData', 'callbackOptions', 'classTemplateInfo',
  'countryCode', 'discoverableProgram', 'enableSmartTap', 'heroImage', 'hexBackgroundColor', 'homepageUri', 'id',
  'imageModulesData', 'infoModuleData', 'issuerName', 'kind', 'linksModuleData', 'localizedAccountIdLabel',
  'localizedAccountNameLabel', 'localizedIssuerName', 'localizedProgramName', 'localizedRewardsTier',
  'localizedRewardsTierLabel', 'localizedSecondaryRewardsTier', 'localizedSecondaryRewardsTierLabel', 'locations',
  'merchantLocations', 'messages', 'multipleDevicesAndHoldersAllowedStatus', 'notifyPreference', 'programLogo',
  'programName', 'redemptionIssuers', 'review', 'reviewStatus', 'rewardsTier', 'rewardsTierLabel', 'secondaryRewardsTier',
  'secondaryRewardsTierLabel', 'securityAnimation', 'textModulesData', 'valueAddedModuleData', 'version',
  'viewUnlockRequirement', 'wideProgramLogo', 'wordMark',
]);
const OBJECT_FIELDS = new Set([
  'accountId', 'accountName', 'appLinkData', 'barcode', 'classId', 'classReference', 'disableExpirationNotification',
  'groupingInfo', 'hasLinkedDevice', 'hasUsers', 'heroImage', 'id', 'imageModulesData', 'infoModuleData', 'kind',
  'linkedObjectIds', 'linkedOfferIds', 'linksModuleData', 'locations', 'loyaltyPoints', 'merchantLocations', 'messages',
  'notifyPreference', 'passConstraints', 'rotatingBarcode', 'saveRestrictions', 'secondaryLoyaltyPoints',
  'smartTapRedemptionValue', 'state', 'textModulesData', 'validTimeInterval', 'valueAddedModuleData', 'version',
]);
const BARCODE_TYPES = new Set(['AZTEC', 'CODE_39', 'CODE_128', 'CODABAR', 'DATA_MATRIX', 'EAN_8', 'EAN_13', 'ITF_14', 'PDF_417', 'QR_CODE', 'UPC_A', 'TEXT_ONLY']);
const OBJECT_STATES = new Set(['ACTIVE', 'COMPLETED', 'EXPIRED', 'INACTIVE']);
const MESSAGE_TYPES = new Set(['TEXT', 'TEXT_AND_NOTIFY']);
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function errorBody(code: number, message: string, status = STATUS_NAMES[code] ?? 'UNKNOWN') {
  return { error: { code, message, status, errors: [{ message, domain: 'global', reason: status.toLowerCase() }] } };
}

class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

const fail = (status: number, message: string, reason?: string): never => {
  throw new ApiFailure(status, message, reason);
};

/** mulberry32: small deterministic PRNG for fault probabilities. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function startGoogleFake(opts: GoogleFakeOptions): Promise<GoogleFake> {
  const issuerPrefix = `${opts.issuerId}.`;
  const audience = opts.tokenAudience ?? GOOGLE_TOKEN_URL;
  const random = prng(opts.seed ?? 42);
  let clockMs = opts.now ?? Date.now();
  let tokenCounter = 0;
  const validTokens = new Set<string>();
  let faults: Array<FaultRule & { used: number }> = [];

  const app = Fastify({ logger: false, bodyLimit: 50 * 1024 * 1024, forceCloseConnections: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  const fake: GoogleFake = {
    url: '',
    apiBaseUrl: '',
    tokenUrl: '',
    issuerKeysUrl: '',
    calls: [],
    classes: new Map(),
    objects: new Map(),
    notificationsSent: new Map(),
    tokenAssertions: [],
    issuedTokens: [],
    issuerKeys: { keys: [] },
    clock: {
      now: () => clockMs,
      set: (ms) => {
        clockMs = ms;
      },
      advance: (ms) => {
        clockMs += ms;
      },
    },
    addFault(rule) {
      const entry = { ...rule, used: 0 };
      faults.push(entry);
      return () => {
        faults = faults.filter((f) => f !== entry);
      };
    },
    clearFaults() {
      faults = [];
    },
    revokeTokens() {
      validTokens.clear();
    },
    callsTo(route) {
      return fake.calls.filter((call) => call.route === route);
    },
    notificationsInWindow(id) {
      return (fake.notificationsSent.get(id) ?? []).filter((t) => t > clockMs - DAY_MS && t <= clockMs).length;
    },
    async close() {
      await app.close();
    },
  };

  /** `statusOnly`: for batch parts, where a connection fault cannot apply. */
  function pickFault(route: FakeRoute, path: string, statusOnly = false): (FaultRule & { used: number }) | undefined {
    for (const fault of faults) {
      if (fault.route !== '*' && fault.route !== route) continue;
      if (fault.pathIncludes !== undefined && !path.includes(fault.pathIncludes)) continue;
      if (statusOnly && fault.status === undefined) continue;
      if (fault.times !== undefined && fault.used >= fault.times) continue;
      if (fault.rate !== undefined && random() >= fault.rate) continue;
      fault.used++;
      return fault;
    }
    return undefined;
  }

  function faultResponse(fault: FaultRule): FakeResponse {
    const status = fault.status ?? 500;
    return {
      status,
      body: errorBody(status, `Injected fault ${status}`, fault.reason),
      ...(fault.retryAfter !== undefined ? { headers: { 'retry-after': fault.retryAfter } } : {}),
    };
  }

  // ---- validation ----

  function checkId(id: unknown, what: string): string {
    if (typeof id !== 'string' || id === '') fail(400, `${what}: id is required`);
    const value = id as string;
    if (!/^[0-9]+\.[A-Za-z0-9._-]+$/.test(value)) fail(400, `Invalid resource ID: ${value}`);
    if (!value.startsWith(issuerPrefix)) fail(403, `The caller does not have permission for issuer of ${value}`);
    return value;
  }

  function checkUnknownFields(resource: Record<string, unknown>, known: Set<string>): void {
    for (const key of Object.keys(resource)) {
      if (!known.has(key)) fail(400, `Invalid JSON payload received. Unknown name "${key}" at 'resource': Cannot find field.`);
    }
  }

  function checkModules(resource: LoyaltyClass | LoyaltyObject): void {
    for (const module of resource.textModulesData ?? []) {
      if (module.id !== undefined && module.id !== null && !/^[A-Za-z0-9_-]+$/.test(module.id)) fail(400, `Invalid text module id: ${module.id}`);
    }
    for (const uri of resource.linksModuleData?.uris ?? []) {
      if (!uri.uri || !/^[a-z][a-z0-9+.-]*:/i.test(uri.uri)) fail(400, `Invalid uri: ${uri.uri}`);
    }
    if ((resource.messages?.length ?? 0) > 10) fail(400, 'Too many messages (max 10)');
    if ((resource.merchantLocations?.length ?? 0) > 10) fail(400, 'Too many merchantLocations (max 10)');
    for (const message of resource.messages ?? []) {
      if (message.messageType && !MESSAGE_TYPES.has(message.messageType)) fail(400, `Invalid messageType: ${message.messageType}`);
    }
  }

  function validateClass(cls: LoyaltyClass): void {
    checkUnknownFields(cls as Record<string, unknown>, CLASS_FIELDS);
    checkId(cls.id, 'class');
    if (!cls.issuerName) fail(400, 'issuerName is required');
    if (!cls.programName) fail(400, 'programName is required');
    const logo = cls.programLogo?.sourceUri?.uri;
    if (!logo) fail(400, 'programLogo is required');
    if (!/^https:\/\//.test(logo!)) fail(400, 'programLogo.sourceUri.uri must be https');
    if (cls.hexBackgroundColor && !/^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})$/.test(cls.hexBackgroundColor)) fail(400, 'Invalid hexBackgroundColor');
    if (cls.callbackOptions?.url && !/^https:\/\//.test(cls.callbackOptions.url)) fail(400, 'callbackOptions.url must be https');
    checkModules(cls);
  }

  function checkPoints(points: walletobjects_v1.Schema$LoyaltyPoints | undefined, what: string): void {
    if (!points) return;
    const balance = points.balance;
    if (!balance) fail(400, `${what}.balance is required`);
    const kinds = (['string', 'int', 'double', 'money'] as const).filter((k) => balance![k] !== undefined && balance![k] !== null);
    if (kinds.length !== 1) fail(400, `${what}.balance must have exactly one of string, int, double, money`);
    if (balance!.int !== undefined && balance!.int !== null) {
      if (!Number.isInteger(balance!.int) || balance!.int < -(2 ** 31) || balance!.int > 2 ** 31 - 1) fail(400, `${what}.balance.int is not an int32`);
    }
    if (balance!.money && typeof balance!.money.micros !== 'string') fail(400, `${what}.balance.money.micros must be a string (int64)`);
  }

  function validateObject(obj: LoyaltyObject): void {
    checkUnknownFields(obj as Record<string, unknown>, OBJECT_FIELDS);
    checkId(obj.id, 'object');
    if (!obj.classId) fail(400, 'classId is required');
    checkId(obj.classId, 'class');
    if (!obj.state || !OBJECT_STATES.has(obj.state)) fail(400, `Invalid state: ${obj.state}`);
    checkPoints(obj.loyaltyPoints, 'loyaltyPoints');
    checkPoints(obj.secondaryLoyaltyPoints, 'secondaryLoyaltyPoints');
    if (obj.barcode) {
      const { type, value, alternateText, renderEncoding } = obj.barcode;
      if (!type || !BARCODE_TYPES.has(type)) fail(400, `Invalid barcode type: ${type}`);
      if (!value) fail(400, 'barcode.value is required');
      if (type === 'TEXT_ONLY' && alternateText) fail(400, 'alternateText is not allowed with TEXT_ONLY');
      if (renderEncoding && (renderEncoding !== 'UTF_8' || type !== 'QR_CODE')) fail(400, 'renderEncoding UTF_8 is only for QR_CODE');
    }
    checkModules(obj);
    const cls = fake.classes.get(obj.classId!);
    if (!cls || cls.reviewStatus !== 'APPROVED') fail(404, `IssuerClassNotFoundException: class ${obj.classId} not found or not approved`, 'NOT_FOUND');
  }

  function notifyingAllowed(id: string): boolean {
    return fake.notificationsInWindow(id) < 3;
  }

  function recordNotification(id: string): void {
    const list = fake.notificationsSent.get(id) ?? [];
    list.push(clockMs);
    fake.notificationsSent.set(id, list);
  }

  const quotaExceeded = () =>
    fail(429, 'QuotaExceededException: at most 3 notifying messages or updates per pass in 24 hours; use TEXT', 'RESOURCE_EXHAUSTED');

  // ---- API ----

  function routeOf(method: string, pathname: string): { route: FakeRoute; collection?: 'class' | 'object'; id?: string } {
    const match = /^\/walletobjects\/v1\/(loyaltyClass|loyaltyObject)(?:\/([^/]+))?(\/addMessage)?\/?$/.exec(pathname);
    if (!match) return { route: 'unknown' };
    const collection = match[1] === 'loyaltyClass' ? 'class' : 'object';
    const id = match[2] ? decodeURIComponent(match[2]) : undefined;
    const C = collection === 'class' ? 'Class' : 'Object';
    if (match[3]) return method === 'POST' && id ? { route: `add${C}Message` as FakeRoute, collection, id } : { route: 'unknown' };
    if (!id) {
      if (method === 'POST') return { route: collection === 'class' ? 'insertClass' : 'insertObject', collection };
      if (method === 'GET') return { route: collection === 'class' ? 'listClasses' : 'listObjects', collection };
      return { route: 'unknown' };
    }
    if (method === 'GET') return { route: `get${C}` as FakeRoute, collection, id };
    if (method === 'PATCH') return { route: `patch${C}` as FakeRoute, collection, id };
    if (method === 'PUT') return { route: `put${C}` as FakeRoute, collection, id };
    return { route: 'unknown' };
  }

  function parseJsonBody(text: string): unknown {
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return fail(400, 'Invalid JSON payload received.');
    }
  }

  function list(items: Array<LoyaltyClass | LoyaltyObject>, query: URLSearchParams) {
    const sorted = [...items].sort((a, b) => (a.id! < b.id! ? -1 : 1));
    const offset = Number(query.get('token') ?? 0);
    const max = query.get('maxResults') ? Number(query.get('maxResults')) : sorted.length;
    const page = sorted.slice(offset, offset + max);
    const next = offset + max < sorted.length ? String(offset + max) : undefined;
    return { resources: page, pagination: { kind: 'walletobjects#pagination', resultsPerPage: page.length, ...(next ? { nextPageToken: next } : {}) } };
  }

  /** Applies one API request to the state. */
  function apply(route: FakeRoute, id: string | undefined, query: URLSearchParams, body: unknown): FakeResponse {
    const resource = (body ?? {}) as Record<string, unknown>;
    switch (route) {
      case 'insertClass': {
        const cls = structuredClone(resource) as LoyaltyClass;
        validateClass(cls);
        if (cls.reviewStatus !== 'UNDER_REVIEW' && cls.reviewStatus !== 'DRAFT') fail(400, `reviewStatus must be DRAFT or UNDER_REVIEW on insert, got ${cls.reviewStatus}`);
        if (fake.classes.has(cls.id!)) fail(409, `Resource with id ${cls.id} already exists.`);
        const stored = { ...cls, reviewStatus: cls.reviewStatus === 'UNDER_REVIEW' ? 'APPROVED' : 'DRAFT' };
        delete stored.notifyPreference;
        fake.classes.set(cls.id!, stored);
        return { status: 200, body: stored };
      }
      case 'getClass': {
        const cls = fake.classes.get(id!) ?? fail(404, `Resource ${id} not found.`);
        return { status: 200, body: cls };
      }
      case 'listClasses': {
        if (query.get('issuerId') !== opts.issuerId) fail(403, 'issuerId does not match the caller');
        return { status: 200, body: list([...fake.classes.values()], query) };
      }
      case 'patchClass':
      case 'putClass': {
        const existing = fake.classes.get(id!) ?? fail(404, `Resource ${id} not found.`);
        if (resource['id'] !== undefined && resource['id'] !== id) fail(400, 'id in body does not match the resource id');
        if (resource['reviewStatus'] === 'APPROVED') fail(400, 'reviewStatus APPROVED cannot be set; send UNDER_REVIEW');
        if (route === 'putClass' && resource['reviewStatus'] === undefined) fail(400, 'reviewStatus is required');
        const merged = route === 'patchClass' ? { ...existing, ...structuredClone(resource) } : { ...structuredClone(resource), id };
        if (route === 'patchClass' && resource['reviewStatus'] === undefined) merged.reviewStatus = existing.reviewStatus;
        const notify = merged.notifyPreference === 'NOTIFY_ON_UPDATE';
        delete merged.notifyPreference;
        validateClass(merged as LoyaltyClass);
        if (notify) {
          if (!notifyingAllowed(id!)) quotaExceeded();
          recordNotification(id!);
        }
        const stored = { ...merged, reviewStatus: merged.reviewStatus === 'DRAFT' ? 'DRAFT' : 'APPROVED' } as LoyaltyClass;
        fake.classes.set(id!, stored);
        return { status: 200, body: stored };
      }
      case 'insertObject': {
        const obj = structuredClone(resource) as LoyaltyObject;
        validateObject(obj);
        if (fake.objects.has(obj.id!)) fail(409, `Resource with id ${obj.id} already exists.`);
        const stored: LoyaltyObject = { ...obj, hasUsers: false };
        delete stored.notifyPreference;
        fake.objects.set(obj.id!, stored);
        return { status: 200, body: stored };
      }
      case 'getObject': {
        const obj = fake.objects.get(id!) ?? fail(404, `Resource ${id} not found.`);
        return { status: 200, body: obj };
      }
      case 'listObjects': {
        const classId = query.get('classId') ?? fail(400, 'classId is required');
        return { status: 200, body: list([...fake.objects.values()].filter((o) => o.classId === classId), query) };
      }
      case 'patchObject':
      case 'putObject': {
        const existing = fake.objects.get(id!) ?? fail(404, `Resource ${id} not found.`);
        if (resource['id'] !== undefined && resource['id'] !== id) fail(400, 'id in body does not match the resource id');
        const merged = route === 'patchObject' ? { ...existing, ...structuredClone(resource) } : { ...structuredClone(resource), id };
        const notify = merged.notifyPreference === 'NOTIFY_ON_UPDATE';
        // Ephemeral: "needs to be set with each PATCH or UPDATE request" (reference section 3).
        delete merged.notifyPreference;
        validateObject(merged as LoyaltyObject);
        if (notify) {
          if (!notifyingAllowed(id!)) quotaExceeded();
          recordNotification(id!);
        }
        const stored = { ...merged, hasUsers: existing.hasUsers ?? false } as LoyaltyObject;
        fake.objects.set(id!, stored);
        return { status: 200, body: stored };
      }
      case 'addClassMessage':
      case 'addObjectMessage': {
        const store = route === 'addClassMessage' ? fake.classes : fake.objects;
        const existing = (store.get(id!) as LoyaltyClass | LoyaltyObject | undefined) ?? fail(404, `Resource ${id} not found.`);
        const message = (resource['message'] ?? fail(400, 'message is required')) as walletobjects_v1.Schema$Message;
        if (!message.header && !message.body && !message.localizedBody) fail(400, 'message needs a header or body');
        const type = message.messageType ?? 'TEXT';
        if (!MESSAGE_TYPES.has(type)) fail(400, `Invalid messageType: ${type}`);
        if ((existing.messages?.length ?? 0) >= 10) fail(400, 'Messages limit exceeded: at most 10 messages per pass');
        if (type === 'TEXT_AND_NOTIFY') {
          if (!notifyingAllowed(id!)) quotaExceeded();
          recordNotification(id!);
        }
        const stored = { ...existing, messages: [...(existing.messages ?? []), structuredClone(message)] };
        (store as Map<string, typeof stored>).set(id!, stored);
        return { status: 200, body: { resource: stored } };
      }
      default:
        return fail(404, 'Not Found');
    }
  }

  function apiRequest(
    method: string,
    pathWithQuery: string,
    bodyText: string,
    viaBatch: boolean,
    headers: FakeCall['headers'],
    topFault?: FaultRule,
  ): FakeResponse {
    const url = new URL(pathWithQuery, 'http://fake');
    const { route, id } = routeOf(method, url.pathname);
    let body: unknown = bodyText;
    let response: FakeResponse;
    const picked = viaBatch ? pickFault(route, pathWithQuery, true) : topFault;
    const fault = picked?.status !== undefined ? picked : undefined;
    try {
      body = parseJsonBody(bodyText);
      if (fault && !fault.afterProcessing) {
        response = faultResponse(fault);
      } else {
        response = apply(route, id, url.searchParams, body);
        if (fault) response = faultResponse(fault);
      }
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      response = { status: error.status, body: errorBody(error.status, error.message, error.reason) };
    }
    fake.calls.push({ route, method, path: pathWithQuery, body, headers, status: response.status, ...(viaBatch ? { viaBatch } : {}) });
    return response;
  }

  // ---- batch ----

  function handleBatch(contentType: string, text: string, headers: FakeCall['headers']): FakeResponse {
    const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
    if (!boundary) return { status: 400, body: errorBody(400, 'multipart boundary missing') };
    const parts: string[] = [];
    for (const raw of text.split(`--${boundary}`).slice(1)) {
      if (raw.startsWith('--')) break;
      parts.push(raw);
    }
    if (parts.length > 1000) return { status: 400, body: errorBody(400, 'A batch may hold at most 1000 calls') };
    const answers: string[] = [];
    const responseBoundary = `batch_${randomUUID().replace(/-/g, '')}`;
    let n = 0;
    for (const raw of parts) {
      n++;
      const part = raw.replace(/^\r?\n/, '');
      const [outer, rest] = splitOnce(part);
      const contentId = /content-id:\s*<([^>]+)>/i.exec(outer)?.[1] ?? `item${n}`;
      const lines = rest.split(/\r?\n/);
      const requestLine = (lines.shift() ?? '').trim();
      const [method = '', path = ''] = requestLine.split(/\s+/);
      // Inner headers until a blank line (the Wallet sample's bare form has none).
      while (lines.length > 0 && lines[0]!.trim() !== '') lines.shift();
      lines.shift();
      const bodyText = lines.join('\n').trim();
      const answer = apiRequest(method.toUpperCase(), path, bodyText, true, headers);
      answers.push(
        [
          `--${responseBoundary}`,
          'Content-Type: application/http',
          `Content-ID: <response-${contentId}>`,
          '',
          `HTTP/1.1 ${answer.status} ${answer.status < 300 ? 'OK' : 'Error'}`,
          'Content-Type: application/json; charset=UTF-8',
          ...Object.entries(answer.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
          '',
          answer.body === undefined ? '' : JSON.stringify(answer.body),
        ].join('\r\n'),
      );
    }
    return {
      status: 200,
      body: answers.join('\r\n') + `\r\n--${responseBoundary}--\r\n`,
      headers: { 'content-type': `multipart/mixed; boundary=${responseBoundary}` },
    };
  }

  // ---- token ----

  function handleToken(text: string): FakeResponse {
    const form = new URLSearchParams(text);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' } };
    }
    let claims: Record<string, unknown>;
    try {
      const decoded = jwt.verify(form.get('assertion') ?? '', opts.serviceAccountPublicKey, {
        algorithms: ['RS256'],
        audience,
        issuer: opts.clientEmail,
      });
      claims = decoded as Record<string, unknown>;
    } catch (error) {
      return { status: 400, body: { error: 'invalid_grant', error_description: `Invalid JWT Signature or claims: ${(error as Error).message}` } };
    }
    const scopes = String(claims['scope'] ?? '').split(' ');
    if (!scopes.includes(WALLET_SCOPE)) return { status: 400, body: { error: 'invalid_scope', error_description: 'wallet scope missing' } };
    if (Number(claims['exp']) - Number(claims['iat']) !== 3600) return { status: 400, body: { error: 'invalid_grant', error_description: 'exp - iat must be 3600' } };
    fake.tokenAssertions.push(claims);
    const token = `fake-${++tokenCounter}`;
    validTokens.add(token);
    fake.issuedTokens.push(token);
    return { status: 200, body: { access_token: token, token_type: 'Bearer', expires_in: opts.tokenExpiresIn ?? 3599 } };
  }

  // ---- HTTP ----

  function authorized(request: FastifyRequest): boolean {
    const match = /^Bearer (fake-\d+)$/.exec(request.headers.authorization ?? '');
    return match !== null && validTokens.has(match[1]!);
  }

  async function send(reply: FastifyReply, response: FakeResponse): Promise<void> {
    reply.code(response.status);
    for (const [k, v] of Object.entries(response.headers ?? {})) reply.header(k, v);
    if (typeof response.body === 'string') await reply.send(response.body);
    else await reply.type('application/json; charset=UTF-8').send(JSON.stringify(response.body ?? {}));
  }

  app.all('/*', async (request, reply) => {
    const pathWithQuery = request.url;
    const { pathname } = new URL(pathWithQuery, 'http://fake');
    const text = typeof request.body === 'string' ? request.body : '';
    const headers = { ...request.headers };
    const topRoute: FakeRoute =
      pathname === '/token' ? 'token' : pathname === '/gp/m/issuer/keys' ? 'issuerKeys' : pathname === '/batch' ? 'batch' : routeOf(request.method, pathname).route;

    // One fault per request, taken before anything else (delay, then reset, then a status answer).
    const fault = pickFault(topRoute, pathWithQuery);
    if (fault?.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    if (fault?.reset) {
      fake.calls.push({ route: topRoute, method: request.method, path: pathWithQuery, body: safeJson(text), headers, status: 0 });
      request.raw.socket.destroy();
      return reply;
    }

    if (topRoute === 'token' || topRoute === 'issuerKeys' || topRoute === 'batch') {
      let response: FakeResponse;
      if (fault?.status !== undefined) response = faultResponse(fault);
      else if (topRoute === 'token') response = handleToken(text);
      else if (topRoute === 'issuerKeys') response = { status: 200, body: fake.issuerKeys };
      else if (!authorized(request)) response = { status: 401, body: errorBody(401, 'Request had invalid authentication credentials.') };
      else response = handleBatch(String(request.headers['content-type'] ?? ''), text, headers);
      fake.calls.push({ route: topRoute, method: request.method, path: pathWithQuery, body: topRoute === 'batch' ? text : safeJson(text), headers, status: response.status });
      return send(reply, response);
    }

    if (!pathname.startsWith('/walletobjects/v1/')) {
      fake.calls.push({ route: 'unknown', method: request.method, path: pathWithQuery, body: safeJson(text), headers, status: 404 });
      return send(reply, { status: 404, body: errorBody(404, 'Not Found') });
    }
    if (!authorized(request) && !(fault?.status !== undefined && !fault.afterProcessing)) {
      fake.calls.push({ route: topRoute, method: request.method, path: pathWithQuery, body: safeJson(text), headers, status: 401 });
      return send(reply, { status: 401, body: errorBody(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.') });
    }
    return send(reply, apiRequest(request.method, pathWithQuery, text, false, headers, fault));
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}`;
  fake.apiBaseUrl = `${fake.url}/walletobjects/v1`;
  fake.tokenUrl = `${fake.url}/token`;
  fake.issuerKeysUrl = `${fake.url}/gp/m/issuer/keys`;
  return fake;
}

function splitOnce(text: string): [string, string] {
  const match = /\r?\n\r?\n/.exec(text);
  return match ? [text.slice(0, match.index), text.slice(match.index + match[0].length)] : [text, ''];
}

function safeJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** sha256 hex, for tests that need stable derived values. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
