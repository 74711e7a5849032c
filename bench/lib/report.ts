// The results of one run and their markdown rendering, with the issue's budgets marked.
import type { WireResult } from './wire.ts';
import type { RateResult, SaturateResult, HandshakeResult } from '../loadgen.ts';
import type { MemoryReading } from './procs.ts';
import type { ProfileSummary } from './profile.ts';
import { median, type LatencySummary } from './stats.ts';

export const BUDGETS = {
  addedP50Ms: 0.25,
  addedP99Ms: 1,
  saturationVsNginx: 0.6,
  outboundCachedVsPlain: 0.1,
  peakRssMb: 80,
  readyMs: 400,
} as const;

export type PathKind = 'baseline' | 'authproxy' | 'floor' | 'peer' | 'outbound';

export interface PathResult {
  id: string;
  label: string;
  kind: PathKind;
  /** Set when the row was not measured: why (not installed, pending, failed to start). */
  skipped: string | null;
  readyMs: number | null;
  idle: MemoryReading | null;
  peak: MemoryReading | null;
  rate: RateResult | null;
  /** The p50 (ms) of each fixed-rate round in order: how much a row moves from round to round. */
  rateRoundP50s?: number[];
  /** CPU time of the proxy's processes per request at the fixed rate (work not shared by close requests shows here). */
  rateCpuUsPerRequest?: number | null;
  /** The first requests after start, at the fixed rate and before any warm-up (JIT still cold). */
  cold?: LatencySummary | null;
  /** Mean req/s over the saturation rounds (latency from the best round). */
  saturate: SaturateResult | null;
  saturateRounds: number[];
  /** CPU time of the proxy's processes (the app's for the direct row) per request at saturation. */
  cpuUsPerRequest: number | null;
  /** CPU time of the app per request in the same runs (it shares the proxy's core). */
  appCpuUsPerRequest: number | null;
  handshake: HandshakeResult | null;
  /** CPU time of the proxy's processes per new connection (handshake + one request). */
  cpuUsPerHandshake: number | null;
}

export interface ReadySeries { label: string; readyMs: number[]; idleRssKb: number[]; peakUnderLoadKb: number | null; loadRps: number | null }

export interface MicroResult {
  label: string; note: string; rate: RateResult | null; saturate: SaturateResult | null;
  cpuUsPerRequest: number | null; peak: MemoryReading | null; skipped: string | null;
}

export interface RunSettings {
  mode: 'full' | 'quick' | 'smoke';
  rate: number;
  requests: number;
  /** The fixed-rate requests are split over this many interleaved rounds. */
  rounds: number;
  warmupRequests: number;
  /** Closed-loop load each target gets (and that is discarded) before the fixed-rate rounds. */
  warmTargetMs?: number;
  /** Requests sent at the fixed rate right after start, before the warm-up, reported apart. */
  coldRequests?: number;
  bodyBytes: number;
  connections: number;
  saturateMs: number;
  saturateRounds: number;
  handshakeConcurrency: number;
  handshakeMs: number;
  readyRepeats: number;
}

export interface BenchReport {
  startedAt: string;
  durationS: number;
  settings: RunSettings;
  env: { node: string; cpu: string; cores: number; pinning: string; loadAvg: number[]; loadAvgEnd: number[]; commit: string; tools: Record<string, string | null> };
  paths: PathResult[];
  ready: ReadySeries[];
  micro: MicroResult[];
  /** Header bytes on the sidecar → sidecar hop with a 16 KB token (empty when not measured). */
  wire: WireResult[];
  profile: { summary: ProfileSummary; file: string } | null;
  notes: string[];
}

const f = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const int = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : Math.round(v).toLocaleString('en-US'));
const mb = (kb: number | null | undefined): string => (kb === null || kb === undefined || !Number.isFinite(kb) ? '—' : (kb / 1024).toFixed(1));
const mark = (ok: boolean): string => (ok ? '✅' : '❌');
/** Function names from profiles may hold regexps: keep them from breaking the table or code span. */
const code = (s: string): string => `\`${s.replace(/`/g, "'").replace(/\|/g, '\\|')}\``;

export function findPath(r: BenchReport, id: string): PathResult | undefined { return r.paths.find((p) => p.id === id); }

/**
 * Requests per second one core could carry for this path, from CPU time per request (proxy +
 * app, which share the core). Unlike measured req/s it does not depend on the load generator's
 * ceiling or on other work stealing the core, so it is the steadier figure on a shared machine.
 */
export function capacity(p: PathResult | undefined): number | null {
  if (!p || p.cpuUsPerRequest === null) return null;
  const us = p.cpuUsPerRequest + (p.appCpuUsPerRequest ?? 0);
  return us > 0 ? 1e6 / us : null;
}

export interface BudgetLine { budget: string; subject: string; value: string; pass: boolean | null }

/** Every budget of the issue, evaluated on this run (pass null: could not be evaluated). */
export function budgets(r: BenchReport): BudgetLine[] {
  const out: BudgetLine[] = [];
  const direct = findPath(r, 'direct');
  const nginx = findPath(r, 'nginx');
  // The floor's lines say whether the runtime alone, doing no more than terminate mTLS and
  // relay, would pass: where it misses too, the sidecar's own code is not what stands in the way.
  for (const p of r.paths.filter((x) => x.kind === 'authproxy' || x.kind === 'floor')) {
    if (p.rate && direct?.rate) {
      const a50 = p.rate.latency.p50 - direct.rate.latency.p50;
      const a99 = p.rate.latency.p99 - direct.rate.latency.p99;
      out.push({ budget: `added p50 ≤ ${BUDGETS.addedP50Ms} ms`, subject: p.label, value: `${f(a50, 3)} ms`, pass: a50 <= BUDGETS.addedP50Ms });
      out.push({ budget: `added p99 ≤ ${BUDGETS.addedP99Ms} ms`, subject: p.label, value: `${f(a99, 3)} ms`, pass: a99 <= BUDGETS.addedP99Ms });
    }
    if (p.saturate) {
      const ratio = nginx?.saturate ? p.saturate.rps / nginx.saturate.rps : null;
      out.push({ budget: `saturation ≥ ${BUDGETS.saturationVsNginx * 100}% of nginx (measured req/s)`, subject: p.label,
        value: ratio === null ? `nginx ${nginx?.skipped ?? 'not measured'}` : `${f(ratio * 100, 0)}%`, pass: ratio === null ? null : ratio >= BUDGETS.saturationVsNginx });
      const [cp, cn] = [capacity(p), capacity(nginx)];
      if (cp !== null && cn !== null) {
        out.push({ budget: `saturation ≥ ${BUDGETS.saturationVsNginx * 100}% of nginx (one-core capacity from CPU/request)`, subject: p.label,
          value: `${f((100 * cp) / cn, 0)}%`, pass: cp / cn >= BUDGETS.saturationVsNginx });
      }
    }
    if (p.peak) out.push({ budget: `peak RSS ≤ ${BUDGETS.peakRssMb} MB`, subject: p.label, value: `${mb(p.peak.hwmKb)} MB`, pass: p.peak.hwmKb / 1024 <= BUDGETS.peakRssMb });
  }
  // Both launches are judged: the image is what production runs, the repo what a developer runs.
  for (const series of r.ready) {
    if (!series.readyMs.length) continue;
    const m = median(series.readyMs);
    out.push({ budget: `ready ≤ ${BUDGETS.readyMs} ms`, subject: series.label, value: `${f(m, 0)} ms (median of ${series.readyMs.length})`, pass: m <= BUDGETS.readyMs });
  }
  const cached = findPath(r, 'outbound-cached-token');
  const plain = findPath(r, 'outbound-plain');
  const within = `outbound cached token within ${BUDGETS.outboundCachedVsPlain * 100}% of plain outbound`;
  if (cached?.saturate && plain?.saturate) {
    const ratio = cached.saturate.rps / plain.saturate.rps;
    out.push({ budget: `${within} (req/s)`, subject: cached.label, value: `${f(ratio * 100, 0)}% of plain`, pass: ratio >= 1 - BUDGETS.outboundCachedVsPlain });
  }
  if (cached?.rate && plain?.rate) {
    const ratio = cached.rate.latency.p50 / plain.rate.latency.p50;
    out.push({ budget: `${within} (p50)`, subject: cached.label, value: `${f(ratio * 100, 0)}% of plain`, pass: ratio <= 1 + BUDGETS.outboundCachedVsPlain });
  }
  if (!(cached?.saturate && plain?.saturate)) {
    out.push({ budget: within, subject: cached?.label ?? 'outbound', value: cached?.skipped ?? plain?.skipped ?? 'not measured', pass: null });
  }
  return out;
}

export function renderMarkdown(r: BenchReport): string {
  const s = r.settings;
  const L: string[] = [];
  const direct = findPath(r, 'direct');
  const nginx = findPath(r, 'nginx');
  L.push('# authproxy benchmark: latest run', '');
  L.push(`${r.startedAt} · ${s.mode} run (${f(r.durationS, 0)} s) · commit ${r.env.commit} · Node ${r.env.node} · ${r.env.cpu} × ${r.env.cores}`);
  L.push(`Pinning: ${r.env.pinning}. Load average at start: ${r.env.loadAvg.map((v) => v.toFixed(2)).join(' / ')}` +
    `, at the end: ${r.env.loadAvgEnd.map((v) => v.toFixed(2)).join(' / ')} (other work on this machine shows up as noise, mostly in p99 and beyond).`);
  L.push(`Peers: ${Object.entries(r.env.tools).map(([k, v]) => `${k} ${v ?? 'not installed'}`).join(', ')}.`, '');
  L.push('How to read this: `bench/README.md`.', '');

  L.push('## Latency at a fixed rate', '');
  L.push(`${int(s.requests)} requests per path in ${s.rounds} interleaved rounds (each after ${int(s.warmupRequests)} warm-up), at ${s.rate} req/s (open loop), ${s.bodyBytes} B POST body and 1 KB response,` +
    ' keep-alive. Latency is measured from each request\'s **scheduled** send time (no coordinated omission). Milliseconds.' +
    (s.warmTargetMs ? ` Before the first round every target (the peers too) gets ${f(s.warmTargetMs / 1000, 1)} s of closed-loop load that is not counted: a long-running sidecar serves with its hot code compiled, and a cold one is a start-up figure, not a steady-state one.` : ''), '');
  L.push('| path | n | p50 | p90 | p99 | p99.9 | max | added p50 | added p99 | p50 × direct | p99 × direct | errors | budget (added p50 ≤ 0.25, p99 ≤ 1) |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const p of r.paths) {
    if (!p.rate) { L.push(`| ${p.label} | ${p.skipped ?? 'not measured'} ||||||||||||`); continue; }
    const l = p.rate.latency; const d = direct?.rate?.latency;
    const a50 = d ? l.p50 - d.p50 : null; const a99 = d ? l.p99 - d.p99 : null;
    const budget = p.kind === 'authproxy' && a50 !== null && a99 !== null
      ? `${mark(a50 <= BUDGETS.addedP50Ms)} p50 ${mark(a99 <= BUDGETS.addedP99Ms)} p99` : '';
    L.push(`| ${p.label} | ${int(l.count)} | ${f(l.p50, 3)} | ${f(l.p90, 3)} | ${f(l.p99, 3)} | ${f(l.p999, 3)} | ${f(l.max)} | ${p.id === 'direct' ? '—' : f(a50, 3)} | ${p.id === 'direct' ? '—' : f(a99, 3)} | ${d ? f(l.p50 / d.p50) : '—'} | ${d ? f(l.p99 / d.p99) : '—'} | ${p.rate.errors} | ${budget} |`);
  }
  L.push('');
  const lags = r.paths.filter((p) => p.rate).map((p) => `${p.label} ${f(p.rate!.sendLag.p99, 3)}`);
  if (lags.length) L.push(`Harness check, generator send lag p99 (ms; should be well under the p50 above): ${lags.join(' · ')}.`, '');
  const rounds = r.paths.filter((p) => p.rateRoundP50s?.length).map((p) => `${p.label} ${p.rateRoundP50s!.map((v) => f(v, 3)).join('/')}`);
  if (rounds.length) L.push(`p50 of each round in the order run (ms; how far a row moves between rounds, so how far apart two rows must be to differ): ${rounds.join(' · ')}.`, '');
  const rateCpu = r.paths.filter((p) => p.rateCpuUsPerRequest != null).map((p) => `${p.label} ${int(p.rateCpuUsPerRequest)}`);
  if (rateCpu.length) L.push(`Proxy CPU per request at the fixed rate (µs, all rounds, their warm-up requests included; the app's for the direct row): ${rateCpu.join(' · ')}.`, '');
  const colds = r.paths.filter((p) => p.cold).map((p) => `${p.label} ${f(p.cold!.p50, 3)}/${f(p.cold!.p99, 3)}/${f(p.cold!.max, 1)}`);
  if (colds.length) L.push(`Cold, the first ${int(s.coldRequests ?? 0)} requests after start at the same rate, before the warm-up (p50/p99/max, ms; not part of the table or the budgets): ${colds.join(' · ')}.`, '');
  const svc = r.paths.filter((p) => p.rate).map((p) => `${p.label} ${f(p.rate!.service.p50, 3)}/${f(p.rate!.service.p99, 3)}`);
  if (svc.length) L.push(`Service time from actual send (p50/p99, ms; what a closed-loop tool would print): ${svc.join(' · ')}.`, '');
  L.push('![latency percentiles](latency.svg)', '');

  L.push('## Throughput and CPU cost', '');
  L.push(`Saturation: ${s.connections} keep-alive connections, closed loop, ${s.saturateRounds} interleaved round(s) of ${f(s.saturateMs / 1000, 1)} s after warm-up; req/s is the mean (range in brackets). ` +
    'CPU µs/request is from /proc (user + system, all threads) over the same runs, warm-up included. One-core capacity = 10⁶ / (proxy + app µs per request): ' +
    'what the shared core could carry if the load generator were not the limit, and the figure least disturbed by other work on the machine.', '');
  L.push('| path | req/s | × direct | × nginx | proxy CPU µs/req | app CPU µs/req | one-core capacity req/s | capacity × nginx | sat. p50 / p99 ms | budget (≥ 60% of nginx) |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  const capNginx = capacity(nginx);
  for (const p of r.paths) {
    if (!p.saturate) { L.push(`| ${p.label} | ${p.skipped ?? 'not measured'} |||||||||`); continue; }
    const rps = p.saturate.rps;
    const vsNginx = nginx?.saturate ? rps / nginx.saturate.rps : null;
    const cap = capacity(p);
    const capVs = cap !== null && capNginx !== null ? cap / capNginx : null;
    const range = p.saturateRounds.length > 1 ? ` (${int(Math.min(...p.saturateRounds))}–${int(Math.max(...p.saturateRounds))})` : '';
    const budget = p.kind === 'authproxy'
      ? `${vsNginx === null ? '—' : mark(vsNginx >= BUDGETS.saturationVsNginx)} measured ${capVs === null ? '—' : mark(capVs >= BUDGETS.saturationVsNginx)} capacity` : '';
    L.push(`| ${p.label} | ${int(rps)}${range}${p.saturate.errors ? ` (${p.saturate.errors} errors)` : ''} | ${direct?.saturate ? f(rps / direct.saturate.rps) : '—'} | ${f(vsNginx)} | ` +
      `${p.id === 'direct' ? '—' : f(p.cpuUsPerRequest, 0)} | ${f(p.id === 'direct' ? p.cpuUsPerRequest : p.appCpuUsPerRequest, 0)} | ${int(cap)} | ${f(capVs)} | ` +
      `${f(p.saturate.latency.p50)} / ${f(p.saturate.latency.p99)} | ${budget} |`);
  }
  L.push('');

  L.push('## Handshakes and memory', '');
  L.push(`Handshakes: ${s.handshakeConcurrency} concurrent clients each opening a new connection per request (full TLS 1.3 handshake with a client certificate, no resumption; plain TCP for the direct row), ${f(s.handshakeMs / 1000, 1)} s. ` +
    'CPU per handshake is the proxy\'s (handshake + one small request); when it is far below 10⁶ / handshakes/s the load generator, which does the client half, was the limit. ' +
    'RSS of the proxy\'s process tree (the app\'s for the direct row; both sidecars for sidecar → sidecar): idle after start, peak = VmHWM after all the load. ' +
    'Private = RssAnon after all the load: the resident set without file-backed pages (for Node, ~50 MB of the binary\'s own code, shared by every process that maps the same file, so by every sidecar on a host running the same image); what one more pod adds.', '');
  L.push('| path | handshakes/s | × nginx | proxy CPU µs/handshake | idle RSS MB | peak RSS MB | private MB after load | budget (peak ≤ 80 MB) |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const p of r.paths) {
    if (p.skipped) { L.push(`| ${p.label} | ${p.skipped} |||||||`); continue; }
    const hsVsNginx = p.handshake && nginx?.handshake ? p.handshake.perSecond / nginx.handshake.perSecond : null;
    const budget = p.kind === 'authproxy' && p.peak ? mark(p.peak.hwmKb / 1024 <= BUDGETS.peakRssMb) : '';
    L.push(`| ${p.label} | ${int(p.handshake?.perSecond)}${p.id === 'direct' ? ' (TCP)' : ''}${p.handshake?.errors ? ` (${p.handshake.errors} errors)` : ''} | ${f(hsVsNginx)} | ${p.id === 'direct' ? '—' : f(p.cpuUsPerHandshake, 0)} | ${mb(p.idle?.rssKb)} | ${mb(p.peak?.hwmKb)} | ${mb(p.peak?.anonKb)} | ${budget} |`);
  }
  L.push('');

  L.push('## Sidecar start-up and memory', '');
  L.push('Ready = from spawn to the first `/readyz` 200 (polled every 2 ms). Idle RSS right after ready; peak RSS (VmHWM) after a saturation run.', '');
  L.push('| build | ready ms, median (min–max, n) | idle RSS MB, median | peak RSS MB under load | req/s under load | budget (ready ≤ 400 ms, RSS ≤ 80 MB) |');
  L.push('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const rs of r.ready) {
    const m = median(rs.readyMs);
    L.push(`| ${rs.label} | ${f(m, 0)} (${f(Math.min(...rs.readyMs), 0)}–${f(Math.max(...rs.readyMs), 0)}, ${rs.readyMs.length}) | ${mb(median(rs.idleRssKb))} | ${mb(rs.peakUnderLoadKb)} | ${int(rs.loadRps)} | ${mark(m <= BUDGETS.readyMs)} ready ${rs.peakUnderLoadKb === null ? '—' : mark(rs.peakUnderLoadKb / 1024 <= BUDGETS.peakRssMb)} RSS |`);
  }
  L.push('');

  if (r.micro.length) {
    L.push('## Forwarding library (micro-benchmark)', '');
    L.push('A plain-HTTP front server forwarding to the same app, so TLS and policy are out of the picture; same header handling in both; each in its own process on the targets\' core.', '');
    L.push('| forwarder | req/s | × first | CPU µs/req | p50 ms @ rate | p99 ms @ rate | peak RSS MB | note |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    const base = r.micro[0]?.saturate?.rps;
    for (const m of r.micro) {
      if (m.skipped) { L.push(`| ${m.label} | ${m.skipped} |||||| ${m.note} |`); continue; }
      const errs = (m.saturate?.errors ?? 0) + (m.rate?.errors ?? 0);
      L.push(`| ${m.label} | ${int(m.saturate?.rps)}${errs ? ` (${errs} errors)` : ''} | ${base && m.saturate ? f(m.saturate.rps / base) : '—'} | ${f(m.cpuUsPerRequest, 0)} | ${f(m.rate?.latency.p50, 3)} | ${f(m.rate?.latency.p99, 3)} | ${mb(m.peak?.hwmKb)} | ${m.note} |`);
    }
    L.push('');
  }

  if (r.wire.length) {
    L.push('## Header bytes on the sidecar → sidecar hop', '');
    L.push(`A 16 KB token from the dev issuer on every request; requests one after another from one client connection, so A keeps one connection to B. Bytes A → B counted by a TCP relay between them (TLS records and HTTP/2 frames included), over the measured requests after 5 warm-up requests. See \`bench/README.md\` for why the header name matters.`, '');
    L.push('| token header | token bytes | requests | new connections | bytes A → B per request | beyond the 1 KB body | token sent per request |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const w of r.wire) {
      const beyond = w.bytesPerRequest - w.bodyBytes;
      L.push(`| \`${w.header}\` | ${int(w.tokenBytes)} | ${int(w.requests)} | ${w.newConnections} | ${int(w.bytesPerRequest)} | ${int(beyond)} | ${beyond >= w.tokenBytes / 2 ? 'in full (Huffman-coded literal)' : 'once per connection, then referenced (HPACK index)'} |`);
    }
    L.push('');
  }

  if (r.profile) {
    const pr = r.profile.summary;
    L.push('## Where the sidecar spends CPU (inbound, saturation, `--cpu-prof`)', '');
    L.push(`Profile window: the saturation run only (start-up excluded), ${f(pr.totalMs / 1000, 1)} s sampled, ${f((100 * pr.busyMs) / pr.totalMs, 0)}% busy. Raw profile: \`${r.profile.file}\` (open in Chrome DevTools or speedscope).`, '');
    if (pr.flame) L.push('![flame graph of the busy samples](flame.svg)', '', 'Flame graph: each box is a function, as wide as its time with everything it called, on top of its caller; hover for the figures. Orange is the sidecar\'s own code.', '');
    L.push('| area | % of busy | | top functions (self) | % of busy |', '| --- | ---: | --- | --- | ---: |');
    const n = Math.max(pr.byArea.length, pr.topSelf.length);
    for (let i = 0; i < Math.min(n, 15); i++) {
      const a = pr.byArea[i]; const t = pr.topSelf[i];
      L.push(`| ${a?.name ?? ''} | ${a ? f(a.pct, 1) : ''} | | ${t ? code(t.name) : ''} | ${t ? f(t.pct, 1) : ''} |`);
    }
    L.push('', 'Native (C++) time by the JavaScript call that entered it:', '');
    L.push('| native ← caller | % of busy |', '| --- | ---: |');
    for (const o of pr.nativeByCaller.slice(0, 6)) L.push(`| ${code(o.name)} | ${f(o.pct, 1)} |`);
    L.push('', 'Inclusive time of the sidecar\'s own functions (self + everything they call):', '');
    L.push('| function | % of busy |', '| --- | ---: |');
    for (const o of pr.ownInclusive.slice(0, 12)) L.push(`| ${code(o.name)} | ${f(o.pct, 1)} |`);
    L.push('');
  }

  L.push('## Budgets (issue 5)', '');
  L.push('| budget | subject | this run | |', '| --- | --- | --- | --- |');
  for (const b of budgets(r)) L.push(`| ${b.budget} | ${b.subject} | ${b.value} | ${b.pass === null ? 'pending' : b.pass ? '✅ pass' : '❌ miss'} |`);
  L.push('');
  if (r.notes.length) { L.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), ''); }
  return L.join('\n');
}
