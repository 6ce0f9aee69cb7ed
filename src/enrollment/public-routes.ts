import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { findCardByPublicToken } from '../cards/repository.js';
import { cardErased, notFound } from '../http/errors.js';
import { findProgram } from '../programs/repository.js';
import { cardUrls } from '../cards/dto.js';
import { QR_SIZE } from './qr.js';
import { programName } from '../i18n/format.js';
import { MESSAGES } from './i18n.js';
import { brandColours } from './pages.js';

const CardTokenParams = Type.Object({ cardToken: Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$' }) });

/** Public card links: no key, the unguessable card token is the capability. */
export const publicCardRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.get(
    '/c/:cardToken/card.pkpass',
    { schema: { tags: ['public'], summary: 'The signed Apple Wallet pass', params: CardTokenParams } },
    async (request, reply) => {
      const card = await findCardByPublicToken(ctx.db, request.params.cardToken);
      const program = card ? await findProgram(ctx.db, card.program_id) : undefined;
      if (!card || !program) throw notFound('card');
      if (card.status === 'erased') throw cardErased();
      const pass = await ctx.passes.passFor(card, program);
      return reply
        .type('application/vnd.apple.pkpass')
        .header('content-disposition', `attachment; filename="${program.slug}.pkpass"`)
        .header('cache-control', 'no-store')
        .header('last-modified', card.updated_at.toUTCString())
        .send(pass);
    },
  );

  // The card page as a web app ("add to home screen"): on Android without Google Wallet it is the
  // card. Scope and start are this card's page; the icons are the program's.
  app.get(
    '/c/:cardToken/manifest.webmanifest',
    {
      schema: {
        tags: ['public'],
        summary: 'Web app manifest of the card page (add to home screen)',
        params: CardTokenParams,
        querystring: Type.Object({ lang: Type.Optional(Type.Union([Type.Literal('ru'), Type.Literal('en')])) }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      const card = await findCardByPublicToken(ctx.db, request.params.cardToken);
      const program = card ? await findProgram(ctx.db, card.program_id) : undefined;
      if (!card || !program || card.status === 'erased') throw notFound('card');
      const lang = request.query.lang ?? program.default_language;
      const name = programName(program, lang);
      const brand = brandColours(program.design);
      const page = `/c/${card.public_token}`;
      const icon = (size: number, purpose: string) => ({ src: `/programs/${program.slug}/icon-${size}.png`, sizes: `${size}x${size}`, type: 'image/png', purpose });
      return reply
        .type('application/manifest+json; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('x-robots-tag', 'noindex, nofollow')
        .send({
          id: page,
          name: MESSAGES[lang].cardTitle(name),
          short_name: name.length <= 12 ? name : `${name.slice(0, 11)}…`,
          lang,
          dir: 'ltr',
          start_url: `${page}?lang=${lang}`,
          scope: `${page}`,
          display: 'standalone',
          orientation: 'portrait',
          background_color: brand.background,
          theme_color: brand.background,
          icons: [icon(192, 'any'), icon(512, 'any'), icon(512, 'maskable')],
        });
    },
  );

  // The card page's QR code, for an invitation printed on a receipt or a letter (issue #12): scanned
  // by the holder's phone, it opens the page that offers the right wallet.
  const QrQuery = Type.Object({ size: Type.Optional(Type.Integer({ minimum: QR_SIZE.min, maximum: QR_SIZE.max })) }, { additionalProperties: false });
  async function cardPageUrl(token: string) {
    const card = await findCardByPublicToken(ctx.db, token);
    if (!card) throw notFound('card');
    if (card.status === 'erased') throw cardErased();
    return cardUrls(ctx.links.publicUrl, card).installUrl;
  }
  app.get(
    '/c/:cardToken/qr.svg',
    { schema: { tags: ['public'], summary: 'QR code of the card page (SVG)', params: CardTokenParams, querystring: QrQuery } },
    async (request, reply) => {
      const svg = await ctx.qr.svg(await cardPageUrl(request.params.cardToken), request.query.size ?? QR_SIZE.default);
      return reply.type('image/svg+xml; charset=utf-8').header('cache-control', 'private, max-age=3600').send(`<?xml version="1.0" encoding="UTF-8"?>\n${svg}`);
    },
  );
  app.get(
    '/c/:cardToken/qr.png',
    { schema: { tags: ['public'], summary: `QR code of the card page (PNG, ?size= pixels, at most ${QR_SIZE.max})`, params: CardTokenParams, querystring: QrQuery } },
    async (request, reply) => {
      // Drawn on the renderer's worker thread, cached, at most 16 waiting (enrollment/qr.ts).
      const png = await ctx.qr.png(await cardPageUrl(request.params.cardToken), request.query.size ?? QR_SIZE.default);
      return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
    },
  );
};
