import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { requireInstance, requireProgramAdmin } from '../http/auth.js';
import { AppError } from '../http/errors.js';
import { problemResponses, Uuid } from '../http/schemas.js';
import type { AppContext } from '../app-context.js';
import { listPrograms } from './repository.js';
import { CreateKeySchema, CreateProgramSchema, KeySchema, ProgramSchema, UpdateProgramSchema } from './schemas.js';
import { createProgram, getProgramOr404, programDto, updateProgram } from './service.js';
import { IMAGE_NAMES, isPng, MAX_IMAGE_BYTES, saveProgramImage } from './images.js';
import { createProgramKey, listProgramKeys, revokeProgramKey } from './keys.js';

const ProgramParams = Type.Object({ programId: Uuid });

export const programRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { db } = ctx;
  const dto = (row: Parameters<typeof programDto>[0]) => programDto(row, ctx.appleIdentity);

  app.post(
    '/programs',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create a loyalty program (instance admin key)',
        body: CreateProgramSchema,
        response: { 201: ProgramSchema, ...problemResponses(409) },
      },
    },
    async (request, reply) => {
      requireInstance(request);
      const row = await createProgram(db, request.body);
      return reply.status(201).send(dto(row));
    },
  );

  app.get(
    '/programs',
    { schema: { tags: ['admin'], summary: 'List programs', response: { 200: Type.Array(ProgramSchema), ...problemResponses() } } },
    async (request) => {
      requireInstance(request);
      return (await listPrograms(db)).map(dto);
    },
  );

  app.get(
    '/programs/:programId',
    { schema: { tags: ['admin'], params: ProgramParams, response: { 200: ProgramSchema, ...problemResponses() } } },
    async (request) => {
      requireProgramAdmin(request, request.params.programId);
      return dto(await getProgramOr404(db, request.params.programId));
    },
  );

  app.patch(
    '/programs/:programId',
    {
      schema: {
        tags: ['admin'],
        summary: 'Change settings, design, texts, locations or rules; every card pass is updated',
        params: ProgramParams,
        body: UpdateProgramSchema,
        response: { 200: ProgramSchema, ...problemResponses() },
      },
    },
    async (request) => {
      requireProgramAdmin(request, request.params.programId);
      return dto(await updateProgram(db, ctx.cardChanges, request.params.programId, request.body));
    },
  );

  app.post(
    '/programs/:programId/keys',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create a program key; the key is shown only in this response',
        params: ProgramParams,
        body: CreateKeySchema,
        response: { 201: Type.Object({ id: Type.String(), role: Type.String(), name: Type.String(), key: Type.String() }), ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = request.params;
      requireProgramAdmin(request, programId);
      await getProgramOr404(db, programId);
      return reply.status(201).send(await createProgramKey(db, programId, request.body));
    },
  );

  app.get(
    '/programs/:programId/keys',
    { schema: { tags: ['admin'], params: ProgramParams, response: { 200: Type.Array(KeySchema), ...problemResponses() } } },
    async (request) => {
      requireProgramAdmin(request, request.params.programId);
      const rows = await listProgramKeys(db, request.params.programId);
      return rows.map((r) => ({
        id: r.id,
        role: r.role,
        name: r.name,
        createdAt: r.created_at.toISOString(),
        lastUsedAt: r.last_used_at?.toISOString() ?? null,
        revokedAt: r.revoked_at?.toISOString() ?? null,
      }));
    },
  );

  app.delete(
    '/programs/:programId/keys/:keyId',
    {
      schema: {
        tags: ['admin'],
        summary: 'Revoke a program key',
        params: Type.Object({ programId: Uuid, keyId: Uuid }),
        response: { 204: Type.Null(), ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId, keyId } = request.params;
      requireProgramAdmin(request, programId);
      await revokeProgramKey(db, programId, keyId);
      return reply.status(204).send(null);
    },
  );

  app.register(async (plain) => {
    const images = plain.withTypeProvider<TypeBoxTypeProvider>();
    // Images arrive as raw PNG bytes.
    images.addContentTypeParser('image/png', { parseAs: 'buffer', bodyLimit: MAX_IMAGE_BYTES }, (_req, body, done) => done(null, body));
    images.put(
      '/programs/:programId/images/:name',
      {
        schema: {
          tags: ['admin'],
          summary: 'Upload a pass image (PNG): icon, logo or strip, at 1x, @2x or @3x; every card pass is updated',
          params: Type.Object({ programId: Uuid, name: Type.Union(IMAGE_NAMES.map((n) => Type.Literal(n))) }),
          response: { 204: Type.Null(), ...problemResponses(413, 415) },
        },
      },
      async (request, reply) => {
        const { programId, name } = request.params;
        requireProgramAdmin(request, programId);
        const body = request.body as Buffer | undefined;
        if (!isPng(body)) throw new AppError(415, 'png_required', 'Send the image as Content-Type: image/png with PNG bytes');
        await saveProgramImage(ctx, programId, name, body);
        return reply.status(204).send(null);
      },
    );
  });
};
