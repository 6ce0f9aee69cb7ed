/**
 * The full export of a program's cards as CSV (issue #12: "a business is never locked in").
 *
 * Read in pages of EXPORT_PAGE cards by a keyset cursor (`id > last id`, the primary key's order),
 * each page one short query, and written out as it comes: memory holds one page whatever the size of
 * the base, and no transaction stays open for the minutes a quarter of a million rows take to reach
 * a slow client (a server-side cursor would pin a connection and a snapshot for that long, and the
 * embedded database has none). Rows changed during the export appear as they are when their page is
 * read.
 *
 * The file is for a spreadsheet: UTF-8 with a byte-order mark (Excel otherwise reads UTF-8 as the
 * local ANSI code page: Cyrillic names would be garbled), RFC 4180 quoting, CRLF. Text cells a
 * spreadsheet would take for a formula (starting with = + - @, tab or CR) get a leading apostrophe
 * (CSV injection, OWASP): a holder's name is whatever they typed on the join page.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';
import { currencyDigits } from '../cabinet/i18n.js';
import { majorUnits } from '../economics/csv.js';

export const EXPORT_PAGE = 1000;
export const BOM = '\uFEFF';

type Cell = string | number | boolean | null | undefined;

/** One CSV cell: numbers as numbers; text guarded against formulas and quoted when it must be. */
export function csvCell(value: Cell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  const guarded = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(guarded) ? `"${guarded.replace(/"/g, '""')}"` : guarded;
}

export const csvLine = (cells: Cell[]) => `${cells.map(csvCell).join(',')}\r\n`;

export const CARD_EXPORT_HEADER = [
  'card_id',
  'number',
  // The plastic card's number when the card came in by an import (docs/import.md).
  'external_number',
  'holder_name',
  'phone',
  'email',
  'birthday',
  'tier',
  'balance',
  'pending_points',
  'lifetime_spend',
  'marketing_consent',
  'consent_at',
  'enrolled_at',
  'status',
  'apple_devices',
  'google_saved',
  'last_purchase_at',
  'card_page_url',
];

interface ExportRow {
  id: string;
  number: string;
  external_number: string | null;
  holder_name: string;
  phone: string;
  email: string | null;
  birthday: string | null;
  tier: string;
  balance: string | number;
  pending_points: string | number;
  lifetime_spend: string | number;
  consent: boolean;
  consent_at: Date | string | null;
  created_at: Date | string;
  status: string;
  public_token: string;
  apple_devices: string | number;
  google_saved: boolean;
  last_purchase_at: Date | string | null;
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/**
 * One page of the program's cards after `afterId` (keyset), with their wallet state and last purchase.
 * `withoutWallet`: only active cards on no Apple device and not saved in Google Wallet (invitations).
 */
async function exportPage(db: Db, programId: string, passTypeIdentifier: string, afterId: string | null, withoutWallet = false): Promise<ExportRow[]> {
  const { rows } = await sql<ExportRow>`
    SELECT c.id, c.number, c.external_number, c.holder_name, c.phone, c.email, to_char(c.birthday, 'YYYY-MM-DD') AS birthday, c.tier, c.balance,
      c.pending_points, c.lifetime_spend, c.consent, c.consent_at, c.created_at, c.status, c.public_token,
      (SELECT count(*) FROM apple_registration r WHERE r.pass_type_identifier = ${passTypeIdentifier} AND r.serial_number = c.apple_serial) AS apple_devices,
      EXISTS (SELECT 1 FROM google_object g WHERE g.card_id = c.id AND g.saved) AS google_saved,
      (SELECT max(p.created_at) FROM purchase p WHERE p.card_id = c.id AND p.status = 'completed') AS last_purchase_at
    FROM card c
    WHERE c.program_id = ${programId} ${afterId === null ? sql`` : sql`AND c.id > ${afterId}`}
      ${
        withoutWallet
          ? sql`AND c.status = 'active'
            AND NOT EXISTS (SELECT 1 FROM apple_registration r WHERE r.pass_type_identifier = ${passTypeIdentifier} AND r.serial_number = c.apple_serial)
            AND NOT EXISTS (SELECT 1 FROM google_object g WHERE g.card_id = c.id AND g.saved)`
          : sql``
      }
    ORDER BY c.id
    LIMIT ${EXPORT_PAGE}
  `.execute(db);
  return rows;
}

/** The CSV, chunk by chunk (a page of rows per chunk), for `Readable.from`. */
export async function* cardExportCsv(
  db: Db,
  program: ProgramRow,
  options: { publicUrl: string; passTypeIdentifier: string },
): AsyncGenerator<string> {
  const digits = currencyDigits(program.currency);
  yield BOM + csvLine(CARD_EXPORT_HEADER);
  let after: string | null = null;
  for (;;) {
    const rows = await exportPage(db, program.id, options.passTypeIdentifier, after);
    if (rows.length === 0) return;
    let chunk = '';
    for (const row of rows) {
      const erased = row.status === 'erased';
      chunk += csvLine([
        row.id,
        row.number,
        row.external_number,
        erased ? null : row.holder_name,
        erased ? null : row.phone,
        row.email,
        row.birthday,
        row.tier,
        Number(row.balance),
        Number(row.pending_points),
        majorUnits(Number(row.lifetime_spend), digits),
        row.consent,
        iso(row.consent_at),
        iso(row.created_at),
        row.status,
        Number(row.apple_devices),
        row.google_saved,
        iso(row.last_purchase_at),
        erased ? null : `${options.publicUrl}/c/${row.public_token}`,
      ]);
    }
    yield chunk;
    if (rows.length < EXPORT_PAGE) return;
    after = rows[rows.length - 1]!.id;
  }
}

export const INVITE_LINKS_HEADER = ['card_id', 'number', 'holder_name', 'phone', 'email', 'marketing_consent', 'consent_at', 'enrolled_at', 'install_url', 'qr_url'];

/**
 * The invitation list (issue #12, item 3): every active card not installed in any wallet with its
 * personal install link (the card page, which offers the right wallet for the device) and the URL of
 * that link's QR code (for receipts and letters). `marketing_consent` says whether the holder agreed
 * to marketing: a business sending the links with its own tool must respect it.
 */
export async function* inviteLinksCsv(db: Db, program: ProgramRow, options: { publicUrl: string; passTypeIdentifier: string }): AsyncGenerator<string> {
  yield BOM + csvLine(INVITE_LINKS_HEADER);
  let after: string | null = null;
  for (;;) {
    const rows = await exportPage(db, program.id, options.passTypeIdentifier, after, true);
    if (rows.length === 0) return;
    let chunk = '';
    for (const row of rows) {
      const page = `${options.publicUrl}/c/${row.public_token}`;
      chunk += csvLine([row.id, row.number, row.holder_name, row.phone, row.email, row.consent, iso(row.consent_at), iso(row.created_at), page, `${page}/qr.png`]);
    }
    yield chunk;
    if (rows.length < EXPORT_PAGE) return;
    after = rows[rows.length - 1]!.id;
  }
}
