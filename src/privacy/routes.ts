import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { findCardInProgram } from '../cards/repository.js';
import { requireProgramRole } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import { parseIdempotencyKey, runIdempotent } from '../http/idempotency.js';
import { IdempotencyHeaders, IdParams, problemResponses } from '../http/schemas.js';
import { getProgramOr404 } from '../programs/service.js';
import { eraseCard, type ErasureResult } from './erasure.js';
import { cardExportCsv, inviteLinksCsv } from './export.js';
import { personalData } from './personal-data.js';
import type { InvitationBatchDto, Invitations } from './invitations.js';

const Section = (description: string) => Type.Unknown({ description });

const PersonalDataSchema = Type.Object({
  generatedAt: Type.String(),
  program: Section('id, slug, name'),
  card: Section('the card: holder (name, phone, e-mail, birthday), consent with the text agreed to, tier, balance, referral code, channel, verification, card page URL'),
  ledger: Section('every ledger entry of the card'),
  purchases: Section('every purchase, with its line items when the till sent them'),
  pendingBonuses: Section('bonuses shown but not yet spendable'),
  referrals: Section('who invited the holder, whom the holder invited'),
  wallets: Section('Apple devices (identifiers, no push tokens), pass downloads, the Google object, install/removal events'),
  campaigns: Section('campaigns the card was sent'),
  controlGroups: Section('campaigns the card was held back from (control group)'),
  automations: Section('automatic messages sent (birthday, expiry, tier)'),
  tierChanges: Section('tier changes'),
  phoneVerifications: Section('one-time codes sent to the phone in this program (never the codes)'),
  webhookEvents: Section('events about the card sent to the program\'s webhooks'),
  invitations: Section('invitations to the wallet sent to the holder (channel, status, time)'),
  coupons: Section('coupons issued to the card (code, status, source, dates, discount)'),
  erasure: Section('who erased the data and when, or null'),
});

const InvitationBatchSchema = Type.Object({
  id: Type.String(),
  channels: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('queued'), Type.Literal('sending'), Type.Literal('finished')]),
  cards: Type.Integer({ description: 'Active cards on no wallet walked so far' }),
  skippedNoConsent: Type.Integer({ description: 'Of them, holders without marketing consent: sent nothing' }),
  sms: Type.Object({ sent: Type.Integer(), failed: Type.Integer() }),
  email: Type.Object({ sent: Type.Integer(), failed: Type.Integer(), noAddress: Type.Integer({ description: 'Consenting holders without an e-mail address' }) }),
  createdAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
});

const ErasureSchema = Type.Object({
  cardId: Type.String(),
  status: Type.Literal('erased'),
  erasedAt: Type.String(),
  erasedBy: Type.String({ description: 'key:<id of the program admin key>' }),
});

/** The holder's rights and no lock-in (issue #12): exports, one holder's data, erasure. Program admin key only. */
export const privacyRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext; invitations: Invitations }> = async (app, { ctx, invitations }) => {
  const { db } = ctx;

  app.get(
    '/exports/cards.csv',
    {
      schema: {
        tags: ['privacy'],
        summary: 'Every card of the program as CSV (UTF-8 with BOM), streamed: holder, balance, tier, consent, wallet state, card page',
        description: 'Program admin key. Columns and formats: docs/privacy.md. Erased cards are listed with their personal fields empty.',
        querystring: Type.Object({}, { additionalProperties: false }),
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'text/csv; charset=utf-8, money in major units' }), ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, ['admin']);
      const program = await getProgramOr404(db, programId);
      const stream = Readable.from(cardExportCsv(db, program, { publicUrl: ctx.config.PUBLIC_URL, passTypeIdentifier: ctx.appleIdentity.passTypeIdentifier }));
      return reply
        .type('text/csv; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="${program.slug}-cards-${ctx.clock().toISOString().slice(0, 10)}.csv"`)
        // The 200 schema documents the body for OpenAPI; the body itself is the stream (never serialized).
        .send(stream as unknown as string);
    },
  );

  app.get(
    '/exports/invite-links.csv',
    {
      schema: {
        tags: ['privacy'],
        summary: 'Cards not installed in any wallet, with their personal install link and QR code URL, as CSV (to invite an imported base)',
        description: 'Program admin key. `marketing_consent` says whether the holder agreed to marketing messages: respect it. docs/privacy.md.',
        querystring: Type.Object({}, { additionalProperties: false }),
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'text/csv; charset=utf-8' }), ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, ['admin']);
      const program = await getProgramOr404(db, programId);
      const stream = Readable.from(inviteLinksCsv(db, program, { publicUrl: ctx.config.PUBLIC_URL, passTypeIdentifier: ctx.appleIdentity.passTypeIdentifier }));
      return reply
        .type('text/csv; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="${program.slug}-invite-links-${ctx.clock().toISOString().slice(0, 10)}.csv"`)
        .send(stream as unknown as string);
    },
  );

  app.get(
    '/cards/:cardId/personal-data',
    {
      schema: {
        tags: ['privacy'],
        summary: 'Everything stored about the card\'s holder, as JSON (152-FZ / GDPR right of access)',
        description: 'Program admin key. What each section holds and what is left out: docs/privacy.md.',
        params: IdParams('cardId'),
        response: { 200: PersonalDataSchema, ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, ['admin']);
      const program = await getProgramOr404(db, programId);
      const card = await findCardInProgram(db, programId, request.params.cardId);
      if (!card) throw notFound('card');
      const data = await personalData(db, program, card, {
        publicUrl: ctx.config.PUBLIC_URL,
        passTypeIdentifier: ctx.appleIdentity.passTypeIdentifier,
        phoneHash: (phone) => ctx.verification.phoneHash(phone),
      });
      return reply
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="personal-data-${card.id}.json"`)
        .send(data);
    },
  );

  app.post(
    '/cards/:cardId/erasure',
    {
      schema: {
        tags: ['privacy'],
        summary: 'Erase the holder\'s personal data (152-FZ / GDPR): cannot be undone; the wallet passes are voided',
        description:
          'Program admin key; send {"confirm": true}. In one transaction the name, phone, e-mail, birthday, consent and every other personal ' +
          'field are removed from every table, the card becomes `erased` (POS answers 410 card_erased), the Apple pass is voided and pushed, ' +
          'the Google object expired, and an audit row records who erased the card and when. Ledger entries and purchases stay (without ' +
          'free-text reasons): program totals do not change. A repeat answers the first erasure; an Idempotency-Key replays. docs/privacy.md.',
        params: IdParams('cardId'),
        headers: IdempotencyHeaders,
        body: Type.Object({ confirm: Type.Literal(true, { description: 'The erasure cannot be undone' }) }, { additionalProperties: false }),
        response: { 200: ErasureSchema, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const { programId, actor } = requireProgramRole(request, ['admin']);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const { cardId } = request.params;
      const result = await runIdempotent<ErasureResult>(db, { scope: programId, key, operation: `erase:${cardId}`, body: request.body }, async (trx) => {
        const { repeated: _repeated, ...body } = await eraseCard(trx, { cardChanges: ctx.cardChanges, phoneHash: (phone) => ctx.verification.phoneHash(phone) }, { programId, cardId, actor });
        return { status: 200, body };
      });
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(200).send(result.body);
    },
  );

  app.post(
    '/invitations',
    {
      schema: {
        tags: ['privacy'],
        summary: 'Send every consenting holder of a card on no wallet their install link, by SMS and/or e-mail, as a paced job',
        description:
          'Program admin key. Only active cards on no Apple device and not saved in Google Wallet, only holders with marketing consent. ' +
          'Channels need SMS_GATEWAY_URL (sms) and SMTP_URL + MAIL_FROM (email), else 422 channel_unavailable; one batch per program at a ' +
          'time (409 invitations_in_progress). Follow the counts with GET /invitations/{id}. docs/privacy.md.',
        headers: IdempotencyHeaders,
        body: Type.Object(
          { channels: Type.Array(Type.Union([Type.Literal('sms'), Type.Literal('email')]), { minItems: 1, maxItems: 2, uniqueItems: true }) },
          { additionalProperties: false },
        ),
        response: { 202: InvitationBatchSchema, ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const { programId, actor } = requireProgramRole(request, ['admin']);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const result = await runIdempotent<InvitationBatchDto>(db, { scope: programId, key, operation: 'invitations', body: request.body }, async (trx) => ({
        status: 202,
        body: await invitations.request(trx, programId, request.body.channels, actor),
      }));
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(202).send(result.body);
    },
  );

  app.get(
    '/invitations/:invitationId',
    {
      schema: {
        tags: ['privacy'],
        summary: 'Progress and counts of an invitation batch',
        params: IdParams('invitationId'),
        response: { 200: InvitationBatchSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, ['admin']);
      return invitations.get(programId, request.params.invitationId);
    },
  );
};
