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

export function redactUrl(url: string): string {
  return url.replace(TOKEN_PATH, '$1[redacted]').replace(CARD_PATH, '$1[redacted]');
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
 * pino's error serializer, with database errors reduced to what names the failure (and the same for
 * every error in the `cause` chain). Other errors keep pino's standard shape.
 */
export function serializeError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth > 5) return pino.stdSerializers.err(error as Error);
  const record = error as unknown as Record<string, unknown>;
  if (isDatabaseError(record)) {
    const message = redactDatabaseMessage(error.message);
    const out: Record<string, unknown> = { type: error.constructor?.name ?? 'Error', message };
    for (const field of SAFE_DATABASE_FIELDS) if (record[field] !== undefined) out[field] = record[field];
    if (error.stack) out.stack = error.stack.split(error.message).join(message);
    if (error.cause !== undefined) out.cause = serializeError(error.cause, depth + 1);
    return out;
  }
  const standard = pino.stdSerializers.err(error) as Record<string, unknown>;
  if (error.cause !== undefined) standard.cause = serializeError(error.cause, depth + 1);
  return standard;
}

/** The serializers every logger of the service uses (server.ts sets them on the root logger too). */
export const LOG_SERIALIZERS = { err: serializeError, error: serializeError };

/** A child of `logger` whose request serializer (Fastify takes the logger's over its own) redacts tokens, and whose error serializer drops query data. */
export function withRedactedRequests(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger.child({}, { serializers: { req: serializeRequest, ...LOG_SERIALIZERS } });
}
