/**
 * "Add to Google Wallet" save links, skinny form.
 *
 * Reference: /work/shared/reference/google-wallet.md, section 2 (Google: Wallet JWT reference) and
 * checklist 26–31.
 *
 *   - claims: `iss` = service-account email, `aud: "google"`, `typ: "savetowallet"` (a claim; the JOSE
 *     header keeps `typ: "JWT"`), `iat`, `origins` (always present: "will not render if the origins field
 *     is not specified"; `[]` for plain links), `payload.loyaltyObjects: [{id, classId}]` and nothing
 *     else (checklist 27);
 *   - RS256 with the service account's key (the account must be a user in the Pay & Wallet Console, or
 *     Google answers 403);
 *   - skinny: only ids, because the class and object are inserted through the API before the link is
 *     issued (a JWT for existing ids never updates them: "they're not inserted again"), and because
 *     "JWTs used in web links must not exceed 1800 characters due to browser truncation". A skinny
 *     loyalty link is ~760 characters; a longer one means oversized ids or origins, so it throws instead
 *     of producing a link that silently breaks;
 *   - URL = prefix + token, not re-encoded (a JWT is already URL-safe base64url).
 *   - no `exp`: not documented, and a link in an email must keep working (the /c/{token}/google route
 *     builds a fresh JWT on every click anyway, reference section 2, rest-samples#8).
 */
import jwt from 'jsonwebtoken';
import type { ServiceAccountKey } from './config.js';
import { GOOGLE_WALLET_DEFAULTS } from './config.js';

/** Browser truncation limit for save-link JWTs (reference section 2). */
export const MAX_SAVE_JWT_LENGTH = 1800;

export class SaveLinkTooLongError extends Error {
  override readonly name = 'SaveLinkTooLongError';
  constructor(readonly length: number) {
    super(`Google save-link JWT is ${length} characters; the limit is ${MAX_SAVE_JWT_LENGTH} (shorten ids or origins)`);
  }
}

export interface SaveJwtInput {
  serviceAccount: ServiceAccountKey;
  origins: string[];
  objectId: string;
  classId: string;
}

export interface SaveJwtClaims {
  iss: string;
  aud: 'google';
  typ: 'savetowallet';
  iat: number;
  origins: string[];
  payload: { loyaltyObjects: Array<{ id: string; classId: string }> };
}

/** Signs the skinny save JWT; throws SaveLinkTooLongError above 1800 characters. */
export function buildSaveJwt(input: SaveJwtInput): string {
  const claims: Omit<SaveJwtClaims, 'iat'> = {
    iss: input.serviceAccount.client_email,
    aud: 'google',
    typ: 'savetowallet',
    origins: [...input.origins],
    payload: { loyaltyObjects: [{ id: input.objectId, classId: input.classId }] },
  };
  // jsonwebtoken adds `iat` (now, in seconds). `keyid` helps Google pick the key when the account has
  // several; it is the public key id, not a secret.
  const token = jwt.sign(claims, input.serviceAccount.private_key, {
    algorithm: 'RS256',
    ...(input.serviceAccount.private_key_id ? { keyid: input.serviceAccount.private_key_id } : {}),
  });
  if (token.length > MAX_SAVE_JWT_LENGTH) throw new SaveLinkTooLongError(token.length);
  return token;
}

export function saveUrl(token: string, prefix: string = GOOGLE_WALLET_DEFAULTS.saveUrlPrefix): string {
  return prefix + token;
}

/** buildSaveJwt + saveUrl. */
export function buildSaveUrl(input: SaveJwtInput & { saveUrlPrefix?: string }): string {
  return saveUrl(buildSaveJwt(input), input.saveUrlPrefix);
}
