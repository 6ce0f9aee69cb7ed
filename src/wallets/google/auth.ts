/**
 * OAuth 2.0 access tokens for the Wallet Objects API (service account, jwt-bearer grant).
 *
 * Reference: /work/shared/reference/google-wallet.md, section 6 (auth) and checklist 3–5.
 *
 * The assertion and the exchange come from google-auth-library's `JWT` (RS256 over
 * `{iss, scope, aud: https://oauth2.googleapis.com/token, iat, exp: iat + 3600}`, POSTed as
 * `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`). The library hard-codes Google's token URL,
 * so a gaxios request interceptor on the client's own transporter rewrites it when `tokenUrl` is
 * configured (reference section 10). The transporter is built from `gaxios` as re-exported by
 * google-auth-library itself, so it is always the copy the library was built against.
 *
 * Caching, single-flight and forced refresh live here and not in the library, because the library's own
 * cache does not give the guarantees of checklist 5 (google-auth-library 10.9.1, build/src/gtoken):
 *   - an eager refresh (token within 5 minutes of expiry) calls its token handler with
 *     `forceRefresh: true`, which bypasses the in-flight promise: N concurrent callers at that moment
 *     make N token requests;
 *   - after a 401 its refresh asks the cached `GoogleToken` with `forceRefresh: isTokenExpiring()`, i.e.
 *     false for a token that is not near expiry, and gets the same rejected token back;
 *   - its clock is `Date.now()`, not injectable.
 * So each fetch uses a fresh `JWT` (no library-side cache at all), and this module keeps exactly one
 * cached token and at most one request in flight.
 */
import { JWT, gaxios, type Credentials } from 'google-auth-library';
import type { ServiceAccountKey } from './config.js';

export const WALLET_SCOPE = 'https://www.googleapis.com/auth/wallet_object.issuer';
/** What google-auth-library POSTs to, and the `aud` of its assertion (reference section 6). */
export const GOOGLE_OAUTH_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Checklist 5: refresh at least 5 minutes before expiry (also google-auth-library's own default). */
export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;

export interface AccessTokenProvider {
  /** A valid access token; concurrent callers share one token request. */
  getAccessToken(): Promise<string>;
  /**
   * The API answered 401 to `token`: drop it so the next `getAccessToken()` fetches a new one. Only the
   * first of several concurrent 401s for the same token causes a refresh (the others see a newer token).
   */
  invalidate(token: string): void;
}

export class GoogleAuthError extends Error {
  override readonly name = 'GoogleAuthError';
  constructor(
    message: string,
    /** HTTP status of the token endpoint; 0 when it did not answer. */
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ServiceAccountTokenProviderOptions {
  serviceAccount: ServiceAccountKey;
  /** Token endpoint; defaults to Google's. */
  tokenUrl?: string;
  refreshMarginMs?: number;
  /** Milliseconds clock, for tests. */
  now?: () => number;
  /** Timeout of one token request. */
  timeoutMs?: number;
  logger?: { warn(obj: object, msg?: string): void };
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export function createServiceAccountTokenProvider(opts: ServiceAccountTokenProviderOptions): AccessTokenProvider {
  const now = opts.now ?? Date.now;
  const margin = opts.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  const tokenUrl = opts.tokenUrl ?? GOOGLE_OAUTH_TOKEN_URL;
  const transporter = new gaxios.Gaxios({ timeout: opts.timeoutMs ?? 15_000 });
  if (tokenUrl !== GOOGLE_OAUTH_TOKEN_URL) {
    transporter.interceptors.request.add({
      resolved: async (request) => {
        if (String(request.url) === GOOGLE_OAUTH_TOKEN_URL) request.url = new URL(tokenUrl);
        return request;
      },
    });
  }

  let cached: CachedToken | undefined;
  let inFlight: Promise<CachedToken> | undefined;

  async function fetchToken(): Promise<CachedToken> {
    const client = new JWT({
      email: opts.serviceAccount.client_email,
      key: opts.serviceAccount.private_key,
      keyId: opts.serviceAccount.private_key_id,
      scopes: [WALLET_SCOPE],
      transporter,
    });
    let credentials: Credentials;
    try {
      credentials = await client.authorize();
    } catch (error) {
      // A GaxiosError carries the request config, whose body is the signed assertion (itself a
      // credential for an hour): keep only the status and the endpoint's error text.
      const status = (error as { response?: { status?: number } }).response?.status ?? 0;
      const message = error instanceof Error ? error.message : String(error);
      opts.logger?.warn({ status, err: message }, 'Google OAuth token request failed');
      throw new GoogleAuthError(`Google OAuth token request failed (${status || 'no response'}): ${message}`, status);
    }
    if (!credentials.access_token) throw new GoogleAuthError('Google OAuth token response has no access_token', 200);
    // The library stamps expiry_date with its own Date.now() + expires_in; turn it back into a
    // lifetime (measured now, so slightly short, never long) so the injectable clock decides when to
    // refresh. No expiry at all is treated as Google's usual one hour.
    const lifetime = credentials.expiry_date ? credentials.expiry_date - Date.now() : 3600_000;
    return { token: credentials.access_token, expiresAt: now() + lifetime };
  }

  return {
    async getAccessToken() {
      if (cached && cached.expiresAt - now() > margin) return cached.token;
      if (!inFlight) {
        inFlight = fetchToken().then(
          (fresh) => {
            cached = fresh;
            inFlight = undefined;
            return fresh;
          },
          (error: unknown) => {
            inFlight = undefined;
            throw error;
          },
        );
      }
      return (await inFlight).token;
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}
