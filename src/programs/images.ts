import { sql } from 'kysely';
import { PNG } from 'pngjs';
import type { AppContext } from '../app-context.js';
import { AppError } from '../http/errors.js';
import { getProgramOr404, touchAllCards } from './service.js';
import { forgetProgram } from './cache.js';

/**
 * Program images: each pass image at 1x, @2x and @3x (Apple: pass images need every resolution;
 * an uploaded family replaces the default one as a whole, see mergeImages), and `google-logo`, the
 * square (≥ 660 × 660) logo Google Wallet downloads for the program's classes.
 */
export const IMAGE_NAMES = [...['icon', 'logo', 'strip'].flatMap((name) => [name, `${name}@2x`, `${name}@3x`]), 'google-logo'];
export const MAX_IMAGE_BYTES = 1024 * 1024;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Starts with the PNG signature: a quick first look; `normalizePng` decides whether it is one. */
export function isPng(body: unknown): body is Buffer {
  return Buffer.isBuffer(body) && body.subarray(0, 8).equals(PNG_SIGNATURE);
}

/**
 * The largest size of each store-card image, in points (Apple, "Creating the source for a pass";
 * reference section 3: icon 29 × 29, logo ≤ 160 × 50, strip 375 × 123); `@2x` and `@3x` are two and
 * three times as many pixels. Google's program logo is a square of at least 660 × 660 (reference
 * google-wallet 1.3); 2048 bounds it.
 */
const APPLE_POINTS: Record<string, [number, number]> = { icon: [29, 29], logo: [160, 50], strip: [375, 123] };

export interface ImageLimits {
  maxWidth: number;
  maxHeight: number;
  minWidth: number;
  minHeight: number;
  square: boolean;
}

export function imageLimits(name: string): ImageLimits {
  if (name === 'google-logo') return { maxWidth: 2048, maxHeight: 2048, minWidth: 660, minHeight: 660, square: true };
  const [base, scale] = name.split('@');
  const points = APPLE_POINTS[base];
  if (!points) throw new AppError(400, 'unknown_image', `Unknown image "${name}"`);
  const factor = scale === '3x' ? 3 : scale === '2x' ? 2 : 1;
  return { maxWidth: points[0] * factor, maxHeight: points[1] * factor, minWidth: 1, minHeight: 1, square: false };
}

/**
 * Turns an uploaded file into the PNG that is stored and served: it must decode as a PNG (pngjs, a
 * maintained decoder, CRCs checked) and fit the image's limits; what is stored is a fresh 8-bit RGBA
 * encoding of the decoded pixels, so no chunk of the upload — text, metadata, or whatever follows
 * the image data (a PNG signature followed by PHP was accepted and served publicly, issue #11) —
 * reaches a pass or a public URL.
 *
 * The dimensions are read from the IHDR header first, before anything is inflated or allocated: a
 * 50,000 × 50,000 "decompression bomb" of a few kilobytes is refused without decoding it.
 */
export function normalizePng(name: string, file: Buffer): Buffer {
  const limits = imageLimits(name);
  if (!isPng(file) || file.length < 33 || file.toString('latin1', 12, 16) !== 'IHDR') {
    throw new AppError(415, 'png_required', 'Send the image as Content-Type: image/png with PNG bytes');
  }
  const width = file.readUInt32BE(16);
  const height = file.readUInt32BE(20);
  const sizeProblem =
    width > limits.maxWidth || height > limits.maxHeight
      ? `at most ${limits.maxWidth} × ${limits.maxHeight} pixels`
      : width < limits.minWidth || height < limits.minHeight || (limits.square && width !== height)
        ? `${limits.square ? 'a square of ' : ''}at least ${limits.minWidth} × ${limits.minHeight} pixels`
        : undefined;
  if (sizeProblem) {
    throw new AppError(422, 'image_dimensions', `${name}.png must be ${sizeProblem} (this one is ${width} × ${height})`, {
      width,
      height,
      maxWidth: limits.maxWidth,
      maxHeight: limits.maxHeight,
    });
  }
  let decoded: PNG;
  try {
    decoded = PNG.sync.read(file);
  } catch {
    throw new AppError(415, 'png_required', 'The file is not a valid PNG image');
  }
  return PNG.sync.write(decoded, { colorType: 6, inputColorType: 6, bitDepth: 8, inputHasAlpha: true });
}

/**
 * Stores a program image and sends every card of the program down the update path, so the next
 * pass each device fetches carries it. Used by `PUT /api/v1/programs/{id}/images/{name}` and the
 * cabinet's design screen.
 */
export async function saveProgramImage(ctx: Pick<AppContext, 'db' | 'cardChanges' | 'passes'>, programId: string, name: string, upload: Buffer) {
  if (!IMAGE_NAMES.includes(name)) throw new AppError(400, 'unknown_image', `Unknown image "${name}"`);
  if (upload.length > MAX_IMAGE_BYTES) throw new AppError(413, 'body_too_large', 'The image is larger than 1 MB');
  const png = normalizePng(name, upload);
  await ctx.db.transaction().execute(async (trx) => {
    await getProgramOr404(trx, programId);
    await trx
      .insertInto('program_image')
      .values({ program_id: programId, name: `${name}.png`, png })
      .onConflict((oc) => oc.columns(['program_id', 'name']).doUpdateSet({ png, updated_at: new Date() }))
      .execute();
    // image_version keys every instance's image cache (PassService.programImages): bumped here, in
    // the transaction that stores the image, before any card's new update tag can be read.
    await trx
      .updateTable('program')
      .set({ updated_at: new Date(), image_version: sql<number>`image_version + 1` })
      .where('id', '=', programId)
      .execute();
    await touchAllCards(trx, ctx.cardChanges, programId);
  });
  ctx.passes.forgetProgram(programId);
  forgetProgram(programId);
}
