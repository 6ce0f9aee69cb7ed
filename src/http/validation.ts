import AjvCompiler, { type ValidatorFactory } from '@fastify/ajv-compiler';

/**
 * The request validators: one schema per route part (TypeBox), compiled by Fastify's own Ajv
 * compiler, with two option sets.
 *
 * - Bodies: no type coercion. Fastify's default (`coerceTypes: 'array'`) turned `{"amount":"100"}`,
 *   `{"amount":true}` and `{"amount":[100]}` into the number 100 and recorded a purchase (issue #11);
 *   a JSON body must carry the types its schema declares.
 * - Path parameters, query strings and headers: coercion stays. They are text on the wire, so
 *   `?limit=20` has to become the integer its schema declares.
 *
 * Both keep `removeAdditional: false`: Fastify's default strips properties a schema does not declare,
 * so `additionalProperties: false` silently dropped a misspelt field and answered 201. Unknown fields
 * must be a 400 problem instead (spec: validation).
 *
 * And both refuse numbers that are not finite: Ajv coerces `?limit=Infinity` (or `1e400`) to
 * Infinity and then lets it pass `type: integer, maximum: 200` (measured with ajv 8.20), and
 * `JSON.parse` reads `1e400` as Infinity. Infinity reached `LIMIT` in SQL: a 500.
 */
export function validatorFactory(): ValidatorFactory {
  const pool = AjvCompiler();
  return ((externalSchemas: Parameters<ValidatorFactory>[0], options?: { customOptions?: object }) => {
    const base = options?.customOptions ?? {};
    const coercing = pool(externalSchemas, { ...options, customOptions: { ...base, removeAdditional: false, coerceTypes: 'array' } });
    const strict = pool(externalSchemas, { ...options, customOptions: { ...base, removeAdditional: false, coerceTypes: false } });
    return (route: Parameters<typeof coercing>[0]) => finiteOnly((route.httpPart === 'body' ? strict : coercing)(route) as unknown as Validate);
  }) as ValidatorFactory;
}

type Validate = ((data: unknown, context?: unknown) => unknown) & { errors?: unknown; schemaEnv?: unknown };

/** The path of the first number in `value` that is not finite (iterative; bodies are depth-checked by the input guard first). */
export function nonFiniteNumberAt(value: unknown): string | undefined {
  const stack: { value: unknown; path: string }[] = [{ value, path: '' }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item.value === 'number') {
      if (!Number.isFinite(item.value)) return item.path || '/';
    } else if (item.value !== null && typeof item.value === 'object' && !Buffer.isBuffer(item.value)) {
      for (const [key, sub] of Object.entries(item.value)) stack.push({ value: sub, path: `${item.path}/${key}` });
    }
  }
  return undefined;
}

function finiteOnly(validate: Validate): Validate {
  const wrapped: Validate = (data, context) => {
    const ok = validate(data, context);
    wrapped.errors = validate.errors;
    if (ok !== true) return ok;
    const at = nonFiniteNumberAt(data);
    if (at === undefined) return true;
    wrapped.errors = [{ instancePath: at === '/' ? '' : at, schemaPath: '#', keyword: 'type', params: {}, message: 'must be a finite number' }];
    return false;
  };
  // Fastify passes the parent object to Ajv validators (so a coerced root can be replaced) only when it sees this.
  wrapped.schemaEnv = validate.schemaEnv;
  return wrapped;
}
