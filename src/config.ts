import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The service's whole configuration: one validated schema, read once at start (spec: Configuration).
 * Secrets (ADMIN_KEY, APPLE_KEY_PASSPHRASE) have no defaults.
 */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PUBLIC_URL: Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$', default: 'http://localhost:3000' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
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
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** Seconds a card change waits before its wallet update runs, so bursts coalesce into one push. */
  PASS_UPDATE_DEBOUNCE_SECONDS: Type.Integer({ minimum: 0, maximum: 600, default: 2 }),
  /** Whether `npm start` seeds the demo program when the database has no program yet. */
  DEMO_PROGRAM: Type.Boolean({ default: true }),
});

export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const SECRET_KEYS = new Set(['ADMIN_KEY', 'APPLE_KEY_PASSPHRASE', 'DATABASE_URL']);

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
  if (config.NODE_ENV === 'production' && !config.ADMIN_KEY) {
    problems.push('ADMIN_KEY: required in production (at least 24 characters)');
  }
  if (Boolean(config.GOOGLE_ISSUER_ID) !== Boolean(config.GOOGLE_SERVICE_ACCOUNT_FILE)) {
    problems.push('GOOGLE_ISSUER_ID and GOOGLE_SERVICE_ACCOUNT_FILE: set both to enable Google Wallet, or neither');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  config.PUBLIC_URL = config.PUBLIC_URL.replace(/\/+$/, '');
  return config;
}
