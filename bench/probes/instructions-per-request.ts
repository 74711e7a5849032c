// Reproduction: instructions per inbound request, counted by valgrind's callgrind, for one or
// more checkouts of the sidecar and the Node floor. Instruction counts do not move with other
// work on the machine the way CPU time does (the saturation rounds' CPU µs per request spread
// ±20% on a busy host), so smaller changes in the sidecar's own work can be told from noise
// (bench/FINDINGS.md, "Instructions per request"). They count work, not cache misses: latency
// still needs the rounds.
//
// Run: node_modules/.bin/node bench/probes/instructions-per-request.ts [floor] CHECKOUT... (needs valgrind)
// CHECKOUT is a work tree of this repo (`.`, or git worktree add /tmp/base HEAD~1; then
// ln -s "$PWD/node_modules" /tmp/base/node_modules). Each sidecar runs under callgrind (about 50
// times slower), takes 40 s of closed-loop load over 10 keep-alive connections to warm up, then
// its counters are zeroed, 40 s more are counted, and the count is divided by the requests
// answered, for the main thread and for all threads. ~2 minutes a checkout.
//
// What it can tell apart: large differences (the sidecar against the floor: +40–50%), not a few
// percent. Runs of one build spread 3–14% in all threads (V8's background compiles and major GCs
// land in the counted window or not), and the main thread's count falls as throughput rises (a
// run that answered more requests handled more of them per event-loop turn): 331,000–354,000
// for builds that differ in two small functions, ordered by requests answered rather than by
// build. Counting at a fixed rate instead spread 533,000–649,000 (idle-time work).
import { readFile, readdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { openProbe } from '../lib/probe.ts';
import { BENCH_DIR, firstJsonLine, freePorts, hasCommand, runLoadgen, spawnOn, stopProcess, waitFor200 } from '../lib/procs.ts';
import { forwarderEnv, tlsLoad } from '../lib/targets.ts';
import { PRODUCTION_ENV, PRODUCTION_NODE_OPTIONS } from '../../src/runtime/node-options.ts';
import type { SaturateResult } from '../loadgen.ts';

// `floor` stands for the Node floor (bench/forwarders/mtls-floor.ts): the same job without policy,
// audit, deadlines or retries, so the difference is what the sidecar's own work costs.
const targets = process.argv.slice(2).map((c) => (c === 'floor' ? c : resolve(c)));
if (targets.length === 0 || !hasCommand('valgrind')) {
  process.stderr.write('usage: instructions-per-request.ts floor|CHECKOUT... (valgrind must be installed)\n');
  process.exit(2);
}
const PHASE_MS = 40_000;
const probe = await openProbe('instructions');
const { ctx } = probe;
const { cpu, work, pki, app } = ctx;
const rows: string[] = [];
try {
  for (const [i, target] of targets.entries()) {
    const [sidecarPort, adminPort, outboundPort] = await freePorts(3) as [number, number, number];
    const callgrind = ['--tool=callgrind', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${join(work, `callgrind-${i}`)}.%p`, process.execPath];
    const proc = target === 'floor'
      ? spawnOn(cpu.targetCpu, 'valgrind', [...callgrind, join(BENCH_DIR, 'forwarders', 'mtls-floor.ts'), String(app.port), pki.server.cert, pki.server.key, pki.ca],
        { stdio: ['ignore', 'pipe', 'ignore'], env: forwarderEnv() })
      : spawnOn(cpu.targetCpu, 'valgrind', [...callgrind, join(target, 'bin/authproxy.js'),
        '--upstream', `http://127.0.0.1:${app.port}`, '--listen', `127.0.0.1:${sidecarPort}`, '--admin-listen', `127.0.0.1:${adminPort}`,
        '--outbound-listen', `127.0.0.1:${outboundPort}`, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
        '--policies', pki.policies, '--audit-log', join(work, `audit-${i}.log`),
      ], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, ...PRODUCTION_ENV, NODE_OPTIONS: PRODUCTION_NODE_OPTIONS } });
    try {
      let port = sidecarPort;
      if (target === 'floor') ({ port } = await firstJsonLine<{ port: number }>(proc, 300_000));
      else await waitFor200(`http://127.0.0.1:${adminPort}/readyz`, 300_000, performance.now(), proc);
      const load = (): Promise<SaturateResult> => runLoadgen<SaturateResult>({ mode: 'saturate', target: tlsLoad(ctx, port), path: '/orders/123', bodyBytes: 1024, connections: 10, warmupMs: 0, durationMs: PHASE_MS }, cpu.loadCpu);
      await load();
      execFileSync('callgrind_control', ['--zero', String(proc.pid)], { stdio: 'ignore' });
      const counted = await load();
      execFileSync('callgrind_control', ['--dump', String(proc.pid)], { stdio: 'ignore' });
      // The dump on request is part 1, one file per thread (`PREFIX.PID.1-NN`, the main thread
      // first); the dump at exit covers the shutdown.
      const threads = (await readdir(work)).filter((f) => f.startsWith(`callgrind-${i}.`) && /\.1-\d+$/.test(f)).sort();
      const counts = await Promise.all(threads.map(async (f) => Number(/^summary: (\d+)/m.exec(await readFile(join(work, f), 'utf8'))?.[1] ?? 0)));
      if (counts.length === 0) throw new Error(`no callgrind dump for ${target}`);
      const per = (n: number): string => Math.round(n / counted.total).toLocaleString('en-US');
      rows.push(`| ${target === 'floor' ? 'Node 24 floor' : target} | ${counted.total.toLocaleString('en-US')} | ${per(counts[0]!)} | ${per(counts.reduce((a, b) => a + b, 0))} |`);
    } finally {
      await stopProcess(proc, 120_000);
    }
  }
  console.log('| proxy | requests counted | main thread, instructions per request | all threads |\n| --- | ---: | ---: | ---: |');
  console.log(rows.join('\n'));
} finally {
  await probe.close();
}
