// The measured paths. Each target starts its process(es) on the targets' core and says where
// the load generator should send requests; memory is read from /proc while it runs.
import { PRODUCTION_ENV, PRODUCTION_NODE_OPTIONS } from '../../src/runtime/node-options.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import type { LoadTarget } from '../loadgen.ts';
import type { BenchPki, Pair } from './pki.ts';
import { spawnOn, freePort, freePorts, waitFor200, waitForPort, treeMemory, treeCpuSeconds, stopProcess, firstJsonLine, REPO, BENCH_DIR, type CpuPlan, type MemoryReading } from './procs.ts';
import { nginxConfig } from './nginx.ts';
import { haproxyConfig } from './haproxy.ts';

export interface AppInfo { port: number; socketPath: string; pid: number }

export interface Context {
  pki: BenchPki;
  app: AppInfo;
  cpu: CpuPlan;
  /** Scratch dir for configs, logs and sockets of this run. */
  work: string;
}

export interface RunningTarget {
  /** Where keep-alive and handshake load is sent. */
  load: LoadTarget;
  /** Memory of the proxy's process tree (the app's for the direct path). */
  memory(): MemoryReading | null;
  /** CPU seconds used so far by the same processes. */
  cpuSeconds(): number;
  /** spawn → ready, for targets that report readiness (authproxy: /readyz 200). */
  readyMs: number | null;
  stop(): Promise<void>;
}

export function tlsLoad(ctx: Context, port: number): LoadTarget {
  return { kind: 'https', host: '127.0.0.1', port, ca: ctx.pki.ca, cert: ctx.pki.client.cert, key: ctx.pki.client.key, servername: 'localhost' };
}

export function startDirect(ctx: Context): RunningTarget {
  return {
    load: { kind: 'http', host: '127.0.0.1', port: ctx.app.port },
    memory: () => treeMemory(ctx.app.pid),
    cpuSeconds: () => treeCpuSeconds(ctx.app.pid),
    readyMs: null,
    stop: async () => { /* the app outlives every path */ },
  };
}

export interface AuthproxyOptions {
  /** The benchmark app over TCP or its Unix socket, or another app's --upstream (a probe's h2c app). */
  upstream: 'tcp' | 'unix' | { url: string };
  /** The launcher to run: bin/authproxy.js (type stripping) or a compiled build's. */
  entry?: string;
  /** Extra environment, e.g. NODE_OPTIONS=--cpu-prof. */
  env?: NodeJS.ProcessEnv;
  label?: string;
  /** Workload certificate (default: the server pair); the sidecar → sidecar client side uses its own. */
  pair?: Pair;
  /** Policy directory (default: the inbound benchmark policy). */
  policies?: string;
  /** Further run flags (issuer, client id). */
  extraArgs?: string[];
}

export interface AuthproxyTarget extends RunningTarget { proc: ChildProcess; inboundPort: number; outboundPort: number; pid: number }

export async function startAuthproxy(ctx: Context, opts: AuthproxyOptions): Promise<AuthproxyTarget> {
  const [port, adminPort, outboundPort] = await freePorts(3) as [number, number, number];
  const pair = opts.pair ?? ctx.pki.server;
  const tag = opts.label ?? `authproxy-${typeof opts.upstream === 'string' ? opts.upstream : 'url'}`;
  const upstream = opts.upstream === 'tcp' ? `http://127.0.0.1:${ctx.app.port}` : opts.upstream === 'unix' ? `unix:${ctx.app.socketPath}` : opts.upstream.url;
  const args = [opts.entry ?? join(REPO, 'bin/authproxy.js'),
    '--upstream', upstream, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`,
    '--outbound-listen', `127.0.0.1:${outboundPort}`,
    '--cert', pair.cert, '--key', pair.key, '--ca', ctx.pki.ca,
    '--policies', opts.policies ?? ctx.pki.policies, '--audit-log', join(ctx.work, `${tag}-audit.log`), ...(opts.extraArgs ?? [])];
  // The operational log goes to a file: a pipe the harness reads would put the harness on the path.
  const logFd = openSync(join(ctx.work, `${tag}.log`), 'a');
  const t0 = performance.now();
  // The sidecar runs with the Node options and environment production uses (the image's ENV).
  const proc = spawnOn(ctx.cpu.targetCpu, process.execPath, args, {
    cwd: REPO, stdio: ['ignore', logFd, logFd], env: { ...process.env, ...PRODUCTION_ENV, NODE_OPTIONS: PRODUCTION_NODE_OPTIONS, ...opts.env },
  });
  closeSync(logFd);
  let readyMs: number;
  try {
    readyMs = await waitFor200(`http://127.0.0.1:${adminPort}/readyz`, 30_000, t0, proc);
  } catch (e) {
    await stopProcess(proc);
    throw new Error(`${tag} did not become ready (see ${join(ctx.work, `${tag}.log`)}): ${(e as Error).message}`, { cause: e });
  }
  const pid = proc.pid!;
  return { proc, pid, inboundPort: port, outboundPort, load: tlsLoad(ctx, port), memory: () => treeMemory(pid), cpuSeconds: () => treeCpuSeconds(pid), readyMs, stop: () => stopProcess(proc) };
}

async function startConfigured(ctx: Context, name: string, cmd: string, args: (conf: string) => string[], conf: string, port: number): Promise<RunningTarget> {
  const dir = join(ctx.work, name);
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const confFile = join(dir, `${name}.conf`);
  await writeFile(confFile, conf);
  const logFd = openSync(join(dir, 'stdout.log'), 'a');
  const proc = spawnOn(ctx.cpu.targetCpu, cmd, args(confFile), { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  try {
    await waitForPort('127.0.0.1', port, 10_000);
  } catch (e) {
    await stopProcess(proc);
    throw new Error(`${name} did not start (see ${dir}): ${(e as Error).message}`, { cause: e });
  }
  const pid = proc.pid!;
  return { load: tlsLoad(ctx, port), memory: () => treeMemory(pid), cpuSeconds: () => treeCpuSeconds(pid), readyMs: null, stop: () => stopProcess(proc) };
}

export async function startNginx(ctx: Context): Promise<RunningTarget> {
  const port = await freePort();
  const dir = join(ctx.work, 'nginx');
  // -e: nginx would otherwise try the distribution's error log before reading the config.
  return startConfigured(ctx, 'nginx', 'nginx', (conf) => ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')],
    nginxConfig({ dir, port, appPort: ctx.app.port, pki: ctx.pki }), port);
}

export async function startHaproxy(ctx: Context): Promise<RunningTarget> {
  const port = await freePort();
  return startConfigured(ctx, 'haproxy', 'haproxy', (conf) => ['-f', conf, '-db'],
    haproxyConfig({ port, appPort: ctx.app.port, pki: ctx.pki }), port);
}

/** The launcher's compile cache (bin/authproxy.js), for a preload that must not load the TypeScript stripper either. */
export const COMPILE_CACHE_DIR = join(REPO, 'node_modules/.cache/authproxy-compile');

/**
 * The environment for the bench's own Node forwarders (the floor, the micro-benchmark's): the
 * sidecar's Node options and environment, and the launcher's compile cache, as the sidecar has
 * it; without it every start loads the TypeScript stripper (~25 MB of RSS the sidecar does not carry).
 */
export function forwarderEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...PRODUCTION_ENV, NODE_OPTIONS: PRODUCTION_NODE_OPTIONS, NODE_COMPILE_CACHE: COMPILE_CACHE_DIR, ...env };
}

/**
 * The floor row: bench/forwarders/mtls-floor.ts, with the sidecar's Node options and environment;
 * `nodeArgs` go on its command line (a probe's V8 flag to try).
 */
export async function startNodeFloor(ctx: Context, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<RunningTarget> {
  const logFd = openSync(join(ctx.work, 'node-floor.log'), 'a');
  const proc = spawnOn(ctx.cpu.targetCpu, process.execPath,
    [...nodeArgs, join(BENCH_DIR, 'forwarders', 'mtls-floor.ts'), String(ctx.app.port), ctx.pki.server.cert, ctx.pki.server.key, ctx.pki.ca],
    { stdio: ['ignore', 'pipe', logFd], env: forwarderEnv(env) });
  closeSync(logFd);
  let port: number;
  try {
    ({ port } = await firstJsonLine<{ port: number }>(proc));
  } catch (e) {
    await stopProcess(proc);
    throw new Error(`the Node floor forwarder did not start (see ${join(ctx.work, 'node-floor.log')}): ${(e as Error).message}`, { cause: e });
  }
  const pid = proc.pid!;
  return { load: tlsLoad(ctx, port), memory: () => treeMemory(pid), cpuSeconds: () => treeCpuSeconds(pid), readyMs: null, stop: () => stopProcess(proc) };
}
