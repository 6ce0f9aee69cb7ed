import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/database.js';
import type { Notifications } from '../db/notifications.js';
import { NotifiedCache } from '../db/notified-cache.js';
import { AppError, forbidden, unauthorized } from './errors.js';

export type ProgramRole = 'admin' | 'marketer' | 'pos';

export type Principal =
  | { kind: 'instance' }
  | { kind: 'program'; programId: string; role: ProgramRole; keyId: string };

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

export function hashApiKey(key: string): string {
  return sha256(key).toString('hex');
}

/** A new program key: shown once, stored only as its SHA-256 (a 256-bit random key needs no slow hash). */
export function newApiKey(role: ProgramRole): string {
  return `wc_${role}_${randomBytes(32).toString('base64url')}`;
}

// Recording every use would turn each POS read into a write; a minute's precision is enough to
// tell which keys are still in use.
const LAST_USED_PRECISION_MS = 60_000;

interface ApiKeyRow {
  id: string;
  program_id: string;
  role: ProgramRole;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

/**
 * API keys by hash (issue #14: every API request looked its key up). Revocation, role and program
 * changes notify `api_key_changed` with the key's id (migrations/20261205T155500_cache_invalidation.sql)
 * and every process forgets it; the revoking process forgets at once (`forgetApiKey`). Unknown keys
 * are never cached.
 */
const apiKeys = new NotifiedCache<string, ApiKeyRow | undefined>({ maxAgeMs: 5 * 60_000, maxEntries: 10_000 });

export function attachApiKeyCache(notifications: Notifications): () => void {
  return apiKeys.attach(notifications, 'api_key_changed', (keyId) => forgetApiKey(keyId));
}

export function forgetApiKey(keyId: string): void {
  apiKeys.forgetWhere((_, row) => row?.id === keyId);
}

export function createAuthenticator(db: Db, adminKey: string) {
  const adminDigest = sha256(adminKey);

  return async function authenticate(request: FastifyRequest): Promise<Principal> {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw unauthorized('Send the API key as "Authorization: Bearer <key>"');
    const token = match[1];
    if (timingSafeEqual(sha256(token), adminDigest)) return { kind: 'instance' };
    const keyHash = hashApiKey(token);
    const row = await apiKeys.get(keyHash, () =>
      db.selectFrom('api_key').select(['id', 'program_id', 'role', 'revoked_at', 'last_used_at']).where('key_hash', '=', keyHash).executeTakeFirst(),
    );
    if (!row || row.revoked_at) throw unauthorized('This API key is unknown or revoked');
    if (!row.last_used_at || Date.now() - row.last_used_at.getTime() > LAST_USED_PRECISION_MS) {
      const now = new Date();
      // The cached row remembers the write, so the next minute of requests does not repeat it.
      row.last_used_at = now;
      await db.updateTable('api_key').set({ last_used_at: now }).where('id', '=', row.id).execute();
    }
    return { kind: 'program', programId: row.program_id, role: row.role, keyId: row.id };
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;

/** The instance admin key, or a program key with one of the roles. */
export function requireInstance(request: FastifyRequest) {
  if (request.principal?.kind !== 'instance') throw forbidden('This needs the instance admin key');
}

/** A program key with one of `roles`; returns the program it is scoped to. */
export function requireProgramRole(request: FastifyRequest, roles: ProgramRole[]): { programId: string; role: ProgramRole; actor: string } {
  const principal = request.principal;
  if (principal?.kind !== 'program') {
    throw new AppError(403, 'program_key_required', 'This needs a program key (the instance key manages programs only)');
  }
  if (!roles.includes(principal.role)) throw forbidden(`This needs a program key with role ${roles.join(' or ')}`);
  return { programId: principal.programId, role: principal.role, actor: `key:${principal.keyId}` };
}

/** Instance key (any program) or a program admin key of this program. */
export function requireProgramAdmin(request: FastifyRequest, programId: string) {
  const principal = request.principal;
  if (principal?.kind === 'instance') return;
  if (principal?.kind === 'program' && principal.programId === programId) {
    if (principal.role === 'admin') return;
    throw forbidden('This needs a program admin key');
  }
  // Another program's key learns nothing about this program's existence.
  throw new AppError(404, 'program_not_found', 'Program not found');
}
