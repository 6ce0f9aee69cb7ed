/**
 * Regenerates the default store-card images in passes/default/ (run: `npx tsx scripts/make-default-images.ts`).
 *
 * The design is deliberately plain so that it works under any programme's colours until the
 * programme uploads its own images: a teal strip with soft circles, a row of loyalty "stamps" as
 * logo, and a white star on a teal rounded square as icon. Sizes follow Apple's store-card image
 * sizes in points (icon 29×29, logo ≤ 160×50, strip 375×123), each at @1x, @2x and @3x
 * (reference /work/shared/reference/apple-wallet.md, section 3).
 *
 * Shapes are described in points and rendered with 4×4 supersampling per pixel, so every
 * resolution is drawn natively (no scaling) with smooth edges. The PNG encoder is the minimal one:
 * IHDR + one zlib IDAT (filter 0 rows) + IEND, each chunk with its CRC-32.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

type Rgba = readonly [number, number, number, number];
type Coverage = (x: number, y: number) => boolean;
interface Layer {
  color: Rgba;
  inside: Coverage;
  /** Punches a transparent hole instead of painting, so the pass background colour shows through. */
  erase?: boolean;
}
interface ImageDesign {
  name: string;
  widthPoints: number;
  heightPoints: number;
  layers: Layer[];
}

export const DEFAULT_PASS_COLORS = {
  background: '#0f766e',
  foreground: '#ffffff',
  label: '#ccfbf1',
} as const;

const TEAL: Rgba = [15, 118, 110, 255];
const TEAL_LIGHT: Rgba = [45, 212, 191, 64];
const TRANSPARENT: Rgba = [0, 0, 0, 0];
const TEAL_DARK: Rgba = [19, 78, 74, 150];
const WHITE: Rgba = [255, 255, 255, 255];
const WHITE_FAINT: Rgba = [255, 255, 255, 22];

// ----- PNG encoding -------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** Encodes 8-bit RGBA pixels (row-major, width × height × 4 bytes) as PNG. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // colour type RGBA
  header[10] = 0; // deflate
  header[11] = 0; // adaptive filtering
  header[12] = 0; // no interlace
  const rowLength = width * 4;
  const raw = Buffer.alloc((rowLength + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (rowLength + 1)] = 0; // filter type None
    raw.set(rgba.subarray(y * rowLength, (y + 1) * rowLength), y * (rowLength + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(raw, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

// ----- Shapes (coordinates in points) --------------------------------------------------------

const everywhere: Coverage = () => true;

function circle(cx: number, cy: number, radius: number): Coverage {
  return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2;
}

function ring(cx: number, cy: number, outer: number, inner: number): Coverage {
  return (x, y) => {
    const d2 = (x - cx) ** 2 + (y - cy) ** 2;
    return d2 <= outer ** 2 && d2 >= inner ** 2;
  };
}

function roundedRect(x0: number, y0: number, x1: number, y1: number, radius: number): Coverage {
  return (x, y) => {
    if (x < x0 || x > x1 || y < y0 || y > y1) return false;
    const dx = Math.max(x0 + radius - x, 0, x - (x1 - radius));
    const dy = Math.max(y0 + radius - y, 0, y - (y1 - radius));
    return dx * dx + dy * dy <= radius * radius;
  };
}

function star(cx: number, cy: number, outer: number, inner: number): Coverage {
  const vertices: Array<[number, number]> = [];
  for (let index = 0; index < 10; index++) {
    const radius = index % 2 === 0 ? outer : inner;
    const angle = -Math.PI / 2 + (index * Math.PI) / 5;
    vertices.push([cx + radius * Math.cos(angle), cy + radius * Math.sin(angle)]);
  }
  return (x, y) => {
    // Even-odd ray casting.
    let inside = false;
    for (let i = 0, j = vertices.length - 1; i < vertices.length; j = i++) {
      const [xi, yi] = vertices[i]!;
      const [xj, yj] = vertices[j]!;
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };
}

// ----- Rendering -----------------------------------------------------------------------------

const SUBSAMPLES = 4;

export function renderDesign(design: ImageDesign, scale: number): Buffer {
  const width = design.widthPoints * scale;
  const height = design.heightPoints * scale;
  const rgba = new Uint8Array(width * height * 4);
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      // Premultiplied accumulation of "over" compositing, averaged across subsamples.
      let r = 0, g = 0, b = 0, a = 0;
      for (let sy = 0; sy < SUBSAMPLES; sy++) {
        for (let sx = 0; sx < SUBSAMPLES; sx++) {
          const x = (px + (sx + 0.5) / SUBSAMPLES) / scale;
          const y = (py + (sy + 0.5) / SUBSAMPLES) / scale;
          let sr = 0, sg = 0, sb = 0, sa = 0;
          for (const layer of design.layers) {
            if (!layer.inside(x, y)) continue;
            if (layer.erase) {
              sr = sg = sb = sa = 0;
              continue;
            }
            const alpha = layer.color[3] / 255;
            sr = layer.color[0] * alpha + sr * (1 - alpha);
            sg = layer.color[1] * alpha + sg * (1 - alpha);
            sb = layer.color[2] * alpha + sb * (1 - alpha);
            sa = alpha + sa * (1 - alpha);
          }
          r += sr; g += sg; b += sb; a += sa;
        }
      }
      const count = SUBSAMPLES * SUBSAMPLES;
      const offset = (py * width + px) * 4;
      const alpha = a / count;
      rgba[offset] = alpha > 0 ? Math.round(r / count / alpha) : 0;
      rgba[offset + 1] = alpha > 0 ? Math.round(g / count / alpha) : 0;
      rgba[offset + 2] = alpha > 0 ? Math.round(b / count / alpha) : 0;
      rgba[offset + 3] = Math.round(alpha * 255);
    }
  }
  return encodePng(width, height, rgba);
}

export const DEFAULT_IMAGE_DESIGNS: ImageDesign[] = [
  {
    // Notifications and lock screen: must read at 29 pt, so one bold shape on an opaque tile.
    name: 'icon',
    widthPoints: 29,
    heightPoints: 29,
    layers: [
      { color: TEAL, inside: roundedRect(0, 0, 29, 29, 6.5) },
      { color: WHITE, inside: star(14.5, 15.3, 10, 4.3) },
    ],
  },
  {
    // Four loyalty stamps, three collected. White with see-through stars, so it takes on any
    // (dark) programme background colour.
    name: 'logo',
    widthPoints: 160,
    heightPoints: 50,
    layers: [
      { color: WHITE, inside: circle(22, 25, 17) },
      { color: TRANSPARENT, inside: star(22, 26, 9, 3.9), erase: true },
      { color: WHITE, inside: circle(60, 25, 17) },
      { color: TRANSPARENT, inside: star(60, 26, 9, 3.9), erase: true },
      { color: WHITE, inside: circle(98, 25, 17) },
      { color: TRANSPARENT, inside: star(98, 26, 9, 3.9), erase: true },
      { color: WHITE, inside: ring(136, 25, 17, 14.5) },
    ],
  },
  {
    // Behind the primary (balance) field: calm, low-contrast shapes so white text stays legible.
    name: 'strip',
    widthPoints: 375,
    heightPoints: 123,
    layers: [
      { color: TEAL, inside: everywhere },
      { color: TEAL_LIGHT, inside: circle(330, -5, 105) },
      { color: TEAL_DARK, inside: circle(-10, 135, 85) },
      { color: WHITE_FAINT, inside: circle(255, 120, 42) },
    ],
  },
];

export const IMAGE_SCALES = [1, 2, 3] as const;

export function imageFileName(name: string, scale: number): string {
  return scale === 1 ? `${name}.png` : `${name}@${scale}x.png`;
}

export function renderDefaultImages(): Record<string, Buffer> {
  const images: Record<string, Buffer> = {};
  for (const design of DEFAULT_IMAGE_DESIGNS) {
    for (const scale of IMAGE_SCALES) images[imageFileName(design.name, scale)] = renderDesign(design, scale);
  }
  return images;
}

function main(): void {
  const outputDir = fileURLToPath(new URL('../passes/default/', import.meta.url));
  mkdirSync(outputDir, { recursive: true });
  for (const [fileName, png] of Object.entries(renderDefaultImages())) {
    writeFileSync(path.join(outputDir, fileName), png);
    console.log(`${path.join('passes/default', fileName)}  ${png.length} bytes`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
