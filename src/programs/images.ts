import { sql } from 'kysely';
import type { AppContext } from '../app-context.js';
import { AppError } from '../http/errors.js';
import { getProgramOr404, touchAllCards } from './service.js';

/**
 * Program images: each pass image at 1x, @2x and @3x (Apple: pass images need every resolution;
 * an uploaded family replaces the default one as a whole, see mergeImages), and `google-logo`, the
 * square (≥ 660 × 660) logo Google Wallet downloads for the program's classes.
 */
export const IMAGE_NAMES = [...['icon', 'logo', 'strip'].flatMap((name) => [name, `${name}@2x`, `${name}@3x`]), 'google-logo'];
export const MAX_IMAGE_BYTES = 1024 * 1024;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isPng(body: unknown): body is Buffer {
  return Buffer.isBuffer(body) && body.subarray(0, 8).equals(PNG_SIGNATURE);
}

/**
 * Stores a program image and sends every card of the program down the update path, so the next
 * pass each device fetches carries it. Used by `PUT /api/v1/programs/{id}/images/{name}` and the
 * cabinet's design screen.
 */
export async function saveProgramImage(ctx: Pick<AppContext, 'db' | 'cardChanges' | 'passes'>, programId: string, name: string, png: Buffer) {
  if (!IMAGE_NAMES.includes(name)) throw new AppError(400, 'unknown_image', `Unknown image "${name}"`);
  if (!isPng(png)) throw new AppError(415, 'png_required', 'Send the image as Content-Type: image/png with PNG bytes');
  if (png.length > MAX_IMAGE_BYTES) throw new AppError(413, 'body_too_large', 'The image is larger than 1 MB');
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
}
