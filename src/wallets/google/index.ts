/**
 * Google Wallet (loyalty) for walletcards: settings, auth, client, payloads, save links, notifications,
 * callbacks. Reference: /work/shared/reference/google-wallet.md.
 */
export * from './config.js';
export * from './auth.js';
export * from './rate-limiter.js';
export * from './client.js';
export * from './payloads.js';
export * from './save-link.js';
export * from './notifications.js';
export * from './messaging.js';
export * from './callback.js';
