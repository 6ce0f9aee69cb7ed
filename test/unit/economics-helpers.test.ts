import { describe, expect, it } from 'vitest';
import { comparisonChart, flowChart, heatMap } from '../../src/cabinet/charts.js';
import { majorUnits, toCsv } from '../../src/economics/csv.js';
import { buckets, economicsPeriod, monthsOf, weekStart } from '../../src/economics/period.js';

describe('economics periods', () => {
  it('buckets weeks from Monday and months from the 1st, clipped to the period', () => {
    expect(weekStart('2026-03-01')).toBe('2026-02-23'); // a Sunday
    expect(weekStart('2026-03-02')).toBe('2026-03-02');
    expect(buckets('2026-02-25', '2026-03-10', 'week')).toEqual([
      { key: '2026-02-23', start: '2026-02-25', end: '2026-03-01' },
      { key: '2026-03-02', start: '2026-03-02', end: '2026-03-08' },
      { key: '2026-03-09', start: '2026-03-09', end: '2026-03-10' },
    ]);
    expect(buckets('2024-01-31', '2024-03-01', 'month').map((b) => [b.key, b.start, b.end])).toEqual([
      ['2024-01-01', '2024-01-31', '2024-01-31'],
      ['2024-02-01', '2024-02-01', '2024-02-29'],
      ['2024-03-01', '2024-03-01', '2024-03-01'],
    ]);
    expect(monthsOf('2025-11-15', '2026-02-01')).toEqual(['2025-11-01', '2025-12-01', '2026-01-01', '2026-02-01']);
  });

  it('defaults to twelve calendar months in the program time zone and refuses what it cannot answer', () => {
    // 31 December 21:30 UTC is already 1 January in Moscow.
    expect(economicsPeriod({}, new Date('2026-12-31T21:30:00Z'), 'Europe/Moscow')).toEqual({ from: '2026-02-01', to: '2027-01-01', groupBy: 'month' });
    for (const bad of [{ from: '2026-02-30' }, { from: '2026-1-1' }, { from: '2026-03-02', to: '2026-03-01' }, { from: '2020-01-01', to: '2026-01-01' }, { groupBy: 'year' }, { from: '2025-01-01', to: '2026-03-01', groupBy: 'day' }, { from: '1999-12-31', to: '2000-01-01' }]) {
      expect(economicsPeriod(bad, new Date('2026-03-15T12:00:00Z'), 'UTC'), JSON.stringify(bad)).toHaveProperty('error');
    }
  });
});

describe('economics CSV', () => {
  it('writes money exactly in major units and keeps spreadsheets from running text as formulas', () => {
    expect(majorUnits(125050, 2)).toBe('1250.50');
    expect(majorUnits(-5, 2)).toBe('-0.05');
    expect(majorUnits(9_007_199_254_740_991, 2)).toBe('90071992547409.91');
    expect(majorUnits(1200, 0)).toBe('1200');
    expect(toCsv(['tier', 'value'], [['=HYPERLINK("x")', '-12.50'], ['a,b', null], ['@SUM(A1)', 3]])).toBe(
      'tier,value\r\n"\'=HYPERLINK(""x"")",-12.50\r\n"a,b",\r\n\'@SUM(A1),3\r\n',
    );
  });
});

describe('economics charts', () => {
  it('escape every label and keep a text equivalent', () => {
    const evil = '<script>alert(1)</script>';
    const heat = String(heatMap({ lang: 'en', id: 'h', title: evil, rowHeader: 'r', columnHeader: 'c', columns: ['0'], rows: [{ label: evil, cells: [0.5] }], format: (v) => `${v}`, summary: evil }));
    const flow = String(flowChart({ lang: 'en', id: 'f', title: 't', nodes: [{ key: 'a', label: evil, color: '#000' }, { key: 'b', label: 'B', color: '#fff' }], flows: [{ from: 'a', to: 'b', value: 3 }], fromHeader: 'f', toHeader: 't', valueHeader: 'v', summary: evil }));
    const comparison = String(comparisonChart({ lang: 'en', id: 'c', title: evil, treatedLabel: evil, controlLabel: 'c', differenceLabel: 'd', treated: 0.5, control: 0.2, interval: { difference: 0.3, low: 0.1, high: 0.5 }, format: String, formatDifference: String, summary: evil }));
    for (const svg of [heat, flow, comparison]) {
      expect(svg).not.toContain('<script>');
      expect(svg).toContain('&lt;script&gt;');
      expect(svg).toMatch(/role="img" aria-label="/);
    }
    expect(heat).toContain('<table>');
    expect(flow).toContain('<table>');
  });

  it('draw nothing for empty flows and no interval without a control group', () => {
    expect(String(flowChart({ lang: 'ru', id: 'f', title: 't', nodes: [], flows: [], fromHeader: 'f', toHeader: 't', valueHeader: 'v', summary: 's' }))).not.toContain('<path');
    const none = String(comparisonChart({ lang: 'ru', id: 'c', title: 't', treatedLabel: 'a', controlLabel: 'b', differenceLabel: 'd', treated: 1, control: null, interval: null, format: String, formatDifference: String, summary: 's' }));
    expect(none.match(/<rect/g)).toHaveLength(1);
    expect(none).not.toContain('<circle');
  });
});
