/**
 * A local stand-in for Apple's APNs HTTP/2 provider API, for tests and benchmarks.
 *
 * Reference: /work/shared/reference/apple-wallet.md, section 8.3 (local HTTP/2 APNs mock) and section 2
 * (status codes). Self-contained: it needs only `node:http2` and PEM strings, so end-to-end tests and
 * `scripts/bench-apns.ts` (which runs it in a child process) can use it as is.
 *
 * What it checks, in this order, answering like APNs does (JSON `{"reason": …}` body, `apns-id` header
 * on every answer):
 *
 *   TLS    client certificate required and verified against `caPem` (root + WWDR): an untrusted
 *          client never gets a session (handshake fails).
 *   405    `MethodNotAllowed`       method is not POST
 *   404    `BadPath`                path is not `/3/device/<token>`
 *   400    `BadDeviceToken`         token is not 64 hex digits
 *   400    `DeviceTokenNotForTopic` `apns-topic` (or, without it, the client certificate's subject UID,
 *                                   which is what APNs falls back to) differs from `expectedTopic`
 *   400    `PayloadEmpty`           empty request body (real APNs behaviour is (unconfirmed) in the reference)
 *   …      `respond(token, push)`   test hook; `undefined` falls through to the rules below. It may return
 *                                   a promise (slow answers), or one that never settles (timeouts), an
 *                                   answer with `retryAfter` (a `Retry-After` header), or `{reset: true}`
 *                                   (RST_STREAM INTERNAL_ERROR and no answer: a stream reset).
 *   410    `Unregistered`           token is in `deadTokens`; body carries `timestamp` (ms since epoch)
 *   200                             empty body
 *
 * Observability: `received` (every request, in arrival order, with the status it got and which session
 * carried it), `sessions` (connections that passed the TLS check), `rejectedConnections` (handshakes that
 * failed), `answered`, `maxOpenStreams` (largest number of concurrent streams on one session).
 * `goawayAll()` sends GOAWAY like APNs does before closing a connection. `refuseConnections(true)` drops
 * every open connection and resets every new one at accept, before TLS (an outage: the client sees its
 * connects fail) until `refuseConnections(false)`; `refusedConnections` counts them.
 *
 * Usage with the certificates of test/support/test-certificates.ts:
 *   const { dir, passTypeIdentifier } = await getTestCertificates();
 *   const pem = (f: string) => readFileSync(path.join(dir, f), 'utf8');
 *   const standIn = await startApnsStandIn({
 *     keyPem: pem('apns-server.key'), certPem: pem('apns-server.pem'),
 *     caPem: pem('root.pem') + pem('wwdr.pem'), expectedTopic: passTypeIdentifier,
 *   });
 *   const sender = createApnsSender({ certPem: pem('signerCert.pem'), keyPem: pem('signerKey.pem'),
 *     host: 'localhost', port: standIn.port, caPem: pem('root.pem') });   // src/wallets/apple/apns.ts
 *   standIn.deadTokens.set(token, Date.now());                             // → 410 Unregistered
 *   standIn.setResponder((t) => (t === token ? { status: 403, reason: 'BadCertificate' } : undefined));
 *   …
 *   await sender.close();
 *   await standIn.close();
 */
import { randomUUID } from 'node:crypto';
import http2, { type Http2Session, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface ReceivedPush {
  method: string;
  path: string;
  /** The `<token>` part of `/3/device/<token>`; '' when the path does not match. */
  token: string;
  /** `apns-topic` header, or the client certificate's subject UID when the header is absent. */
  topic: string | undefined;
  priority: string | undefined;
  expiration: string | undefined;
  pushType: string | undefined;
  /** The request body exactly as received ('' when the client sent none). */
  body: string;
  /** Subject UID of the verified client certificate (= pass type identifier for Pass Type ID certificates). */
  clientCertSubjectUid?: string;
  /** Status the stand-in answered with; 0 for a reset stream; undefined while (or if never) answered. */
  status?: number;
  /** Order in which the stand-in's HTTP/2 session accepted the connection (1 = first). */
  session: number;
  /** `apns-id` of the answer (what the client sees on the outcome); undefined while unanswered. */
  apnsId?: string;
  /** Date.now() when the request had arrived in full. */
  at: number;
}

export interface StandInResponse {
  status: number;
  reason?: string;
  /** For 410: when the token became invalid, ms since epoch. */
  timestamp?: number;
  /** A `Retry-After` header (seconds or an HTTP date), e.g. with 429. */
  retryAfter?: string;
  /** Reset the stream (RST_STREAM INTERNAL_ERROR) instead of answering; `status` is then ignored. */
  reset?: boolean;
}

export type StandInResponder = (
  token: string,
  push: ReceivedPush,
) => StandInResponse | undefined | Promise<StandInResponse | undefined>;

export interface ApnsStandInOptions {
  /** TLS server key and certificate (apns-server.key / apns-server.pem: CN=localhost, IP 127.0.0.1). */
  keyPem: string;
  certPem: string;
  /** CA bundle that client certificates must chain to: root.pem + wwdr.pem. */
  caPem: string;
  /** The pass type identifier the client certificate belongs to. */
  expectedTopic: string;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients (APNs advertises 1000 or so; use 2 to test queuing). */
  maxConcurrentStreams?: number;
  respond?: StandInResponder;
  /** Interface to listen on; default 127.0.0.1 (never anything outside loopback in tests). */
  host?: string;
  /** Keep `received` entries (default true). The benchmark turns this off to measure the client, not the array. */
  record?: boolean;
}

export interface ApnsStandIn {
  port: number;
  received: ReceivedPush[];
  /** token → timestamp (ms since epoch) reported with 410 Unregistered. */
  deadTokens: Map<string, number>;
  setResponder(fn: StandInResponder | undefined): void;
  /** HTTP/2 sessions (= TLS connections with a verified client) opened so far. */
  readonly sessions: number;
  /** TLS handshakes that failed, e.g. a client certificate that does not chain to `caPem`. */
  readonly rejectedConnections: number;
  /** Requests answered so far (also counted when `record` is false). */
  readonly answered: number;
  /** Largest number of streams that were open at once on any one session. */
  readonly maxOpenStreams: number;
  /**
   * Sends GOAWAY (NO_ERROR, last stream = the last one received, reason "Shutdown" as APNs does) on every
   * open session and then closes it gracefully: streams already received are still answered, the client
   * has to open a new connection for anything else.
   */
  goawayAll(): void;
  /**
   * `true`: drop open connections and reset new ones at accept (before TLS) until `false`. A number n:
   * drop open connections and reset the next n new ones, then accept again.
   */
  refuseConnections(refuse: boolean | number): void;
  /** TCP connections reset at accept by refuseConnections(true). */
  readonly refusedConnections: number;
  /** Destroys every session (unanswered streams included) and stops listening. */
  close(): Promise<void>;
}

const DEVICE_PATH = /^\/3\/device\/([^/?]*)$/;
const TOKEN = /^[0-9a-fA-F]{64}$/;

export async function startApnsStandIn(opts: ApnsStandInOptions): Promise<ApnsStandIn> {
  const received: ReceivedPush[] = [];
  const deadTokens = new Map<string, number>();
  const open = new Map<
    ServerHttp2Session,
    { ordinal: number; lastStreamId: number; openStreams: number; uid: string | undefined }
  >();
  const record = opts.record ?? true;
  let responder = opts.respond;
  let sessions = 0;
  let answered = 0;
  let maxOpenStreams = 0;
  let rejectedConnections = 0;
  /** Connections still to refuse: Infinity while refusing, 0 when accepting. */
  let refusing = 0;
  let refusedConnections = 0;

  const server = http2.createSecureServer({
    key: opts.keyPem,
    cert: opts.certPem,
    ca: opts.caPem,
    requestCert: true,
    rejectUnauthorized: true,
    allowHTTP1: false,
    minVersion: 'TLSv1.2',
    settings: opts.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: opts.maxConcurrentStreams },
  });

  // A failed handshake (e.g. an untrusted client certificate) is the client's problem, not a crash.
  server.on('tlsClientError', () => {
    rejectedConnections += 1;
  });
  server.on('sessionError', () => {});
  server.on('connection', (socket: import('node:net').Socket) => {
    if (refusing <= 0) return;
    refusing -= 1;
    refusedConnections += 1;
    socket.destroy();
  });

  server.on('session', (session: ServerHttp2Session) => {
    sessions += 1;
    // The handshake already verified the certificate; read its UID once per connection.
    open.set(session, { ordinal: sessions, lastStreamId: 0, openStreams: 0, uid: clientCertSubjectUid(session) });
    session.on('close', () => open.delete(session));
    session.on('error', () => {});
  });

  server.on('stream', (stream: ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const state = open.get(stream.session as ServerHttp2Session);
    if (state) {
      state.lastStreamId = Math.max(state.lastStreamId, stream.id ?? 0);
      state.openStreams += 1;
      maxOpenStreams = Math.max(maxOpenStreams, state.openStreams);
      stream.once('close', () => {
        state.openStreams -= 1;
      });
    }
    stream.on('error', () => {});
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const push = describe(headers, Buffer.concat(chunks).toString('utf8'), state?.ordinal ?? 0, state?.uid);
      if (record) received.push(push);
      void answer(stream, push, header(headers, 'apns-id'));
    });
  });

  function describe(
    headers: http2.IncomingHttpHeaders,
    body: string,
    session: number,
    uid: string | undefined,
  ): ReceivedPush {
    const path = String(headers[':path'] ?? '');
    return {
      method: String(headers[':method'] ?? ''),
      path,
      token: DEVICE_PATH.exec(path)?.[1] ?? '',
      // APNs: without apns-topic the topic is the certificate's subject (reference section 2).
      topic: header(headers, 'apns-topic') ?? uid,
      priority: header(headers, 'apns-priority'),
      expiration: header(headers, 'apns-expiration'),
      pushType: header(headers, 'apns-push-type'),
      body,
      clientCertSubjectUid: uid,
      session,
      at: Date.now(),
    };
  }

  async function decide(push: ReceivedPush): Promise<StandInResponse> {
    if (push.method !== 'POST') return { status: 405, reason: 'MethodNotAllowed' };
    if (!DEVICE_PATH.test(push.path)) return { status: 404, reason: 'BadPath' };
    if (!TOKEN.test(push.token)) return { status: 400, reason: 'BadDeviceToken' };
    if (push.topic !== opts.expectedTopic) return { status: 400, reason: 'DeviceTokenNotForTopic' };
    if (push.body.length === 0) return { status: 400, reason: 'PayloadEmpty' };
    const custom = responder ? await responder(push.token, push) : undefined;
    if (custom) return custom;
    const deadSince = deadTokens.get(push.token);
    if (deadSince !== undefined) return { status: 410, reason: 'Unregistered', timestamp: deadSince };
    return { status: 200 };
  }

  async function answer(stream: ServerHttp2Stream, push: ReceivedPush, requestApnsId: string | undefined): Promise<void> {
    let response: StandInResponse;
    try {
      response = await decide(push);
    } catch {
      response = { status: 500, reason: 'InternalServerError' };
    }
    if (stream.destroyed || stream.closed) return;
    if (response.reset) {
      push.status = 0;
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    push.status = response.status;
    answered += 1;
    // APNs echoes the client's apns-id, or makes one up.
    const apnsId = requestApnsId ?? randomUUID();
    push.apnsId = apnsId;
    if (response.status === 200) {
      stream.respond({ ':status': 200, 'apns-id': apnsId }, { endStream: true });
      return;
    }
    const body: { reason?: string; timestamp?: number } = { reason: response.reason };
    if (response.timestamp !== undefined) body.timestamp = response.timestamp;
    stream.respond({
      ':status': response.status,
      'apns-id': apnsId,
      'content-type': 'application/json',
      ...(response.retryAfter !== undefined ? { 'retry-after': response.retryAfter } : {}),
    });
    stream.end(JSON.stringify(body));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    received,
    deadTokens,
    setResponder(fn) {
      responder = fn;
    },
    get sessions() {
      return sessions;
    },
    get rejectedConnections() {
      return rejectedConnections;
    },
    get answered() {
      return answered;
    },
    get maxOpenStreams() {
      return maxOpenStreams;
    },
    get refusedConnections() {
      return refusedConnections;
    },
    refuseConnections(refuse) {
      refusing = refuse === true ? Infinity : refuse === false ? 0 : refuse;
      if (refusing > 0) for (const session of open.keys()) session.destroy();
    },
    goawayAll() {
      for (const [session, state] of open) {
        if (session.closed || session.destroyed) continue;
        session.goaway(http2.constants.NGHTTP2_NO_ERROR, state.lastStreamId, Buffer.from('{"reason":"Shutdown"}'));
        session.close();
      }
    },
    async close() {
      for (const session of open.keys()) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function header(headers: http2.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : String(value);
}

function clientCertSubjectUid(session: Http2Session | undefined): string | undefined {
  const socket = session?.socket as TLSSocket | undefined;
  const subject = socket?.getPeerCertificate?.()?.subject as Record<string, string | string[]> | undefined;
  const uid = subject?.UID;
  return Array.isArray(uid) ? uid[0] : uid;
}
