/**
 * Helpers for tests that run the service as production does: the compiled build (`dist/`, built by
 * `npm run build` when stale), started with `node dist/server.js` in child processes with roles, on
 * one PostgreSQL database.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * Builds dist/ unless it is up to date with src/ (scripts/build.mjs --if-stale). Parallel test
 * files take turns on a lock; a fresh clone builds once per test run.
 */
export function ensureBuild(): void {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}\n${result.stderr}`);
}

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `command` (default: the image's `node dist/server.js`) from the repository root with only `env` (plus PATH and HOME). */
export function spawnService(name: string, env: Record<string, string>, command: string[] = ['node', 'dist/server.js']): ServiceProcess {
  const [bin, ...args] = command;
  let output = '';
  const child = spawn(bin === 'node' ? process.execPath : bin!, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    name,
    child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface ServiceInstance extends ServiceProcess {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
}

/** Starts `node dist/server.js` on a free port and waits until it listens (or fails, with its output). */
export async function startInstance(name: string, env: Record<string, string>, timeoutMs = 120_000): Promise<ServiceInstance> {
  const service = spawnService(name, { HOST: '127.0.0.1', PORT: '0', ...env });
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void service.exited.then((code) => (exitCode = code));
  for (;;) {
    const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(service.output())?.[1];
    if (url) return { ...service, url };
    if (exitCode !== undefined) throw new Error(`${name} exited with ${exitCode} before listening:\n${service.output()}`);
    if (Date.now() > deadline) {
      await service.stop('SIGKILL');
      throw new Error(`${name} did not listen within ${timeoutMs} ms:\n${service.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** pino's JSON lines of a process (other output, e.g. console.log, is skipped). */
export function logLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}
