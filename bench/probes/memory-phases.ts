// Reproduction: what the sidecar's and the Node floor's memory is made of, phase by phase
// (bench/FINDINGS.md, "What fills the first second, and the leanest Node forwarder"). Each round
// starts every target afresh, reads its RSS idle, after 3,000 requests at 500 req/s and after 4 s
// of saturation (50 connections), with the peaks of V8's heap and of its own malloc
// (memory-phases-sampler.ts, preloaded) and the CPU per request at saturation.
//
// Run: node_modules/.bin/node bench/probes/memory-phases.ts [--rounds N] [--v8-flags="FLAGS"]
// --v8-flags adds a third row, the floor started with those flags on its command line (V8 takes
// most of them only there: NODE_OPTIONS refuses them), to try one against the floor as it is.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openProbe } from '../lib/probe.ts';
import { BENCH_DIR, runLoadgen } from '../lib/procs.ts';
import { COMPILE_CACHE_DIR, startAuthproxy, startNodeFloor, type RunningTarget } from '../lib/targets.ts';
import { PRODUCTION_NODE_OPTIONS } from '../../src/runtime/node-options.ts';
import type { RateResult, SaturateResult } from '../loadgen.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' }, 'v8-flags': { type: 'string' } } });
const rounds = Number(values.rounds);
const sampler = join(BENCH_DIR, 'probes', 'memory-phases-sampler.ts');
const probe = await openProbe('memory-phases');
const { ctx } = probe;

interface Row { name: string; start: (env: NodeJS.ProcessEnv) => Promise<RunningTarget> }
const rowsToRun: Row[] = [
  { name: 'Node 24 floor', start: (env) => startNodeFloor(ctx, env) },
  { name: 'sidecar', start: (env) => startAuthproxy(ctx, { upstream: 'tcp', label: 'sidecar', env }) },
];
const flags = values['v8-flags'];
if (flags) rowsToRun.push({ name: `floor ${flags}`, start: (env) => startNodeFloor(ctx, env, flags.split(' ')) });

const mb = (kb: number): number => Math.round(kb / 102.4) / 10;
// The sampler is TypeScript: with the compile cache on before it loads (the launcher turns it on
// only after preloads), and a first start to fill it, no process loads the stripper.
const env = (out: string): NodeJS.ProcessEnv => ({ NODE_OPTIONS: `${PRODUCTION_NODE_OPTIONS} --import ${sampler}`, NODE_COMPILE_CACHE: COMPILE_CACHE_DIR, MEMORY_PHASES_OUT: out });
try {
  for (const row of rowsToRun) await (await row.start(env(join(ctx.work, 'first-start.json')))).stop();
  for (let round = 0; round < rounds; round++) {
    for (const row of rowsToRun) {
      const out = join(ctx.work, `memory-${round}-${row.name.replace(/\W+/g, '-')}.json`);
      const target = await row.start(env(out));
      try {
        const idle = target.memory()!;
        await runLoadgen<RateResult>({ mode: 'rate', target: target.load, path: '/orders/123', bodyBytes: 1024, rate: 500, requests: 3000, warmupRequests: 0 }, ctx.cpu.loadCpu);
        const afterRate = target.memory()!;
        const cpu0 = target.cpuSeconds();
        const sat = await runLoadgen<SaturateResult>({ mode: 'saturate', target: target.load, path: '/orders/123', bodyBytes: 1024, connections: 50, warmupMs: 0, durationMs: 4000 }, ctx.cpu.loadCpu);
        const cpuUs = ((target.cpuSeconds() - cpu0) * 1e6) / sat.total;
        const end = target.memory()!;
        const v8 = JSON.parse(readFileSync(out, 'utf8')) as Record<string, number>;
        console.log(JSON.stringify({
          round: round + 1, row: row.name, idleMb: mb(idle.rssKb), afterRateMb: mb(afterRate.hwmKb), peakMb: mb(end.hwmKb),
          privateAfterRateMb: mb(afterRate.anonKb), privateEndMb: mb(end.anonKb),
          v8MallocPeakMb: mb(v8.v8MallocPeakKb!), heapPeakMb: mb(v8.heapPhysicalKb!), oldSpacePeakMb: mb(v8.oldSpaceKb!),
          saturationReqPerS: Math.round(sat.rps), saturationCpuUsPerReq: Math.round(cpuUs), errors: sat.errors,
        }));
      } finally { await target.stop(); }
    }
  }
} finally {
  await probe.close();
}
