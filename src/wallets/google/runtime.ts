import type { Config } from '../../config.js';
import type { DatabaseHandle } from '../../db/database.js';
import { createCallbackVerifier, type CallbackVerifier } from './callback.js';
import { createGoogleWalletClient, type GoogleWalletClient, type GoogleWalletClientOptions } from './client.js';
import { createGoogleWalletSettings, loadServiceAccount, type GoogleWalletSettings } from './config.js';
import { createDatabaseRateLimiter, limiterRate } from './rate-limiter.js';

/** The row of `api_rate_slot` that schedules Google Wallet API calls for the whole deployment. */
export const GOOGLE_RATE_SLOT = 'google-wallet';

export interface GoogleRuntime {
  client: GoogleWalletClient;
  settings: GoogleWalletSettings;
  verifier: CallbackVerifier;
}

interface Logger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Google Wallet from the configuration, or undefined when it is not configured (Apple only). With a
 * PostgreSQL `database` the rate limit is shared by every process on it (GOOGLE_REQUESTS_PER_SECOND is
 * per Google project, i.e. per deployment); on the embedded database it is the process's own.
 * `clientOptions` adjusts the REST client (tests shorten its retry policy).
 */
export function createGoogleRuntime(
  config: Config,
  logger: Logger,
  options: { database?: DatabaseHandle; clientOptions?: Pick<Partial<GoogleWalletClientOptions>, 'retry' | 'timeoutMs'> } = {},
): GoogleRuntime | undefined {
  const { database, clientOptions = {} } = options;
  if (!config.GOOGLE_ISSUER_ID || !config.GOOGLE_SERVICE_ACCOUNT_FILE) return undefined;
  const settings = createGoogleWalletSettings({
    issuerId: config.GOOGLE_ISSUER_ID,
    serviceAccount: loadServiceAccount(config.GOOGLE_SERVICE_ACCOUNT_FILE),
    apiBaseUrl: config.GOOGLE_WALLET_API_URL,
    tokenUrl: config.GOOGLE_TOKEN_URL,
    issuerKeysUrl: config.GOOGLE_ISSUER_KEYS_URL,
    callbackSenderId: config.GOOGLE_CALLBACK_SENDER_ID,
    saveUrlPrefix: config.GOOGLE_SAVE_URL_PREFIX,
    origins: config.GOOGLE_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean),
    requestsPerSecond: config.GOOGLE_REQUESTS_PER_SECOND,
  });
  return {
    settings,
    client: createGoogleWalletClient(settings, {
      ...clientOptions,
      logger,
      ...(database?.kind === 'postgres'
        ? { limiter: createDatabaseRateLimiter(database.db, { name: GOOGLE_RATE_SLOT, ratePerSecond: limiterRate(settings.requestsPerSecond) }) }
        : {}),
    }),
    verifier: createCallbackVerifier({
      issuerId: settings.issuerId,
      senderId: settings.callbackSenderId,
      keysUrl: settings.issuerKeysUrl,
      logger,
    }),
  };
}
