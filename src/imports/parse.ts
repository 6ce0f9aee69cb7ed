/**
 * Reading a card base exported from a POS or accounting system (1C, iiko, r_keeper, Evotor, Excel):
 * CSV with `,` or `;` (detected), UTF-8 with or without BOM or Windows-1251 (detected), quoted fields
 * with line breaks, Russian or English headers. Streaming: bytes → iconv-lite → csv-parse, one record
 * at a time, so memory does not grow with the file (only the sets of phones and card numbers seen,
 * for the duplicate checks).
 *
 * `validateRow` turns one record into the normalised row the apply step writes, or into issues
 * (row, column, value, reason) for the report. Nothing here touches the database.
 */
import { Readable, Transform, pipeline } from 'node:stream';
import { parse as parseCsv, CsvError } from 'csv-parse';
import iconv from 'iconv-lite';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { AppError } from '../http/errors.js';
import { normalizeScannedValue } from '../loyalty/card-number.js';
import type { LoyaltyRules } from '../loyalty/rules.js';

export const IMPORT_FIELDS = [
  'cardNumber',
  'phone',
  'name',
  'email',
  'birthday',
  'balance',
  'tier',
  'lifetimeSpend',
  'consent',
  'consentAt',
  'enrolledAt',
  'store',
  'notes',
] as const;
export type ImportField = (typeof IMPORT_FIELDS)[number];

export const IMPORT_ENCODINGS = ['utf-8', 'windows-1251'] as const;
export type ImportEncoding = (typeof IMPORT_ENCODINGS)[number];

export const IMPORT_REASONS = [
  'missing_identity',
  'missing_phone',
  'invalid_phone',
  'duplicate_phone',
  'duplicate_card_number',
  'invalid_card_number',
  'negative_balance',
  'invalid_amount',
  'unknown_tier',
  'invalid_date',
  'invalid_email',
  'invalid_consent',
  'value_too_long',
  'wrong_column_count',
  // Found at apply time, against the cards already in the program:
  'phone_taken',
] as const;
export type ImportReason = (typeof IMPORT_REASONS)[number];

export interface ImportIssue {
  /** The row as a spreadsheet numbers it: the header is row 1. */
  row: number;
  /** The column's header as written in the file (or the field name when the column is absent). */
  column: string;
  value: string;
  reason: ImportReason;
}

/** A valid row, normalised: what the apply step writes. */
export interface ImportRow {
  cardNumber?: string;
  phone?: string;
  name: string;
  email?: string;
  /** YYYY-MM-DD */
  birthday?: string;
  /** Points (whole). */
  balance?: number;
  /** A tier code of the program. */
  tier?: string;
  /** Minor units. */
  lifetimeSpend?: number;
  consent?: boolean;
  /** ISO date-time */
  consentAt?: string;
  enrolledAt?: string;
  store?: string;
  notes?: string;
}

/**
 * Header names as real exports write them (normalised: lower case, ё → е, punctuation → spaces).
 * Matched whole; the first column that matches a field wins, later ones are ignored (and listed).
 */
const HEADER_NAMES: Record<ImportField, string[]> = {
  cardNumber: [
    'номер карты', 'номер карты клиента', 'карта', 'номер', 'штрихкод', 'штрих код', 'штрихкод карты', 'код карты', 'номер дисконтной карты',
    'дисконтная карта', 'card number', 'card', 'card no', 'card id', 'barcode', 'number',
  ],
  phone: ['телефон', 'мобильный телефон', 'мобильный', 'номер телефона', 'тел', 'сотовый', 'phone', 'phone number', 'mobile', 'telephone'],
  name: ['имя', 'фио', 'ф и о', 'клиент', 'покупатель', 'владелец', 'имя клиента', 'name', 'full name', 'holder', 'customer', 'holder name'],
  email: ['e mail', 'email', 'почта', 'электронная почта', 'эл почта', 'адрес электронной почты', 'mail'],
  birthday: ['дата рождения', 'день рождения', 'др', 'birthday', 'birth date', 'date of birth', 'dob'],
  balance: ['баланс', 'бонусы', 'бонусный баланс', 'баллы', 'остаток бонусов', 'остаток баллов', 'сумма бонусов', 'бонусов', 'balance', 'points', 'bonus', 'bonuses'],
  tier: ['уровень', 'статус', 'уровень карты', 'категория', 'tier', 'level', 'status'],
  lifetimeSpend: ['сумма покупок', 'сумма продаж', 'накопленная сумма', 'сумма накоплений', 'оборот', 'lifetime spend', 'total spend', 'spend', 'total purchases'],
  consent: ['согласие', 'согласие на рассылку', 'согласие на рассылки', 'рассылка', 'consent', 'marketing consent', 'subscribed'],
  consentAt: ['дата согласия', 'дата согласия на рассылку', 'consent date', 'consent at', 'consented at'],
  enrolledAt: ['дата регистрации', 'дата выдачи', 'дата выдачи карты', 'дата создания', 'зарегистрирован', 'enrolled at', 'enrolled', 'registered', 'registration date', 'created at', 'issued at'],
  store: ['магазин', 'точка', 'торговая точка', 'филиал', 'место выдачи', 'store', 'shop', 'location', 'store id'],
  notes: ['примечание', 'комментарий', 'заметки', 'notes', 'note', 'comment', 'comments'],
};

export function normalizeHeader(header: string): string {
  return header
    .toLowerCase()
    .replace(/ё/g, 'е')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

const FIELD_BY_HEADER = new Map<string, ImportField>();
for (const field of IMPORT_FIELDS) for (const name of HEADER_NAMES[field]) FIELD_BY_HEADER.set(normalizeHeader(name), field);
// The field names themselves are accepted too (a file written for this service).
for (const field of IMPORT_FIELDS) FIELD_BY_HEADER.set(normalizeHeader(field), field);

export interface ColumnMapping {
  /** Column index → field. */
  fields: Map<number, ImportField>;
  /** Field → header as written (for the report and GET /imports/{id}). */
  headers: Partial<Record<ImportField, string>>;
  /** Headers of columns nothing reads. */
  ignored: string[];
}

/**
 * Maps the header row to fields. `explicit` (field → header as written in the file) wins over the
 * recognised names; a header it names that is not in the file is an error (422).
 */
export function mapColumns(header: string[], explicit: Partial<Record<ImportField, string>> = {}): ColumnMapping {
  const fields = new Map<number, ImportField>();
  const headers: Partial<Record<ImportField, string>> = {};
  const normalized = header.map(normalizeHeader);
  for (const [field, name] of Object.entries(explicit) as Array<[ImportField, string]>) {
    const index = normalized.indexOf(normalizeHeader(name));
    if (index < 0) {
      throw new AppError(422, 'import_mapping_column_missing', `The mapping names a column "${name.slice(0, 100)}" for ${field} that the file does not have`, {
        field,
        header: header.slice(0, 100).map((h) => h.slice(0, 100)),
      });
    }
    fields.set(index, field);
    headers[field] = header[index];
  }
  normalized.forEach((name, index) => {
    if (fields.has(index)) return;
    const field = FIELD_BY_HEADER.get(name);
    if (field && headers[field] === undefined) {
      fields.set(index, field);
      headers[field] = header[index];
    }
  });
  const ignored = header.filter((_h, index) => !fields.has(index)).map((h) => h.slice(0, 100));
  if (headers.cardNumber === undefined && headers.phone === undefined) {
    throw new AppError(
      422,
      'import_columns_unrecognised',
      'The file has neither a card number column nor a phone column (recognised headers: "номер карты"/"card number", "телефон"/"phone"; ' +
        'or pass a mapping). If the header looks garbled, the encoding is wrong: pass encoding=windows-1251 or utf-8',
      { header: header.slice(0, 100).map((h) => h.slice(0, 100)), recognised: headers },
    );
  }
  return { fields, headers, ignored };
}

/** UTF-8 when the bytes are valid UTF-8 (or start with its BOM), else Windows-1251 (the other encoding Russian exports use). */
export function detectEncoding(sample: Buffer, complete: boolean): ImportEncoding {
  if (sample.length >= 3 && sample[0] === 0xef && sample[1] === 0xbb && sample[2] === 0xbf) return 'utf-8';
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // A sample cut mid-file may end inside a multi-byte character: try without up to 3 trailing bytes.
  for (let cut = 0; cut <= (complete ? 0 : 3) && cut < sample.length; cut++) {
    try {
      decoder.decode(sample.subarray(0, sample.length - cut));
      return 'utf-8';
    } catch {
      // try a shorter prefix
    }
  }
  return 'windows-1251';
}

/** The delimiter of the header line: the most frequent of `;`, `,` and tab outside quotes (ties → `;`, 1C's default). */
export function detectDelimiter(firstLine: string): ';' | ',' | '\t' {
  const counts = { ';': 0, ',': 0, '\t': 0 };
  let quoted = false;
  for (const ch of firstLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch in counts) counts[ch as keyof typeof counts]++;
  }
  if (counts['\t'] > counts[';'] && counts['\t'] > counts[',']) return '\t';
  return counts[','] > counts[';'] ? ',' : ';';
}

export class FileTooLarge extends AppError {
  constructor(limit: number) {
    super(413, 'import_file_too_large', `The file is larger than the import limit of ${limit} bytes (IMPORT_MAX_BYTES)`, { limit });
  }
}

export interface OpenOptions {
  maxBytes: number;
  encoding?: ImportEncoding;
  delimiter?: ';' | ',' | '\t';
  mapping?: Partial<Record<ImportField, string>>;
}

export interface OpenedFile {
  encoding: ImportEncoding;
  delimiter: ';' | ',' | '\t';
  header: string[];
  columns: ColumnMapping;
  /** Data records with their spreadsheet row number (the header is row 1; a quoted line break does not add one). */
  records: AsyncIterable<{ row: number; values: string[] }>;
}

const SAMPLE_BYTES = 64 * 1024;
/** One field or record larger than this is not a card base: malformed (and memory stays bounded). */
const MAX_RECORD_BYTES = 64 * 1024;

/**
 * Opens a card-base file: reads a sample to detect the encoding and delimiter, reads the header,
 * maps the columns. Throws AppError 413 (too large), 400 (malformed, empty), 422 (columns).
 */
export async function openImportFile(source: AsyncIterable<Buffer | string>, options: OpenOptions): Promise<OpenedFile> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  let ended = false;
  while (headBytes < SAMPLE_BYTES) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    head.push(chunk);
    headBytes += chunk.length;
    if (headBytes > options.maxBytes) throw new FileTooLarge(options.maxBytes);
  }
  const sample = Buffer.concat(head);
  if (sample.length === 0) throw new AppError(400, 'import_file_empty', 'The file is empty');
  if (sample.subarray(0, Math.min(sample.length, 8192)).includes(0)) {
    throw new AppError(400, 'import_file_malformed', 'The file is not a text CSV (it has NUL bytes: an XLSX or another binary file?). Save it as CSV');
  }
  const encoding = options.encoding ?? detectEncoding(sample, ended);
  const decodedSample = iconv.decode(sample, encoding);
  const firstLine = decodedSample.split(/\r?\n/, 1)[0] ?? '';
  if (encoding === 'utf-8' && firstLine.includes('\ufffd')) {
    throw new AppError(422, 'import_wrong_encoding', 'The header is not valid UTF-8: the file looks like Windows-1251; pass encoding=windows-1251');
  }
  const delimiter = options.delimiter ?? detectDelimiter(firstLine);

  let total = 0;
  const limit = options.maxBytes;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length;
      if (total > limit) return done(new FileTooLarge(limit));
      done(null, chunk);
    },
  });
  const rest = Readable.from(
    (async function* () {
      yield sample;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      }
    })(),
    { objectMode: false },
  );
  const parser = parseCsv({
    delimiter,
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_empty_values: true,
    trim: true,
    info: true,
    max_record_size: MAX_RECORD_BYTES,
  });
  // Errors anywhere (too large, a decoding or CSV error) end up on the parser, i.e. in the loop below.
  pipeline(rest, counter, iconv.decodeStream(encoding), parser, () => undefined);

  const recordIterator = (parser as AsyncIterable<{ record: string[]; info: { lines: number } }>)[Symbol.asyncIterator]();
  const first = await nextRecord(recordIterator);
  if (!first) throw new AppError(400, 'import_file_empty', 'The file has no header row');
  const header = first.record.map((h) => h.trim());
  const columns = mapColumns(header, options.mapping);
  const records = (async function* () {
    let row = 1;
    for (;;) {
      const next = await nextRecord(recordIterator);
      if (!next) return;
      row++;
      // A NUL inside the file: binary, not a CSV export (and PostgreSQL text cannot hold it).
      if (next.record.some((value) => value.includes('\u0000'))) {
        throw new AppError(400, 'import_file_malformed', `Row ${row} holds a NUL byte: the file is not a text CSV`);
      }
      yield { row, values: next.record };
    }
  })();
  return { encoding, delimiter, header, columns, records };
}

async function nextRecord(iterator: AsyncIterator<{ record: string[]; info: { lines: number } }>) {
  try {
    const next = await iterator.next();
    return next.done ? undefined : next.value;
  } catch (error) {
    if (error instanceof AppError) throw error;
    if (error instanceof CsvError) {
      throw new AppError(400, 'import_file_malformed', `The file is not valid CSV: ${error.message.slice(0, 300)}`, { csvCode: error.code });
    }
    throw new AppError(400, 'import_file_malformed', `The file could not be read: ${String((error as Error)?.message ?? error).slice(0, 300)}`);
  }
}

// ---- Values -----------------------------------------------------------------------------------------

const COUNTRY_BY_CURRENCY: Record<string, CountryCode> = { RUB: 'RU', KZT: 'KZ', BYN: 'BY', UZS: 'UZ', USD: 'US', GBP: 'GB' };

export function parsePhone(raw: string, currency: string): string | undefined {
  const parsed = parsePhoneNumberFromString(raw, COUNTRY_BY_CURRENCY[currency]);
  return parsed && parsed.isValid() ? parsed.number : undefined;
}

/**
 * An amount as exports write it: `1 234,50`, `1234.50`, `1,234.50`, `1.234,50`, `150 ₽`. A lone
 * comma or dot is the decimal separator (Russian exports write `150,5`). NaN when it is not a number.
 */
export function parseAmount(raw: string): number {
  let s = raw.replace(/[\s\u00a0\u202f']/g, '').replace(/(₽|руб\.?|р\.?|rub)$/i, '');
  let sign = 1;
  if (/^[-\u2212]/.test(s)) {
    sign = -1;
    s = s.slice(1);
  }
  if (/^\d+([.,]\d+)?$/.test(s)) return sign * Number(s.replace(',', '.'));
  if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(s)) return sign * Number(s.replace(/,/g, ''));
  if (/^\d{1,3}(\.\d{3})+(,\d+)?$/.test(s)) return sign * Number(s.replace(/\./g, '').replace(',', '.'));
  return Number.NaN;
}

function validDay(year: number, month: number, day: number): boolean {
  if (year < 1900 || year > 2999 || month < 1 || month > 12 || day < 1) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * A date as exports write it: `31.12.1990`, `31/12/1990`, `31.12.90`, `1990-12-31`, optionally with a
 * time (`31.12.2020 14:30`, `2020-12-31T14:30:00Z`). Returns { day: 'YYYY-MM-DD', at: ISO } or undefined.
 * Times without a zone are read as UTC (the import keeps dates; the hour rarely matters).
 */
export function parseDate(raw: string, now: Date): { day: string; at: string } | undefined {
  const s = raw.trim();
  let year: number, month: number, day: number;
  let time = 'T00:00:00Z';
  let m = /^(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$/.exec(s);
  if (m) {
    day = Number(m[1]);
    month = Number(m[2]);
    year = Number(m[3]);
    if (m[3]!.length === 2) year += year > now.getUTCFullYear() % 100 ? 1900 : 2000;
    if (m[4] !== undefined) {
      if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59) return undefined;
      time = `T${pad(Number(m[4]))}:${m[5]}:${pad(Number(m[6] ?? 0))}Z`;
    }
  } else {
    m = /^(\d{4})-(\d{2})-(\d{2})(?:([ T])(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(s);
    if (!m) return undefined;
    year = Number(m[1]);
    month = Number(m[2]);
    day = Number(m[3]);
    if (m[5] !== undefined) {
      if (Number(m[5]) > 23 || Number(m[6]) > 59 || Number(m[7] ?? 0) > 59) return undefined;
      const zone = m[8] ? (m[8] === 'Z' ? 'Z' : m[8].length === 5 ? `${m[8].slice(0, 3)}:${m[8].slice(3)}` : m[8]) : 'Z';
      time = `T${m[5]}:${m[6]}:${m[7] ?? '00'}${zone}`;
    }
  }
  if (!validDay(year, month, day)) return undefined;
  const dayText = `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
  const at = new Date(`${dayText}${time}`);
  if (Number.isNaN(at.getTime())) return undefined;
  return { day: dayText, at: at.toISOString() };
}

const YES = new Set(['да', 'д', 'yes', 'y', 'true', '1', '+', 'согласен', 'согласна', 'есть', 'x', 'х', 'v']);
const NO = new Set(['нет', 'н', 'no', 'n', 'false', '0', '-', 'не согласен', 'не согласна']);

export function parseConsent(raw: string): boolean | undefined {
  const s = raw.trim().toLowerCase();
  if (YES.has(s)) return true;
  if (NO.has(s)) return false;
  return undefined;
}

const EMAIL = /^[^\s@"<>()[\],;:]+@[^\s@"<>()[\],;:]+\.[^\s@"<>()[\],;:]+$/;
const CARD_NUMBER = /^[0-9A-Za-z]{1,64}$/;
const MAX_TEXT = { name: 200, email: 254, store: 100, notes: 1000 } as const;

export interface RowContext {
  mode: 'create' | 'update';
  currency: string;
  rules: LoyaltyRules;
  now: Date;
  columns: ColumnMapping;
  headerLength: number;
  /** Phones and card numbers of earlier valid rows (the duplicate checks); updated by validateRow. */
  seenPhones: Set<string | number>;
  seenNumbers: Set<string | number>;
}

/** Tier lookup: by code, or by name in either language (case-insensitive). */
function tierIndex(rules: LoyaltyRules): Map<string, string> {
  const map = new Map<string, string>();
  for (const tier of rules.tiers) {
    map.set(tier.code.toLowerCase(), tier.code);
    const name = tier.name as unknown as { ru?: string; en?: string } | string;
    if (typeof name === 'string') map.set(name.trim().toLowerCase(), tier.code);
    else {
      if (name?.ru) map.set(name.ru.trim().toLowerCase(), tier.code);
      if (name?.en) map.set(name.en.trim().toLowerCase(), tier.code);
    }
  }
  return map;
}
const tierCache = new WeakMap<LoyaltyRules, Map<string, string>>();

/**
 * The key a phone or card number is remembered by for the duplicate checks. Digits-only values of up
 * to 15 digits (every E.164 phone, most plastic numbers) as numbers: a Set of a quarter of a million
 * numbers takes a fraction of the memory of the same strings. Leading zeros would be lost, so those
 * (and anything else) stay strings; a number key never equals a string key.
 */
function compactKey(value: string): string | number {
  const digits = value.startsWith('+') ? value.slice(1) : value;
  return /^[1-9]\d{0,14}$/.test(digits) ? Number(digits) * (value.startsWith('+') ? -1 : 1) : value;
}

/** Validates one record: the normalised row, or the issues that fail it (a row fails whole). */
export function validateRow(row: number, values: string[], ctx: RowContext): { data?: ImportRow; issues: ImportIssue[] } {
  const issues: ImportIssue[] = [];
  const raw: Partial<Record<ImportField, string>> = {};
  for (const [index, field] of ctx.columns.fields) {
    const value = values[index]?.trim();
    if (value) raw[field] = value;
  }
  const col = (field: ImportField) => ctx.columns.headers[field] ?? field;
  const fail = (field: ImportField, reason: ImportReason, value = raw[field] ?? '') =>
    issues.push({ row, column: col(field), value: value.slice(0, 100), reason });

  if (values.length > ctx.headerLength && values.slice(ctx.headerLength).some((v) => v.trim() !== '')) {
    issues.push({ row, column: '', value: `${values.length} fields, header has ${ctx.headerLength}`, reason: 'wrong_column_count' });
  }
  const data: ImportRow = { name: '' };
  if (raw.cardNumber !== undefined) {
    const number = normalizeScannedValue(raw.cardNumber);
    if (!CARD_NUMBER.test(number)) fail('cardNumber', 'invalid_card_number');
    else data.cardNumber = number;
  }
  if (raw.phone !== undefined) {
    const phone = parsePhone(raw.phone, ctx.currency);
    if (!phone) fail('phone', 'invalid_phone');
    else data.phone = phone;
  }
  if (raw.cardNumber === undefined && raw.phone === undefined) {
    issues.push({ row, column: [ctx.columns.headers.cardNumber, ctx.columns.headers.phone].filter(Boolean).join(' / '), value: '', reason: 'missing_identity' });
  } else if (ctx.mode === 'create' && raw.phone === undefined) {
    // A card needs a phone (one card per phone per program); update mode may match by card number alone.
    fail('phone', 'missing_phone');
  }
  if (raw.name !== undefined) {
    if (raw.name.length > MAX_TEXT.name) fail('name', 'value_too_long');
    else data.name = raw.name.replace(/\s+/g, ' ');
  }
  if (raw.email !== undefined) {
    if (raw.email.length > MAX_TEXT.email || !EMAIL.test(raw.email)) fail('email', 'invalid_email');
    else data.email = raw.email.toLowerCase();
  }
  if (raw.birthday !== undefined) {
    const parsed = parseDate(raw.birthday, ctx.now);
    if (!parsed || parsed.at > ctx.now.toISOString()) fail('birthday', 'invalid_date');
    else data.birthday = parsed.day;
  }
  if (raw.balance !== undefined) {
    const amount = parseAmount(raw.balance);
    if (Number.isNaN(amount) || Math.abs(amount) > 1e12) fail('balance', 'invalid_amount');
    else if (amount < 0) fail('balance', 'negative_balance');
    // Points are whole; a balance exported with kopecks (`150,50`) is rounded to the nearest point.
    else data.balance = Math.round(amount);
  }
  if (raw.lifetimeSpend !== undefined) {
    const amount = parseAmount(raw.lifetimeSpend);
    if (Number.isNaN(amount) || amount < 0 || amount > 1e12) fail('lifetimeSpend', 'invalid_amount');
    else data.lifetimeSpend = Math.round(amount * 100);
  }
  if (raw.tier !== undefined) {
    let index = tierCache.get(ctx.rules);
    if (!index) tierCache.set(ctx.rules, (index = tierIndex(ctx.rules)));
    const code = index.get(raw.tier.toLowerCase());
    if (!code) fail('tier', 'unknown_tier');
    else data.tier = code;
  }
  if (raw.consent !== undefined) {
    const consent = parseConsent(raw.consent);
    if (consent === undefined) fail('consent', 'invalid_consent');
    else data.consent = consent;
  }
  for (const field of ['consentAt', 'enrolledAt'] as const) {
    if (raw[field] === undefined) continue;
    const parsed = parseDate(raw[field]!, ctx.now);
    if (!parsed || parsed.at > ctx.now.toISOString()) fail(field, 'invalid_date');
    else data[field] = parsed.at;
  }
  if (data.consentAt && data.consent === undefined) data.consent = true;
  if (raw.store !== undefined) {
    if (raw.store.length > MAX_TEXT.store) fail('store', 'value_too_long');
    else data.store = raw.store;
  }
  if (raw.notes !== undefined) {
    if (raw.notes.length > MAX_TEXT.notes) fail('notes', 'value_too_long');
    else data.notes = raw.notes;
  }
  if (issues.length > 0) return { issues };
  // Duplicates last: a row that fails for another reason does not claim its phone or number.
  const phoneKey = data.phone ? compactKey(data.phone) : undefined;
  const numberKey = data.cardNumber ? compactKey(data.cardNumber) : undefined;
  if (phoneKey !== undefined && ctx.seenPhones.has(phoneKey)) fail('phone', 'duplicate_phone');
  if (numberKey !== undefined && ctx.seenNumbers.has(numberKey)) fail('cardNumber', 'duplicate_card_number');
  if (issues.length > 0) return { issues };
  if (phoneKey !== undefined) ctx.seenPhones.add(phoneKey);
  if (numberKey !== undefined) ctx.seenNumbers.add(numberKey);
  return { data, issues };
}
