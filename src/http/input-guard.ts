import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { AppError } from './errors.js';

/**
 * The edge check every request passes before anything reads it: no string in the path, the query,
 * the headers or the body may hold a NUL character or an unpaired UTF-16 surrogate.
 *
 * - PostgreSQL `text` cannot store U+0000: a NUL in a card name, a search query or a path
 *   parameter failed deep inside a query and answered 500 (issue #11).
 * - An unpaired surrogate (`"\ud800"` in JSON) is no Unicode character: it cannot be encoded as
 *   UTF-8, so the database, a pass (pass.strings), a webhook body or a log line would each turn it
 *   into something else (or fail).
 *
 * Both are refused with one 400 problem (`invalid_characters`), naming where, never echoing the value.
 * Bodies are walked without recursion and to a bounded depth, so a deeply nested JSON document is a
 * 400 too, not a stack overflow.
 */

export const MAX_BODY_DEPTH = 32;

// With the `u` flag a surrogate pair is one code point: only an unpaired half is in category Cs.
const UNCLEAN = /[\u0000\p{Cs}]/u;

/** True for a string that may be stored, signed into a pass and logged as it is. */
export function isCleanString(value: string): boolean {
  return !UNCLEAN.test(value);
}

function refuse(where: string): never {
  throw new AppError(400, 'invalid_characters', `${where} contains a NUL character or an unpaired UTF-16 surrogate`);
}

/**
 * Walks a parsed value (JSON, form or query object) and returns the path of the first string or key
 * that is not clean; throws a 400 for a document nested deeper than MAX_BODY_DEPTH or one that
 * tries prototype poisoning (`__proto__` keys, which Fastify's own parser refuses too).
 */
export function findUncleanString(value: unknown, root: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  // Every request passes here with its path parameters and query: flat objects of strings, almost
  // always clean. Checked in place (no walk, no allocation); anything else takes the walk below,
  // which also names the first unclean string.
  if (typeof value === 'object' && !Array.isArray(value) && isFlatAndClean(value as Record<string, unknown>)) return undefined;
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const v = item.value;
    if (typeof v === 'string') {
      if (!isCleanString(v)) return item.path;
      continue;
    }
    if (v === null || typeof v !== 'object' || Buffer.isBuffer(v) || ArrayBuffer.isView(v)) continue;
    if (item.depth >= MAX_BODY_DEPTH) throw new AppError(400, 'too_deeply_nested', `${root} is nested more than ${MAX_BODY_DEPTH} levels deep`);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push({ value: v[i], path: `${item.path}/${i}`, depth: item.depth + 1 });
      continue;
    }
    for (const key of Object.keys(v)) {
      if (!isCleanString(key)) return `${item.path} (a key)`;
      if (key === '__proto__') throw new AppError(400, 'invalid_json', 'The request body is not acceptable JSON (__proto__ key)');
      stack.push({ value: (v as Record<string, unknown>)[key], path: `${item.path}/${key}`, depth: item.depth + 1 });
    }
  }
  return undefined;
}

/** True for an object of clean strings only (keys and values, no `__proto__`): nothing to walk. */
function isFlatAndClean(value: Record<string, unknown>): boolean {
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const v = value[key];
    if (typeof v !== 'string' || key === '__proto__' || !isCleanString(key) || !isCleanString(v)) return false;
  }
  return true;
}

function isStream(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { pipe?: unknown }).pipe === 'function' && typeof (value as { on?: unknown }).on === 'function';
}

function checkHeaders(request: FastifyRequest) {
  const headers = request.headers;
  for (const name in headers) {
    // Real HTTP parsers already refuse NUL in headers; inject() and proxies that decode do not.
    const value = headers[name];
    if (typeof value === 'string') {
      if (!isCleanString(value)) refuse(`The ${name} header`);
    } else if (Array.isArray(value)) {
      for (const v of value) if (typeof v === 'string' && !isCleanString(v)) refuse(`The ${name} header`);
    }
  }
}

/** The path, query and headers (an `onRequest` hook; synchronous: a throw is the 400, as a rejection would be). */
function guardRequestLine(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
  checkHeaders(request);
  const params = findUncleanString(request.params, 'path');
  if (params) refuse(`The URL ${params}`);
  const query = findUncleanString(request.query, 'querystring');
  if (query) refuse(`The URL ${query}`);
  done();
}

/** The parsed body (a `preValidation` hook). */
function guardBody(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
  // A body passed on as a stream (a card-base import, src/imports) is not parsed data: its reader
  // checks what it reads (NUL bytes refuse the file there).
  if (request.body !== undefined && !isStream(request.body)) {
    const body = findUncleanString(request.body, 'body');
    if (body) refuse(`The request ${body}`);
  }
  done();
}

/**
 * Installs the check on an instance (every route and hook registered in it and its children): the
 * path, query and headers on `onRequest` — before authentication or any route reads the database —
 * and the parsed body on `preValidation`, before the schema or a route's own hooks see it.
 * `buildApp` installs it in each of its top-level contexts, ahead of anything they register (the
 * PassKit web service has its own context, see app.ts). The hooks are synchronous (callback style):
 * an async hook costs a promise and a microtask per request on the hottest routes (issue #14).
 */
export function registerInputGuard(app: FastifyInstance) {
  app.addHook('onRequest', guardRequestLine);
  app.addHook('preValidation', guardBody);
}
