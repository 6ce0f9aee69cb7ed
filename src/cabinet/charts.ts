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
}

const WIDTH = 720;
const HEIGHT = 260;
const M = { top: 16, right: 12, bottom: 48, left: 52 };
const PLOT_W = WIDTH - M.left - M.right;
const PLOT_H = HEIGHT - M.top - M.bottom;

/** The top of the axis: four equal steps of 1, 2 or 5 × 10ⁿ, so every gridline is a whole, round number. */
function niceMax(max: number): number {
  const rough = Math.max(max, 4) / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const multiples = power >= 10 ? [1, 2, 2.5, 5, 10] : [1, 2, 5, 10];
  const step = multiples.map((m) => m * power).find((candidate) => candidate >= rough) ?? 10 * power;
  return step * 4;
}

const truncate = (label: string, max: number) => (label.length > max ? `${label.slice(0, max - 1)}…` : label);

function axes(lang: Lang, top: number): SafeHtml {
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return html`${ticks.map((f) => {
    const y = M.top + PLOT_H - f * PLOT_H;
    return html`<line x1="${M.left}" x2="${WIDTH - M.right}" y1="${y}" y2="${y}" stroke="#dde0e6" stroke-width="1"/><text x="${M.left - 6}" y="${y + 4}" text-anchor="end">${formatNumber(lang, Math.round(top * f))}</text>`;
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
    (c, i) => html`<tr><th scope="row">${c}</th>${input.series.map((s) => html`<td class="num">${formatNumber(input.lang, s.values[i] ?? 0)}</td>`)}</tr>`,
  )}</tbody></table></div></details>`;
}

function summary(input: ChartInput): string {
  const totals = input.series.map((s) => `${s.name}: ${formatNumber(input.lang, s.values.reduce((a, b) => a + b, 0))}`);
  return `${input.title}. ${totals.join('; ')}`;
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(input: ChartInput): SafeHtml {
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
      return html`<rect x="${(x0 + k * barW).toFixed(1)}" y="${(M.top + PLOT_H - h).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${category} — ${s.name}: ${formatNumber(input.lang, value)}</title></rect>`;
    })}<text x="${(M.left + i * group + group / 2).toFixed(1)}" y="${HEIGHT - M.bottom + 16}" text-anchor="middle">${truncate(category, maxChars)}</text>`;
  });
  return html`<figure class="chart-figure" id="${input.id}">
<figcaption><strong>${input.title}</strong></figcaption>
${legend(input.series)}
<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${summary(input)}" focusable="false">${axes(input.lang, top)}${bars}</svg>
${table(input)}
</figure>`;
}

/** Lines over time: one point per category (day), one line per series. */
export function lineChart(input: ChartInput): SafeHtml {
  const n = input.categories.length;
  const top = niceMax(Math.max(0, ...input.series.flatMap((s) => s.values)));
  const x = (i: number) => M.left + (n <= 1 ? PLOT_W / 2 : (i / (n - 1)) * PLOT_W);
  const y = (v: number) => M.top + PLOT_H - (top === 0 ? 0 : (v / top) * PLOT_H);
  const every = Math.max(1, Math.ceil(n / 8));
  const labels = input.categories.map((c, i) =>
    i % every === 0 ? html`<text x="${x(i).toFixed(1)}" y="${HEIGHT - M.bottom + 16}" text-anchor="middle">${c}</text>` : '',
  );
  const lines = input.series.map(
    (s) => html`<polyline fill="none" stroke="${s.color}" stroke-width="2.5" stroke-linejoin="round" points="${s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>${s.values.map(
      (v, i) => html`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${s.color}"><title>${input.categories[i]} — ${s.name}: ${formatNumber(input.lang, v)}</title></circle>`,
    )}`,
  );
  return html`<figure class="chart-figure" id="${input.id}">
<figcaption><strong>${input.title}</strong></figcaption>
${legend(input.series)}
<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${summary(input)}" focusable="false">${axes(input.lang, top)}${labels}${lines}</svg>
${table(input)}
</figure>`;
}
