// Log rotation with the real sidecar: logrotate moves the file and sends SIGHUP (postrotate); the
// sidecar keeps running and writes to a new file at the configured path.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../support/pki.ts';
import { startApp } from '../support/app.ts';
import { startSidecar } from '../support/sidecar.ts';
import { httpsGet } from '../support/clients.ts';
import { auditLines } from '../support/audit.ts';

async function waitUntil(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const paths = async (file: string): Promise<string[]> => {
  try { return (await auditLines(file)).map((l) => l.path as string); } catch { return []; }
};

describe('audit log rotation', () => {
  it('on SIGHUP reopens the audit file at its path, keeps serving, and still drains on SIGTERM', async () => {
    const pki = await makePki(); const app = await startApp();
    const file = join(pki.dir, 'audit.log');
    const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', file, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      assert.equal((await httpsGet(s.inboundPort, '/before', pki.ca, pki.clients.shop)).status, 200);
      await waitUntil(async () => (await paths(file)).includes('/before'));
      await rename(file, `${file}.1`);
      s.proc.kill('SIGHUP');
      await s.waitForLog('audit log reopened');
      assert.equal(s.proc.exitCode, null, 'SIGHUP did not end the process');
      await stat(file);
      assert.equal((await httpsGet(s.inboundPort, '/after', pki.ca, pki.clients.shop)).status, 200);
      const metrics = await fetch(`http://127.0.0.1:${s.adminPort}/metrics`).then((r) => r.text());
      assert.match(metrics, /^authproxy_audit_records_dropped_total\{reason="backlog"\} 0$/m);
      assert.match(metrics, /^authproxy_audit_records_dropped_total\{reason="write_error"\} 0$/m);
      assert.equal(await s.stop(), 0);
      assert.deepEqual(await paths(`${file}.1`), ['/before']);
      assert.deepEqual(await paths(file), ['/after']);
    } finally { await s.stop(); await app.close(); await pki.cleanup(); }
  });
});
