import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The service's whole configuration: one validated schema, read once at start (spec: Configuration).
 * Secrets (ADMIN_KEY, APPLE_KEY_PASSPHRASE, SMTP_URL, SMS_GATEWAY_TOKEN) have no defaults.
 */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  /**
   * What this process does (issue #13): `api` serves HTTP and enqueues jobs; `worker` runs the job
   * queues and scheduled work and serves only /livez, /readyz and /metrics; `all` does both (one
   * process, `npm start`). Any number of each may share one PostgreSQL.
   */
  ROLE: Type.Union([Type.Literal('all'), Type.Literal('api'), Type.Literal('worker')], { default: 'all' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  /**
   * The address links, QR codes and the pass's webServiceURL are built from. Unset: it follows HOST
   * and PORT (derivedPublicUrl), so `PORT=3520 npm start` prints and builds links on 3520.
   */
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' })),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /**
   * Send parameterised statements as named (prepared) statements on PostgreSQL: each connection
   * parses and plans a statement once (db/database.ts). Turn off behind PgBouncer in transaction
   * mode before version 1.21, which cannot keep a prepared statement with its connection.
   */
  PG_PREPARED_STATEMENTS: Type.Boolean({ default: true }),
  /**
   * Answer the PassKit web service's "not modified" checks from a per-process map kept current by
   * LISTEN/NOTIFY (wallets/apple/not-modified-map.ts); false asks the database every time.
   */
  APPLE_NOT_MODIFIED_MAP: Type.Boolean({ default: true }),
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  ADMIN_KEY: Type.Optional(Type.String({ minLength: 24 })),
  APPLE_CERT_DIR: Type.String({ minLength: 1, default: './certs' }),
  APPLE_KEY_PASSPHRASE: Type.Optional(Type.String()),
  APPLE_PASS_TYPE_ID: Type.Optional(Type.String({ pattern: '^pass\\.[A-Za-z0-9.-]+$' })),
  APPLE_TEAM_ID: Type.Optional(Type.String({ pattern: '^[A-Z0-9]{10}$' })),
  APNS_HOST: Type.String({ minLength: 1, default: 'api.push.apple.com' }),
  APNS_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 443 }),
  APNS_CA_FILE: Type.Optional(Type.String({ minLength: 1 })),
  GOOGLE_ISSUER_ID: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  GOOGLE_SERVICE_ACCOUNT_FILE: Type.Optional(Type.String({ minLength: 1 })),
  GOOGLE_WALLET_API_URL: Type.String({ default: 'https://walletobjects.googleapis.com/walletobjects/v1' }),
  GOOGLE_TOKEN_URL: Type.String({ default: 'https://oauth2.googleapis.com/token' }),
  /** Where Google's callback signing keys are published, and the sender id they sign as (reference 4). */
  GOOGLE_ISSUER_KEYS_URL: Type.String({ default: 'https://pay.google.com/gp/m/issuer/keys' }),
  GOOGLE_CALLBACK_SENDER_ID: Type.String({ minLength: 1, default: 'GooglePayPasses' }),
  GOOGLE_SAVE_URL_PREFIX: Type.String({ default: 'https://pay.google.com/gp/v/save/' }),
  /** Comma-separated domains allowed to host the JavaScript save button; empty for plain links. */
  GOOGLE_ORIGINS: Type.String({ default: '' }),
  /**
   * Google's published limit is 20 requests per second per project: one limit for the whole
   * deployment (shared through PostgreSQL; per process on the embedded database).
   */
  GOOGLE_REQUESTS_PER_SECOND: Type.Number({ minimum: 0.1, maximum: 1000, default: 20 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** Seconds a card change waits before its wallet update runs, so bursts coalesce into one push. */
  PASS_UPDATE_DEBOUNCE_SECONDS: Type.Integer({ minimum: 0, maximum: 600, default: 2 }),
  /** Cards per Apple wallet-update job when many cards change at once (campaigns, design edits). */
  APPLE_UPDATE_CARDS_PER_JOB: Type.Integer({ minimum: 1, maximum: 1000, default: 250 }),
  /** Recipients per campaign chunk (one transaction, one job). */
  CAMPAIGN_CHUNK_SIZE: Type.Integer({ minimum: 10, maximum: 10_000, default: 1000 }),
  /**
   * Ceiling of Apple devices per second a campaign may reach. The pace itself follows the devices'
   * fetches (CAMPAIGN_FETCH_WINDOW_SECONDS); this only caps it (README, Campaigns → Pacing).
   */
  CAMPAIGN_PUSH_RATE: Type.Integer({ minimum: 1, maximum: 100_000, default: 1500 }),
  /**
   * The fetch window: a chunk waits for the devices pushed three chunks earlier to fetch their new pass,
   * until their fetches stop for this many seconds (offline devices). 0 = pace by CAMPAIGN_PUSH_RATE only.
   */
  CAMPAIGN_FETCH_WINDOW_SECONDS: Type.Integer({ minimum: 0, maximum: 60, default: 3 }),
  /** A sending campaign that has not moved for this long is resumed (a worker died mid-chunk). */
  CAMPAIGN_STALL_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
  /** Largest card-base file an import accepts (bytes; larger answers 413). */
  IMPORT_MAX_BYTES: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024, default: 50 * 1024 * 1024 }),
  /** Rows per import chunk (one transaction, one checkpoint). */
  IMPORT_CHUNK_SIZE: Type.Integer({ minimum: 10, maximum: 10_000, default: 1000 }),
  /** One import job runs the chunks after its own for this long before queueing the next job (0: one chunk per job). */
  IMPORT_RUN_SECONDS: Type.Integer({ minimum: 0, maximum: 60, default: 5 }),
  /** Idempotency-Key records older than this many days are pruned by the hourly retention job. */
  IDEMPOTENCY_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
  /**
   * HTTP JSON endpoint of an SMS provider for one-time codes (src/sms/gateway.ts documents the request).
   * Unset = no SMS: self-service bonuses then stay pending until the card's first purchase.
   */
  SMS_GATEWAY_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2000 })),
  /** Bearer token sent to the SMS gateway. A secret: no default, never shown. */
  SMS_GATEWAY_TOKEN: Type.Optional(Type.String({ minLength: 1, maxLength: 4000 })),
  /** Sender name or number passed to the SMS gateway (`sender`), if the provider needs one. */
  SMS_SENDER: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** Whether `npm start` seeds the demo program when the database has no program yet (never in production). */
  DEMO_PROGRAM: Type.Boolean({ default: true }),
  /**
   * Let webhooks reach loopback and private addresses (an instance whose receivers are on its own
   * network, or a test's local receiver). Off in every environment by default; link-local, reserved
   * and IPv4-embedding IPv6 addresses are never reached (webhooks/url-policy.ts).
   */
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: Type.Boolean({ default: false }),
  /**
   * Bearer token `/metrics` requires (`Authorization: Bearer <token>`). A secret: no default. Unset:
   * `/metrics` answers 404 in production and is open in development and test.
   */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' })),
  /**
   * Outgoing mail (cabinet password reset), e.g. `smtp://user:pass@smtp.example.com:587` (STARTTLS
   * when the server offers it) or `smtps://…:465`. A secret: no default, never shown. Unset = no
   * mail: the cabinet has no "Forgot password?" and owners issue sign-in links instead.
   */
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://' })),
  /**
   * Which proxies may set X-Forwarded-For (Fastify `trustProxy`): unset = none, the TCP peer is the
   * client; a number = that many proxy hops; or a comma-separated list of proxy addresses / CIDRs
   * (e.g. `127.0.0.1,10.0.0.0/8`). Per-IP limits (join form, sign-in) count the address it yields.
   */
  TRUST_PROXY: Type.Optional(Type.String({ maxLength: 2000 })),
  /** The From of outgoing mail, `no-reply@example.com` or `Cards <no-reply@example.com>`; required with SMTP_URL. */
  MAIL_FROM: Type.Optional(Type.String({ pattern: '^([^<>\\r\\n]*<[^\\s@<>]+@[^\\s@<>]+\\.[^\\s@<>]+>|[^\\s@<>]+@[^\\s@<>]+\\.[^\\s@<>]+)$', maxLength: 320 })),
});

/** PUBLIC_URL is always set once loaded: given, or derived from HOST and PORT. */
export type Config = Omit<Static<typeof ConfigSchema>, 'PUBLIC_URL'> & {
  PUBLIC_URL: string;
  /** True when PUBLIC_URL was not given and follows HOST and PORT. */
  PUBLIC_URL_DERIVED: boolean;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const SECRET_KEYS = new Set(['ADMIN_KEY', 'APPLE_KEY_PASSPHRASE', 'DATABASE_URL', 'SMTP_URL', 'METRICS_TOKEN', 'SMS_GATEWAY_URL', 'SMS_GATEWAY_TOKEN']);

/** Reads the configuration from an environment map; throws ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.keys(ConfigSchema.properties);
  const raw: Record<string, unknown> = {};
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const withDefaults = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, raw));
  const problems = [...Value.Errors(ConfigSchema, withDefaults)].map((e) => {
    const key = e.path.replace(/^\//, '');
    // Never echo a secret's value back into logs.
    const shown = SECRET_KEYS.has(key) ? '(hidden)' : JSON.stringify(e.value);
    return `${key}: ${e.message} (got ${shown})`;
  });
  const config = withDefaults as Config;
  config.PUBLIC_URL_DERIVED = config.PUBLIC_URL === undefined;
  config.PUBLIC_URL ??= derivedPublicUrl(config.HOST, config.PORT);
  if (config.NODE_ENV === 'production' && !config.ADMIN_KEY) {
    problems.push('ADMIN_KEY: required in production (at least 24 characters)');
  }
  if (Boolean(config.GOOGLE_ISSUER_ID) !== Boolean(config.GOOGLE_SERVICE_ACCOUNT_FILE)) {
    problems.push('GOOGLE_ISSUER_ID and GOOGLE_SERVICE_ACCOUNT_FILE: set both to enable Google Wallet, or neither');
  }
  if (config.GOOGLE_ISSUER_ID && !config.PUBLIC_URL.startsWith('https://')) {
    problems.push('PUBLIC_URL: must be https:// when Google Wallet is enabled (Google downloads the logo and calls back over HTTPS)');
  }
  if (config.SMTP_URL !== undefined && !problems.some((p) => p.startsWith('SMTP_URL:'))) {
    // Checked without ever echoing the URL: it carries the SMTP password.
    let host = '';
    try {
      host = new URL(config.SMTP_URL).hostname;
    } catch {
      // not a URL
    }
    if (!host) problems.push('SMTP_URL: not a valid URL (smtp://user:pass@host:587 or smtps://user:pass@host:465; percent-encode special characters in the user and password)');
  }
  if (config.SMTP_URL !== undefined && !config.MAIL_FROM) {
    problems.push('MAIL_FROM: required when SMTP_URL is set (e.g. "Loyalty cards <no-reply@example.com>")');
  }
  if (config.ROLE !== 'all' && !config.DATABASE_URL) {
    problems.push(`ROLE: "${config.ROLE}" needs DATABASE_URL (the embedded database belongs to one process; use ROLE=all)`);
  }
  if (config.TRUST_PROXY !== undefined && trustProxyOption(config.TRUST_PROXY) === undefined) {
    problems.push(`TRUST_PROXY: a number of hops or a comma-separated list of IP addresses or CIDRs (got ${JSON.stringify(config.TRUST_PROXY)})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  config.PUBLIC_URL = config.PUBLIC_URL.replace(/\/+$/, '');
  return config;
}

/**
 * The public address when PUBLIC_URL is unset: http on HOST and PORT. Loopback hosts become
 * `localhost` (what a browser on this machine opens); a wildcard host (0.0.0.0, ::) becomes this
 * machine's first LAN IPv4 address, so a phone on the same network can open the card page and
 * the pass can reach the web service. Behind a proxy or on HTTPS, set PUBLIC_URL.
 */
export function derivedPublicUrl(host: string, port: number, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string {
  let name = host;
  if (['127.0.0.1', '::1', 'localhost'].includes(host) || host.startsWith('127.')) name = 'localhost';
  else if (host === '0.0.0.0' || host === '::') {
    const lan = Object.values(interfaces)
      .flat()
      .find((address) => address && address.family === 'IPv4' && !address.internal);
    name = lan?.address ?? 'localhost';
  } else if (isIP(host) === 6) name = `[${host}]`;
  return `http://${name}${port === 80 ? '' : `:${port}`}`;
}

/**
 * TRUST_PROXY as Fastify's `trustProxy`: hops as a number, or the list of trusted proxy addresses
 * and CIDRs. `true` (trust any peer) is refused on purpose: then anyone could pick the IP the
 * per-IP limits count by sending X-Forwarded-For. Undefined when the value is not valid.
 */
export function trustProxyOption(value: string): ((address: string, hop: number) => boolean) | string[] | undefined {
  const text = value.trim();
  if (/^\d{1,2}$/.test(text)) {
    // As Fastify does for a hop count (its types take only the function form).
    const hops = Number(text);
    return (_address, hop) => hop < hops;
  }
  const entries = text.split(',').map((entry) => entry.trim()).filter(Boolean);
  if (entries.length === 0) return undefined;
  const valid = entries.every((entry) => {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) return false;
    if (prefix === undefined) return true;
    return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
  });
  return valid ? entries : undefined;
}
