import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { requireProgramRole } from '../http/auth.js';
import { problemResponses, Uuid } from '../http/schemas.js';
import {
  CreateWebhookSchema,
  DeliveriesQuerySchema,
  DeliveriesSchema,
  UpdateWebhookSchema,
  WebhookSchema,
  WebhookWithSecretSchema,
} from './schemas.js';
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks, rotateWebhookSecret, updateWebhook } from './service.js';
import type { UrlPolicy } from './url-policy.js';

export { MAX_WEBHOOKS_PER_PROGRAM } from './service.js';

const WebhookParams = Type.Object({ webhookId: Uuid });
const ROLES = ['admin', 'marketer'] as const;

/** `/api/v1/webhooks`: the HTTP face of service.ts (the cabinet's `/app/webhooks` calls the same functions). */
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
      return reply.status(201).send(await createWebhook(db, policy, programId, request.body));
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
      return { items: await listWebhooks(db, programId) };
    },
  );

  app.get(
    '/webhooks/:webhookId',
    {
      schema: { tags: ['webhooks'], summary: 'One webhook (never its secret)', params: WebhookParams, response: { 200: WebhookSchema, ...problemResponses() } },
    },
    async (request) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      return getWebhook(db, programId, request.params.webhookId);
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
      return updateWebhook(db, policy, programId, request.params.webhookId, request.body);
    },
  );

  app.delete(
    '/webhooks/:webhookId',
    { schema: { tags: ['webhooks'], summary: 'Delete a webhook and its delivery log', params: WebhookParams, response: { 204: Type.Null(), ...problemResponses() } } },
    async (request, reply) => {
      const { programId } = requireProgramRole(request, [...ROLES]);
      await deleteWebhook(db, programId, request.params.webhookId);
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
      return rotateWebhookSecret(db, programId, request.params.webhookId);
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
      return listDeliveries(db, programId, request.params.webhookId, request.query);
    },
  );
};
