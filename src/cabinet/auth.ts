import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { sql } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { ProgramRole } from '../http/auth.js';

/**
 * Who may sign in to the cabinet and how: staff members (`staff_member`) with an email and an
 * argon2id password, or with a one-time sign-in link an owner (or the instance admin) created.
 * Sessions and links are random 256-bit tokens; the database keeps only their SHA-256.
 */

export type StaffRole = 'owner' | 'marketer' | 'cashier';
export const STAFF_ROLES: readonly StaffRole[] = ['owner', 'marketer', 'cashier'];

/** The cabinet's roles are the API's roles: what a staff member may do matches the program key of that role. */
export const API_ROLE_OF: Record<StaffRole, ProgramRole> = { owner: 'admin', marketer: 'marketer', cashier: 'pos' };

export interface AuthSettings {
  /** A session ends after this long without a request (sliding). */
  sessionIdleMs: number;
  /** …and at the latest this long after sign-in. */
  sessionMaxMs: number;
  /** Default lifetime of a one-time sign-in link. */
  linkTtlMs: number;
  /** Password reset requests are counted over this window (and it is the reset limits' Retry-After). */
  failureWindowMs: number;
  /** Failed sign-ins are counted over this window (a success clears its address's own). */
  signInFailureWindowMs: number;
  /** The longest a sign-in backoff makes anyone wait. */
  maxBackoffMs: number;
  /**
   * Failed passwords from one address for one account before its backoff starts (then 1, 2, 4… ×
   * `backoffBaseMs`). This is all a staff member meets at an address they signed in from before.
   */
  freeFailuresPerAddress: number;
  /** Failed passwords on one account from all addresses before addresses it never signed in from are slowed down too. */
  maxFailuresPerAccount: number;
  /** …and failures from one address over all accounts before that address is slowed down (password spraying). */
  maxFailuresPerIp: number;
  /** The first backoff step. */
  backoffBaseMs: number;
  /** An address counts as the account's own for this long after a successful sign-in from it. */
  knownAddressMs: number;
  /** Sign-in POSTs per IP per minute (all of them, before any password is checked). */
  postsPerMinute: number;
  /** Lifetime of a password reset link (sent by email). */
  resetTtlMs: number;
  /** Password reset requests (every one, known email or not) over `failureWindowMs`: at most this many per email… */
  maxResetsPerAccount: number;
  /** …and this many per client IP. */
  maxResetsPerIp: number;
}

export const DEFAULT_AUTH_SETTINGS: AuthSettings = {
  sessionIdleMs: 12 * 60 * 60 * 1000,
  sessionMaxMs: 7 * 24 * 60 * 60 * 1000,
  linkTtlMs: 24 * 60 * 60 * 1000,
  failureWindowMs: 15 * 60 * 1000,
  signInFailureWindowMs: 24 * 60 * 60 * 1000,
  maxBackoffMs: 15 * 60 * 1000,
  freeFailuresPerAddress: 3,
  maxFailuresPerAccount: 5,
  maxFailuresPerIp: 20,
  backoffBaseMs: 5_000,
  knownAddressMs: 90 * 24 * 60 * 60 * 1000,
  postsPerMinute: 30,
  resetTtlMs: 30 * 60 * 1000,
  maxResetsPerAccount: 3,
  maxResetsPerIp: 10,
};

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
export const newToken = () => randomBytes(32).toString('base64url');
export const hashToken = sha256;
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
export const isToken = (value: unknown): value is string => typeof value === 'string' && TOKEN_RE.test(value);

export function normalizeEmail(value: string): string {
  return value.trim().toLowerCase();
}

export function isEmail(value: string): boolean {
  return value.length <= 254 && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value);
}

// ---------------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------------

// argon2id with the library defaults (m = 19 MiB, t = 2, p = 1): OWASP's minimum recommendation.
const ARGON2ID = 2 as Algorithm;

export function passwordProblem(password: string, email?: string | null): 'too_short' | 'too_long' | 'same_as_email' | null {
  if ([...password].length < PASSWORD_MIN_LENGTH) return 'too_short';
  if (password.length > PASSWORD_MAX_LENGTH) return 'too_long';
  if (email && password.trim().toLowerCase() === email) return 'same_as_email';
  return null;
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, { algorithm: ARGON2ID });
}

let dummyHash: Promise<string> | undefined;

/**
 * Checks a password against a stored hash. Without a hash (unknown email, or a staff member who
 * has none) a dummy hash is verified instead, so the answer takes as long either way.
 */
export async function checkPassword(stored: string | null | undefined, password: string): Promise<boolean> {
  if (!stored) {
    dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  return verify(stored, password).catch(() => false);
}

export async function setPassword(db: Executor, staffId: string, password: string, now: Date) {
  await db
    .updateTable('staff_member')
    .set({ password_hash: await hashPassword(password), password_changed_at: now })
    .where('id', '=', staffId)
    .execute();
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

export interface CabinetSession {
  tokenHash: string;
  csrf: string;
  staffId: string;
  staffName: string;
  email: string | null;
  hasPassword: boolean;
  role: StaffRole;
  programId: string;
  programName: string;
  programSlug: string;
  programLanguage: 'ru' | 'en';
  currency: string;
  timeZone: string;
  method: 'password' | 'link';
}

export async function createSession(
  db: Db,
  input: { staffId: string; programId: string; method: 'password' | 'link'; userAgent?: string; now: Date; settings: AuthSettings },
): Promise<{ token: string }> {
  const token = newToken();
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('staff_session')
      .values({
        token_hash: hashToken(token),
        staff_id: input.staffId,
        program_id: input.programId,
        csrf_token: randomBytes(32).toString('base64url'),
        created_at: input.now,
        last_seen_at: input.now,
        expires_at: new Date(input.now.getTime() + input.settings.sessionIdleMs),
        method: input.method,
        user_agent: input.userAgent?.slice(0, 300) ?? null,
      })
      .execute();
    await trx.updateTable('staff_member').set({ last_sign_in_at: input.now }).where('id', '=', input.staffId).execute();
    // Housekeeping: expired sessions of anyone go as new ones arrive.
    await trx.deleteFrom('staff_session').where('expires_at', '<', input.now).execute();
  });
  return { token };
}

// Extending the idle expiry on every request would write on every page view; a minute is enough.
const TOUCH_PRECISION_MS = 60_000;

/** The session of a cookie value, if it is valid now; slides its idle expiry. */
export async function loadSession(db: Db, token: string, now: Date, settings: AuthSettings): Promise<CabinetSession | undefined> {
  if (!isToken(token)) return undefined;
  const tokenHash = hashToken(token);
  const row = await db
    .selectFrom('staff_session as s')
    .innerJoin('staff_member as m', 'm.id', 's.staff_id')
    .innerJoin('program as p', 'p.id', 's.program_id')
    .select([
      's.token_hash',
      's.csrf_token',
      's.created_at',
      's.last_seen_at',
      's.expires_at',
      's.method',
      'm.id as staff_id',
      'm.name as staff_name',
      'm.email',
      'm.password_hash',
      'm.role',
      'm.deleted_at',
      'm.program_id as staff_program_id',
      'p.id as program_id',
      'p.name as program_name',
      'p.slug',
      'p.default_language',
      'p.currency',
      'p.time_zone',
    ])
    .where('s.token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (!row) return undefined;
  const maxEnd = row.created_at.getTime() + settings.sessionMaxMs;
  if (row.deleted_at || row.staff_program_id !== row.program_id || row.expires_at.getTime() <= now.getTime() || maxEnd <= now.getTime()) {
    await db.deleteFrom('staff_session').where('token_hash', '=', tokenHash).execute();
    return undefined;
  }
  if (now.getTime() - row.last_seen_at.getTime() > TOUCH_PRECISION_MS) {
    await db
      .updateTable('staff_session')
      .set({ last_seen_at: now, expires_at: new Date(Math.min(now.getTime() + settings.sessionIdleMs, maxEnd)) })
      .where('token_hash', '=', tokenHash)
      .execute();
  }
  return {
    tokenHash,
    csrf: row.csrf_token,
    staffId: row.staff_id,
    staffName: row.staff_name,
    email: row.email,
    hasPassword: Boolean(row.password_hash),
    role: row.role,
    programId: row.program_id,
    programName: row.program_name,
    programSlug: row.slug,
    programLanguage: row.default_language,
    currency: row.currency,
    timeZone: row.time_zone,
    method: row.method,
  };
}

export async function endSession(db: Executor, tokenHash: string) {
  await db.deleteFrom('staff_session').where('token_hash', '=', tokenHash).execute();
}

/** Signs a staff member out everywhere (role or password changed, removed), except `keep`. */
export async function endStaffSessions(db: Executor, staffId: string, keep?: string) {
  let query = db.deleteFrom('staff_session').where('staff_id', '=', staffId);
  if (keep) query = query.where('token_hash', '<>', keep);
  await query.execute();
}

// ---------------------------------------------------------------------------------------------
// One-time sign-in links
// ---------------------------------------------------------------------------------------------

export function signInLinkUrl(publicUrl: string, token: string): string {
  return `${publicUrl}/app/sign-in/link/${token}`;
}

export async function createSignInLink(
  db: Executor,
  input: { staffId: string; programId: string; createdBy: string; ttlMs: number; now: Date; publicUrl: string },
) {
  const token = newToken();
  const expiresAt = new Date(input.now.getTime() + input.ttlMs);
  await db
    .insertInto('staff_sign_in_link')
    .values({ token_hash: hashToken(token), staff_id: input.staffId, program_id: input.programId, created_by: input.createdBy, created_at: input.now, expires_at: expiresAt })
    .execute();
  return { token, url: signInLinkUrl(input.publicUrl, token), expiresAt };
}

/** The staff member a link would sign in, without using it (the confirmation page). */
export async function peekSignInLink(db: Executor, token: string, now: Date) {
  if (!isToken(token)) return undefined;
  return db
    .selectFrom('staff_sign_in_link as l')
    .innerJoin('staff_member as m', 'm.id', 'l.staff_id')
    .innerJoin('program as p', 'p.id', 'l.program_id')
    .select(['m.id as staff_id', 'm.name as staff_name', 'm.role', 'p.id as program_id', 'p.name as program_name'])
    .where('l.token_hash', '=', hashToken(token))
    .where('l.used_at', 'is', null)
    .where('l.expires_at', '>', now)
    .where('m.deleted_at', 'is', null)
    .executeTakeFirst();
}

/** Uses a link: at most once (the update is the lock), only before it expires, only for an active staff member. */
export async function consumeSignInLink(db: Executor, token: string, now: Date) {
  if (!isToken(token)) return undefined;
  const used = await db
    .updateTable('staff_sign_in_link')
    .set({ used_at: now })
    .where('token_hash', '=', hashToken(token))
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .returning(['staff_id', 'program_id'])
    .executeTakeFirst();
  if (!used) return undefined;
  const staff = await db
    .selectFrom('staff_member')
    .select(['id', 'program_id'])
    .where('id', '=', used.staff_id)
    .where('program_id', '=', used.program_id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return staff ? { staffId: staff.id, programId: staff.program_id } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Failed attempts (per IP and per account)
// ---------------------------------------------------------------------------------------------

export const ipSubject = (ip: string) => `ip:${ip}`;
export const accountSubject = (email: string) => `account:${normalizeEmail(email).slice(0, 254)}`;
/** Wrong sign-in link tokens from one address (counted apart from passwords). */
export const linkIpSubject = (ip: string) => `link-ip:${ip}`;
/** One address trying one account: the subject whose backoff a real staff member meets. */
export const addressAccountSubject = (ip: string, email: string) => `ip-account:${normalizeEmail(email).slice(0, 254)}|${ip}`;
/** Password reset requests are counted in the same table under their own subjects (they never lock sign-in). */
export const resetIpSubject = (ip: string) => `reset-ip:${ip}`;
export const resetAccountSubject = (email: string) => `reset-account:${normalizeEmail(email).slice(0, 254)}`;

/** Which of the subjects is over its limit in the window, if any. */
export async function failureLimitReached(db: Executor, subjects: { subject: string; max: number }[], now: Date, settings: AuthSettings): Promise<boolean> {
  const since = new Date(now.getTime() - settings.failureWindowMs);
  const rows = await db
    .selectFrom('sign_in_failure')
    .select(['subject', sql<number>`count(*)::int`.as('n')])
    .where(
      'subject',
      'in',
      subjects.map((s) => s.subject),
    )
    .where('at', '>', since)
    .groupBy('subject')
    .execute();
  const counts = new Map(rows.map((r) => [r.subject, Number(r.n)]));
  return subjects.some((s) => (counts.get(s.subject) ?? 0) >= s.max);
}

/** How long the next attempt waits after `failures`: nothing for the first `free`, then base × 1, 2, 4… up to maxBackoffMs. */
export function backoffMs(failures: number, free: number, settings: Pick<AuthSettings, 'backoffBaseMs' | 'maxBackoffMs'>): number {
  if (failures <= free) return 0;
  return Math.min(settings.maxBackoffMs, settings.backoffBaseMs * 2 ** Math.min(failures - free - 1, 30));
}

/**
 * Sign-in throttling that slows an attacker without locking the real person out (issue #11: five
 * wrong passwords locked a staff member out for 15 minutes, from everywhere):
 *
 * - per address and account: after `freeFailuresPerAddress` failures, each next attempt waits 1, 2,
 *   4… × `backoffBaseMs` after the last failure (at most maxBackoffMs; failures are counted over
 *   signInFailureWindowMs, so waiting does not reset the count). A staff member who mistyped
 *   five times waits a few seconds, then their right password works;
 * - per account, from addresses it never signed in from: after `maxFailuresPerAccount` failures
 *   over all addresses, the same backoff — a guesser spread over many addresses is slowed down, and
 *   the staff member at their usual address is not;
 * - per address, over all accounts (password spraying): after `maxFailuresPerIp`, the same, except
 *   for accounts that signed in from that address before.
 *
 * One-time sign-in links are not throttled by any of this. Returns the milliseconds to wait (0: go).
 */
export async function signInWait(db: Executor, who: { ip: string; email: string }, now: Date, settings: AuthSettings): Promise<number> {
  const since = new Date(now.getTime() - settings.signInFailureWindowMs);
  const subjects = [ipSubject(who.ip), ...(who.email ? [accountSubject(who.email), addressAccountSubject(who.ip, who.email)] : [])];
  const rows = await db
    .selectFrom('sign_in_failure')
    .select(['subject', sql<number>`count(*)::int`.as('n'), sql<Date>`max(at)`.as('last')])
    .where('subject', 'in', subjects)
    .where('at', '>', since)
    .groupBy('subject')
    .execute();
  if (rows.length === 0) return 0;
  const known = who.email
    ? await db
        .selectFrom('sign_in_known_address')
        .select('ip')
        .where('email', '=', normalizeEmail(who.email))
        .where('ip', '=', who.ip)
        .where('last_success_at', '>', new Date(now.getTime() - settings.knownAddressMs))
        .executeTakeFirst()
    : undefined;
  let wait = 0;
  for (const row of rows) {
    const free =
      row.subject === ipSubject(who.ip)
        ? known ? Infinity : settings.maxFailuresPerIp
        : row.subject.startsWith('account:')
          ? known ? Infinity : settings.maxFailuresPerAccount
          : settings.freeFailuresPerAddress;
    const until = new Date(row.last).getTime() + backoffMs(Number(row.n), free, settings);
    wait = Math.max(wait, until - now.getTime());
  }
  return wait;
}

/** A failed password: counted for the address, the account and the two together. */
export async function recordSignInFailure(db: Executor, who: { ip: string; email: string }, now: Date, settings: AuthSettings) {
  const subjects = [ipSubject(who.ip), ...(who.email ? [accountSubject(who.email), addressAccountSubject(who.ip, who.email)] : [])];
  await recordFailure(db, subjects, now, settings);
}

/** A successful sign-in: the address becomes the account's own, and its own earlier failures are forgotten. */
export async function recordSignInSuccess(db: Executor, who: { ip: string; email: string | null }, now: Date, settings: AuthSettings) {
  if (!who.email) return;
  const email = normalizeEmail(who.email);
  await db.deleteFrom('sign_in_failure').where('subject', '=', addressAccountSubject(who.ip, email)).execute();
  await db
    .insertInto('sign_in_known_address')
    .values({ email, ip: who.ip, last_success_at: now })
    .onConflict((oc) => oc.columns(['email', 'ip']).doUpdateSet({ last_success_at: now }))
    .execute();
  await db.deleteFrom('sign_in_known_address').where('last_success_at', '<', new Date(now.getTime() - settings.knownAddressMs)).execute();
}

/** Forgets every failure counted against an account (its password was just reset by whoever reads its mailbox). */
export async function clearAccountFailures(db: Executor, email: string) {
  const normal = normalizeEmail(email).slice(0, 254);
  const escaped = normal.replace(/[\\%_]/g, (c) => `\\${c}`);
  await db
    .deleteFrom('sign_in_failure')
    .where((eb) => eb.or([eb('subject', '=', accountSubject(normal)), eb('subject', 'like', `ip-account:${escaped}|%`)]))
    .execute();
}

/**
 * The active staff members a sign-in e-mail may name: an e-mail is unique within a program, not
 * across the instance (so that setting one tells an owner nothing about other programs). Most
 * recently signed-in first; at most 10.
 */
export function signInCandidates(db: Executor, email: string) {
  return db
    .selectFrom('staff_member')
    .select(['id', 'program_id', 'password_hash', 'email'])
    .where('email', '=', normalizeEmail(email))
    .where('deleted_at', 'is', null)
    .orderBy(sql`last_sign_in_at DESC NULLS LAST`)
    .orderBy('id')
    .limit(10)
    .execute();
}

export async function recordFailure(db: Executor, subjects: string[], now: Date, settings: AuthSettings) {
  await db.insertInto('sign_in_failure').values(subjects.map((subject) => ({ subject, at: now }))).execute();
  const keep = Math.max(settings.failureWindowMs, settings.signInFailureWindowMs);
  await db.deleteFrom('sign_in_failure').where('at', '<', new Date(now.getTime() - keep)).execute();
}

// ---------------------------------------------------------------------------------------------
// CSRF
// ---------------------------------------------------------------------------------------------

export function tokensEqual(a: string | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The token of the forms shown before sign-in (sign-in, sign-in link): bound to a random
 * pre-session cookie by an HMAC, so another site can neither read nor forge it (login CSRF).
 */
export function preSessionCsrf(key: Buffer, preSession: string): string {
  return createHmac('sha256', key).update(`cabinet-pre|${preSession}`).digest('base64url');
}
