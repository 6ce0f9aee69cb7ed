import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import pino from 'pino';

/**
 * What the logs must never carry (issue #11: database error logs held phones, names, card tokens and
 * ApplePass tokens; request logs held card tokens):
 *
 * - One-time tokens and card tokens travel in URLs: cabinet sign-in links `/app/sign-in/link/<token>`,
 *   password reset links `/app/reset/<token>`, and every public card link `/c/<cardToken>…` (the card
 *   page, its pass and its Google link — whoever has it holds the card). Fastify logs every
 *   request's URL ("incoming request"), so the app's logger replaces those path segments first.
 * - Database errors: PGlite attaches the statement's parameters to its errors (`params`, `query`),
 *   PostgreSQL's `detail` repeats the offending values ("Key (phone)=(+7916…) already exists"), and
 *   some messages quote the value that failed (`invalid input syntax for type uuid: "…"`). Errors are
 *   logged with their type, SQLSTATE code, constraint, table and column, and a message whose quoted
 *   values are cut.
 *
 * Headers are not logged at all (the request serializer below has none): Authorization (API keys,
 * ApplePass tokens) and cookies never reach a log line.
 */
const TOKEN_PATH = /(\/+app\/+(?:reset|sign-in\/+link)\/+)[^/?#]+/g;
const CARD_PATH = /^(\/+c\/+)[^/?#]+/;
/**
 * Query parameters whose values are logged as they are: paging, filters, sizes, attribution tags.
 * Every other value is replaced — a search (`/api/v1/cards?query=+7916…`, the cashier's `?q=`), a
 * referral code, a `next` path that may itself carry one.
 */
const LOGGED_QUERY_KEYS = new Set(['lang', 'limit', 'status', 'size', 'source', 'utm_source', 'staff', 'from', 'to', 'before', 'automation', 'v', 'saved', 'sent', 'reset', 'signed-out', 'uploaded', 'welcome']);

function redactQuery(query: string): string {
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const key = pair.slice(0, eq);
      return LOGGED_QUERY_KEYS.has(key) ? pair : `${key}=[redacted]`;
    })
    .join('&');
}

export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const redacted = path.replace(TOKEN_PATH, '$1[redacted]').replace(CARD_PATH, '$1[redacted]');
  return q < 0 ? redacted : `${redacted}?${redactQuery(url.slice(q + 1))}`;
}

/** Fastify's own request serializer, with the URL redacted. */
function serializeRequest(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket ? request.socket.remotePort : undefined,
  };
}

/** Fields of a database error that name what failed without repeating the data. */
const SAFE_DATABASE_FIELDS = ['code', 'severity', 'constraint', 'table', 'column', 'schema', 'dataType', 'routine'] as const;

/** A SQLSTATE (five characters) plus a field only database errors have. */
function isDatabaseError(error: Record<string, unknown>): boolean {
  return typeof error.code === 'string' && /^[0-9A-Z]{5}$/.test(error.code) && ('severity' in error || 'routine' in error || 'params' in error || 'query' in error);
}

/** `type uuid: "abc"`, `value "99999999999" is out of range`, `out of range: "0000-01-01"` → the quoted value cut. */
export function redactDatabaseMessage(message: string): string {
  return message.replace(/(:\s*|\bvalue\s+)"(?:[^"]|"")*"/g, '$1"[redacted]"').replace(/\bKey \(([^)]*)\)=\((?:[^()]|\([^()]*\))*\)/g, 'Key ($1)=([redacted])');
}

/**
 * The error serializer of every logger: type, message, stack and the error's own fields, with the
 * cause chain serialized the same way, one level at a time (pino's standard serializer folds the
 * causes' messages into the top message, which carried a database error's quoted value up with it).
 * Database errors keep only what names the failure.
 */
export function serializeError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error)) return pino.stdSerializers.err(error as Error);
  const record = error as unknown as Record<string, unknown>;
  const database = isDatabaseError(record);
  const message = database ? redactDatabaseMessage(error.message) : error.message;
  const out: Record<string, unknown> = { type: error.constructor?.name ?? error.name, message };
  if (error.stack) out.stack = database ? error.stack.split(error.message).join(message) : error.stack;
  if (database) {
    for (const field of SAFE_DATABASE_FIELDS) if (record[field] !== undefined) out[field] = record[field];
  } else {
    for (const key of Object.keys(record)) if (key !== 'cause' && key !== 'stack' && key !== 'message') out[key] = record[key];
  }
  if (error.cause !== undefined) out.cause = depth < 5 ? serializeError(error.cause, depth + 1) : '[cause chain cut]';
  return out;
}

/** The serializers every logger of the service uses (server.ts sets them on the root logger too). */
export const LOG_SERIALIZERS = { err: serializeError, error: serializeError };

/** A child of `logger` whose request serializer (Fastify takes the logger's over its own) redacts tokens, and whose error serializer drops query data. */
export function withRedactedRequests(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger.child({}, { serializers: { req: serializeRequest, ...LOG_SERIALIZERS } });
}
