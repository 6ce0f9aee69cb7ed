/**
 * The stamp card's picture: one circle per stamp of a reward, the collected ones filled, drawn in
 * the program's colours. Apple shows it as the store card's strip image (375 × 123 points, so
 * strip.png 375 × 123, @2x 750 × 246, @3x 1125 × 369; reference apple-wallet section 3) and Google
 * as the object's image module (a public URL served by `GET /programs/{slug}/stamps/{version}/{count}.png`).
 *
 * pngjs (the project's image library, maintained) encodes; the drawing is a few circles, computed
 * per pixel with a one-pixel soft edge so the rings do not look jagged on a Retina screen.
 */
import { createHash } from 'node:crypto';
import { PNG } from 'pngjs';

export const STRIP_POINTS = { width: 375, height: 123 } as const;
export const STRIP_SCALES = [1, 2, 3] as const;
export type StripScale = (typeof STRIP_SCALES)[number];

export interface StampStripStyle {
  /** Stamps per reward: the number of circles (1..100). */
  perReward: number;
  /** `#rrggbb`: the strip's background (the pass background). */
  background: string;
  /** `#rrggbb`: filled stamps. */
  filled: string;
  /** `#rrggbb`: the ring of an empty stamp. */
  empty: string;
}

function rgb(hex: string): [number, number, number] {
  const match = /^#?([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})$/.exec(hex.trim());
  if (!match) return [0, 0, 0];
  return [parseInt(match[1], 16), parseInt(match[2], 16), parseInt(match[3], 16)];
}

export interface StampLayout {
  /** Circle centres and radius, in pixels, row by row (the first `count` are filled). */
  circles: Array<{ x: number; y: number }>;
  radius: number;
}

/** Up to 10 circles in one row; more in two rows (a perReward of 12 is two rows of 6). */
export function stampLayout(perReward: number, scale: number): StampLayout {
  const width = STRIP_POINTS.width * scale;
  const height = STRIP_POINTS.height * scale;
  const rows = perReward > 10 ? Math.min(Math.ceil(perReward / 10), 4) : 1;
  const perRow = Math.ceil(perReward / rows);
  const cellWidth = width / perRow;
  const cellHeight = height / rows;
  const radius = Math.max(2, Math.floor(Math.min(cellWidth, cellHeight) * 0.36));
  const circles: Array<{ x: number; y: number }> = [];
  for (let i = 0; i < perReward; i++) {
    const row = Math.floor(i / perRow);
    const inRow = row === rows - 1 ? perReward - perRow * (rows - 1) : perRow;
    // Each row centred: a short last row stays in the middle.
    const offset = (width - inRow * cellWidth) / 2;
    const column = i - row * perRow;
    circles.push({ x: offset + (column + 0.5) * cellWidth, y: (row + 0.5) * cellHeight });
  }
  return { circles, radius };
}

/** Renders the strip for `count` stamps (clamped to 0..perReward) at one scale, as PNG bytes. */
export function renderStampStrip(style: StampStripStyle, count: number, scale: StripScale): Buffer {
  const width = STRIP_POINTS.width * scale;
  const height = STRIP_POINTS.height * scale;
  const png = new PNG({ width, height, colorType: 6 });
  const background = rgb(style.background);
  const filled = rgb(style.filled);
  const empty = rgb(style.empty);
  for (let i = 0; i < width * height; i++) {
    png.data[i * 4] = background[0];
    png.data[i * 4 + 1] = background[1];
    png.data[i * 4 + 2] = background[2];
    png.data[i * 4 + 3] = 255;
  }
  const { circles, radius } = stampLayout(style.perReward, scale);
  const ring = Math.max(2, Math.round(radius * 0.14));
  const stamps = Math.max(0, Math.min(count, style.perReward));
  circles.forEach((centre, index) => {
    const isFilled = index < stamps;
    const colour = isFilled ? filled : empty;
    const x0 = Math.max(0, Math.floor(centre.x - radius - 1));
    const x1 = Math.min(width - 1, Math.ceil(centre.x + radius + 1));
    const y0 = Math.max(0, Math.floor(centre.y - radius - 1));
    const y1 = Math.min(height - 1, Math.ceil(centre.y + radius + 1));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const d = Math.hypot(x + 0.5 - centre.x, y + 0.5 - centre.y);
        // Coverage of the disc (filled) or of the ring (empty), with a one-pixel soft edge.
        const outer = Math.min(1, Math.max(0, radius - d + 0.5));
        const coverage = isFilled ? outer : Math.min(outer, Math.min(1, Math.max(0, d - (radius - ring) + 0.5)));
        if (coverage <= 0) continue;
        const at = (y * width + x) * 4;
        for (let c = 0; c < 3; c++) png.data[at + c] = Math.round(png.data[at + c] * (1 - coverage) + colour[c] * coverage);
      }
    }
  });
  return PNG.sync.write(png, { colorType: 6 });
}

/**
 * What the strip's pixels depend on (perReward and the three colours): the "program version" of
 * the picture. It keys the cache and is part of Google's image URL, so a colour change is a new
 * URL (Google caches images by URL) and an unchanged program keeps its URLs across restarts and
 * instances.
 */
export function stampStripVersion(style: StampStripStyle): string {
  return createHash('sha256')
    .update(`${style.perReward}|${style.background}|${style.filled}|${style.empty}`.toLowerCase())
    .digest('hex')
    .slice(0, 12);
}

/**
 * Rendered strips by (version, count, scale), least recently used dropped first. A program has at
 * most perReward + 1 pictures per scale (≤ 303 with 100 stamps), each a few kilobytes, so the
 * bound is by entries: 600 covers a handful of busy programs.
 */
export class StampStripCache {
  readonly #entries = new Map<string, Buffer>();
  renders = 0;
  constructor(private readonly maxEntries = 600) {}

  get(style: StampStripStyle, count: number, scale: StripScale): Buffer {
    const stamps = Math.max(0, Math.min(count, style.perReward));
    const key = `${stampStripVersion(style)}:${stamps}:${scale}`;
    let png = this.#entries.get(key);
    if (png) {
      this.#entries.delete(key);
    } else {
      png = renderStampStrip(style, stamps, scale);
      this.renders++;
    }
    this.#entries.set(key, png);
    while (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    return png;
  }

  /** strip.png, strip@2x.png, strip@3x.png for a pass. */
  passImages(style: StampStripStyle, count: number): Record<string, Buffer> {
    return {
      'strip.png': this.get(style, count, 1),
      'strip@2x.png': this.get(style, count, 2),
      'strip@3x.png': this.get(style, count, 3),
    };
  }
}

/** One cache per process: the Apple pass service and the public image route share it. */
export const stampStrips = new StampStripCache();

/**
 * The public URL Google downloads a stamp card's picture from (the @3x rendering). The version in
 * the path changes with the picture's colours or size, so Google's URL-keyed image cache never
 * shows an old design; the count is the stamps shown.
 */
export function stampStripUrl(publicUrl: string, slug: string, style: StampStripStyle, count: number): string {
  return `${publicUrl}/programs/${slug}/stamps/${stampStripVersion(style)}/${Math.max(0, Math.min(count, style.perReward))}.png`;
}
