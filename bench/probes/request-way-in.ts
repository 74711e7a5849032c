// Reproduction: where the sidecar's added p50 goes. Times each request inside the proxy, from the
// server's 'request' event to the moment undici takes it for the app (request-way-in-timer.ts,
// preloaded), for the sidecar and for the Node floor, at the benchmark's fixed rate. The host's
// noise moves these in-process spans far less than the client's latency, so two checkouts can be
// compared on a busy machine (bench/FINDINGS.md, "The request's way in").
//
// Run: node_modules/.bin/node bench/probes/request-way-in.ts [--against CHECKOUT] [--rounds N]
// CHECKOUT is another work tree of this repo (git worktree add /tmp/base HEAD~1; then
// ln -s "$PWD/node_modules" /tmp/base/node_modules); its sidecar runs as a third row.
// Each round sends 5,000 requests (after 200 warm-up) at 500 req/s to each target in turn.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openProbe } from '../lib/probe.ts';
import { BENCH_DIR, REPO, runLoadgen } from '../lib/procs.ts';
import { startAuthproxy, startNodeFloor, type RunningTarget } from '../lib/targets.ts';
import { summarize } from '../lib/stats.ts';
import { PRODUCTION_NODE_OPTIONS } from '../../src/runtime/node-options.ts';
import type { RateResult } from '../loadgen.ts';

const { values } = parseArgs({ options: { against: { type: 'string' }, rounds: { type: 'string', default: '3' } } });
const rounds = Number(values.rounds);
const timer = join(BENCH_DIR, 'probes', 'request-way-in-timer.ts');
const probe = await openProbe('way-in');
const { ctx } = probe;
const { cpu, work } = ctx;

interface Row { name: string; target: RunningTarget; out: string; clientP50: number[] }
const timed = (name: string): { out: string; env: NodeJS.ProcessEnv } => {
  const out = join(work, `${name.replace(/\W+/g, '-')}.json`);
  return { out, env: { NODE_OPTIONS: `${PRODUCTION_NODE_OPTIONS} --import ${timer}`, REQUEST_WAY_IN_OUT: out } };
};
const rows: Row[] = [];
try {
  const floor = timed('floor');
  rows.push({ name: 'Node 24 floor', target: await startNodeFloor(ctx, floor.env), out: floor.out, clientP50: [] });
  const here = timed('sidecar');
  rows.push({ name: `sidecar (${REPO})`, target: await startAuthproxy(ctx, { upstream: 'tcp', label: 'sidecar', env: here.env }), out: here.out, clientP50: [] });
  if (values.against) {
    const other = timed('against');
    rows.push({ name: `sidecar (${values.against})`, out: other.out, clientP50: [],
      target: await startAuthproxy(ctx, { upstream: 'tcp', label: 'against', entry: join(values.against, 'bin/authproxy.js'), env: other.env }) });
  }
  for (let round = 0; round < rounds; round++) {
    for (const row of rows) {
      const r = await runLoadgen<RateResult>({ mode: 'rate', target: row.target.load, path: '/orders/123', bodyBytes: 1024, rate: 500, requests: 5000, warmupRequests: 200 }, cpu.loadCpu);
      row.clientP50.push(r.latency.p50);
      process.stderr.write(`round ${round + 1}/${rounds}: ${row.name} client p50 ${r.latency.p50.toFixed(3)} ms\n`);
    }
  }
  for (const row of rows) await row.target.stop();
  const us = (ms: number): string => (ms * 1000).toFixed(1);
  console.log('| proxy | handler p50 µs | p90 | request → dispatch p50 µs | p90 | client p50 ms by round |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const row of rows) {
    const t = JSON.parse(await readFile(row.out, 'utf8')) as { toDispatch: number[]; inHandler: number[] };
    // The first 1,000 requests are the warm-up and the JIT's: left out.
    const h = summarize(Float64Array.from(t.inHandler.slice(1000)));
    const d = summarize(Float64Array.from(t.toDispatch.slice(1000)));
    console.log(`| ${row.name} | ${us(h.p50)} | ${us(h.p90)} | ${us(d.p50)} | ${us(d.p90)} | ${row.clientP50.map((p) => p.toFixed(3)).join(', ')} |`);
  }
} finally {
  for (const row of rows) await row.target.stop().catch(() => {});
  await probe.close();
}
