import type { Config } from '../../config.js';
import { createCallbackVerifier, type CallbackVerifier } from './callback.js';
import { createGoogleWalletClient, type GoogleWalletClient, type GoogleWalletClientOptions } from './client.js';
import { createGoogleWalletSettings, loadServiceAccount, type GoogleWalletSettings } from './config.js';

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
 * Google Wallet from the configuration, or undefined when it is not configured (Apple only).
 * `clientOptions` adjusts the REST client (tests shorten its retry policy).
 */
export function createGoogleRuntime(
  config: Config,
  logger: Logger,
  clientOptions: Pick<Partial<GoogleWalletClientOptions>, 'retry' | 'timeoutMs'> = {},
): GoogleRuntime | undefined {
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
    client: createGoogleWalletClient(settings, { ...clientOptions, logger }),
    verifier: createCallbackVerifier({
      issuerId: settings.issuerId,
      senderId: settings.callbackSenderId,
      keysUrl: settings.issuerKeysUrl,
      logger,
    }),
  };
}
