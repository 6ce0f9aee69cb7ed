import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AppContext } from '../app-context.js';
import { requireProgramRole } from '../http/auth.js';
import { AppError } from '../http/errors.js';
import { parseIdempotencyKey } from '../http/idempotency.js';
import { IdempotencyHeaders, problemResponses, Uuid } from '../http/schemas.js';
import { getProgramOr404 } from '../programs/service.js';
import { FileTooLarge, IMPORT_FIELDS, IMPORT_REASONS, type ImportField } from './parse.js';
import type { CardImportRow, ImportReport, ImportService } from './service.js';
import { importSource } from './xlsx.js';

const IssueSchema = Type.Object({
  row: Type.Integer(),
  column: Type.String(),
  value: Type.String(),
  reason: Type.Union(IMPORT_REASONS.map((r) => Type.Literal(r))),
});

const ReportSchema = Type.Object({
  encoding: Type.String(),
  delimiter: Type.String(),
  columns: Type.Object({ mapping: Type.Record(Type.String(), Type.String()), ignored: Type.Array(Type.String()) }),
  rowsRead: Type.Integer(),
  rowsValid: Type.Integer(),
  rowsFailed: Type.Integer(),
  byReason: Type.Record(Type.String(), Type.Integer()),
  issues: Type.Array(IssueSchema),
  truncated: Type.Boolean(),
});

const ImportSchema = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('finished'), Type.Literal('cancelled')]),
  mode: Type.Union([Type.Literal('create'), Type.Literal('update')]),
  fileName: Type.Union([Type.String(), Type.Null()]),
  progress: Type.Object({
    rowsRead: Type.Integer(),
    rowsValid: Type.Integer(),
    created: Type.Integer(),
    updated: Type.Integer(),
    unchanged: Type.Integer(),
    failed: Type.Integer(),
    /** Rows applied so far (created + updated + unchanged + failed at apply). */
    done: Type.Integer(),
  }),
  createdAt: Type.String(),
  startedAt: Type.Union([Type.String(), Type.Null()]),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
  report: ReportSchema,
});

const ImportQuery = Type.Object({
  dryRun: Type.Optional(Type.Boolean({ default: false, description: 'Validate every row and answer the report; write nothing' })),
  mode: Type.Optional(
    Type.Union([Type.Literal('create'), Type.Literal('update')], {
      default: 'create',
      description: 'create: new cards only (rows matching an existing card change nothing); update: also move balances of existing cards by ledger deltas',
    }),
  ),
  encoding: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('utf-8'), Type.Literal('windows-1251')], { default: 'auto' })),
  delimiter: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal(';'), Type.Literal(','), Type.Literal('tab')], { default: 'auto' })),
  mapping: Type.Optional(
    Type.String({
      maxLength: 4000,
      description: `JSON object field → header as written in the file; fields: ${IMPORT_FIELDS.join(', ')}. Overrides the recognised header names`,
    }),
  ),
  fileName: Type.Optional(Type.String({ maxLength: 200 })),
});

const ImportParams = Type.Object({ importId: Uuid });

function parseMapping(raw: string | undefined): Partial<Record<ImportField, string>> | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new AppError(400, 'validation_failed', 'mapping must be a JSON object, e.g. {"cardNumber":"Штрихкод","phone":"Моб. тел."}');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new AppError(400, 'validation_failed', 'mapping must be a JSON object of field → header');
  const mapping: Partial<Record<ImportField, string>> = {};
  for (const [field, header] of Object.entries(value as Record<string, unknown>)) {
    if (!(IMPORT_FIELDS as readonly string[]).includes(field)) {
      throw new AppError(400, 'validation_failed', `mapping: unknown field "${field.slice(0, 40)}"; fields: ${IMPORT_FIELDS.join(', ')}`);
    }
    if (typeof header !== 'string' || header.length === 0 || header.length > 200) {
      throw new AppError(400, 'validation_failed', `mapping.${field} must be a header name (1–200 characters)`);
    }
    mapping[field as ImportField] = header;
  }
  return mapping;
}

export function importDto(row: CardImportRow, report: ImportReport) {
  return {
    id: row.id,
    status: row.status,
    mode: row.mode,
    fileName: row.file_name,
    progress: {
      rowsRead: row.rows_read,
      rowsValid: row.rows_valid,
      created: row.created,
      updated: row.updated,
      unchanged: row.unchanged,
      failed: row.failed,
      done: row.created + row.updated + row.unchanged + (row.failed - (row.rows_read - row.rows_valid)),
    },
    createdAt: new Date(row.created_at).toISOString(),
    startedAt: row.started_at ? row.started_at.toISOString() : null,
    finishedAt: row.finished_at ? row.finished_at.toISOString() : null,
    report,
  };
}

/** A CSV cell: quoted when needed, and never read as a formula by a spreadsheet (CSV injection). */
export function csvCell(value: string | number): string {
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[";,\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Receives the whole upload into a temporary file first (counted against the limit), then the import
 * reads it from there: the client is done sending in the time the network takes, not in the time
 * parsing and staging take (which would run into the server's request timeout for a big base), and
 * memory stays flat. The file lives for the request only.
 */
async function spool(body: Readable, maxBytes: number): Promise<{ file: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'walletcards-import-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  const file = path.join(dir, 'upload.csv');
  let size = 0;
  try {
    await pipeline(
      body,
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          size += chunk.length;
          done(size > maxBytes ? new FileTooLarge(maxBytes) : null, chunk);
        },
      }),
      createWriteStream(file),
    );
  } catch (error) {
    await remove();
    if (error instanceof AppError) throw error;
    throw new AppError(400, 'import_upload_incomplete', 'The upload ended before the whole file arrived; send it again');
  }
  return { file, remove };
}

export const importRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext; imports: ImportService }> = async (app, { ctx, imports }) => {
  // The file is read as a stream (never buffered whole): the parser counts its bytes against IMPORT_MAX_BYTES.
  const passStream = (_request: unknown, payload: Readable, done: (err: Error | null, body?: unknown) => void) => done(null, payload);
  app.addContentTypeParser(
    ['text/csv', 'text/plain', 'application/csv', 'application/octet-stream', 'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
    passStream,
  );
  // Or a form upload (multipart/form-data, the file in any file field): streamed the same way. One
  // file; its size is counted by `spool` (busboy's own limit one byte above, so ours answers 413).
  await app.register(multipart, {
    limits: { files: 1, fileSize: imports.settings.maxBytes + 1, fields: 10, parts: 20, fieldSize: 1024, headerPairs: 50 },
    throwFileSizeLimit: false,
  });

  app.post(
    '/imports',
    {
      schema: {
        tags: ['imports'],
        summary:
          'Import a card base: the CSV or XLSX file as the body (text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet) or as a multipart/form-data file. dryRun=true answers the report and writes nothing; otherwise 202 and a job applies it',
        querystring: ImportQuery,
        headers: IdempotencyHeaders,
        response: { 200: ReportSchema, 202: ImportSchema, ...problemResponses(409, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const { programId, actor } = requireProgramRole(request, ['admin']);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      let body = request.body as Readable | undefined;
      let fileName = request.query.fileName;
      if (request.isMultipart()) {
        let part;
        try {
          part = await request.file();
        } catch {
          throw new AppError(400, 'import_upload_malformed', 'The multipart/form-data body could not be read');
        }
        if (!part) throw new AppError(400, 'import_upload_malformed', 'The multipart/form-data body has no file (send the CSV in a file field)');
        body = part.file;
        fileName ??= part.filename ? part.filename.slice(0, 200) : undefined;
      }
      if (!body || typeof (body as Readable).pipe !== 'function') {
        throw new AppError(415, 'unsupported_media_type', 'Send the CSV file as the request body with Content-Type: text/csv, or as a multipart/form-data file');
      }
      const length = Number(request.headers['content-length']);
      if (Number.isFinite(length) && length > imports.settings.maxBytes) {
        body.resume();
        throw new FileTooLarge(imports.settings.maxBytes);
      }
      const q = request.query;
      const options = {
        mode: q.mode ?? 'create',
        encoding: q.encoding === 'auto' || q.encoding === undefined ? undefined : q.encoding,
        delimiter: q.delimiter === 'tab' ? ('\t' as const) : q.delimiter === 'auto' || q.delimiter === undefined ? undefined : q.delimiter,
        mapping: parseMapping(q.mapping),
        fileName,
      };
      const program = await getProgramOr404(ctx.db, programId);
      const upload = await spool(body, imports.settings.maxBytes).catch((error) => {
        // A refusal (413) leaves the rest of the upload unread: drain it so the answer reaches the client.
        if (!body.readableEnded) body.resume();
        throw error;
      });
      try {
        // CSV bytes, or an XLSX file's first sheet as CSV text (detected by its magic bytes, imports/xlsx.ts).
        const input = await importSource(upload.file, options);
        if (q.dryRun) return reply.status(200).send(await imports.dryRun(program, input.source, input.options));
        const { row, report, replayed } = await imports.create(program, input.source, input.options, actor, key);
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(202).send(importDto(row, report));
      } finally {
        await upload.remove();
      }
    },
  );

  app.get(
    '/imports',
    {
      schema: {
        tags: ['imports'],
        summary: 'The program’s imports, newest first',
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })) }),
        response: { 200: Type.Object({ items: Type.Array(ImportSchema) }), ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, ['admin']);
      const rows = await imports.list(programId, request.query.limit ?? 20);
      return { items: await Promise.all(rows.map(async (row) => importDto(row, await imports.report(row)))) };
    },
  );

  app.get(
    '/imports/:importId',
    {
      schema: { tags: ['imports'], summary: 'An import: status, progress and report', params: ImportParams, response: { 200: ImportSchema, ...problemResponses() } },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, ['admin']);
      const row = await imports.find(programId, request.params.importId);
      return importDto(row, await imports.report(row));
    },
  );

  app.post(
    '/imports/:importId/cancel',
    {
      schema: {
        tags: ['imports'],
        summary: 'Cancel a queued or running import (rows applied so far stay)',
        params: ImportParams,
        response: { 200: ImportSchema, ...problemResponses(409) },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, ['admin']);
      const row = await imports.cancel(programId, request.params.importId);
      return importDto(row, await imports.report(row));
    },
  );

  app.get(
    '/imports/:importId/report.csv',
    {
      schema: {
        tags: ['imports'],
        summary: 'Every failed row of an import as CSV (row;column;value;reason), UTF-8 with BOM for Excel',
        params: ImportParams,
        response: { 200: Type.Unknown({ description: 'text/csv' }), ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, ['admin']);
      const row = await imports.find(programId, request.params.importId);
      const lines = (async function* () {
        yield '\ufeffrow;column;value;reason\r\n';
        for await (const issue of imports.issues(row.id)) {
          yield `${issue.row};${csvCell(issue.column)};${csvCell(issue.value)};${issue.reason}\r\n`;
        }
      })();
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="import-${row.id}-report.csv"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(lines));
    },
  );
};
