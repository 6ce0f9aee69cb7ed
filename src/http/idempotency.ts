import { createHash } from 'node:crypto';
import type { Db, Executor } from '../db/database.js';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { AppError } from './errors.js';
import { CompiledStatement } from '../db/compiled-statement.js';

export interface StoredResponse<T = unknown> {
  status: number;
  body: T;
  replayed: boolean;
}

/** JSON with object keys sorted, so the same body in another key order hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function requestFingerprint(operation: string, body: unknown): string {
  return createHash('sha256').update(operation).update('\n').update(canonicalJson(body)).digest('hex');
}

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function parseIdempotencyKey(header: unknown): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(header)) {
    throw new AppError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1–255 visible ASCII characters');
  }
  return header;
}

/**
 * What `runIdempotent` hands a work that declares its writes (`declaresWrites: true`), so the
 * common path pays neither the savepoint nor a separate answer UPDATE (issue #14: one round trip
 * each per keyed request).
 */
export interface IdempotentWork {
  /**
   * Call before the first write that a refusal (4xx AppError) could still have to undo, and before
   * any statement that can fail with such a refusal (a unique or CHECK violation aborts the
   * transaction; only a savepoint lets the refusal be stored after it). Takes the savepoint once; a
   * no-op without a key. A refusal thrown before any write needs none: the claim is the only write
   * so far, and the refusal is stored with an UPDATE of it.
   */
  beforeRefusableWrites(): Promise<void>;
  /** The key's record, for a work that writes its answer in its own last statement (null: no key). */
  readonly record: { scope: string; key: string } | null;
  /**
   * The work wrote `status` and `JSON.stringify(body)` into `record` itself. `runIdempotent` then
   * sends no UPDATE of its own when the work returns exactly this status and this body object.
   */
  answered(status: number, body: unknown): void;
}

const NO_KEY: IdempotentWork = { beforeRefusableWrites: async () => {}, record: null, answered: () => {} };

/**
 * Runs `work` in one transaction together with the Idempotency-Key record, so the change, the jobs
 * it enqueues and the stored response commit or roll back together.
 *
 * The record is inserted first: a concurrent retry with the same key blocks on the unique key
 * until this transaction ends, then replays the committed response. The work runs inside a
 * savepoint: a refusal (a 4xx AppError: insufficient points, duplicate receipt, 404 …) rolls back
 * to it — undoing the work's writes, keeping the claim — and the refusal is stored in the SAME
 * transaction that claimed the key. A retry can therefore never find the key free and run the work
 * itself (before, the refusal was written after the rollback, and a concurrent retry that had been
 * waiting on the key could succeed in between: 422 then 201). A server error (5xx, a lost
 * connection) stores nothing: the whole transaction rolls back and the request can be retried.
 *
 * With `declaresWrites`, the savepoint is taken only when the work asks for it
 * (`IdempotentWork.beforeRefusableWrites`, before writes a refusal could have to undo); a refusal
 * with no savepoint taken has nothing of the work to undo, so the same UPDATE stores it. The work may
 * also write its answer itself (`IdempotentWork.answered`). Either way the stored outcome is the
 * same as with the savepoint.
 */
export async function runIdempotent<T>(
  db: Db,
  options: { scope: string; key: string | undefined; operation: string; body: unknown; declaresWrites?: boolean },
  work: (trx: Transaction<Database>, idempotent: IdempotentWork) => Promise<{ status: number; body: T }>,
): Promise<StoredResponse<T>> {
  const { scope, key } = options;
  if (key === undefined) return db.transaction().execute(async (trx) => ({ ...(await work(trx, NO_KEY)), replayed: false }));
  const fingerprint = requestFingerprint(options.operation, options.body);
  const outcome = await db.transaction().execute(async (trx): Promise<StoredResponse<T> | { refused: AppError }> => {
    const { rows: claimed } = await claimStatement.execute(trx, { scope, key, fingerprint });
    if (claimed.length === 0) return replay<T>(trx, scope, key, fingerprint);
    let savepoint = false;
    let answer: { status: number; body: unknown } | undefined;
    const idempotent: IdempotentWork = {
      async beforeRefusableWrites() {
        if (savepoint) return;
        savepoint = true;
        await sql`SAVEPOINT idempotent_work`.execute(trx);
      },
      record: { scope, key },
      answered(status, body) {
        answer = { status, body };
      },
    };
    if (!options.declaresWrites) await idempotent.beforeRefusableWrites();
    let result: { status: number; body: T };
    try {
      result = await work(trx, idempotent);
    } catch (error) {
      if (!isStorableRefusal(error)) throw error;
      // The refusal is the request's answer: nothing of the work stays, the claim and the refusal
      // commit together. Without a savepoint the work had written nothing yet.
      if (savepoint) await sql`ROLLBACK TO SAVEPOINT idempotent_work`.execute(trx);
      await trx
        .updateTable('idempotency_record')
        .set({
          status_code: error.status,
          response: JSON.stringify({ [STORED_ERROR]: { code: error.code, message: error.message, details: error.details ?? null } }),
        })
        .where('scope', '=', scope)
        .where('key', '=', key)
        .execute();
      return { refused: error };
    }
    // No RELEASE SAVEPOINT: COMMIT ends the savepoint with the transaction, one round trip less.
    if (!answer || answer.status !== result.status || answer.body !== result.body) {
      await trx
        .updateTable('idempotency_record')
        .set({ status_code: result.status, response: JSON.stringify(result.body) })
        .where('scope', '=', scope)
        .where('key', '=', key)
        .execute();
    }
    return { ...result, replayed: false };
  });
  if ('refused' in outcome) throw outcome.refused;
  return outcome;
}

// Every keyed request runs it: built once (src/db/compiled-statement.ts).
const claimStatement = new CompiledStatement((executor, slots: { scope: string; key: string; fingerprint: string }) =>
  executor
    .insertInto('idempotency_record')
    .values({ scope: slots.scope, key: slots.key, request_hash: slots.fingerprint, status_code: null, response: null })
    .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
    .returning('key'),
);

/** A refusal by the rules (4xx) is stored and replayed; a reused key's 422 is about the key itself, not stored. */
function isStorableRefusal(error: unknown): error is AppError {
  return error instanceof AppError && error.status >= 400 && error.status < 500 && error.code !== 'idempotency_key_reused';
}

/** Deletes records older than `olderThan`, at most `batch` rows per statement; returns how many went. */
export async function pruneIdempotencyRecords(db: Db, olderThan: Date, batch = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    // Small batches keep each statement's locks short on a big table (ctid: no key columns needed).
    const result = await sql`
      DELETE FROM idempotency_record WHERE ctid IN (
        SELECT ctid FROM idempotency_record WHERE created_at < ${olderThan.toISOString()}::timestamptz LIMIT ${batch}
      )
    `.execute(db);
    const removed = Number(result.numAffectedRows ?? 0);
    total += removed;
    if (removed < batch) return total;
  }
}

const STORED_ERROR = '__error';

async function replay<T>(executor: Executor, scope: string, key: string, fingerprint: string): Promise<StoredResponse<T>> {
  const previous = await executor
    .selectFrom('idempotency_record')
    .select(['request_hash', 'status_code', 'response'])
    .where('scope', '=', scope)
    .where('key', '=', key)
    .executeTakeFirstOrThrow();
  if (previous.request_hash !== fingerprint) {
    throw new AppError(422, 'idempotency_key_reused', 'This Idempotency-Key was already used with a different request');
  }
  const stored = previous.response as Record<string, any> | null;
  if (stored && typeof stored === 'object' && STORED_ERROR in stored) {
    const { code, message, details } = stored[STORED_ERROR];
    throw new AppError(previous.status_code ?? 422, code, message, { ...(details ?? {}), replayed: true });
  }
  return { status: previous.status_code ?? 200, body: previous.response as T, replayed: true };
}
