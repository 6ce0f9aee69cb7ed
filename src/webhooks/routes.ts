import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { sql, type Selectable } from 'kysely';
import type { AppContext } from '../app-context.js';
import type { Executor } from '../db/database.js';
import type { WebhookEndpointTable } from '../db/schema.js';
import { requireProgramRole } from '../http/auth.js';
import { notFound, unprocessable } from '../http/errors.js';
import { problemResponses, Uuid } from '../http/schemas.js';
import { cancelPendingDeliveries } from './delivery.js';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './events.js';
import {
  CreateWebhookSchema,
  DeliveriesQuerySchema,
  DeliveriesSchema,
  UpdateWebhookSchema,
  WebhookSchema,
  WebhookWithSecretSchema,
  type WebhookDto,
} from './schemas.js';
import { newWebhookSecret } from './signing.js';
import { checkWebhookUrl, type UrlPolicy } from './url-policy.js';

/** Endpoints per program: every emit fans out to each, so keep the fan-out small. */
export const MAX_WEBHOOKS_PER_PROGRAM = 10;

// Every column but the secret: responses are built from these rows only, so it cannot leak.
const PUBLIC_COLUMNS = [
  'id',
  'program_id',
  'url',
  'events',
  'enabled',
  'disabled_at',
  'disabled_reason',
  'failing_since',
  'consecutive_failures',
  'last_success_at',
  'created_at',
  'updated_at',
] as const;
type EndpointRow = Pick<Selectable<WebhookEndpointTable>, (typeof PUBLIC_COLUMNS)[number]>;

const iso = (value: Date | null) => (value ? new Date(value).toISOString() : null);

function webhookDto(row: EndpointRow): WebhookDto {
  return {
    id: row.id,
    url: row.url,
    events: row.events as WebhookEventType[],
    enabled: row.enabled,
    disabledAt: iso(row.disabled_at),
    disabledReason: row.disabled_reason,
    failingSince: iso(row.failing_since),
    consecutiveFailures: row.consecutive_failures,
    lastSuccessAt: iso(row.last_success_at),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/** Events are stored in the documented order, whatever order they were sent in. */
const sortedEvents = (events: readonly WebhookEventType[]) => WEBHOOK_EVENT_TYPES.filter((type) => events.includes(type));

function findEndpoint(executor: Executor, programId: string, id: string) {
  return executor.selectFrom('webhook_endpoint').select(PUBLIC_COLUMNS).where('id', '=', id).where('program_id', '=', programId).executeTakeFirst();
}

const WebhookParams = Type.Object({ webhookId: Uuid });
const ROLES = ['admin', 'marketer'] as const;

export const webhookRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext; policy: UrlPolicy }> = async (app, { ctx, policy }) => {
  const { db } = ctx;

  app.post(
    '/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Subscribe an HTTPS endpoint to events; the response shows the signing secret once',
        body: CreateWebhookSchema,
        response: { 201: WebhookWithSecretSchema, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      const url = checkWebhookUrl(request.body.url, policy);
      const secret = newWebhookSecret();
      const row = await db.transaction().execute(async (trx) => {
        // Serialise creations per program so the limit holds under concurrency.
        await trx.selectFrom('program').select('id').where('id', '=', programId).forUpdate().executeTakeFirst();
        const { n } = await trx
          .selectFrom('webhook_endpoint')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('program_id', '=', programId)
          .executeTakeFirstOrThrow();
        if (Number(n) >= MAX_WEBHOOKS_PER_PROGRAM) {
          throw unprocessable('webhook_limit_reached', `A program can have at most ${MAX_WEBHOOKS_PER_PROGRAM} webhooks`);
        }
        return trx
          .insertInto('webhook_endpoint')
          .values({ program_id: programId, url, events: sortedEvents(request.body.events), secret })
          .returning(PUBLIC_COLUMNS)
          .executeTakeFirstOrThrow();
      });
      return reply.status(201).send({ ...webhookDto(row), secret });
    },
  );

  app.get(
    '/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: "The program's webhooks (never their secrets)",
        response: { 200: Type.Object({ items: Type.Array(WebhookSchema) }), ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      const rows = await db.selectFrom('webhook_endpoint').select(PUBLIC_COLUMNS).where('program_id', '=', programId).orderBy('created_at').orderBy('id').execute();
      return { items: rows.map(webhookDto) };
    },
  );

  app.get(
    '/webhooks/:webhookId',
    {
      schema: { tags: ['webhooks'], summary: 'One webhook (never its secret)', params: WebhookParams, response: { 200: WebhookSchema, ...problemResponses() } },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      const row = await findEndpoint(db, programId, request.params.webhookId);
      if (!row) throw notFound('webhook');
      return webhookDto(row);
    },
  );

  app.patch(
    '/webhooks/:webhookId',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Change the URL or events, or enable/disable (enabling clears the failure state)',
        description: 'Disabling settles the deliveries still waiting as failed; events emitted while disabled are not delivered later.',
        params: WebhookParams,
        body: UpdateWebhookSchema,
        response: { 200: WebhookSchema, ...problemResponses(422) },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      const { url, events, enabled } = request.body;
      const checkedUrl = url === undefined ? undefined : checkWebhookUrl(url, policy);
      const row = await db.transaction().execute(async (trx) => {
        const current = await trx
          .selectFrom('webhook_endpoint')
          .select(['id', 'enabled'])
          .where('id', '=', request.params.webhookId)
          .where('program_id', '=', programId)
          .forUpdate()
          .executeTakeFirst();
        if (!current) throw notFound('webhook');
        // A new URL or a re-enabled endpoint starts with a clean failure record.
        const fresh = checkedUrl !== undefined || (enabled === true && !current.enabled);
        const turningOn = enabled === true && !current.enabled;
        const turningOff = enabled === false && current.enabled;
        const updated = await trx
          .updateTable('webhook_endpoint')
          .set({
            ...(checkedUrl !== undefined ? { url: checkedUrl } : {}),
            ...(events !== undefined ? { events: sortedEvents(events) } : {}),
            ...(fresh ? { failing_since: null, consecutive_failures: 0 } : {}),
            ...(turningOn ? { enabled: true, disabled_at: null, disabled_reason: null } : {}),
            ...(turningOff ? { enabled: false, disabled_at: sql<Date>`now()`, disabled_reason: 'disabled through the API' } : {}),
            updated_at: sql<Date>`now()`,
          })
          .where('id', '=', current.id)
          .returning(PUBLIC_COLUMNS)
          .executeTakeFirstOrThrow();
        if (turningOff) await cancelPendingDeliveries(trx, current.id);
        return updated;
      });
      return webhookDto(row);
    },
  );

  app.delete(
    '/webhooks/:webhookId',
    { schema: { tags: ['webhooks'], summary: 'Delete a webhook and its delivery log', params: WebhookParams, response: { 204: Type.Null(), ...problemResponses() } } },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      const deleted = await db
        .deleteFrom('webhook_endpoint')
        .where('id', '=', request.params.webhookId)
        .where('program_id', '=', programId)
        .returning('id')
        .executeTakeFirst();
      if (!deleted) throw notFound('webhook');
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/webhooks/:webhookId/rotate-secret',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Replace the signing secret; the response shows the new one once',
        description: 'Takes effect at once: attempts from now on (retries included) are signed with the new secret.',
        params: WebhookParams,
        response: { 200: WebhookWithSecretSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      const secret = newWebhookSecret();
      const row = await db
        .updateTable('webhook_endpoint')
        .set({ secret, updated_at: sql<Date>`now()` })
        .where('id', '=', request.params.webhookId)
        .where('program_id', '=', programId)
        .returning(PUBLIC_COLUMNS)
        .executeTakeFirst();
      if (!row) throw notFound('webhook');
      return { ...webhookDto(row), secret };
    },
  );

  app.get(
    '/webhooks/:webhookId/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'The delivery log of a webhook, newest first',
        params: WebhookParams,
        querystring: DeliveriesQuerySchema,
        response: { 200: DeliveriesSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      const endpoint = await findEndpoint(db, programId, request.params.webhookId);
      if (!endpoint) throw notFound('webhook');
      const limit = request.query.limit ?? 50;
      let query = db
        .selectFrom('webhook_delivery as d')
        .innerJoin('webhook_event as ev', 'ev.id', 'd.event_id')
        .select([
          'd.id',
          'd.event_id',
          'ev.type',
          'd.status',
          'd.attempts',
          'd.last_status_code',
          'd.last_error',
          'd.last_attempt_at',
          'd.next_attempt_at',
          'd.delivered_at',
          'd.created_at',
        ])
        .where('d.endpoint_id', '=', endpoint.id);
      if (request.query.status) query = query.where('d.status', '=', request.query.status);
      if (request.query.before) query = query.where('d.id', '<', request.query.before);
      const rows = await query.orderBy('d.id', 'desc').limit(limit + 1).execute();
      const page = rows.slice(0, limit);
      return {
        items: page.map((d) => ({
          id: Number(d.id),
          eventId: d.event_id,
          type: d.type,
          status: d.status,
          attempts: d.attempts,
          lastStatusCode: d.last_status_code,
          lastError: d.last_error,
          lastAttemptAt: iso(d.last_attempt_at),
          nextAttemptAt: iso(d.next_attempt_at),
          deliveredAt: iso(d.delivered_at),
          createdAt: new Date(d.created_at).toISOString(),
        })),
        nextBefore: rows.length > limit ? Number(page[page.length - 1].id) : null,
      };
    },
  );
};
