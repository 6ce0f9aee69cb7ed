import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { trustProxyOption, type Config } from './config.js';
import type { DatabaseHandle } from './db/database.js';
import { createNotifications, type Notifications } from './db/notifications.js';
import { databaseRateLimitStore, pruneRateLimitCounters } from './http/rate-limit-store.js';
import { runScheduled } from './jobs/scheduled.js';
import { createCertificateMonitor } from './wallets/apple/certificate-monitor.js';
import { attachApiKeyCache, createAuthenticator } from './http/auth.js';
import { attachProgramCache } from './programs/cache.js';
import { attachWebhookEndpointCache } from './webhooks/events.js';
import { AppError, clientErrorProblem, frameworkErrorProblem, registerErrorHandler, registerNotFoundHandler } from './http/errors.js';
import { registerInputGuard } from './http/input-guard.js';
import { validatorFactory } from './http/validation.js';
import { JobQueue } from './jobs/queue.js';
import { startRetention } from './jobs/retention.js';
import { createConfiguredSmsGateway } from './sms/gateway.js';
import { PhoneVerificationService, type VerificationSettings } from './verification/phone-verification.js';
import { createMetrics, httpDurationHook } from './metrics.js';
import { QrRenderer } from './enrollment/qr.js';
import { programRoutes } from './programs/routes.js';
import { cardRoutes } from './cards/routes.js';
import { loyaltyRoutes } from './loyalty/routes.js';
import { publicCardRoutes } from './enrollment/public-routes.js';
import { publicPageRoutes } from './enrollment/join-routes.js';
import { staffRoutes } from './enrollment/staff-routes.js';
import { statsRoutes } from './enrollment/stats-routes.js';
import { materialRoutes } from './materials/routes.js';
import { createWebhooks, webhookRoutes, type WebhookSettings } from './webhooks/index.js';
import { cabinetRoutes } from './cabinet/routes.js';
import { cabinetApiRoutes } from './cabinet/api-routes.js';
import { createPasswordReset } from './cabinet/password-reset.js';
import { withRedactedRequests } from './http/log-redaction.js';
import { createConfiguredMailer } from './mail/mailer.js';
import type { AuthSettings } from './cabinet/auth.js';
import { campaignRoutes, createCampaignModule } from './campaigns/index.js';
import { createEconomicsModule, economicsRoutes } from './economics/index.js';
import { createImportModule, importRoutes, type ImportSettings } from './imports/index.js';
import { privacyRoutes } from './privacy/routes.js';
import { couponRoutes } from './coupons/routes.js';
import { createInvitations, type InvitationSettings } from './privacy/invitations.js';
import { DEFAULT_JOIN_FORM_SETTINGS, deriveKey, type JoinFormSettings } from './enrollment/guard.js';
import { createCardChangeRecorder, startWalletUpdateWorkers, type WalletAdapter } from './updates/card-changes.js';
import { pendingDeliverySummary } from './updates/pending-deliveries.js';
import { DEFAULT_REDELIVERY_SETTINGS, startRedelivery, type Redelivery, type RedeliverySettings } from './updates/redelivery.js';
import type { AppContext } from './app-context.js';
import type { AppleSigningMaterial } from './wallets/apple/certificates.js';
import type { ApnsSender } from './wallets/apple/apns.js';
import { PassService, type PassPackager } from './wallets/apple/pass-service.js';
import { appleWebServiceRoutes } from './wallets/apple/webservice.js';
import { PassAuthMap } from './wallets/apple/not-modified-map.js';
import { createAppleUpdatesAdapter } from './wallets/apple/updates-adapter.js';
import type { GoogleWalletClient } from './wallets/google/client.js';
import type { GoogleWalletSettings } from './wallets/google/config.js';
import type { CallbackVerifier } from './wallets/google/callback.js';
import { googleWalletRoutes } from './wallets/google/routes.js';
import { GoogleWalletService } from './wallets/google/service.js';

/** The outside world, passed in so tests can build the app with fakes and local stand-ins. */
export interface AppDeps {
  config: Config;
  database: DatabaseHandle;
  /** The instance admin key (from ADMIN_KEY, or generated in development). */
  adminKey: string;
  clock?: () => Date;
  apple: {
    material: AppleSigningMaterial;
    packager: PassPackager;
    apns: ApnsSender;
  };
  /** A pino logger; none in tests unless given. */
  logger?: FastifyBaseLogger;
  /** Google Wallet; absent = Apple only. */
  google?: {
    client: GoogleWalletClient;
    settings: GoogleWalletSettings;
    verifier: CallbackVerifier;
  };
  /**
   * Start the background workers with the app (default: as ROLE says, i.e. not for `api`; the
   * bench and some tests turn them off).
   */
  runWorkers?: boolean;
  /** Cross-instance notifications (default: over `database`, see db/notifications.ts). */
  notifications?: Notifications;
  /** Seconds a wallet update waits so bursts coalesce (default: config). */
  pollingIntervalSeconds?: number;
  /** Join-form bot timing and rate limit (defaults in enrollment/guard.ts; tests shorten them). */
  joinForm?: Partial<JoinFormSettings>;
  /** Webhook retry delays, disable span and timeout (defaults in webhooks/delivery.ts; tests shorten them). */
  webhooks?: Partial<WebhookSettings>;
  /** Cabinet sessions, sign-in links and sign-in limits (defaults in cabinet/auth.ts; tests shorten them). */
  cabinet?: Partial<AuthSettings>;
  /** One-time code lifetime, attempts and send limits (defaults in verification/phone-verification.ts). */
  verification?: Partial<VerificationSettings>;
  /** Invitations to the wallet: messages per second (default in privacy/invitations.ts; tests raise it). */
  invitations?: Partial<InvitationSettings>;
  /** Retries of pending wallet deliveries: poll, batch, lease, backoff (defaults in updates/redelivery.ts; tests shorten them). */
  redelivery?: Partial<RedeliverySettings>;
  /** Import chunk size, file limit, stall watchdog (defaults from config; tests shorten them). */
  imports?: Partial<ImportSettings>;
}

export type App = FastifyInstance & { ctx: AppContext };

/** Worker housekeeping every 10 minutes (expired rate-limit counters), once across all workers. */
export const MAINTENANCE_QUEUE = 'maintenance';

/**
 * The composition root. Builds the whole service from its dependencies and never listens:
 * `server.ts` adds the port, timeouts and signals; tests use `inject()` or `listen({port: 0})`.
 */
export async function buildApp(deps: AppDeps): Promise<App> {
  const { config } = deps;
  const db = deps.database.db;
  // ROLE (issue #13): `api` serves HTTP and only enqueues; `worker` runs the queues and serves only
  // the health and metrics routes; `all` does both.
  const serveApi = config.ROLE !== 'worker';
  const runWorkers = config.ROLE !== 'api' && deps.runWorkers !== false;
  const app = Fastify({
    // Request URLs are logged with one-time tokens (sign-in and reset links) redacted.
    ...(deps.logger ? { loggerInstance: withRedactedRequests(deps.logger) } : { logger: false }),
    genReqId: () => crypto.randomUUID(),
    // Behind a reverse proxy: the client address comes from X-Forwarded-For, only when the peer is a trusted proxy.
    ...(config.TRUST_PROXY ? { trustProxy: trustProxyOption(config.TRUST_PROXY) } : {}),
    // Devices may call `//v1/...` when webServiceURL ends in a slash (reference 6, pass-js#127).
    routerOptions: { ignoreDuplicateSlashes: true, ignoreTrailingSlash: true },
    bodyLimit: 256 * 1024,
    // Bodies are validated without type coercion, paths and queries with it (http/validation.ts).
    schemaController: { compilersFactory: { buildValidator: validatorFactory() } },
    // Router and HTTP-parser errors are problem details too (bad percent-encoding, an over-long path segment).
    frameworkErrors: frameworkErrorProblem,
    clientErrorHandler: clientErrorProblem,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // An empty body with Content-Type: application/json (Wallet's DELETE may send one) is no body,
  // not a 400 (reference section 6).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // JSON is UTF-8 (RFC 8259); a body that says it is encoded otherwise would be read as something else.
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(String(request.headers['content-type']))?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      const error = Object.assign(new Error(`JSON bodies must be UTF-8 (got charset=${charset.slice(0, 40)})`), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' });
      return done(error, undefined);
    }
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const error = Object.assign(new Error('The request body is not valid JSON'), {
        statusCode: 400,
        code: 'FST_ERR_CTP_INVALID_JSON_BODY',
      });
      done(error, undefined);
    }
  });

  registerErrorHandler(app);
  const metrics = createMetrics({ pendingDeliveries: () => pendingDeliverySummary(db) });
  const redeliverySettings: RedeliverySettings = { ...DEFAULT_REDELIVERY_SETTINGS, ...deps.redelivery };
  // pg-boss's maintenance and cron run where the workers run; an `api` instance only sends jobs.
  const jobs = new JobQueue(db, { pollingIntervalSeconds: deps.pollingIntervalSeconds, logger: app.log, maintenance: runWorkers });
  const notifications = deps.notifications ?? createNotifications(deps.database, { logger: app.log });
  const wallets = deps.google ? ['apple', 'google'] : ['apple'];
  // The PassKit web service's 304 map (issue #14): this process's own card changes hold their cards
  // out of it until committed and notified (wallets/apple/not-modified-map.ts).
  const passAuthMap = config.APPLE_NOT_MODIFIED_MAP ? new PassAuthMap(notifications) : undefined;
  const cardChanges = createCardChangeRecorder(jobs, {
    debounceSeconds: config.PASS_UPDATE_DEBOUNCE_SECONDS,
    wallets,
    cardsPerJob: { apple: config.APPLE_UPDATE_CARDS_PER_JOB },
    onChanging: passAuthMap && ((cardIds) => passAuthMap.cardsChanging(cardIds)),
  });
  const passes = new PassService(db, deps.apple.packager, deps.apple.material, config.PUBLIC_URL);
  // Program rows and images are cached per version anyway; a change anywhere frees the old ones here.
  notifications.subscribe('program_changed', (programId) => passes.forgetProgram(programId));
  notifications.onReset(() => passes.forgetAllPrograms());
  // The hot paths' caches (issue #14), each forgetting what its notification names.
  const detachCaches = [attachProgramCache(notifications), attachApiKeyCache(notifications), attachWebhookEndpointCache(notifications)];
  if (passAuthMap) detachCaches.push(passAuthMap.detach);
  const clock = deps.clock ?? (() => new Date());
  const certificates = createCertificateMonitor({ material: deps.apple.material, clock, logger: app.log, registry: metrics.registry });
  const lifecycle = { stopping: false };
  // The code, the phone and the client IP are stored as HMACs under this key (no extra secret to configure).
  const verification = new PhoneVerificationService(
    db,
    createConfiguredSmsGateway(config),
    deriveKey(deps.adminKey, 'phone-verification'),
    deps.verification,
    clock,
    app.log,
  );
  const ctx: AppContext = {
    config,
    db,
    dbKind: deps.database.kind,
    notifications,
    certificates,
    clock,
    jobs,
    cardChanges,
    passes,
    appleIdentity: {
      passTypeIdentifier: deps.apple.material.passTypeIdentifier,
      teamIdentifier: deps.apple.material.teamIdentifier,
    },
    links: { publicUrl: config.PUBLIC_URL, googleEnabled: Boolean(deps.google) },
    metrics,
    qr: new QrRenderer(),
    verification,
  };
  app.decorate('ctx', ctx);

  const google = deps.google
    ? new GoogleWalletService(db, deps.google.client, deps.google.settings, config.PUBLIC_URL, app.log, ctx.clock, (stats) => {
        metrics.googleUpdates.inc({ outcome: 'updated' }, stats.objectsUpdated);
        metrics.googleUpdates.inc({ outcome: 'notified' }, stats.notificationsSent);
        metrics.googleUpdates.inc({ outcome: 'downgraded' }, stats.notificationsDowngraded);
        metrics.googleUpdates.inc({ outcome: 'deferred' }, stats.deferred);
        metrics.googleUpdates.inc({ outcome: 'failed' }, stats.failed);
        for (const [reason, n] of Object.entries(stats.failedBy)) metrics.walletDeliveriesFailed.inc({ wallet: 'google', reason }, n);
        if (stats.retry) {
          metrics.walletDeliveryRetries.inc({ wallet: 'google', result: 'delivered' }, stats.objectsUpdated);
          metrics.walletDeliveryRetries.inc({ wallet: 'google', result: 'deferred' }, stats.deferred);
          metrics.walletDeliveryRetries.inc({ wallet: 'google', result: 'failed' }, stats.failed);
        }
      })
    : undefined;
  const retryPolicy = redeliverySettings.policy;
  const adapters: WalletAdapter[] = [
    createAppleUpdatesAdapter(db, deps.apple.apns, deps.apple.material.passTypeIdentifier, app.log, {
      retryPolicy,
      onPushed: (stats, retry) => {
        metrics.applePushes.inc({ outcome: 'delivered' }, stats.delivered);
        metrics.applePushes.inc({ outcome: 'deferred' }, stats.deferred);
        metrics.applePushes.inc({ outcome: 'failed' }, stats.failed);
        for (const [reason, n] of Object.entries(stats.failedBy)) metrics.walletDeliveriesFailed.inc({ wallet: 'apple', reason }, n);
        if (retry) {
          metrics.walletDeliveryRetries.inc({ wallet: 'apple', result: 'delivered' }, stats.delivered);
          metrics.walletDeliveryRetries.inc({ wallet: 'apple', result: 'deferred' }, stats.deferred);
          metrics.walletDeliveryRetries.inc({ wallet: 'apple', result: 'failed' }, stats.failed);
        }
      },
    }),
  ];
  if (google) adapters.push(google.adapter({ retryPolicy }));
  let redelivery: Redelivery | undefined;

  const webhooks = createWebhooks({ config, db, jobs, logger: app.log, registry: metrics.registry, overrides: deps.webhooks });
  const campaignModule = createCampaignModule({
    config,
    db,
    jobs,
    cardChanges,
    clock: ctx.clock,
    wallets,
    passTypeIdentifier: deps.apple.material.passTypeIdentifier,
    google,
    logger: app.log,
  });
  app.decorate('campaigns', campaignModule.campaigns);
  app.decorate('automations', campaignModule.automations);
  const economics = createEconomicsModule({ db, jobs, clock: ctx.clock, logger: app.log });
  const importModule = createImportModule({
    config,
    db,
    jobs,
    cardChanges,
    clock: ctx.clock,
    logger: app.log,
    settings: deps.imports,
  });
  app.decorate('imports', importModule.imports);
  app.decorate('economics', economics);
  // Outgoing mail (SMTP_URL); without it the cabinet's password reset by email is off.
  const mailer = createConfiguredMailer(config);
  const passwordReset = createPasswordReset({ db, jobs, mailer, publicUrl: config.PUBLIC_URL, clock: ctx.clock, logger: app.log });
  const invitations = createInvitations({
    db,
    jobs,
    sms: createConfiguredSmsGateway(config),
    mailer,
    publicUrl: config.PUBLIC_URL,
    passTypeIdentifier: deps.apple.material.passTypeIdentifier,
    logger: app.log,
    settings: deps.invitations,
  });

  app.addHook('onReady', async () => {
    await notifications.ready();
    await jobs.start();
    // Every role creates the queues (an api instance sends to them); only workers work them.
    if (runWorkers) {
      await startWalletUpdateWorkers(jobs, adapters, app.log, { onPublished: campaignModule.onPublished });
      redelivery = startRedelivery(db, adapters, app.log, { settings: redeliverySettings, onPublished: campaignModule.onPublished });
    }
    await campaignModule.start(runWorkers);
    await webhooks.start(runWorkers);
    await passwordReset.start(runWorkers);
    await invitations.start(runWorkers);
    await startRetention(jobs, db, {
      settings: { idempotencyDays: config.IDEMPOTENCY_RETENTION_DAYS },
      runWorkers,
      logger: app.log,
    });
    if (runWorkers) {
      await jobs.ensureQueue(MAINTENANCE_QUEUE, { policy: 'singleton', retryLimit: 1, expireInSeconds: 300 });
      await jobs.boss.schedule(MAINTENANCE_QUEUE, '*/10 * * * *');
      await jobs.work(MAINTENANCE_QUEUE, {}, async () => {
        await runScheduled(db, MAINTENANCE_QUEUE, { leaseSeconds: 300, minIntervalSeconds: 300 }, () => pruneRateLimitCounters(db));
      });
    }
    await economics.start(runWorkers);
    await importModule.start(runWorkers);
    certificates.start();
  });
  app.addHook('preClose', async () => {
    // From here /readyz answers 503, so a load balancer stops sending new requests.
    lifecycle.stopping = true;
  });
  app.addHook('onClose', async () => {
    certificates.stop();
    // Let running jobs and retry rounds finish before the database goes away; unfinished jobs are
    // retried elsewhere.
    await redelivery?.stop();
    await jobs.stop();
    webhooks.close();
    mailer?.close();
    await campaignModule.close();
    importModule.close();
    await ctx.qr.close();
    for (const detach of detachCaches) detach();
    await notifications.close();
  });
  /**
   * The request hooks every route has: NUL bytes and unpaired surrogates are refused before any
   * route or hook reads the request (http/input-guard.ts), and every request is timed into the
   * metrics. They are added to each top-level context rather than to the root, so that the PassKit
   * web service (below) is a context of its own: devices poll it far more often than anything else
   * is called, and its routes carry only these two hooks and their own (issue #14). Nothing else is
   * hooked at the root: the error handler is inherited, rate limits and the OpenAPI document work
   * per route (onRoute), and the 404 handler runs the hooks of the context it is set in.
   */
  const onResponse = httpDurationHook(metrics);
  const withEdgeHooks = (instance: FastifyInstance) => {
    registerInputGuard(instance);
    instance.addHook('onResponse', onResponse);
  };

  // Per-address limits are counted in the database, across every instance (issue #13).
  await app.register(rateLimit, { global: false, store: databaseRateLimitStore(db) as never });
  if (serveApi) {
    await app.register(swagger, {
      openapi: {
        info: { title: 'walletcards API', version: '1', description: 'Loyalty cards in Apple Wallet and Google Wallet' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }],
      },
    });
    const authenticate = createAuthenticator(db, deps.adminKey);
    // The API and its documentation, with the edge hooks (registered before the PassKit routes, so
    // the OpenAPI document lists the routes in the same order as before).
    await app.register(async (edge) => {
      withEdgeHooks(edge);
      await edge.register(swaggerUi, { routePrefix: '/docs' });
      await edge.register(
        async (api) => {
          api.addHook('onRequest', async (request) => {
            request.principal = await authenticate(request);
          });
          await api.register(programRoutes, { ctx });
          await api.register(cardRoutes, { ctx });
          await api.register(loyaltyRoutes, { ctx });
          await api.register(staffRoutes, { ctx });
          await api.register(statsRoutes, { ctx });
          await api.register(materialRoutes, { ctx });
          await api.register(webhookRoutes, { ctx, policy: webhooks.policy });
          await api.register(cabinetApiRoutes, { ctx });
          await api.register(campaignRoutes, { ctx, campaigns: campaignModule.campaigns, automations: campaignModule.automations });
          await api.register(economicsRoutes, { ctx });
          await api.register(importRoutes, { ctx, imports: importModule.imports });
          await api.register(privacyRoutes, { ctx, invitations });
          await api.register(couponRoutes, { ctx });
        },
        { prefix: '/api/v1' },
      );
    });
    // The PassKit web service (Apple's fixed protocol paths under the pass's webServiceURL): its
    // own context with the edge hooks and nothing else. It authenticates by `ApplePass` token in
    // its own route hooks, not by API keys or sessions (wallets/apple/webservice.ts).
    await app.register(
      async (passKit) => {
        withEdgeHooks(passKit);
        await passKit.register(appleWebServiceRoutes, { ctx, passFetches: campaignModule.passFetches, passAuthMap });
      },
      { prefix: '/apple' },
    );
  }

  // Everything else, and the 404 answer for what matches no route, with the edge hooks.
  await app.register(async (edge) => {
    withEdgeHooks(edge);
    registerNotFoundHandler(edge);
    if (serveApi) {
      await edge.register(googleWalletRoutes, { ctx, google, verifier: deps.google?.verifier });
      await edge.register(publicCardRoutes, { ctx });
      await edge.register(publicPageRoutes, {
        ctx,
        joinForm: { ...DEFAULT_JOIN_FORM_SETTINGS, ...deps.joinForm },
        keys: { form: deriveKey(deps.adminKey, 'join-form'), visitor: deriveKey(deps.adminKey, 'join-visitor') },
      });

      await edge.register(cabinetRoutes, {
        ctx,
        csrfKey: deriveKey(deps.adminKey, 'cabinet-csrf'),
        auth: deps.cabinet,
        campaigns: campaignModule.campaigns,
        passwordReset,
        imports: importModule.imports,
      });
      // The root is where a newcomer lands first: the cabinet (it asks to sign in), not a JSON 404.
      edge.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/app', 302));
    }

    edge.get('/livez', { schema: { hide: true } }, async () => ({ status: 'ok' }));
    /**
     * Readiness: 200 when this instance can do its job (database reachable, job queue installed and
     * running), 503 otherwise and while shutting down. The certificate's state is reported but does
     * not make an instance unready: an expired certificate stops pushes and signing on every instance
     * alike, and taking them all out of the load balancer would stop the POS API too.
     */
    edge.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
      const [database, queue] = await Promise.all([
        db
          .selectFrom('program')
          .select('id')
          .limit(1)
          .execute()
          .then(() => 'ok' as const, () => 'unreachable' as const),
        jobs.health(),
      ]);
      const report = certificates.report();
      const passTypeId = report.certificates.find((c) => c.certificate === 'pass_type_id')!;
      const ready = database === 'ok' && queue === 'ok' && !lifecycle.stopping;
      return reply.status(ready ? 200 : 503).send({
        status: ready ? 'ok' : lifecycle.stopping ? 'stopping' : 'unavailable',
        role: config.ROLE,
        database: database === 'ok' ? ctx.dbKind : database,
        queue,
        certificate: { state: report.state, expiresAt: passTypeId.notAfter.toISOString(), daysLeft: passTypeId.daysLeft },
      });
    });
    // Prometheus metrics: behind METRICS_TOKEN when it is set; without it, off in production and open
    // in development and test (spec: Configuration). The figures describe the business (campaigns,
    // pushes, request rates per route): not for the public.
    const metricsDigest = config.METRICS_TOKEN ? createHash('sha256').update(config.METRICS_TOKEN).digest() : undefined;
    edge.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      if (!metricsDigest && config.NODE_ENV === 'production') throw new AppError(404, 'route_not_found', 'No route GET /metrics');
      if (metricsDigest) {
        const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
        const given = createHash('sha256').update(match?.[1] ?? '').digest();
        if (!match || !timingSafeEqual(given, metricsDigest)) {
          reply.header('www-authenticate', 'Bearer realm="metrics"');
          throw new AppError(401, 'unauthorized', 'Send the metrics token as "Authorization: Bearer <METRICS_TOKEN>"');
        }
      }
      return reply.type(metrics.registry.contentType).header('cache-control', 'no-store').send(await metrics.registry.metrics());
    });
  });

  return app as unknown as App;
}
