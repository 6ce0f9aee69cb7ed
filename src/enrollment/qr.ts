import QRCode from 'qrcode';
import { escapeHtml } from '../http/html.js';

/** Print sizes for the QR endpoints, in pixels (PNG) or user units (SVG width/height). */
export const QR_SIZE = { min: 128, max: 4096, default: 1024 } as const;

// Level M survives a crumpled poster or a scuffed sticker (≈15 % damage) and keeps the symbol small;
// 4 modules of quiet zone is what the standard asks for.
const OPTIONS = { errorCorrectionLevel: 'M', margin: 4 } as const;

/** A standalone SVG document with explicit width/height, for print. */
export function qrSvgDocument(text: string, size: number): Promise<string> {
  return QRCode.toString(text, { ...OPTIONS, type: 'svg', width: size });
}

export function qrPng(text: string, size: number): Promise<Buffer> {
  return QRCode.toBuffer(text, { ...OPTIONS, type: 'png', width: size });
}

/** An SVG to inline into a page: scales with CSS, announced to screen readers by `label`. */
export async function qrSvgInline(text: string, label: string, className = 'qr'): Promise<string> {
  const svg = await QRCode.toString(text, { ...OPTIONS, margin: 2, type: 'svg' });
  return svg.replace(/^<svg /, `<svg class="${escapeHtml(className)}" role="img" aria-label="${escapeHtml(label)}" focusable="false" `);
}
