// A hand-written SVG of latency percentiles per path: percentiles on x (p50, p90, p99, p99.9,
// equally spaced, i.e. a "number of nines" axis as in HdrHistogram plots), latency on a log y
// axis, one line per path. No dependencies; readable in a browser or on GitHub.
import type { LatencySummary } from './stats.ts';

export interface Series { label: string; latency: LatencySummary }

const COLORS = ['#444444', '#1f77b4', '#17becf', '#2ca02c', '#d62728', '#9467bd', '#ff7f0e', '#8c564b'];
const POINTS: Array<{ key: 'p50' | 'p90' | 'p99' | 'p999'; label: string }> = [
  { key: 'p50', label: 'p50' }, { key: 'p90', label: 'p90' }, { key: 'p99', label: 'p99' }, { key: 'p999', label: 'p99.9' },
];

/** Text for SVG (XML) content and attribute values. */
export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function latencyChart(series: Series[], title: string): string {
  const W = 980; const H = 420; const left = 64; const right = 400; const top = 48; const bottom = 56;
  const plotW = W - left - right; const plotH = H - top - bottom;
  const values = series.flatMap((s) => POINTS.map((p) => s.latency[p.key])).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values, 0.1))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, 1))));
  const y = (v: number): number => top + plotH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const x = (i: number): number => left + (i / (POINTS.length - 1)) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`);
  // Grid: 1-2-5 steps per decade.
  for (let d = lo; d < hi * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi * 1.0001) break;
      const yy = y(v).toFixed(1);
      out.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="${m === 1 ? '#bbbbbb' : '#e5e5e5'}"/>`);
      out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#555">${+v.toPrecision(3)}</text>`);
    }
  }
  POINTS.forEach((p, i) => {
    out.push(`<line x1="${x(i)}" x2="${x(i)}" y1="${top}" y2="${top + plotH}" stroke="#eeeeee"/>`);
    out.push(`<text x="${x(i)}" y="${top + plotH + 18}" text-anchor="middle">${p.label}</text>`);
  });
  out.push(`<text x="${left + plotW / 2}" y="${H - 12}" text-anchor="middle" fill="#333">percentile</text>`);
  out.push(`<text x="16" y="${top + plotH / 2}" text-anchor="middle" fill="#333" transform="rotate(-90 16 ${top + plotH / 2})">latency (ms, log scale)</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length]!;
    const pts = POINTS.map((p, i) => `${x(i).toFixed(1)},${y(s.latency[p.key]).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const pt of pts) { const [px, py] = pt.split(','); out.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`); }
    const ly = top + 10 + k * 20;
    out.push(`<line x1="${left + plotW + 16}" x2="${left + plotW + 36}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${left + plotW + 42}" y="${ly}" dominant-baseline="middle" data-series="${esc(s.label)}">${esc(s.label)} (p50 ${s.latency.p50.toFixed(2)})</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
