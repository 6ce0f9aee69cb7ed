/**
 * Google Wallet settings and the service-account key.
 *
 * Reference: /work/shared/reference/google-wallet.md, section 9 checklist 1–2 (fail fast on a missing or
 * invalid key; every endpoint configurable so tests can point at a local fake), section 4 (callback
 * constants, configurable because Google's docs disagree with themselves), section 5 (20 requests/s).
 *
 * The private key is a credential: no function here ever puts it (or a fragment of it) into an error
 * message or a log line. That includes JSON.parse errors, whose V8 message quotes part of the input.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface ServiceAccountKey {
  client_email: string;
  /** PKCS#8 (or PKCS#1) PEM of an RSA key. Never log. */
  private_key: string;
  private_key_id?: string;
}

export interface GoogleWalletSettings {
  /** Issuer id from the Google Pay & Wallet Console (digits); the prefix of every class and object id. */
  issuerId: string;
  serviceAccount: ServiceAccountKey;
  /** Wallet Objects REST base, without a trailing slash (reference section 1.1). */
  apiBaseUrl: string;
  /** OAuth 2.0 token endpoint for the jwt-bearer grant (reference section 6). */
  tokenUrl: string;
  /** Root signing keys for save/delete callbacks (reference section 4). */
  issuerKeysUrl: string;
  /** Callback sender id (reference section 4: `GooglePayPasses`; the staging docs say `GoogleWalletPasses`). */
  callbackSenderId: string;
  /** Save-link prefix; the JWT is appended as is (reference section 2). */
  saveUrlPrefix: string;
  /** Domains allowed to host the JS "Add to Google Wallet" button; `[]` for plain links (reference section 2). */
  origins: string[];
  /** Client-side limit for the whole process (reference section 5: "rate limited to 20 requests per second"). */
  requestsPerSecond: number;
}

export const GOOGLE_WALLET_DEFAULTS = {
  apiBaseUrl: 'https://walletobjects.googleapis.com/walletobjects/v1',
  tokenUrl: 'https://oauth2.googleapis.com/token',
  issuerKeysUrl: 'https://pay.google.com/gp/m/issuer/keys',
  callbackSenderId: 'GooglePayPasses',
  saveUrlPrefix: 'https://pay.google.com/gp/v/save/',
  origins: [] as string[],
  requestsPerSecond: 20,
} as const;

export class GoogleWalletConfigError extends Error {
  override readonly name = 'GoogleWalletConfigError';
}

export type GoogleWalletSettingsInput = Pick<GoogleWalletSettings, 'issuerId' | 'serviceAccount'> &
  Partial<Omit<GoogleWalletSettings, 'issuerId' | 'serviceAccount'>>;

/** Applies the defaults and validates everything once, at start-up (fail fast rather than on the first card). */
export function createGoogleWalletSettings(input: GoogleWalletSettingsInput): GoogleWalletSettings {
  if (!/^[0-9]+$/.test(input.issuerId)) {
    throw new GoogleWalletConfigError(`Google issuerId must be digits (from the Pay & Wallet Console), got "${input.issuerId}"`);
  }
  const settings: GoogleWalletSettings = {
    issuerId: input.issuerId,
    serviceAccount: parseServiceAccount(input.serviceAccount, 'settings.serviceAccount'),
    apiBaseUrl: stripTrailingSlash(checkUrl('apiBaseUrl', input.apiBaseUrl ?? GOOGLE_WALLET_DEFAULTS.apiBaseUrl)),
    tokenUrl: checkUrl('tokenUrl', input.tokenUrl ?? GOOGLE_WALLET_DEFAULTS.tokenUrl),
    issuerKeysUrl: checkUrl('issuerKeysUrl', input.issuerKeysUrl ?? GOOGLE_WALLET_DEFAULTS.issuerKeysUrl),
    callbackSenderId: input.callbackSenderId ?? GOOGLE_WALLET_DEFAULTS.callbackSenderId,
    saveUrlPrefix: checkUrl('saveUrlPrefix', input.saveUrlPrefix ?? GOOGLE_WALLET_DEFAULTS.saveUrlPrefix),
    origins: [...(input.origins ?? GOOGLE_WALLET_DEFAULTS.origins)],
    requestsPerSecond: input.requestsPerSecond ?? GOOGLE_WALLET_DEFAULTS.requestsPerSecond,
  };
  if (settings.callbackSenderId.trim() === '') throw new GoogleWalletConfigError('Google callbackSenderId must not be empty');
  if (!(settings.requestsPerSecond > 0) || !Number.isFinite(settings.requestsPerSecond)) {
    throw new GoogleWalletConfigError(`Google requestsPerSecond must be a positive number, got ${settings.requestsPerSecond}`);
  }
  for (const origin of settings.origins) checkUrl('origins[]', origin);
  return settings;
}

/**
 * Reads and validates a service-account key file (checklist 1). Synchronous on purpose: it runs once at
 * start-up, and a bad key must stop the process there, not fail the first customer's card.
 */
export function loadServiceAccount(file: string): ServiceAccountKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'read error';
    throw new GoogleWalletConfigError(`Google service-account file ${file} cannot be read (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the input, which may be the key itself.
    throw new GoogleWalletConfigError(`Google service-account file ${file} is not valid JSON`);
  }
  return parseServiceAccount(json, file);
}

/** Validates an already-parsed key (file contents or a secret injected as JSON). */
export function parseServiceAccount(json: unknown, source: string): ServiceAccountKey {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new GoogleWalletConfigError(`Google service account (${source}) must be a JSON object`);
  }
  const record = json as Record<string, unknown>;
  const email = record['client_email'];
  if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) {
    throw new GoogleWalletConfigError(`Google service account (${source}) has no valid client_email`);
  }
  const key = record['private_key'];
  if (typeof key !== 'string' || key.trim() === '') {
    throw new GoogleWalletConfigError(`Google service account (${source}) has no private_key`);
  }
  let keyType: string | undefined;
  try {
    keyType = createPrivateKey({ key, format: 'pem' }).asymmetricKeyType;
  } catch {
    // OpenSSL's message carries no key material, but there is nothing useful in it either.
    throw new GoogleWalletConfigError(`Google service account (${source}): private_key is not a valid PEM private key`);
  }
  if (keyType !== 'rsa') {
    // Both the token assertion and the save link are RS256 (reference sections 2 and 6).
    throw new GoogleWalletConfigError(`Google service account (${source}): private_key must be an RSA key, got ${keyType ?? 'unknown'}`);
  }
  const keyId = record['private_key_id'];
  if (keyId !== undefined && typeof keyId !== 'string') {
    throw new GoogleWalletConfigError(`Google service account (${source}): private_key_id must be a string`);
  }
  return keyId === undefined ? { client_email: email, private_key: key } : { client_email: email, private_key: key, private_key_id: keyId };
}

function checkUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new GoogleWalletConfigError(`Google ${name} is not a valid URL: "${value}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new GoogleWalletConfigError(`Google ${name} must be an http(s) URL: "${value}"`);
  }
  return value;
}

function stripTrailingSlash(value: string): string {
  return value.replace(/\/+$/, '');
}
