// The setup most end-to-end suites of the inbound path share: a sidecar for the test app with the
// workload certificate, TEST_POLICY and an audit log in a temp dir, and one call to take it down.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestPki } from './pki.ts';
import type { TestApp } from './app.ts';
import { startSidecar, type Sidecar } from './sidecar.ts';
import { policyDir, TEST_POLICY } from './policy-dir.ts';

export interface PolicedSidecar {
  sidecar: Sidecar;
  /** The policy dir, for further sidecars under the same rules. */
  policies: string;
  auditFile: string;
  /** Stops the sidecar and removes the policy and audit dirs. */
  close(): Promise<void>;
}

/** `app`: its `upstream` is all that is used, so any app the sidecar can be put in front of will do (`h2c://…`). */
export async function startPolicedSidecar(pki: TestPki, app: Pick<TestApp, 'upstream'>, extraArgs: string[] = []): Promise<PolicedSidecar> {
  const policies = await policyDir({ 'orders.yaml': TEST_POLICY });
  const work = await mkdtemp(join(tmpdir(), 'authproxy-e2e-'));
  const auditFile = join(work, 'audit.log');
  const removeDirs = async (): Promise<void> => {
    await rm(policies, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  };
  let sidecar: Sidecar;
  try {
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', auditFile, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...extraArgs]);
  } catch (e) { await removeDirs(); throw e; }
  return { sidecar, policies, auditFile, close: async () => { await sidecar.stop(); await removeDirs(); } };
}
