// A sidecar with its outbound path as the outbound suites run it: a test PKI, a recording app, a
// work dir, the policy documents, a real dev issuer process and the sidecar itself. close() takes
// them down in reverse, and a start that fails half-way takes down what it had started.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir } from '../support/policy-dir.ts';
import type { IssuerProcess } from '../tokens/support.ts';

export interface OutboundFixture {
  pki: TestPki; app: TestApp; work: string; policies: string; issuer: IssuerProcess; sidecar: Sidecar;
  close(): Promise<void>;
}

export interface OutboundFixtureOptions {
  /** Prefix of the work dir's name. */
  name: string;
  policies: Record<string, string>;
  issuer(pki: TestPki, work: string): Promise<IssuerProcess>;
  /** The sidecar's flags past the ones every outbound suite gives (see below). */
  sidecarArgs?(f: { pki: TestPki; work: string }): string[];
}

export async function startOutboundFixture(opts: OutboundFixtureOptions): Promise<OutboundFixture> {
  const undo: Array<() => Promise<unknown>> = [];
  const close = async (): Promise<void> => { for (const step of undo.splice(0).reverse()) await step(); };
  try {
    const pki = await makePki(); undo.push(() => pki.cleanup());
    const app = await startApp(); undo.push(() => app.close());
    const work = await mkdtemp(join(tmpdir(), `authproxy-${opts.name}-`)); undo.push(() => rm(work, { recursive: true, force: true }));
    const policies = await policyDir(opts.policies); undo.push(() => rm(policies, { recursive: true, force: true }));
    const issuer = await opts.issuer(pki, work); undo.push(() => issuer.stop());
    const sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--issuer', issuer.url, '--client-id', 'orders',
      ...(opts.sidecarArgs?.({ pki, work }) ?? [])]);
    undo.push(() => sidecar.stop());
    return { pki, app, work, policies, issuer, sidecar, close };
  } catch (e) {
    await close();
    throw e;
  }
}
