/**
 * Importing a card base (issue #12, docs/import.md). How an import travels:
 *
 *   upload ─▶ parse + validate every row (parse.ts), staged into card_import_row in ONE transaction
 *   with the card_import row and its first chunk job (a malformed file, a wrong encoding or a file
 *   over the limit writes nothing) ─▶ import-chunk jobs, one after another: each takes the next
 *   `chunkSize` row numbers (a fixed range: an index range scan), matches them to existing cards (plastic number,
 *   else phone), creates cards with their opening balance as an `import` ledger entry, or (update
 *   mode) moves balances by ledger deltas, marks the rows done, advances the checkpoint and sends the
 *   next chunk job, all in ONE transaction.
 *
 * Exactly once, whatever crashes: a chunk's cards, ledger entries, rows' status and the checkpoint
 * commit together; a chunk job only runs while `card_import.next_chunk` equals its number (a fence,
 * checked under the import row lock), so a retried, duplicated or stale job does nothing; a crash
 * before commit leaves everything as it was and the job (retried by pg-boss, or re-sent by the stall
 * watchdog) does the chunk again. Idempotent across imports too: rows are matched by plastic number,
 * else phone, so the same file again creates nothing.
 *
 * No storms: imported cards get no welcome bonus and no per-card webhook; one `import.finished` event
 * per import. Wallet updates are enqueued only for cards that already have a wallet (update mode).
 */
import { createHash } from 'node:crypto';
import { sql, type Selectable, type Transaction } from 'kysely';
import type { Db } from '../db/database.js';
import type { CardImportMode, CardImportRowStatus, CardImportTable, Database, ProgramRow } from '../db/schema.js';
import { AppError, notFound } from '../http/errors.js';
import { requestFingerprint } from '../http/idempotency.js';
import type { JobQueue } from '../jobs/queue.js';
import { generateCardNumber, generateReferralCode, generateToken } from '../loyalty/card-number.js';
import { tierFor, type LoyaltyRules } from '../loyalty/rules.js';
import { cardChangedColumns, type CardChangeRecorder } from '../updates/card-changes.js';
import { emitEvent } from '../webhooks/events.js';
import {
  IMPORT_REASONS,
  openImportFile,
  validateRow,
  type ImportEncoding,
  type ImportField,
  type ImportIssue,
  type ImportReason,
  type ImportRow,
  type RowContext,
} from './parse.js';

export type CardImportRow = Selectable<CardImportTable>;
type Trx = Transaction<Database>;

export const IMPORT_QUEUES = { chunk: 'import-chunk', tick: 'import-tick' } as const;

export interface ImportSettings {
  maxBytes: number;
  chunkSize: number;
  /** A running import that has not moved for this long is resumed (a worker died mid-chunk). */
  stallSeconds: number;
  /** Issues listed in a dry run's answer (the counts by reason cover all of them). */
  reportLimit: number;
  /** One chunk job runs the chunks after its own for this long before handing over to the queue. */
  runSeconds: number;
}

export const DEFAULT_IMPORT_SETTINGS: ImportSettings = { maxBytes: 50 * 1024 * 1024, chunkSize: 1000, stallSeconds: 60, reportLimit: 1000, runSeconds: 5 };

export interface ImportOptions {
  mode: CardImportMode;
  encoding?: ImportEncoding;
  delimiter?: ';' | ',' | '\t';
  mapping?: Partial<Record<ImportField, string>>;
  fileName?: string;
}

export interface ImportReport {
  encoding: ImportEncoding;
  delimiter: string;
  columns: { mapping: Record<string, string>; ignored: string[] };
  rowsRead: number;
  rowsValid: number;
  rowsFailed: number;
  byReason: Partial<Record<ImportReason, number>>;
  issues: ImportIssue[];
  /** True when more issues exist than `issues` lists. */
  truncated: boolean;
}

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const STAGE_BATCH = 1000;

/** A test hook: called inside a chunk's transaction after its writes, before commit (a crash there rolls the chunk back). */
export type ChunkFault = (importId: string, chunk: number) => void | Promise<void>;

export class ImportService {
  readonly settings: ImportSettings;
  #stopped = false;
  /** Set by tests to simulate a worker dying in the middle of a chunk. */
  fault: ChunkFault | undefined;

  constructor(
    private readonly deps: {
      db: Db;
      jobs: JobQueue;
      cardChanges: CardChangeRecorder;
      clock: () => Date;
      logger?: Logger;
      settings?: Partial<ImportSettings>;
    },
  ) {
    this.settings = { ...DEFAULT_IMPORT_SETTINGS, ...deps.settings };
  }

  private get db() {
    return this.deps.db;
  }

  /** Reads and validates the whole file; writes nothing. */
  async dryRun(program: ProgramRow, source: AsyncIterable<Buffer | string>, options: ImportOptions): Promise<ImportReport> {
    const report = await this.#scan(program, source, options, async () => undefined);
    return report.report;
  }

  /**
   * Reads and validates the file, stages its rows and queues the import, in one transaction.
   * Idempotency-Key: the same key with the same file and options answers the first import; with
   * another file, 422 `idempotency_key_reused`.
   */
  async create(
    program: ProgramRow,
    source: AsyncIterable<Buffer | string>,
    options: ImportOptions,
    actor: string,
    idempotencyKey?: string,
  ): Promise<{ row: CardImportRow; report: ImportReport; replayed: boolean }> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const imported = await trx
          .insertInto('card_import')
          .values({
            program_id: program.id,
            mode: options.mode,
            status: 'queued',
            file_name: options.fileName?.slice(0, 200) ?? null,
            encoding: options.encoding ?? 'utf-8',
            delimiter: options.delimiter ?? ';',
            columns: JSON.stringify({ mapping: {}, ignored: [] }),
            created_by: actor,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        let batch: Array<{ row_no: number; status: CardImportRowStatus; data: ImportRow | null; issues: Array<{ column: string; value: string; reason: string }> | null }> = [];
        const flush = async () => {
          if (batch.length === 0) return;
          // One JSON parameter per batch (cheaper to parse and plan than a 6,000-parameter VALUES list).
          await sql`
            INSERT INTO card_import_row (import_id, program_id, row_no, status, data, issues)
            SELECT ${imported.id}, ${program.id}, row_no, status, data, issues
            FROM jsonb_to_recordset(${JSON.stringify(batch)}::jsonb) AS x(row_no int, status text, data jsonb, issues jsonb)
          `.execute(trx);
          batch = [];
        };
        const { report, fileHash } = await this.#scan(program, source, options, async (row, data, issues) => {
          batch.push(
            data
              ? { row_no: row, status: 'pending', data, issues: null }
              : { row_no: row, status: 'failed', data: null, issues: issues.map(({ column, value, reason }) => ({ column, value, reason })) },
          );
          if (batch.length >= STAGE_BATCH) await flush();
        });
        await flush();
        if (idempotencyKey !== undefined) {
          const fingerprint = requestFingerprint('import', { ...options, fileName: undefined, file: fileHash });
          const claimed = await trx
            .insertInto('idempotency_record')
            .values({ scope: program.id, key: idempotencyKey, request_hash: fingerprint, status_code: 202, response: JSON.stringify({ importId: imported.id }) })
            .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
            .returning('key')
            .executeTakeFirst();
          if (!claimed) throw new KeyTaken(fingerprint);
        }
        const row = await trx
          .updateTable('card_import')
          .set({
            encoding: report.encoding,
            delimiter: report.delimiter,
            columns: JSON.stringify(report.columns),
            rows_read: report.rowsRead,
            rows_valid: report.rowsValid,
            failed: report.rowsFailed,
            // The checkpoint starts after the header (row 1).
            cursor_row: 1,
            progress_at: this.deps.clock(),
          })
          .where('id', '=', imported.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await this.deps.jobs.send(trx, IMPORT_QUEUES.chunk, { importId: row.id, chunk: 0 });
        return { row, report, replayed: false };
      });
    } catch (error) {
      if (!(error instanceof KeyTaken)) throw error;
      const previous = await this.db
        .selectFrom('idempotency_record')
        .select(['request_hash', 'response'])
        .where('scope', '=', program.id)
        .where('key', '=', idempotencyKey!)
        .executeTakeFirstOrThrow();
      const importId = (previous.response as { importId?: string } | null)?.importId;
      if (previous.request_hash !== error.fingerprint || !importId) {
        throw new AppError(422, 'idempotency_key_reused', 'This Idempotency-Key was already used with a different request');
      }
      const row = await this.find(program.id, importId);
      return { row, report: await this.report(row), replayed: true };
    }
  }

  async #scan(
    program: ProgramRow,
    source: AsyncIterable<Buffer | string>,
    options: ImportOptions,
    onRow: (row: number, data: ImportRow | undefined, issues: ImportIssue[]) => Promise<void>,
  ): Promise<{ report: ImportReport; fileHash: string }> {
    const hash = createHash('sha256');
    const hashed = (async function* () {
      for await (const chunk of source) {
        hash.update(chunk);
        yield chunk;
      }
    })();
    const file = await openImportFile(hashed, { maxBytes: this.settings.maxBytes, encoding: options.encoding, delimiter: options.delimiter, mapping: options.mapping });
    const ctx: RowContext = {
      mode: options.mode,
      currency: program.currency,
      rules: program.rules as LoyaltyRules,
      now: this.deps.clock(),
      columns: file.columns,
      headerLength: file.header.length,
      seenPhones: new Set(),
      seenNumbers: new Set(),
    };
    const report: ImportReport = {
      encoding: file.encoding,
      delimiter: file.delimiter,
      columns: { mapping: Object.fromEntries(Object.entries(file.columns.headers).map(([field, header]) => [header!, field])), ignored: file.columns.ignored },
      rowsRead: 0,
      rowsValid: 0,
      rowsFailed: 0,
      byReason: {},
      issues: [],
      truncated: false,
    };
    for await (const { row, values } of file.records) {
      report.rowsRead++;
      const { data, issues } = validateRow(row, values, ctx);
      if (data) report.rowsValid++;
      else {
        report.rowsFailed++;
        for (const issue of issues) {
          report.byReason[issue.reason] = (report.byReason[issue.reason] ?? 0) + 1;
          if (report.issues.length < this.settings.reportLimit) report.issues.push(issue);
          else report.truncated = true;
        }
      }
      await onRow(row, data, issues);
    }
    return { report, fileHash: hash.digest('hex') };
  }

  async find(programId: string, importId: string): Promise<CardImportRow> {
    const row = await this.db.selectFrom('card_import').selectAll().where('id', '=', importId).where('program_id', '=', programId).executeTakeFirst();
    if (!row) throw notFound('import');
    return row;
  }

  async list(programId: string, limit: number): Promise<CardImportRow[]> {
    return this.db.selectFrom('card_import').selectAll().where('program_id', '=', programId).orderBy('created_at', 'desc').limit(limit).execute();
  }

  /** The failed rows' issues (the first `reportLimit`) and the counts by reason. */
  async report(row: CardImportRow): Promise<ImportReport> {
    const counts = await sql<{ reason: ImportReason; n: number }>`
      SELECT issue->>'reason' AS reason, count(*)::int AS n
      FROM card_import_row r, jsonb_array_elements(r.issues) issue
      WHERE r.import_id = ${row.id} AND r.status = 'failed'
      GROUP BY 1
    `.execute(this.db);
    const issues: ImportIssue[] = [];
    for await (const issue of this.issues(row.id, this.settings.reportLimit + 1)) issues.push(issue);
    const truncated = issues.length > this.settings.reportLimit;
    return {
      encoding: row.encoding as ImportEncoding,
      delimiter: row.delimiter,
      columns: row.columns,
      rowsRead: row.rows_read,
      rowsValid: row.rows_valid,
      rowsFailed: row.failed,
      byReason: Object.fromEntries(counts.rows.map((r) => [r.reason, Number(r.n)])),
      issues: issues.slice(0, this.settings.reportLimit),
      truncated,
    };
  }

  /** Every issue of an import in row order, read in pages (the CSV report streams it). */
  async *issues(importId: string, limit = Number.MAX_SAFE_INTEGER): AsyncGenerator<ImportIssue> {
    let after = 0;
    let yielded = 0;
    for (;;) {
      const rows = await this.db
        .selectFrom('card_import_row')
        .select(['row_no', 'issues'])
        .where('import_id', '=', importId)
        .where('status', '=', 'failed')
        .where('row_no', '>', after)
        .orderBy('row_no')
        .limit(1000)
        .execute();
      for (const r of rows) {
        for (const issue of r.issues ?? []) {
          if (yielded++ >= limit) return;
          yield { row: r.row_no, column: issue.column, value: issue.value, reason: issue.reason as ImportReason };
        }
      }
      if (rows.length < 1000) return;
      after = rows[rows.length - 1]!.row_no;
    }
  }

  /** Cancels a queued or running import: the chunk under way finishes (the row lock waits for it), no further chunk runs. */
  async cancel(programId: string, importId: string): Promise<CardImportRow> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('card_import').selectAll().where('id', '=', importId).where('program_id', '=', programId).forUpdate().executeTakeFirst();
      if (!row) throw notFound('import');
      if (row.status !== 'queued' && row.status !== 'running') {
        throw new AppError(409, 'import_not_cancellable', `The import is ${row.status}; only a queued or running import can be cancelled`);
      }
      // The rows not done never will be: their personal data goes now.
      await trx.updateTable('card_import_row').set({ data: null }).where('import_id', '=', importId).where('status', '=', 'pending').execute();
      return trx
        .updateTable('card_import')
        .set({ status: 'cancelled', cancelled_at: this.deps.clock(), finished_at: this.deps.clock() })
        .where('id', '=', importId)
        .returningAll()
        .executeTakeFirstOrThrow();
    });
  }

  async ensureQueues() {
    await this.deps.jobs.ensureQueue(IMPORT_QUEUES.chunk, { retryLimit: 20, retryDelay: 2, retryBackoff: true, expireInSeconds: 300 });
    await this.deps.jobs.ensureQueue(IMPORT_QUEUES.tick, { retryLimit: 0, expireInSeconds: 120 });
  }

  async startWorkers() {
    const { jobs } = this.deps;
    await this.ensureQueues();
    await jobs.work<{ importId: string; chunk: number }>(IMPORT_QUEUES.chunk, { batchSize: 1 }, async ([job]) => this.runChunks(job!.data.importId, job!.data.chunk));
    await jobs.boss.schedule(IMPORT_QUEUES.tick, '* * * * *');
    await jobs.work(IMPORT_QUEUES.tick, { batchSize: 1 }, async () => {
      await this.resumeStalled();
    });
  }

  stopWorkers() {
    this.#stopped = true;
  }

  /** The watchdog: a running import whose checkpoint has not moved for `stallSeconds` gets its next chunk job again. */
  async resumeStalled(): Promise<string[]> {
    if (this.#stopped) return [];
    const rows = await this.db
      .updateTable('card_import')
      .set({ progress_at: sql<Date>`now()` })
      .where('status', 'in', ['queued', 'running'])
      .where('progress_at', '<', sql<Date>`now() - make_interval(secs => ${this.settings.stallSeconds})`)
      .returning(['id', 'next_chunk'])
      .execute();
    for (const row of rows) {
      await this.deps.jobs.send(this.db, IMPORT_QUEUES.chunk, { importId: row.id, chunk: row.next_chunk });
      this.deps.logger?.warn({ importId: row.id, chunk: row.next_chunk }, 'import stalled; resuming');
    }
    return rows.map((r) => r.id);
  }

  /**
   * Runs chunk `chunk` of an import (tests call it directly). `sendNext: false` commits the chunk
   * without queueing the job for the next one (runChunks runs it itself). Answers whether the chunk
   * ran and the import goes on.
   */
  async runChunk(importId: string, chunk: number, { sendNext = true } = {}): Promise<boolean> {
    return this.db.transaction().execute((trx) => this.#processChunk(trx, importId, chunk, sendNext));
  }

  /**
   * The job handler: chunk `first`, then the chunks after it, one transaction each, for up to
   * `runSeconds`, with no trip through the queue in between. Measured with bench:import: a job per
   * chunk waited for the worker's next poll (up to 0.5 s) after every 1,000 rows, so the import went
   * no faster than two chunks a second however fast PostgreSQL wrote them.
   *
   * Exactly once still rests on the fence (a chunk runs only while `next_chunk` is its number) and
   * on each chunk's own transaction. Only the run's last chunk queues the next job, in its
   * transaction. A chunk that fails mid-run gets its own job (retried with backoff); a process
   * that dies mid-run leaves no job behind, and the watchdog resumes the import after
   * `stallSeconds`, as it does for a worker that dies inside a chunk.
   */
  async runChunks(importId: string, first: number): Promise<void> {
    const deadline = Date.now() + this.settings.runSeconds * 1000;
    for (let chunk = first; ; chunk++) {
      const last = Date.now() >= deadline || this.#stopped;
      try {
        if (!(await this.runChunk(importId, chunk, { sendNext: last })) || last) return;
      } catch (error) {
        if (chunk === first) throw error;
        this.deps.logger?.warn({ importId, chunk, err: error }, 'import chunk failed; queued for retry');
        await this.deps.jobs.send(this.db, IMPORT_QUEUES.chunk, { importId, chunk });
        return;
      }
    }
  }

  /** Runs chunks until the import is done (the CLI without workers, tests). */
  async runToEnd(importId: string): Promise<CardImportRow> {
    for (;;) {
      const row = await this.db.selectFrom('card_import').selectAll().where('id', '=', importId).executeTakeFirstOrThrow();
      if (row.status !== 'queued' && row.status !== 'running') return row;
      await this.runChunk(importId, row.next_chunk);
    }
  }

  async #processChunk(trx: Trx, importId: string, chunk: number, sendNext: boolean): Promise<boolean> {
    const imp = await trx.selectFrom('card_import').selectAll().where('id', '=', importId).forUpdate().executeTakeFirst();
    // The fence: only the chunk the import expects runs; duplicates and stale retries do nothing.
    if (!imp || (imp.status !== 'queued' && imp.status !== 'running') || imp.next_chunk !== chunk) return false;
    const program = await trx.selectFrom('program').selectAll().where('id', '=', imp.program_id).executeTakeFirstOrThrow();
    const rules = program.rules as LoyaltyRules;
    const size = this.settings.chunkSize;
    // Rows are numbered 2 … rows_read + 1 without gaps (the header is row 1), so a chunk is a fixed
    // range of row numbers: an index range scan whatever the table's statistics say (right after
    // staging they say "empty", and a `row_no > cursor … LIMIT` query was planned as a scan of every
    // remaining row, per chunk). Failed rows in the range are skipped.
    const upTo = imp.cursor_row + size;
    const lastRow = imp.rows_read + 1;
    const rows = await trx
      .selectFrom('card_import_row')
      .select(['row_no', 'data'])
      .where('import_id', '=', importId)
      .where('row_no', '>', imp.cursor_row)
      .where('row_no', '<=', upTo)
      .where('status', '=', 'pending')
      .orderBy('row_no')
      .execute();
    const outcome = rows.length > 0 ? await this.#applyRows(trx, imp, program, rules, rows as unknown as Array<{ row_no: number; data: ImportRow }>) : EMPTY_OUTCOME;

    const done = upTo >= lastRow;
    const now = this.deps.clock();
    const updated = await trx
      .updateTable('card_import')
      .set({
        status: done ? 'finished' : 'running',
        created: sql<number>`created + ${outcome.created}`,
        updated: sql<number>`updated + ${outcome.updated}`,
        unchanged: sql<number>`unchanged + ${outcome.unchanged}`,
        failed: sql<number>`failed + ${outcome.failed}`,
        next_chunk: chunk + 1,
        cursor_row: upTo,
        progress_at: sql<Date>`now()`,
        ...(imp.started_at ? {} : { started_at: now }),
        ...(done ? { finished_at: now } : {}),
      })
      .where('id', '=', importId)
      .returningAll()
      .executeTakeFirstOrThrow();
    await this.fault?.(importId, chunk);
    if (!done) {
      if (sendNext) await this.deps.jobs.send(trx, IMPORT_QUEUES.chunk, { importId, chunk: chunk + 1 });
    } else {
      // One summary event per import instead of a card.issued / balance.changed per card.
      await emitEvent(trx, {
        programId: updated.program_id,
        type: 'import.finished',
        data: {
          importId: updated.id,
          mode: updated.mode,
          rowsRead: updated.rows_read,
          rowsValid: updated.rows_valid,
          created: updated.created,
          updated: updated.updated,
          unchanged: updated.unchanged,
          failed: updated.failed,
          finishedAt: now.toISOString(),
        },
      });
      this.deps.logger?.info({ importId, created: updated.created, updated: updated.updated, failed: updated.failed }, 'import finished');
    }
    return !done;
  }

  async #applyRows(trx: Trx, imp: CardImportRow, program: ProgramRow, rules: LoyaltyRules, rows: Array<{ row_no: number; data: ImportRow }>) {
    const numbers = [...new Set(rows.map((r) => r.data.cardNumber).filter((v): v is string => Boolean(v)))];
    const phones = [...new Set(rows.map((r) => r.data.phone).filter((v): v is string => Boolean(v)))];
    const existing = await this.#match(trx, program.id, numbers, phones);
    const actor = `import:${imp.id}`;
    const results = new Map<number, { status: CardImportRowStatus; cardId?: string; issues?: Array<{ column: string; value: string; reason: ImportReason }> }>();
    const toCreate: Array<{ row_no: number; data: ImportRow }> = [];
    const deltas: Array<{ cardId: string; points: number; row: number }> = [];
    const patches: Array<{ cardId: string; externalNumber?: string; tier?: string }> = [];
    const columns = imp.columns.mapping;
    const headerOf = (field: ImportField) => Object.entries(columns).find(([, f]) => f === field)?.[0] ?? field;

    for (const { row_no, data } of rows) {
      const byNumber = data.cardNumber ? existing.byNumber.get(data.cardNumber) : undefined;
      const byPhone = data.phone ? existing.byPhone.get(data.phone) : undefined;
      // A phone that already belongs to another card (another plastic number) cannot be moved by an import.
      if (byPhone && ((byNumber && byNumber.id !== byPhone.id) || (!byNumber && data.cardNumber && byPhone.external_number && byPhone.external_number !== data.cardNumber))) {
        results.set(row_no, { status: 'failed', issues: [{ column: headerOf('phone'), value: data.phone!, reason: 'phone_taken' }] });
        continue;
      }
      const card = byNumber ?? byPhone;
      if (!card) {
        if (!data.phone) {
          results.set(row_no, { status: 'failed', issues: [{ column: headerOf('phone'), value: '', reason: 'missing_phone' }] });
          continue;
        }
        toCreate.push({ row_no, data });
        continue;
      }
      const patch: { cardId: string; externalNumber?: string; tier?: string } = { cardId: card.id };
      if (data.cardNumber && !card.external_number) patch.externalNumber = data.cardNumber;
      if (imp.mode === 'update') {
        if (data.balance !== undefined && data.balance !== card.balance) deltas.push({ cardId: card.id, points: data.balance - card.balance, row: row_no });
        if (data.tier !== undefined && data.tier !== card.tier) patch.tier = data.tier;
      }
      const changed = patch.externalNumber !== undefined || patch.tier !== undefined || deltas.at(-1)?.cardId === card.id;
      if (patch.externalNumber !== undefined || patch.tier !== undefined) patches.push(patch);
      results.set(row_no, { status: changed ? 'updated' : 'unchanged', cardId: card.id });
    }

    if (toCreate.length > 0) {
      const created = await this.#createCards(trx, imp, program, rules, toCreate);
      for (const [row, outcome] of created) results.set(row, outcome);
    }

    // Existing cards: plastic number and tier, then balances by ledger deltas; one wallet update each.
    const changedCards = [...new Set([...patches.map((p) => p.cardId), ...deltas.map((d) => d.cardId)])];
    for (const patch of patches) {
      await trx
        .updateTable('card')
        .set({
          ...(patch.externalNumber !== undefined ? { external_number: patch.externalNumber } : {}),
          ...(patch.tier !== undefined ? { tier: patch.tier } : {}),
        })
        .where('id', '=', patch.cardId)
        .execute();
    }
    if (deltas.length > 0) {
      await trx
        .insertInto('ledger_entry')
        .values(deltas.map((d) => ({ program_id: program.id, card_id: d.cardId, kind: 'import' as const, points: d.points, actor, reason: `import row ${d.row}` })))
        .execute();
      await sql`
        UPDATE card SET balance = card.balance + d.points
        FROM (SELECT * FROM jsonb_to_recordset(${JSON.stringify(deltas.map((d) => ({ id: d.cardId, points: d.points })))}::jsonb) AS x(id uuid, points bigint)) d
        WHERE card.id = d.id
      `.execute(trx);
    }
    if (changedCards.length > 0) {
      await trx.updateTable('card').set(cardChangedColumns()).where('id', 'in', changedCards).execute();
      // Only cards with a wallet have anything to update; the others get their pass when installed.
      const withWallet = await sql<{ id: string }>`
        SELECT c.id FROM card c WHERE c.id = ANY(${changedCards}::uuid[])
          AND (EXISTS (SELECT 1 FROM apple_registration a WHERE a.serial_number = c.apple_serial)
            OR EXISTS (SELECT 1 FROM google_object g WHERE g.card_id = c.id))
      `.execute(trx);
      if (withWallet.rows.length > 0) await this.deps.cardChanges.enqueue(trx, withWallet.rows.map((r) => r.id));
    }

    // The rows' outcome; their personal data is no longer needed.
    await sql`
      UPDATE card_import_row r SET status = x.status, card_id = x.card_id, issues = x.issues, data = NULL
      FROM jsonb_to_recordset(${JSON.stringify(
        [...results].map(([row, result]) => ({ row_no: row, status: result.status, card_id: result.cardId ?? null, issues: result.issues ?? null })),
      )}::jsonb) AS x(row_no int, status text, card_id uuid, issues jsonb)
      WHERE r.import_id = ${imp.id} AND r.row_no = x.row_no
    `.execute(trx);
    const count = (status: CardImportRowStatus) => [...results.values()].filter((r) => r.status === status).length;
    return { created: count('created'), updated: count('updated'), unchanged: count('unchanged'), failed: count('failed') };
  }

  async #match(trx: Trx, programId: string, numbers: string[], phones: string[]) {
    const byNumber = new Map<string, MatchedCard>();
    const byPhone = new Map<string, MatchedCard>();
    if (numbers.length === 0 && phones.length === 0) return { byNumber, byPhone };
    // Locked: update mode reads the balance to compute the delta (the rule of postToLedger's callers).
    const { rows } = await sql<MatchedCard>`
      SELECT id, external_number, phone, balance, tier FROM card
      WHERE program_id = ${programId} AND (external_number = ANY(${numbers}::text[]) OR phone = ANY(${phones}::text[]))
      ORDER BY id
      FOR UPDATE
    `.execute(trx);
    for (const row of rows) {
      const card = { ...row, balance: Number(row.balance) };
      if (card.external_number && numbers.includes(card.external_number)) byNumber.set(card.external_number, card);
      byPhone.set(card.phone, card);
    }
    return { byNumber, byPhone };
  }

  /**
   * New cards with their opening balance: one multi-row INSERT (random numbers, codes and tokens; a
   * rare collision is retried with new ones), then one `import` ledger entry per card with points.
   */
  async #createCards(trx: Trx, imp: CardImportRow, program: ProgramRow, rules: LoyaltyRules, rows: Array<{ row_no: number; data: ImportRow }>) {
    const results = new Map<number, { status: CardImportRowStatus; cardId?: string; issues?: Array<{ column: string; value: string; reason: ImportReason }> }>();
    let pending = rows;
    const now = this.deps.clock();
    for (let attempt = 0; attempt < 5 && pending.length > 0; attempt++) {
      const values = pending.map(({ row_no, data }) => {
        const lifetimeSpend = data.lifetimeSpend ?? 0;
        return {
          row_no,
          number: generateCardNumber(),
          holder_name: data.name,
          phone: data.phone!,
          email: data.email ?? null,
          birthday: data.birthday ?? null,
          consent: data.consent ?? false,
          consent_at: data.consent ? (data.consentAt ?? now.toISOString()) : null,
          tier: data.tier ?? tierFor(rules, lifetimeSpend).code,
          balance: data.balance ?? 0,
          lifetime_spend: lifetimeSpend,
          referral_code: generateReferralCode(),
          external_number: data.cardNumber ?? null,
          store: data.store ?? null,
          notes: data.notes ?? null,
          public_token: generateToken(24),
          apple_serial: generateToken(16),
          apple_auth_token: generateToken(24),
          created_at: data.enrolledAt ?? null,
        };
      });
      // One statement for the chunk: the rows travel as one JSON parameter (a 1000-row VALUES list
      // of 25 parameters each costs PostgreSQL more to parse and plan than the inserts themselves),
      // the cards are inserted, and each card with points gets its opening balance as an `import`
      // ledger entry in the same statement (same transaction as the card, never a bare balance).
      // Known customers of the business with balances they earned: verified ('legacy'), nothing held back.
      const { rows: inserted } = await sql<{ id: string; phone: string }>`
        WITH x AS MATERIALIZED (
          SELECT * FROM jsonb_to_recordset(${JSON.stringify(values)}::jsonb) AS x(
            row_no int, number text, holder_name text, phone text, email text, birthday date, consent boolean,
            consent_at timestamptz, tier text, balance bigint, lifetime_spend bigint, referral_code text, external_number text,
            store text, notes text, public_token text, apple_serial text, apple_auth_token text, created_at timestamptz)
        ),
        ins AS (
          INSERT INTO card (program_id, number, holder_name, phone, email, birthday, consent, consent_at, tier, balance, lifetime_spend,
            referral_code, source, external_number, import_id, store, notes, public_token, apple_serial, apple_auth_token, channel,
            verified_at, verified_via, created_at)
          SELECT ${program.id}, number, holder_name, phone, email, birthday, consent, consent_at, tier, balance, lifetime_spend,
            referral_code, 'import', external_number, ${imp.id}, store, notes, public_token, apple_serial, apple_auth_token, 'staff',
            ${now.toISOString()}::timestamptz, 'legacy', coalesce(created_at, now())
          FROM x ORDER BY row_no
          ON CONFLICT DO NOTHING
          RETURNING id, phone, balance
        ),
        ledger AS (
          INSERT INTO ledger_entry (program_id, card_id, kind, points, actor, reason)
          SELECT ${program.id}, ins.id, 'import', ins.balance, ${`import:${imp.id}`}, 'opening balance, import row ' || x.row_no
          FROM ins JOIN x ON x.phone = ins.phone
          WHERE ins.balance > 0
        )
        SELECT id, phone FROM ins
      `.execute(trx);
      const byPhone = new Map(inserted.map((c) => [c.phone, c]));
      const retry: typeof pending = [];
      for (const row of pending) {
        const card = byPhone.get(row.data.phone!);
        if (card) results.set(row.row_no, { status: 'created', cardId: card.id });
        else retry.push(row);
      }
      pending = [];
      if (retry.length === 0) break;
      // Not inserted: the phone or plastic number was taken meanwhile (a concurrent enrolment), or a
      // random number/code collided. The first fail; the others get new random values.
      const taken = await this.#match(trx, program.id, retry.map((r) => r.data.cardNumber).filter((v): v is string => Boolean(v)), retry.map((r) => r.data.phone!));
      for (const row of retry) {
        if (taken.byPhone.has(row.data.phone!) || (row.data.cardNumber && taken.byNumber.has(row.data.cardNumber))) {
          results.set(row.row_no, { status: 'failed', issues: [{ column: 'phone', value: row.data.phone!, reason: 'phone_taken' }] });
        } else pending.push(row);
      }
    }
    if (pending.length > 0) throw new AppError(503, 'card_number_exhausted', 'Could not allocate unique card numbers; the chunk will be retried');
    return results;
  }
}

interface MatchedCard {
  id: string;
  external_number: string | null;
  phone: string;
  balance: number;
  tier: string;
}

const EMPTY_OUTCOME = { created: 0, updated: 0, unchanged: 0, failed: 0 };

class KeyTaken extends Error {
  constructor(readonly fingerprint: string) {
    super('idempotency key taken');
  }
}

export { IMPORT_REASONS };
