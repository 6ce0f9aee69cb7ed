import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getTestCertificates } from '../support/test-certificates.js';

// The real entry point (`npm start` runs src/server.ts): configuration errors stop it with exit
// code 2, it starts with nothing but a data folder, and SIGTERM shuts it down cleanly.
const SERVER = path.resolve('src/server.ts');
const TSX = path.resolve('node_modules/.bin/tsx');

function run(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const child = spawn(TSX, [SERVER], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
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

  it('starts on an empty data folder with the demo program, serves, and stops on SIGTERM', async () => {
    const certs = await getTestCertificates();
    const { child, exited, output } = run({
      DATA_DIR: path.join(dataDir, 'data'),
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
    expect(output()).toMatch(/Development admin key/);
    expect(output()).toMatch(/demo program created/);
    const live = await fetch(`${url}/readyz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok', database: 'embedded' });
    // Keys and links are printed to the terminal once, never into the structured (JSON) log.
    const logLines = output().split('\n').filter((line) => line.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(3);
    for (const line of logLines) expect(line).not.toMatch(/wc_(pos|admin|instance)_|sign-in\/link\/|\/c\/[A-Za-z0-9_-]{16}/);
    expect(output()).toMatch(/pos key: +wc_pos_/);
    const cardPage = /pass: +http:\/\/localhost:3000(\/c\/\S+)/.exec(output())?.[1];
    const pass = await fetch(`${url}${cardPage}`);
    expect(pass.status).toBe(200);
    expect(pass.headers.get('content-type')).toBe('application/vnd.apple.pkpass');
    // The demo owner's one-time cabinet link: the page asks, the POST signs in.
    const signInPath = /Demo owner sign-in link[^\n]*\n\s+http:\/\/localhost:3000(\/app\/sign-in\/link\/[A-Za-z0-9_-]+)/.exec(output())?.[1];
    expect(signInPath, output()).toBeDefined();
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

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output()).toMatch(/shutting down/);
  });

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
    expect(output()).not.toMatch(/wc_(pos|admin|instance)_|sign-in\/link|demo program|Development admin key/i);
    expect(output()).not.toContain(adminKey);
  });
});
