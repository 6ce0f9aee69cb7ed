import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures (documented in README → Webhooks):
 *
 *   Webhook-Timestamp: <unix seconds>
 *   Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *
 * The key is the secret string exactly as shown at creation (its UTF-8 bytes, `whsec_` prefix
 * included). The versioned prefix leaves room for another scheme later without breaking receivers.
 */

export const SIGNATURE_VERSION = 'v1';

/** A new signing secret: 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export function computeSignature(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The headers of one delivery attempt. */
export function signatureHeaders(secret: string, eventId: string, body: string, now: Date = new Date()): Record<string, string> {
  const timestamp = Math.floor(now.getTime() / 1000);
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `${SIGNATURE_VERSION}=${computeSignature(secret, timestamp, body)}`,
  };
}

/**
 * What a receiver does (and what the README's snippet shows): recompute the HMAC over the raw
 * body, compare in constant time, and refuse stale timestamps (replays).
 */
export function verifySignature(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  options: { toleranceSeconds?: number; now?: Date } = {},
): boolean {
  const timestamp = Number(headers.timestamp);
  if (!headers.timestamp || !/^\d+$/.test(headers.timestamp) || !Number.isSafeInteger(timestamp)) return false;
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(computeSignature(secret, timestamp, body), 'hex');
  // The header may carry several space-separated signatures (e.g. during a future key rotation).
  for (const part of (headers.signature ?? '').split(' ')) {
    const [version, value] = part.split('=', 2);
    if (version !== SIGNATURE_VERSION || !value || !/^[0-9a-f]{64}$/.test(value)) continue;
    if (timingSafeEqual(Buffer.from(value, 'hex'), expected)) return true;
  }
  return false;
}
