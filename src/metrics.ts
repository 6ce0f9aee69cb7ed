import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsOptions {
  /** Pending wallet deliveries per wallet, read when /metrics is scraped (updates/pending-deliveries.ts). */
  pendingDeliveries?: () => Promise<Array<{ wallet: string; pending: number; oldestSeconds: number }>>;
}

const WALLETS = ['apple', 'google'] as const;

/** Prometheus metrics served at /metrics; one registry per app so tests do not share counters. */
export function createMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  /** One scrape reads the pending table once for both gauges. */
  let snapshot: Promise<Array<{ wallet: string; pending: number; oldestSeconds: number }>> | undefined;
  const readPending = () => {
    snapshot ??= (options.pendingDeliveries?.() ?? Promise.resolve([])).finally(() => {
      setImmediate(() => {
        snapshot = undefined;
      });
    });
    return snapshot;
  };
  return {
    registry,
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    applePushes: new Counter({
      name: 'apple_pushes_total',
      help: 'APNs pass-update pushes by outcome: delivered, deferred (retryable failure, kept pending), failed (final)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    googleUpdates: new Counter({
      name: 'google_wallet_updates_total',
      help: 'Google Wallet object updates and notifications by outcome: updated, notified, downgraded, deferred, failed',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    /** Final delivery failures: dead tokens, certificate/topic/request errors (Apple), non-retryable 4xx (Google). */
    walletDeliveriesFailed: new Counter({
      name: 'wallet_deliveries_failed_total',
      help: 'Wallet deliveries that failed for good (not retried), by wallet and reason',
      labelNames: ['wallet', 'reason'],
      registers: [registry],
    }),
    /** Retry rounds' results per target: delivered, deferred (failed again, backing off), failed (final). */
    walletDeliveryRetries: new Counter({
      name: 'wallet_delivery_retries_total',
      help: 'Retries of pending wallet deliveries, by wallet and result',
      labelNames: ['wallet', 'result'],
      registers: [registry],
    }),
    walletDeliveriesPending: new Gauge({
      name: 'wallet_deliveries_pending',
      help: 'Wallet deliveries waiting for a retry (Apple: push tokens; Google: cards)',
      labelNames: ['wallet'],
      registers: [registry],
      async collect() {
        const rows = await readPending();
        for (const wallet of WALLETS) this.set({ wallet }, rows.find((row) => row.wallet === wallet)?.pending ?? 0);
      },
    }),
    walletDeliveriesPendingAge: new Gauge({
      name: 'wallet_deliveries_pending_oldest_seconds',
      help: 'Seconds since the oldest pending wallet delivery first failed (0 when none is pending)',
      labelNames: ['wallet'],
      registers: [registry],
      async collect() {
        const rows = await readPending();
        for (const wallet of WALLETS) this.set({ wallet }, rows.find((row) => row.wallet === wallet)?.oldestSeconds ?? 0);
      },
    }),
    passesSigned: new Counter({ name: 'apple_passes_signed_total', help: 'Signed .pkpass builds', registers: [registry] }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The `onResponse` hook that times every request into `http_request_duration_seconds`. buildApp adds
 * it to each of its top-level contexts (app.ts). Synchronous (callback style): an async hook costs a
 * promise and a microtask per request on the hottest routes (issue #14).
 */
export function httpDurationHook(metrics: Pick<Metrics, 'httpDuration'>) {
  const { httpDuration } = metrics;
  return (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    httpDuration.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  };
}
