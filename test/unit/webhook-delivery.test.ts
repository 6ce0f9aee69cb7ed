import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_WEBHOOK_SETTINGS, nextRetryDelay, postWebhook } from '../../src/webhooks/delivery.js';
import { addressAllowed, checkWebhookUrl, type UrlPolicy } from '../../src/webhooks/url-policy.js';

// The default in every environment, and the one a test with a local receiver sets
// (WEBHOOK_ALLOW_PRIVATE_NETWORKS=true); the full address table is in webhook-url-policy.test.ts.
const production: UrlPolicy = { allowPrivateNetworks: false };
const development: UrlPolicy = { allowPrivateNetworks: true };

describe('webhook retry schedule', () => {
  it('tries 8 times over a little more than 24 hours, then gives up', () => {
    const delays: number[] = [];
    for (let attempt = 1; ; attempt++) {
      const delay = nextRetryDelay(attempt, DEFAULT_WEBHOOK_SETTINGS);
      if (delay === null) break;
      delays.push(delay);
    }
    expect(delays).toEqual([10, 60, 600, 3600, 10800, 21600, 50400]);
    const total = delays.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(DEFAULT_WEBHOOK_SETTINGS.disableAfterSeconds);
    expect(total).toBeLessThan(DEFAULT_WEBHOOK_SETTINGS.disableAfterSeconds + 3600);
  });
});

describe('webhook URL policy', () => {
  it('accepts https, and http only to loopback when private networks are allowed', () => {
    expect(checkWebhookUrl('https://hooks.example.com/a?b=1', production)).toBe('https://hooks.example.com/a?b=1');
    expect(checkWebhookUrl('http://127.0.0.1:8080/x', development)).toBe('http://127.0.0.1:8080/x');
    expect(checkWebhookUrl('http://localhost:8080/x', development)).toBe('http://localhost:8080/x');
    expect(checkWebhookUrl('http://[::1]:8080/x', development)).toBe('http://[::1]:8080/x');
    for (const url of ['http://127.0.0.1:8080/x', 'http://localhost/x', 'https://localhost/x', 'https://127.0.0.1/x', 'https://[::1]/x']) {
      expect(() => checkWebhookUrl(url, production), url).toThrow(/invalid|must/i);
    }
    for (const url of ['http://example.com/x', 'ws://example.com', 'file:///etc/passwd', 'https://u:p@example.com/', 'https://example.com/#f', '/relative']) {
      expect(() => checkWebhookUrl(url, development), url).toThrow();
    }
  });

  it('refuses private, link-local and reserved addresses unless allowed', () => {
    for (const address of ['10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '127.0.0.1', '::1', 'fd00::1', 'fe80::1', '::ffff:10.0.0.1', '::ffff:127.0.0.1', '224.0.0.1']) {
      expect(addressAllowed(address, production), address).toBe(false);
    }
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111']) {
      expect(addressAllowed(address, production), address).toBe(true);
    }
    expect(addressAllowed('127.0.0.1', development)).toBe(true);
    expect(addressAllowed('10.0.0.1', development)).toBe(true);
    expect(addressAllowed('169.254.169.254', development)).toBe(false);
    expect(() => checkWebhookUrl('https://10.0.0.1/x', production)).toThrow(/private/);
    expect(checkWebhookUrl('https://10.0.0.1/x', development)).toBe('https://10.0.0.1/x');
  });
});

describe('postWebhook', () => {
  let server: http.Server;
  let base: string;
  const seen: string[] = [];
  beforeAll(async () => {
    server = http.createServer((request, response) => {
      seen.push(request.url ?? '');
      if (request.url === '/redirect') {
        response.writeHead(307, { location: '/target' }).end();
      } else if (request.url === '/slow') {
        setTimeout(() => response.writeHead(200).end('late'), 2000);
      } else if (request.url === '/fail') {
        response.writeHead(503).end('busy');
      } else {
        response.writeHead(200).end('ok');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const send = (url: string, policy = development, timeoutMs = 1000) => postWebhook(url, { 'webhook-id': 'e' }, '{}', { timeoutMs, policy });

  it('reports 2xx as delivered and anything else as failed, never following redirects', async () => {
    expect(await send(`${base}/ok`)).toEqual({ ok: true, statusCode: 200, error: null });
    expect(await send(`${base}/fail`)).toEqual({ ok: false, statusCode: 503, error: 'HTTP 503' });
    const redirect = await send(`${base}/redirect`);
    expect(redirect).toMatchObject({ ok: false, statusCode: 307 });
    expect(redirect.error).toMatch(/redirects are not followed/);
    expect(seen).not.toContain('/target');
  });

  it('times out', async () => {
    const started = Date.now();
    const result = await send(`${base}/slow`, development, 300);
    expect(result).toMatchObject({ ok: false, statusCode: null });
    expect(result.error).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('refuses non-public addresses at connect time, also behind a host name', async () => {
    const before = seen.length;
    const literal = await send(`${base}/ok`, production);
    expect(literal).toMatchObject({ ok: false, statusCode: null });
    expect(literal.error).toMatch(/not a public address/);
    const port = new URL(base).port;
    const named = await send(`http://localhost:${port}/ok`, production);
    expect(named).toMatchObject({ ok: false, statusCode: null });
    expect(named.error).toMatch(/not a public address/);
    expect(seen.length).toBe(before);
  });

  it('reports connection errors', async () => {
    const closed = await send('http://127.0.0.1:1/x');
    expect(closed).toMatchObject({ ok: false, statusCode: null });
    expect(closed.error).toMatch(/ECONNREFUSED/);
  });
});
