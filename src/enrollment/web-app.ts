import { PNG } from 'pngjs';
import type { Executor } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';
import { brandColours } from './pages.js';

/**
 * The pictures of the public pages, drawn with pngjs (no canvas, no fonts): the program's icon
 * (favicon, home-screen icon of the card page's web app manifest) and the 1200 × 630 link preview
 * that messengers show for a shared join or referral link (Open Graph `og:image`; Telegram,
 * WhatsApp and VK read PNG, not SVG). Both are the program's colour with its uploaded logo — the
 * square Google logo for the icon, the pass logo for the preview — or, without one, a card glyph.
 * The words (program name, offer) travel in the meta tags, which every messenger prints.
 */

type Rgb = [number, number, number];

const hexRgb = (hex: string): Rgb => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as Rgb;
const mix = (a: Rgb, b: Rgb, t: number): Rgb => a.map((v, i) => Math.round(v + (b[i] - v) * t)) as Rgb;

function blend(png: PNG, x: number, y: number, rgb: Rgb, alpha: number) {
  if (x < 0 || y < 0 || x >= png.width || y >= png.height || alpha <= 0) return;
  const i = (y * png.width + x) * 4;
  const a = Math.min(alpha, 1);
  for (let c = 0; c < 3; c++) png.data[i + c] = Math.round(png.data[i + c] * (1 - a) + rgb[c] * a);
  png.data[i + 3] = 255;
}

function canvas(width: number, height: number, background: Rgb): PNG {
  const png = new PNG({ width, height, colorType: 2 });
  for (let i = 0; i < width * height; i++) png.data.set([...background, 255], i * 4);
  return png;
}

/** A filled rounded rectangle, edges anti-aliased by the pixel's distance to the outline. */
function roundRect(png: PNG, x0: number, y0: number, w: number, h: number, r: number, rgb: Rgb, alpha = 1) {
  for (let y = Math.floor(y0); y < Math.ceil(y0 + h); y++) {
    for (let x = Math.floor(x0); x < Math.ceil(x0 + w); x++) {
      const cx = Math.min(Math.max(x + 0.5, x0 + r), x0 + w - r);
      const cy = Math.min(Math.max(y + 0.5, y0 + r), y0 + h - r);
      const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy) - r;
      const edge = Math.min(x + 0.5 - x0, x0 + w - x - 0.5, y + 0.5 - y0, y0 + h - y - 0.5);
      const coverage = Math.min(Math.max(0.5 - d, 0), 1) * Math.min(Math.max(edge + 0.5, 0), 1);
      blend(png, x, y, rgb, coverage * alpha);
    }
  }
}

/** Draws `src` into the box (kept in proportion, centred), averaging source pixels (box filter). */
function drawImage(png: PNG, src: PNG, bx: number, by: number, bw: number, bh: number, circle = false) {
  const scale = Math.min(bw / src.width, bh / src.height);
  const w = Math.max(1, Math.round(src.width * scale));
  const h = Math.max(1, Math.round(src.height * scale));
  const ox = Math.round(bx + (bw - w) / 2);
  const oy = Math.round(by + (bh - h) / 2);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (circle && Math.hypot(x + 0.5 - w / 2, y + 0.5 - h / 2) > Math.min(w, h) / 2) continue;
      const sx0 = Math.floor(x / scale);
      const sy0 = Math.floor(y / scale);
      const sx1 = Math.max(sx0 + 1, Math.min(src.width, Math.floor((x + 1) / scale)));
      const sy1 = Math.max(sy0 + 1, Math.min(src.height, Math.floor((y + 1) / scale)));
      let r = 0, g = 0, b = 0, a = 0, n = 0;
      for (let sy = sy0; sy < sy1; sy++) {
        for (let sx = sx0; sx < sx1; sx++) {
          const i = (Math.min(sy, src.height - 1) * src.width + Math.min(sx, src.width - 1)) * 4;
          const pa = src.data[i + 3] / 255;
          r += src.data[i] * pa;
          g += src.data[i + 1] * pa;
          b += src.data[i + 2] * pa;
          a += pa;
          n++;
        }
      }
      if (a > 0) blend(png, ox + x, oy + y, [r / a, g / a, b / a], a / n);
    }
  }
}

/** A loyalty card seen from the front: a rounded card, a band, two lines of "text". */
function cardGlyph(png: PNG, x: number, y: number, w: number, fg: Rgb, bg: Rgb) {
  const h = w * 0.63;
  roundRect(png, x, y, w, h, w * 0.07, fg);
  roundRect(png, x, y + h * 0.2, w, h * 0.16, 0, bg, 0.55);
  roundRect(png, x + w * 0.1, y + h * 0.58, w * 0.45, h * 0.09, h * 0.045, bg, 0.6);
  roundRect(png, x + w * 0.1, y + h * 0.74, w * 0.28, h * 0.09, h * 0.045, bg, 0.6);
}

async function uploaded(executor: Executor, programId: string, names: string[]): Promise<PNG | undefined> {
  const rows = await executor.selectFrom('program_image').select(['name', 'png']).where('program_id', '=', programId).where('name', 'in', names).execute();
  const row = names.map((name) => rows.find((r) => r.name === name)).find(Boolean);
  if (!row) return undefined;
  try {
    return PNG.sync.read(Buffer.from(row.png));
  } catch {
    return undefined; // stored images are normalised PNGs; a bad one costs the logo, not the page
  }
}

export const ICON_SIZES = [180, 192, 512] as const;
export type IconSize = (typeof ICON_SIZES)[number];

/**
 * A square icon: the full square in the program's colour (so it also serves as a "maskable" icon:
 * the picture stays inside the central 80 % safe zone) with the logo, circle-masked like Google's.
 */
export async function drawIcon(executor: Executor, program: ProgramRow, size: IconSize): Promise<Buffer> {
  const brand = brandColours(program.design);
  const bg = hexRgb(brand.background);
  const fg = hexRgb(brand.foreground);
  const png = canvas(size, size, bg);
  const logo = await uploaded(executor, program.id, ['google-logo.png', 'icon@3x.png']);
  if (logo) drawImage(png, logo, size * 0.2, size * 0.2, size * 0.6, size * 0.6, logo.width === logo.height);
  else cardGlyph(png, size * 0.2, size * 0.31, size * 0.6, fg, bg);
  return PNG.sync.write(png, { colorType: 2 });
}

/** The 1200 × 630 link preview: the program's colour, a card in its colours with the logo on it. */
export async function drawPreview(executor: Executor, program: ProgramRow): Promise<Buffer> {
  const brand = brandColours(program.design);
  const bg = hexRgb(brand.background);
  const fg = hexRgb(brand.foreground);
  const png = canvas(1200, 630, mix(bg, fg, 0.12));
  // The card: 640 × 403 (a bank card's proportions), the program's colour, a soft shadow.
  const [x, y, w, h] = [280, 113, 640, 403];
  roundRect(png, x + 6, y + 14, w, h, 36, [0, 0, 0], 0.18);
  roundRect(png, x, y, w, h, 36, bg);
  const logo = await uploaded(executor, program.id, ['logo@3x.png', 'logo@2x.png', 'logo.png', 'google-logo.png']);
  if (logo) drawImage(png, logo, x + 48, y + 48, w - 96, 150);
  else cardGlyph(png, x + 48, y + 56, 190, fg, bg);
  // "Balance" and "number" lines in the card's text colour, like the pass's fields.
  roundRect(png, x + 48, y + h - 130, 220, 30, 15, fg, 0.85);
  roundRect(png, x + 48, y + h - 80, 330, 24, 12, fg, 0.5);
  return PNG.sync.write(png, { colorType: 2 });
}

/** Drawn pictures by program, version and kind: a shared link is previewed again and again. */
export class WebAppImages {
  private readonly cache = new Map<string, Buffer>();
  constructor(private readonly max = 64) {}

  async get(program: ProgramRow, kind: 'preview' | IconSize, draw: () => Promise<Buffer>): Promise<Buffer> {
    // updated_at changes with the design and with every uploaded image (saveProgramImage).
    const key = `${program.id}:${program.updated_at.getTime()}:${program.image_version}:${kind}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const png = await draw();
    this.cache.set(key, png);
    if (this.cache.size > this.max) this.cache.delete(this.cache.keys().next().value!);
    return png;
  }
}
