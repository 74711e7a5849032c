// Reproduction: what each sidecar of the sidecar → sidecar path costs a request at saturation. The
// benchmark's row gives the pair's CPU together; this gives sidecar A (outbound: the app's HTTP/1.1
// in, a token, HTTP/2 over mTLS out) and sidecar B (inbound: HTTP/2 in, policy, HTTP/1.1 to the app)
// apart, over several rounds, so a change to one side can be judged (bench/FINDINGS.md, "The
// sidecar → sidecar hop").
//
// Run: node_modules/.bin/node bench/probes/sidecar-pair-cost.ts [--rounds N] [--perf FILE] [--cpu-prof DIR] [--node-options=OPTS]
// After 6 s of warm-up, each round: 6 s of 50 keep-alive connections, closed loop, measured.
// --perf records sidecar A with `perf record -e cpu-clock -g` during the first measured round, which
// reads slower for it (linux-perf; read with perf report -i FILE); --cpu-prof writes both sidecars' V8 profiles;
// --node-options adds to the production Node options of both (a runtime flag or an --import to try).
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { openProbe } from '../lib/probe.ts';
import { processTree, runLoadgen, stopProcess } from '../lib/procs.ts';
import { startAuthproxy } from '../lib/targets.ts';
import { CLIENT_ID, policyDir, route, startIssuerProcess } from '../lib/outbound.ts';
import { PRODUCTION_NODE_OPTIONS } from '../../src/runtime/node-options.ts';
import type { LoadTarget, SaturateResult } from '../loadgen.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, perf: { type: 'string' }, 'cpu-prof': { type: 'string' }, 'node-options': { type: 'string' } } });
const rounds = Number(values.rounds);
const probe = await openProbe('pair');
const { ctx } = probe;
const { cpu, pki } = ctx;
const issuer = await startIssuerProcess(ctx);
const profDir = values['cpu-prof'];
const nodeOptions = [PRODUCTION_NODE_OPTIONS, values['node-options'] ?? '', profDir ? `--cpu-prof --cpu-prof-dir=${profDir}` : ''].filter(Boolean).join(' ');
const env = { NODE_OPTIONS: nodeOptions };
const start = async (): Promise<[Awaited<ReturnType<typeof startAuthproxy>>, Awaited<ReturnType<typeof startAuthproxy>>]> => {
  const b = await startAuthproxy(ctx, { upstream: 'tcp', label: 'b', env });
  const a = await startAuthproxy(ctx, {
    upstream: 'tcp', label: 'a', pair: pki.peerSidecar, env, policies: await policyDir(ctx, 'pair', route('peer', 'mtls', true)),
    extraArgs: ['--issuer', issuer.url, '--client-id', CLIENT_ID, '--client-auth', 'private_key_jwt'],
  });
  return [a, b];
};
// A first start fills the launcher's compile cache after a change to the sources (bench/run.ts says why).
for (const s of await start()) await s.stop();
const [a, b] = await start();
try {
  const target: LoadTarget = { kind: 'http', host: '127.0.0.1', port: a.outboundPort, hostHeader: `localhost:${b.inboundPort}` };
  const saturate = (ms: number, warmupMs: number): Promise<SaturateResult> => runLoadgen<SaturateResult>({
    mode: 'saturate', target, path: '/orders/123', bodyBytes: 1024, connections: 50, warmupMs, durationMs: ms }, cpu.loadCpu);
  await saturate(6000, 0);
  for (let i = 0; i < rounds; i++) {
    const perf = i === 0 && values.perf
      ? spawn('perf', ['record', '-e', 'cpu-clock', '-g', '-o', values.perf, '-p', processTree(a.pid).join(','), '--', 'sleep', '5'], { stdio: 'ignore' })
      : null;
    const perfDone = perf ? new Promise((resolve) => perf.once('close', resolve)) : null;
    const [ca, cb] = [a.cpuSeconds(), b.cpuSeconds()];
    const r = await saturate(6000, 0);
    const us = (s: number): number => Math.round((s * 1e6) / Math.max(1, r.total));
    console.log(JSON.stringify({ round: i + 1, reqPerS: Math.round(r.rps), errors: r.errors, aCpuUsPerReq: us(a.cpuSeconds() - ca), bCpuUsPerReq: us(b.cpuSeconds() - cb) }));
    await perfDone;
  }
} finally {
  await a.stop(); await b.stop();
  await stopProcess(issuer.proc);
  await probe.close();
}
