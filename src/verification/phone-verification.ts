import { createHmac, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.js';
import type { Database } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import type { SmsGateway } from '../sms/gateway.js';

/**
 * Phone verification by one-time code, reusable by any flow: `start(program, phone, purpose)` sends
 * a code, `check(program, phone, purpose, code, onVerified)` checks it and runs the caller's change
 * in the same transaction that consumes the code. `purpose` keeps flows apart (a code sent to
 * confirm a card cannot take over another flow's step): `join` (the join and card pages), and
 * whatever later flows name (e.g. a plastic card).
 *
 * The rules:
 * - 6 random digits (`crypto.randomInt`), valid 10 minutes, 5 attempts; a new code replaces the
 *   previous one of the same (program, phone, purpose);
 * - send limits: one code per phone per `resendAfterSeconds` (60), `perPhonePerHour` (3) per phone
 *   across programs, `perIpPerHour` (10) per client IP; a refusal is 429 with Retry-After;
 * - stored hashed: HMAC-SHA256 of (row id, code) under a key derived from ADMIN_KEY; the phone and
 *   the IP are stored as HMACs too, so the table holds no personal data and no usable code;
 * - never logged: neither the code nor the SMS text appears in any log or response.
 *
 * Concurrency: sends of one phone serialise on an advisory transaction lock (the limits cannot be
 * raced), checks on the row lock (5 attempts means 5, even in parallel).
 */
export interface VerificationSettings {
  codeTtlSeconds: number;
  maxAttempts: number;
  resendAfterSeconds: number;
  perPhonePerHour: number;
  perIpPerHour: number;
}

export const DEFAULT_VERIFICATION_SETTINGS: VerificationSettings = {
  codeTtlSeconds: 600,
  maxAttempts: 5,
  resendAfterSeconds: 60,
  perPhonePerHour: 3,
  perIpPerHour: 10,
};

const HOUR_MS = 3_600_000;
const PURPOSE_RE = /^[a-z][a-z0-9_]{0,31}$/;

export interface VerificationStart {
  verificationId: string;
  expiresAt: Date;
  /** When the next code may be asked for. */
  resendAt: Date;
}

export class PhoneVerificationService {
  readonly settings: VerificationSettings;

  constructor(
    private readonly db: Db,
    private readonly gateway: SmsGateway | undefined,
    private readonly key: Buffer,
    settings: Partial<VerificationSettings> = {},
    private readonly clock: () => Date = () => new Date(),
    private readonly logger?: { warn(obj: object, msg?: string): void },
  ) {
    this.settings = { ...DEFAULT_VERIFICATION_SETTINGS, ...settings };
  }

  /** Whether codes can be sent at all (SMS_GATEWAY_URL configured). */
  get available(): boolean {
    return this.gateway !== undefined;
  }

  private hmac(label: string, value: string): string {
    return createHmac('sha256', this.key).update(`${label}\n${value}`).digest('hex');
  }

  phoneHash(phone: string) {
    return this.hmac('phone', phone);
  }

  /**
   * Sends a new code to `phone` (E.164). `text` renders the SMS around the code. Throws 409
   * `verification_unavailable` without a gateway, 429 `verification_send_limit` (details
   * `retryAfterSeconds`) past a limit, 503 `sms_unavailable` when the gateway fails (the attempt
   * counts towards the limits all the same: a failing gateway is no way around them).
   */
  async start(input: { programId: string; phone: string; purpose: string; ip: string; text: (code: string) => string }): Promise<VerificationStart> {
    if (!this.gateway) throw new AppError(409, 'verification_unavailable', 'Phone verification is not available: no SMS gateway is configured');
    if (!PURPOSE_RE.test(input.purpose)) throw new Error(`invalid verification purpose ${input.purpose}`);
    const now = this.clock();
    const phoneHash = this.phoneHash(input.phone);
    const ipHash = this.hmac('ip', input.ip);
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const verificationId = randomUUID();
    const expiresAt = new Date(now.getTime() + this.settings.codeTtlSeconds * 1000);

    await this.db.transaction().execute(async (trx) => {
      // One phone's sends one after another, so two parallel requests cannot both pass the limits.
      await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`phone-verification:${phoneHash}`}, 0))`.execute(trx);
      const hourAgo = new Date(now.getTime() - HOUR_MS);
      const recent = await trx
        .selectFrom('phone_verification')
        .select('created_at')
        .where('phone_hash', '=', phoneHash)
        .where('created_at', '>', hourAgo)
        .orderBy('created_at', 'desc')
        .execute();
      const last = recent[0]?.created_at;
      if (last && now.getTime() - last.getTime() < this.settings.resendAfterSeconds * 1000) {
        throw sendLimit(Math.ceil((last.getTime() + this.settings.resendAfterSeconds * 1000 - now.getTime()) / 1000));
      }
      if (recent.length >= this.settings.perPhonePerHour) {
        const oldest = recent[recent.length - 1]!.created_at;
        throw sendLimit(Math.ceil((oldest.getTime() + HOUR_MS - now.getTime()) / 1000));
      }
      const byIp = await trx
        .selectFrom('phone_verification')
        .select(sql<number>`count(*)::int`.as('n'))
        .where('ip_hash', '=', ipHash)
        .where('created_at', '>', hourAgo)
        .executeTakeFirstOrThrow();
      if (Number(byIp.n) >= this.settings.perIpPerHour) throw sendLimit(HOUR_MS / 1000);
      // A new code replaces the open one of the same flow.
      await trx
        .updateTable('phone_verification')
        .set({ consumed_at: now })
        .where('program_id', '=', input.programId)
        .where('phone_hash', '=', phoneHash)
        .where('purpose', '=', input.purpose)
        .where('consumed_at', 'is', null)
        .execute();
      await trx
        .insertInto('phone_verification')
        .values({
          id: verificationId,
          program_id: input.programId,
          phone_hash: phoneHash,
          purpose: input.purpose,
          code_hash: this.hmac('code', `${verificationId}:${code}`),
          ip_hash: ipHash,
          created_at: now,
          expires_at: expiresAt,
        })
        .execute();
    });

    try {
      await this.gateway.send({ id: verificationId, to: input.phone, text: input.text(code) });
    } catch (error) {
      // The code went nowhere: make it unusable. The message names the gateway's status only.
      await this.db.updateTable('phone_verification').set({ consumed_at: now }).where('id', '=', verificationId).execute();
      this.logger?.warn({ verificationId, error: error instanceof Error ? error.message : 'unknown' }, 'one-time code not sent');
      throw new AppError(503, 'sms_unavailable', 'The code could not be sent; please try again later');
    }
    await this.db.updateTable('phone_verification').set({ sent_at: this.clock() }).where('id', '=', verificationId).execute();
    return { verificationId, expiresAt, resendAt: new Date(now.getTime() + this.settings.resendAfterSeconds * 1000) };
  }

  /**
   * Checks `code` against the open verification of (program, phone, purpose). Right: the code is
   * consumed and `onVerified(trx)` runs in the same transaction (what the proof unlocks commits with
   * it, or neither does). Wrong: the attempt is counted (committed) and 422
   * `verification_code_wrong` (details `attemptsLeft`) is thrown; the 5th wrong attempt locks the
   * code (429 `verification_locked` from then on). None open or expired: 410 `verification_expired`.
   */
  async check<T>(
    input: { programId: string; phone: string; purpose: string; code: string },
    onVerified: (trx: Transaction<Database>) => Promise<T>,
  ): Promise<T> {
    const phoneHash = this.phoneHash(input.phone);
    const code = input.code.replace(/\s+/g, '');
    const outcome = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('phone_verification')
        .selectAll()
        .where('program_id', '=', input.programId)
        .where('phone_hash', '=', phoneHash)
        .where('purpose', '=', input.purpose)
        .where('consumed_at', 'is', null)
        .where('sent_at', 'is not', null)
        .orderBy('created_at', 'desc')
        .limit(1)
        .forUpdate()
        .executeTakeFirst();
      const now = this.clock();
      if (!row || row.expires_at.getTime() <= now.getTime()) {
        return { error: new AppError(410, 'verification_expired', 'No valid code: ask for a new one') };
      }
      if (row.attempts >= this.settings.maxAttempts) {
        return { error: new AppError(429, 'verification_locked', 'Too many wrong codes: ask for a new one') };
      }
      const expected = Buffer.from(row.code_hash, 'hex');
      const given = Buffer.from(this.hmac('code', `${row.id}:${code}`), 'hex');
      if (!/^\d{6}$/.test(code) || !timingSafeEqual(expected, given)) {
        const attempts = row.attempts + 1;
        await trx.updateTable('phone_verification').set({ attempts }).where('id', '=', row.id).execute();
        const attemptsLeft = this.settings.maxAttempts - attempts;
        return {
          error:
            attemptsLeft > 0
              ? new AppError(422, 'verification_code_wrong', 'The code is not right', { attemptsLeft })
              : new AppError(429, 'verification_locked', 'Too many wrong codes: ask for a new one'),
        };
      }
      await trx.updateTable('phone_verification').set({ consumed_at: now, attempts: row.attempts + 1 }).where('id', '=', row.id).execute();
      return { value: await onVerified(trx) };
    });
    // Thrown after the commit, so a wrong attempt stays counted.
    if ('error' in outcome) throw outcome.error;
    return outcome.value as T;
  }
}

function sendLimit(retryAfterSeconds: number) {
  return new AppError(429, 'verification_send_limit', 'Too many codes were asked for; please wait', { retryAfterSeconds: Math.max(1, retryAfterSeconds) });
}
