// Summary of a V8 .cpuprofile (written by `node --cpu-prof`): where the busy time went, by area
// (TLS, HTTP parsing, undici, the sidecar's own modules, GC) and by function, plus inclusive time
// of the sidecar's request-path functions. Enough to decide what to fix without a flame-graph viewer.
import { readFile } from 'node:fs/promises';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface Share { name: string; ms: number; pct: number }
export interface ProfileSummary {
  /** Sampled wall time of the profile (ms) and the part not idle. */
  totalMs: number;
  busyMs: number;
  byArea: Share[];
  topSelf: Share[];
  /** Inclusive (self + callees) time of functions in the repository's src/. */
  ownInclusive: Share[];
  /** Native (C++) self time by the nearest JavaScript caller: which JS call paid for it. */
  nativeByCaller: Share[];
  /** The busy samples as a call tree, for the flame graph (flame.ts); absent in results written before it. */
  flame?: FlameNode;
}

/** One frame of the flame graph: `ms` is inclusive (the frame and what it called). */
export interface FlameNode { name: string; area: string; ms: number; children: FlameNode[] }

/** Frames under this share of the busy time are left out of the flame tree (a few hundred remain). */
const FLAME_MIN_SHARE = 0.002;

/** Which part of the stack a frame belongs to. */
export function areaOf(f: CallFrame): string {
  const { url, functionName } = f;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'native / V8 (no JS frame)';
  if (url.includes('/node_modules/undici/')) return 'undici';
  if (url.includes('/node_modules/')) return `npm: ${/\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? '?'}`;
  const own = /\/src\/([^/]+)\//.exec(url);
  if (own) return `authproxy src/${own[1]}`;
  if (url.startsWith('node:')) {
    if (/_tls|tls|crypto/.test(url)) return 'node: TLS';
    if (/_http|http_parser|internal\/http/.test(url)) return 'node: HTTP';
    if (/streams|stream/.test(url)) return 'node: streams';
    if (/net|dgram|socket/.test(url)) return 'node: net';
    if (/fs/.test(url)) return 'node: fs';
    if (/timers|task_queues|async_hooks|events/.test(url)) return 'node: events & timers';
    return 'node: other';
  }
  if (url === '') return 'native bindings (C++: TLS, writev, parser)';
  return 'other JS';
}

const label = (f: CallFrame): string => {
  const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : 'native';
  return `${f.functionName || '(anonymous)'} ${where}`;
};

/**
 * `window` (microseconds on the monotonic clock, as process.hrtime) keeps only samples taken
 * under load, leaving out start-up and shutdown.
 */
export async function summarizeProfile(file: string, window: { fromUs: number; toUs: number } | null = null, top = 15): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  let totalMs = 0; let idleMs = 0;
  const area = new Map<string, number>(); const fn = new Map<string, number>(); const incl = new Map<string, number>();
  const nativeCaller = new Map<string, number>();
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    totalMs += ms;
    const a = areaOf(f);
    if (a === 'idle') { idleMs += ms; continue; }
    area.set(a, (area.get(a) ?? 0) + ms);
    fn.set(label(f), (fn.get(label(f)) ?? 0) + ms);
    if (f.url === '' && !f.functionName.startsWith('(')) {
      let cur = parent.get(id);
      while (cur !== undefined && byId.get(cur)!.callFrame.url === '') cur = parent.get(cur);
      const k = `${f.functionName} ← ${cur === undefined ? '?' : label(byId.get(cur)!.callFrame)}`;
      nativeCaller.set(k, (nativeCaller.get(k) ?? 0) + ms);
    }
    // Inclusive time: charge every distinct own function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      if (!/\/src\//.test(cf.url) || cf.url.includes('/node_modules/')) continue;
      const l = label(cf);
      if (seen.has(l)) continue;
      seen.add(l);
      incl.set(l, (incl.get(l) ?? 0) + ms);
    }
  }
  const busyMs = totalMs - idleMs;
  const shares = (m: Map<string, number>, n: number): Share[] => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, ms]) => ({ name, ms, pct: busyMs > 0 ? (100 * ms) / busyMs : 0 }));
  return { totalMs, busyMs, byArea: shares(area, 20), topSelf: shares(fn, top), ownInclusive: shares(incl, top), nativeByCaller: shares(nativeCaller, 10),
    flame: flameTree(p, self, busyMs * FLAME_MIN_SHARE) };
}

/**
 * The call tree under the profile's root with each frame's inclusive busy time (idle left out),
 * siblings of the same function merged (V8 keeps one node per call site, a flame graph one box
 * per function), frames under `minMs` dropped.
 */
function flameTree(p: CpuProfile, self: Map<number, number>, minMs: number): FlameNode {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const build = (n: ProfileNode): FlameNode | null => {
    const f = n.callFrame;
    const area = areaOf(f);
    if (area === 'idle') return null;
    const merged = new Map<string, FlameNode>();
    for (const c of n.children ?? []) {
      const child = build(byId.get(c)!);
      if (!child) continue;
      const same = merged.get(child.name);
      if (same) mergeInto(same, child); else merged.set(child.name, child);
    }
    const children = [...merged.values()];
    const ms = (self.get(n.id) ?? 0) + children.reduce((sum, c) => sum + c.ms, 0);
    return { name: label(f), area, ms, children };
  };
  const root = build(p.nodes[0]!) ?? { name: '(root)', area: 'other JS', ms: 0, children: [] };
  const prune = (n: FlameNode): FlameNode => ({ ...n, children: n.children.filter((c) => c.ms >= minMs).sort((a, b) => b.ms - a.ms).map(prune) });
  return { ...prune(root), name: 'all (busy)' };
}

function mergeInto(into: FlameNode, from: FlameNode): void {
  into.ms += from.ms;
  for (const c of from.children) {
    const same = into.children.find((x) => x.name === c.name);
    if (same) mergeInto(same, c); else into.children.push(c);
  }
}
