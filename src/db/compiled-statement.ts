import type { Compilable, CompiledQuery, QueryResult } from 'kysely';
import type { Executor } from './database.js';

/**
 * A hot statement whose SQL kysely builds ONCE per process, then only runs with fresh parameters
 * (issue #14). Building a query (the operation-node tree, then compiling it to text) cost the app
 * ~17 % of its CPU in the purchase path's profile (`BENCH_CPU_PROF`, docs/benchmarks.md "POS hot
 * paths"), on a core that is the purchase's bottleneck; the text is the same for every purchase.
 *
 * The statement is still written with kysely's builder (`build`): it is built once with a marker
 * string in place of every named parameter, and the compiled parameter list remembers which slot
 * each position takes. The text is byte-for-byte what kysely would send for real values of the same
 * shape, so named prepared statements (PG_PREPARED_STATEMENTS, src/db/database.ts) name and reuse it
 * exactly as before. Values kysely puts in the parameter list as constants (none of the markers)
 * stay as they were built.
 *
 * Every value must reach kysely as a parameter, never be inspected by it: a slot used where kysely
 * looks at the value (`undefined` skips a column; `null` vs `is null`) would be built for the
 * marker, so only pass slots as ordinary values. A marker that ends up inside a longer parameter
 * (kysely concatenated it) is refused when the statement is first built.
 *
 * The template does not depend on the connection: every database of this app compiles with
 * kysely's PostgreSQL compiler (PostgresDialect, PGliteDialect).
 */
export class CompiledStatement<P extends Record<string, unknown>, R> {
  #template?: { compiled: CompiledQuery<R>; parameters: Array<{ slot: keyof P & string } | { value: unknown }> };

  constructor(private readonly build: (executor: Executor, slots: P) => Compilable<R>) {}

  async execute(executor: Executor, params: P): Promise<QueryResult<R>> {
    const template = (this.#template ??= compileTemplate(executor, this.build));
    const parameters = template.parameters.map((p) => ('slot' in p ? params[p.slot] : p.value));
    return executor.executeQuery<R>({ ...template.compiled, parameters });
  }
}

const MARKER = '\u0000wc-slot:';

function compileTemplate<P extends Record<string, unknown>, R>(executor: Executor, build: (executor: Executor, slots: P) => Compilable<R>) {
  const slots = new Proxy({}, { get: (_target, name) => `${MARKER}${String(name)}` }) as P;
  const compiled = build(executor, slots).compile();
  const parameters = compiled.parameters.map((value) => {
    if (typeof value === 'string' && value.includes(MARKER)) {
      if (!value.startsWith(MARKER)) throw new Error(`CompiledStatement: a slot inside a parameter (${JSON.stringify(value)})`);
      return { slot: value.slice(MARKER.length) as keyof P & string };
    }
    return { value };
  });
  return { compiled, parameters };
}

/** One CompiledStatement per shape (e.g. how many rows a multi-row INSERT has), built on first use. */
export class CompiledStatementsByShape<S, P extends Record<string, unknown>, R> {
  readonly #byShape = new Map<string, CompiledStatement<P, R>>();

  constructor(
    private readonly key: (shape: S) => string,
    private readonly build: (executor: Executor, slots: P, shape: S) => Compilable<R>,
  ) {}

  execute(executor: Executor, shape: S, params: P): Promise<QueryResult<R>> {
    const key = this.key(shape);
    let statement = this.#byShape.get(key);
    if (!statement) {
      statement = new CompiledStatement<P, R>((ex, slots) => this.build(ex, slots, shape));
      this.#byShape.set(key, statement);
    }
    return statement.execute(executor, params);
  }
}
