import { describe, expect, it } from 'vitest';
import { barChart, lineChart } from '../../src/cabinet/charts.js';
import { parseMoney, parseWhole, utcToZonedLocal, zonedLocalToUtc } from '../../src/cabinet/i18n.js';
import { safeNext } from '../../src/cabinet/kit.js';
import { parseMultipart } from '../../src/cabinet/multipart.js';

describe('cabinet helpers', () => {
  it('reads amounts as a cashier types them, in minor units', () => {
    expect(parseMoney('1250', 'RUB')).toBe(125_000);
    expect(parseMoney('1 250,50', 'RUB')).toBe(125_050);
    expect(parseMoney('1\u00a0250.5', 'RUB')).toBe(125_050);
    expect(parseMoney('0.01', 'RUB')).toBe(1);
    expect(parseMoney('12.345', 'RUB')).toBeUndefined();
    expect(parseMoney('-5', 'RUB')).toBeUndefined();
    expect(parseMoney('1e5', 'RUB')).toBeUndefined();
    expect(parseMoney('500', 'JPY')).toBe(500);
    expect(parseWhole('1 000')).toBe(1000);
    expect(parseWhole('1.5')).toBeUndefined();
  });

  it('turns a local time of the program into an instant and back, across time zones and DST', () => {
    expect(zonedLocalToUtc('2026-12-31T10:00', 'Europe/Moscow')!.toISOString()).toBe('2026-12-31T07:00:00.000Z');
    expect(zonedLocalToUtc('2026-07-01T10:00', 'Europe/Berlin')!.toISOString()).toBe('2026-07-01T08:00:00.000Z');
    expect(zonedLocalToUtc('2026-01-01T10:00', 'Europe/Berlin')!.toISOString()).toBe('2026-01-01T09:00:00.000Z');
    expect(zonedLocalToUtc('not a date', 'UTC')).toBeUndefined();
    expect(utcToZonedLocal(new Date('2026-12-31T07:00:00Z'), 'Europe/Moscow')).toBe('2026-12-31T10:00');
  });

  it('only follows cabinet paths after sign-in', () => {
    expect(safeNext('/app/cashier?q=1')).toBe('/app/cashier?q=1');
    expect(safeNext('/app')).toBe('/app');
    for (const bad of ['//evil.example/app', 'https://evil.example/app', '/apple/v1', '/app\\evil', 'javascript:alert(1)', undefined]) {
      expect(safeNext(bad)).toBeUndefined();
    }
  });

  it('draws charts with escaped labels, whole-number gridlines and a summary for screen readers', () => {
    const chart = barChart({
      lang: 'en',
      id: 'c',
      title: 'Installs',
      categoryHeader: 'Staff',
      categories: ['<script>alert(1)</script>', 'Olga'],
      series: [{ name: 'Installs', color: '#0b57d0', values: [7, 3] }],
    }).toString();
    expect(chart).not.toContain('<script>');
    expect(chart).toContain('&lt;script&gt;');
    expect(chart).toContain('role="img" aria-label="Installs. Installs: 10"');
    const ticks = [...chart.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => m[1]);
    expect(ticks).toEqual(['0', '2', '4', '6', '8']);
    expect(chart).toContain('<table>');
    const line = lineChart({ lang: 'ru', id: 'l', title: 'По дням', categoryHeader: 'День', categories: ['1', '2', '3'], series: [{ name: 'Apple', color: '#000', values: [0, 1, 2] }] }).toString();
    expect(line).toContain('<polyline');
    expect((line.match(/<circle/g) ?? []).length).toBe(3);
  });

  it('reads a multipart form with a file and fields', () => {
    const boundary = 'XyZ';
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x0d, 0x0a, 0x2d]);
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\ntoken\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
      png,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const parsed = parseMultipart(body, `multipart/form-data; boundary=${boundary}`);
    expect(parsed._csrf).toBe('token');
    expect(parsed.file).toMatchObject({ filename: 'a.png', contentType: 'image/png' });
    expect((parsed.file as { data: Buffer }).data.equals(png)).toBe(true);
    expect(() => parseMultipart(Buffer.from('garbage'), `multipart/form-data; boundary=${boundary}`)).toThrow();
    expect(() => parseMultipart(body, 'multipart/form-data')).toThrow();
  });
});
