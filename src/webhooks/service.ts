import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { sql, type Selectable } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { WebhookEndpointTable } from '../db/schema.js';
import { AppError, notFound, unprocessable } from '../http/errors.js';
import { cancelPendingDeliveries } from './delivery.js';
import { forgetWebhookEndpoints, WEBHOOK_EVENT_TYPES, type WebhookEventType } from './events.js';
import {
  CreateWebhookSchema,
  DeliveriesQuerySchema,
  UpdateWebhookSchema,
  type CreateWebhook,
  type DeliveriesDto,
  type DeliveriesQuery,
  type UpdateWebhook,
  type WebhookDto,
} from './schemas.js';
import { newWebhookSecret } from './signing.js';
import { checkWebhookUrl, type UrlPolicy } from './url-policy.js';

/**
 * The webhook endpoints of a program: create, list, change, delete, rotate the secret, read the
 * delivery log. The API (`/api/v1/webhooks`, routes.ts) and the cabinet (`/app/webhooks`) both
 * call these, so the URL policy (SSRF), the per-program limit and the input rules are in one place.
 * Inputs are checked against the API's schemas here too (the API has already done so; the cabinet
 * has not). Results never carry the signing secret, except `createWebhook` and
 * `rotateWebhookSecret`, which return it once.
 */

/** Endpoints per program: every emit fans out to each, so keep the fan-out small. */
export const MAX_WEBHOOKS_PER_PROGRAM = 10;

// Every column but the secret: results are built from these rows only, so it cannot leak.
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

/** The API's request schema, for callers that are not the API (400 `validation_failed`, with each problem's path). */
function checked<T>(schema: TSchema, input: unknown): T {
  if (Value.Check(schema, input)) return input as T;
  const errors = [...Value.Errors(schema, input)].map((e) => ({ path: e.path || '/', message: e.message }));
  throw new AppError(400, 'validation_failed', `Invalid webhook: ${[...new Set(errors.map((e) => `${e.path}: ${e.message}`))].join('; ')}`, { errors });
}

function findEndpoint(executor: Executor, programId: string, id: string) {
  return executor.selectFrom('webhook_endpoint').select(PUBLIC_COLUMNS).where('id', '=', id).where('program_id', '=', programId).executeTakeFirst();
}

/** Subscribes an endpoint; the result carries the signing secret (show it once, never again). */
export async function createWebhook(db: Db, policy: UrlPolicy, programId: string, input: CreateWebhook): Promise<WebhookDto & { secret: string }> {
  const body = checked<CreateWebhook>(CreateWebhookSchema, input);
  const url = checkWebhookUrl(body.url, policy);
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
      .values({ program_id: programId, url, events: sortedEvents(body.events), secret })
      .returning(PUBLIC_COLUMNS)
      .executeTakeFirstOrThrow();
  });
  forgetWebhookEndpoints(programId);
  return { ...webhookDto(row), secret };
}

/** The program's endpoints, oldest first (never their secrets). */
export async function listWebhooks(executor: Executor, programId: string): Promise<WebhookDto[]> {
  const rows = await executor.selectFrom('webhook_endpoint').select(PUBLIC_COLUMNS).where('program_id', '=', programId).orderBy('created_at').orderBy('id').execute();
  return rows.map(webhookDto);
}

/** One endpoint of the program (404 `webhook_not_found` otherwise). */
export async function getWebhook(executor: Executor, programId: string, webhookId: string): Promise<WebhookDto> {
  const row = await findEndpoint(executor, programId, webhookId);
  if (!row) throw notFound('webhook');
  return webhookDto(row);
}

/**
 * Changes the URL or the events, or enables/disables. A new URL or a re-enabled endpoint starts
 * with a clean failure record; disabling settles the deliveries still waiting as failed.
 */
export async function updateWebhook(
  db: Db,
  policy: UrlPolicy,
  programId: string,
  webhookId: string,
  input: UpdateWebhook,
  options: { disabledReason?: string } = {},
): Promise<WebhookDto> {
  const { url, events, enabled } = checked<UpdateWebhook>(UpdateWebhookSchema, input);
  const checkedUrl = url === undefined ? undefined : checkWebhookUrl(url, policy);
  const row = await db.transaction().execute(async (trx) => {
    const current = await trx
      .selectFrom('webhook_endpoint')
      .select(['id', 'enabled'])
      .where('id', '=', webhookId)
      .where('program_id', '=', programId)
      .forUpdate()
      .executeTakeFirst();
    if (!current) throw notFound('webhook');
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
        ...(turningOff ? { enabled: false, disabled_at: sql<Date>`now()`, disabled_reason: options.disabledReason ?? 'disabled through the API' } : {}),
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', current.id)
      .returning(PUBLIC_COLUMNS)
      .executeTakeFirstOrThrow();
    if (turningOff) await cancelPendingDeliveries(trx, current.id);
    return updated;
  });
  // This process's list goes now; the others' on the webhook_endpoints_changed notification.
  forgetWebhookEndpoints(programId);
  return webhookDto(row);
}

/** Deletes an endpoint and its delivery log. */
export async function deleteWebhook(executor: Executor, programId: string, webhookId: string): Promise<void> {
  const deleted = await executor.deleteFrom('webhook_endpoint').where('id', '=', webhookId).where('program_id', '=', programId).returning('id').executeTakeFirst();
  if (!deleted) throw notFound('webhook');
  forgetWebhookEndpoints(programId);
}

/** Replaces the signing secret, effective at once; the result carries the new one (show it once). */
export async function rotateWebhookSecret(executor: Executor, programId: string, webhookId: string): Promise<WebhookDto & { secret: string }> {
  const secret = newWebhookSecret();
  const row = await executor
    .updateTable('webhook_endpoint')
    .set({ secret, updated_at: sql<Date>`now()` })
    .where('id', '=', webhookId)
    .where('program_id', '=', programId)
    .returning(PUBLIC_COLUMNS)
    .executeTakeFirst();
  if (!row) throw notFound('webhook');
  return { ...webhookDto(row), secret };
}

/** The delivery log of an endpoint, newest first, a page at a time (`nextBefore` for the next one). */
export async function listDeliveries(executor: Executor, programId: string, webhookId: string, query: DeliveriesQuery = {}): Promise<DeliveriesDto> {
  const q = checked<DeliveriesQuery>(DeliveriesQuerySchema, query);
  const endpoint = await findEndpoint(executor, programId, webhookId);
  if (!endpoint) throw notFound('webhook');
  const limit = q.limit ?? 50;
  let select = executor
    .selectFrom('webhook_delivery as d')
    .innerJoin('webhook_event as ev', 'ev.id', 'd.event_id')
    .select(['d.id', 'd.event_id', 'ev.type', 'd.status', 'd.attempts', 'd.last_status_code', 'd.last_error', 'd.last_attempt_at', 'd.next_attempt_at', 'd.delivered_at', 'd.created_at'])
    .where('d.endpoint_id', '=', endpoint.id);
  if (q.status) select = select.where('d.status', '=', q.status);
  if (q.before) select = select.where('d.id', '<', q.before);
  const rows = await select.orderBy('d.id', 'desc').limit(limit + 1).execute();
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
}

/** Deliveries per endpoint and status created after `since` (the cabinet's overview). */
export async function deliveryCounts(
  executor: Executor,
  programId: string,
  since: Date,
): Promise<Map<string, Record<'pending' | 'delivered' | 'failed', number>>> {
  const rows = await executor
    .selectFrom('webhook_delivery as d')
    .innerJoin('webhook_endpoint as e', 'e.id', 'd.endpoint_id')
    .select(['d.endpoint_id', 'd.status', sql<number>`count(*)::int`.as('n')])
    .where('e.program_id', '=', programId)
    .where('d.created_at', '>', since)
    .groupBy(['d.endpoint_id', 'd.status'])
    .execute();
  const counts = new Map<string, Record<'pending' | 'delivered' | 'failed', number>>();
  for (const row of rows) {
    const entry = counts.get(row.endpoint_id) ?? { pending: 0, delivered: 0, failed: 0 };
    entry[row.status as 'pending' | 'delivered' | 'failed'] = Number(row.n);
    counts.set(row.endpoint_id, entry);
  }
  return counts;
}
