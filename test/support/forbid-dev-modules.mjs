// Loaded with `node --import` into a production process by test/cluster/production-start.test.ts:
// any import of a development-only package (TypeScript tooling, node-forge) makes that import
// throw, so the process fails instead of quietly depending on something the image does not have.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
      const FORBIDDEN = /^(node-forge|tsx|esbuild|typescript|vitest)(\\/|$)/;
      export async function resolve(specifier, context, next) {
        if (FORBIDDEN.test(specifier)) throw new Error('production process imported the development-only package ' + specifier);
        return next(specifier, context);
      }
    `),
);
