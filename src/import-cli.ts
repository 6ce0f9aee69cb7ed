/**
 * `npm run import -- --program <slug> [--dry-run] [--mode create|update] [--encoding utf-8|windows-1251]
 *   [--delimiter ';'|','|tab] [--mapping '{"cardNumber":"Штрихкод"}'] file.csv`
 * (the image: `node dist/import-cli.js …`).
 *
 * Imports a card base straight into the database (DATABASE_URL, or the embedded database in DATA_DIR
 * — stop the server first: the embedded database belongs to one process) through the same service
 * the API uses (src/imports): the file is parsed, validated and staged in one transaction, then
 * applied chunk by chunk by this process, with a progress line. A running worker may pick chunks up
 * too: the chunk fence makes that harmless. Interrupted (Ctrl-C, a crash), the import resumes where
 * it stopped: run with `--resume <import id>`, or leave it to the workers' stall watchdog.
 *
 * Exit codes: 0 done, 1 failed, 2 bad arguments or configuration, 4 the file was refused (report printed).
 */
import { createReadStream, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { AppError } from './http/errors.js';
import { JobQueue } from './jobs/queue.js';
import { ImportService, type ImportReport } from './imports/service.js';
import { createCardChangeRecorder } from './updates/card-changes.js';
import { IMPORT_FIELDS, type ImportField } from './imports/parse.js';

const USAGE = `usage: npm run import -- --program <slug> [--dry-run] [--mode create|update] [--encoding utf-8|windows-1251] [--delimiter ';'|','|tab] [--mapping JSON] file.csv
       npm run import -- --resume <import id>`;

function fail(message: string, code = 2): never {
  console.error(message);
  process.exit(code);
}

function printReport(report: ImportReport) {
  console.log(`encoding ${report.encoding}, delimiter ${JSON.stringify(report.delimiter)}`);
  console.log(`columns: ${Object.entries(report.columns.mapping).map(([header, field]) => `${header} → ${field}`).join(', ')}`);
  if (report.columns.ignored.length > 0) console.log(`ignored columns: ${report.columns.ignored.join(', ')}`);
  console.log(`rows read ${report.rowsRead}, valid ${report.rowsValid}, failed ${report.rowsFailed}`);
  for (const [reason, n] of Object.entries(report.byReason)) console.log(`  ${reason}: ${n}`);
  for (const issue of report.issues.slice(0, 20)) console.log(`  row ${issue.row}, ${issue.column || '—'}: ${issue.reason} (${JSON.stringify(issue.value)})`);
  if (report.issues.length > 20 || report.truncated) console.log(`  … the full list: GET /api/v1/imports/{id}/report.csv`);
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        program: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        mode: { type: 'string', default: 'create' },
        encoding: { type: 'string' },
        delimiter: { type: 'string' },
        mapping: { type: 'string' },
        resume: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    return fail(`${(error as Error).message}\n${USAGE}`);
  }
})();

if (values.help) fail(USAGE, 0);
if (!values.resume && (!values.program || positionals.length !== 1)) fail(USAGE);
if (values.mode !== 'create' && values.mode !== 'update') fail(`--mode must be create or update\n${USAGE}`);
if (values.encoding !== undefined && values.encoding !== 'utf-8' && values.encoding !== 'windows-1251') fail('--encoding must be utf-8 or windows-1251');
const delimiter = values.delimiter === undefined ? undefined : values.delimiter === 'tab' ? '\t' : values.delimiter;
if (delimiter !== undefined && delimiter !== ';' && delimiter !== ',' && delimiter !== '\t') fail("--delimiter must be ';', ',' or tab");
let mapping: Partial<Record<ImportField, string>> | undefined;
if (values.mapping) {
  try {
    mapping = JSON.parse(values.mapping);
  } catch {
    fail('--mapping must be a JSON object, e.g. {"cardNumber":"Штрихкод"}');
  }
  for (const field of Object.keys(mapping!)) if (!(IMPORT_FIELDS as readonly string[]).includes(field)) fail(`--mapping: unknown field ${field}; fields: ${IMPORT_FIELDS.join(', ')}`);
}

let config;
try {
  config = loadConfig();
} catch (error) {
  fail(error instanceof ConfigError ? error.message : String(error));
}
const database = openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 2 });
const jobs = new JobQueue(database.db, { maintenance: false });
let exitCode = 0;
try {
  await jobs.start();
  // Wallet updates of existing cards (update mode) go to the same queues the server's workers work.
  const wallets = config.GOOGLE_ISSUER_ID ? ['apple', 'google'] : ['apple'];
  const cardChanges = createCardChangeRecorder(jobs, { debounceSeconds: config.PASS_UPDATE_DEBOUNCE_SECONDS, wallets, cardsPerJob: { apple: config.APPLE_UPDATE_CARDS_PER_JOB } });
  const imports = new ImportService({
    db: database.db,
    jobs,
    cardChanges,
    clock: () => new Date(),
    settings: { maxBytes: config.IMPORT_MAX_BYTES, chunkSize: config.IMPORT_CHUNK_SIZE },
  });
  await imports.ensureQueues();

  let importId = values.resume;
  if (!importId) {
    const program = await database.db.selectFrom('program').selectAll().where('slug', '=', values.program!).executeTakeFirst();
    if (!program) fail(`no program with slug ${values.program}`);
    const file = positionals[0]!;
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      fail(`cannot read ${file}`);
    }
    if (size > config.IMPORT_MAX_BYTES) fail(`${file} is ${size} bytes; IMPORT_MAX_BYTES is ${config.IMPORT_MAX_BYTES}`, 4);
    const options = {
      mode: values.mode as 'create' | 'update',
      encoding: values.encoding as 'utf-8' | 'windows-1251' | undefined,
      delimiter: delimiter as ';' | ',' | '\t' | undefined,
      mapping,
      fileName: path.basename(file),
    };
    const started = Date.now();
    if (values['dry-run']) {
      const report = await imports.dryRun(program, createReadStream(file), options);
      printReport(report);
      console.log(`dry run: nothing written (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      exitCode = report.rowsFailed > 0 ? 4 : 0;
    } else {
      const { row, report } = await imports.create(program, createReadStream(file), options, 'cli');
      printReport(report);
      console.log(`import ${row.id} staged in ${((Date.now() - started) / 1000).toFixed(1)} s; applying…`);
      importId = row.id;
    }
  }
  if (importId && !values['dry-run']) {
    const started = Date.now();
    const tty = process.stdout.isTTY;
    let lastPrinted = 0;
    for (;;) {
      const row = await database.db.selectFrom('card_import').selectAll().where('id', '=', importId).executeTakeFirst();
      if (!row) fail(`no import ${importId}`, 1);
      const done = row.created + row.updated + row.unchanged + row.failed - (row.rows_read - row.rows_valid);
      const seconds = (Date.now() - started) / 1000;
      const line = `[${row.status}] ${done}/${row.rows_valid} rows: created ${row.created}, updated ${row.updated}, unchanged ${row.unchanged}, failed ${row.failed} — ${Math.round(done / Math.max(seconds, 0.001))} rows/s`;
      const finished = row.status !== 'queued' && row.status !== 'running';
      if (tty) process.stdout.write(`\r${line}${finished ? '\n' : ''}`);
      else if (finished || Date.now() - lastPrinted > 2000) {
        console.log(line);
        lastPrinted = Date.now();
      }
      if (finished) break;
      await imports.runChunk(importId, row.next_chunk);
    }
  }
} catch (error) {
  if (error instanceof AppError) {
    console.error(`refused: ${error.message}${error.details ? ` ${JSON.stringify(error.details)}` : ''}`);
    exitCode = 4;
  } else {
    console.error(error);
    exitCode = 1;
  }
} finally {
  await jobs.stop();
  await database.close();
}
process.exit(exitCode);
