import multipart from '@fastify/multipart';
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../http/errors.js';
import { html, type SafeHtml } from '../../http/html.js';
import { csvCell, importDto } from '../../imports/routes.js';
import type { ImportField, ImportReason } from '../../imports/parse.js';
import { importSource } from '../../imports/xlsx.js';
import type { CardImportRow, ImportReport, ImportService } from '../../imports/service.js';
import { getProgramOr404 } from '../../programs/service.js';
import { formatDateTime, formatNumber, texts, type Lang } from '../i18n.js';
import { can, uuidParam, type Screen } from '../kit.js';
import { csrfInput, notice, select } from '../layout.js';

/**
 * «Импорт карт» (owner): the import of a card base from the cabinet (docs/import.md). Choose a file
 * → the dry run's report (counts, reasons, the first problems) → "Apply" → the import's page with
 * live progress (the cabinet script polls `/app/imports/{id}/progress`), cancel and the report CSV.
 *
 * The upload is a plain HTML form (multipart) and is streamed to a temporary file, never buffered
 * whole (a base can be 50 MB). Between the dry run and "Apply" the file waits there, under a random
 * id bound to the program, for an hour; the apply reads it again through the same service as
 * `POST /api/v1/imports` (with the upload id as its idempotency key: a second click replays).
 */
const HOLD_MS = 60 * 60 * 1000;
const HOLD_DIR = path.join(tmpdir(), 'walletcards-cabinet-imports');
const SHOWN_ISSUES = 20;

type Msg = (typeof T)['ru'];
const T = texts({
  ru: {
    nav: 'Импорт карт',
    title: 'Импорт базы карт',
    lead: 'Загрузите выгрузку из кассовой или учётной системы (CSV или XLSX): номера пластиковых карт, телефоны, имена, балансы. Сначала проверим файл и покажем отчёт — ничего не запишем, пока вы не нажмёте «Импортировать».',
    file: 'Файл (CSV или XLSX)',
    fileHint: (mb: number) => `До ${mb} МБ. Кодировка UTF-8 или Windows-1251, разделитель «;» или «,».`,
    mode: 'Если карта уже есть',
    modeCreate: 'ничего не менять (только новые карты)',
    modeUpdate: 'обновить баланс и уровень по файлу',
    check: 'Проверить файл',
    noFile: 'Выберите файл.',
    reportTitle: 'Проверка файла',
    fileName: 'Файл',
    rowsRead: 'Строк прочитано',
    rowsValid: 'Без ошибок',
    rowsFailed: 'С ошибками',
    encoding: 'Кодировка',
    columns: 'Распознанные столбцы',
    ignored: 'Пропущенные столбцы',
    reasons: 'Причины ошибок',
    firstProblems: (n: number) => `Первые проблемы (${n})`,
    row: 'Строка',
    column: 'Столбец',
    value: 'Значение',
    reason: 'Причина',
    apply: 'Импортировать',
    applyNote: 'Строки с ошибками будут пропущены, остальные станут картами. Повторный импорт того же файла ничего не задвоит.',
    nothingValid: 'В файле нет ни одной строки без ошибок — исправьте файл и загрузите снова.',
    uploadExpired: 'Загруженный файл больше не хранится (прошёл час или сервер перезапущен). Загрузите его ещё раз.',
    another: 'Загрузить другой файл',
    recent: 'Последние импорты',
    none: 'Импортов пока не было.',
    status: 'Статус',
    statuses: { queued: 'в очереди', running: 'идёт', finished: 'завершён', cancelled: 'отменён' } as Record<string, string>,
    progress: 'Ход импорта',
    created: 'Создано карт',
    updated: 'Обновлено',
    unchanged: 'Без изменений',
    failed: 'Ошибок',
    done: 'Обработано строк',
    cancel: 'Остановить импорт',
    cancelConfirm: 'Остановить импорт? Уже обработанные строки останутся.',
    reportCsv: 'Скачать отчёт об ошибках (CSV)',
    back: 'Все импорты',
    started: 'Начат',
    reasonNames: {
      missing_identity: 'нет ни номера карты, ни телефона',
      missing_phone: 'нет телефона',
      invalid_phone: 'неверный телефон',
      duplicate_phone: 'телефон повторяется в файле',
      duplicate_card_number: 'номер карты повторяется в файле',
      invalid_card_number: 'неверный номер карты',
      negative_balance: 'отрицательный баланс',
      invalid_amount: 'не число',
      unknown_tier: 'нет такого уровня',
      invalid_date: 'неверная дата',
      invalid_email: 'неверный e-mail',
      invalid_consent: 'согласие не «да» и не «нет»',
      value_too_long: 'слишком длинное значение',
      wrong_column_count: 'лишние поля в строке',
      phone_taken: 'телефон уже у другой карты',
    } as Record<ImportReason, string>,
    fieldNames: {
      cardNumber: 'номер карты',
      phone: 'телефон',
      name: 'имя',
      email: 'e-mail',
      birthday: 'дата рождения',
      balance: 'баланс',
      tier: 'уровень',
      lifetimeSpend: 'сумма покупок',
      consent: 'согласие',
      consentAt: 'дата согласия',
      enrolledAt: 'дата регистрации',
      store: 'магазин',
      notes: 'примечание',
    } as Record<ImportField, string>,
    fileErrors: {
      import_file_empty: 'Файл пустой.',
      import_file_malformed: 'Файл не читается как CSV или XLSX (незакрытые кавычки, двоичные данные).',
      import_file_too_large: 'Файл больше допустимого размера.',
      import_columns_unrecognised: 'Не нашли столбцов с номером карты или телефоном. Проверьте заголовки в первой строке.',
      import_wrong_encoding: 'Файл в другой кодировке.',
      import_upload_incomplete: 'Файл загрузился не полностью. Попробуйте ещё раз.',
    } as Record<string, string>,
  },
  en: {
    nav: 'Card import',
    title: 'Import a card base',
    lead: 'Upload the export of your POS or accounting system (CSV or XLSX): plastic card numbers, phones, names, balances. The file is checked first and you see a report; nothing is written until you press “Import”.',
    file: 'File (CSV or XLSX)',
    fileHint: (mb) => `Up to ${mb} MB. UTF-8 or Windows-1251, separated by “;” or “,”.`,
    mode: 'When the card exists already',
    modeCreate: 'change nothing (new cards only)',
    modeUpdate: 'update its balance and tier from the file',
    check: 'Check the file',
    noFile: 'Choose a file.',
    reportTitle: 'File check',
    fileName: 'File',
    rowsRead: 'Rows read',
    rowsValid: 'Without errors',
    rowsFailed: 'With errors',
    encoding: 'Encoding',
    columns: 'Columns recognised',
    ignored: 'Columns ignored',
    reasons: 'Reasons',
    firstProblems: (n) => `First problems (${n})`,
    row: 'Row',
    column: 'Column',
    value: 'Value',
    reason: 'Reason',
    apply: 'Import',
    applyNote: 'Rows with errors are skipped, the others become cards. Importing the same file again duplicates nothing.',
    nothingValid: 'No row of the file is free of errors: fix the file and upload it again.',
    uploadExpired: 'The uploaded file is no longer kept (an hour passed or the server restarted). Upload it again.',
    another: 'Upload another file',
    recent: 'Recent imports',
    none: 'No imports yet.',
    status: 'Status',
    statuses: { queued: 'queued', running: 'running', finished: 'finished', cancelled: 'cancelled' },
    progress: 'Progress',
    created: 'Cards created',
    updated: 'Updated',
    unchanged: 'Unchanged',
    failed: 'Failed',
    done: 'Rows processed',
    cancel: 'Stop the import',
    cancelConfirm: 'Stop the import? The rows processed so far stay.',
    reportCsv: 'Download the error report (CSV)',
    back: 'All imports',
    started: 'Started',
    reasonNames: {
      missing_identity: 'neither a card number nor a phone',
      missing_phone: 'no phone',
      invalid_phone: 'invalid phone',
      duplicate_phone: 'phone repeated in the file',
      duplicate_card_number: 'card number repeated in the file',
      invalid_card_number: 'invalid card number',
      negative_balance: 'negative balance',
      invalid_amount: 'not a number',
      unknown_tier: 'no such tier',
      invalid_date: 'invalid date',
      invalid_email: 'invalid e-mail',
      invalid_consent: 'consent is neither yes nor no',
      value_too_long: 'value too long',
      wrong_column_count: 'extra fields in the row',
      phone_taken: 'phone belongs to another card',
    },
    fieldNames: {
      cardNumber: 'card number',
      phone: 'phone',
      name: 'name',
      email: 'e-mail',
      birthday: 'birthday',
      balance: 'balance',
      tier: 'tier',
      lifetimeSpend: 'lifetime spend',
      consent: 'consent',
      consentAt: 'consent date',
      enrolledAt: 'enrolled at',
      store: 'store',
      notes: 'notes',
    },
    fileErrors: {
      import_file_empty: 'The file is empty.',
      import_file_malformed: 'The file cannot be read as CSV or XLSX (an unclosed quote, binary data).',
      import_file_too_large: 'The file is over the size limit.',
      import_columns_unrecognised: 'No card number or phone column found. Check the headers in the first row.',
      import_wrong_encoding: 'The file is in another encoding.',
      import_upload_incomplete: 'The file did not arrive whole. Try again.',
    },
  },
});

interface HeldUpload {
  id: string;
  fileName: string;
  tooLarge: boolean;
  empty: boolean;
}
interface HeldMeta {
  programId: string;
  fileName: string;
  mode: 'create' | 'update';
  at: number;
}

const holdPath = (id: string) => path.join(HOLD_DIR, `${id}.upload`);
const metaPath = (id: string) => path.join(HOLD_DIR, `${id}.json`);

/** Forgets uploads older than an hour (run on every upload: no timer to keep). */
async function sweep(now: number) {
  const names = await readdir(HOLD_DIR).catch(() => [] as string[]);
  for (const name of names) {
    const file = path.join(HOLD_DIR, name);
    const info = await stat(file).catch(() => undefined);
    if (info && now - info.mtimeMs > HOLD_MS) await rm(file, { force: true });
  }
}

function percentOf(row: ReturnType<typeof importDto>): number {
  if (row.status === 'finished') return 100;
  const total = row.progress.rowsValid;
  return total > 0 ? Math.min(100, Math.floor((row.progress.done / total) * 100)) : 0;
}
const isFinal = (status: string) => status === 'finished' || status === 'cancelled';

export const importsScreen: Screen = {
  nav: { path: '/app/imports', label: { ru: 'Импорт карт', en: 'Card import' }, access: 'owner', group: 'program' },
  routes: async (app, { kit }) => {
    const service = (): ImportService => {
      if (!kit.imports) throw new AppError(404, 'not_found', 'Imports are not available');
      return kit.imports;
    };
    const maxBytes = () => kit.imports?.settings.maxBytes ?? 50 * 1024 * 1024;

    // The upload is read as a stream into the holding file. The role and the form's origin are
    // checked before a byte of it is read (the cabinet's CSRF check needs the parsed fields, so it
    // runs after: the token field comes before the file in the form).
    app.addHook('preValidation', async (request) => {
      if (request.method !== 'POST' || request.routeOptions.url !== '/app/imports') return;
      if (!request.cabinet) throw new AppError(401, 'signed_out', 'Sign in first');
      if (!can(request.cabinet.role, 'owner')) throw new AppError(403, 'forbidden', 'Your role cannot open this');
      if (request.headers['sec-fetch-site'] === 'cross-site') throw new AppError(403, 'csrf_failed', 'Cross-site form');
      await mkdir(HOLD_DIR, { recursive: true });
    });
    // A held file is kept only behind a shown report (200, its meta written); a refused upload (the
    // CSRF check, a bad file) leaves nothing behind.
    // (onSend, not onResponse: removed before the answer leaves, so no client sees it still there.)
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.method !== 'POST' || request.routeOptions.url !== '/app/imports' || reply.statusCode === 200) return payload;
      const held = (request.body as Record<string, unknown> | undefined)?.file as HeldUpload | undefined;
      if (held && typeof held === 'object' && typeof held.id === 'string') await rm(holdPath(held.id), { force: true });
      return payload;
    });
    // This screen's own multipart reader: streaming, not the cabinet's small buffered one (images).
    app.removeContentTypeParser('multipart/form-data');
    await app.register(multipart, {
      attachFieldsToBody: 'keyValues',
      limits: { files: 1, fileSize: maxBytes() + 1, fields: 10, parts: 12, fieldSize: 1024, headerPairs: 50 },
      throwFileSizeLimit: false,
      async onFile(part) {
        const id = randomUUID();
        let size = 0;
        const limit = maxBytes();
        let tooLarge = false;
        const written = pipeline(
          part.file,
          new Transform({
            transform(chunk: Buffer, _enc, done) {
              size += chunk.length;
              if (size > limit) tooLarge = true;
              // Past the limit the rest is drained, not written.
              done(null, tooLarge ? undefined : chunk);
            },
          }),
          createWriteStream(holdPath(id)),
        );
        // An upload cut off half-way leaves no partial file.
        await written.catch(async (error) => {
          await rm(holdPath(id), { force: true });
          throw error;
        });
        if (tooLarge || size === 0) await rm(holdPath(id), { force: true });
        const held: HeldUpload = { id, fileName: (part.filename || 'upload.csv').slice(0, 200), tooLarge, empty: size === 0 };
        (part as unknown as { value: HeldUpload }).value = held;
      },
    });

    async function listPage(request: FastifyRequest, reply: FastifyReply, state: { status?: number; error?: string; mode?: string } = {}) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const rows = kit.imports ? await kit.imports.list(session.programId, 20) : [];
      const recent = rows.length
        ? html`<table class="table" data-imports><thead><tr><th scope="col">${t.fileName}</th><th scope="col">${t.started}</th><th scope="col">${t.status}</th><th scope="col">${t.created}</th></tr></thead><tbody>${rows.map(
            (row) =>
              html`<tr><td><a href="/app/imports/${row.id}">${row.file_name ?? row.id}</a></td><td>${formatDateTime(l, session.timeZone, row.created_at)}</td><td>${t.statuses[row.status] ?? row.status}</td><td>${formatNumber(l, row.created)}</td></tr>`,
          )}</tbody></table>`
        : html`<p class="muted">${t.none}</p>`;
      return kit.page(request, reply, {
        status: state.status,
        title: t.title,
        body: html`<h1>${t.title}</h1>
<p class="lead">${t.lead}</p>
${state.error ? notice(state.error, 'warn') : ''}
<form method="post" action="/app/imports" enctype="multipart/form-data" class="panel" data-upload-form>
${csrfInput(session.csrf)}
${select({ name: 'mode', label: t.mode, value: state.mode ?? 'create', options: [{ value: 'create', label: t.modeCreate }, { value: 'update', label: t.modeUpdate }] })}
<div class="field">
<label for="f-file">${t.file}</label>
<p class="hint" id="f-file-hint">${t.fileHint(Math.round(maxBytes() / 1024 / 1024))}</p>
<input id="f-file" name="file" type="file" accept=".csv,.txt,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" required aria-describedby="f-file-hint">
</div>
<button class="button" type="submit">${t.check}</button>
</form>
<section class="panel" aria-labelledby="recent-title">
<h2 id="recent-title">${t.recent}</h2>
${recent}
</section>`,
      });
    }

    function reportSection(l: Lang, t: Msg, report: ImportReport, fileName: string): SafeHtml {
      const reasons = Object.entries(report.byReason) as Array<[ImportReason, number]>;
      const issues = report.issues.slice(0, SHOWN_ISSUES);
      return html`<dl class="figures" data-report>
<div><dt>${t.fileName}</dt><dd data-field="fileName">${fileName}</dd></div>
<div><dt>${t.rowsRead}</dt><dd data-field="rowsRead">${formatNumber(l, report.rowsRead)}</dd></div>
<div><dt>${t.rowsValid}</dt><dd data-field="rowsValid">${formatNumber(l, report.rowsValid)}</dd></div>
<div><dt>${t.rowsFailed}</dt><dd data-field="rowsFailed">${formatNumber(l, report.rowsFailed)}</dd></div>
<div><dt>${t.encoding}</dt><dd>${report.encoding}</dd></div>
</dl>
<p>${t.columns}: ${Object.entries(report.columns.mapping).map(([header, f], i) => html`${i > 0 ? ', ' : ''}«${header}» → ${t.fieldNames[f as ImportField] ?? f}`)}</p>
${report.columns.ignored.length ? html`<p class="muted">${t.ignored}: ${report.columns.ignored.join(', ')}</p>` : ''}
${
  reasons.length
    ? html`<h3>${t.reasons}</h3><ul data-reasons>${reasons.map(([reason, n]) => html`<li data-reason="${reason}">${t.reasonNames[reason] ?? reason}: ${formatNumber(l, n)}</li>`)}</ul>`
    : ''
}
${
  issues.length
    ? html`<h3>${t.firstProblems(issues.length)}</h3><table class="table" data-issues><thead><tr><th scope="col">${t.row}</th><th scope="col">${t.column}</th><th scope="col">${t.value}</th><th scope="col">${t.reason}</th></tr></thead><tbody>${issues.map(
        (i) => html`<tr><td>${i.row}</td><td>${i.column}</td><td>${i.value}</td><td>${t.reasonNames[i.reason] ?? i.reason}</td></tr>`,
      )}</tbody></table>`
    : ''
}`;
    }

    function fileError(t: Msg, error: unknown): string | undefined {
      if (!(error instanceof AppError) || error.status >= 500) return undefined;
      return t.fileErrors[error.code] ?? error.message;
    }

    app.get('/app/imports', { config: { access: 'owner' } }, async (request, reply) => listPage(request, reply));

    // The upload: the dry run's report, and the apply form for the held file.
    app.post('/app/imports', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const body = (request.body ?? {}) as Record<string, unknown>;
      const mode = body.mode === 'update' ? 'update' : 'create';
      const held = body.file as HeldUpload | undefined;
      await sweep(Date.now());
      if (!held || typeof held !== 'object' || !('id' in held) || held.empty) return listPage(request, reply, { status: 422, error: t.noFile, mode });
      if (held.tooLarge) return listPage(request, reply, { status: 413, error: t.fileErrors.import_file_too_large, mode });
      const program = await getProgramOr404(kit.ctx.db, session.programId);
      let report: ImportReport;
      try {
        const input = await importSource(holdPath(held.id), { mode, fileName: held.fileName });
        report = await service().dryRun(program, input.source, input.options);
      } catch (error) {
        await rm(holdPath(held.id), { force: true });
        const message = fileError(t, error);
        if (message === undefined) throw error;
        return listPage(request, reply, { status: (error as AppError).status, error: message, mode });
      }
      const meta: HeldMeta = { programId: session.programId, fileName: held.fileName, mode, at: Date.now() };
      await writeFile(metaPath(held.id), JSON.stringify(meta));
      return kit.page(request, reply, {
        title: t.reportTitle,
        active: '/app/imports',
        path: '/app/imports',
        body: html`<p><a href="/app/imports">${t.another}</a></p>
<h1>${t.reportTitle}</h1>
<section class="panel">${reportSection(l, t, report, held.fileName)}</section>
${
  report.rowsValid > 0
    ? html`<form method="post" action="/app/imports/apply" class="panel" data-apply-form>
${csrfInput(session.csrf)}<input type="hidden" name="upload" value="${held.id}">
<p>${t.applyNote}</p>
<button class="button" type="submit">${t.apply}</button>
</form>`
    : notice(t.nothingValid, 'warn')
}`,
      });
    });

    app.post('/app/imports/apply', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const upload = String((request.body as Record<string, unknown> | undefined)?.upload ?? '');
      const id = /^[0-9a-f-]{36}$/.test(upload) ? upload : undefined;
      const meta = id ? await readFile(metaPath(id), 'utf8').then((s) => JSON.parse(s) as HeldMeta).catch(() => undefined) : undefined;
      // Another program's upload is as gone as an expired one.
      if (!id || !meta || meta.programId !== session.programId || Date.now() - meta.at > HOLD_MS) {
        return listPage(request, reply, { status: 410, error: t.uploadExpired });
      }
      const program = await getProgramOr404(kit.ctx.db, session.programId);
      let row: CardImportRow;
      try {
        const input = await importSource(holdPath(id), { mode: meta.mode, fileName: meta.fileName });
        ({ row } = await service().create(program, input.source, input.options, `cabinet:${session.staffId}`, `cabinet-import-${id}`));
      } catch (error) {
        const message = fileError(t, error);
        if (message === undefined) throw error;
        return listPage(request, reply, { status: (error as AppError).status, error: message });
      }
      await rm(holdPath(id), { force: true });
      await rm(metaPath(id), { force: true });
      return kit.redirect(reply, `/app/imports/${row.id}`);
    });

    function figures(l: Lang, dto: ReturnType<typeof importDto>) {
      const p = dto.progress;
      return {
        status: T[l].statuses[dto.status] ?? dto.status,
        done: `${formatNumber(l, p.done)} / ${formatNumber(l, p.rowsValid)}`,
        created: formatNumber(l, p.created),
        updated: formatNumber(l, p.updated),
        unchanged: formatNumber(l, p.unchanged),
        failed: formatNumber(l, p.failed),
      };
    }

    app.get<{ Params: { id: string } }>('/app/imports/:id', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const t = T[l];
      const row = await service().find(session.programId, uuidParam(request.params.id));
      const report = await service().report(row);
      const dto = importDto(row, report);
      const f = figures(l, dto);
      const live = !isFinal(dto.status);
      const figure = (key: keyof typeof f, label: string) => html`<div><dt>${label}</dt><dd data-field="${key}">${f[key]}</dd></div>`;
      return kit.page(request, reply, {
        title: dto.fileName ?? t.title,
        active: '/app/imports',
        path: `/app/imports/${row.id}`,
        body: html`<p><a href="/app/imports">${t.back}</a></p>
<h1>${dto.fileName ?? t.title}</h1>
<section class="panel" aria-labelledby="progress-title"${live ? html` data-poll="/app/imports/${row.id}/progress" data-reload-when-final` : ''} data-import="${row.id}">
<h2 id="progress-title">${t.progress}</h2>
<p>${t.status}: <strong aria-live="polite" data-field="status">${f.status}</strong></p>
<progress max="100" value="${percentOf(dto)}" aria-label="${t.progress}">${percentOf(dto)} %</progress>
<dl class="figures">
${figure('done', t.done)}${figure('created', t.created)}${figure('updated', t.updated)}${figure('unchanged', t.unchanged)}${figure('failed', t.failed)}
</dl>
<div class="actions">
${
  live
    ? html`<form method="post" action="/app/imports/${row.id}/cancel" data-confirm="${t.cancelConfirm}">${csrfInput(session.csrf)}<button class="button danger" type="submit">${t.cancel}</button></form>`
    : ''
}
<a class="button secondary" href="/app/imports/${row.id}/report.csv" download data-report-csv>${t.reportCsv}</a>
</div>
</section>
<section class="panel" aria-labelledby="report-title"><h2 id="report-title">${t.reportTitle}</h2>${reportSection(l, t, report, dto.fileName ?? '')}</section>`,
      });
    });

    app.get<{ Params: { id: string } }>('/app/imports/:id/progress', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const l = kit.lang(request);
      const row = await service().find(session.programId, uuidParam(request.params.id));
      const dto = importDto(row, await service().report(row));
      return reply.type('application/json').header('cache-control', 'no-store').send({ status: dto.status, fields: figures(l, dto), percent: percentOf(dto), final: isFinal(dto.status) });
    });

    app.post<{ Params: { id: string } }>('/app/imports/:id/cancel', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const id = uuidParam(request.params.id);
      try {
        await service().cancel(session.programId, id);
      } catch (error) {
        // Finished in the meantime: the page shows it.
        if (!(error instanceof AppError && error.status === 409)) throw error;
      }
      return kit.redirect(reply, `/app/imports/${id}`);
    });

    app.get<{ Params: { id: string } }>('/app/imports/:id/report.csv', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const imports = service();
      const row = await imports.find(session.programId, uuidParam(request.params.id));
      const lines = (async function* () {
        yield '\ufeffrow;column;value;reason\r\n';
        for await (const issue of imports.issues(row.id)) yield `${issue.row};${csvCell(issue.column)};${csvCell(issue.value)};${issue.reason}\r\n`;
      })();
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="import-${row.id}-report.csv"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(lines));
    });
  },
};
