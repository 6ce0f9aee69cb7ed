import type { FastifyBaseLogger, FastifyRequest } from 'fastify';

/**
 * One-time tokens travel in cabinet URLs (sign-in links `/app/sign-in/link/<token>`, password reset
 * links `/app/reset/<token>`). Fastify logs every request's URL ("incoming request"), so the app's
 * logger replaces those path segments before anything is written.
 */
const TOKEN_PATH = /(\/+app\/+(?:reset|sign-in\/+link)\/+)[^/?#]+/g;

export function redactUrl(url: string): string {
  return url.replace(TOKEN_PATH, '$1[redacted]');
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

/** A child of `logger` whose request serializer (Fastify takes the logger's over its own) redacts tokens. */
export function withRedactedRequests(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger.child({}, { serializers: { req: serializeRequest } });
}
