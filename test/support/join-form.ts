import type { App } from '../../src/app.js';

/** A minimal browser cookie jar for `inject()`: keeps name=value pairs from Set-Cookie. */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  store(setCookie: string | string[] | undefined) {
    for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair] = line.split(';');
      const index = pair.indexOf('=');
      this.cookies.set(pair.slice(0, index).trim(), decodeURIComponent(pair.slice(index + 1).trim()));
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('; ');
  }
}

/** A clock the test moves by hand. */
export function createTestClock(start = Date.now()) {
  let now = start;
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms;
    },
    set(at: Date | number) {
      now = typeof at === 'number' ? at : at.getTime();
    },
  };
}

/** The named inputs of the first form in a page: hidden fields and the values shown. */
export function formInputs(html: string): Record<string, string> {
  const inputs: Record<string, string> = {};
  for (const match of html.matchAll(/<input\b([^>]*)>/g)) {
    const attrs = match[1];
    const name = /\bname="([^"]*)"/.exec(attrs)?.[1];
    if (!name) continue;
    const value = /\bvalue="([^"]*)"/.exec(attrs)?.[1] ?? '';
    inputs[name] = value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  }
  return inputs;
}

export interface Visitor {
  jar: CookieJar;
  userAgent: string;
  remoteAddress: string;
  acceptLanguage?: string;
  /** Sent as X-Forwarded-For (a visitor behind a reverse proxy). */
  forwardedFor?: string;
}

export const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
export const ANDROID_UA =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';
export const DESKTOP_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

let visitorCount = 0;
export function newVisitor(options: Partial<Omit<Visitor, 'jar'>> = {}): Visitor {
  visitorCount += 1;
  return {
    jar: new CookieJar(),
    userAgent: options.userAgent ?? IPHONE_UA,
    remoteAddress: options.remoteAddress ?? `10.0.${Math.floor(visitorCount / 250)}.${(visitorCount % 250) + 1}`,
    acceptLanguage: options.acceptLanguage,
    forwardedFor: options.forwardedFor,
  };
}

function headers(visitor: Visitor): Record<string, string> {
  return {
    'user-agent': visitor.userAgent,
    ...(visitor.acceptLanguage ? { 'accept-language': visitor.acceptLanguage } : {}),
    ...(visitor.forwardedFor ? { 'x-forwarded-for': visitor.forwardedFor } : {}),
    ...(visitor.jar.cookies.size > 0 ? { cookie: visitor.jar.header() } : {}),
  };
}

export async function getPage(app: App, visitor: Visitor, url: string) {
  const res = await app.inject({ method: 'GET', url, headers: headers(visitor), remoteAddress: visitor.remoteAddress });
  visitor.jar.store(res.headers['set-cookie']);
  return res;
}

/** Opens the join page and returns it with the form's inputs (including the signed time). */
export async function openJoinPage(app: App, visitor: Visitor, url: string) {
  const res = await getPage(app, visitor, url);
  return { res, inputs: formInputs(res.body) };
}

/** Submits the form as a browser would: the page's inputs, overridden by `fields`. */
export async function submitJoinForm(app: App, visitor: Visitor, slug: string, inputs: Record<string, string>, fields: Record<string, string | undefined>) {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...inputs, ...fields })) {
    if (value !== undefined) form.set(name, value);
  }
  // An unchecked checkbox is not sent at all.
  if (fields.consent === undefined && inputs.consent !== undefined) form.delete('consent');
  const res = await app.inject({
    method: 'POST',
    url: `/join/${slug}`,
    headers: { ...headers(visitor), 'content-type': 'application/x-www-form-urlencoded' },
    payload: form.toString(),
    remoteAddress: visitor.remoteAddress,
  });
  visitor.jar.store(res.headers['set-cookie']);
  return res;
}

/** The card token from a 303 to the card page. */
export function cardTokenOf(res: { statusCode: number; headers: Record<string, unknown> }): string {
  if (res.statusCode !== 303) throw new Error(`expected a 303 to the card page, got ${res.statusCode}`);
  const match = /^\/c\/([A-Za-z0-9_-]+)$/.exec(String(res.headers.location));
  if (!match) throw new Error(`unexpected location ${String(res.headers.location)}`);
  return match[1];
}
