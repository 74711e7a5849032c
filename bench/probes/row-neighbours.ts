// Reproduction: does a row's latency depend on which row ran just before it? The benchmark visits
// its paths in rounds, rotated by one each round, so a path nearly always follows the same
// neighbour (outbound with a token follows outbound without one; that one follows haproxy). A
// Node process that has just been loaded keeps working for a while after its load stops (the
// garbage collector finishing and shrinking the heap, idle sockets closing) on the core the next
// row's proxy shares. This probe measures the two outbound rows in a chosen order and reports,
// per row and round, the p50/p90, its own CPU per request and the CPU every *other* target process
// spent meanwhile (bench/FINDINGS.md, "Outbound with a cached token": the others spent 0-20 ms a
// row, and the rows were level).
//
// Run: node_modules/.bin/node bench/probes/row-neighbours.ts [--rounds N] [--order plain,token|token,plain] [--gap-ms MS] [--cold N]
// --gap-ms waits that long before each round's first row only, as a quiet neighbour (haproxy before
// outbound without a token, in the benchmark's order) would: the first row then follows a settled
// process and the second follows one just loaded. Swapping --order tells position from row.
import { parseArgs } from 'node:util';
import { openProbe } from '../lib/probe.ts';
import { runLoadgen, sleep, stopProcess, treeCpuSeconds } from '../lib/procs.ts';
import { startIssuerProcess, startOutboundPath } from '../lib/outbound.ts';
import { median } from '../lib/stats.ts';
import type { RunningTarget } from '../lib/targets.ts';
import type { RateResult, SaturateResult } from '../loadgen.ts';

const { values } = parseArgs({ options: {
  rounds: { type: 'string', default: '6' }, order: { type: 'string', default: 'plain,token' }, 'gap-ms': { type: 'string', default: '0' },
  cold: { type: 'string', default: '1000' },
} });
const rounds = Number(values.rounds);
const ROUND_REQUESTS = 2500;
const ROUND_WARMUP = 200;
const gapMs = Number(values['gap-ms']);
const ids: Record<string, string> = { plain: 'outbound-plain', token: 'outbound-cached-token' };
const order = values.order.split(',').map((n) => { const id = ids[n]; if (!id) throw new Error(`unknown row ${n}`); return { name: n, id }; });

const probe = await openProbe('neighbours');
const { ctx } = probe;
const { cpu } = ctx;
const issuer = await startIssuerProcess(ctx);
const rows: Array<{ name: string; t: RunningTarget; p50: number[]; p90: number[]; othersCpuMs: number[]; cpuUs: number[] }> = [];
try {
  for (const o of order) {
    // A first start fills the launcher's compile cache after a change to the sources (bench/run.ts says why).
    await (await startOutboundPath(ctx, o.id, issuer.url)).stop();
    rows.push({ name: o.name, t: await startOutboundPath(ctx, o.id, issuer.url), p50: [], p90: [], othersCpuMs: [], cpuUs: [] });
  }
  // As the benchmark does: first requests at the fixed rate straight after start (the token row
  // fetches its token during these), then closed-loop warm-up.
  for (const r of rows) {
    if (Number(values.cold)) await runLoadgen<RateResult>({ mode: 'rate', target: r.t.load, path: '/orders/123', bodyBytes: 1024, rate: 500, requests: Number(values.cold), warmupRequests: 0 }, cpu.loadCpu);
    await runLoadgen<SaturateResult>({ mode: 'saturate', target: r.t.load, path: '/orders/123', bodyBytes: 1024, connections: 50, warmupMs: 0, durationMs: 3000 }, cpu.loadCpu);
  }
  const othersCpu = (self: RunningTarget): number =>
    rows.filter((r) => r.t !== self).reduce((n, r) => n + r.t.cpuSeconds(), 0) + treeCpuSeconds(issuer.proc.pid!);
  for (let round = 0; round < rounds; round++) {
    if (gapMs) await sleep(gapMs);
    for (const r of rows) {
      const c0 = othersCpu(r.t);
      const own0 = r.t.cpuSeconds();
      const res = await runLoadgen<RateResult>({ mode: 'rate', target: r.t.load, path: '/orders/123', bodyBytes: 1024, rate: 500, requests: ROUND_REQUESTS, warmupRequests: ROUND_WARMUP }, cpu.loadCpu);
      r.othersCpuMs.push(Math.round((othersCpu(r.t) - c0) * 1000));
      r.cpuUs.push(Math.round(((r.t.cpuSeconds() - own0) * 1e6) / (ROUND_REQUESTS + ROUND_WARMUP)));
      r.p50.push(Math.round(res.latency.p50 * 1000)); r.p90.push(Math.round(res.latency.p90 * 1000));
      console.log(JSON.stringify({ round: round + 1, row: r.name, p50Us: r.p50.at(-1), p90Us: r.p90.at(-1), othersCpuMs: r.othersCpuMs.at(-1), cpuUsPerReq: r.cpuUs.at(-1) }));
    }
  }
  for (const r of rows) {
    console.log(JSON.stringify({ row: r.name, medianP50Us: median(r.p50), medianP90Us: median(r.p90), medianOthersCpuMs: median(r.othersCpuMs), medianCpuUsPerReq: median(r.cpuUs) }));
  }
} finally {
  for (const r of rows) await r.t.stop();
  await stopProcess(issuer.proc);
  await probe.close();
}
