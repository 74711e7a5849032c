// Child processes for the benchmark: CPU pinning, ports, readiness, memory, the load generator.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadSpec } from '../loadgen.ts';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Targets (app + proxy) share one core, the load generator gets the other, as the issue asks.
 * Without taskset or a second core nothing is pinned and the report says so.
 */
export interface CpuPlan { pinned: boolean; targetCpu: string | null; loadCpu: string | null; note: string }

export function cpuPlan(): CpuPlan {
  const cores = availableParallelism();
  const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  if (cores >= 2 && hasTaskset) {
    return { pinned: true, targetCpu: '0', loadCpu: '1', note: `targets (app + proxy) pinned to CPU 0, load generator to CPU 1 (${cores} CPUs)` };
  }
  return { pinned: false, targetCpu: null, loadCpu: null, note: `not pinned (${cores} CPU(s), taskset ${hasTaskset ? 'present' : 'absent'})` };
}

export function spawnOn(cpu: string | null, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  // taskset execs the command, so the child's pid is the target's own pid (for /proc readings).
  return cpu === null ? spawn(cmd, args, opts) : spawn('taskset', ['-c', cpu, cmd, ...args], opts);
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** n distinct free ports (all held open until every one is chosen, so none repeats). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** Resolves with the elapsed ms once `url` answers 200; polls every 2 ms so the figure is tight. */
export async function waitFor200(url: string, timeoutMs: number, since = performance.now(), proc?: ChildProcess): Promise<number> {
  const deadline = since + timeoutMs;
  for (;;) {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new Error(`process exited (${proc.exitCode ?? proc.signalCode}) before ${url} was ready`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(500) });
      await r.arrayBuffer();
      if (r.status === 200) return performance.now() - since;
    } catch { /* not listening yet */ }
    if (performance.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms`);
    await sleep(2);
  }
}

/** Waits until something accepts TCP connections on host:port (for proxies without a health URL). */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`${host}:${port} not accepting within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/**
 * `anonKb` (RssAnon) is the private part of the resident set: RSS minus file-backed pages, such as
 * the node binary's code, which every process mapping the same file shares.
 */
export interface MemoryReading { rssKb: number; hwmKb: number; anonKb: number }

/** VmRSS, VmHWM (peak resident set) and RssAnon of one process, from /proc. */
export function memoryOf(pid: number): MemoryReading | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), anonKb: kb('RssAnon') };
  } catch { return null; }
}

/** The process and all its descendants (nginx's master and worker), for summed memory. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim();
      if (children) out.push(...children.split(/\s+/).map(Number));
    } catch { /* gone */ }
  }
  return out;
}

export function treeMemory(pid: number): MemoryReading | null {
  let rssKb = 0; let hwmKb = 0; let anonKb = 0; let any = false;
  for (const p of processTree(pid)) {
    const m = memoryOf(p);
    if (m) { any = true; rssKb += m.rssKb; hwmKb += m.hwmKb; anonKb += m.anonKb; }
  }
  return any ? { rssKb, hwmKb, anonKb } : null;
}

const CLK_TCK = 100; // Linux USER_HZ; /proc/PID/stat times are in these ticks

/** CPU seconds (user + system, all threads) used so far by the process tree. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return ticks / CLK_TCK;
}

export async function stopProcess(proc: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** First stdout line of a child, parsed as JSON (the app's and the forwarders' readiness report). */
export function firstJsonLine<T>(proc: ChildProcess, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = ''; let err = '';
    const timer = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d; });
    proc.stdout!.setEncoding('utf8').on('data', function onData(d: string) {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      proc.stdout!.resume();
      try { resolve(JSON.parse(buf.slice(0, nl)) as T); } catch (e) { reject(e as Error); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code} before reporting; stderr: ${err}`)); });
  });
}

export async function runLoadgen<R extends LoadResult>(spec: LoadSpec, cpu: string | null): Promise<R> {
  const proc = spawnOn(cpu, process.execPath, [`${BENCH_DIR}loadgen.ts`, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = ''; let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const [code] = await once(proc, 'exit') as [number | null];
  if (code !== 0) throw new Error(`load generator exited ${code}: ${err.trim()}`);
  return JSON.parse(out.trim().split('\n').at(-1) ?? '') as R;
}
