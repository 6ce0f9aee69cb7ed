import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';
import { escapeHtml } from '../http/html.js';

/**
 * Print-ready materials with the program's join QR code (issue #15, item 5): what the business this
 * product is modelled on printed in its first week — posters, table tents and stickers. One layout
 * description per format is drawn twice: as PDF (pdfkit, fonts embedded and subset, the QR code as
 * vector squares so it stays sharp at any print size) and as SVG (for a designer's tools).
 *
 * Everything is in millimetres here and converted at the edges (PDF points, SVG user units = mm).
 */

export const MATERIAL_FORMATS = ['poster-a4', 'poster-a5', 'table-tent', 'stickers'] as const;
export type MaterialFormat = (typeof MATERIAL_FORMATS)[number];

export interface MaterialInput {
  format: MaterialFormat;
  /** The program's name, shown as the heading. */
  programName: string;
  backgroundColor: string;
  foregroundColor: string;
  /** The program's logo (PNG) when uploaded; drawn on the colour band. */
  logoPng?: Buffer | null;
  /** "Your loyalty card — on your phone". */
  headline: string;
  /** The welcome offer: "1 000 points for joining". Empty: left out. */
  offer: string;
  /** "Point your camera at the code". */
  instruction: string;
  /** "Apple Wallet · Google Wallet". */
  footnote: string;
  /** The link the QR code opens (the join page, with the staff member or source tag). */
  joinUrl: string;
}

const require = createRequire(import.meta.url);
// DejaVu Sans: Cyrillic and Latin in one family (pdfkit's built-in Helvetica is WinAnsi only and
// would print Russian as garbage). pdfkit embeds only the glyphs used.
// Read once: the files are 700 KB each and every document embeds a subset of them.
let fonts: { regular: Buffer; bold: Buffer } | undefined;
function fontFiles() {
  fonts ??= {
    regular: readFileSync(require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf')),
    bold: readFileSync(require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf')),
  };
  return fonts;
}

const MM_TO_PT = 72 / 25.4;

/** Page size in mm, and the panels (each a complete small poster) placed on it. */
interface Panel {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Drawn upside down: the far side of a folded table tent reads the right way up. */
  rotated?: boolean;
  /** A sticker: compact content, a thin cut line around it. */
  compact?: boolean;
}
interface Sheet {
  width: number;
  height: number;
  panels: Panel[];
}

export function sheetOf(format: MaterialFormat): Sheet {
  switch (format) {
    case 'poster-a4':
      return { width: 210, height: 297, panels: [{ x: 0, y: 0, width: 210, height: 297 }] };
    case 'poster-a5':
      return { width: 148, height: 210, panels: [{ x: 0, y: 0, width: 148, height: 210 }] };
    case 'table-tent':
      // A4 landscape folded along the middle: two A5-landscape faces, the top one upside down so
      // both read correctly once the sheet stands as a tent.
      return {
        width: 297,
        height: 210,
        panels: [
          { x: 0, y: 0, width: 297, height: 105, rotated: true },
          { x: 0, y: 105, width: 297, height: 105 },
        ],
      };
    case 'stickers': {
      // A4 sheet of six 90 × 90 mm stickers (2 × 3) with 10 mm margins and gutters.
      const panels: Panel[] = [];
      for (let row = 0; row < 3; row++) for (let col = 0; col < 2; col++) panels.push({ x: 10 + col * 100, y: 8.5 + row * 95, width: 90, height: 90, compact: true });
      return { width: 210, height: 297, panels };
    }
  }
}

/** The QR code's modules (true = dark), with no quiet zone (the layout leaves white around it). */
export function qrModules(text: string): boolean[][] {
  const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const size = qr.modules.size;
  const rows: boolean[][] = [];
  for (let y = 0; y < size; y++) {
    const row: boolean[] = [];
    for (let x = 0; x < size; x++) row.push(Boolean(qr.modules.get(x, y)));
    rows.push(row);
  }
  return rows;
}

/** What a panel holds, in mm relative to the panel: one layout shared by PDF and SVG. */
interface Block {
  kind: 'band' | 'logo' | 'text' | 'qr' | 'cut';
  x: number;
  y: number;
  width: number;
  height: number;
  text?: string;
  /** Font size in points (both outputs). */
  size?: number;
  bold?: boolean;
  color?: string;
}

function layoutPanel(panel: Panel, input: MaterialInput, hasLogo: boolean): Block[] {
  const { width: w, height: h } = panel;
  const blocks: Block[] = [];
  const ink = '#1a1a1a';
  if (panel.compact) {
    // Sticker: name on a band, the code, one line of offer.
    const band = h * 0.2;
    blocks.push({ kind: 'cut', x: 0, y: 0, width: w, height: h });
    blocks.push({ kind: 'band', x: 0, y: 0, width: w, height: band, color: input.backgroundColor });
    blocks.push({ kind: 'text', x: 4, y: band / 2 - 3, width: w - 8, height: 7, text: input.programName, size: 12, bold: true, color: input.foregroundColor });
    const qr = Math.min(w, h) * 0.56;
    blocks.push({ kind: 'qr', x: (w - qr) / 2, y: band + 4, width: qr, height: qr });
    if (input.offer) blocks.push({ kind: 'text', x: 4, y: band + qr + 7, width: w - 8, height: 8, text: input.offer, size: 10, bold: true, color: ink });
    return blocks;
  }
  if (w > h) {
    // A table-tent face (landscape): text on the left, the code on the right.
    const band = h * 0.22;
    blocks.push({ kind: 'band', x: 0, y: 0, width: w, height: band, color: input.backgroundColor });
    if (hasLogo) blocks.push({ kind: 'logo', x: 10, y: band * 0.15, width: 60, height: band * 0.7 });
    blocks.push({ kind: 'text', x: hasLogo ? 75 : 10, y: band / 2 - 4, width: w - (hasLogo ? 85 : 20), height: 9, text: input.programName, size: 20, bold: true, color: input.foregroundColor });
    const qr = h - band - 14;
    blocks.push({ kind: 'qr', x: w - qr - 12, y: band + 7, width: qr, height: qr });
    const textWidth = w - qr - 34;
    blocks.push({ kind: 'text', x: 12, y: band + 10, width: textWidth, height: 22, text: input.headline, size: 20, bold: true, color: ink });
    if (input.offer) blocks.push({ kind: 'text', x: 12, y: band + 36, width: textWidth, height: 14, text: input.offer, size: 18, bold: true, color: input.backgroundColor });
    blocks.push({ kind: 'text', x: 12, y: band + 54, width: textWidth, height: 10, text: input.instruction, size: 12, color: ink });
    blocks.push({ kind: 'text', x: 12, y: h - 10, width: textWidth, height: 6, text: input.footnote, size: 9, color: '#555555' });
    return blocks;
  }
  // Posters (portrait): band with logo and name, headline, offer, the code, instruction, link.
  const k = w / 210; // A5 is the A4 layout scaled
  const band = 52 * k;
  blocks.push({ kind: 'band', x: 0, y: 0, width: w, height: band, color: input.backgroundColor });
  if (hasLogo) blocks.push({ kind: 'logo', x: 15 * k, y: 8 * k, width: w - 30 * k, height: 20 * k });
  blocks.push({ kind: 'text', x: 15 * k, y: (hasLogo ? 32 : 18) * k, width: w - 30 * k, height: 14 * k, text: input.programName, size: 28 * k, bold: true, color: input.foregroundColor });
  blocks.push({ kind: 'text', x: 15 * k, y: band + 14 * k, width: w - 30 * k, height: 30 * k, text: input.headline, size: 30 * k, bold: true, color: ink });
  if (input.offer) blocks.push({ kind: 'text', x: 15 * k, y: band + 46 * k, width: w - 30 * k, height: 20 * k, text: input.offer, size: 26 * k, bold: true, color: input.backgroundColor });
  const qr = 110 * k;
  blocks.push({ kind: 'qr', x: (w - qr) / 2, y: band + 70 * k, width: qr, height: qr });
  blocks.push({ kind: 'text', x: 15 * k, y: band + 186 * k, width: w - 30 * k, height: 14 * k, text: input.instruction, size: 16 * k, color: ink });
  blocks.push({ kind: 'text', x: 15 * k, y: h - 22 * k, width: w - 30 * k, height: 6 * k, text: input.footnote, size: 11 * k, color: '#555555' });
  blocks.push({ kind: 'text', x: 15 * k, y: h - 14 * k, width: w - 30 * k, height: 6 * k, text: input.joinUrl, size: 9 * k, color: '#555555' });
  return blocks;
}

/** Dark modules merged into horizontal runs: fewer shapes, the same picture. */
function qrRuns(modules: boolean[][]): Array<{ x: number; y: number; length: number }> {
  const runs: Array<{ x: number; y: number; length: number }> = [];
  modules.forEach((row, y) => {
    let start = -1;
    for (let x = 0; x <= row.length; x++) {
      if (x < row.length && row[x]) {
        if (start < 0) start = x;
      } else if (start >= 0) {
        runs.push({ x: start, y, length: x - start });
        start = -1;
      }
    }
  });
  return runs;
}

export async function renderMaterialPdf(input: MaterialInput): Promise<Buffer> {
  const sheet = sheetOf(input.format);
  const modules = qrModules(input.joinUrl);
  const runs = qrRuns(modules);
  const doc = new PDFDocument({
    size: [sheet.width * MM_TO_PT, sheet.height * MM_TO_PT],
    margin: 0,
    // Fixed metadata dates: the same input renders the same bytes, so responses can be cached.
    info: { Title: `${input.programName}: ${input.format}`, Producer: 'walletcards', Creator: 'walletcards', CreationDate: new Date(0), ModDate: new Date(0) },
    autoFirstPage: true,
  });
  doc.registerFont('regular', fontFiles().regular);
  doc.registerFont('bold', fontFiles().bold);
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const pt = (mm: number) => mm * MM_TO_PT;
  for (const panel of sheet.panels) {
    doc.save();
    if (panel.rotated) doc.rotate(180, { origin: [pt(panel.x + panel.width / 2), pt(panel.y + panel.height / 2)] });
    doc.translate(pt(panel.x), pt(panel.y));
    for (const block of layoutPanel(panel, input, Boolean(input.logoPng))) {
      if (block.kind === 'band') {
        doc.rect(pt(block.x), pt(block.y), pt(block.width), pt(block.height)).fill(block.color!);
      } else if (block.kind === 'cut') {
        doc.roundedRect(pt(block.x), pt(block.y), pt(block.width), pt(block.height), pt(4)).lineWidth(0.5).dash(3, { space: 3 }).stroke('#999999').undash();
      } else if (block.kind === 'logo' && input.logoPng) {
        doc.image(input.logoPng, pt(block.x), pt(block.y), { fit: [pt(block.width), pt(block.height)], align: 'center', valign: 'center' });
      } else if (block.kind === 'text') {
        doc
          .font(block.bold ? 'bold' : 'regular')
          .fontSize(block.size!)
          .fillColor(block.color!)
          .text(block.text!, pt(block.x), pt(block.y), { width: pt(block.width), height: pt(block.height), align: 'center', ellipsis: true, lineGap: 0 });
      } else if (block.kind === 'qr') {
        const cell = block.width / modules.length;
        for (const run of runs) doc.rect(pt(block.x + run.x * cell), pt(block.y + run.y * cell), pt(run.length * cell) + 0.05, pt(cell) + 0.05);
        doc.fill('#000000');
      }
    }
    doc.restore();
  }
  doc.end();
  return done;
}

export async function renderMaterialSvg(input: MaterialInput): Promise<string> {
  const sheet = sheetOf(input.format);
  const modules = qrModules(input.joinUrl);
  const runs = qrRuns(modules);
  const parts: string[] = [];
  const logo = input.logoPng ? `data:image/png;base64,${input.logoPng.toString('base64')}` : null;
  for (const panel of sheet.panels) {
    const transform = panel.rotated
      ? `rotate(180 ${panel.x + panel.width / 2} ${panel.y + panel.height / 2}) translate(${panel.x} ${panel.y})`
      : `translate(${panel.x} ${panel.y})`;
    parts.push(`<g transform="${transform}">`);
    for (const block of layoutPanel(panel, input, Boolean(logo))) {
      if (block.kind === 'band') parts.push(`<rect x="${n(block.x)}" y="${n(block.y)}" width="${n(block.width)}" height="${n(block.height)}" fill="${escapeHtml(block.color!)}"/>`);
      else if (block.kind === 'cut')
        parts.push(`<rect x="0" y="0" width="${n(block.width)}" height="${n(block.height)}" rx="4" fill="none" stroke="#999999" stroke-width="0.2" stroke-dasharray="1 1"/>`);
      else if (block.kind === 'logo' && logo)
        parts.push(`<image x="${n(block.x)}" y="${n(block.y)}" width="${n(block.width)}" height="${n(block.height)}" preserveAspectRatio="xMidYMid meet" href="${logo}"/>`);
      else if (block.kind === 'text') {
        const size = block.size! / MM_TO_PT; // pt → mm (user units)
        const lines = wrapEstimate(block.text!, block.width, size, Math.max(1, Math.floor(block.height / (size * 1.2))));
        const spans = lines.map((line, i) => `<tspan x="${n(block.x + block.width / 2)}" dy="${i === 0 ? n(size) : n(size * 1.2)}">${escapeHtml(line)}</tspan>`).join('');
        parts.push(`<text y="${n(block.y)}" font-size="${n(size)}" font-weight="${block.bold ? 700 : 400}" fill="${escapeHtml(block.color!)}" text-anchor="middle">${spans}</text>`);
      } else if (block.kind === 'qr') {
        const cell = block.width / modules.length;
        const path = runs.map((run) => `M${n(block.x + run.x * cell)} ${n(block.y + run.y * cell)}h${n(run.length * cell)}v${n(cell)}h${n(-run.length * cell)}z`).join('');
        parts.push(`<path d="${path}" fill="#000000" shape-rendering="crispEdges" data-qr="${escapeHtml(input.joinUrl)}"/>`);
      }
    }
    parts.push('</g>');
  }
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${sheet.width}mm" height="${sheet.height}mm" viewBox="0 0 ${sheet.width} ${sheet.height}" font-family="'DejaVu Sans', 'PT Sans', Arial, sans-serif">\n` +
    `<title>${escapeHtml(input.programName)}</title>\n<rect width="100%" height="100%" fill="#ffffff"/>\n${parts.join('\n')}\n</svg>\n`
  );
}

/**
 * Word wrap for SVG, which has none: an average glyph of DejaVu Sans is about 0.55 em wide, close
 * enough to keep lines inside the panel; the last line ends with "…" when the text does not fit.
 */
function wrapEstimate(text: string, width: number, size: number, maxLines: number): string[] {
  const perLine = Math.max(4, Math.floor(width / (size * 0.55)));
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const next = current ? `${current} ${word}` : word;
    if (next.length <= perLine || !current) current = next;
    else {
      lines.push(current);
      current = word;
    }
  }
  if (current) lines.push(current);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  kept[maxLines - 1] = `${kept[maxLines - 1].slice(0, perLine - 1)}…`;
  return kept;
}

/** Four decimals are a tenth of a micrometre: plenty for print, short to send. */
function n(value: number): string {
  return String(Math.round(value * 10_000) / 10_000);
}
