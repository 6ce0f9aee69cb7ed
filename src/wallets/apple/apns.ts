/**
 * APNs sender for Apple Wallet pass updates.
 *
 * Reference: /work/shared/reference/apple-wallet.md, section 2 (APNs for pass updates) and section 7
 * ("Push"). Apple: "Adding a Web Service to Update Passes" (same certificate as for signing, the
 * registered push token, "an empty JSON dictionary for the payload", production environment only) and
 * "Communicating with APNs" / "Handling notification responses from APNs" (status codes and reasons).
 *
 * Why not @parse/node-apn (the issue asked for it "unless it cannot reach 5,000 pushes/s or gets in the
 * way"). Measured on the 2-core dev machine, loopback, stand-in in a child process, 50,000 distinct
 * tokens, one connection, 100 in flight:
 *   - speed is not the problem. `npm run bench:apns`, best of 3 rounds (the machine is shared; single
 *     rounds vary up to 2x): bare node:http2 19,000 pushes/s, this sender 14,900/s (ratio 0.78),
 *     node-apn 9,600/s with Provider.send in chunks of 1,000 (13,400/s in an earlier run) and 9,350/s
 *     with one send() per token. Issue #14 (docs/benchmarks.md "APNs sender"): interleaved rounds,
 *     medians, same run: node-apn 5,044/s and 76 µs CPU per push vs this sender 5,486/s and 74 µs,
 *     bare node:http2 6,762/s and 60 µs; node-apn is still not the faster choice.
 *   - GOAWAY is: APNs closes connections with GOAWAY (parse-community/node-apn#140, PR #202 still open).
 *     With the same stand-in sending GOAWAY after 500 of 3,000 in-flight pushes, a plain node:http2
 *     client got all 3,000 answered (the server still answers streams up to its last-stream-id), while
 *     node-apn 8.1.0 got 500: its goaway handler sees `session.closed` (already true after a GOAWAY),
 *     skips the graceful close and calls `session.destroy()`, which kills the 2,500 streams the server was
 *     about to answer; they fail as "stream ended unexpectedly with status null", which node-apn does not
 *     retry.
 *   - its retries get in the way too: 429/5xx are retried with no delay (it reads `Retry-After` with
 *     the wrong case, so the delay is always 0) on the same session, every final 500 closes the shared
 *     connection, and an error on a closed session replaces the APNs status with "client session is
 *     either closed or destroyed". We would have had to switch them off and rewrite them anyway.
 *   - `{}` cannot be sent at all (parse-community/node-apn#219: no body → 400 PayloadEmpty); only
 *     `{"aps":{}}` via rawPayload. It forces the sandbox environment for any non-Apple host and then
 *     refuses a certificate without the sandbox OID (real Pass Type ID certificates only have the
 *     production one), and it cannot see the server's SETTINGS_MAX_CONCURRENT_STREAMS.
 * So this is a small node:http2 client with the same exported API. `npm run bench:apns` re-measures.
 *
 * Behaviour:
 *   - one long-lived HTTP/2 connection (rapid reconnects look like DoS to Apple); a new one after GOAWAY,
 *     close, error, a failed health PING, 503 or IdleTimeout. Reconnect attempts after a failed connect
 *     back off exponentially (at most every 5 s) and are shared: requests waiting for a connection wait
 *     for the next attempt instead of failing, so one failed connect never fails the rest of a batch.
 *     A call gives up waiting only once `maxConnectAttempts` connects in a row have failed and it made
 *     (or waited for) at least one attempt of its own; its untried tokens come back as retryable
 *     `ConnectionError` outcomes (the update path keeps them pending, src/updates/pending-deliveries.ts).
 *   - at most `concurrency` requests in flight, and never more than the server's advertised
 *     SETTINGS_MAX_CONCURRENT_STREAMS: node:http2 would otherwise queue the excess silently and the queued
 *     requests would eat their timeout (reference section 2). The timeout starts when a request gets a
 *     stream slot.
 *   - body is exactly `{}` (2 bytes); headers apns-topic = pass type id, apns-priority 10 (5 may be batched
 *     or dropped), apns-expiration now + 24 h. No apns-push-type: Apple does not document one for Wallet
 *     and "omitted" is reported to work (reference section 2; `background` "can be postponed arbitrarily").
 *   - tokens are de-duplicated within one call (one push makes the device fetch every changed pass, so a
 *     second push to the same token is pure load); one outcome per distinct token, in first-seen order.
 *   - 429, 500, 502, 503, 504, 400 IdleTimeout, timeouts and transport errors are retried with exponential
 *     backoff and jitter, never sooner than a `Retry-After` answer header, at most `maxRetries` times; the
 *     last outcome is returned (disposition 'retry-exhausted', {@link isRetryablePushOutcome}: the caller
 *     keeps the push pending and retries it later, it is never dropped). A `Retry-After` longer than
 *     `maxRetryAfterMs` is not slept through inside the call: the outcome comes back at once with
 *     `retryAfterMs` for the caller to schedule. A refused stream (GOAWAY) is retried at once: HTTP/2
 *     guarantees it was not processed (RFC 9113 §8.7 / RFC 7540 §8.1.4).
 *   - nothing here deletes anything: callers act on {@link classifyPushOutcome}. 403 and config errors are
 *     logged with logger.error (page on-call), once per call and reason with a count.
 *   - never logs keys or full push tokens (an 8-character prefix at most).
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import tls, { type SecureContext } from 'node:tls';

/** Production APNs (reference section 2): pass updates work only there; never the sandbox. */
export const APNS_PRODUCTION_HOST = 'api.push.apple.com';
export const APNS_PRODUCTION_PORT = 443;

export interface PushOutcome {
  token: string;
  /** HTTP status from APNs; 0 when no HTTP answer arrived (timeout, refused stream, connection failure). */
  status: number;
  /** APNs `reason` from the JSON body, or for status 0: 'Timeout' | 'RefusedStream' | 'StreamError' | 'ConnectionError' | 'Closed'. */
  reason?: string;
  /** ms since epoch, from APNs' 410 body: the token is invalid since then (delete only registrations older than this). */
  timestamp?: number;
  apnsId?: string;
  /** From a `Retry-After` answer header, in ms: the token must not be pushed again sooner. */
  retryAfterMs?: number;
}

export type PushDisposition =
  | 'delivered'
  | 'unregistered'
  | 'bad-token'
  | 'config-error'
  | 'auth-error'
  | 'retry-exhausted'
  | 'client-error';

export interface ApnsSender {
  /**
   * Pushes an empty update notification to every distinct token (topic = pass type identifier).
   * Resolves with one outcome per distinct token, in first-seen order; never rejects for APNs or network
   * errors (those are outcomes), only when the sender is closed or the arguments are invalid.
   */
  push(tokens: string[], topic: string): Promise<PushOutcome[]>;
  /** Closes the connection gracefully (in-flight requests finish or time out). */
  close(): Promise<void>;
}

export interface ApnsSenderOptions {
  /** Pass Type ID certificate and key (the pass signing certificate is the APNs TLS client certificate). */
  certPem: string;
  keyPem: string;
  passphrase?: string;
  /** api.push.apple.com / 443 in production ({@link APNS_PRODUCTION_HOST}); a local stand-in in tests. */
  host: string;
  port: number;
  /** Trust these CAs for the server certificate instead of Node's bundled roots (tests only). */
  caPem?: string;
  /** Requests in flight at once (default 100; the reference suggests 100–500 per connection). */
  concurrency?: number;
  /**
   * No longer used (accepted and validated so existing configurations keep working): push() now runs one
   * sliding window of `concurrency` requests over the whole call instead of chunks (issue #14).
   */
  chunkSize?: number;
  /** Per-request timeout, from getting a stream slot to the end of the answer; also the connect and PING timeout (default 10,000). */
  requestTimeoutMs?: number;
  /** Retries after the first attempt for retryable outcomes (default 3). */
  maxRetries?: number;
  /** First backoff delay; doubles per retry, with jitter, capped at 30 s (default 200). */
  retryBaseDelayMs?: number;
  /** A `Retry-After` up to this long is waited for inside the call; a longer one returns the outcome at once (default 5,000). */
  maxRetryAfterMs?: number;
  /**
   * Failed connection attempts in a row after which a call stops waiting for a connection and returns its
   * untried tokens as `ConnectionError` (default 4). Every call gets at least one attempt of its own.
   */
  maxConnectAttempts?: number;
  logger?: { warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
}

// Reasons from Apple's "Handling notification responses from APNs" (reference section 2 table).
const CONFIG_REASONS = new Set(['DeviceTokenNotForTopic', 'BadTopic', 'MissingTopic', 'TopicDisallowed']);
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
/** Transport-level reasons for status 0 outcomes. */
const TIMEOUT = 'Timeout';
const REFUSED_STREAM = 'RefusedStream';
const STREAM_ERROR = 'StreamError';
const CONNECTION_ERROR = 'ConnectionError';
const CLOSED = 'Closed';

const DEFAULTS = {
  concurrency: 100,
  chunkSize: 1000,
  requestTimeoutMs: 10_000,
  maxRetries: 3,
  retryBaseDelayMs: 200,
  maxRetryAfterMs: 5_000,
  maxConnectAttempts: 4,
} as const;
const MAX_BACKOFF_MS = 30_000;
/** Reconnects back off up to this: rare enough not to look like DoS, short enough for a waiting batch. */
const MAX_CONNECT_BACKOFF_MS = 5_000;
/** PING an idle long-lived connection this often (reference section 2: "HTTP/2 PING for health"). */
const HEALTH_PING_INTERVAL_MS = 60_000;
/** apns-expiration: now + 24 h, in seconds since epoch (reference section 2). */
const EXPIRATION_SECONDS = 24 * 60 * 60;

/**
 * What to do with an outcome (reference section 2 table):
 *   delivered        200.
 *   unregistered     410 (Unregistered, ExpiredToken): delete registrations with this token whose
 *                    updated_at < timestamp (a later re-registration wins).
 *   bad-token        400 BadDeviceToken: delete registrations with this token; spikes mean a wrong host.
 *   config-error     400 DeviceTokenNotForTopic/BadTopic/MissingTopic/TopicDisallowed: alert, delete nothing.
 *   auth-error       403 (BadCertificate*, Forbidden, *ProviderToken): page on-call, delete nothing.
 *   retry-exhausted  429/5xx/IdleTimeout/timeout/network after all retries: keep data, try again later.
 *   client-error     any other answer (PayloadEmpty, Bad*, 404, 405, 413, …): our bug; alert.
 */
export function classifyPushOutcome(o: PushOutcome): PushDisposition {
  if (o.status === 200) return 'delivered';
  if (o.status === 410) return 'unregistered';
  if (o.status === 403) return 'auth-error';
  if (o.status === 400 && o.reason === 'BadDeviceToken') return 'bad-token';
  if (o.status === 400 && o.reason !== undefined && CONFIG_REASONS.has(o.reason)) return 'config-error';
  if (isRetryablePushOutcome(o)) return 'retry-exhausted';
  return 'client-error';
}

/**
 * Whether a later attempt can succeed: 429, 500, 502, 503, 504 and 400 IdleTimeout (reference section 2:
 * "Back off", "Retry with exponential backoff", "IdleTimeout: reconnect"), and every outcome without an
 * HTTP answer (timeout, stream reset, refused stream after GOAWAY, connection refused or reset, sender
 * closed). Such a push must stay pending until it is delivered or the token is declared dead.
 */
export function isRetryablePushOutcome(o: PushOutcome): boolean {
  return o.status === 0 || RETRY_STATUSES.has(o.status) || (o.status === 400 && o.reason === 'IdleTimeout');
}
const isRetryable = isRetryablePushOutcome;

/** Logs may carry a token prefix only: a full token lets anyone push to that device's pass. */
function tokenPrefix(token: string): string {
  return token.length > 8 ? `${token.slice(0, 8)}…` : token;
}

function positiveInteger(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min) throw new RangeError(`ApnsSenderOptions.${name} must be an integer >= ${min}`);
  return v;
}

const noopLogger = { warn() {}, error() {} };

interface Connection {
  readonly id: number;
  readonly session: ClientHttp2Session;
  /** Usable for new streams; false once GOAWAY, close, error or a drain request was seen. */
  usable: boolean;
  inFlight: number;
  /** Requests waiting for a stream slot on this connection. */
  waiters: Array<() => void>;
  pinging: boolean;
}

/** What one push() call has seen: it gives up on the connection only after a failed attempt of its own. */
interface CallState {
  connectFailuresAtStart: number;
  /** apns-topic: the pass type identifier. */
  topic: string;
  /** apns-expiration, fixed once per call. */
  expiration: string;
}

class TransportError extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

export function createApnsSender(opts: ApnsSenderOptions): ApnsSender {
  const concurrency = positiveInteger('concurrency', opts.concurrency, DEFAULTS.concurrency);
  positiveInteger('chunkSize', opts.chunkSize, DEFAULTS.chunkSize); // validated only, see the option
  const requestTimeoutMs = positiveInteger('requestTimeoutMs', opts.requestTimeoutMs, DEFAULTS.requestTimeoutMs);
  const maxRetries = positiveInteger('maxRetries', opts.maxRetries, DEFAULTS.maxRetries, 0);
  const retryBaseDelayMs = positiveInteger('retryBaseDelayMs', opts.retryBaseDelayMs, DEFAULTS.retryBaseDelayMs, 0);
  const maxRetryAfterMs = positiveInteger('maxRetryAfterMs', opts.maxRetryAfterMs, DEFAULTS.maxRetryAfterMs, 0);
  const maxConnectAttempts = positiveInteger('maxConnectAttempts', opts.maxConnectAttempts, DEFAULTS.maxConnectAttempts);
  if (!opts.host) throw new RangeError('ApnsSenderOptions.host is required (api.push.apple.com in production)');
  positiveInteger('port', opts.port, 0);
  const logger = opts.logger ?? noopLogger;

  // Parse certificate, key and passphrase once: a wrong passphrase or a mismatched pair fails here, at
  // startup, instead of on the first push. The message comes from OpenSSL and never contains the key.
  let secureContext: SecureContext;
  try {
    secureContext = tls.createSecureContext({
      cert: opts.certPem,
      key: opts.keyPem,
      passphrase: opts.passphrase,
      ca: opts.caPem,
      minVersion: 'TLSv1.2', // APNs requires TLS 1.2+ (reference section 2)
    });
  } catch (error) {
    throw new Error(`APNs client certificate or key unusable: ${(error as Error).message}`);
  }

  // IPv6 literals need brackets in the authority.
  const authority = `https://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;

  let closed = false;
  let current: Connection | undefined;
  let connecting: Promise<Connection> | undefined;
  let connectionSeq = 0;
  /** Failed connection attempts since the last successful one. */
  let connectFailures = 0;
  /** Counts every connection attempt that failed (never reset): a call sees whether one failed since it began. */
  let connectFailuresTotal = 0;
  let connectBlockedUntil = 0;
  let lastConnectError: TransportError | undefined;
  const sessions = new Set<ClientHttp2Session>();

  const healthTimer = setInterval(() => {
    if (current?.usable && current.inFlight === 0) healthCheck(current);
  }, HEALTH_PING_INTERVAL_MS);
  healthTimer.unref();

  function retire(conn: Connection): void {
    conn.usable = false;
    if (current === conn) current = undefined;
    // Waiters re-acquire, which opens (or joins) the next connection.
    for (const wake of conn.waiters.splice(0)) wake();
  }

  /** Stop new streams on `conn` and close it once its in-flight requests are answered. */
  function drain(conn: Connection): void {
    retire(conn);
    if (!conn.session.closed) conn.session.close();
  }

  function healthCheck(conn: Connection): void {
    if (conn.pinging || !conn.usable || conn.session.closed || conn.session.destroyed) return;
    conn.pinging = true;
    const timer = setTimeout(() => {
      logger.warn({ connection: conn.id }, 'APNs connection did not answer PING; reconnecting');
      retire(conn);
      conn.session.destroy();
    }, requestTimeoutMs);
    timer.unref();
    let started = false;
    try {
      started = conn.session.ping((error) => {
        clearTimeout(timer);
        conn.pinging = false;
        if (error && !conn.session.destroyed) {
          logger.warn({ connection: conn.id, err: error.message }, 'APNs PING failed; reconnecting');
          retire(conn);
          conn.session.destroy();
        }
      });
    } catch {
      // The session went away meanwhile; its 'close' handler retires it.
    }
    if (!started) {
      clearTimeout(timer);
      conn.pinging = false;
    }
  }

  function connect(): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const id = ++connectionSeq;
      let settled = false;
      let session: ClientHttp2Session;
      try {
        session = http2.connect(authority, { secureContext, settings: { enablePush: false } });
      } catch (error) {
        // Counted like any failed connect, so waiting requests back off and give up instead of spinning.
        connectFailures += 1;
        connectFailuresTotal += 1;
        connectBlockedUntil = Date.now() + Math.min(MAX_CONNECT_BACKOFF_MS, backoffDelay(connectFailures - 1));
        lastConnectError = new TransportError(CONNECTION_ERROR, (error as Error).message);
        reject(lastConnectError);
        return;
      }
      sessions.add(session);
      const conn: Connection = { id, session, usable: false, inFlight: 0, waiters: [], pinging: false };

      const fail = (message: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        connectFailures += 1;
        connectFailuresTotal += 1;
        // Back off reconnects: every waiting request would otherwise trigger its own connect.
        connectBlockedUntil = Date.now() + Math.min(MAX_CONNECT_BACKOFF_MS, backoffDelay(connectFailures - 1));
        lastConnectError = new TransportError(CONNECTION_ERROR, message);
        logger.error({ connection: id, host: opts.host, port: opts.port, err: message, failures: connectFailures }, 'APNs connection failed');
        session.destroy();
        reject(lastConnectError);
      };
      const timer = setTimeout(() => fail(`connect timeout after ${requestTimeoutMs} ms`), requestTimeoutMs);

      // The server's SETTINGS frame (always its first frame) carries MAX_CONCURRENT_STREAMS, so wait for it.
      session.once('remoteSettings', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        connectFailures = 0;
        connectBlockedUntil = 0;
        conn.usable = !closed;
        current = conn;
        resolve(conn);
      });
      // Servers may raise (or lower) the limit later; waiters re-check it.
      session.on('remoteSettings', () => {
        for (const wake of conn.waiters.splice(0)) wake();
      });
      session.on('goaway', (errorCode: number, lastStreamId: number, opaqueData?: Buffer) => {
        if (conn.usable) {
          logger.warn(
            { connection: id, errorCode, lastStreamId, reason: parseReason(opaqueData) },
            'APNs sent GOAWAY; opening a new connection',
          );
        }
        // Streams up to lastStreamId still get their answers; later ones are refused and retried.
        drain(conn);
      });
      session.on('error', (error: Error) => {
        if (!settled) return fail(error.message);
        logger.warn({ connection: id, err: error.message }, 'APNs connection error');
        retire(conn);
      });
      session.on('close', () => {
        sessions.delete(session);
        if (!settled) fail('connection closed before SETTINGS');
        retire(conn);
      });
    });
  }

  /**
   * The usable connection, opening one when there is none. While reconnects are backing off it waits for
   * the next attempt (shared by every waiting request) rather than failing: a failed connect is the
   * connection's problem, not the token's. It gives up, throwing the last connection error, only when
   * `maxConnectAttempts` attempts in a row have failed and at least one of them happened during `call`.
   */
  async function connection(call: CallState): Promise<Connection> {
    for (;;) {
      if (closed) throw new TransportError(CLOSED, 'sender closed');
      if (current?.usable) return current;
      if (lastConnectError && connectFailuresTotal > call.connectFailuresAtStart && connectFailures >= maxConnectAttempts) {
        throw lastConnectError;
      }
      if (!connecting) {
        const wait = connectBlockedUntil - Date.now();
        if (wait > 0) {
          await sleep(wait);
          continue;
        }
        connecting = connect().finally(() => {
          connecting = undefined;
        });
      }
      try {
        return await connecting;
      } catch {
        // Counted in connectFailures; loop: wait for the next attempt or give up.
      }
    }
  }

  /**
   * Reserves a stream slot on `conn` when it has one free: inFlight < min(concurrency, the server's
   * SETTINGS_MAX_CONCURRENT_STREAMS).
   */
  function takeSlot(conn: Connection): boolean {
    const serverLimit = conn.session.remoteSettings.maxConcurrentStreams ?? concurrency;
    if (conn.inFlight >= Math.max(1, Math.min(concurrency, serverLimit))) return false;
    conn.inFlight += 1;
    return true;
  }

  /** A connection with a reserved stream slot (see takeSlot), waiting for a connection or a slot as needed. */
  async function acquire(call: CallState): Promise<Connection> {
    for (;;) {
      if (closed) throw new TransportError(CLOSED, 'sender closed');
      const conn = await connection(call);
      if (!conn.usable) continue;
      if (takeSlot(conn)) return conn;
      await new Promise<void>((resolve) => conn.waiters.push(resolve));
    }
  }

  function release(conn: Connection): void {
    conn.inFlight -= 1;
    conn.waiters.shift()?.();
  }

  function sendOnce(conn: Connection, token: string, call: CallState): Promise<PushOutcome> {
    return new Promise<PushOutcome>((resolve) => {
      let stream: ClientHttp2Stream;
      try {
        // One literal per request (not a spread of a shared object): the cheapest form for node:http2.
        stream = conn.session.request({
          ':method': 'POST',
          ':path': `/3/device/${encodeURIComponent(token)}`,
          'apns-topic': call.topic, // always set: the default would be the certificate subject (reference section 2)
          'apns-priority': '10',
          'apns-expiration': call.expiration,
        });
      } catch (error) {
        // ERR_HTTP2_GOAWAY_SESSION / ERR_HTTP2_INVALID_SESSION: the connection went away between acquire and here.
        release(conn);
        retire(conn);
        resolve({ token, status: 0, reason: REFUSED_STREAM });
        return;
      }
      let status = 0;
      let apnsId: string | undefined;
      let body: Buffer[] | undefined; // 200 answers have no body: allocate only for errors
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        stream.close(http2.constants.NGHTTP2_CANCEL);
        // A connection that stops answering may be dead (black-holed TCP): check it, replace it if so.
        healthCheck(conn);
      }, requestTimeoutMs);
      let retryAfterMs: number | undefined;
      stream.on('response', (h) => {
        status = Number(h[':status']);
        const id = h['apns-id'];
        if (typeof id === 'string') apnsId = id;
        const retryAfter = h['retry-after'];
        if (typeof retryAfter === 'string') retryAfterMs = parseRetryAfterMs(retryAfter);
      });
      stream.on('data', (chunk: Buffer) => {
        (body ??= []).push(chunk);
      });
      stream.on('error', () => {}); // decided on 'close' below
      stream.on('close', () => {
        clearTimeout(timer);
        release(conn);
        if (timedOut) return resolve({ token, status: 0, reason: TIMEOUT });
        if (status === 0) {
          const refused = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
          return resolve({ token, status: 0, reason: refused ? REFUSED_STREAM : STREAM_ERROR });
        }
        const outcome: PushOutcome = { token, status };
        if (apnsId) outcome.apnsId = apnsId;
        if (retryAfterMs !== undefined && status !== 200) outcome.retryAfterMs = retryAfterMs;
        if (body) {
          const parsed = parseBody(Buffer.concat(body).toString('utf8'));
          if (parsed.reason !== undefined) outcome.reason = parsed.reason;
          if (parsed.timestamp !== undefined) outcome.timestamp = parsed.timestamp;
        }
        resolve(outcome);
      });
      // Apple: "an empty JSON dictionary for the payload" (Adding a Web Service to Update Passes).
      stream.end('{}');
    });
  }

  async function pushOne(token: string, call: CallState): Promise<PushOutcome> {
    for (let attempt = 0; ; attempt++) {
      // The usual case, a usable connection with a free slot, is taken without awaiting anything: the
      // request goes out in the same tick, with no promise for acquire()/connection() (issue #14 profile).
      // Not while others wait for a slot: they were first (another call, or above the server's limit).
      let conn: Connection | undefined = current;
      if (closed || !conn?.usable || conn.waiters.length > 0 || !takeSlot(conn)) conn = undefined;
      try {
        // Waiting for a connection costs the token no attempt: only an answer (or its absence) does.
        conn ??= await acquire(call);
      } catch (error) {
        // Sender closed, or APNs unreachable for maxConnectAttempts connects in a row: this token was not
        // sent; the caller keeps it pending (a breaker: 50,000 tokens do not each wait out an outage).
        return { token, status: 0, reason: error instanceof TransportError ? error.reason : CONNECTION_ERROR };
      }
      const outcome = await sendOnce(conn, token, call);
      if (!isRetryable(outcome) || attempt >= maxRetries) return outcome;
      // 503 ServiceUnavailable/Shutdown and IdleTimeout: this connection is done; use a new one (reference section 2).
      if (outcome.status === 503 || outcome.reason === 'IdleTimeout') drain(conn);
      // APNs asked for a longer pause than a batch should hold a slot for: the caller schedules it.
      if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs > maxRetryAfterMs) return outcome;
      // A refused stream was never processed (GOAWAY): retry at once on the next connection.
      if (outcome.reason !== REFUSED_STREAM) await sleep(Math.max(backoffDelay(attempt), outcome.retryAfterMs ?? 0));
    }
  }

  function backoffDelay(attempt: number): number {
    const ceiling = Math.min(MAX_BACKOFF_MS, retryBaseDelayMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter": retries of one batch spread out
  }

  function report(outcomes: PushOutcome[], topic: string): void {
    const groups = new Map<string, { disposition: PushDisposition; status: number; reason?: string; count: number; sample: string }>();
    let badTokens = 0;
    for (const o of outcomes) {
      const disposition = classifyPushOutcome(o);
      if (disposition === 'bad-token') badTokens += 1;
      if (disposition === 'delivered' || disposition === 'unregistered' || disposition === 'bad-token') continue;
      const key = `${disposition}|${o.status}|${o.reason ?? ''}`;
      const group = groups.get(key);
      if (group) group.count += 1;
      else groups.set(key, { disposition, status: o.status, reason: o.reason, count: 1, sample: tokenPrefix(o.token) });
    }
    for (const g of groups.values()) {
      const fields = { topic, status: g.status, reason: g.reason, count: g.count, tokenPrefix: g.sample, of: outcomes.length };
      if (g.disposition === 'auth-error') {
        logger.error(fields, 'APNs rejected the certificate (403): renew or fix the Pass Type ID certificate; no registrations deleted');
      } else if (g.disposition === 'config-error') {
        logger.error(fields, 'APNs topic/configuration error: check passTypeIdentifier against the certificate; no registrations deleted');
      } else if (g.disposition === 'client-error') {
        logger.error(fields, 'APNs rejected the request as malformed (client bug)');
      } else {
        logger.warn(fields, 'APNs push not delivered after retries');
      }
    }
    // Reference section 2: alert on BadDeviceToken spikes, usually a wrong (sandbox/production) host.
    if (badTokens >= 10 && badTokens * 10 >= outcomes.length) {
      logger.warn({ topic, count: badTokens, of: outcomes.length, host: opts.host }, 'Many BadDeviceToken answers from APNs: wrong host?');
    }
  }

  return {
    async push(tokens, topic) {
      if (closed) throw new Error('APNs sender is closed');
      if (!topic) throw new RangeError('topic (the pass type identifier) is required');
      const unique = [...new Set(tokens)];
      const outcomes = new Array<PushOutcome>(unique.length);
      const call: CallState = {
        connectFailuresAtStart: connectFailuresTotal,
        topic,
        expiration: String(Math.floor(Date.now() / 1000) + EXPIRATION_SECONDS),
      };
      // One sliding window over the whole call: `workers` loops each take the next token as soon as their
      // previous one is done, so the connection stays at `concurrency` requests in flight from the first
      // token to the last. Pending promises are bounded by the worker count (node-apn#142 failed with tens
      // of thousands of streams opened at once). Until issue #14 the tokens went in chunks of `chunkSize`
      // with a barrier between chunks: every barrier drained the window to 0 and refilled it, and a token
      // in backoff held up its whole chunk.
      let next = 0;
      const worker = async () => {
        while (next < unique.length) {
          const i = next++;
          outcomes[i] = await pushOne(unique[i]!, call);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, unique.length) }, worker));
      report(outcomes, topic);
      return outcomes;
    },

    async close() {
      if (closed) return;
      closed = true;
      clearInterval(healthTimer);
      if (current) retire(current);
      await connecting?.catch(() => undefined);
      await Promise.all(
        [...sessions].map(
          (session) =>
            new Promise<void>((resolve) => {
              if (session.destroyed) return resolve();
              session.once('close', () => resolve());
              // Graceful: in-flight requests finish (each is bounded by requestTimeoutMs).
              if (!session.closed) session.close();
            }),
        ),
      );
    },
  };
}

function parseBody(body: string): { reason?: string; timestamp?: number } {
  try {
    const json = JSON.parse(body) as { reason?: unknown; timestamp?: unknown };
    const out: { reason?: string; timestamp?: number } = {};
    if (typeof json.reason === 'string') out.reason = json.reason;
    const ts = typeof json.timestamp === 'string' ? Number(json.timestamp) : json.timestamp;
    if (typeof ts === 'number' && Number.isFinite(ts)) out.timestamp = ts;
    return out;
  } catch {
    return {};
  }
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date; undefined when it is neither. */
export function parseRetryAfterMs(value: string, now = Date.now()): number | undefined {
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function parseReason(opaqueData: Buffer | undefined): string | undefined {
  if (!opaqueData?.length) return undefined;
  return parseBody(opaqueData.toString('utf8')).reason;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
