/**
 * Malformed-input generation for the fault tier (test/faults/api-fuzz.test.ts): reads the service's
 * own OpenAPI document and derives, for every operation, requests that must be refused — wrong
 * types, NUL characters, unpaired surrogates, huge numbers, dates out of range, over-long strings
 * and paths — plus a check that every input the document declares is bounded.
 */

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
}
interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema?: JsonSchema;
}
interface OpenApiOperation {
  parameters?: OpenApiParameter[];
  requestBody?: { content: Record<string, { schema?: JsonSchema }> };
}
export type JsonSchema = Record<string, any>;

export interface Operation {
  method: string;
  /** OpenAPI path, `{name}` for parameters. */
  path: string;
  pathParams: OpenApiParameter[];
  queryParams: OpenApiParameter[];
  headerParams: OpenApiParameter[];
  /** The JSON body schema, when the operation takes a JSON body. */
  bodySchema?: JsonSchema;
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const parameters = op.parameters ?? [];
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: parameters.filter((p) => p.in === 'path'),
        queryParams: parameters.filter((p) => p.in === 'query'),
        headerParams: parameters.filter((p) => p.in === 'header'),
        bodySchema: op.requestBody?.content['application/json']?.schema,
      });
    }
  }
  return operations;
}

// ---------------------------------------------------------------------------------------------
// The audit: every number, date, string and array a request may carry has a bound.
// ---------------------------------------------------------------------------------------------

/** An anchored pattern without unbounded repetition bounds the string's length by itself. */
function boundedPattern(pattern: unknown): boolean {
  return typeof pattern === 'string' && pattern.startsWith('^') && pattern.endsWith('$') && !/[*+]|,\}/.test(pattern.replace(/\\./g, ''));
}

/**
 * Unbounded inputs of one schema, as `where: what` lines. Path parameters are bounded by the router
 * (`maxParamLength`: longer segments answer 414), so their strings need no maxLength.
 */
export function unboundedInputs(schema: JsonSchema | undefined, where: string, options: { pathParam?: boolean } = {}): string[] {
  if (!schema || typeof schema !== 'object') return [];
  const found: string[] = [];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    for (const [i, sub] of (schema[key] ?? []).entries()) found.push(...unboundedInputs(sub, `${where}|${key}${i}`, options));
  }
  if ('enum' in schema || 'const' in schema) return found;
  const type = schema.type;
  if (type === 'integer' || type === 'number') {
    const low = 'minimum' in schema || 'exclusiveMinimum' in schema;
    const high = 'maximum' in schema || 'exclusiveMaximum' in schema;
    if (!low || !high) found.push(`${where}: a number without minimum and maximum`);
  } else if (type === 'string') {
    if ((schema.format === 'date' || schema.format === 'date-time') && !schema.pattern) found.push(`${where}: a ${schema.format} without a pattern bounding its year`);
    if (!options.pathParam && schema.maxLength === undefined && schema.format !== 'uuid' && !boundedPattern(schema.pattern)) {
      found.push(`${where}: a string without maxLength`);
    }
  } else if (type === 'array') {
    if (schema.maxItems === undefined) found.push(`${where}: an array without maxItems`);
    found.push(...unboundedInputs(schema.items, `${where}[]`, options));
  } else if (type === 'object') {
    for (const [name, sub] of Object.entries(schema.properties ?? {})) found.push(...unboundedInputs(sub as JsonSchema, `${where}.${name}`, options));
    if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      found.push(...unboundedInputs(schema.additionalProperties, `${where}.*`, options));
    }
  } else if (type === undefined && !['anyOf', 'oneOf', 'allOf'].some((k) => k in schema) && !('not' in schema)) {
    found.push(`${where}: a value of any type`);
  }
  return found;
}

export function auditDocument(doc: OpenApiDocument): string[] {
  const found: string[] = [];
  for (const op of operationsOf(doc)) {
    const name = `${op.method} ${op.path}`;
    for (const p of [...op.pathParams, ...op.queryParams, ...op.headerParams]) {
      found.push(...unboundedInputs(p.schema, `${name} ${p.in}:${p.name}`, { pathParam: p.in === 'path' }));
    }
    found.push(...unboundedInputs(op.bodySchema, `${name} body`));
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Variants
// ---------------------------------------------------------------------------------------------

export interface Variant {
  name: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

/** Path segments, percent-encoded as they travel: NUL, a CESU-8 surrogate, bad encodings, over-long, wrong types. */
const PATH_BADS: [string, string][] = [
  ['NUL', '%00'],
  ['NUL inside', 'a%00b'],
  ['encoded surrogate (CESU-8)', '%ED%A0%80'],
  ['overlong UTF-8', '%C0%AF'],
  ['truncated percent-encoding', '%E0%A4%A'],
  ['control characters', '%01%1F%7F'],
  ['101 characters', 'x'.repeat(101)],
  ['3000 characters', 'x'.repeat(3000)],
  ['huge number', '1e20'],
  ['negative number', '-1'],
  ['30 digits', '9'.repeat(30)],
  ['emoji', '%F0%9F%98%80'],
  ['dot segments', '..%2F..%2Fetc'],
  ['quote and semicolon', "'%3B--"],
];

/** Query values: the same, plus numbers and dates out of range. */
const QUERY_BADS: [string, string][] = [
  ['NUL', '%00'],
  ['NUL inside', 'a%00b'],
  ['encoded surrogate (CESU-8)', '%ED%A0%80'],
  ['truncated percent-encoding', '%E0%A4%A'],
  ['5000 characters', 'x'.repeat(5000)],
  ['1e20', '1e20'],
  ['-1e20', '-1e20'],
  ['1.5', '1.5'],
  ['NaN', 'NaN'],
  ['Infinity', 'Infinity'],
  ['year 0', '0000-01-01'],
  ['year 99999', '99999-01-01'],
  ['February 30', '2026-02-30'],
  ['boolean', 'true'],
  ['empty', ''],
];

/** A value of the declared type, for building a plausible body that the mutations then break one field at a time. */
export function sampleOf(schema: JsonSchema | undefined, depth = 0): unknown {
  if (!schema || depth > 6) return null;
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  const variants = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(variants)) return sampleOf(variants.find((v: JsonSchema) => v.type !== 'null') ?? variants[0], depth + 1);
  switch (schema.type) {
    case 'integer':
    case 'number':
      return Math.max(schema.minimum ?? 1, Math.min(1, schema.maximum ?? 1));
    case 'boolean':
      return true;
    case 'string':
      if (schema.format === 'uuid') return '00000000-0000-4000-8000-000000000000';
      if (schema.format === 'date') return '2000-01-01';
      if (schema.format === 'date-time') return '2099-01-01T00:00:00Z';
      if (schema.format === 'email') return 'fuzz@example.com';
      return 'a'.repeat(Math.max(1, schema.minLength ?? 1));
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => sampleOf(schema.items, depth + 1));
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const name of schema.required ?? []) out[name] = sampleOf(schema.properties?.[name], depth + 1);
      return out;
    }
    default:
      return {};
  }
}

/** Replacement values for one field, by its declared type; each breaks the schema (or the edge check). */
function mutationsFor(schema: JsonSchema): [string, unknown][] {
  const common: [string, unknown][] = [
    ['null', null],
    ['object', { a: 1 }],
  ];
  const type = schema.type ?? (schema.anyOf ?? schema.oneOf ?? [])[0]?.type;
  if (type === 'integer' || type === 'number') {
    return [
      ...common,
      ['number as string', '100'],
      ['boolean', true],
      ['number in an array', [100]],
      ['1e20', 1e20],
      ['-1e20', -1e20],
      ['1e308', 1e308],
      ['2^53 + 1', 9007199254740993],
      ...(type === 'integer' ? ([['1.5', 1.5]] as [string, unknown][]) : []),
    ];
  }
  if (type === 'boolean') return [...common, ['"true"', 'true'], ['1', 1], ['[true]', [true]]];
  if (type === 'array') {
    const over = Array.from({ length: (schema.maxItems ?? 1000) + 1 }, () => sampleOf(schema.items));
    return [...common, ['string', 'x'], ['too many items', over], ['array of NUL strings', ['a\u0000b']]];
  }
  if (type === 'object') return [['string', 'x'], ['array', []], ['number', 42], ['null', null]];
  // strings (and anything else)
  const out: [string, unknown][] = [
    ...common,
    ['number', 12345],
    ['boolean', true],
    ['string in an array', ['abc']],
    ['NUL', 'a\u0000b'],
    ['unpaired high surrogate', 'a\ud800b'],
    ['unpaired low surrogate', '\udc00'],
    ['100,000 characters', 'x'.repeat(100_000)],
  ];
  if (typeof schema.maxLength === 'number') out.push(['maxLength + 1', 'x'.repeat(schema.maxLength + 1)]);
  if (schema.format === 'date') out.push(['year 0', '0000-01-01'], ['year 10000', '10000-01-01'], ['February 30', '2026-02-30']);
  if (schema.format === 'date-time') out.push(['year 0', '0000-01-01T00:00:00Z'], ['year 275760+', '+275761-01-01T00:00:00Z'], ['no zone garbage', '2026-13-45T25:61:61']);
  return out;
}

/** Every field path of a body schema (objects followed to `depth`), with its schema. */
function fieldsOf(schema: JsonSchema, path: string[] = [], depth = 0): { path: string[]; schema: JsonSchema }[] {
  if (!schema || schema.type !== 'object' || depth > 3) return [];
  const out: { path: string[]; schema: JsonSchema }[] = [];
  for (const [name, sub] of Object.entries(schema.properties ?? {}) as [string, JsonSchema][]) {
    out.push({ path: [...path, name], schema: sub });
    out.push(...fieldsOf(sub, [...path, name], depth + 1));
  }
  return out;
}

function withField(base: unknown, path: string[], value: unknown): unknown {
  const copy = structuredClone(base ?? {}) as Record<string, unknown>;
  let node: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== 'object' || Array.isArray(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
  return copy;
}

export interface VariantContext {
  /** Valid values for path parameters by name (an existing program, card, …). */
  pathValues: Record<string, string>;
  /** A valid body per operation (`POST /api/v1/cards`), so each mutation breaks exactly one field. */
  bodies: Record<string, unknown>;
  /** At most this many body-field mutations per operation (evenly sampled). */
  maxBodyMutations?: number;
}

function validPathValue(schema: JsonSchema | undefined, raw: string): boolean {
  if (!schema || typeof schema.pattern !== 'string') return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return false;
  }
  return new RegExp(schema.pattern).test(decoded) && decoded.length <= (schema.maxLength ?? Infinity) && decoded.length <= 100;
}

export function urlFor(op: Operation, values: Record<string, string>, replace?: { name: string; raw: string }): string {
  return op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => (replace?.name === name ? replace.raw : encodeURIComponent(values[name] ?? 'x')));
}

/**
 * The malformed requests of one operation. Each carries at least one defect the service must
 * refuse (for GET routes some are "ignored garbage" by design, which is fine: a GET changes nothing).
 */
export function variantsFor(op: Operation, ctx: VariantContext): Variant[] {
  const base = urlFor(op, ctx.pathValues);
  const variants: Variant[] = [];
  const json = { 'content-type': 'application/json' };
  const bodyBase = op.bodySchema ? (ctx.bodies[`${op.method} ${op.path}`] ?? sampleOf(op.bodySchema)) : undefined;
  const validBody = op.bodySchema ? JSON.stringify(bodyBase) : undefined;
  const withBody = (v: Omit<Variant, 'payload' | 'headers'> & { headers?: Record<string, string> }): Variant =>
    validBody === undefined ? { ...v, headers: v.headers ?? {} } : { ...v, headers: { ...json, ...v.headers }, payload: validBody };

  for (const p of op.pathParams) {
    for (const [what, raw] of PATH_BADS) {
      // Only values the parameter's own schema refuses: `1e20` is a fine Apple device identifier.
      if (validPathValue(p.schema, raw)) continue;
      variants.push(withBody({ name: `path ${p.name}: ${what}`, url: urlFor(op, ctx.pathValues, { name: p.name, raw }) }));
    }
  }
  for (const q of op.queryParams) {
    for (const [what, raw] of QUERY_BADS) variants.push(withBody({ name: `query ${q.name}: ${what}`, url: `${base}?${q.name}=${raw}` }));
    variants.push(withBody({ name: `query ${q.name}: repeated`, url: `${base}?${q.name}=1&${q.name}=2` }));
  }
  for (const h of op.headerParams) {
    for (const [what, value] of [
      ['NUL', 'a\u0000b'],
      ['unpaired surrogate', 'a\ud800'],
      ['1000 characters', 'k'.repeat(1000)],
    ] as const) {
      variants.push(withBody({ name: `header ${h.name}: ${what}`, url: base, headers: { [h.name]: value } }));
    }
  }
  // Generic defects every route must refuse.
  variants.push(
    withBody({ name: 'query key with NUL', url: `${base}?%00=1` }),
    withBody({ name: 'query value with NUL', url: `${base}?fuzz=%00` }),
    withBody({ name: 'query: NUL after valid pairs', url: `${base}?lang=ru&a=1&b=x%00y` }),
    withBody({ name: 'header with NUL', url: base, headers: { 'x-fuzz': 'a\u0000b' } }),
    withBody({ name: 'header with an unpaired surrogate', url: base, headers: { 'x-fuzz': '\udfff' } }),
    withBody({ name: 'accept-language with NUL', url: base, headers: { 'accept-language': 'ru\u0000' } }),
    withBody({ name: 'user-agent with NUL', url: base, headers: { 'user-agent': 'fuzz\u0000' } }),
    withBody({ name: 'extra path segment of 3000 characters', url: `${base}/${'y'.repeat(3000)}` }),
    withBody({ name: 'NUL appended to the path', url: `${base}%00` }),
    withBody({ name: 'bad percent-encoding appended to the path', url: `${base}%G0` }),
  );
  for (const [header, value] of [
    ['authorization', 'Bearer \u0000'],
    ['authorization', `Bearer ${'k'.repeat(10_000)}`],
    ['authorization', 'Bearer \ud800\udc00\ud800'],
    ['cookie', 'wc_session=\u0000'],
    ['idempotency-key', 'key\u0000'],
    ['if-modified-since', 'Thu, 01 Jan 1970 00:00:00 GMT\u0000'],
    ['x-forwarded-for', '127.0.0.1\u0000'],
    ['origin', 'https://\udbff.example'],
    ['referer', 'https://example.com/\u0000'],
    ['accept', 'application/json\u0000'],
    ['accept-encoding', 'gzip\u0000'],
    ['x-request-id', '\udc00'],
    ['sec-fetch-site', 'same-origin\u0000'],
  ] as const) {
    variants.push(withBody({ name: `${header} header: ${value.length > 40 ? `${value.length} characters` : JSON.stringify(value)}`, url: base, headers: { [header]: value } }));
  }

  if (!op.bodySchema && ['POST', 'PUT', 'PATCH'].includes(op.method)) {
    // Form posts (the join page, the cabinet): broken fields in an urlencoded body.
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    for (const [what, payload] of [
      ['form: NUL value', 'name=%00&phone=%2B79160000002&consent=yes'],
      ['form: NUL key', '%00=1'],
      ['form: encoded surrogate', 'name=%ED%A0%80&phone=1'],
      ['form: 200,000 characters', `name=${'x'.repeat(200_000)}`],
      ['form: 300 KB', `name=${'x'.repeat(300 * 1024)}`],
      ['form: repeated fields with NUL', 'name=a&name=b%00&phone=1&phone=2'],
      ['form: JSON with NUL', '{"name":"\\u0000"}'],
    ] as const) {
      variants.push({ name: what, url: base, headers: form, payload });
    }
  }

  if (op.bodySchema) {
    const raw = (name: string, payload: string, headers: Record<string, string> = json): Variant => ({ name, url: base, headers, payload });
    variants.push(
      raw('body: invalid JSON', '{"a":'),
      raw('body: null', 'null'),
      raw('body: an array', '[]'),
      raw('body: a string', '"x"'),
      raw('body: a number beyond double', '1e400'),
      raw('body: nested 5000 deep', `${'['.repeat(5000)}${']'.repeat(5000)}`),
      raw('body: nested objects 100 deep', `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`),
      raw('body: __proto__', '{"__proto__":{"admin":true}}'),
      raw('body: constructor.prototype', '{"constructor":{"prototype":{"admin":true}}}'),
      raw('body: 300 KB', JSON.stringify({ pad: 'x'.repeat(300 * 1024) })),
      raw('body: NUL key', '{"a\\u0000":1}'),
      raw('body: text/plain', validBody!, { 'content-type': 'text/plain' }),
      raw('body: form-encoded', 'a=1', { 'content-type': 'application/x-www-form-urlencoded' }),
      raw('body: multipart', '--x\r\n\r\n--x--', { 'content-type': 'multipart/form-data; boundary=x' }),
      raw('body: charset utf-7', validBody!, { 'content-type': 'application/json; charset=utf-7' }),
    );
    // An unknown property is a defect only where the schema forbids them (the PassKit web service
    // tolerates them on purpose: a device protocol must survive a field Apple adds).
    if (op.bodySchema.additionalProperties === false) variants.push(raw('body: unknown property', JSON.stringify({ ...(bodyBase as object), fuzzUnknown: 1 })));
    const mutations: Variant[] = [];
    for (const field of fieldsOf(op.bodySchema)) {
      for (const [what, value] of mutationsFor(field.schema)) {
        mutations.push(raw(`body ${field.path.join('.')}: ${what}`, JSON.stringify(withField(bodyBase, field.path, value))));
      }
    }
    const max = ctx.maxBodyMutations ?? 150;
    const step = Math.max(1, Math.ceil(mutations.length / max));
    variants.push(...mutations.filter((_v, i) => i % step === 0));
  }
  return variants;
}
