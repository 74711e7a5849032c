// The outbound rows (issue 3's listener): the app's plain HTTP to its sidecar, routed by Host.
//
//   authproxy outbound, no token        load → sidecar outbound (route, tls: none, no token) → app
//   authproxy outbound, cached token    the same route with a token: issued once, then from cache
//   sidecar → sidecar                   load → sidecar A outbound (token, tls: mtls)
//                                       → sidecar B inbound (mTLS + policy) → app
//
// Every row gets its own sidecar process(es), so memory is per row and no route table is shared.
// The dev issuer (`authproxy issuer`, its own process) issues the token; the warm-up requests of
// each run fill the cache, so the measured requests all carry a cached token.
// Without src/outbound/ (an older tree) the rows are reported as pending.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { REPO, freePorts, spawnOn, stopProcess, waitForPort, treeMemory, treeCpuSeconds } from './procs.ts';
import { BENCH_POLICY } from './pki.ts';
import { startAuthproxy, type Context, type RunningTarget } from './targets.ts';

export interface OutboundPath { id: string; label: string }

export const OUTBOUND_PATHS: readonly OutboundPath[] = [
  { id: 'outbound-plain', label: 'authproxy outbound, no token' },
  { id: 'outbound-cached-token', label: 'authproxy outbound, cached token' },
  { id: 'sidecar-to-sidecar', label: 'sidecar → sidecar (outbound → mTLS → inbound)' },
];

export const AUDIENCE = 'api://orders';
export const CLIENT_ID = 'bench-sidecar';

/** null when the rows can be measured; otherwise why they are pending. */
export function outboundPending(): string | null {
  return existsSync(join(REPO, 'src/outbound')) ? null : 'pending: outbound listener';
}

export function route(name: string, tls: 'none' | 'mtls', token: boolean): string {
  return `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: ${name} }
spec:
  hosts: ["localhost"]
  tls: ${tls}
${token ? `  token: { audience: "${AUDIENCE}" }\n` : ''}---
apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: loopback }
spec:
  cidrs: ["127.0.0.0/8"]
  hosts: ["localhost"]
`;
}

export async function policyDir(ctx: Context, name: string, extra: string): Promise<string> {
  const dir = join(ctx.work, `policies-${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'orders.yaml'), BENCH_POLICY);
  await writeFile(join(dir, 'routes.yaml'), extra);
  return dir;
}

/** The dev issuer as its own process; the outbound sidecar authenticates with private_key_jwt. */
export async function startIssuerProcess(ctx: Context, extraArgs: string[] = []): Promise<{ url: string; proc: ChildProcess }> {
  const [port] = await freePorts(1) as [number];
  const clients = join(ctx.work, 'issuer-clients.yaml');
  await writeFile(clients, `clients:
  ${CLIENT_ID}:
    auth: private_key_jwt
    certificate: ${ctx.pki.peerSidecar.cert}
    audiences:
      ${AUDIENCE}: {}
`);
  const logFd = openSync(join(ctx.work, 'issuer.log'), 'a');
  const proc = spawnOn(ctx.cpu.targetCpu, process.execPath, [join(REPO, 'bin/authproxy.js'), 'issuer',
    '--listen', `127.0.0.1:${port}`, '--clients', clients, '--token-ttl', '1h', ...extraArgs], { cwd: REPO, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  try { await waitForPort('127.0.0.1', port, 20_000); } catch (e) { await stopProcess(proc); throw e; }
  return { url: `http://127.0.0.1:${port}`, proc };
}

/**
 * Starts the sidecars for one outbound row (called just before that row is measured, so only
 * one row's processes share the core at a time). `issuerUrl` is the running dev issuer.
 */
export async function startOutboundPath(ctx: Context, id: string, issuerUrl: string): Promise<RunningTarget> {
  const tokenArgs = ['--issuer', issuerUrl, '--client-id', CLIENT_ID, '--client-auth', 'private_key_jwt'];
  if (id === 'outbound-plain' || id === 'outbound-cached-token') {
    const token = id === 'outbound-cached-token';
    const a = await startAuthproxy(ctx, {
      upstream: 'tcp', label: id, pair: ctx.pki.peerSidecar,
      policies: await policyDir(ctx, id, route('orders', 'none', token)), extraArgs: token ? tokenArgs : [],
    });
    return { ...a, load: { kind: 'http', host: '127.0.0.1', port: a.outboundPort, hostHeader: `localhost:${ctx.app.port}` } };
  }
  if (id === 'sidecar-to-sidecar') {
    const b = await startAuthproxy(ctx, { upstream: 'tcp', label: 's2s-inbound' });
    let a;
    try {
      a = await startAuthproxy(ctx, {
        upstream: 'tcp', label: 's2s-outbound', pair: ctx.pki.peerSidecar,
        policies: await policyDir(ctx, id, route('peer', 'mtls', true)), extraArgs: tokenArgs,
      });
    } catch (e) { await b.stop(); throw e; }
    const [pa, pb] = [a.pid, b.pid];
    return {
      load: { kind: 'http', host: '127.0.0.1', port: a.outboundPort, hostHeader: `localhost:${b.inboundPort}` },
      // Both sidecars: the hop costs a pod each side.
      memory: () => {
        const [ma, mb] = [treeMemory(pa), treeMemory(pb)];
        return ma && mb ? { rssKb: ma.rssKb + mb.rssKb, hwmKb: ma.hwmKb + mb.hwmKb, anonKb: ma.anonKb + mb.anonKb } : null;
      },
      cpuSeconds: () => treeCpuSeconds(pa) + treeCpuSeconds(pb),
      readyMs: a.readyMs,
      stop: async () => { await a.stop(); await b.stop(); },
    };
  }
  throw new Error(`unknown outbound path ${id}`);
}
