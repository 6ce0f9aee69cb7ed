import ExcelJS from 'exceljs';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { AppError } from '../http/errors.js';
import type { ImportOptions } from './service.js';

/**
 * XLSX card bases (issue #12): the first worksheet is read as a stream (exceljs'
 * `stream.xlsx.WorkbookReader`: the zip is inflated entry by entry and rows are emitted as they are
 * parsed, so memory does not grow with the sheet) and turned into CSV text — UTF-8, `;`, quoted as
 * needed — that the same parser, validation and staging read (parse.ts). The decompressed text is
 * counted against IMPORT_MAX_BYTES like a CSV file, so a zip bomb stops there.
 *
 * A file is XLSX by its magic bytes (a zip: `PK\x03\x04`), whatever its name or content type.
 */
const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

export async function isZipFile(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(ZIP_MAGIC);
  } finally {
    await handle.close();
  }
}

/** The CSV cell of an XLSX value: dates as ISO, formulas by their result, rich text as its text. */
export function cellText(value: ExcelJS.CellValue): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) {
    const iso = value.toISOString();
    // A date without a time (midnight UTC, as Excel dates are stored) stays a date.
    return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso.slice(0, 19);
  }
  if (typeof value === 'object') {
    if ('richText' in value && Array.isArray(value.richText)) return value.richText.map((part) => part.text).join('');
    if ('result' in value) return cellText((value.result ?? null) as ExcelJS.CellValue);
    if ('text' in value && typeof value.text === 'string') return value.text;
    if ('error' in value) return '';
    return '';
  }
  if (typeof value === 'boolean') return value ? 'да' : 'нет';
  return String(value);
}

function csvLine(values: string[]): string {
  return `${values.map((v) => (/[";\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(';')}\r\n`;
}

/** The first worksheet of an XLSX file as CSV text (UTF-8, `;`). */
export async function* xlsxAsCsv(file: string): AsyncGenerator<Buffer> {
  const stream = createReadStream(file);
  try {
    const reader = new ExcelJS.stream.xlsx.WorkbookReader(stream, {
      worksheets: 'emit',
      sharedStrings: 'cache',
      // Styles tell a date cell from a number cell.
      styles: 'cache',
      hyperlinks: 'ignore',
      entries: 'ignore',
    });
    for await (const worksheet of reader) {
      for await (const row of worksheet as AsyncIterable<ExcelJS.Row>) {
        // row.values is 1-based and sparse.
        const values = (row.values as ExcelJS.CellValue[]).slice(1);
        const cells = Array.from({ length: values.length }, (_, i) => cellText(values[i]).replace(/\u0000/g, ''));
        yield Buffer.from(csvLine(cells), 'utf8');
      }
      return; // the first sheet only
    }
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError(400, 'import_file_malformed', `The XLSX file could not be read: ${String((error as Error)?.message ?? error).slice(0, 200)}`);
  } finally {
    stream.destroy();
  }
}

/**
 * What the import reads from an uploaded file: the bytes of a CSV, or the CSV text of an XLSX
 * (then the encoding and the delimiter are ours: UTF-8 and `;`, whatever the request said).
 */
export async function importSource(file: string, options: ImportOptions): Promise<{ source: AsyncIterable<Buffer>; options: ImportOptions; format: 'csv' | 'xlsx' }> {
  const xlsx = await isZipFile(file);
  const source: AsyncIterable<Buffer> = xlsx ? xlsxAsCsv(file) : createReadStream(file);
  return { source, format: xlsx ? 'xlsx' : 'csv', options: xlsx ? { ...options, encoding: 'utf-8', delimiter: ';' } : options };
}
