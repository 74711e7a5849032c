// The load generator, run as its own process (pinned to the core the targets do not use) so its
// CPU never competes with the proxy under test. Takes one JSON LoadSpec as argv[2], prints one
// JSON LoadResult line on stdout.
//
// Three modes:
// - rate: open loop. Request i is due at t0 + i/rate whatever happened to earlier ones, and its
//   latency is measured from that due time, not from when it was actually sent, so a stall in
//   the target shows up in every request it delayed (no coordinated omission).
// - saturate: closed loop over N keep-alive connections; completions per second.
// - handshake: closed loop where every request opens a fresh connection (full TLS handshake with
//   a client certificate, no session resumption) and closes it.
import { request as httpRequest, Agent as HttpAgent, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { readFileSync } from 'node:fs';
import { summarize, type LatencySummary } from './lib/stats.ts';

export type LoadTarget =
  | { kind: 'http'; host: string; port: number; socketPath?: string; hostHeader?: string }
  | { kind: 'https'; host: string; port: number; ca: string; cert: string; key: string; servername: string };

interface Common {
  target: LoadTarget; path: string; bodyBytes: number;
  /** Sent with every request besides the generator's own (a token, to price carrying one). */
  extraHeaders?: Record<string, string>;
}
export interface RateSpec extends Common {
  mode: 'rate'; rate: number; requests: number; warmupRequests: number;
  /** Return every sample as well, so rounds run at different times can be merged exactly. */
  raw?: boolean;
}
export interface SaturateSpec extends Common { mode: 'saturate'; connections: number; warmupMs: number; durationMs: number }
export interface HandshakeSpec extends Common { mode: 'handshake'; concurrency: number; warmupMs: number; durationMs: number }
export type LoadSpec = RateSpec | SaturateSpec | HandshakeSpec;

export interface RateResult {
  mode: 'rate';
  /** From each request's scheduled send time to the last response byte (ms). */
  latency: LatencySummary;
  /** From the actual send to the last response byte (ms): what a closed-loop tool would report. */
  service: LatencySummary;
  /** How late the generator itself sent requests (ms); large values mean the harness, not the target, lagged. */
  sendLag: { p50: number; p99: number; max: number };
  errors: number;
  achievedRate: number;
  samples?: { latency: number[]; service: number[]; lag: number[] };
}
export interface SaturateResult {
  mode: 'saturate'; rps: number; completed: number; errors: number; latency: LatencySummary;
  /** Every request answered in the run, warm-up included (for CPU time per request). */
  total: number;
}
export interface HandshakeResult { mode: 'handshake'; perSecond: number; completed: number; errors: number; total: number }
export type LoadResult = RateResult | SaturateResult | HandshakeResult;

type Done = (ok: boolean) => void;

function makeSender(spec: LoadSpec, keepAlive: boolean, maxSockets: number): (done: Done) => void {
  const t = spec.target;
  const body = Buffer.alloc(spec.bodyBytes, 'x');
  const headers = {
    'content-type': 'application/octet-stream', 'content-length': String(body.length),
    ...(keepAlive ? {} : { connection: 'close' }),
    // The outbound listener routes by Host: the destination, not the sidecar's own address.
    ...(t.kind === 'http' && t.hostHeader ? { host: t.hostHeader } : {}),
    ...spec.extraHeaders,
  };
  let agent: HttpAgent | HttpsAgent | false = false;
  let tls = {};
  if (t.kind === 'https') {
    tls = { ca: readFileSync(t.ca), cert: readFileSync(t.cert), key: readFileSync(t.key), servername: t.servername };
    if (keepAlive) agent = new HttpsAgent({ keepAlive: true, maxSockets, scheduling: 'lifo', ...tls });
  } else if (keepAlive) {
    agent = new HttpAgent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
  }
  const base = {
    method: 'POST', path: spec.path, headers, agent,
    ...(t.kind === 'http' && t.socketPath ? { socketPath: t.socketPath } : { host: t.host, port: t.port }),
    // Without an agent each request carries the TLS options itself: a new handshake every time.
    ...(agent === false ? tls : {}),
  };
  const request = t.kind === 'https' ? httpsRequest : httpRequest;
  return (done) => {
    let finished = false;
    const finish = (ok: boolean): void => { if (!finished) { finished = true; done(ok); } };
    const req: ClientRequest = request(base, (res: IncomingMessage) => {
      res.on('data', noop);
      res.on('end', () => finish(res.statusCode === 200));
      res.on('error', () => finish(false));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', () => finish(false));
    req.end(body);
  };
}

function noop(): void { /* drain */ }

/** Milliseconds rounded to the microsecond: all the precision there is, a third of the JSON. */
function micros(a: Float64Array): number[] { return Array.from(a, (v) => Math.round(v * 1000) / 1000); }

function runRate(spec: RateSpec): Promise<RateResult> {
  const send = makeSender(spec, true, 256);
  const total = spec.warmupRequests + spec.requests;
  const interval = 1000 / spec.rate;
  const latency = new Float64Array(spec.requests);
  const service = new Float64Array(spec.requests);
  const lag = new Float64Array(spec.requests);
  let errors = 0; let completed = 0; let next = 0;
  const t0 = performance.now() + 5;
  let lastEnd = t0;
  return new Promise((resolve) => {
    const finishRun = (): void => {
      const measuredStart = t0 + spec.warmupRequests * interval;
      const l = summarize(lag);
      resolve({
        mode: 'rate', latency: summarize(latency), service: summarize(service),
        sendLag: { p50: l.p50, p99: l.p99, max: l.max }, errors,
        achievedRate: spec.requests / ((lastEnd - measuredStart) / 1000),
        ...(spec.raw ? { samples: { latency: micros(latency), service: micros(service), lag: micros(lag) } } : {}),
      });
    };
    const fire = (i: number, due: number): void => {
      const sent = performance.now();
      send((ok) => {
        const end = performance.now();
        const k = i - spec.warmupRequests;
        if (k >= 0) {
          latency[k] = end - due; service[k] = end - sent; lag[k] = sent - due;
          if (!ok) errors++;
          if (end > lastEnd) lastEnd = end;
        }
        if (++completed === total) finishRun();
      });
    };
    // Timers are only millisecond-accurate, which is the size of what is measured here: sleep
    // with setTimeout until just before the next due time, then spin on setImmediate (which still
    // lets responses be processed between turns). This core belongs to the generator.
    const pump = (): void => {
      const now = performance.now();
      while (next < total && t0 + next * interval <= now) { fire(next, t0 + next * interval); next++; }
      if (next >= total) return;
      const wait = t0 + next * interval - performance.now();
      if (wait > 2) setTimeout(pump, wait - 1.5); else setImmediate(pump);
    };
    pump();
  });
}

function runClosedLoop(spec: SaturateSpec | HandshakeSpec): Promise<{ completed: number; total: number; errors: number; seconds: number; latency: number[] }> {
  const keepAlive = spec.mode === 'saturate';
  const loops = spec.mode === 'saturate' ? spec.connections : spec.concurrency;
  const send = makeSender(spec, keepAlive, loops);
  const start = performance.now();
  const measureFrom = start + spec.warmupMs;
  const measureTo = measureFrom + spec.durationMs;
  let completed = 0; let total = 0; let errors = 0; let running = loops;
  const latency: number[] = [];
  return new Promise((resolve) => {
    const loop = (): void => {
      const sent = performance.now();
      send((ok) => {
        const end = performance.now();
        if (ok) total++;
        if (end >= measureFrom && end < measureTo) {
          if (ok) { completed++; latency.push(end - sent); } else errors++;
        }
        if (end < measureTo) {
          // A refused connection fails instantly; do not spin on it.
          if (ok) loop(); else setTimeout(loop, 5);
        } else if (--running === 0) {
          resolve({ completed, total, errors, seconds: spec.durationMs / 1000, latency });
        }
      });
    };
    for (let i = 0; i < loops; i++) loop();
  });
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  if (spec.mode === 'rate') return runRate(spec);
  const r = await runClosedLoop(spec);
  if (spec.mode === 'saturate') {
    return { mode: 'saturate', rps: r.completed / r.seconds, completed: r.completed, total: r.total, errors: r.errors, latency: summarize(Float64Array.from(r.latency)) };
  }
  return { mode: 'handshake', perSecond: r.completed / r.seconds, completed: r.completed, errors: r.errors, total: r.total };
}

if (import.meta.main) {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  const result = await runLoad(spec);
  // Exit only once the (large) line is flushed: stdout to a pipe is asynchronous. Exiting at all
  // is needed because keep-alive sockets would hold the process open.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}
