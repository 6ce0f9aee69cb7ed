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
import { stampStyleOf } from '../mechanic-display.js';
import { stampStrips, stampStripVersion, type StripScale } from '../stamp-strip.js';

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

  // A stamp card's picture (issue #17): Google's image module downloads it from a public URL; it is
  // the same rendering as the Apple pass's strip (the cache is shared). It shows a count, not a
  // card, so it is public like the logo. A URL of the current version never changes its bytes:
  // cached for a year, immutable; an old version (the colours changed since) answers the current
  // picture briefly cached, so a stale link still shows the right count.
  app.get(
    '/programs/:slug/stamps/:version/:file',
    {
      schema: {
        tags: ['public'],
        summary: 'The stamp card picture for a stamp count (PNG, the pass strip at @3x unless ?scale=1|2)',
        params: Type.Object({
          slug: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' }),
          version: Type.String({ pattern: '^[0-9a-f]{12}$', maxLength: 12 }),
          file: Type.String({ pattern: '^[0-9]{1,3}\\.png$', maxLength: 7 }),
        }),
        querystring: Type.Object(
          { scale: Type.Optional(Type.Integer({ minimum: 1, maximum: 3 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const program = await findProgramBySlug(db, request.params.slug);
      const style = program ? stampStyleOf(program) : null;
      if (!program || !style) throw notFound('program');
      const count = Number.parseInt(request.params.file, 10);
      if (count > style.perReward) throw notFound('stamps');
      const png = stampStrips.get(style, count, (request.query.scale ?? 3) as StripScale);
      const current = stampStripVersion(style) === request.params.version;
      return reply
        .type('image/png')
        .header('cache-control', current ? 'public, max-age=31536000, immutable' : 'public, max-age=300')
        .send(png);
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
