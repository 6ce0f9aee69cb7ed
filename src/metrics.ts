import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics served at /metrics; one registry per app so tests do not share counters. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
      help: 'APNs pass-update pushes by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    googleUpdates: new Counter({
      name: 'google_wallet_updates_total',
      help: 'Google Wallet object updates and notifications by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    passesSigned: new Counter({ name: 'apple_passes_signed_total', help: 'Signed .pkpass builds', registers: [registry] }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
