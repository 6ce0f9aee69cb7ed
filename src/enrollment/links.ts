/** Public links of the enrollment flow (absolute, from PUBLIC_URL: they are printed and shared). */

/** A source tag: lower-case ASCII, digits, `.`, `_`, `-`; at most 64 characters. */
export const SOURCE_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';
const SOURCE_RE = new RegExp(SOURCE_PATTERN);

/** `utm_source`/`source` as given in a link, or null when absent or not a valid tag. */
export function normalizeSource(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const tag = value.trim().toLowerCase();
  return SOURCE_RE.test(tag) ? tag : null;
}

export function joinUrl(publicUrl: string, slug: string, params: { staff?: string | null; source?: string | null; ref?: string | null } = {}): string {
  const query = new URLSearchParams();
  if (params.ref) query.set('ref', params.ref);
  if (params.staff) query.set('staff', params.staff);
  if (params.source) query.set('source', params.source);
  const qs = query.toString();
  return `${publicUrl}/join/${slug}${qs ? `?${qs}` : ''}`;
}

export function joinQrUrls(publicUrl: string, slug: string, params: { staff?: string | null; source?: string | null } = {}) {
  const query = new URLSearchParams();
  if (params.staff) query.set('staff', params.staff);
  if (params.source) query.set('source', params.source);
  const qs = query.toString() ? `?${query.toString()}` : '';
  return { svg: `${publicUrl}/programs/${slug}/qr.svg${qs}`, png: `${publicUrl}/programs/${slug}/qr.png${qs}` };
}
