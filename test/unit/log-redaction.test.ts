import { describe, expect, it } from 'vitest';
import { redactDatabaseMessage, redactUrl, serializeError } from '../../src/http/log-redaction.js';

describe('request URLs in logs', () => {
  const token = 'Ab3_-'.repeat(8) + 'xyz';

  it('hides the one-time tokens of reset and sign-in links, also behind doubled slashes and with a query', () => {
    expect(redactUrl(`/app/reset/${token}`)).toBe('/app/reset/[redacted]');
    expect(redactUrl(`/app/reset/${token}?lang=en`)).toBe('/app/reset/[redacted]?lang=en');
    expect(redactUrl(`//app//sign-in/link/${token}/`)).toBe('//app//sign-in/link/[redacted]/');
  });

  it('hides card tokens in public card links (page, pass, Google link)', () => {
    for (const suffix of ['', '/card.pkpass', '/google', '?lang=en']) expect(redactUrl(`/c/${token}${suffix}`)).toBe(`/c/[redacted]${suffix}`);
    expect(redactUrl(`//c//${token}/card.pkpass`)).toBe('//c//[redacted]/card.pkpass');
  });

  // Changed on purpose (issue #11): query values are logged only for keys known to carry nothing
  // personal; `next` (a path that may carry a search) is hidden too.
  it('hides query values except paging, filters and tags', () => {
    expect(redactUrl('/api/v1/cards?query=%2B79161234567&limit=20')).toBe('/api/v1/cards?query=[redacted]&limit=20');
    expect(redactUrl('/app/cashier?q=Иванов')).toBe('/app/cashier?q=[redacted]');
    expect(redactUrl('/join/shop?ref=ABC123&source=poster&lang=en')).toBe('/join/shop?ref=[redacted]&source=poster&lang=en');
    expect(redactUrl('/app/sign-in?next=%2Fapp%2Fcashier%3Fq%3D12')).toBe('/app/sign-in?next=[redacted]');
  });

  it('leaves every other URL alone', () => {
    for (const url of ['/app/reset', '/app/reset?sent=1', '/app/stats?from=2026-01-01&to=2026-01-31', `/api/v1/cards/${token}`, '/c', '/cards/x']) expect(redactUrl(url)).toBe(url);
  });
});

describe('database errors in logs', () => {
  it('keep what names the failure and drop the data: parameters, detail, quoted values', () => {
    const error = Object.assign(new Error('invalid input syntax for type uuid: "+79161234567"'), {
      code: '22P02',
      severity: 'ERROR',
      routine: 'string_to_uuid',
      detail: 'Key (phone)=(+79161234567) already exists.',
      params: ['+79161234567', 'Секретова Анна', 'token-abc'],
      query: 'insert into card …',
    });
    const serialized = serializeError(error) as Record<string, unknown>;
    expect(serialized).toMatchObject({ type: 'Error', code: '22P02', severity: 'ERROR', routine: 'string_to_uuid', message: 'invalid input syntax for type uuid: "[redacted]"' });
    expect(JSON.stringify(serialized)).not.toMatch(/79161234567|Секретова|token-abc|insert into/);
    expect(redactDatabaseMessage('value "99999999999" is out of range for type integer')).toBe('value "[redacted]" is out of range for type integer');
    expect(redactDatabaseMessage('duplicate key value violates unique constraint "card_phone_idx"')).toBe('duplicate key value violates unique constraint "card_phone_idx"');
    expect(redactDatabaseMessage('Key (program_id, phone)=(1, +7916) already exists')).toBe('Key (program_id, phone)=([redacted]) already exists');
    // Other errors keep pino's shape, and a database error as the cause is reduced too.
    const wrapped = serializeError(new Error('could not issue', { cause: error })) as Record<string, any>;
    expect(wrapped.message).toBe('could not issue');
    expect(JSON.stringify(wrapped)).not.toContain('79161234567');
  });
});
