import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app-context.js';
import type { CampaignService } from '../campaigns/service.js';
import { AppError } from '../http/errors.js';
import type { SafeHtml } from '../http/html.js';
import type { AuthSettings, CabinetSession, StaffRole } from './auth.js';
import type { Lang } from './i18n.js';
import type { PasswordResetService } from './password-reset.js';
import type { ImportService } from '../imports/service.js';

/**
 * What every screen gets: the app context, the signed-in staff member, the page renderer. A screen
 * is one file under `screens/` exporting a `Screen` (see screens/index.ts and the README section
 * "The cabinet").
 */

/** Who may open a route. The roles are the API's: owner = admin, marketer = marketer, cashier = pos. */
export type Access = 'public' | 'signed-in' | 'cashier' | 'marketing' | 'owner';

export const ACCESS_ROLES: Record<Exclude<Access, 'public'>, readonly StaffRole[]> = {
  'signed-in': ['owner', 'marketer', 'cashier'],
  // The POS endpoints take `pos` or `admin` keys.
  cashier: ['owner', 'cashier'],
  // The marketing endpoints (campaigns, segments, statistics, webhooks) take `marketer` or `admin` keys.
  marketing: ['owner', 'marketer'],
  // Settings, design, staff and keys take `admin` keys only.
  owner: ['owner'],
};

export function can(role: StaffRole | undefined, access: Access): boolean {
  if (access === 'public') return true;
  return role !== undefined && ACCESS_ROLES[access].includes(role);
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in staff member (cabinet routes). */
    cabinet?: CabinetSession;
  }
  interface FastifyContextConfig {
    /** Cabinet routes: who may call them. A cabinet route without it is owner-only. */
    access?: Access;
  }
}

export interface PageOptions {
  title: string;
  body: SafeHtml;
  status?: number;
  /** The nav entry to mark current (defaults to the screen's own path). */
  active?: string;
  /** The GET path this page lives at (for the language switch; POST re-renders pass their form's page). */
  path?: string;
  css?: string;
}

export interface CabinetKit {
  ctx: AppContext;
  /** The campaign service (src/campaigns); absent when the app is built without it. */
  campaigns?: CampaignService;
  /** Password reset by email; absent or `enabled: false` without SMTP_URL. */
  passwordReset?: PasswordResetService;
  /** The card-base import (src/imports); absent when the app is built without it. */
  imports?: ImportService;
  settings: AuthSettings;
  secureCookies: boolean;
  /** The page language (`?lang=`, remembered in a cookie; else the browser's; else the program's). */
  lang(request: FastifyRequest): Lang;
  /** The signed-in staff member; routes with `access` other than public always have one. */
  session(request: FastifyRequest): CabinetSession;
  /** Sends a full cabinet page (header, sections the role may open, language switch). */
  page(request: FastifyRequest, reply: FastifyReply, options: PageOptions): FastifyReply;
  /** Post/Redirect/Get: 303 to a cabinet path. */
  redirect(reply: FastifyReply, path: string): FastifyReply;
  /** The CSRF token of the forms shown before sign-in (bound to a pre-session cookie it sets when missing). */
  formToken(request: FastifyRequest, reply: FastifyReply): string;
  /** Starts a new session for the staff member (a new random cookie; the previous session ends). */
  startSession(request: FastifyRequest, reply: FastifyReply, staff: { staffId: string; programId: string }, method: 'password' | 'link'): Promise<void>;
  /** Ends the current session and clears its cookie. */
  endSession(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}

/** The navigation's groups, in order (issue #15: 13 flat tabs wrapped to two rows). */
export type NavGroup = 'till' | 'marketing' | 'program' | 'developers';
export const NAV_GROUPS: readonly NavGroup[] = ['till', 'marketing', 'program', 'developers'];

export type ScreenPlugin = FastifyPluginAsync<{ kit: CabinetKit }>;

export interface Screen {
  /** The entry in the cabinet's navigation (omit for screens reached from elsewhere). */
  nav?: { path: string; label: Record<Lang, string>; access: Access; group: NavGroup };
  routes: ScreenPlugin;
}

export const forbiddenError = () => new AppError(403, 'forbidden', 'Your role cannot do this');
export const notFoundError = () => new AppError(404, 'not_found', 'Not found');

/** The POST body as a plain record (urlencoded forms; multipart bodies are parsed to the same shape). */
export function formBody(request: FastifyRequest): Record<string, unknown> {
  return request.body && typeof request.body === 'object' ? (request.body as Record<string, unknown>) : {};
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A route parameter that must be a UUID, else 404 (never a database error). */
export function uuidParam(value: string | undefined): string {
  if (!value || !UUID_RE.test(value)) throw notFoundError();
  return value.toLowerCase();
}

/** A post-sign-in destination: a cabinet path only (no open redirect). */
export function safeNext(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return /^\/app(\/[A-Za-z0-9/_.~%?=&-]*)?$/.test(value) && !value.startsWith('//') ? value : undefined;
}
