import type { Db } from '../db/database.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Mailer } from '../mail/mailer.js';
import { clearAccountFailures, endStaffSessions, hashPassword, hashToken, isToken, newToken, normalizeEmail, signInCandidates } from './auth.js';
import { texts, type Lang } from './i18n.js';

/**
 * Password reset by email for cabinet staff members.
 *
 * 1. `request(email)`: for an active staff member with that sign-in email, one transaction inserts
 *    a `staff_password_reset` row and a job on the mail queue (the outbox: no row without its
 *    mail job, no job without its row). For any other email nothing happens; the caller answers the
 *    same either way.
 * 2. The mail job mints the random 256-bit token, stores only its SHA-256 on the row and sends the
 *    link `${PUBLIC_URL}/app/reset/<token>` in the program's language. The token therefore exists
 *    only in the mail: neither the row nor pg-boss's job table (which keeps job data) holds it, and
 *    it is never logged. A retried job mints a new token, so a link from an attempt whose mail may
 *    not have gone out stops working.
 * 3. `complete(token, password)`: single use (the update is the lock), only before the expiry, only
 *    while the staff member is active and still has that email; sets the argon2id hash, spends every
 *    other open reset of that member, ends all their sessions and clears their failed sign-ins.
 */

export const PASSWORD_RESET_MAIL_QUEUE = 'cabinet-password-reset-mail';

interface PasswordResetMailJob {
  resetId: string;
}

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export function passwordResetUrl(publicUrl: string, token: string): string {
  return `${publicUrl}/app/reset/${token}`;
}

/** Resets whose expiry passed this long ago are deleted as new requests arrive. */
const KEEP_EXPIRED_MS = 24 * 60 * 60 * 1000;

/** "30 минут" / "30 minutes" (Russian in the accusative: действует 1 минуту, 2 минуты, 5 минут). */
export function minutesText(lang: Lang, n: number): string {
  if (lang === 'en') return `${n} ${n === 1 ? 'minute' : 'minutes'}`;
  const m10 = n % 10;
  const m100 = n % 100;
  const word = m10 === 1 && m100 !== 11 ? 'минуту' : m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14) ? 'минуты' : 'минут';
  return `${n} ${word}`;
}

const MAIL = texts({
  ru: {
    subject: (program: string) => `Сброс пароля: кабинет программы «${program}»`,
    text: (v: { name: string; program: string; url: string; minutes: number }) =>
      [
        `Здравствуйте, ${v.name}!`,
        '',
        `Кто-то (вероятно, вы) попросил сбросить пароль для входа в кабинет программы «${v.program}».`,
        `Чтобы задать новый пароль, откройте ссылку. Она одноразовая и действует ${minutesText('ru', v.minutes)} с момента запроса:`,
        '',
        v.url,
        '',
        'Если вы не просили сброс, ничего не делайте: пароль останется прежним.',
      ].join('\n'),
  },
  en: {
    subject: (program) => `Password reset: ${program} cabinet`,
    text: (v) =>
      [
        `Hello ${v.name},`,
        '',
        `Someone (probably you) asked to reset the password you use to sign in to the ${v.program} cabinet.`,
        `To set a new password, open this link. It works once, for ${minutesText('en', v.minutes)} from the request:`,
        '',
        v.url,
        '',
        'If you did not ask for this, do nothing: your password stays as it is.',
      ].join('\n'),
  },
});

/** The reset mail (exported for tests and previews). */
export function passwordResetMail(lang: Lang, v: { name: string; program: string; url: string; minutes: number }) {
  return { subject: MAIL[lang].subject(v.program), text: MAIL[lang].text(v) };
}

export interface PasswordResetTarget {
  staffId: string;
  staffName: string;
  email: string;
  programName: string;
}

export interface PasswordResetService {
  /** False without SMTP_URL: there is no way to deliver the link, so the feature is off. */
  readonly enabled: boolean;
  /** Queues a reset mail if `email` belongs to an active staff member; does nothing otherwise. */
  request(email: string, input: { now: Date; ttlMs: number }): Promise<void>;
  /** Whom a token would reset, without using it (the form page). */
  peek(token: string, now: Date): Promise<PasswordResetTarget | undefined>;
  /** Uses a token to set a new (already validated) password. Undefined when the token is not valid (any more). */
  complete(token: string, password: string, now: Date): Promise<{ staffId: string } | undefined>;
  /** Creates the mail queue and, if asked, its worker. */
  start(runWorker: boolean): Promise<void>;
}

export function createPasswordReset(deps: {
  db: Db;
  jobs: JobQueue;
  mailer?: Mailer;
  publicUrl: string;
  clock: () => Date;
  logger: Logger;
}): PasswordResetService {
  const { db, jobs, mailer, logger } = deps;

  async function sendMail(resetId: string) {
    if (!mailer) throw new Error('no mailer (SMTP_URL is not set)');
    const row = await db
      .selectFrom('staff_password_reset as r')
      .innerJoin('staff_member as m', 'm.id', 'r.staff_id')
      .innerJoin('program as p', 'p.id', 'r.program_id')
      .select([
        'r.id',
        'r.staff_id',
        'r.email',
        'r.created_at',
        'r.expires_at',
        'r.used_at',
        'm.name',
        'm.email as current_email',
        'm.deleted_at',
        'p.name as program_name',
        'p.default_language',
      ])
      .where('r.id', '=', resetId)
      .executeTakeFirst();
    const now = deps.clock();
    if (!row || row.used_at || row.expires_at.getTime() <= now.getTime() || row.deleted_at || row.current_email !== row.email) {
      logger.info({ resetId }, 'password reset mail not sent: the request is used, expired or no longer matches the staff member');
      return;
    }
    const token = newToken();
    const minted = await db
      .updateTable('staff_password_reset')
      .set({ token_hash: hashToken(token) })
      .where('id', '=', resetId)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    if (Number(minted.numUpdatedRows) === 0) return;
    const minutes = Math.max(1, Math.round((row.expires_at.getTime() - row.created_at.getTime()) / 60_000));
    const mail = passwordResetMail(row.default_language, {
      name: row.name,
      program: row.program_name,
      url: passwordResetUrl(deps.publicUrl, token),
      minutes,
    });
    await mailer.send({ to: row.email, ...mail });
    await db.updateTable('staff_password_reset').set({ sent_at: deps.clock() }).where('id', '=', resetId).execute();
    logger.info({ resetId, staffId: row.staff_id }, 'password reset mail sent');
  }

  return {
    enabled: Boolean(mailer),

    async request(rawEmail, { now, ttlMs }) {
      if (!mailer) return;
      const email = normalizeEmail(rawEmail);
      // An e-mail is unique per program: the same person may be staff of several programs, and
      // each of those accounts gets its own link (the mail names the program).
      const staff = await signInCandidates(db, email);
      if (staff.length === 0) return;
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('staff_password_reset').where('expires_at', '<', new Date(now.getTime() - KEEP_EXPIRED_MS)).execute();
        for (const member of staff) {
          const reset = await trx
            .insertInto('staff_password_reset')
            .values({ staff_id: member.id, program_id: member.program_id, email, created_at: now, expires_at: new Date(now.getTime() + ttlMs) })
            .returning('id')
            .executeTakeFirstOrThrow();
          await jobs.send(trx, PASSWORD_RESET_MAIL_QUEUE, { resetId: reset.id } satisfies PasswordResetMailJob);
        }
      });
    },

    async peek(token, now) {
      if (!isToken(token)) return undefined;
      const row = await db
        .selectFrom('staff_password_reset as r')
        .innerJoin('staff_member as m', 'm.id', 'r.staff_id')
        .innerJoin('program as p', 'p.id', 'r.program_id')
        .select(['m.id as staff_id', 'm.name as staff_name', 'r.email', 'p.name as program_name'])
        .where('r.token_hash', '=', hashToken(token))
        .where('r.used_at', 'is', null)
        .where('r.expires_at', '>', now)
        .where('m.deleted_at', 'is', null)
        .whereRef('m.email', '=', 'r.email')
        .executeTakeFirst();
      return row ? { staffId: row.staff_id, staffName: row.staff_name, email: row.email, programName: row.program_name } : undefined;
    },

    async complete(token, password, now) {
      if (!isToken(token)) return undefined;
      // Hashed before the transaction: argon2 takes a while and the embedded database has one connection.
      const passwordHash = await hashPassword(password);
      return db.transaction().execute(async (trx) => {
        const used = await trx
          .updateTable('staff_password_reset')
          .set({ used_at: now })
          .where('token_hash', '=', hashToken(token))
          .where('used_at', 'is', null)
          .where('expires_at', '>', now)
          .returning(['staff_id', 'email'])
          .executeTakeFirst();
        if (!used) return undefined;
        const staff = await trx
          .selectFrom('staff_member')
          .select(['id', 'email'])
          .where('id', '=', used.staff_id)
          .where('deleted_at', 'is', null)
          .executeTakeFirst();
        if (!staff || staff.email !== used.email) return undefined;
        await trx.updateTable('staff_member').set({ password_hash: passwordHash, password_changed_at: now }).where('id', '=', staff.id).execute();
        // Other links of the same member (a second request) stop working; so do all their sessions.
        await trx.updateTable('staff_password_reset').set({ used_at: now }).where('staff_id', '=', staff.id).where('used_at', 'is', null).execute();
        await endStaffSessions(trx, staff.id);
        // Whoever could read the mailbox may sign in again at once.
        await clearAccountFailures(trx, used.email);
        return { staffId: staff.id };
      });
    },

    async start(runWorker) {
      if (!mailer) return;
      await jobs.ensureQueue(PASSWORD_RESET_MAIL_QUEUE, {
        policy: 'standard',
        // SMTP servers have bad minutes; the link is valid for 30 minutes, so retrying longer is pointless.
        retryLimit: 4,
        retryDelay: 20,
        retryBackoff: true,
        expireInSeconds: 120,
      });
      if (!runWorker) return;
      await jobs.work<PasswordResetMailJob>(PASSWORD_RESET_MAIL_QUEUE, { batchSize: 1 }, async ([job]) => {
        try {
          await sendMail(job.data.resetId);
        } catch (error) {
          logger.error({ err: error, resetId: job.data.resetId }, 'password reset mail failed; it will be retried');
          throw error;
        }
      });
    },
  };
}
