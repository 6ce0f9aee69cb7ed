import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Config } from '../config.js';
import { unprocessable } from '../http/errors.js';

/**
 * Where webhooks may be sent (SSRF care). Checked twice: when a URL is saved (a clear 422), and at
 * connect time on every address the host resolves to (so a DNS answer that changes later — DNS
 * rebinding — cannot point a delivery at the service's own network). Redirects are never followed.
 *
 * Addresses fall in three classes (`classifyAddress`):
 * - public: IPv4 unicast outside every special-purpose range, IPv6 global unicast (2000::/3) outside
 *   them — the only ones reached by default, in every environment;
 * - private: loopback, RFC 1918, carrier-grade NAT (100.64/10), IPv6 loopback and unique-local
 *   (fc00::/7) — reached only with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true (an instance whose receivers
 *   are on its own network; tests with a local receiver);
 * - never: unspecified, link-local (169.254.169.254 is the cloud metadata service), multicast,
 *   broadcast, documentation and other reserved ranges, and every IPv6 form that embeds or
 *   translates an IPv4 address — ::/96 (IPv4-compatible), ::ffff:0:0/96 (mapped), ::ffff:0:0:0/96
 *   (translated), 64:ff9b::/96 and 64:ff9b:1::/48 (NAT64), 2002::/16 (6to4), 2001::/32 (Teredo) —
 *   because the IPv4 address they lead to is not the one checked.
 *
 * The ranges come from ipaddr.js (IANA's special-purpose registries), not from a hand-kept list.
 */
export interface UrlPolicy {
  /** Loopback and private networks (WEBHOOK_ALLOW_PRIVATE_NETWORKS). */
  allowPrivateNetworks: boolean;
}

/** The instance's policy: the same in every environment; private networks only when configured. */
export function urlPolicyFor(config: Pick<Config, 'WEBHOOK_ALLOW_PRIVATE_NETWORKS'>): UrlPolicy {
  return { allowPrivateNetworks: config.WEBHOOK_ALLOW_PRIVATE_NETWORKS };
}

export type AddressClass = 'public' | 'private' | 'never';

const PRIVATE_IPV4 = new Set(['loopback', 'private', 'carrierGradeNat']);
const PRIVATE_IPV6 = new Set(['loopback', 'uniqueLocal']);
const GLOBAL_UNICAST_V6: [ipaddr.IPv6, number] = [ipaddr.IPv6.parse('2000::'), 3];

/** Which class an IP address (a literal, as DNS answers it) belongs to; anything unparsable is `never`. */
export function classifyAddress(address: string): AddressClass {
  if (isIP(address) === 0) return 'never';
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address);
  } catch {
    return 'never';
  }
  const range = parsed.range();
  if (parsed.kind() === 'ipv4') {
    if (PRIVATE_IPV4.has(range)) return 'private';
    return range === 'unicast' ? 'public' : 'never';
  }
  if (PRIVATE_IPV6.has(range)) return 'private';
  // ipaddr.js names the translation ranges (ipv4Mapped, rfc6145, rfc6052, 6to4, teredo) but not
  // ::/96; outside 2000::/3 nothing is public, which covers it and whatever IANA assigns later.
  return range === 'unicast' && (parsed as ipaddr.IPv6).match(GLOBAL_UNICAST_V6) ? 'public' : 'never';
}

const LOOPBACK_NAMES = new Set(['localhost']);

/** URL hostnames keep IPv6 literals in brackets. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** Whether a delivery may connect to `address` (an IP) under `policy`. */
export function addressAllowed(address: string, policy: UrlPolicy): boolean {
  const kind = classifyAddress(address);
  return kind === 'public' || (kind === 'private' && policy.allowPrivateNetworks);
}

/**
 * Validates a webhook URL for saving; returns it normalised. HTTPS only, except http:// to a
 * loopback or private address when private networks are allowed. No credentials, no fragment, and
 * no literal address outside the policy.
 */
export function checkWebhookUrl(input: string, policy: UrlPolicy): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw unprocessable('invalid_webhook_url', 'The webhook URL is not a valid absolute URL');
  }
  const host = bareHost(url.hostname).toLowerCase();
  const literal = isIP(host) !== 0;
  const isLoopbackName = LOOPBACK_NAMES.has(host) || host.endsWith('.localhost');
  const internal = isLoopbackName || (literal && classifyAddress(host) === 'private');
  if (url.protocol === 'http:') {
    if (!(policy.allowPrivateNetworks && internal)) {
      throw unprocessable(
        'invalid_webhook_url',
        'Webhook URLs must be https:// (http:// is accepted only for loopback and private addresses when WEBHOOK_ALLOW_PRIVATE_NETWORKS is on)',
      );
    }
  } else if (url.protocol !== 'https:') {
    throw unprocessable('invalid_webhook_url', 'Webhook URLs must be https://');
  }
  if (url.username || url.password) {
    throw unprocessable('invalid_webhook_url', 'Webhook URLs must not contain credentials; verify the signature instead');
  }
  if (url.hash) throw unprocessable('invalid_webhook_url', 'Webhook URLs must not contain a #fragment');
  if (isLoopbackName && !policy.allowPrivateNetworks) {
    throw unprocessable('invalid_webhook_url', 'Webhook URLs must not point to localhost');
  }
  // The literal the user typed may be repeated back; a resolved address never is (RefusedAddressError).
  if (literal && !addressAllowed(host, policy)) {
    throw unprocessable('invalid_webhook_url', `Webhook URLs must not point to a private, loopback or reserved address (${host})`);
  }
  return url.toString();
}

/**
 * A delivery refused at connect time. The message names the host as configured, never the address it
 * resolved to: the delivery log is read by marketers, and the resolved address of an internal name
 * is exactly what an attacker probing the network wants to learn (issue #11).
 */
export class RefusedAddressError extends Error {
  readonly code = 'EWEBHOOKADDRESS';
  constructor(host: string) {
    super(`${host} is not a public address (or resolves to one that is not); webhooks are not sent there`);
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
      if (addresses.some((a) => !addressAllowed(a.address, policy))) return callback(new RefusedAddressError(hostname), '', 0);
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
      return callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
