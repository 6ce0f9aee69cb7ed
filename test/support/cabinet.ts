import type { App } from '../../src/app.js';
import { adminHeaders } from './app.js';

/**
 * A browser stand-in for the cabinet over `app.inject`: keeps cookies, reads the CSRF token from
 * the last page, posts forms as application/x-www-form-urlencoded.
 */
export class CabinetClient {
  readonly cookies = new Map<string, string>();
  lastBody = '';

  constructor(
    readonly app: App,
    readonly headers: Record<string, string> = {},
    /** The client IP the app sees (sign-in limits are per IP). */
    readonly remoteAddress = '127.0.0.1',
  ) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  private remember(response: Awaited<ReturnType<App['inject']>>) {
    for (const cookie of response.cookies as { name: string; value: string; maxAge?: number; expires?: Date }[]) {
      const expired = cookie.maxAge === 0 || (cookie.expires && cookie.expires.getTime() < Date.now()) || cookie.value === '';
      if (expired) this.cookies.delete(cookie.name);
      else this.cookies.set(cookie.name, cookie.value);
    }
    this.lastBody = response.body;
  }

  async get(url: string, headers: Record<string, string> = {}) {
    const response = await this.app.inject({ method: 'GET', url, remoteAddress: this.remoteAddress, headers: { ...this.headers, cookie: this.cookieHeader(), ...headers } });
    this.remember(response);
    return response;
  }

  async post(url: string, form: Record<string, string | string[]>, headers: Record<string, string> = {}) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(form)) for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
    const response = await this.app.inject({
      method: 'POST',
      url,
      remoteAddress: this.remoteAddress,
      headers: { ...this.headers, cookie: this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: params.toString(),
    });
    this.remember(response);
    return response;
  }

  /** The CSRF token in the last page (or in `body`). */
  csrf(body = this.lastBody): string {
    const match = /name="_csrf" value="([^"]+)"/.exec(body);
    if (!match) throw new Error('no CSRF token on the page');
    return match[1];
  }

  /** A hidden field's value in the last page (the first one with that name, or inside `scope`). */
  hidden(name: string, body = this.lastBody): string {
    const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(body);
    if (!match) throw new Error(`no hidden field ${name} on the page`);
    return match[1];
  }
}

export async function createStaff(app: App, programId: string, input: { name: string; role: 'owner' | 'marketer' | 'cashier'; email?: string; password?: string }) {
  const created = await app.inject({ method: 'POST', url: `/api/v1/programs/${programId}/staff`, headers: adminHeaders, payload: { name: input.name, role: input.role } });
  if (created.statusCode !== 201) throw new Error(`staff create failed: ${created.statusCode} ${created.body}`);
  const staff = created.json() as { id: string; name: string; role: string; joinUrl: string };
  if (input.password) {
    const set = await app.inject({
      method: 'POST',
      url: `/api/v1/programs/${programId}/staff/${staff.id}/password`,
      headers: adminHeaders,
      payload: { password: input.password, ...(input.email ? { email: input.email } : {}) },
    });
    if (set.statusCode !== 204) throw new Error(`password set failed: ${set.statusCode} ${set.body}`);
  }
  return staff;
}

export async function signInLink(app: App, programId: string, staffId: string, ttlMinutes?: number): Promise<{ url: string; expiresAt: string }> {
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/programs/${programId}/staff/${staffId}/sign-in-links`,
    headers: adminHeaders,
    payload: ttlMinutes ? { ttlMinutes } : {},
  });
  if (res.statusCode !== 201) throw new Error(`sign-in link failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** Signs in with email and password through the form; throws unless it lands in the cabinet. */
export async function signIn(app: App, email: string, password: string, headers: Record<string, string> = {}): Promise<CabinetClient> {
  const client = new CabinetClient(app, headers);
  await client.get('/app/sign-in');
  const res = await client.post('/app/sign-in', { _csrf: client.csrf(), email, password });
  if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode}`);
  return client;
}
