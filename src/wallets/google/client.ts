/**
 * Wallet Objects REST client for loyalty classes and objects.
 *
 * Reference: /work/shared/reference/google-wallet.md, sections 1 (endpoints), 3 (updates and
 * notifications), 5 (quotas, errors, retries, batch) and checklist 3, 9, 14–25, 38–42.
 *
 * Why not `@googleapis/walletobjects` at run time: googleapis-common retries only GET/HEAD/PUT/OPTIONS/
 * DELETE (never POST or PATCH, so never insert, patch or addMessage), ignores `Retry-After`, has no batch
 * helper, and mixing its bundled google-auth-library with the top-level one fails to type-check
 * (reference sections 5 and 6). The REST surface we need is nine calls, so this is `fetch` plus the
 * package's generated types (`import type`, nothing of it is loaded).
 *
 * Every HTTP request (every attempt, every retry, every batch part) first takes a token from the
 * process-wide limiter. Retry rules (checklist 39–40):
 *   - 429, 408, 5xx, timeouts and network errors: retried up to `maxAttempts` in total, with capped
 *     exponential backoff and jitter, never sooner than `Retry-After`; a `Retry-After` longer than
 *     `maxRetryAfterMs` ends the retries instead of parking the caller for minutes.
 *   - insert is retried like the rest: a retry that finds its own earlier attempt answers 409, which
 *     ensureClass/ensureObject treat as "exists" (reference section 5, "insert is safe").
 *   - addMessage is never retried once Google may have received it (a second copy is a second lock-screen
 *     notification, reference section 5): only failures that prove the request never left (connection
 *     refused, DNS failure, connect timeout) are retried. 401 is retried too: an unauthenticated request
 *     is not processed.
 *   - a NOTIFY_ON_UPDATE PATCH is not retried on 429 (it may be the notification quota, which retrying
 *     cannot fix); patchObject re-sends it once without notifyPreference instead.
 *   - 400/403/404/409 and other 4xx: not retried.
 *   - 401: the token is dropped, a new one fetched and the request sent once more (checklist 5).
 * Errors are `GoogleApiError`s carrying Google's `error.status` and `error.message` and the resource id;
 * logs carry the same, never the access token, the Authorization header or the key (checklist 41).
 */
import type { walletobjects_v1 } from '@googleapis/walletobjects';
import { randomBytes } from 'node:crypto';
import { createServiceAccountTokenProvider, type AccessTokenProvider } from './auth.js';
import type { GoogleWalletSettings } from './config.js';
import { limiterRate, processRateLimiter, type RateLimiter } from './rate-limiter.js';

export type LoyaltyClass = walletobjects_v1.Schema$LoyaltyClass;
export type LoyaltyObject = walletobjects_v1.Schema$LoyaltyObject;
export type WalletMessage = walletobjects_v1.Schema$Message;

export interface GoogleWalletLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RetryPolicy {
  /** Total attempts per request (first try included). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A longer `Retry-After` is not waited for: the error is returned at once. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 };

export interface GoogleWalletClientOptions {
  apiBaseUrl: string;
  tokens: AccessTokenProvider;
  limiter: RateLimiter;
  fetch?: typeof fetch;
  logger?: GoogleWalletLogger;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** For tests: how backoff waits (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  /** For tests: jitter source in [0, 1). */
  random?: () => number;
  /**
   * Whether each batch part takes its own limiter token (default true). Whether Google counts batch
   * parts against the 20 requests/s is (unconfirmed) (reference section 5): assume it does.
   */
  batchPartsCountAgainstLimit?: boolean;
}

/** An error from the Wallet API (or from getting there). */
export class GoogleApiError extends Error {
  override readonly name = 'GoogleApiError';
  /** HTTP status; 0 when no response arrived. */
  readonly status: number;
  /** Google's `error.status` (e.g. ALREADY_EXISTS); for status 0: NETWORK_ERROR or TIMEOUT. */
  readonly reason: string | undefined;
  readonly resourceId: string | undefined;
  /** e.g. `insertObject`. */
  readonly operation: string;
  readonly attempts: number;
  /** Seconds from `Retry-After`, when present. */
  readonly retryAfterSeconds: number | undefined;

  constructor(init: {
    status: number;
    reason?: string;
    message: string;
    resourceId?: string;
    operation: string;
    attempts?: number;
    retryAfterSeconds?: number;
  }) {
    super(init.message);
    this.status = init.status;
    this.reason = init.reason;
    this.resourceId = init.resourceId;
    this.operation = init.operation;
    this.attempts = init.attempts ?? 1;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }
}

export const isNotFound = (error: unknown): error is GoogleApiError => error instanceof GoogleApiError && error.status === 404;
export const isAlreadyExists = (error: unknown): error is GoogleApiError => error instanceof GoogleApiError && error.status === 409;

/**
 * The error that means "no more notifications for this pass today" (reference section 3: "results in a
 * QuotaExceededException, after which TEXT should be used"). Its HTTP status is (unconfirmed), so this
 * matches 429 or a quota-sounding 4xx. A plain rate-limit 429 also matches: downgrading then is the safe
 * mistake (a silent message instead of a possible duplicate or throttled notification).
 */
export function isNotificationQuotaError(error: unknown): error is GoogleApiError {
  if (!(error instanceof GoogleApiError)) return false;
  if (error.status === 429) return true;
  return error.status >= 400 && error.status < 500 && /quota|RESOURCE_EXHAUSTED/i.test(`${error.reason ?? ''} ${error.message}`);
}

export interface EnsureResult<T> {
  /** false when it existed already and was PATCHed. */
  created: boolean;
  resource: T;
}

export interface NotifyingResult<T> {
  resource: T;
  /** A notifying request (TEXT_AND_NOTIFY / NOTIFY_ON_UPDATE) was accepted by Google. */
  notified: boolean;
  /** A notifying request hit the notification quota and was re-sent without notifying. */
  downgraded: boolean;
}

export interface BatchRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT';
  /** Relative to the API base, e.g. `/loyaltyObject` or `/loyaltyObject/{id}`. */
  path: string;
  body?: unknown;
}

export interface BatchResult {
  status: number;
  body: unknown;
  /** Set when status is not 2xx. */
  error?: GoogleApiError;
}

/** Google's generic limit; for Wallet it is (unconfirmed) (reference section 5). */
export const MAX_BATCH_PARTS = 1000;

const RESOURCE_ID = /^[0-9]+\.[A-Za-z0-9._-]+$/;

/**
 * safe: retried on 429/5xx/network. message: addMessage, never retried once it may have arrived.
 * notifying: a NOTIFY_ON_UPDATE PATCH; like safe, except that 429 is not retried: Google's notification
 * quota answer is (unconfirmed) and cannot be told apart from a rate-limit 429, and retrying a quota error
 * five times only burns the 20/s budget; the caller re-sends it without notifyPreference instead.
 */
type Kind = 'safe' | 'message' | 'notifying';

interface RequestSpec {
  operation: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT';
  path: string;
  body?: unknown;
  resourceId?: string;
  kind: Kind;
  /** Batch only: absolute URL and the multipart boundary of the already-built body. */
  url?: string;
  batchBoundary?: string;
}

/**
 * Builds a client from settings, with its own token provider and, unless one is given (the
 * deployment-wide limiter on PostgreSQL, see runtime.ts), the process-wide limiter.
 */
export function createGoogleWalletClient(
  settings: GoogleWalletSettings,
  overrides: Partial<GoogleWalletClientOptions> = {},
): GoogleWalletClient {
  const tokens =
    overrides.tokens ??
    createServiceAccountTokenProvider({
      serviceAccount: settings.serviceAccount,
      tokenUrl: settings.tokenUrl,
      ...(overrides.logger ? { logger: overrides.logger } : {}),
    });
  const limiter =
    overrides.limiter ??
    processRateLimiter(limiterRate(settings.requestsPerSecond), (active) =>
      overrides.logger?.warn({ requested: settings.requestsPerSecond, active }, 'Google Wallet rate limiter already created with another rate'),
    );
  return new GoogleWalletClient({ ...overrides, apiBaseUrl: settings.apiBaseUrl, tokens, limiter });
}

export class GoogleWalletClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly logger: GoogleWalletLogger | undefined;
  private readonly timeoutMs: number;
  private readonly policy: RetryPolicy;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly opts: GoogleWalletClientOptions) {
    this.base = opts.apiBaseUrl.replace(/\/+$/, '');
    this.fetchImpl = opts.fetch ?? fetch;
    this.logger = opts.logger;
    this.timeoutMs = opts.timeoutMs ?? 20_000;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...opts.retry };
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = opts.random ?? Math.random;
  }

  // ---- classes ---------------------------------------------------------------------------------

  /**
   * Always inserts with `reviewStatus: UNDER_REVIEW` (reference section 1.2: "A draft class cannot be
   * used to create any object"; Google approves UNDER_REVIEW automatically; checklist 8).
   */
  async insertClass(cls: LoyaltyClass): Promise<LoyaltyClass> {
    const id = requireId(cls.id, 'insertClass');
    return this.request({ operation: 'insertClass', method: 'POST', path: '/loyaltyClass', body: { ...cls, reviewStatus: 'UNDER_REVIEW' }, resourceId: id, kind: 'safe' });
  }

  /** The class, or null when it does not exist. */
  async getClass(id: string): Promise<LoyaltyClass | null> {
    return this.orNull(this.request({ operation: 'getClass', method: 'GET', path: `/loyaltyClass/${encodeId(id, 'getClass')}`, resourceId: id, kind: 'safe' }));
  }

  /**
   * PATCH (only the sent fields change; arrays are replaced whole: send the full array, checklist 18).
   * Always sends `reviewStatus: UNDER_REVIEW`, also when the class was APPROVED: echoing APPROVED is
   * rejected (reference section 1.2, spatie/laravel-mobile-pass#71; checklist 9).
   */
  async patchClass(id: string, patch: LoyaltyClass): Promise<LoyaltyClass> {
    return this.request({
      operation: 'patchClass',
      method: 'PATCH',
      path: `/loyaltyClass/${encodeId(id, 'patchClass')}`,
      body: { ...patch, reviewStatus: 'UNDER_REVIEW' },
      resourceId: id,
      kind: 'safe',
    });
  }

  /**
   * Insert; on 409 PATCH the mutable fields (reference section 5: "the sample's GET → 404 → insert is
   * racy"; checklist 14). The PATCH leaves `messages` alone: they are managed with addMessage, and a
   * desired-state description must not wipe the messages already shown to holders.
   */
  async ensureClass(cls: LoyaltyClass): Promise<EnsureResult<LoyaltyClass>> {
    const id = requireId(cls.id, 'ensureClass');
    try {
      return { created: true, resource: await this.insertClass(cls) };
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    return { created: false, resource: await this.patchClass(id, mutableFields(cls)) };
  }

  async addClassMessage(id: string, message: WalletMessage): Promise<NotifyingResult<LoyaltyClass>> {
    return this.addMessage('loyaltyClass', 'addClassMessage', id, message) as Promise<NotifyingResult<LoyaltyClass>>;
  }

  // ---- objects ---------------------------------------------------------------------------------

  async insertObject(obj: LoyaltyObject): Promise<LoyaltyObject> {
    const id = requireId(obj.id, 'insertObject');
    return this.request({ operation: 'insertObject', method: 'POST', path: '/loyaltyObject', body: obj, resourceId: id, kind: 'safe' });
  }

  /** The object, or null when it does not exist. */
  async getObject(id: string): Promise<LoyaltyObject | null> {
    return this.orNull(this.request({ operation: 'getObject', method: 'GET', path: `/loyaltyObject/${encodeId(id, 'getObject')}`, resourceId: id, kind: 'safe' }));
  }

  /**
   * PATCH an object. Balance updates send only `loyaltyPoints` (checklist 16); there is no PUT here at
   * all (a PUT without a prior GET wipes fields, checklist 17).
   *
   * `notify: true` adds `notifyPreference: NOTIFY_ON_UPDATE`, which is "ephemeral and needs to be set
   * with each PATCH" (reference section 3; checklist 21). If that PATCH hits the notification quota it is
   * re-sent without notifyPreference (the data change must still land; checklist 23/25).
   *
   * A `classId` in the patch moves the object to another class (tier change, see payloads.ts). If Google
   * answers with a different classId the change did not take, and that is an error, not a silent no-op.
   */
  async patchObject(id: string, patch: LoyaltyObject, options: { notify?: boolean } = {}): Promise<NotifyingResult<LoyaltyObject>> {
    const path = `/loyaltyObject/${encodeId(id, 'patchObject')}`;
    const send = (notify: boolean) =>
      this.request<LoyaltyObject>({
        operation: 'patchObject',
        method: 'PATCH',
        path,
        body: notify ? { ...withoutNotify(patch), notifyPreference: 'NOTIFY_ON_UPDATE' } : withoutNotify(patch),
        resourceId: id,
        kind: notify ? 'notifying' : 'safe',
      });
    let result: NotifyingResult<LoyaltyObject>;
    if (options.notify) {
      try {
        result = { resource: await send(true), notified: true, downgraded: false };
      } catch (error) {
        if (!isNotificationQuotaError(error)) throw error;
        this.logger?.warn(logFields(error), 'Google notification quota reached; object updated without notifying');
        result = { resource: await send(false), notified: false, downgraded: true };
      }
    } else {
      result = { resource: await send(false), notified: false, downgraded: false };
    }
    if (patch.classId && result.resource.classId && result.resource.classId !== patch.classId) {
      throw new GoogleApiError({
        status: 200,
        reason: 'CLASS_ID_NOT_CHANGED',
        message: `Google kept classId ${result.resource.classId} after a PATCH to ${patch.classId}`,
        resourceId: id,
        operation: 'patchObject',
      });
    }
    return result;
  }

  /**
   * Insert; on 409 PATCH the mutable fields (checklist 15: concurrent ensures for one member give one
   * object and no error). With `cls`, a 404 for the class (IssuerClassNotFound) ensures the class and
   * inserts once more (checklist 20). Like ensureClass, the PATCH leaves `messages` alone.
   */
  async ensureObject(obj: LoyaltyObject, options: { cls?: LoyaltyClass } = {}): Promise<EnsureResult<LoyaltyObject>> {
    const id = requireId(obj.id, 'ensureObject');
    for (let classEnsured = false; ; classEnsured = true) {
      try {
        return { created: true, resource: await this.insertObject(obj) };
      } catch (error) {
        if (isAlreadyExists(error)) break;
        if (isNotFound(error) && options.cls && !classEnsured) {
          await this.ensureClass(options.cls);
          continue;
        }
        throw error;
      }
    }
    const { resource } = await this.patchObject(id, mutableFields(obj));
    return { created: false, resource };
  }

  async addObjectMessage(id: string, message: WalletMessage): Promise<NotifyingResult<LoyaltyObject>> {
    return this.addMessage('loyaltyObject', 'addObjectMessage', id, message) as Promise<NotifyingResult<LoyaltyObject>>;
  }

  // ---- batch -----------------------------------------------------------------------------------

  /**
   * One `multipart/mixed` POST to `{origin}/batch` (reference section 5). Parts use Google's generic batch
   * format (`Content-Type: application/http`, `Content-ID`, an HTTP/1.1 request line with the full API
   * path); every response part's own status is parsed and returned in request order. Parts that failed
   * with 429/5xx are re-sent in a further batch (with backoff), except addMessage parts, which are never
   * re-sent after a response (duplicate notifications). At most MAX_BATCH_PARTS parts.
   */
  async batch(requests: BatchRequest[]): Promise<BatchResult[]> {
    if (requests.length === 0) return [];
    if (requests.length > MAX_BATCH_PARTS) throw new RangeError(`A batch holds at most ${MAX_BATCH_PARTS} parts, got ${requests.length}`);
    const results: Array<BatchResult | undefined> = new Array(requests.length);
    let pending = requests.map((_, index) => index);
    for (let attempt = 1; pending.length > 0; attempt++) {
      const answered = await this.sendBatch(pending.map((index) => requests[index]!));
      const retry: number[] = [];
      let retryAfterMs = 0;
      answered.forEach((part, i) => {
        const index = pending[i]!;
        results[index] = part;
        const isMessage = requests[index]!.path.endsWith('/addMessage');
        if (!isMessage && isRetryableStatus(part.status) && attempt < this.policy.maxAttempts) {
          retry.push(index);
          retryAfterMs = Math.max(retryAfterMs, (part.error?.retryAfterSeconds ?? 0) * 1000);
        }
      });
      if (retry.length > 0) await this.sleep(Math.max(retryAfterMs, this.backoff(attempt)));
      pending = retry;
    }
    return results as BatchResult[];
  }

  private async sendBatch(parts: BatchRequest[]): Promise<BatchResult[]> {
    const url = new URL(this.base);
    const apiPath = url.pathname.replace(/\/+$/, '');
    const boundary = `batch_${randomBytes(12).toString('hex')}`;
    const body =
      parts
        .map((part, i) => {
          const json = part.body === undefined ? '' : JSON.stringify(part.body);
          return [
            `--${boundary}`,
            'Content-Type: application/http',
            `Content-ID: <item${i + 1}>`,
            '',
            `${part.method} ${apiPath}${part.path} HTTP/1.1`,
            ...(json ? ['Content-Type: application/json; charset=UTF-8', `Content-Length: ${Buffer.byteLength(json)}`] : []),
            '',
            json,
          ].join('\r\n');
        })
        .join('\r\n') + `\r\n--${boundary}--\r\n`;
    const extraTokens = this.opts.batchPartsCountAgainstLimit === false ? 0 : parts.length - 1;
    for (let i = 0; i < extraTokens; i++) await this.opts.limiter.acquire();
    const response = await this.request<{ text: string; contentType: string }>({
      operation: 'batch',
      method: 'POST',
      path: '',
      body,
      kind: parts.some((part) => part.path.endsWith('/addMessage')) ? 'message' : 'safe',
      batchBoundary: boundary,
      url: `${url.origin}/batch`,
    });
    return parseBatchResponse(response.text, response.contentType, parts.length);
  }

  // ---- plumbing --------------------------------------------------------------------------------

  private async addMessage(
    collection: 'loyaltyClass' | 'loyaltyObject',
    operation: string,
    id: string,
    message: WalletMessage,
  ): Promise<NotifyingResult<LoyaltyClass | LoyaltyObject>> {
    const path = `/${collection}/${encodeId(id, operation)}/addMessage`;
    const notifying = message.messageType === 'TEXT_AND_NOTIFY';
    const send = (msg: WalletMessage) =>
      this.request<{ resource?: LoyaltyClass | LoyaltyObject }>({ operation, method: 'POST', path, body: { message: msg }, resourceId: id, kind: 'message' });
    try {
      const answer = await send({ ...message, messageType: message.messageType ?? 'TEXT' });
      return { resource: answer.resource ?? {}, notified: notifying, downgraded: false };
    } catch (error) {
      if (!notifying || !isNotificationQuotaError(error)) throw error;
      // Checklist 25: never re-sent as notifying; once as TEXT (an error answer means it was not added).
      this.logger?.warn(logFields(error), 'Google notification quota reached; message re-sent as TEXT');
      const answer = await send({ ...message, messageType: 'TEXT' });
      return { resource: answer.resource ?? {}, notified: false, downgraded: true };
    }
  }

  private async orNull<T>(promise: Promise<T>): Promise<T | null> {
    try {
      return await promise;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  private backoff(attempt: number): number {
    // Capped exponential backoff with "equal jitter": half fixed, half random, so retries from many
    // workers spread out but never collapse to zero delay.
    const ceiling = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  private async request<T>(spec: RequestSpec): Promise<T> {
    const url = spec.url ?? `${this.base}${spec.path}`;
    let authRetried = false;
    for (let attempt = 1; ; attempt++) {
      // The token first, then the limiter's slot: the slot is when the request leaves. Taken the other
      // way round, every request waiting for a token fetch (the first ones of a process, each hour)
      // left together when it came, a burst above the limit (test/cluster/cluster.test.ts saw 14 in 50 ms).
      const token = await this.opts.tokens.getAccessToken();
      await this.opts.limiter.acquire();
      const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
      let payload: string | undefined;
      if (spec.batchBoundary) {
        headers['Content-Type'] = `multipart/mixed; boundary=${spec.batchBoundary}`;
        payload = spec.body as string;
      } else if (spec.body !== undefined) {
        headers['Content-Type'] = 'application/json; charset=UTF-8';
        payload = JSON.stringify(spec.body);
      }

      let response: Response;
      try {
        response = await this.fetchImpl(url, { method: spec.method, headers, body: payload, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (cause) {
        const timeout = isTimeout(cause);
        const error = new GoogleApiError({
          status: 0,
          reason: timeout ? 'TIMEOUT' : 'NETWORK_ERROR',
          message: `${spec.operation}: ${timeout ? `no answer within ${this.timeoutMs} ms` : describeNetworkError(cause)}`,
          ...(spec.resourceId ? { resourceId: spec.resourceId } : {}),
          operation: spec.operation,
          attempts: attempt,
        });
        // A message may only be re-sent when it provably never reached Google.
        const retryable = spec.kind === 'message' ? neverSent(cause) : true;
        if (!retryable || attempt >= this.policy.maxAttempts) {
          this.logger?.warn(logFields(error), 'Google Wallet request failed');
          throw error;
        }
        this.logger?.warn({ ...logFields(error), retryIn: 'backoff' }, 'Google Wallet request failed; retrying');
        await this.sleep(this.backoff(attempt));
        continue;
      }

      if (response.ok) {
        if (spec.batchBoundary) return { text: await response.text(), contentType: response.headers.get('content-type') ?? '' } as T;
        const text = await response.text();
        return (text ? JSON.parse(text) : {}) as T;
      }

      const error = await toApiError(response, spec, attempt);
      if (response.status === 401 && !authRetried) {
        // Checklist 5: refresh and retry once. Not counted as an attempt: it is not a server fault.
        authRetried = true;
        this.opts.tokens.invalidate(token);
        attempt--;
        continue;
      }
      const retryable =
        spec.kind !== 'message' &&
        !(spec.kind === 'notifying' && response.status === 429) &&
        isRetryableStatus(response.status) &&
        attempt < this.policy.maxAttempts;
      const retryAfterMs = error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : undefined;
      if (!retryable || (retryAfterMs !== undefined && retryAfterMs > this.policy.maxRetryAfterMs)) {
        const fields = logFields(error);
        if (response.status === 403) {
          this.logger?.error(fields, 'Google Wallet denied access: add the service account as a user in the Google Pay & Wallet Console');
        } else if (response.status !== 404 && response.status !== 409) {
          // 404 and 409 are expected answers that callers handle (null / ensure); not worth a log line.
          this.logger?.warn(fields, 'Google Wallet request failed');
        }
        throw error;
      }
      const delay = Math.max(retryAfterMs ?? 0, this.backoff(attempt));
      this.logger?.warn({ ...logFields(error), retryInMs: delay }, 'Google Wallet request failed; retrying');
      await this.sleep(delay);
    }
  }
}

function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

async function toApiError(response: Response, spec: RequestSpec, attempt: number): Promise<GoogleApiError> {
  const text = await response.text().catch(() => '');
  let reason: string | undefined;
  let message = `HTTP ${response.status}`;
  try {
    // Google's standard envelope: {"error": {"code", "message", "errors", "status"}} (reference section 5).
    const envelope = JSON.parse(text) as { error?: { message?: unknown; status?: unknown } };
    if (typeof envelope.error?.message === 'string') message = envelope.error.message;
    if (typeof envelope.error?.status === 'string') reason = envelope.error.status;
  } catch {
    if (text) message = `HTTP ${response.status}: ${text.slice(0, 200)}`;
  }
  const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'));
  return new GoogleApiError({
    status: response.status,
    ...(reason ? { reason } : {}),
    message,
    ...(spec.resourceId ? { resourceId: spec.resourceId } : {}),
    operation: spec.operation,
    attempts: attempt,
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  });
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

function isTimeout(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

function errorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  if (typeof e?.code === 'string') return e.code;
  if (e?.cause) return errorCode(e.cause);
  if (Array.isArray(e?.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  return undefined;
}

/**
 * Failures that happen before a single byte of the request is written: no connection was made. A reset
 * or a timeout after connecting may come after Google processed the request, so those are not here.
 */
const NEVER_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function neverSent(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && NEVER_SENT_CODES.has(code);
}

function describeNetworkError(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code ? `${message} (${code})` : message;
}

function logFields(error: GoogleApiError): Record<string, unknown> {
  return {
    operation: error.operation,
    resourceId: error.resourceId,
    status: error.status,
    reason: error.reason,
    err: error.message,
    attempts: error.attempts,
  };
}

function requireId(id: string | null | undefined, operation: string): string {
  if (typeof id !== 'string' || !RESOURCE_ID.test(id)) {
    // Same shape as Google's answer, without spending a request on it (reference section 5: 400
    // "Invalid resource ID"; ids are "issuer ID.identifier" with only alphanumerics, '.', '_', '-').
    throw new GoogleApiError({ status: 400, reason: 'INVALID_ARGUMENT', message: `Invalid resource ID: ${JSON.stringify(id)}`, operation, ...(typeof id === 'string' ? { resourceId: id } : {}) });
  }
  return id;
}

function encodeId(id: string, operation: string): string {
  return encodeURIComponent(requireId(id, operation));
}

function mutableFields<T extends { id?: string | null; messages?: unknown }>(resource: T): T {
  const { id: _id, messages: _messages, ...rest } = resource;
  return rest as T;
}

function withoutNotify(patch: LoyaltyObject): LoyaltyObject {
  const { notifyPreference: _ignored, ...rest } = patch;
  return rest;
}

/** Parses a `multipart/mixed` batch answer into one result per request part, in request order. */
export function parseBatchResponse(text: string, contentType: string, expected: number): BatchResult[] {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw new GoogleApiError({ status: 200, reason: 'BAD_BATCH_RESPONSE', message: 'Batch answer has no multipart boundary', operation: 'batch' });
  const results: Array<BatchResult | undefined> = new Array(expected);
  const chunks = text.split(`--${boundary}`).slice(1);
  let order = 0;
  for (const chunk of chunks) {
    if (chunk.startsWith('--')) break;
    const [outerHeaders, inner] = splitHeaders(chunk.replace(/^\r?\n/, ''));
    const contentId = /content-id:\s*<?(?:response-)?item(\d+)>?/i.exec(outerHeaders)?.[1];
    const index = contentId ? Number(contentId) - 1 : order;
    order++;
    const [innerHead, innerBody] = splitHeaders(inner);
    const status = Number(/^HTTP\/[\d.]+\s+(\d{3})/.exec(innerHead.trim())?.[1] ?? 0);
    const bodyText = innerBody.trim();
    let body: unknown = bodyText;
    try {
      body = bodyText ? JSON.parse(bodyText) : undefined;
    } catch {
      // keep the text
    }
    const result: BatchResult = { status, body };
    if (status < 200 || status >= 300) {
      const envelope = (body ?? {}) as { error?: { message?: string; status?: string } };
      const retryAfter = parseRetryAfter(/retry-after:\s*([^\r\n]+)/i.exec(innerHead)?.[1] ?? null);
      result.error = new GoogleApiError({
        status,
        ...(envelope.error?.status ? { reason: envelope.error.status } : {}),
        message: envelope.error?.message ?? `HTTP ${status}`,
        operation: 'batch',
        ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
      });
    }
    if (index >= 0 && index < expected) results[index] = result;
  }
  return results.map(
    (result) =>
      result ?? {
        status: 0,
        body: undefined,
        error: new GoogleApiError({ status: 0, reason: 'MISSING_BATCH_PART', message: 'No answer for this batch part', operation: 'batch' }),
      },
  );
}

function splitHeaders(text: string): [string, string] {
  const match = /\r?\n\r?\n/.exec(text);
  if (!match) return [text, ''];
  return [text.slice(0, match.index), text.slice(match.index + match[0].length)];
}
