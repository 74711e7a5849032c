// A flame graph of the profiled sidecar's busy time, as an SVG (no dependencies; readable in a
// browser or on GitHub, with each box's function, time and share in its tooltip). The root is at
// the bottom and each box sits on its caller, as wide as its inclusive time; color says the area
// (the sidecar's own code, undici, Node's internals, native code, GC), as in the profile table.
import type { FlameNode } from './profile.ts';
import { esc } from './svg.ts';

const W = 1200; const ROW = 17; const PAD = 10; const HEAD = 44; const FOOT = 24;
const CHAR_PX = 6.2;

export function areaColor(area: string): string {
  if (area.startsWith('authproxy')) return '#f28e2b';
  if (area === 'undici') return '#b07aa1';
  if (area === 'GC') return '#e15759';
  if (area.startsWith('native')) return '#bab0ac';
  if (area.startsWith('node:')) return '#76b7f2';
  if (area.startsWith('npm:')) return '#edc948';
  return '#59a14f';
}

function depthOf(n: FlameNode): number { return 1 + Math.max(0, ...n.children.map(depthOf)); }

export function flameGraph(root: FlameNode, title: string): string {
  const depth = depthOf(root);
  const H = HEAD + depth * ROW + FOOT;
  const scale = root.ms > 0 ? (W - 2 * PAD) / root.ms : 0;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="monospace" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${PAD}" y="24" font-family="sans-serif" font-size="15" font-weight="bold">${esc(title)}</text>`);
  const draw = (n: FlameNode, x: number, level: number): void => {
    const w = n.ms * scale;
    const y = H - FOOT - (level + 1) * ROW;
    const pct = root.ms > 0 ? (100 * n.ms) / root.ms : 0;
    out.push(`<g><title>${esc(`${n.name} (${n.area}): ${n.ms.toFixed(1)} ms, ${pct.toFixed(1)}% of busy`)}</title>`
      + `<rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${ROW - 1}" fill="${areaColor(n.area)}" rx="1"/>`);
    const fits = Math.floor((w - 4) / CHAR_PX);
    if (fits >= 4) {
      const text = n.name.length <= fits ? n.name : `${n.name.slice(0, fits - 1)}…`;
      out.push(`<text x="${(x + 2).toFixed(2)}" y="${y + ROW - 5}">${esc(text)}</text>`);
    }
    out.push('</g>');
    let cx = x;
    for (const c of n.children) { draw(c, cx, level + 1); cx += c.ms * scale; }
  };
  draw(root, PAD, 0);
  const legend = [['the sidecar (src/)', 'authproxy'], ['undici', 'undici'], ['Node internals', 'node:'], ['native (C++)', 'native'], ['GC', 'GC'], ['other', 'other']];
  let lx = PAD;
  for (const [text, area] of legend) {
    out.push(`<rect x="${lx}" y="${H - 16}" width="10" height="10" fill="${areaColor(area!)}"/><text x="${lx + 14}" y="${H - 7}" font-family="sans-serif">${esc(text!)}</text>`);
    lx += 24 + text!.length * 7;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
