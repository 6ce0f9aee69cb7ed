import { html, type SafeHtml } from '../http/html.js';
import { CABINET_MESSAGES, formatNumber, type Lang } from './i18n.js';

/**
 * Charts drawn on the server as inline SVG: no script, no library, print-ready. Each chart is a
 * `<figure>` with a caption, an SVG with `role="img"` and a text summary for screen readers, a
 * legend, and the same figures as a table in a `<details>` (the accessible way to read them).
 */

export interface Series {
  name: string;
  color: string;
  values: number[];
}

export interface ChartInput {
  lang: Lang;
  id: string;
  title: string;
  /** One label per point/group (dates, sources, names). */
  categories: string[];
  series: Series[];
  /** What the numbers count (the table's first column header). */
  categoryHeader: string;
  /** A narrow drawing (≈ a phone's width), so its text stays readable on one. */
  compact?: boolean;
  /** How values are written in labels, titles and the table (default: a number). */
  format?: (value: number) => string;
}

interface Dims {
  WIDTH: number;
  HEIGHT: number;
  M: { top: number; right: number; bottom: number; left: number };
  PLOT_W: number;
  PLOT_H: number;
}

function dimsOf(compact?: boolean): Dims {
  const WIDTH = compact ? 380 : 720;
  const HEIGHT = compact ? 230 : 260;
  const M = compact ? { top: 14, right: 10, bottom: 40, left: 76 } : { top: 16, right: 12, bottom: 48, left: 52 };
  return { WIDTH, HEIGHT, M, PLOT_W: WIDTH - M.left - M.right, PLOT_H: HEIGHT - M.top - M.bottom };
}

/** The top of the axis: four equal steps of 1, 2 or 5 × 10ⁿ, so every gridline is a whole, round number. */
function niceMax(max: number): number {
  const rough = Math.max(max, 4) / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const multiples = power >= 10 ? [1, 2, 2.5, 5, 10] : [1, 2, 5, 10];
  const step = multiples.map((m) => m * power).find((candidate) => candidate >= rough) ?? 10 * power;
  return step * 4;
}

const truncate = (label: string, max: number) => (label.length > max ? `${label.slice(0, max - 1)}…` : label);

function axes(lang: Lang, top: number, d: Dims, format?: (value: number) => string): SafeHtml {
  const { WIDTH, M, PLOT_H } = d;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return html`${ticks.map((f) => {
    const y = M.top + PLOT_H - f * PLOT_H;
    return html`<line x1="${M.left}" x2="${WIDTH - M.right}" y1="${y}" y2="${y}" stroke="#dde0e6" stroke-width="1"/><text x="${M.left - 6}" y="${y + 4}" text-anchor="end">${format ? format(top * f) : formatNumber(lang, Math.round(top * f))}</text>`;
  })}<line x1="${M.left}" x2="${WIDTH - M.right}" y1="${M.top + PLOT_H}" y2="${M.top + PLOT_H}" stroke="#5f6470" stroke-width="1"/>`;
}

function legend(series: Series[]): SafeHtml {
  return html`<ul class="legend" aria-hidden="true">${series.map((s) => html`<li><span style="background:${s.color}"></span>${s.name}</li>`)}</ul>`;
}

function table(input: ChartInput): SafeHtml {
  const t = CABINET_MESSAGES[input.lang];
  return html`<details><summary>${t.showTable}</summary><div class="table-wrap"><table>
<caption>${input.title}</caption>
<thead><tr><th scope="col">${input.categoryHeader}</th>${input.series.map((s) => html`<th scope="col" class="num">${s.name}</th>`)}</tr></thead>
<tbody>${input.categories.map(
    (c, i) => html`<tr><th scope="row">${c}</th>${input.series.map((s) => html`<td class="num">${fmt(input)(s.values[i] ?? 0)}</td>`)}</tr>`,
  )}</tbody></table></div></details>`;
}

const fmt = (input: ChartInput) => input.format ?? ((value: number) => formatNumber(input.lang, value));

function summary(input: ChartInput): string {
  const totals = input.series.map((s) => `${s.name}: ${fmt(input)(s.values.reduce((a, b) => a + b, 0))}`);
  return `${input.title}. ${totals.join('; ')}`;
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(input: ChartInput): SafeHtml {
  const d = dimsOf(input.compact);
  const { WIDTH, HEIGHT, M, PLOT_W, PLOT_H } = d;
  const n = Math.max(input.categories.length, 1);
  const top = niceMax(Math.max(0, ...input.series.flatMap((s) => s.values)));
  const group = PLOT_W / n;
  const gap = Math.min(12, group * 0.2);
  const barW = Math.max(2, (group - gap) / Math.max(input.series.length, 1));
  const maxChars = Math.max(4, Math.floor(group / 7));
  const bars = input.categories.map((category, i) => {
    const x0 = M.left + i * group + gap / 2;
    return html`${input.series.map((s, k) => {
      const value = s.values[i] ?? 0;
      const h = top === 0 ? 0 : (value / top) * PLOT_H;
      return html`<rect x="${(x0 + k * barW).toFixed(1)}" y="${(M.top + PLOT_H - h).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${category} — ${s.name}: ${fmt(input)(value)}</title></rect>`;
    })}<text x="${(M.left + i * group + group / 2).toFixed(1)}" y="${HEIGHT - M.bottom + 16}" text-anchor="middle">${truncate(category, maxChars)}</text>`;
  });
  return html`<figure class="chart-figure" id="${input.id}">
<figcaption><strong>${input.title}</strong></figcaption>
${legend(input.series)}
<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${summary(input)}" focusable="false">${axes(input.lang, top, d, input.format)}${bars}</svg>
${table(input)}
</figure>`;
}

/** Lines over time: one point per category (day), one line per series. */
export function lineChart(input: ChartInput): SafeHtml {
  const d = dimsOf(input.compact);
  const { WIDTH, HEIGHT, M, PLOT_W, PLOT_H } = d;
  const n = input.categories.length;
  const top = niceMax(Math.max(0, ...input.series.flatMap((s) => s.values)));
  const x = (i: number) => M.left + (n <= 1 ? PLOT_W / 2 : (i / (n - 1)) * PLOT_W);
  const y = (v: number) => M.top + PLOT_H - (top === 0 ? 0 : (v / top) * PLOT_H);
  const every = Math.max(1, Math.ceil(n / (input.compact ? 4 : 8)));
  const labels = input.categories.map((c, i) =>
    i % every === 0 ? html`<text x="${x(i).toFixed(1)}" y="${HEIGHT - M.bottom + 16}" text-anchor="middle">${c}</text>` : '',
  );
  const lines = input.series.map(
    (s) => html`<polyline fill="none" stroke="${s.color}" stroke-width="2.5" stroke-linejoin="round" points="${s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>${s.values.map(
      (v, i) => html`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${s.color}"><title>${input.categories[i]} — ${s.name}: ${fmt(input)(v)}</title></circle>`,
    )}`,
  );
  return html`<figure class="chart-figure" id="${input.id}">
<figcaption><strong>${input.title}</strong></figcaption>
${legend(input.series)}
<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${summary(input)}" focusable="false">${axes(input.lang, top, d, input.format)}${labels}${lines}</svg>
${table(input)}
</figure>`;
}

// ---- economics and campaign effect charts (issue #16) -------------------------------------------
// Narrow viewBoxes (≈ a phone's width in CSS pixels), so the text stays readable when the SVG is
// scaled to a 390 px screen; wide ones scroll sideways in their .table-wrap instead of shrinking.

const SMALL_W = 380;

/** A colour from pale to the cabinet's blue for a share 0..1 (the heat map). */
function heat(share: number): string {
  const t = Math.max(0, Math.min(1, share));
  const from = [0xee, 0xf3, 0xfd];
  const to = [0x0b, 0x57, 0xd0];
  return `#${from.map((f, i) => Math.round(f + (to[i]! - f) * t).toString(16).padStart(2, '0')).join('')}`;
}

export interface HeatMapInput {
  lang: Lang;
  id: string;
  title: string;
  rowHeader: string;
  columnHeader: string;
  columns: string[];
  rows: Array<{ label: string; cells: Array<number | null> }>;
  /** How a cell's share is written (in the cell and in the table). */
  format: (value: number | null) => string;
  summary: string;
}

/** A grid of shares (retention cohorts): one row per cohort, one column per month since. */
export function heatMap(input: HeatMapInput): SafeHtml {
  const cell = 40;
  const labelW = 80;
  const headH = 22;
  const width = labelW + cell * Math.max(input.columns.length, 1);
  const height = headH + cell * input.rows.length;
  const t = CABINET_MESSAGES[input.lang];
  const heads = input.columns.map(
    (c, j) => html`<text x="${labelW + j * cell + cell / 2}" y="${headH - 7}" text-anchor="middle">${c}</text>`,
  );
  const rows = input.rows.map((row, i) => {
    const y = headH + i * cell;
    return html`<text x="${labelW - 6}" y="${y + cell / 2 + 4}" text-anchor="end">${row.label}</text>${row.cells.map((v, j) => {
      if (v === null) return '';
      const x = labelW + j * cell;
      return html`<rect x="${x + 1}" y="${y + 1}" width="${cell - 2}" height="${cell - 2}" rx="3" fill="${heat(v)}"><title>${row.label}, ${input.columns[j]}: ${input.format(v)}</title></rect><text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${v > 0.45 ? '#fff' : '#16181d'}">${input.format(v)}</text>`;
    })}`;
  });
  return html`<figure class="chart-figure" id="${input.id}">
<figcaption><strong>${input.title}</strong></figcaption>
<div class="table-wrap"><svg class="chart wide" style="min-width:${Math.min(width, 720)}px" viewBox="0 0 ${width} ${height}" role="img" aria-label="${input.summary}" focusable="false">${heads}${rows}</svg></div>
<details><summary>${t.showTable}</summary><div class="table-wrap"><table>
<caption>${input.title}</caption>
<thead><tr><th scope="col">${input.rowHeader}</th>${input.columns.map((c) => html`<th scope="col" class="num">${input.columnHeader} ${c}</th>`)}</tr></thead>
<tbody>${input.rows.map((row) => html`<tr><th scope="row">${row.label}</th>${row.cells.map((v) => html`<td class="num">${v === null ? '' : input.format(v)}</td>`)}</tr>`)}</tbody>
</table></div></details>
</figure>`;
}

export interface ComparisonInput {
  lang: Lang;
  id: string;
  title: string;
  treatedLabel: string;
  controlLabel: string;
  differenceLabel: string;
  treated: number;
  control: number | null;
  /** Treated − control with its 95 % interval (null: no control group or too small). */
  interval: { difference: number; low: number; high: number } | null;
  format: (value: number) => string;
  formatDifference: (value: number) => string;
  summary: string;
}

/**
 * Campaign against control: two horizontal bars (the groups) and, under them, the difference as a
 * dot with its 95 % interval as a whisker around zero.
 */
export function comparisonChart(input: ComparisonInput): SafeHtml {
  const labelW = 96;
  const right = 12;
  const plotW = SMALL_W - labelW - right;
  const barH = 22;
  const hasDiff = input.interval !== null;
  const height = 16 + (input.control === null ? 1 : 2) * (barH + 10) + (hasDiff ? 58 : 0);
  const max = Math.max(input.treated, input.control ?? 0, 0) || 1;
  const bar = (y: number, label: string, value: number, color: string) => {
    const w = Math.max(0, (value / max) * (plotW - 70));
    return html`<text x="${labelW - 6}" y="${y + barH / 2 + 4}" text-anchor="end">${label}</text><rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" rx="3" fill="${color}"><title>${label}: ${input.format(value)}</title></rect><text x="${(labelW + w + 6).toFixed(1)}" y="${y + barH / 2 + 4}">${input.format(value)}</text>`;
  };
  let diff: SafeHtml | '' = '';
  if (input.interval) {
    const { difference, low, high } = input.interval;
    const span = Math.max(Math.abs(low), Math.abs(high), Math.abs(difference)) * 1.15 || 1;
    const x = (v: number) => labelW + plotW / 2 + (v / span) * (plotW / 2);
    const y = 16 + 2 * (barH + 10) + 18;
    const color = low > 0 ? '#1b7f3b' : high < 0 ? '#b3261e' : '#5f6470';
    diff = html`<text x="${labelW - 6}" y="${y + 4}" text-anchor="end">${input.differenceLabel}</text>
<line x1="${labelW}" x2="${labelW + plotW}" y1="${y}" y2="${y}" stroke="#c4c7cf"/>
<line x1="${x(0).toFixed(1)}" x2="${x(0).toFixed(1)}" y1="${y - 12}" y2="${y + 12}" stroke="#5f6470" stroke-dasharray="3 2"/>
<text x="${x(0).toFixed(1)}" y="${y + 26}" text-anchor="middle">0</text>
<line x1="${x(low).toFixed(1)}" x2="${x(high).toFixed(1)}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="3"/>
<line x1="${x(low).toFixed(1)}" x2="${x(low).toFixed(1)}" y1="${y - 7}" y2="${y + 7}" stroke="${color}" stroke-width="2"/>
<line x1="${x(high).toFixed(1)}" x2="${x(high).toFixed(1)}" y1="${y - 7}" y2="${y + 7}" stroke="${color}" stroke-width="2"/>
<circle cx="${x(difference).toFixed(1)}" cy="${y}" r="5" fill="${color}"><title>${input.differenceLabel}: ${input.formatDifference(difference)} (${input.formatDifference(low)} … ${input.formatDifference(high)})</title></circle>
<text x="${x(difference).toFixed(1)}" y="${y - 12}" text-anchor="middle">${input.formatDifference(difference)}</text>`;
  }
  return html`<figure class="chart-figure comparison" id="${input.id}">
<figcaption><strong>${input.title}</strong></figcaption>
<svg class="chart" viewBox="0 0 ${SMALL_W} ${height}" role="img" aria-label="${input.summary}" focusable="false">${bar(8, input.treatedLabel, input.treated, '#0b57d0')}${input.control === null ? '' : bar(8 + barH + 10, input.controlLabel, input.control, '#9aa0ac')}${diff}</svg>
</figure>`;
}

export interface FlowInput {
  lang: Lang;
  id: string;
  title: string;
  /** Nodes in the order drawn (top to bottom), on both sides. */
  nodes: Array<{ key: string; label: string; color: string }>;
  flows: Array<{ from: string; to: string; value: number }>;
  fromHeader: string;
  toHeader: string;
  valueHeader: string;
  summary: string;
}

/** Movement between categories as bands from the left column (before) to the right one (after). */
export function flowChart(input: FlowInput): SafeHtml {
  const t = CABINET_MESSAGES[input.lang];
  const flows = input.flows.filter((f) => f.value > 0);
  const total = flows.reduce((s, f) => s + f.value, 0);
  const nodeW = 12;
  const labelW = 92;
  const height = 320;
  const gap = 8;
  const left = labelW;
  const right = SMALL_W - labelW - nodeW;
  const used = (side: 'from' | 'to') => input.nodes.filter((n) => flows.some((f) => f[side] === n.key));
  const scale = (side: 'from' | 'to') => (total === 0 ? 0 : (height - 20 - gap * Math.max(used(side).length - 1, 0)) / total);
  const layout = (side: 'from' | 'to') => {
    const k = scale(side);
    let y = 10;
    const pos = new Map<string, { y: number; h: number; offset: number }>();
    for (const n of used(side)) {
      const h = flows.filter((f) => f[side] === n.key).reduce((s, f) => s + f.value, 0) * k;
      pos.set(n.key, { y, h, offset: 0 });
      y += h + gap;
    }
    return { pos, k };
  };
  const from = layout('from');
  const to = layout('to');
  const color = (key: string) => input.nodes.find((n) => n.key === key)?.color ?? '#9aa0ac';
  const label = (key: string) => input.nodes.find((n) => n.key === key)?.label ?? key;
  const order = (key: string) => input.nodes.findIndex((n) => n.key === key);
  const bands = [...flows]
    .sort((a, b) => order(a.from) - order(b.from) || order(a.to) - order(b.to))
    .map((f) => {
      const a = from.pos.get(f.from)!;
      const b = to.pos.get(f.to)!;
      const h1 = f.value * from.k;
      const h2 = f.value * to.k;
      const y1 = a.y + a.offset;
      const y2 = b.y + b.offset;
      a.offset += h1;
      b.offset += h2;
      const x1 = left + nodeW;
      const x2 = right;
      const mid = (x1 + x2) / 2;
      const d = `M${x1},${y1.toFixed(1)} C${mid},${y1.toFixed(1)} ${mid},${y2.toFixed(1)} ${x2},${y2.toFixed(1)} L${x2},${(y2 + h2).toFixed(1)} C${mid},${(y2 + h2).toFixed(1)} ${mid},${(y1 + h1).toFixed(1)} ${x1},${(y1 + h1).toFixed(1)} Z`;
      return html`<path d="${d}" fill="${color(f.to)}" fill-opacity="${f.from === f.to ? 0.18 : 0.45}"><title>${label(f.from)} → ${label(f.to)}: ${formatNumber(input.lang, f.value)}</title></path>`;
    });
  const nodes = (side: 'from' | 'to') =>
    [...(side === 'from' ? from : to).pos].map(([key, p]) => {
      const x = side === 'from' ? left : right;
      const n = flows.filter((f) => f[side] === key).reduce((s, f) => s + f.value, 0);
      const text = side === 'from'
        ? html`<text x="${x - 5}" y="${(p.y + p.h / 2 + 4).toFixed(1)}" text-anchor="end">${label(key)} ${formatNumber(input.lang, n)}</text>`
        : html`<text x="${x + nodeW + 5}" y="${(p.y + p.h / 2 + 4).toFixed(1)}">${label(key)} ${formatNumber(input.lang, n)}</text>`;
      return html`<rect x="${x}" y="${p.y.toFixed(1)}" width="${nodeW}" height="${Math.max(p.h, 1).toFixed(1)}" fill="${color(key)}"/>${text}`;
    });
  return html`<figure class="chart-figure" id="${input.id}">
<figcaption><strong>${input.title}</strong></figcaption>
<svg class="chart flow" viewBox="0 0 ${SMALL_W} ${height}" role="img" aria-label="${input.summary}" focusable="false">${bands}${nodes('from')}${nodes('to')}</svg>
<details><summary>${t.showTable}</summary><div class="table-wrap"><table>
<caption>${input.title}</caption>
<thead><tr><th scope="col">${input.fromHeader}</th><th scope="col">${input.toHeader}</th><th scope="col" class="num">${input.valueHeader}</th></tr></thead>
<tbody>${flows.map((f) => html`<tr><td>${label(f.from)}</td><td>${label(f.to)}</td><td class="num">${formatNumber(input.lang, f.value)}</td></tr>`)}</tbody>
</table></div></details>
</figure>`;
}
