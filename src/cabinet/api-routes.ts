import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { findActiveStaff } from '../enrollment/staff-routes.js';
import { requireProgramAdmin } from '../http/auth.js';
import { AppError, notFound } from '../http/errors.js';
import { problemResponses, Uuid } from '../http/schemas.js';
import { getProgramOr404 } from '../programs/service.js';
import {
  createSignInLink,
  DEFAULT_AUTH_SETTINGS,
  endStaffSessions,
  isEmail,
  normalizeEmail,
  passwordProblem,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  setPassword,
} from './auth.js';

const StaffParams = Type.Object({ programId: Uuid, staffId: Uuid });

/**
 * Cabinet access through the API (instance admin key or the program's admin key): how the first
 * owner of a new program gets in, and how an integration provisions staff sign-in.
 *
 * - `POST /programs/{programId}/staff/{staffId}/password` `{password, email?}` sets the password (and
 *   the sign-in email) of a staff member; their other sessions end.
 * - `POST /programs/{programId}/staff/{staffId}/sign-in-links` `{ttlMinutes?}` creates a one-time
 *   sign-in link (default 24 h, at most 7 days).
 */
export const cabinetApiRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { db } = ctx;

  async function staffOr404(programId: string, staffId: string) {
    await getProgramOr404(db, programId);
    const staff = await findActiveStaff(db, programId, staffId);
    if (!staff) throw notFound('staff', 'Staff member not found');
    return staff;
  }

  app.post(
    '/programs/:programId/staff/:staffId/password',
    {
      schema: {
        tags: ['staff'],
        summary: 'Set the cabinet password (and sign-in email) of a staff member; their other sessions end',
        params: StaffParams,
        body: Type.Object(
          {
            password: Type.String({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH }),
            email: Type.Optional(Type.String({ minLength: 3, maxLength: 254, description: 'Sign-in email, unique among the active staff of this program' })),
          },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null(), ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const { programId, staffId } = request.params;
      requireProgramAdmin(request, programId);
      const staff = await staffOr404(programId, staffId);
      const email = request.body.email !== undefined ? normalizeEmail(request.body.email) : staff.email;
      if (request.body.email !== undefined && !isEmail(email ?? '')) throw new AppError(400, 'validation_failed', 'email is not a valid email address');
      const problem = passwordProblem(request.body.password, email);
      if (problem) throw new AppError(422, `password_${problem}`, `The password is not acceptable (${problem.replace(/_/g, ' ')})`);
      if (email && email !== staff.email) {
        // Unique within the program only: a 409 for another program's e-mail was an oracle (issue #11).
        const taken = await db
          .selectFrom('staff_member')
          .select('id')
          .where('program_id', '=', programId)
          .where('email', '=', email)
          .where('deleted_at', 'is', null)
          .where('id', '<>', staffId)
          .executeTakeFirst();
        if (taken) throw new AppError(409, 'email_taken', 'Another staff member already uses this email');
        await db.updateTable('staff_member').set({ email }).where('id', '=', staffId).execute();
      }
      await setPassword(db, staffId, request.body.password, ctx.clock());
      await endStaffSessions(db, staffId);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/programs/:programId/staff/:staffId/sign-in-links',
    {
      schema: {
        tags: ['staff'],
        summary: 'Create a one-time cabinet sign-in link for a staff member (shown only in this response)',
        params: StaffParams,
        body: Type.Optional(
          Type.Object({ ttlMinutes: Type.Optional(Type.Integer({ minimum: 5, maximum: 7 * 24 * 60, default: 24 * 60 })) }, { additionalProperties: false }),
        ),
        response: {
          201: Type.Object({ url: Type.String(), expiresAt: Type.String({ format: 'date-time' }) }),
          ...problemResponses(),
        },
      },
    },
    async (request, reply) => {
      const { programId, staffId } = request.params;
      requireProgramAdmin(request, programId);
      await staffOr404(programId, staffId);
      const principal = request.principal;
      const createdBy = principal?.kind === 'program' ? `key:${principal.keyId}` : 'instance';
      const ttlMs = (request.body?.ttlMinutes ?? DEFAULT_AUTH_SETTINGS.linkTtlMs / 60_000) * 60_000;
      const link = await createSignInLink(db, { staffId, programId, createdBy, ttlMs, now: ctx.clock(), publicUrl: ctx.links.publicUrl });
      return reply.status(201).send({ url: link.url, expiresAt: link.expiresAt.toISOString() });
    },
  );
};
