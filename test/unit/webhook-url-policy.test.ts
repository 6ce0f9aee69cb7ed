import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { postWebhook } from '../../src/webhooks/delivery.js';
import { addressAllowed, checkWebhookUrl, classifyAddress, guardedLookup, urlPolicyFor, type UrlPolicy } from '../../src/webhooks/url-policy.js';

const strict: UrlPolicy = { allowPrivateNetworks: false };
const privateAllowed: UrlPolicy = { allowPrivateNetworks: true };

describe('webhook address policy (issue #11)', () => {
  it('is strict in every environment unless WEBHOOK_ALLOW_PRIVATE_NETWORKS=true', () => {
    for (const NODE_ENV of ['development', 'test', 'production']) {
      const config = loadConfig({ NODE_ENV, ADMIN_KEY: 'k'.repeat(32) });
      expect(urlPolicyFor(config), NODE_ENV).toEqual(strict);
      expect(() => checkWebhookUrl('http://127.0.0.1:8080/hook', urlPolicyFor(config)), NODE_ENV).toThrow(/https/);
      expect(() => checkWebhookUrl('https://localhost/hook', urlPolicyFor(config)), NODE_ENV).toThrow(/localhost/);
      const open = loadConfig({ NODE_ENV, ADMIN_KEY: 'k'.repeat(32), WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
      expect(urlPolicyFor(open)).toEqual(privateAllowed);
      expect(checkWebhookUrl('http://127.0.0.1:8080/hook', urlPolicyFor(open))).toBe('http://127.0.0.1:8080/hook');
    }
  });

  // Every IPv6 form that embeds or translates an IPv4 address leads to an IPv4 host the check did
  // not see: refused whatever the IPv4 address inside, and even with private networks allowed.
  const ipv4Embedding: [string, string][] = [
    ['::/96 IPv4-compatible, loopback inside', '::127.0.0.1'],
    ['::/96 IPv4-compatible, public inside', '::8.8.8.8'],
    ['::/96 IPv4-compatible, hex', '::7f00:1'],
    ['::ffff:0:0/96 mapped, loopback', '::ffff:127.0.0.1'],
    ['::ffff:0:0/96 mapped, private', '::ffff:10.0.0.1'],
    ['::ffff:0:0/96 mapped, public', '::ffff:8.8.8.8'],
    ['::ffff:0:0/96 mapped, hex form', '::ffff:7f00:1'],
    ['::ffff:0:0:0/96 translated (RFC 6145)', '::ffff:0:a9fe:a9fe'],
    ['64:ff9b::/96 NAT64', '64:ff9b::a9fe:a9fe'],
    ['64:ff9b::/96 NAT64, dotted', '64:ff9b::127.0.0.1'],
    ['64:ff9b:1::/48 local-use NAT64', '64:ff9b:1::7f00:1'],
    ['2002::/16 6to4', '2002:7f00:1::1'],
    ['2002::/16 6to4, public inside', '2002:808:808::1'],
    ['2001::/32 Teredo', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
    ['2001::/32 Teredo, short', '2001::1'],
  ];
  const neverReached: [string, string][] = [
    ['IPv4 unspecified', '0.0.0.0'],
    ['IPv4 "this network"', '0.1.2.3'],
    ['link-local / cloud metadata', '169.254.169.254'],
    ['multicast', '224.0.0.1'],
    ['broadcast', '255.255.255.255'],
    ['reserved 240/4', '240.0.0.1'],
    ['documentation 192.0.2/24', '192.0.2.10'],
    ['benchmarking 198.18/15', '198.18.0.1'],
    ['IETF 192.0.0/24', '192.0.0.8'],
    ['IPv6 unspecified', '::'],
    ['IPv6 link-local', 'fe80::1'],
    ['IPv6 link-local with a zone', 'fe80::1%lo'],
    ['IPv6 site-local (deprecated)', 'fec0::1'],
    ['IPv6 multicast', 'ff02::1'],
    ['IPv6 discard 100::/64', '100::1'],
    ['IPv6 documentation 2001:db8::/32', '2001:db8::1'],
    ['IPv6 documentation 3fff::/20', '3fff::1'],
    ['IPv6 benchmarking', '2001:2::1'],
    ['IPv6 ORCHIDv2', '2001:20::1'],
    ['IPv6 SRv6 SIDs 5f00::/16', '5f00::1'],
    ['IPv6 outside 2000::/3', '4000::1'],
    ['not an address', 'example.com'],
    ['not an address (garbage)', '1.2.3.4.5'],
  ];
  const privateOnly: [string, string][] = [
    ['IPv4 loopback', '127.0.0.1'],
    ['IPv4 loopback range', '127.255.0.1'],
    ['RFC 1918 10/8', '10.0.0.1'],
    ['RFC 1918 172.16/12', '172.31.255.1'],
    ['RFC 1918 192.168/16', '192.168.1.1'],
    ['carrier-grade NAT', '100.64.0.1'],
    ['IPv6 loopback', '::1'],
    ['IPv6 unique-local', 'fd12:3456::1'],
  ];
  const publicAddresses: [string, string][] = [
    ['IPv4', '93.184.216.34'],
    ['IPv4 next to 100.64/10', '100.128.0.1'],
    ['IPv4 next to 172.16/12', '172.32.0.1'],
    ['IPv6 global', '2606:4700:4700::1111'],
    ['IPv6 global (Google)', '2001:4860:4860::8888'],
  ];

  it.each(ipv4Embedding)('never reaches %s (%s)', (_what, address) => {
    expect(classifyAddress(address)).toBe('never');
    expect(addressAllowed(address, strict)).toBe(false);
    expect(addressAllowed(address, privateAllowed)).toBe(false);
    expect(() => checkWebhookUrl(`https://[${address}]/hook`, privateAllowed)).toThrow(/private, loopback or reserved/);
  });

  it.each(neverReached)('never reaches %s (%s)', (_what, address) => {
    expect(classifyAddress(address)).toBe('never');
    expect(addressAllowed(address, privateAllowed)).toBe(false);
  });

  it.each(privateOnly)('reaches %s (%s) only with private networks allowed', (_what, address) => {
    expect(classifyAddress(address)).toBe('private');
    expect(addressAllowed(address, strict)).toBe(false);
    expect(addressAllowed(address, privateAllowed)).toBe(true);
  });

  it.each(publicAddresses)('reaches a public %s address (%s)', (_what, address) => {
    expect(classifyAddress(address)).toBe('public');
    expect(addressAllowed(address, strict)).toBe(true);
  });

  it('reads IPv4 literals in every URL spelling the same way (the URL parser normalises them first)', () => {
    for (const url of ['https://2130706433/', 'https://0x7f.1/', 'https://0177.0.0.1/', 'https://127.1/', 'https://[::ffff:7f00:1]/']) {
      expect(() => checkWebhookUrl(url, strict), url).toThrow(/private, loopback or reserved/);
    }
  });

  it('a refusal at connect time names the host, never the address it resolved to', async () => {
    const refusal = await new Promise<Error | null>((resolve) => guardedLookup(strict)('localhost', { family: 0 }, (error) => resolve(error)));
    expect(refusal?.message).toContain('localhost');
    expect(refusal?.message).not.toMatch(/127\.0\.0\.1|::1/);
  });
});

describe('a delivery to a host that resolves to a loopback address', () => {
  let server: http.Server;
  let port: number;
  let hits = 0;
  beforeAll(async () => {
    server = http.createServer((_request, response) => {
      hits++;
      response.writeHead(200).end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('is refused by default, without revealing the resolved address, and made only with private networks allowed', async () => {
    const refused = await postWebhook(`http://localhost:${port}/x`, {}, '{}', { timeoutMs: 2000, policy: strict });
    expect(refused).toMatchObject({ ok: false, statusCode: null });
    expect(refused.error).toContain('localhost is not a public address');
    expect(refused.error).not.toMatch(/127\.0\.0\.1|::1/);
    expect(hits).toBe(0);
    const made = await postWebhook(`http://127.0.0.1:${port}/x`, {}, '{}', { timeoutMs: 2000, policy: privateAllowed });
    expect(made).toEqual({ ok: true, statusCode: 200, error: null });
    expect(hits).toBe(1);
  });
});
