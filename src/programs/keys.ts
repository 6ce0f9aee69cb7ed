import type { Executor } from '../db/database.js';
import { forgetApiKey, hashApiKey, newApiKey, type ProgramRole } from '../http/auth.js';
import { notFound } from '../http/errors.js';

/** A new program key: the key itself is returned once and stored only as its hash. */
export async function createProgramKey(executor: Executor, programId: string, input: { role: ProgramRole; name: string }) {
  const key = newApiKey(input.role);
  const row = await executor
    .insertInto('api_key')
    .values({ program_id: programId, role: input.role, name: input.name, key_hash: hashApiKey(key) })
    .returning(['id', 'role', 'name'])
    .executeTakeFirstOrThrow();
  return { ...row, key };
}

export function listProgramKeys(executor: Executor, programId: string) {
  return executor
    .selectFrom('api_key')
    .select(['id', 'role', 'name', 'created_at', 'last_used_at', 'revoked_at'])
    .where('program_id', '=', programId)
    .orderBy('created_at')
    .execute();
}

/** Revokes a key of the program (revoking a revoked key is no error); 404 for another program's key. */
export async function revokeProgramKey(executor: Executor, programId: string, keyId: string, now = new Date()) {
  const result = await executor
    .updateTable('api_key')
    .set({ revoked_at: now })
    .where('id', '=', keyId)
    .where('program_id', '=', programId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  // This process stops accepting it now; the others on the api_key_changed notification.
  forgetApiKey(keyId);
  if (result.numUpdatedRows === 0n) {
    const exists = await executor.selectFrom('api_key').select('id').where('id', '=', keyId).where('program_id', '=', programId).executeTakeFirst();
    if (!exists) throw notFound('key');
  }
}
