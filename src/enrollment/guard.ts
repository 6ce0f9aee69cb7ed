import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Bot protection for the public join form, without outside services:
 *
 * - a honeypot field (`website`): visually hidden, `tabindex=-1`, `autocomplete=off`, hidden from
 *   screen readers. People never fill it; form-filling bots do.
 * - a signed render time (`ts`): `<milliseconds>.<HMAC>` in a hidden field. A submission sooner
 *   than `minFillMs` after the form was rendered, older than `maxAgeMs`, or with a signature that
 *   does not verify is refused and the form is shown again (with a fresh token).
 *
 * The HMAC keys are derived from the instance admin key (no extra secret to configure, none with a
 * default): `HMAC-SHA256(adminKey, "walletcards:" + purpose)`.
 */

export interface JoinFormSettings {
  /** Submissions faster than this after the form was rendered are refused (default 2 s). */
  minFillMs: number;
  /** Forms older than this are refused (default one day). */
  maxAgeMs: number;
  /** POST /join requests per IP per minute (default 10). */
  postsPerMinute: number;
}

export const DEFAULT_JOIN_FORM_SETTINGS: JoinFormSettings = {
  minFillMs: 2_000,
  maxAgeMs: 24 * 60 * 60 * 1000,
  postsPerMinute: 10,
};

export const HONEYPOT_FIELD = 'website';
export const TIMING_FIELD = 'ts';

/** A purpose-bound key derived from the instance admin key. */
export function deriveKey(adminKey: string, purpose: string): Buffer {
  return createHmac('sha256', adminKey).update(`walletcards:${purpose}`).digest();
}

function sign(key: Buffer, programId: string, ms: number): string {
  return createHmac('sha256', key).update(`join-form|${programId}|${ms}`).digest('base64url');
}

export function issueFormToken(key: Buffer, programId: string, now: Date): string {
  const ms = now.getTime();
  return `${ms}.${sign(key, programId, ms)}`;
}

export type FormTokenCheck = { ok: true } | { ok: false; reason: 'missing' | 'tampered' | 'too_fast' | 'expired' };

export function checkFormToken(key: Buffer, programId: string, token: string | undefined, now: Date, settings: JoinFormSettings): FormTokenCheck {
  if (!token) return { ok: false, reason: 'missing' };
  const match = /^(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return { ok: false, reason: 'tampered' };
  const ms = Number(match[1]);
  const expected = Buffer.from(sign(key, programId, ms));
  const given = Buffer.from(match[2]);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'tampered' };
  const age = now.getTime() - ms;
  if (age < settings.minFillMs) return { ok: false, reason: 'too_fast' };
  if (age > settings.maxAgeMs) return { ok: false, reason: 'expired' };
  return { ok: true };
}
