// `npm run bench [-- --quick]`: measures every path side by side in one run and writes
// bench/results/latest.md, latest.json and latency.svg. See bench/README.md.
//
// All paths are started first and then loaded in interleaved rounds (each round in its own
// order, roundOrders), so a burst of unrelated work on a shared machine lands on every
// path a little instead of on one path a lot. Idle proxies cost nothing meanwhile.
import { parseArgs } from 'node:util';
import { mkdtemp, mkdir, rm, writeFile, readFile, readdir, copyFile } from 'node:fs/promises';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { tmpdir, cpus, loadavg, availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { makeBenchPki } from './lib/pki.ts';
import { cpuPlan, spawnOn, firstJsonLine, runLoadgen, hasCommand, sleep, stopProcess, treeMemory, treeCpuSeconds, BENCH_DIR, REPO } from './lib/procs.ts';
import { startDirect, startAuthproxy, startNodeFloor, startNginx, startHaproxy, forwarderEnv, type Context, type RunningTarget } from './lib/targets.ts';
import { OUTBOUND_PATHS, outboundPending, startIssuerProcess, startOutboundPath } from './lib/outbound.ts';
import { compileSidecar } from './lib/compiled.ts';
import { PRODUCTION_NODE_OPTIONS } from '../src/runtime/node-options.ts';
import { summarizeProfile } from './lib/profile.ts';
import { measureWireBytes } from './lib/wire.ts';
import { summarize } from './lib/stats.ts';
import { latencyChart } from './lib/svg.ts';
import { flameGraph } from './lib/flame.ts';
import { renderMarkdown, type BenchReport, type PathResult, type PathKind, type RunSettings, type MicroResult, type ReadySeries } from './lib/report.ts';
import type { LoadTarget, RateResult, SaturateResult, HandshakeResult } from './loadgen.ts';

const USAGE = `usage: npm run bench [-- options]
  --quick            ~2 min: 2 000 requests per path, shorter saturation runs
  --smoke            seconds: 200 requests per path (what the test runs); no profile, no compiled build
  --out DIR          where to write latest.md, latest.json, latency.svg, flame.svg (default bench/results)
  --rate N           fixed-rate requests per second (default 500)
  --requests N       measured requests per path at the fixed rate (default 10000)
  --no-peers         skip nginx and haproxy even when installed
  --no-compiled      skip the compiled-JS start-up/memory measurement
  --no-profile       skip the --cpu-prof run of the sidecar
  --no-micro         skip the forwarding-library micro-benchmark
  --render-only      rewrite latest.md and the SVGs from the latest.json in --out (no measuring)`;

type Settings = RunSettings & { microRequests: number; warmupMs: number };

const PRESETS: Record<RunSettings['mode'], Settings> = {
  full: { mode: 'full', rate: 500, requests: 10_000, rounds: 4, warmupRequests: 200, warmTargetMs: 3000, coldRequests: 1000, bodyBytes: 1024, connections: 50, saturateMs: 2500,
    saturateRounds: 2, handshakeConcurrency: 8, handshakeMs: 2500, readyRepeats: 5, microRequests: 2000, warmupMs: 1000 },
  quick: { mode: 'quick', rate: 500, requests: 2000, rounds: 2, warmupRequests: 100, warmTargetMs: 1500, coldRequests: 500, bodyBytes: 1024, connections: 50, saturateMs: 2000,
    saturateRounds: 1, handshakeConcurrency: 8, handshakeMs: 2000, readyRepeats: 3, microRequests: 1000, warmupMs: 700 },
  smoke: { mode: 'smoke', rate: 400, requests: 200, rounds: 2, warmupRequests: 20, bodyBytes: 1024, connections: 4, saturateMs: 400,
    saturateRounds: 1, handshakeConcurrency: 2, handshakeMs: 300, readyRepeats: 1, microRequests: 100, warmupMs: 100 },
};

interface PathDef {
  id: string; label: string; kind: PathKind;
  /** A command that must be installed, else the row is skipped with a note. */
  needs?: string;
  start(ctx: Context): Promise<RunningTarget>;
}

const PATHS: PathDef[] = [
  { id: 'direct', label: 'direct to app (plaintext HTTP)', kind: 'baseline', start: (ctx) => Promise.resolve(startDirect(ctx)) },
  { id: 'authproxy-tcp', label: 'authproxy inbound, app over TCP', kind: 'authproxy', start: (ctx) => startAuthproxy(ctx, { upstream: 'tcp' }) },
  { id: 'authproxy-unix', label: 'authproxy inbound, app over Unix socket', kind: 'authproxy', start: (ctx) => startAuthproxy(ctx, { upstream: 'unix' }) },
  // What Node 24 itself costs for the same mTLS termination: bench/forwarders/mtls-floor.ts.
  { id: 'node-floor', label: 'Node 24 floor: bare mTLS forwarder, no policy or audit', kind: 'floor', start: startNodeFloor },
  { id: 'nginx', label: 'nginx, same mTLS termination', kind: 'peer', needs: 'nginx', start: startNginx },
  { id: 'haproxy', label: 'haproxy, same mTLS termination', kind: 'peer', needs: 'haproxy', start: startHaproxy },
];

const progress = (msg: string): void => { process.stderr.write(`[bench] ${msg}\n`); };
const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

function emptyResult(id: string, label: string, kind: PathKind, skipped: string | null): PathResult {
  return { id, label, kind, skipped, readyMs: null, idle: null, peak: null, rate: null, saturate: null, saturateRounds: [],
    cpuUsPerRequest: null, appCpuUsPerRequest: null, handshake: null, cpuUsPerHandshake: null };
}

/**
 * `rounds` orders of `n` paths: round 0 as listed, each later one a permutation from a fixed-seed
 * generator (mulberry32), so no path always runs after the same neighbour, and two runs of the
 * benchmark with the same paths visit them in the same orders.
 */
export function roundOrders(n: number, rounds: number, seed = 0x5eed): number[][] {
  let a = seed >>> 0;
  const random = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const orders: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    const o = Array.from({ length: n }, (_, i) => i);
    if (r > 0) {
      for (let i = n - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [o[i], o[j]] = [o[j]!, o[i]!]; }
    }
    orders.push(o);
  }
  return orders;
}

/** Rounds of one path's fixed-rate runs merged into one result, percentiles over every sample. */
function mergeRates(parts: RateResult[]): RateResult {
  const cat = (k: 'latency' | 'service' | 'lag'): Float64Array => Float64Array.from(parts.flatMap((p) => p.samples?.[k] ?? []));
  const lag = summarize(cat('lag'));
  return {
    mode: 'rate', latency: summarize(cat('latency')), service: summarize(cat('service')),
    sendLag: { p50: lag.p50, p99: lag.p99, max: lag.max },
    errors: parts.reduce((n, p) => n + p.errors, 0),
    achievedRate: parts.reduce((n, p) => n + p.achievedRate, 0) / parts.length,
  };
}

class Bench {
  readonly s: Settings;
  readonly ctx: Context;
  readonly notes: string[] = [];
  constructor(s: Settings, ctx: Context) { this.s = s; this.ctx = ctx; }

  rate(target: LoadTarget, requests: number, warmup: number): Promise<RateResult> {
    return runLoadgen<RateResult>({ mode: 'rate', target, path: '/orders/123', bodyBytes: this.s.bodyBytes, rate: this.s.rate, requests, warmupRequests: warmup, raw: true }, this.ctx.cpu.loadCpu);
  }

  saturate(target: LoadTarget, durationMs = this.s.saturateMs): Promise<SaturateResult> {
    return runLoadgen<SaturateResult>({ mode: 'saturate', target, path: '/orders/123', bodyBytes: this.s.bodyBytes,
      connections: this.s.connections, warmupMs: this.s.warmupMs, durationMs }, this.ctx.cpu.loadCpu);
  }

  handshakes(target: LoadTarget): Promise<HandshakeResult> {
    return runLoadgen<HandshakeResult>({ mode: 'handshake', target, path: '/hs', bodyBytes: 0,
      concurrency: this.s.handshakeConcurrency, warmupMs: Math.min(500, this.s.warmupMs), durationMs: this.s.handshakeMs }, this.ctx.cpu.loadCpu);
  }

  /** Fixed-rate rounds, saturation rounds and handshakes over every running path, interleaved. */
  async measureAll(running: Array<{ r: PathResult; t: RunningTarget }>): Promise<void> {
    // Each round in its own order (shuffled with a fixed seed, so every run visits the paths
    // alike): rotated by one each round, a path always followed the same neighbour, and a path
    // run second in a probe read ~2 µs slower in-process whichever build it was (FINDINGS,
    // "Outbound with a cached token").
    const order = roundOrders(running.length, Math.max(this.s.rounds, this.s.saturateRounds));
    const inOrder = <T>(xs: T[], k: number): T[] => order[k]!.map((i) => xs[i]!);
    const rates = new Map<PathResult, RateResult[]>();
    const rateCpu = new Map<PathResult, { seconds: number; requests: number }>();
    const per = Math.ceil(this.s.requests / this.s.rounds);
    if (this.s.coldRequests) {
      // Reported apart, so the warm-up below hides nothing: what a just-started sidecar serves.
      progress('cold start: the first requests after start');
      for (const { r, t } of running) {
        try { r.cold = (await this.rate(t.load, this.s.coldRequests, 0)).latency; } catch (e) { this.notes.push(`${r.label}: cold run failed: ${firstLine(e)}`); }
      }
    }
    if (this.s.warmTargetMs) {
      // JIT warm-up: without it the first round measured V8 compiling the sidecar's hot path.
      progress('warming every path up');
      for (const { r, t } of running) {
        try { await this.saturate(t.load, this.s.warmTargetMs); } catch (e) { this.notes.push(`${r.label}: warm-up failed: ${firstLine(e)}`); }
      }
    }
    for (let round = 0; round < this.s.rounds; round++) {
      progress(`fixed rate, round ${round + 1}/${this.s.rounds}`);
      for (const { r, t } of inOrder(running, round)) {
        try {
          const c0 = t.cpuSeconds();
          const part = await this.rate(t.load, per, this.s.warmupRequests);
          const acc = rateCpu.get(r) ?? { seconds: 0, requests: 0 };
          acc.seconds += t.cpuSeconds() - c0; acc.requests += per + this.s.warmupRequests;
          rateCpu.set(r, acc);
          rates.set(r, [...(rates.get(r) ?? []), part]);
        } catch (e) { this.notes.push(`${r.label}: fixed-rate round ${round + 1} failed: ${firstLine(e)}`); }
      }
    }
    for (const [r, parts] of rates) {
      r.rate = mergeRates(parts);
      r.rateRoundP50s = parts.map((p) => p.latency.p50);
      const c = rateCpu.get(r);
      r.rateCpuUsPerRequest = c && c.requests ? (c.seconds * 1e6) / c.requests : null;
    }

    const sats = new Map<PathResult, { results: SaturateResult[]; cpu: number; appCpu: number; requests: number }>();
    for (let round = 0; round < this.s.saturateRounds; round++) {
      progress(`saturation, round ${round + 1}/${this.s.saturateRounds}`);
      for (const { r, t } of inOrder(running, round)) {
        try {
          const [c0, a0] = [t.cpuSeconds(), treeCpuSeconds(this.ctx.app.pid)];
          const s = await this.saturate(t.load);
          const [c1, a1] = [t.cpuSeconds(), treeCpuSeconds(this.ctx.app.pid)];
          const acc = sats.get(r) ?? { results: [], cpu: 0, appCpu: 0, requests: 0 };
          acc.results.push(s); acc.cpu += c1 - c0; acc.appCpu += a1 - a0; acc.requests += s.total;
          sats.set(r, acc);
        } catch (e) { this.notes.push(`${r.label}: saturation round ${round + 1} failed: ${firstLine(e)}`); }
      }
    }
    for (const [r, acc] of sats) {
      const best = acc.results.reduce((a, b) => (b.rps > a.rps ? b : a));
      const mean = acc.results.reduce((n, x) => n + x.rps, 0) / acc.results.length;
      r.saturate = { ...best, rps: mean, errors: acc.results.reduce((n, x) => n + x.errors, 0) };
      r.saturateRounds = acc.results.map((x) => x.rps);
      if (acc.requests > 0) {
        r.cpuUsPerRequest = (acc.cpu * 1e6) / acc.requests;
        r.appCpuUsPerRequest = r.id === 'direct' ? null : (acc.appCpu * 1e6) / acc.requests;
      }
    }

    progress('handshakes');
    for (const { r, t } of running) {
      // The outbound listener is plain HTTP from the app: no handshake of its own to count.
      if (r.kind === 'outbound') continue;
      try {
        const c0 = t.cpuSeconds();
        r.handshake = await this.handshakes(t.load);
        if (r.handshake.total > 0) r.cpuUsPerHandshake = ((t.cpuSeconds() - c0) * 1e6) / r.handshake.total;
      } catch (e) { this.notes.push(`${r.label}: handshakes failed: ${firstLine(e)}`); }
    }
    for (const { r, t } of running) r.peak = t.memory();
  }

  async readySeries(label: string, entry: string | undefined): Promise<ReadySeries> {
    const rs: ReadySeries = { label, readyMs: [], idleRssKb: [], peakUnderLoadKb: null, loadRps: null };
    for (let i = 0; i < this.s.readyRepeats; i++) {
      const t = await startAuthproxy(this.ctx, { upstream: 'tcp', label: `ready-${i}`, ...(entry ? { entry } : {}) });
      rs.readyMs.push(t.readyMs!);
      await sleep(300);
      rs.idleRssKb.push(t.memory()?.rssKb ?? NaN);
      await t.stop();
    }
    return rs;
  }

  async profile(out: string): Promise<BenchReport['profile']> {
    const dir = join(this.ctx.work, 'profile');
    await mkdir(dir);
    const t = await startAuthproxy(this.ctx, { upstream: 'tcp', label: 'profiled', env: { NODE_OPTIONS: `${PRODUCTION_NODE_OPTIONS} --cpu-prof --cpu-prof-dir=${dir}` } });
    let window: { fromUs: number; toUs: number };
    try {
      const fromUs = monotonicUs();
      await this.saturate(t.load, Math.max(this.s.saturateMs, 3000));
      window = { fromUs, toUs: monotonicUs() };
    } finally { await t.stop(); }
    const file = (await readdir(dir)).find((n) => n.endsWith('.cpuprofile'));
    if (!file) { this.notes.push('the profiled sidecar wrote no .cpuprofile'); return null; }
    await copyFile(join(dir, file), out);
    // Start-up and shutdown are left out: the profile shows the sidecar under load only.
    return { summary: await summarizeProfile(out, window), file: out };
  }

  async micro(label: string, script: string, note: string): Promise<MicroResult> {
    const proc: ChildProcess = spawnOn(this.ctx.cpu.targetCpu, process.execPath, [join(BENCH_DIR, 'forwarders', script), String(this.ctx.app.port)], { stdio: ['ignore', 'pipe', 'pipe'], env: forwarderEnv() });
    try {
      const { port } = await firstJsonLine<{ port: number }>(proc);
      const target: LoadTarget = { kind: 'http', host: '127.0.0.1', port };
      progress(`forwarder: ${label}`);
      const rate = await this.rate(target, this.s.microRequests, this.s.warmupRequests);
      const c0 = treeCpuSeconds(proc.pid!);
      const saturate = await this.saturate(target);
      const cpuUsPerRequest = ((treeCpuSeconds(proc.pid!) - c0) * 1e6) / Math.max(1, saturate.total);
      delete rate.samples;
      return { label, note, rate, saturate, cpuUsPerRequest, peak: treeMemory(proc.pid!), skipped: null };
    } catch (e) {
      return { label, note, rate: null, saturate: null, cpuUsPerRequest: null, peak: null, skipped: `failed: ${firstLine(e)}` };
    } finally {
      await stopProcess(proc);
    }
  }
}

function toolVersion(cmd: string, args: string[], re: RegExp): string | null {
  if (!hasCommand(cmd)) return null;
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return re.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'installed';
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: {
    quick: { type: 'boolean' }, smoke: { type: 'boolean' }, out: { type: 'string' }, rate: { type: 'string' }, requests: { type: 'string' },
    'no-peers': { type: 'boolean' }, 'no-compiled': { type: 'boolean' }, 'no-profile': { type: 'boolean' }, 'no-micro': { type: 'boolean' },
    'render-only': { type: 'boolean' }, help: { type: 'boolean' },
  } });
  if (values.help) { console.log(USAGE); return 0; }
  if (values['render-only']) {
    const outDir = resolve(values.out ?? join(BENCH_DIR, 'results'));
    await writeResults(outDir, JSON.parse(await readFile(join(outDir, 'latest.json'), 'utf8')) as BenchReport);
    return 0;
  }
  const settings: Settings = { ...PRESETS[values.smoke ? 'smoke' : values.quick ? 'quick' : 'full'] };
  if (values.rate) settings.rate = Number(values.rate);
  if (values.requests) settings.requests = Number(values.requests);
  if (!(settings.rate > 0) || !(settings.requests > 0)) { console.error('--rate and --requests must be positive numbers'); return 2; }
  const smoke = settings.mode === 'smoke';
  const outDir = resolve(values.out ?? join(BENCH_DIR, 'results'));

  const started = Date.now();
  const cpu = cpuPlan();
  const work = await mkdtemp(join(tmpdir(), 'authproxy-bench-work-'));
  progress(`work dir ${work}; ${cpu.note}`);
  const pki = await makeBenchPki();
  const appProc = spawnOn(cpu.targetCpu, process.execPath, [join(BENCH_DIR, 'app.ts'), join(work, 'app.sock')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const { microRequests: _m, warmupMs: _w, ...recorded } = settings;
  const report: BenchReport = {
    startedAt: new Date(started).toISOString(), durationS: 0, settings: recorded,
    env: {
      node: process.version, cpu: cpus()[0]?.model.trim() ?? '?', cores: availableParallelism(), pinning: cpu.note, loadAvg: loadavg(), loadAvgEnd: [],
      commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).stdout.trim() || '?',
      tools: {
        nginx: toolVersion('nginx', ['-v'], /nginx\/(\S+)/),
        haproxy: toolVersion('haproxy', ['-v'], /HA-?Proxy version (\S+)/i),
      },
    },
    paths: [], ready: [], micro: [], wire: [], profile: null, notes: [],
  };
  let failed = false;
  const running: Array<{ r: PathResult; t: RunningTarget }> = [];
  let issuer: ChildProcess | null = null;
  try {
    const app = await firstJsonLine<{ port: number; socketPath: string }>(appProc);
    const ctx: Context = { pki, app: { ...app, pid: appProc.pid! }, cpu, work };
    const bench = new Bench(settings, ctx);

    progress('starting every path');
    // The launcher's compile cache (bin/authproxy.js) keeps each module's stripped and compiled
    // form; the first start after a change to the sources fills it and carries the TypeScript
    // stripper for its whole life: +15–25 MB RSS, idle and peak (2026-11-24: idle 92 against 77 MB
    // in one run). A pod runs compiled JavaScript and a developer's second start is cached, so
    // each path run by Node is started once and stopped before the start that is measured.
    const start = async (r: PathResult, fn: () => Promise<RunningTarget>): Promise<void> => {
      report.paths.push(r);
      try {
        if (r.kind !== 'baseline' && r.kind !== 'peer') await (await fn()).stop();
        const t = await fn();
        r.readyMs = t.readyMs;
        running.push({ r, t });
      } catch (e) {
        r.skipped = `failed to start: ${firstLine(e)}`;
        progress(`${r.label}: ${r.skipped}`);
        if (r.kind !== 'peer') failed = true;
      }
    };
    for (const def of PATHS) {
      if (def.needs && (values['no-peers'] || !hasCommand(def.needs))) {
        report.paths.push(emptyResult(def.id, def.label, def.kind,
          values['no-peers'] ? 'skipped (--no-peers)' : `skipped: ${def.needs} not installed (apt-get install ${def.needs})`));
        continue;
      }
      await start(emptyResult(def.id, def.label, def.kind, null), () => def.start(ctx));
    }
    const pending = outboundPending();
    let issuerUrl: string | null = null;
    let issuerError = pending;
    if (pending === null) {
      try { const i = await startIssuerProcess(ctx); issuer = i.proc; issuerUrl = i.url; } catch (e) { issuerError = `failed to start the dev issuer: ${firstLine(e)}`; }
    }
    for (const o of OUTBOUND_PATHS) {
      if (issuerUrl === null) { report.paths.push(emptyResult(o.id, o.label, 'outbound', issuerError)); continue; }
      const url = issuerUrl;
      await start(emptyResult(o.id, o.label, 'outbound', null), () => startOutboundPath(ctx, o.id, url));
    }
    await sleep(500);
    for (const { r, t } of running) r.idle = t.memory();

    await bench.measureAll(running);
    for (const { t } of running.splice(0)) await t.stop();
    if (issuer) { await stopProcess(issuer); issuer = null; }

    progress('start-up series (from the repo: TypeScript via type stripping)');
    const fromRepo = await bench.readySeries('from the repo, `npm start` (TypeScript via type stripping)', undefined);
    const tcp = report.paths.find((p) => p.id === 'authproxy-tcp');
    fromRepo.peakUnderLoadKb = tcp?.peak?.hwmKb ?? null;
    fromRepo.loadRps = tcp?.saturate?.rps ?? null;
    report.ready.push(fromRepo);

    if (!smoke && !values['no-compiled']) {
      progress('compiling src/ to JavaScript in a temp dir');
      try {
        const entry = await compileSidecar(join(work, 'compiled'));
        const compiled = await bench.readySeries('as shipped in the image (tsc-compiled JavaScript, built as the Dockerfile does)', entry);
        const t = await startAuthproxy(ctx, { upstream: 'tcp', entry, label: 'compiled-load' });
        try {
          const sat = await bench.saturate(t.load, settings.saturateMs * settings.saturateRounds);
          compiled.peakUnderLoadKb = t.memory()?.hwmKb ?? null;
          compiled.loadRps = sat.rps;
        } finally { await t.stop(); }
        report.ready.push(compiled);
      } catch (e) { report.notes.push(`compiled build not measured: ${firstLine(e)}`); }
    }

    if (outboundPending() === null) {
      progress('header bytes on the sidecar → sidecar hop');
      try { report.wire = await measureWireBytes(ctx, smoke ? 20 : 500); } catch (e) { report.notes.push(`header bytes not measured: ${firstLine(e)}`); }
    }

    if (!smoke && !values['no-profile']) {
      progress('CPU profile of the sidecar under saturation');
      try {
        report.profile = await bench.profile(join(tmpdir(), `authproxy-bench-${started}.cpuprofile`));
      } catch (e) { report.notes.push(`profile not taken: ${firstLine(e)}`); }
    }

    if (!values['no-micro']) {
      report.micro.push(await bench.micro('undici via src/forward (UpstreamPool)', 'undici.ts', 'what the sidecar runs: dispatch + relay, deadlines, retries'));
      report.micro.push(await bench.micro('undici Pool.dispatch, minimal relay', 'undici-bare.ts', 'the library alone'));
      report.micro.push(await bench.micro('node:http.request + pipe', 'node-http.ts', 'http-proxy 1.18 is not installed; this is its forwarding core'));
    }
    report.notes.push(...bench.notes);
  } finally {
    for (const { t } of running) await t.stop();
    if (issuer) await stopProcess(issuer);
    await stopProcess(appProc);
    await pki.cleanup();
    await rm(work, { recursive: true, force: true });
  }

  report.durationS = (Date.now() - started) / 1000;
  report.env.loadAvgEnd = loadavg();
  await writeResults(outDir, report);
  progress(`done in ${report.durationS.toFixed(0)} s: ${join(outDir, 'latest.md')}`);
  return failed ? 1 : 0;
}

async function writeResults(outDir: string, report: BenchReport): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const measured = report.paths.filter((p) => p.rate);
  await writeFile(join(outDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(join(outDir, 'latest.md'), renderMarkdown(report));
  await writeFile(join(outDir, 'latency.svg'), latencyChart(measured.map((p) => ({ label: p.label, latency: p.rate!.latency })),
    `Latency at ${report.settings.rate} req/s, 1 KB POST (${report.settings.mode} run, ${report.startedAt.slice(0, 10)})`));
  const flame = report.profile?.summary.flame;
  if (flame) await writeFile(join(outDir, 'flame.svg'), flameGraph(flame, `authproxy inbound at saturation, --cpu-prof (${report.settings.mode} run, ${report.startedAt.slice(0, 10)}, commit ${report.env.commit})`));
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
