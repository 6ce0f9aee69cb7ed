import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/http/log-redaction.js';

describe('request URLs in logs', () => {
  const token = 'Ab3_-'.repeat(8) + 'xyz';

  it('hides the one-time tokens of reset and sign-in links, also behind doubled slashes and with a query', () => {
    expect(redactUrl(`/app/reset/${token}`)).toBe('/app/reset/[redacted]');
    expect(redactUrl(`/app/reset/${token}?lang=en`)).toBe('/app/reset/[redacted]?lang=en');
    expect(redactUrl(`//app//sign-in/link/${token}/`)).toBe('//app//sign-in/link/[redacted]/');
  });

  it('leaves every other URL alone', () => {
    for (const url of ['/app/reset', '/app/reset?sent=1', '/app/sign-in?next=%2Fapp', `/api/v1/cards/${token}`]) expect(redactUrl(url)).toBe(url);
  });
});
