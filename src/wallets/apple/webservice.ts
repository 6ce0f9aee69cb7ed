import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { sql } from 'kysely';
import type { AppContext } from '../../app-context.js';
import { findApplePassAuth, findCardWithProgramVersion, type ApplePassAuth, type CardWithProgramVersion } from '../../cards/repository.js';
import { AppError } from '../../http/errors.js';
import { trackAppleRegistrations } from '../../enrollment/funnel.js';
import type { PassFetchRecorder } from './pass-fetches.js';
import { findProgram } from '../../programs/repository.js';
import { tokenDigest as digest, type PassAuthEntry, type PassAuthMap } from './not-modified-map.js';

/**
 * The PassKit web service (Apple: "Wallet Passes – PassKit web service"; reference section 1 and
 * the checklist in section 7). Mounted under `{PUBLIC_URL}/apple`, the pass's `webServiceURL`;
 * devices append `/v1/...`.
 */

// Identifiers travel in URL paths; anything outside this shape is bad input (400), never a 500.
// (The router cuts path segments at 100 characters: longer ones answer 414 before any of this.)
const IDENTIFIER_PATTERN = '^[A-Za-z0-9._-]{1,100}$';
const IDENTIFIER_RE = new RegExp(IDENTIFIER_PATTERN);
const Identifier = Type.String({ pattern: IDENTIFIER_PATTERN, maxLength: 100 });
const DeviceParams = Type.Object({ deviceLibraryIdentifier: Identifier, passTypeIdentifier: Identifier });
const RegistrationParams = Type.Object({ deviceLibraryIdentifier: Identifier, passTypeIdentifier: Identifier, serialNumber: Identifier });
const PassParams = Type.Object({ passTypeIdentifier: Identifier, serialNumber: Identifier });

const MAX_LOG_LINES = 100;
/** Devices one pass may be registered on (an iPhone, a Watch, an iPad… and room for replaced phones). */
export const MAX_DEVICES_PER_PASS = 50;
const LOGGED_LINE_LENGTH = 512;

/** The serial and token a card had before a takeover (retired_apple_pass): they get a voided pass. */
interface RetiredPass {
  serial_number: string;
  auth_token: string;
  number: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated pass: only what authentication and a 304 need (findApplePassAuth). */
    applePassCard?: ApplePassAuth & { retired?: RetiredPass };
  }
}

/** A retired serial authenticates with its own (old) token and is answered with a voided pass. */
async function findRetiredPassAuth(db: AppContext['db'], serial: string) {
  const row = await db
    .selectFrom('retired_apple_pass')
    .select(['card_id', 'serial_number', 'auth_token', 'number', 'retired_at'])
    .where('serial_number', '=', serial)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    id: row.card_id,
    apple_auth_token: row.auth_token,
    updated_at: row.retired_at,
    retired: { serial_number: row.serial_number, auth_token: row.auth_token, number: row.number },
  };
}


/** `Authorization: ApplePass <authenticationToken>` (reference 1.2). */
const APPLE_PASS_AUTHORIZATION = /^ApplePass (\S+)$/;

/** A pass's Last-Modified in ms: its `updated_at` cut to the second (HTTP dates carry no fraction). */
const lastModifiedMsOf = (updatedAt: Date) => Math.floor(updatedAt.getTime() / 1000) * 1000;

/** The 304 map's entry for a card read from the database (Last-Modified computed once, here). */
function passAuthEntry(row: ApplePassAuth): PassAuthEntry {
  const lastModifiedMs = lastModifiedMsOf(row.updated_at);
  return { id: row.id, updated_at: row.updated_at, tokenDigest: digest(row.apple_auth_token), lastModified: new Date(lastModifiedMs).toUTCString(), lastModifiedMs };
}

/** Update tags are decimal strings of a bigint sequence; anything else counts as "no tag" (reference 1.3). */
export function parseUpdateTag(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

export const appleWebServiceRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext; passFetches?: PassFetchRecorder; passAuthMap?: PassAuthMap }> = async (
  app,
  { ctx, passFetches, passAuthMap },
) => {
  const { db, passes } = ctx;
  const passTypeIdentifier = passes.passTypeIdentifier;
  /** The pass's token check and Last-Modified, from the 304 map when it can answer, else from the database (and kept). */
  const findPassAuthForNotModified = async (serial: string): Promise<(ApplePassAuth & { tokenDigest?: Buffer }) | undefined> => {
    if (!passAuthMap) return findApplePassAuth(db, serial);
    const entry = await passAuthMap.lookup(serial, async () => {
      const row = await findApplePassAuth(db, serial);
      return row && passAuthEntry(row);
    });
    // The token itself is not kept: the check below compares digests.
    return entry && { id: entry.id, updated_at: entry.updated_at, apple_auth_token: '', tokenDigest: entry.tokenDigest };
  };

  /**
   * `Authorization: ApplePass <authenticationToken>` must match the token of exactly this pass.
   * Unknown serials and foreign pass types get the same 401 as a wrong token, so the endpoint is
   * no oracle for which serials exist (reference 1.2). Compared in constant time over digests.
   */
  /**
   * `lookup` reads the pass's card: the registration routes need three columns; the pass download
   * reads the whole card with its program's version in the same query, so a download is one query
   * (each round trip to PostgreSQL costs more than the columns, see bench:campaign).
   */
  function passAuthentication(
    lookup: (serial: string, request: FastifyRequest) => Promise<(ApplePassAuth & { retired?: RetiredPass; tokenDigest?: Buffer }) | undefined>,
  ) {
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const params = request.params as Record<string, string | undefined>;
      // The path is checked before the database is asked (its schema runs only after this hook, which
      // must answer 401 before the body is validated): `/v1/passes/{type}/%00` was a 500 (issue #11).
      for (const [name, value] of Object.entries(params)) {
        if (typeof value !== 'string' || !IDENTIFIER_RE.test(value)) {
          throw new AppError(400, 'validation_failed', `params/${name} must match pattern "${IDENTIFIER_PATTERN}"`);
        }
      }
      const header = request.headers.authorization;
      const match = typeof header === 'string' ? APPLE_PASS_AUTHORIZATION.exec(header) : null;
      const serial = match && params.passTypeIdentifier === passTypeIdentifier ? params.serialNumber : undefined;
      // A taken-over card's old serial (enrollment/takeover.ts) still answers its old token, with a voided pass.
      const card: (ApplePassAuth & { retired?: RetiredPass; tokenDigest?: Buffer }) | undefined = serial
        ? ((await lookup(serial, request)) ?? (await findRetiredPassAuth(db, serial)))
        : undefined;
      if (!match || !card || !timingSafeEqual(digest(match[1]), card.tokenDigest ?? digest(card.apple_auth_token))) {
        return reply.status(401).send();
      }
      const { tokenDigest: _digest, ...authenticated } = card;
      request.applePassCard = authenticated;
    };
  }
  const authenticatePass = passAuthentication((serial) => findApplePassAuth(db, serial));
  // A device that sends If-Modified-Since usually gets a 304: the three columns answer it (from the
  // 304 map when it can), and the whole card is read only if the pass did change. Without the header a
  // pass is always sent, so the whole card comes with the token check (bench:passes section 2 for the
  // first, bench:campaign for the second).
  const authenticatePassDownload = passAuthentication((serial, request) =>
    request.headers['if-modified-since'] === undefined ? findCardWithProgramVersion(db, serial) : findPassAuthForNotModified(serial),
  );

  /**
   * The poll of an unchanged pass, answered from the 304 map in the route's first hook (issue #14):
   * `If-Modified-Since` at or after the pass's Last-Modified (seconds; reference 1.2 "Get pass" and
   * the 304 rule in section 1.3: 304 when lastModified ≤ Date.parse(If-Modified-Since)), the pass in
   * the map and the token matching. It is the answer the route would give — the same checks on the same map entry, the
   * same status and headers — without the rest of the pipeline (the hooks after this one, the
   * schema, the handler): devices poll this far more often than passes change. Anything else
   * (no map entry, a wrong token, a changed pass, a bad path) goes on to the full route below,
   * which answers it as before. GET and HEAD have no body, so nothing is skipped that could refuse
   * the request; the input guard and the metrics hook run as for every request.
   */
  const ownTypeIsIdentifier = IDENTIFIER_RE.test(passTypeIdentifier);
  const notModifiedFromMap =
    passAuthMap &&
    ((request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      const since = request.headers['if-modified-since'];
      const header = request.headers.authorization;
      const params = request.params as { passTypeIdentifier?: unknown; serialNumber?: unknown };
      const serial = params.serialNumber;
      if (typeof since !== 'string' || typeof header !== 'string' || !ownTypeIsIdentifier || params.passTypeIdentifier !== passTypeIdentifier) return done();
      if (typeof serial !== 'string' || !IDENTIFIER_RE.test(serial)) return done();
      const entry = passAuthMap.peek(serial);
      // The device sends back the Last-Modified it was given: a string compare; else parsed as the route does.
      if (entry === undefined || (since !== entry.lastModified && !(Date.parse(since) >= entry.lastModifiedMs))) return done();
      const match = APPLE_PASS_AUTHORIZATION.exec(header);
      if (match === null || !timingSafeEqual(digest(match[1]!), entry.tokenDigest)) return done();
      reply.header('last-modified', entry.lastModified).header('cache-control', 'no-cache').status(304).send();
    });

  // Register a device for a pass; a repeat replaces the push token (reference 1.2: "Register").
  app.post(
    '/v1/devices/:deviceLibraryIdentifier/registrations/:passTypeIdentifier/:serialNumber',
    {
      bodyLimit: 4096,
      // Bodies are validated without type coercion (http/validation.ts): `{"pushToken": 12345}`,
      // `true` or `["abc"]` are a 400, not the stored tokens "12345", "true", "abc".
      preValidation: authenticatePass,
      schema: {
        tags: ['apple'],
        params: RegistrationParams,
        body: Type.Object({ pushToken: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9]+$' }) }),
      },
    },
    async (request, reply) => {
      const { deviceLibraryIdentifier, serialNumber } = request.params;
      // The card's first registration is an install in the funnel (enrollment/funnel.ts).
      const tracked = { cardId: request.applePassCard!.id, passTypeIdentifier, serialNumber };
      const row = await trackAppleRegistrations(db, tracked, ctx.clock(), async (trx) => {
        // At most MAX_DEVICES_PER_PASS devices per pass: 10,000 registrations on one pass turned one
        // balance change into 10,002 pushes (issue #11). The card row is locked for this transaction
        // (trackAppleRegistrations), so concurrent registrations cannot overshoot; the devices already
        // registered are kept, a known device may still refresh its push token, a new one is refused.
        const { devices, known } = await trx
          .selectFrom('apple_registration')
          .select([
            sql<number>`count(*)::int`.as('devices'),
            sql<boolean>`coalesce(bool_or(device_library_identifier = ${deviceLibraryIdentifier}), false)`.as('known'),
          ])
          .where('pass_type_identifier', '=', passTypeIdentifier)
          .where('serial_number', '=', serialNumber)
          .executeTakeFirstOrThrow();
        if (!known && devices >= MAX_DEVICES_PER_PASS) {
          throw new AppError(409, 'device_limit_reached', `This pass is already registered on ${MAX_DEVICES_PER_PASS} devices; remove it from one of them first`);
        }
        return trx
          .insertInto('apple_registration')
          .values({
            device_library_identifier: deviceLibraryIdentifier,
            pass_type_identifier: passTypeIdentifier,
            serial_number: serialNumber,
            push_token: request.body.pushToken,
          })
          .onConflict((oc) =>
            oc.columns(['device_library_identifier', 'pass_type_identifier', 'serial_number']).doUpdateSet({
              push_token: (eb) => eb.ref('excluded.push_token'),
              updated_at: new Date(),
            }),
          )
          // xmax is 0 only for a freshly inserted row: 201 new, 200 already registered.
          .returning(sql<boolean>`(xmax = 0)`.as('inserted'))
          .executeTakeFirstOrThrow();
      });
      return reply.status(row.inserted ? 201 : 200).send();
    },
  );

  // Unregister: 200 even when already gone. There is no device table: a device exists only
  // through its registrations, so one with none left is gone with its last row.
  app.delete(
    '/v1/devices/:deviceLibraryIdentifier/registrations/:passTypeIdentifier/:serialNumber',
    { preValidation: authenticatePass, schema: { tags: ['apple'], params: RegistrationParams } },
    async (request, reply) => {
      const { deviceLibraryIdentifier, serialNumber } = request.params;
      // The card's last registration gone is a removal in the funnel (enrollment/funnel.ts).
      const tracked = { cardId: request.applePassCard!.id, passTypeIdentifier, serialNumber };
      await trackAppleRegistrations(db, tracked, ctx.clock(), (trx) => trx
        .deleteFrom('apple_registration')
        .where('device_library_identifier', '=', deviceLibraryIdentifier)
        .where('pass_type_identifier', '=', passTypeIdentifier)
        .where('serial_number', '=', serialNumber)
        .execute());
      return reply.status(200).send();
    },
  );

  // Serials of this device's passes changed since the tag; no Authorization (reference 1.2: "List").
  app.get(
    '/v1/devices/:deviceLibraryIdentifier/registrations/:passTypeIdentifier',
    {
      // Devices poll these two routes; logging every poll at info costs ~25–30 µs a request
      // (measured by bench:passes) and floods the logs. Errors are still logged.
      logLevel: 'warn',
      schema: {
        tags: ['apple'],
        params: DeviceParams,
        // No maxLength: an over-long tag is garbage like any other and means "no tag" (reference 1.3;
        // parseUpdateTag bounds what counts as a tag). With a limit here, a long tag got a 400 while
        // "abc" got the full list. Node's header size limit bounds the URL anyway.
        querystring: Type.Object({ passesUpdatedSince: Type.Optional(Type.String()) }),
      },
    },
    async (request, reply) => {
      const { deviceLibraryIdentifier } = request.params;
      if (request.params.passTypeIdentifier !== passTypeIdentifier) return reply.status(204).send();
      const since = parseUpdateTag(request.query.passesUpdatedSince);
      let query = db
        .selectFrom('apple_registration as r')
        .innerJoin('card as c', 'c.apple_serial', 'r.serial_number')
        .select(['c.apple_serial', 'c.update_tag'])
        .where('r.device_library_identifier', '=', deviceLibraryIdentifier)
        .where('r.pass_type_identifier', '=', passTypeIdentifier);
      if (since !== undefined) query = query.where('c.update_tag', '>', since);
      let retired = db
        .selectFrom('apple_registration as r')
        .innerJoin('retired_apple_pass as p', 'p.serial_number', 'r.serial_number')
        .select(['p.serial_number as apple_serial', 'p.update_tag'])
        .where('r.device_library_identifier', '=', deviceLibraryIdentifier)
        .where('r.pass_type_identifier', '=', passTypeIdentifier);
      if (since !== undefined) retired = retired.where('p.update_tag', '>', since);
      // The voided pass of a taken-over card is listed like any changed pass, with its retirement tag.
      // One statement for both (a round trip less on every poll and on every campaign re-fetch).
      const rows = await query.unionAll(retired).execute();
      if (rows.length === 0) return reply.status(204).send();
      const lastUpdated = Math.max(...rows.map((r) => r.update_tag));
      // lastUpdated must be a string: a JSON number stopped updates (reference 1.3, Forums 694992).
      return reply
        .header('cache-control', 'no-cache')
        .send({ serialNumbers: rows.map((r) => r.apple_serial), lastUpdated: String(lastUpdated) });
    },
  );

  // The current pass. HEAD is answered by Fastify from this GET route (Wallet sends HEAD too).
  app.get(
    '/v1/passes/:passTypeIdentifier/:serialNumber',
    {
      ...(notModifiedFromMap ? { onRequest: notModifiedFromMap } : {}),
      preValidation: authenticatePassDownload,
      logLevel: 'warn',
      schema: { tags: ['apple'], params: PassParams },
    },
    async (request, reply) => {
      const lastModifiedMs = lastModifiedMsOf(request.applePassCard!.updated_at);
      reply.header('last-modified', new Date(lastModifiedMs).toUTCString()).header('cache-control', 'no-cache');
      const since = request.headers['if-modified-since'];
      const sinceMs = typeof since === 'string' ? Date.parse(since) : Number.NaN;
      if (!Number.isNaN(sinceMs) && lastModifiedMs <= sinceMs) return reply.status(304).send();
      const retired = request.applePassCard!.retired;
      if (retired) {
        const card = await db.selectFrom('card').selectAll().where('id', '=', request.applePassCard!.id).executeTakeFirst();
        const program = card ? await findProgram(db, card.program_id) : undefined;
        if (!card || !program) return reply.status(401).send();
        const pass = await passes.voidedPassFor(card, program, retired);
        // Delivered: the update path stops pushing this serial's devices (updates-adapter.ts).
        await db.updateTable('retired_apple_pass').set({ fetched_at: new Date() }).where('serial_number', '=', retired.serial_number).where('fetched_at', 'is', null).execute();
        return reply.type('application/vnd.apple.pkpass').send(pass);
      }
      const found =
        'program_version' in request.applePassCard! ? (request.applePassCard as CardWithProgramVersion) : await findCardWithProgramVersion(db, request.params.serialNumber);
      if (!found) return reply.status(401).send();
      const { program_version: programVersion, ...card } = found;
      reply.header('last-modified', new Date(lastModifiedMsOf(card.updated_at)).toUTCString());
      // The program row is the same for every card of a campaign: read once per version of it.
      const program = await passes.programAt(card.program_id, programVersion);
      if (!program) return reply.status(401).send();
      const pass = await passes.passFor(card, program);
      passFetches?.record(card.id, card.update_tag);
      return reply.type('application/vnd.apple.pkpass').send(pass);
    },
  );

  // Device error reports: unauthenticated, bounded, rate-limited, always 200 (reference 1.2, 6).
  app.post(
    '/v1/log',
    {
      bodyLimit: 64 * 1024,
      config: { rateLimit: { max: 60, timeWindow: '1 minute' } },
      schema: {
        tags: ['apple'],
        body: Type.Object({
          // Lines of any length are accepted and cut when logged ("always 200", reference 1.2); the
          // 64 KB body limit bounds the total.
          logs: Type.Array(Type.String(), { maxItems: MAX_LOG_LINES }),
        }),
      },
    },
    async (request, reply) => {
      for (const line of request.body.logs) {
        request.log.warn({ appleDeviceLog: line.slice(0, LOGGED_LINE_LENGTH) }, 'Apple Wallet device log');
      }
      return reply.status(200).send();
    },
  );
};
