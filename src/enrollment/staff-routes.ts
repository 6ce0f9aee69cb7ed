import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import type { Executor } from '../db/database.js';
import { requireProgramAdmin } from '../http/auth.js';
import { AppError, notFound } from '../http/errors.js';
import { problemResponses, Uuid } from '../http/schemas.js';
import { getProgramOr404 } from '../programs/service.js';
import { joinQrUrls, joinUrl } from './links.js';

const StaffRole = Type.Union([Type.Literal('owner'), Type.Literal('marketer'), Type.Literal('cashier')]);
const StaffName = Type.String({ minLength: 1, maxLength: 200 });

export const CreateStaffSchema = Type.Object({ name: StaffName, role: StaffRole }, { additionalProperties: false });
export const UpdateStaffSchema = Type.Partial(CreateStaffSchema, { additionalProperties: false, minProperties: 1 });

export const StaffSchema = Type.Object({
  id: Type.String(),
  programId: Type.String(),
  name: Type.String(),
  role: StaffRole,
  createdAt: Type.String(),
  joinUrl: Type.String({ description: 'Personal join link: cards enrolled through it are attributed to this staff member' }),
  qr: Type.Object({
    svg: Type.String({ description: 'QR code of the join link (SVG, for print)' }),
    png: Type.String({ description: 'QR code of the join link (PNG, ?size= pixels)' }),
  }),
});
type StaffDto = Static<typeof StaffSchema>;

const ProgramParams = Type.Object({ programId: Uuid });
const StaffParams = Type.Object({ programId: Uuid, staffId: Uuid });

/** A staff member of the program that is not deleted (deleted ones only live on in statistics). */
export function findActiveStaff(executor: Executor, programId: string, staffId: string) {
  return executor
    .selectFrom('staff_member')
    .selectAll()
    .where('id', '=', staffId)
    .where('program_id', '=', programId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

/**
 * Staff members: the people whose personal join link or QR code enrolls customers (the staff
 * leaderboard in /stats counts their installs). Program admin key or the instance key.
 */
export const staffRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { db } = ctx;
  const publicUrl = ctx.links.publicUrl;

  function dto(slug: string, row: { id: string; program_id: string; name: string; role: StaffDto['role']; created_at: Date }): StaffDto {
    return {
      id: row.id,
      programId: row.program_id,
      name: row.name,
      role: row.role,
      createdAt: row.created_at.toISOString(),
      joinUrl: joinUrl(publicUrl, slug, { staff: row.id }),
      qr: joinQrUrls(publicUrl, slug, { staff: row.id }),
    };
  }

  async function staffOr404(programId: string, staffId: string) {
    const row = await findActiveStaff(db, programId, staffId);
    if (!row) throw notFound('staff', 'Staff member not found');
    return row;
  }

  app.post(
    '/programs/:programId/staff',
    {
      schema: {
        tags: ['staff'],
        summary: 'Add a staff member; the answer carries their personal join link and QR code URLs',
        params: ProgramParams,
        body: CreateStaffSchema,
        response: { 201: StaffSchema, ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId } = request.params;
      requireProgramAdmin(request, programId);
      const program = await getProgramOr404(db, programId);
      const row = await db
        .insertInto('staff_member')
        .values({ program_id: programId, name: request.body.name.trim(), role: request.body.role })
        .returningAll()
        .executeTakeFirstOrThrow();
      return reply.status(201).send(dto(program.slug, row));
    },
  );

  app.get(
    '/programs/:programId/staff',
    { schema: { tags: ['staff'], summary: 'List staff members', params: ProgramParams, response: { 200: Type.Array(StaffSchema), ...problemResponses() } } },
    async (request) => {
      const { programId } = request.params;
      requireProgramAdmin(request, programId);
      const program = await getProgramOr404(db, programId);
      const rows = await db
        .selectFrom('staff_member')
        .selectAll()
        .where('program_id', '=', programId)
        .where('deleted_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map((row) => dto(program.slug, row));
    },
  );

  app.get(
    '/programs/:programId/staff/:staffId',
    { schema: { tags: ['staff'], params: StaffParams, response: { 200: StaffSchema, ...problemResponses() } } },
    async (request) => {
      const { programId, staffId } = request.params;
      requireProgramAdmin(request, programId);
      const program = await getProgramOr404(db, programId);
      return dto(program.slug, await staffOr404(programId, staffId));
    },
  );

  app.patch(
    '/programs/:programId/staff/:staffId',
    {
      schema: {
        tags: ['staff'],
        summary: 'Rename a staff member or change the role',
        params: StaffParams,
        body: UpdateStaffSchema,
        response: { 200: StaffSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const { programId, staffId } = request.params;
      requireProgramAdmin(request, programId);
      const program = await getProgramOr404(db, programId);
      const { name, role } = request.body;
      if (name === undefined && role === undefined) throw new AppError(400, 'validation_failed', 'Send name or role');
      const row = await db
        .updateTable('staff_member')
        .set({ ...(name !== undefined ? { name: name.trim() } : {}), ...(role !== undefined ? { role } : {}) })
        .where('id', '=', staffId)
        .where('program_id', '=', programId)
        .where('deleted_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!row) throw notFound('staff', 'Staff member not found');
      return dto(program.slug, row);
    },
  );

  app.delete(
    '/programs/:programId/staff/:staffId',
    {
      schema: {
        tags: ['staff'],
        summary: 'Remove a staff member: their link stops attributing; past cards and statistics keep them',
        params: StaffParams,
        response: { 204: Type.Null(), ...problemResponses() },
      },
    },
    async (request, reply) => {
      const { programId, staffId } = request.params;
      requireProgramAdmin(request, programId);
      const result = await db
        .updateTable('staff_member')
        .set({ deleted_at: ctx.clock() })
        .where('id', '=', staffId)
        .where('program_id', '=', programId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw notFound('staff', 'Staff member not found');
      return reply.status(204).send(null);
    },
  );
};
