import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** An error with its own HTTP status and stable machine-readable code (spec: problem details). */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what: string, message = `${what[0].toUpperCase()}${what.slice(1)} not found`) =>
  new AppError(404, `${what}_not_found`, message);
export const unauthorized = (message = 'A valid API key is required') => new AppError(401, 'unauthorized', message);
export const forbidden = (message = 'This key may not do that') => new AppError(403, 'forbidden', message);
export const conflict = (code: string, message: string) => new AppError(409, code, message);
/** The card's holder had their personal data erased (privacy/erasure.ts): it serves nothing any more. */
export const cardErased = () => new AppError(410, 'card_erased', 'This card was erased at its holder\'s request');
export const unprocessable = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(422, code, message, details);

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  [extra: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(
  request: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  extra?: Record<string, unknown>,
): ProblemDetails {
  return {
    type: `urn:walletcards:problem:${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    requestId: String(request.id),
    ...extra,
  };
}

export function sendProblem(reply: FastifyReply, body: ProblemDetails) {
  return reply.status(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** Maps fastify's own errors (validation, body parsing, limits) to stable codes. */
function fastifyErrorToProblem(error: FastifyError): { status: number; code: string; detail: string } | undefined {
  if (error.validation) {
    return { status: 400, code: 'validation_failed', detail: error.message };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'body_too_large', detail: 'The request body is too large' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'unsupported_media_type', detail: error.message };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'invalid_json', detail: 'The request body is not valid JSON' };
  }
  if (error.statusCode === 429) return { status: 429, code: 'rate_limited', detail: error.message };
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return { status: error.statusCode, code: 'bad_request', detail: error.message };
  }
  return undefined;
}

/**
 * Fastify's `frameworkErrors` option: errors the router raises before any route or hook runs — a
 * path that is not valid percent-encoding, a path parameter longer than `maxParamLength` — leave as
 * problem details too (by default they were plain JSON, the second one a non-problem 414).
 */
export function frameworkErrorProblem(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return sendProblem(reply, problem(request, 414, 'uri_too_long', 'A path segment of the URL is too long'));
  }
  if (error.code === 'FST_ERR_BAD_URL') {
    return sendProblem(reply, problem(request, 400, 'invalid_url', 'The URL is not valid percent-encoding'));
  }
  request.log.error({ err: error }, 'router error');
  return sendProblem(reply, problem(request, 500, 'internal_error', 'Something went wrong on our side'));
}

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses before a request exists (a
 * malformed request line, headers too large, a request that timed out) is answered on the raw
 * socket, as problem details like everything else (the rest as Fastify's default handler does it).
 */
export function clientErrorProblem(error: NodeJS.ErrnoException, socket: Socket) {
  // A reset connection is already gone: nothing to answer (Node: "Event: 'clientError'").
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request_timeout']
        : [400, 'bad_request'];
  const body = JSON.stringify({
    type: `urn:walletcards:problem:${code}`,
    title: TITLES[status],
    status,
    detail: status === 400 ? 'The request is not valid HTTP' : TITLES[status],
    code,
    requestId: '',
  });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${TITLES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}

/**
 * The one error handler: every error leaves as RFC 9457 problem details. Set on the root, it is
 * inherited by every context (404s: registerNotFoundHandler).
 */
export function registerErrorHandler(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    if (error instanceof AppError) {
      const retryAfter = error.details?.retryAfterSeconds;
      if (typeof retryAfter === 'number' && reply.getHeader('retry-after') === undefined) reply.header('retry-after', String(retryAfter));
      // A refusal replayed for an Idempotency-Key retry carries the header a replayed success does.
      if (error.details?.replayed === true) reply.header('idempotent-replayed', 'true');
      return sendProblem(reply, problem(request, error.status, error.code, error.message, error.details));
    }
    const mapped = fastifyErrorToProblem(error as FastifyError);
    if (mapped) {
      if (mapped.status === 429 && reply.getHeader('retry-after') === undefined) reply.header('retry-after', '60');
      return sendProblem(reply, problem(request, mapped.status, mapped.code, mapped.detail));
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(reply, problem(request, 500, 'internal_error', 'Something went wrong on our side'));
  });
}

/**
 * The 404 handler. Unmatched requests run the hooks of the instance it is set on: buildApp sets it
 * in a context with the input guard and the metrics hook, so a 404 is checked and counted as before
 * those hooks left the root (app.ts).
 */
export function registerNotFoundHandler(app: FastifyInstance) {
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(request, 404, 'route_not_found', `No route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
