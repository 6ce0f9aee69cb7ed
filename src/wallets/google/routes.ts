import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../../app-context.js';
import { findCardByPublicToken } from '../../cards/repository.js';
import { AppError, cardErased, notFound } from '../../http/errors.js';
import { findProgram, findProgramBySlug } from '../../programs/repository.js';
import { recordWalletEvent } from '../../enrollment/funnel.js';
import type { CallbackVerifier } from './callback.js';
import type { GoogleWalletService } from './service.js';

const DEFAULT_GOOGLE_LOGO = readFileSync(fileURLToPath(new URL('../../../passes/google/logo.png', import.meta.url)));

export interface GoogleRoutesOptions {
  ctx: AppContext;
  google: GoogleWalletService | undefined;
  verifier: CallbackVerifier | undefined;
}

/** Public Google Wallet routes: the save link, the program logo Google downloads, and callbacks. */
export const googleWalletRoutes: FastifyPluginAsyncTypebox<GoogleRoutesOptions> = async (app, { ctx, google, verifier }) => {
  const { db } = ctx;

  app.get(
    '/c/:cardToken/google',
    {
      schema: {
        tags: ['public'],
        summary: '302 to the "Add to Google Wallet" save link (skinny JWT)',
        params: Type.Object({ cardToken: Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$' }) }),
      },
    },
    async (request, reply) => {
      if (!google) throw new AppError(404, 'google_wallet_disabled', 'Google Wallet is not configured on this service');
      const card = await findCardByPublicToken(db, request.params.cardToken);
      const program = card ? await findProgram(db, card.program_id) : undefined;
      if (!card || !program) throw notFound('card');
      if (card.status === 'erased') throw cardErased();
      const url = await google.saveUrl(card, program);
      return reply.header('cache-control', 'no-store').redirect(url, 302);
    },
  );

  // Google downloads the class logo from a public HTTPS URL (≥ 660 × 660, square, reference 1.3).
  app.get(
    '/programs/:slug/google-logo.png',
    { schema: { tags: ['public'], params: Type.Object({ slug: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' }) }) } },
    async (request, reply) => {
      const program = await findProgramBySlug(db, request.params.slug);
      if (!program) throw notFound('program');
      const uploaded = await db
        .selectFrom('program_image')
        .select('png')
        .where('program_id', '=', program.id)
        .where('name', '=', 'google-logo.png')
        .executeTakeFirst();
      return reply
        .type('image/png')
        .header('cache-control', 'public, max-age=3600')
        .send(uploaded ? Buffer.from(uploaded.png) : DEFAULT_GOOGLE_LOGO);
    },
  );

  // Save/delete callbacks (Google: "Use callbacks for saves and deletions"; reference section 4).
  // Invalid signatures get 400, never a 5xx; duplicates (same nonce) get 200 without reprocessing.
  app.post(
    '/google/callback',
    { bodyLimit: 16 * 1024, config: { rateLimit: { max: 600, timeWindow: '1 minute' } }, schema: { tags: ['public'], body: Type.Unknown() } },
    async (request, reply) => {
      if (!verifier) throw new AppError(404, 'google_wallet_disabled', 'Google Wallet is not configured on this service');
      const verified = await verifier.verify(request.body);
      if (!verified.ok) {
        request.log.warn({ reason: verified.reason }, 'Google Wallet callback rejected');
        if (verified.retryable) throw new AppError(503, 'google_keys_unavailable', 'Could not load Google’s signing keys; retry later');
        throw new AppError(400, 'invalid_callback', `Callback rejected: ${verified.reason}`);
      }
      const { objectId, eventType, nonce } = verified.message;
      const outcome = await db.transaction().execute(async (trx) => {
        const fresh = await trx
          .insertInto('google_callback_nonce')
          .values({ nonce, event_type: eventType, object_id: objectId })
          .onConflict((oc) => oc.column('nonce').doNothing())
          .returning('nonce')
          .executeTakeFirst();
        if (!fresh) return 'duplicate';
        const saved = eventType === 'save';
        const object = await trx
          .updateTable('google_object')
          .set({ saved, saved_changed_at: new Date() })
          .where('object_id', '=', objectId)
          .returning(['card_id', 'program_id'])
          .executeTakeFirst();
        if (!object) return 'unknown-object';
        await recordWalletEvent(trx, { programId: object.program_id, cardId: object.card_id, wallet: 'google', kind: saved ? 'installed' : 'removed' });
        return 'recorded';
      });
      return reply.status(200).send({ status: outcome });
    },
  );
};
