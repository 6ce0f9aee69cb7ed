import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { passJsonOf } from '../support/pkpass.js';
import { getTestCertificates } from '../support/test-certificates.js';

// The real entry point (`npm start` runs src/server.ts): configuration errors stop it with exit
// code 2, it starts with nothing but a data folder, and SIGTERM shuts it down cleanly.
const SERVER = path.resolve('src/server.ts');

function run(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  // tsx as a loader in the one process, not its CLI: the CLI relays SIGTERM to a child process and
  // SIGKILLs it when the child does not acknowledge within 30 ms, which a busy machine misses (exit 143).
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

const CLI = path.resolve('src/signin-link.ts');

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(condition: () => boolean, output: () => string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  expect(condition(), output()).toBe(true);
}

async function listening(output: () => string): Promise<string> {
  let url: string | undefined;
  await waitFor(() => Boolean((url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output())?.[1])), output);
  return url!;
}

/** A one-time link signs in: the page asks, the POST signs in. */
async function expectSignInWorks(url: string, signInPath: string) {
  const ask = await fetch(`${url}${signInPath}`);
  expect(ask.status).toBe(200);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await ask.text())![1];
  const pre = /wc_pre=([^;]+)/.exec(ask.headers.get('set-cookie') ?? '')![1];
  const signedIn = await fetch(`${url}${signInPath}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: `wc_pre=${pre}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf }).toString(),
  });
  expect(signedIn.status).toBe(303);
  expect(signedIn.headers.get('location')).toBe('/app/account?welcome=1');
}

describe('server process', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'walletcards-server-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('exits with code 2 and names every invalid setting', async () => {
    const { exited, output } = run({ PORT: 'not-a-port', PUBLIC_URL: 'ftp://x', DATA_DIR: dataDir });
    expect(await exited).toBe(2);
    expect(output()).toMatch(/PORT/);
    expect(output()).toMatch(/PUBLIC_URL/);
  });

  it('starts on an empty data folder with the demo program and a banner whose links follow PORT, serves, and stops on SIGTERM', async () => {
    const certs = await getTestCertificates();
    // PUBLIC_URL unset: every printed and built link follows HOST and PORT (issue #15).
    const port = await freePort();
    const env = { DATA_DIR: path.join(dataDir, 'data'), APPLE_CERT_DIR: certs.dir, PORT: String(port), LOG_LEVEL: 'info' };
    const { child, exited, output } = run(env);
    const url = await listening(output);
    expect(url, output()).toBe(`http://127.0.0.1:${port}`);
    const origin = `http://localhost:${port}`;
    await waitFor(() => /A new sign-in link later/.test(output()), output);
    const banner = output().split('\n').filter((line) => !line.startsWith('{')).join('\n');
    expect(banner).toContain(`walletcards is running at ${origin} (development)`);
    expect(banner).toContain(`API docs   ${origin}/docs`);
    expect(banner).toMatch(/instance admin +wc_instance_\S+ +\(kept in .*admin\.key\)/);
    expect(banner).toMatch(/demo admin +wc_admin_/);
    expect(banner).toMatch(/demo pos +wc_pos_/);
    expect(banner).toContain('npm run signin-link -- --program demo');
    expect(banner).not.toContain('localhost:3000');
    const live = await fetch(`${url}/readyz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ status: 'ok', role: 'all', database: 'embedded', queue: 'ok', certificate: { state: 'ok' } });
    // Keys and links are printed to the terminal once, never into the structured (JSON) log: a
    // pipe is not a terminal, so the log stays JSON lines in development too.
    const logLines = output().split('\n').filter((line) => line.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(3);
    for (const line of logLines) {
      expect(() => JSON.parse(line)).not.toThrow();
      expect(line).not.toMatch(/wc_(pos|admin|instance)_|sign-in\/link\/|\/c\/[A-Za-z0-9_-]{16}/);
    }
    // The root leads to the cabinet.
    const root = await fetch(`${url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/app');
    // The pass is served from the printed link, and its web service URL names the same origin.
    const passPath = new RegExp(`Pass +${origin}(/c/\\S+)`).exec(banner)?.[1];
    expect(passPath, banner).toBeDefined();
    const pass = await fetch(`${url}${passPath}`);
    expect(pass.status).toBe(200);
    expect(pass.headers.get('content-type')).toBe('application/vnd.apple.pkpass');
    expect(passJsonOf(Buffer.from(await pass.arrayBuffer())).webServiceURL).toBe(`${origin}/apple`);
    // The demo owner's one-time cabinet link: the page asks, the POST signs in.
    const signInPath = new RegExp(`Cabinet +${origin}(/app/sign-in/link/[A-Za-z0-9_-]+)`).exec(banner)?.[1];
    expect(signInPath, banner).toBeDefined();
    await expectSignInWorks(url, signInPath!);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output()).toMatch(/shutting down/);

    // A later start: no keys, one line with the way back into the cabinet.
    const again = run(env);
    const url2 = await listening(again.output);
    await waitFor(() => /new sign-in link: npm run signin-link -- --program demo/.test(again.output()), again.output);
    const text = again.output();
    expect(text).toContain(`walletcards at ${origin} · cabinet ${origin}/app`);
    expect(text).not.toMatch(/wc_(pos|admin|instance)_|sign-in\/link\/|Keys, shown once/);
    // The command it names, against the running server (the embedded database is the server's).
    const cli = await runCli(['--program', 'demo'], env);
    expect(cli.code, cli.output).toBe(0);
    const cliPath = new RegExp(`${origin}(/app/sign-in/link/[A-Za-z0-9_-]+)`).exec(cli.output)?.[1];
    expect(cliPath, cli.output).toBeDefined();
    await expectSignInWorks(url2, cliPath!);
    const unknown = await runCli(['--program', 'nope'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.output).toMatch(/No program «nope»/);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);

    // With no server running, the command opens the embedded database itself.
    const offline = await runCli(['--program', 'demo', '--hours', '2'], env);
    expect(offline.code, offline.output).toBe(0);
    expect(offline.output).toMatch(new RegExp(`${origin}/app/sign-in/link/[A-Za-z0-9_-]+`));
    expect((await runCli(['--program', 'demo', '--hours', '999'], env)).code).toBe(2);
    // Two starts of the real entry point and four runs of the CLI, each a Node process loading tsx.
  }, 240_000);

  it('in production creates no demo program and prints no key or sign-in link', async () => {
    const certs = await getTestCertificates();
    const adminKey = `prod-admin-key-${'x'.repeat(24)}`;
    const { child, exited, output } = run({
      NODE_ENV: 'production',
      ADMIN_KEY: adminKey,
      // No internet here: APNs points at a closed local port instead of api.push.apple.com.
      APNS_HOST: '127.0.0.1',
      APNS_PORT: '9',
      DATA_DIR: path.join(dataDir, 'prod'),
      APPLE_CERT_DIR: certs.dir,
      PORT: '0',
      LOG_LEVEL: 'info',
    });
    const deadline = Date.now() + 90_000;
    let url: string | undefined;
    while (!url && Date.now() < deadline) {
      url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output())?.[1];
      if (!url) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(url, output()).toBeDefined();
    const programs = await fetch(`${url}/api/v1/programs`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(await programs.json()).toEqual([]);
    // Without METRICS_TOKEN, /metrics is off in production.
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
    child.kill('SIGTERM');
    expect(await exited, output()).toBe(0);
    expect(output()).not.toMatch(/wc_(pos|admin|instance)_|sign-in\/link|demo program|walletcards (is running )?at|signin-link/i);
    expect(output()).not.toContain(adminKey);
  });
});
