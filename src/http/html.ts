/**
 * A tiny HTML template helper that escapes by default.
 *
 *   html`<p title="${title}">${name}</p>`
 *
 * Every interpolated value is escaped (`& < > " '` and the backtick), except values that are
 * already `SafeHtml` (the result of another `html` template, or `raw(...)` for markup we produced
 * ourselves, such as a generated QR code SVG). Arrays are rendered item by item with the same
 * rule; `null`, `undefined` and `false` render as nothing. Attribute values must be quoted with
 * `"` in the template; the escaping makes any value safe inside such quotes.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

/** Markup we produced ourselves and vouch for. Never pass user input here. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}
