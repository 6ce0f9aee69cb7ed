/**
 * Shared pieces of the HTTP benchmarks (`bench:pos`, section 2 of `bench:passes`): a throw-away
 * PostgreSQL database, child processes that report over IPC, a closed-loop load driver with
 * per-operation latencies (contenders taking turns in slices), a keep-alive `node:http` client,
 * CPU accounting (this process, child processes, PostgreSQL backends, the whole machine).
 *
 * Everything here talks to 127.0.0.1 only, and every loop is bounded in time and in count.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

// ---------------------------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------------------------

export const DEFAULT_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  name: string;
  /** Connection string of the new database. */
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database `walletcards_bench_<random>` on DATABASE_URL's server (or the local default). */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const serverUrl = process.env.DATABASE_URL ?? DEFAULT_SERVER_URL;
  const host = new URL(serverUrl).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    throw new Error(`benchmarks only run against a local PostgreSQL (DATABASE_URL points at ${host})`);
  }
  const name = `walletcards_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A pool for the benchmark's own connections. pg-pool's end() resolves before the server has
 * seen every Terminate, so DROP DATABASE … WITH (FORCE) right after it may still terminate an idle
 * client, which the pool re-emits as an 'error' event; at teardown that is expected, not a crash.
 */
export function benchPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', () => {});
  return pool;
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

export interface ChildHandle<M extends { type: string }> {
  process: ChildProcess;
  /** The next message of this type (rejects if the child exits first). */
  next<T extends M['type']>(type: T, timeoutMs?: number): Promise<Extract<M, { type: T }>>;
  send(message: unknown): void;
  /** Asks the child to close (message `{type: 'close'}`), waits for it to exit, kills it after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Forks a TypeScript module as a child process. execArgv is inherited, so under `tsx` the child
 * runs under tsx too; `extraExecArgv` adds e.g. `--cpu-prof`. The child's stdout goes to
 * /dev/null (its request logs must cost what they cost in production, not fill our terminal).
 */
export function forkChild<M extends { type: string }>(
  file: string,
  options: { env?: Record<string, string>; extraExecArgv?: string[]; quietStdout?: boolean } = {},
): ChildHandle<M> {
  const child = fork(file, [], {
    execArgv: [...process.execArgv, ...(options.extraExecArgv ?? [])],
    env: { ...process.env, ...options.env },
    stdio: [options.quietStdout === false ? 'inherit' : 'ignore', options.quietStdout === false ? 'inherit' : 'ignore', 'inherit', 'ipc'],
  });
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => (exited = true));
  return {
    process: child,
    next(type, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const onMessage = (m: M) => {
          if (m?.type !== type) return;
          cleanup();
          resolve(m as Extract<M, { type: typeof type }>);
        };
        const onExit = (code: number | null) => {
          cleanup();
          reject(new Error(`${file} exited (${code}) before sending "${type}"`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${file}: no "${type}" within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
        };
        child.on('message', onMessage);
        child.once('exit', onExit);
      });
    },
    send(message) {
      if (!exited && child.connected) child.send(message as never);
    },
    async stop(timeoutMs = 30_000) {
      if (exited) return;
      if (child.connected) child.send({ type: 'close' });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Load driver
// ---------------------------------------------------------------------------------------------

/** Something that can say how many CPU milliseconds a process (or group) spent between start and stop. */
export interface CpuMeter {
  start(): Promise<void> | void;
  stop(): Promise<number | undefined>;
}

/** One side of a comparison: `concurrency` closed-loop workers repeating `operation`. */
export interface Contender {
  label: string;
  concurrency: number;
  operation: (worker: number) => Promise<void>;
  /** CPU meters (by name, e.g. app, postgres) read around every measured slice. */
  meters?: Record<string, CpuMeter>;
}

export interface InterleaveOptions {
  warmUpSeconds: number;
  /** Measured seconds per contender, in slices of `sliceSeconds` taking turns. */
  seconds: number;
  sliceSeconds: number;
  /** Hard cap on operations per slice, so every loop is bounded in count as well as in time. */
  maxOperationsPerSlice?: number;
}

export interface LoadResult {
  label: string;
  concurrency: number;
  operations: number;
  failures: number;
  firstFailure?: string;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Share of all cores (every process on the machine, from /proc/stat) busy during this contender's slices, 0–1. */
  machineBusy?: number;
  /** CPU milliseconds per operation: `client` (this process) and one entry per meter. */
  cpuMsPerOp: Record<string, number | undefined>;
}

interface Slice {
  latencies: number[];
  failures: number;
  firstFailure?: string;
  elapsedMs: number;
}

/**
 * One closed-loop slice: `concurrency` workers, each starting its next operation as soon as the
 * previous one finished, until `seconds` have passed. Operations started before the deadline are
 * counted and waited for; the elapsed time includes that tail.
 */
async function runSlice(concurrency: number, seconds: number, operation: (worker: number) => Promise<void>, maxOperations: number): Promise<Slice> {
  const latencies: number[] = [];
  let started = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const worker = async (index: number) => {
    for (;;) {
      const begin = performance.now();
      if (begin >= deadline || started >= maxOperations) return;
      started++;
      try {
        await operation(index);
        latencies.push(performance.now() - begin);
      } catch (error) {
        failures++;
        firstFailure ??= error instanceof Error ? error.message : String(error);
        // A failing target must not turn the loop into a busy spin.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  return { latencies, failures, firstFailure, elapsedMs: performance.now() - t0 };
}

/**
 * Measures contenders in turns (A B B A A B …, one slice each) so that load from other processes
 * on a shared machine, and slow drifts such as growing tables, fall on all of them alike. Each
 * contender first gets an unmeasured warm-up. Latency percentiles are over every measured
 * operation; throughput is operations / measured time.
 */
export async function runInterleaved(contenders: Contender[], options: InterleaveOptions): Promise<LoadResult[]> {
  const maxOperations = options.maxOperationsPerSlice ?? 1_000_000;
  for (const contender of contenders) {
    if (options.warmUpSeconds > 0) await runSlice(contender.concurrency, options.warmUpSeconds, contender.operation, maxOperations);
  }
  const totals = contenders.map(() => ({
    latencies: [] as number[],
    failures: 0,
    firstFailure: undefined as string | undefined,
    elapsedMs: 0,
    clientCpuMs: 0,
    meterMs: {} as Record<string, number | undefined>,
    busy: 0,
    total: 0,
  }));
  const slices = Math.max(1, Math.round(options.seconds / options.sliceSeconds));
  for (let slice = 0; slice < slices; slice++) {
    const order = contenders.map((_, i) => i);
    if (slice % 2 === 1) order.reverse();
    for (const i of order) {
      const contender = contenders[i]!;
      const sum = totals[i]!;
      const meters = Object.entries(contender.meters ?? {});
      for (const [, meter] of meters) await meter.start();
      const machineBefore = machineCpuTimes();
      const cpuBefore = process.cpuUsage();
      const result = await runSlice(contender.concurrency, options.sliceSeconds, contender.operation, maxOperations);
      const cpu = process.cpuUsage(cpuBefore);
      const machineAfter = machineCpuTimes();
      for (const [name, meter] of meters) {
        const ms = await meter.stop();
        sum.meterMs[name] = ms === undefined || (name in sum.meterMs && sum.meterMs[name] === undefined) ? undefined : (sum.meterMs[name] ?? 0) + ms;
      }
      for (const latency of result.latencies) sum.latencies.push(latency);
      sum.failures += result.failures;
      sum.firstFailure ??= result.firstFailure;
      sum.elapsedMs += result.elapsedMs;
      sum.clientCpuMs += (cpu.user + cpu.system) / 1000;
      if (machineBefore && machineAfter) {
        sum.busy += machineAfter.busy - machineBefore.busy;
        sum.total += machineAfter.total - machineBefore.total;
      }
    }
  }
  return contenders.map((contender, i) => {
    const sum = totals[i]!;
    const operations = sum.latencies.length;
    const sorted = Float64Array.from(sum.latencies).sort();
    const perOp = (ms: number | undefined) => (ms === undefined ? undefined : ms / Math.max(1, operations));
    const cpuMsPerOp: Record<string, number | undefined> = { client: perOp(sum.clientCpuMs) };
    for (const [name, ms] of Object.entries(sum.meterMs)) cpuMsPerOp[name] = perOp(ms);
    return {
      label: contender.label,
      concurrency: contender.concurrency,
      operations,
      failures: sum.failures,
      firstFailure: sum.firstFailure,
      seconds: sum.elapsedMs / 1000,
      perSecond: operations / (sum.elapsedMs / 1000),
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      machineBusy: sum.total > 0 ? sum.busy / sum.total : undefined,
      cpuMsPerOp,
    };
  });
}

/** Sum of the per-operation CPU of every metered process, or undefined if one is unknown. */
export function totalCpuMsPerOp(result: LoadResult): number | undefined {
  let total = 0;
  for (const ms of Object.values(result.cpuMsPerOp)) {
    if (ms === undefined) return undefined;
    total += ms;
  }
  return total;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

// ---------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A keep-alive agent with one socket per concurrent client (no socket churn during a run). */
export function keepAliveAgent(sockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'lifo' });
}

export function httpRequest(
  agent: http.Agent,
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.setTimeout(30_000, () => request.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
    request.end(body);
  });
}

/** An HTTP operation for runClosedLoop that fails unless the status is `expected`. */
export async function expectStatus(answer: Promise<HttpAnswer>, expected: number): Promise<HttpAnswer> {
  const result = await answer;
  if (result.status !== expected) throw new Error(`expected ${expected}, got ${result.status}: ${result.body.slice(0, 300)}`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting (Linux /proc/stat; undefined elsewhere)
// ---------------------------------------------------------------------------------------------

interface CpuTimes {
  busy: number;
  total: number;
}

function machineCpuTimes(): CpuTimes | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

function machineBusyShare(before: CpuTimes | undefined, after: CpuTimes | undefined): number | undefined {
  if (!before || !after || after.total === before.total) return undefined;
  return (after.busy - before.busy) / (after.total - before.total);
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

export function formatResult(result: LoadResult, extra = ''): string {
  const parts = [
    result.label.padEnd(30),
    `c=${String(result.concurrency).padStart(2)}`,
    `${result.perSecond.toFixed(0).padStart(6)} /s`,
    `p50 ${result.p50Ms.toFixed(2).padStart(6)} ms`,
    `p99 ${result.p99Ms.toFixed(2).padStart(6)} ms`,
    `(${result.operations} in ${result.seconds.toFixed(1)} s${result.failures ? `, ${result.failures} FAILED` : ''})`,
  ];
  if (result.machineBusy !== undefined) parts.push(`machine ${(result.machineBusy * 100).toFixed(0)} % busy`);
  const cpu = Object.entries(result.cpuMsPerOp)
    .map(([name, ms]) => `${name} ${ms === undefined ? '?' : (ms * 1000).toFixed(0)}`)
    .join(', ');
  parts.push(`cpu µs/op: ${cpu}`);
  if (extra) parts.push(extra);
  return parts.join('  ');
}

export function envNumber(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name} must be a positive number (got "${value}")`);
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL CPU (Linux: /proc/<pid>/stat of the backends connected to one database)
// ---------------------------------------------------------------------------------------------

const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * CPU time spent by the PostgreSQL backends serving one database, between `start()` and `stop()`.
 * Backends that exit in between are not counted (pools keep theirs open during a run); ones that
 * appear in between count from zero. Resolution: 10 ms per backend. Undefined where /proc is not
 * readable (other systems, or PostgreSQL on another host/container).
 */
export class PostgresCpuMeter implements CpuMeter {
  #client: pg.Client;
  #connected: Promise<void>;
  #before = new Map<number, number>();

  constructor(
    databaseUrl: string,
    private readonly databaseName: string,
  ) {
    this.#client = new pg.Client({ connectionString: databaseUrl });
    this.#client.on('error', () => {}); // see benchPool
    this.#connected = this.#client.connect().then(() => undefined);
  }

  async #sample(): Promise<Map<number, number>> {
    await this.#connected;
    const { rows } = await this.#client.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [
      this.databaseName,
    ]);
    const sample = new Map<number, number>();
    for (const { pid } of rows) {
      const ms = processCpuMs(pid);
      if (ms !== undefined) sample.set(pid, ms);
    }
    return sample;
  }

  async start(): Promise<void> {
    this.#before = await this.#sample();
  }

  /** Milliseconds of backend CPU since start(), or undefined when nothing could be read. */
  async stop(): Promise<number | undefined> {
    const after = await this.#sample();
    if (after.size === 0) return undefined;
    let total = 0;
    for (const [pid, ms] of after) total += ms - (this.#before.get(pid) ?? 0);
    return total;
  }

  async close(): Promise<void> {
    await this.#connected.catch(() => {});
    await this.#client.end().catch(() => {});
  }
}

/** Share of all cores busy over `ms` (other processes included), to say how quiet the machine was. */
export async function machineBusyOver(ms: number): Promise<number | undefined> {
  const before = machineCpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return machineBusyShare(before, machineCpuTimes());
}

/**
 * A CpuMeter for a child process that answers `{type:'stats'}` with `{type:'stats', cpuMs,
 * eventLoopActiveMs, eventLoopIdleMs}` covering the time since its previous answer (pos-server.ts,
 * hello-server.ts). It also adds up the child's event-loop utilisation over the measured slices.
 */
export interface ChildCpuMeter extends CpuMeter {
  /** Event-loop utilisation (0–1) over the slices measured since the last reset. */
  eventLoopUtilization(): number | undefined;
  reset(): void;
}

export function childCpuMeter(child: ChildHandle<any>): ChildCpuMeter {
  let active = 0;
  let idle = 0;
  const ask = async () => {
    child.send({ type: 'stats' });
    return (await child.next('stats')) as { cpuMs: number; eventLoopActiveMs: number; eventLoopIdleMs: number };
  };
  return {
    async start() {
      await ask();
    },
    async stop() {
      const stats = await ask();
      active += stats.eventLoopActiveMs;
      idle += stats.eventLoopIdleMs;
      return stats.cpuMs;
    },
    eventLoopUtilization: () => (active + idle > 0 ? active / (active + idle) : undefined),
    reset() {
      active = 0;
      idle = 0;
    },
  };
}
