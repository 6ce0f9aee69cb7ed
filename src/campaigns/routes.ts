import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import type { CampaignStatus } from '../db/schema.js';
import { requireProgramRole } from '../http/auth.js';
import { parseIdempotencyKey, runIdempotent } from '../http/idempotency.js';
import { IdempotencyHeaders, problemResponses, Uuid } from '../http/schemas.js';
import type { LoyaltyRules } from '../loyalty/rules.js';
import { getProgramOr404 } from '../programs/service.js';
import { AutomationSettingsSchema, automationsDto, saveAutomations, settingsOf, type AutomationService } from './automations.js';
import { automationEffect } from './effect.js';
import { CampaignSchema, CampaignStatusSchema, CreateCampaignSchema, EffectSchema, MessageSchema, SegmentsSchema } from './schemas.js';

/** Automations that hold back a control group (their campaigns' `automation`). */
export const AUTOMATION_CAMPAIGNS = ['birthday', 'winback', 'expiry_reminder'] as const;
import { saveThresholds, segmentCounts, SegmentThresholdsSchema, thresholdsOf } from './segments.js';
import type { CampaignService } from './service.js';

const MARKETING = ['admin', 'marketer'] as const;
const CampaignParams = Type.Object({ campaignId: Uuid });

const AutomationsSchema = Type.Object({
  sendHour: Type.Integer(),
  birthday: Type.Object({
    enabled: Type.Boolean(),
    enabledSince: Type.Union([Type.String(), Type.Null()]),
    controlShare: Type.Integer(),
    bonusPoints: Type.Integer(),
    couponDefinitionId: Type.Optional(Type.String()),
    message: MessageSchema,
  }),
  winback: Type.Object({
    enabled: Type.Boolean(),
    enabledSince: Type.Union([Type.String(), Type.Null()]),
    controlShare: Type.Integer(),
    couponDefinitionId: Type.Optional(Type.String()),
    message: MessageSchema,
  }),
  expiry: Type.Object({
    enabled: Type.Boolean(),
    enabledSince: Type.Union([Type.String(), Type.Null()]),
    controlShare: Type.Integer(),
    reminderMessage: MessageSchema,
    expiredMessage: MessageSchema,
    rule: Type.Unknown({ description: 'The program rule (rules.expiry); null = points never expire' }),
  }),
  tierUpgrade: Type.Object({ enabled: Type.Boolean(), enabledSince: Type.Union([Type.String(), Type.Null()]), message: MessageSchema }),
});

/** Campaigns, RFM segments and automations (program `marketer` or `admin` key). */
export const campaignRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext; campaigns: CampaignService; automations: AutomationService }> = async (
  app,
  { ctx, campaigns },
) => {
  const { db } = ctx;

  app.post(
    '/campaigns',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Create a campaign (draft, or scheduled with scheduledAt)',
        description:
          'The message becomes the promo on each recipient card: Apple Wallet shows it on the lock screen (changeMessage), Google Wallet gets a message ' +
          '(TEXT_AND_NOTIFY within 3 notifications per pass per 24 h, TEXT past it; one class message when the audience is a whole class). ' +
          'Only active cards with marketing consent are targeted. ' +
          'Send an Idempotency-Key: a retry with the same key and body replays the first response (no second campaign).',
        headers: IdempotencyHeaders,
        body: CreateCampaignSchema,
        response: { 201: CampaignSchema, ...problemResponses(403, 422) },
      },
    },
    async (request, reply) => {
      const { programId, actor, role } = requireProgramRole(request, [...MARKETING]);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const program = await getProgramOr404(db, programId);
      const grant = role === 'admin' ? 'unlimited' : 'capped';
      const result = await runIdempotent(db, { scope: programId, key, operation: 'campaign:create', body: request.body }, async (trx) => ({
        status: 201,
        body: await campaigns.toDto(await campaigns.create(program, request.body, actor, trx, grant), { withDelivery: false }),
      }));
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(result.body);
    },
  );

  app.get(
    '/campaigns',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Campaigns, newest first',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          status: Type.Optional(CampaignStatusSchema),
          automation: Type.Optional(Type.Boolean({ description: 'true: only automation campaigns; false: only manual ones' })),
        }),
        response: { 200: Type.Array(CampaignSchema), ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      const rows = await campaigns.list(programId, {
        limit: request.query.limit ?? 50,
        status: request.query.status as CampaignStatus | undefined,
        automation: request.query.automation,
      });
      return Promise.all(rows.map((row) => campaigns.toDto(row, { withDelivery: false })));
    },
  );

  app.get(
    '/campaigns/:campaignId',
    {
      schema: {
        tags: ['marketing'],
        summary: 'A campaign with its progress, delivery figures and effect against its control group',
        params: CampaignParams,
        response: { 200: CampaignSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      const row = await campaigns.find(programId, request.params.campaignId);
      return { ...(await campaigns.toDto(row, { withDelivery: true })), effect: await campaigns.effect(row) };
    },
  );

  app.post(
    '/campaigns/:campaignId/send',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Send a draft or scheduled campaign now',
        description:
          'A campaign that is no longer a draft or scheduled answers 409 campaign_not_sendable, except to a retry with the ' +
          'Idempotency-Key of the send that started it: that replays the first 202 (and sends nothing again).',
        params: CampaignParams,
        headers: IdempotencyHeaders,
        response: { 202: CampaignSchema, ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const { campaignId } = request.params;
      const result = await runIdempotent(db, { scope: programId, key, operation: `campaign:send:${campaignId}`, body: null }, async (trx) => ({
        status: 202,
        body: await campaigns.toDto(await campaigns.send(programId, campaignId, trx), { withDelivery: false }),
      }));
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(202).send(result.body);
    },
  );

  app.post(
    '/campaigns/:campaignId/cancel',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Cancel a draft, scheduled or sending campaign; chunks not yet sent are not sent',
        params: CampaignParams,
        response: { 200: CampaignSchema, ...problemResponses(409) },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      return campaigns.toDto(await campaigns.cancel(programId, request.params.campaignId), { withDelivery: false });
    },
  );

  app.get(
    '/segments',
    {
      schema: {
        tags: ['marketing'],
        summary: 'RFM segments: cards per segment and the thresholds',
        response: { 200: SegmentsSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      const program = await getProgramOr404(db, programId);
      const thresholds = thresholdsOf(program.segments);
      const now = ctx.clock();
      const segments = await segmentCounts(db, programId, thresholds, now);
      return { asOf: now.toISOString(), totalCards: segments.reduce((sum, s) => sum + s.cards, 0), thresholds, segments };
    },
  );

  app.put(
    '/segments',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Change the RFM thresholds (missing fields take the defaults)',
        body: Type.Partial(SegmentThresholdsSchema, { additionalProperties: false }),
        response: { 200: SegmentsSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      const thresholds = await saveThresholds(db, programId, request.body);
      const now = ctx.clock();
      const segments = await segmentCounts(db, programId, thresholds, now);
      return { asOf: now.toISOString(), totalCards: segments.reduce((sum, s) => sum + s.cards, 0), thresholds, segments };
    },
  );

  app.get(
    '/automations/effect',
    {
      schema: {
        tags: ['marketing'],
        summary: "An automation's effect against its standing control group, pooled over its campaigns that started in the period",
        querystring: Type.Object(
          {
            automation: Type.Union(AUTOMATION_CAMPAIGNS.map((a) => Type.Literal(a))),
            days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, default: 90, description: 'Campaigns started in the last N days' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ automation: Type.String(), days: Type.Integer(), effect: Type.Union([Type.Intersect([EffectSchema, Type.Object({ campaigns: Type.Integer() })]), Type.Null()]) }), ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      const days = request.query.days ?? 90;
      const now = ctx.clock();
      const effect = await automationEffect(db, programId, [request.query.automation], { from: new Date(now.getTime() - days * 86_400_000), to: now }, now);
      return { automation: request.query.automation, days, effect };
    },
  );

  app.get(
    '/automations',
    { schema: { tags: ['marketing'], summary: 'Automations and their settings', response: { 200: AutomationsSchema, ...problemResponses() } } },
    async (request) => {
      const { programId } = requireProgramRole(request, [...MARKETING]);
      const program = await getProgramOr404(db, programId);
      return automationsDto(settingsOf(program.automations), program.rules as LoyaltyRules);
    },
  );

  app.put(
    '/automations',
    {
      schema: {
        tags: ['marketing'],
        summary: 'Switch automations on or off and set their texts (the whole object; missing fields take the defaults)',
        body: Type.Partial(AutomationSettingsSchema, { additionalProperties: false }),
        response: { 200: AutomationsSchema, ...problemResponses(422) },
      },
    },
    async (request) => {
      const { programId, role } = requireProgramRole(request, [...MARKETING]);
      return saveAutomations(db, programId, request.body, ctx.clock(), role === 'admin' ? 'unlimited' : 'capped');
    },
  );
};
