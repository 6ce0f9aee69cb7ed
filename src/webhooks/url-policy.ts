import dns from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { Config } from '../config.js';
import { unprocessable } from '../http/errors.js';

/**
 * Where webhooks may be sent (SSRF care). Checked twice: when a URL is saved (a clear 422), and at
 * connect time on every address the host resolves to (so a DNS answer that changes later — DNS
 * rebinding — cannot point a delivery at the service's own network). Redirects are never followed.
 */
export interface UrlPolicy {
  /** http:// to 127.0.0.1 / localhost / [::1], and loopback addresses (NODE_ENV test or development). */
  allowLoopback: boolean;
  /** Private, link-local and other non-public addresses (WEBHOOK_ALLOW_PRIVATE_NETWORKS). */
  allowPrivateNetworks: boolean;
}

/** The instance's policy: loopback in development and test only; private networks when configured. */
export function urlPolicyFor(config: Pick<Config, 'NODE_ENV' | 'WEBHOOK_ALLOW_PRIVATE_NETWORKS'>): UrlPolicy {
  return {
    allowLoopback: config.NODE_ENV === 'test' || config.NODE_ENV === 'development',
    allowPrivateNetworks: config.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
  };
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

// Addresses that are not the public internet (IANA special-purpose registries). IPv4-mapped IPv6
// addresses (::ffff:10.0.0.1) match their IPv4 subnet: BlockList handles the mapping.
const nonPublic = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  nonPublic.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 32],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  nonPublic.addSubnet(net, prefix, 'ipv6');
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

/** URL hostnames keep IPv6 literals in brackets. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** Whether a delivery may connect to `address` (an IP) under `policy`. */
export function addressAllowed(address: string, policy: UrlPolicy): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (policy.allowLoopback && loopback.check(address, type)) return true;
  if (policy.allowPrivateNetworks) return true;
  return !nonPublic.check(address, type);
}

/**
 * Validates a webhook URL for saving; returns it normalised. HTTPS only, except http:// to
 * 127.0.0.1 / localhost when `policy.allowLoopback` (development and tests). No credentials, no
 * fragment, and no literal address outside the policy.
 */
export function checkWebhookUrl(input: string, policy: UrlPolicy): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw unprocessable('invalid_webhook_url', 'The webhook URL is not a valid absolute URL');
  }
  const host = bareHost(url.hostname).toLowerCase();
  const isLoopbackName = LOOPBACK_NAMES.has(host) || host.endsWith('.localhost');
  if (url.protocol === 'http:') {
    if (!(policy.allowLoopback && isLoopbackName)) {
      throw unprocessable(
        'invalid_webhook_url',
        'Webhook URLs must be https:// (http:// is accepted only for 127.0.0.1 or localhost in development and test)',
      );
    }
  } else if (url.protocol !== 'https:') {
    throw unprocessable('invalid_webhook_url', 'Webhook URLs must be https://');
  }
  if (url.username || url.password) {
    throw unprocessable('invalid_webhook_url', 'Webhook URLs must not contain credentials; verify the signature instead');
  }
  if (url.hash) throw unprocessable('invalid_webhook_url', 'Webhook URLs must not contain a #fragment');
  if (isLoopbackName && !isIP(host) && !policy.allowLoopback) {
    throw unprocessable('invalid_webhook_url', 'Webhook URLs must not point to localhost');
  }
  if (isIP(host) && !addressAllowed(host, policy)) {
    throw unprocessable('invalid_webhook_url', `Webhook URLs must not point to a private, loopback or reserved address (${host})`);
  }
  return url.toString();
}

export class RefusedAddressError extends Error {
  readonly code = 'EWEBHOOKADDRESS';
  constructor(host: string, address: string) {
    super(`${host} resolves to ${address}, which is not a public address; webhooks are not sent there`);
  }
}

/**
 * A `lookup` for http(s).request that refuses hosts resolving to any address outside the policy.
 * (Literal IP hosts skip lookup; the sender checks those itself.)
 */
export function guardedLookup(policy: UrlPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const refused = addresses.find((a) => !addressAllowed(a.address, policy));
      if (refused) return callback(new RefusedAddressError(hostname, refused.address), '', 0);
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
      return callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
