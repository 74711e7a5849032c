import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makePki } from '../support/pki.ts';
import { startApp } from '../support/app.ts';
import { startSidecar, REPO } from '../support/sidecar.ts';
import { httpsGet } from '../support/clients.ts';
import { policyDir, TEST_POLICY } from '../support/policy-dir.ts';

// An ESM import of node:http's values loads Node's bundled undici (src/http/node-http.ts says why):
// tens of milliseconds of start-up and megabytes of RSS for classes the sidecar never uses.
test('a sidecar that started and served allowed and denied requests never loaded Node\'s bundled undici', async () => {
  const pki = await makePki(); const app = await startApp(); const policies = await policyDir({ 'orders.yaml': TEST_POLICY });
  const preload = join(REPO, 'test/support/report-modules.ts');
  const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
    '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
    '--plaintext-listen', '127.0.0.1:0'],
  { env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}` } });
  try {
    assert.equal((await httpsGet(s.inboundPort, '/orders/1', pki.ca, pki.clients.shop)).status, 200);
    assert.equal((await httpsGet(s.inboundPort, '/admin/x', pki.ca, pki.clients.billing)).status, 403);
    assert.equal(await s.stop(), 0);
    const report = await s.waitForLog('loaded modules');
    const modules = report.modules as string[];
    // The check is only worth something if the list is the real one: node:http itself is in it.
    assert.ok(modules.includes('NativeModule http'), 'node:http was loaded');
    assert.ok(modules.includes('NativeModule http2'), 'node:http2 was loaded');
    assert.deepEqual(modules.filter((m) => m.includes('internal/deps/undici')), []);
  } finally { await s.stop(); await app.close(); await pki.cleanup(); }
});
