/**
 * Invitations to the wallet (issue #12, item 3): the holders of cards on no wallet — typically an
 * imported plastic-card base — get their personal install link (the card page) by SMS (SMS_GATEWAY_URL)
 * and/or e-mail (SMTP_URL). Only holders with marketing consent; only active cards on no Apple device
 * and not saved in Google Wallet.
 *
 * A request creates a batch and a job; the job walks the cards in keyset pages (the batch keeps its
 * cursor, so a job restarted after a crash goes on where it stopped) and paces its sends at
 * `perSecond` messages per second (SMS providers and SMTP servers throttle, and a quarter of a
 * million messages at once would be a spam burst). Each card and channel is written as `sending`
 * before the message goes out: a crash between the two never sends a second message (at most once
 * per batch; a lost one is counted as `sending`). One batch per program runs at a time.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { InvitationChannel, ProgramRow } from '../db/schema.js';
import { AppError, notFound } from '../http/errors.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Mailer } from '../mail/mailer.js';
import type { SmsGateway } from '../sms/gateway.js';

export const INVITATIONS_QUEUE = 'invitations-send';

export interface InvitationSettings {
  /** Messages per second, both channels together. */
  perSecond: number;
  /** Cards read per page (keyset). */
  pageSize: number;
  /**
   * Pages one job sends before it hands the rest to a new job: at 5 messages a second a quarter of a
   * million holders take hours, longer than any job should hold its lease; a slice takes minutes.
   */
  pagesPerJob: number;
}
export const DEFAULT_INVITATION_SETTINGS: InvitationSettings = { perSecond: 5, pageSize: 200, pagesPerJob: 5 };

interface Logger {
  error(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

export interface InvitationBatchDto {
  id: string;
  channels: InvitationChannel[];
  status: 'queued' | 'sending' | 'finished';
  cards: number;
  skippedNoConsent: number;
  sms: { sent: number; failed: number };
  email: { sent: number; failed: number; noAddress: number };
  createdAt: string;
  finishedAt: string | null;
}

/** The invitation text in the program's language: its name and the holder's card page. */
export function invitationText(program: Pick<ProgramRow, 'name' | 'default_language'>, url: string) {
  return program.default_language === 'ru'
    ? {
        subject: `Ваша карта «${program.name}»`,
        text: `${program.name}: ваша карта лояльности готова. Добавьте её в Apple Wallet или Google Wallet: ${url}`,
      }
    : {
        subject: `Your ${program.name} card`,
        text: `${program.name}: your loyalty card is ready. Add it to Apple Wallet or Google Wallet: ${url}`,
      };
}

export function createInvitations(deps: {
  db: Db;
  jobs: JobQueue;
  sms?: SmsGateway;
  mailer?: Mailer;
  publicUrl: string;
  passTypeIdentifier: string;
  logger: Logger;
  settings?: Partial<InvitationSettings>;
}) {
  const { db, jobs, logger } = deps;
  const settings = { ...DEFAULT_INVITATION_SETTINGS, ...deps.settings };
  const gapMs = 1000 / settings.perSecond;

  async function dto(executor: Executor, programId: string, id: string): Promise<InvitationBatchDto> {
    const batch = await executor.selectFrom('invitation_batch').selectAll().where('program_id', '=', programId).where('id', '=', id).executeTakeFirst();
    if (!batch) throw notFound('invitation', 'Invitation batch not found');
    const counts = await executor
      .selectFrom('invitation')
      .select(['channel', 'status', (eb) => eb.fn.countAll<string>().as('n')])
      .where('program_id', '=', programId)
      .where('batch_id', '=', id)
      .groupBy(['channel', 'status'])
      .execute();
    const n = (channel: InvitationChannel, status: string) => Number(counts.find((c) => c.channel === channel && c.status === status)?.n ?? 0);
    return {
      id: batch.id,
      channels: batch.channels,
      status: batch.status,
      cards: batch.cards,
      skippedNoConsent: batch.skipped_no_consent,
      sms: { sent: n('sms', 'sent'), failed: n('sms', 'failed') },
      email: { sent: n('email', 'sent'), failed: n('email', 'failed'), noAddress: n('email', 'no_address') },
      createdAt: new Date(batch.created_at).toISOString(),
      finishedAt: batch.finished_at ? new Date(batch.finished_at).toISOString() : null,
    };
  }

  /** Sends one message; false when the channel refused it (counted as failed, never retried). */
  async function deliver(channel: InvitationChannel, to: string, message: { subject: string; text: string }): Promise<boolean> {
    try {
      if (channel === 'sms') await deps.sms!.send({ id: randomUUID(), to, text: message.text });
      else await deps.mailer!.send({ to, subject: message.subject, text: message.text });
      return true;
    } catch (error) {
      // The message and address stay out of the log: the error names the channel and the kind only.
      logger.error({ channel, err: error instanceof Error ? error.name : 'Error' }, 'an invitation could not be sent');
      return false;
    }
  }

  async function run(programId: string, batchId: string) {
    const batch = await db.selectFrom('invitation_batch').selectAll().where('program_id', '=', programId).where('id', '=', batchId).executeTakeFirst();
    if (!batch || batch.status === 'finished') return;
    const program = await db.selectFrom('program').selectAll().where('id', '=', programId).executeTakeFirstOrThrow();
    await db.updateTable('invitation_batch').set({ status: 'sending' }).where('program_id', '=', programId).where('id', '=', batchId).execute();
    let cursor = batch.cursor_card_id;
    for (let page = 0; ; page++) {
      if (page === settings.pagesPerJob) {
        // The rest in a new job, from the cursor just saved.
        await jobs.send(db, INVITATIONS_QUEUE, { programId, batchId });
        return;
      }
      const { rows } = await sql<{ id: string; phone: string; email: string | null; consent: boolean; public_token: string }>`
        SELECT c.id, c.phone, c.email, c.consent, c.public_token FROM card c
        WHERE c.program_id = ${programId} AND c.status = 'active' ${cursor === null ? sql`` : sql`AND c.id > ${cursor}`}
          AND NOT EXISTS (SELECT 1 FROM apple_registration r WHERE r.pass_type_identifier = ${deps.passTypeIdentifier} AND r.serial_number = c.apple_serial)
          AND NOT EXISTS (SELECT 1 FROM google_object g WHERE g.card_id = c.id AND g.saved)
        ORDER BY c.id LIMIT ${settings.pageSize}
      `.execute(db);
      if (rows.length === 0) break;
      let skipped = 0;
      for (const card of rows) {
        if (!card.consent) {
          skipped++;
          continue;
        }
        const message = invitationText(program, `${deps.publicUrl}/c/${card.public_token}`);
        for (const channel of batch.channels) {
          const to = channel === 'sms' ? card.phone : card.email;
          const claimed = await db
            .insertInto('invitation')
            .values({ program_id: programId, batch_id: batchId, card_id: card.id, channel, status: to ? 'sending' : 'no_address' })
            .onConflict((oc) => oc.columns(['program_id', 'batch_id', 'card_id', 'channel']).doNothing())
            .returning('status')
            .executeTakeFirst();
          // Already tried by an earlier run of this job, or nowhere to send it.
          if (!claimed || !to) continue;
          const ok = await deliver(channel, to, message);
          await db
            .updateTable('invitation')
            .set({ status: ok ? 'sent' : 'failed' })
            .where('program_id', '=', programId)
            .where('batch_id', '=', batchId)
            .where('card_id', '=', card.id)
            .where('channel', '=', channel)
            .execute();
          await new Promise((resolve) => setTimeout(resolve, gapMs));
        }
      }
      cursor = rows[rows.length - 1]!.id;
      await db
        .updateTable('invitation_batch')
        .set({ cursor_card_id: cursor, cards: sql<number>`cards + ${rows.length}`, skipped_no_consent: sql<number>`skipped_no_consent + ${skipped}` })
        .where('program_id', '=', programId)
        .where('id', '=', batchId)
        .execute();
      if (rows.length < settings.pageSize) break;
    }
    await db.updateTable('invitation_batch').set({ status: 'finished', finished_at: new Date() }).where('program_id', '=', programId).where('id', '=', batchId).execute();
    logger.info({ programId, batchId }, 'invitations sent');
  }

  return {
    /** Which channels this instance can send through. */
    channels(): InvitationChannel[] {
      return [...(deps.sms ? (['sms'] as const) : []), ...(deps.mailer ? (['email'] as const) : [])];
    },

    /** Creates a batch and its job in the caller's transaction. */
    async request(trx: Executor, programId: string, channels: InvitationChannel[], actor: string): Promise<InvitationBatchDto> {
      const unavailable = channels.filter((c) => !this.channels().includes(c));
      if (unavailable.length > 0) {
        throw new AppError(422, 'channel_unavailable', `Not configured on this service: ${unavailable.join(', ')} (SMS_GATEWAY_URL for sms, SMTP_URL and MAIL_FROM for email)`);
      }
      const running = await trx.selectFrom('invitation_batch').select('id').where('program_id', '=', programId).where('status', '!=', 'finished').executeTakeFirst();
      if (running) throw new AppError(409, 'invitations_in_progress', `Invitation batch ${running.id} is still being sent`, { batchId: running.id });
      let batch;
      try {
        batch = await trx
          .insertInto('invitation_batch')
          .values({ program_id: programId, channels: [...new Set(channels)], created_by: actor })
          .returning('id')
          .executeTakeFirstOrThrow();
      } catch (error) {
        // Two requests at once: the unique index of running batches decides, the loser is told so.
        if (/invitation_batch_running_idx/.test(String((error as { constraint?: string }).constraint ?? error))) {
          throw new AppError(409, 'invitations_in_progress', 'Another invitation batch of this program is being sent');
        }
        throw error;
      }
      await jobs.send(trx, INVITATIONS_QUEUE, { programId, batchId: batch.id });
      return dto(trx, programId, batch.id);
    },

    get: (programId: string, id: string) => dto(db, programId, id),

    async start(runWorker: boolean) {
      // A job that dies (process killed) is retried and goes on from the batch's cursor.
      await jobs.ensureQueue(INVITATIONS_QUEUE, { policy: 'standard', retryLimit: 5, retryDelay: 30, retryBackoff: true, expireInSeconds: 3600 });
      if (!runWorker) return;
      await jobs.work<{ programId: string; batchId: string }>(INVITATIONS_QUEUE, { batchSize: 1 }, async ([job]) => {
        await run(job!.data.programId, job!.data.batchId);
      });
    },
  };
}

export type Invitations = ReturnType<typeof createInvitations>;
