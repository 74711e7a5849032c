// What a start loads: modules the sidecar does not need cost start-up time and memory in every
// pod, and nothing else would notice one coming back (bench/FINDINGS.md, "Start-up").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki } from '../support/pki.ts';
import { startApp } from '../support/app.ts';
import { startSidecar, REPO, type Sidecar } from '../support/sidecar.ts';
import { httpsGet } from '../support/clients.ts';
import { policyDir, TEST_POLICY } from '../support/policy-dir.ts';

const PRELOAD = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${join(REPO, 'test/support/report-modules.ts')}` };

async function loadedBy(s: Sidecar): Promise<{ builtins: string[]; files: string[] }> {
  assert.equal(await s.stop(), 0);
  const report = await s.waitForLog('loaded modules');
  return { builtins: report.builtins as string[], files: report.files as string[] };
}

// An ESM import of node:http's values loads Node's bundled undici (src/http/node-http.ts says why).
test('a sidecar that started and served allowed and denied requests never loaded Node\'s bundled undici', async () => {
  const pki = await makePki(); const app = await startApp(); const policies = await policyDir({ 'orders.yaml': TEST_POLICY });
  const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
    '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
    '--plaintext-listen', '127.0.0.1:0'], { env: PRELOAD });
  try {
    assert.equal((await httpsGet(s.inboundPort, '/orders/1', pki.ca, pki.clients.shop)).status, 200);
    assert.equal((await httpsGet(s.inboundPort, '/admin/x', pki.ca, pki.clients.billing)).status, 403);
    const { builtins, files } = await loadedBy(s);
    // The check is only worth something if the list is the real one: node:http itself is in it.
    assert.ok(builtins.includes('NativeModule http'), 'node:http was loaded');
    assert.ok(builtins.includes('NativeModule http2'), 'node:http2 was loaded');
    assert.deepEqual(builtins.filter((m) => m.includes('internal/deps/undici')), []);
    // The policy validators were compiled ahead of time: ajv's compiler is not loaded to check a policy.
    assert.ok(files.some((f) => f.endsWith('/src/policy/validators.generated.ts')), 'the generated validators were loaded');
    assert.deepEqual(files.filter((f) => f.includes('/node_modules/ajv/') && !f.includes('/ajv/dist/runtime/')), []);
  } finally { await s.stop(); await app.close(); await pki.cleanup(); await rm(policies, { recursive: true, force: true }); }
});

test('a dev-mode start with its certificates already made does not load the certificate-making library', async () => {
  const cwd = await mkdtemp(join(tmpdir(), 'authproxy-devstart-'));
  const app = await startApp();
  const args = ['--upstream', app.upstream, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'];
  try {
    const first = await startSidecar(args, { cwd, env: PRELOAD });
    // The first start makes the dev certificates, and needs @peculiar/x509 for it (so the check below can fail).
    assert.ok((await loadedBy(first)).files.some((f) => f.includes('/node_modules/@peculiar/x509/')));
    const second = await startSidecar(args, { cwd, env: PRELOAD });
    assert.deepEqual((await loadedBy(second)).files.filter((f) => f.includes('/node_modules/@peculiar/')), []);
  } finally { await app.close(); await rm(cwd, { recursive: true, force: true }); }
});
