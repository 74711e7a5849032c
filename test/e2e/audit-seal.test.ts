// A real sidecar seals its audit log with its workload key (src/audit/seal.ts), across a log
// rotation (SIGHUP) and a certificate rotation, and `authproxy audit verify --ca` accepts the
// files it wrote and finds a record changed in them afterwards.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync } from 'node:fs';
import { readFile, writeFile, rename, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, SERVER_ID } from '../support/pki.ts';
import { startApp } from '../support/app.ts';
import { startSidecar, BIN } from '../support/sidecar.ts';
import { httpsGet } from '../support/clients.ts';
import { auditLines, sealLines } from '../support/audit.ts';
import { policyDir, TEST_POLICY } from '../support/policy-dir.ts';
import { waitFor } from '../support/wait.ts';

function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], (err, stdout) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout }));
  });
}
const verify = (ca: string, files: string[]): Promise<{ code: number; stdout: string }> => cli(['audit', 'verify', '--ca', ca, ...files]);

describe('sealed audit log, end to end', () => {
  it('seals what a real sidecar writes, across a log rotation and a certificate rotation; audit verify accepts it and finds a record changed', async () => {
    const pki = await makePki(); const app = await startApp();
    const work = await mkdtemp(join(tmpdir(), 'authproxy-seal-e2e-'));
    const cert = join(work, 'tls.crt'); const key = join(work, 'tls.key'); const file = join(work, 'audit.log');
    await copyFile(pki.server.cert, cert); await copyFile(pki.server.key, key);
    const s = await startSidecar(['--upstream', app.upstream, '--cert', cert, '--key', key, '--ca', pki.ca, '--audit-log', file,
      '--audit-seal-interval', '200ms', '--reload-interval', '200ms', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      const get = async (path: string): Promise<void> => assert.equal((await httpsGet(s.inboundPort, path, pki.ca, pki.clients.shop)).status, 200);
      for (const p of ['/a', '/b', '/c']) await get(p);
      await waitFor(async () => (await sealLines(file)).reduce((n, l) => n + (l.lines as number), 0) === 3, 'seals over the three records');
      await rename(file, `${file}.1`);
      s.proc.kill('SIGHUP');
      await s.waitForLog('audit log reopened');
      await get('/d');
      // Sealed by the first certificate before it rotates (the next tick could otherwise come after the reload).
      await waitFor(async () => (await sealLines(file)).some((l) => (l.lines as number) === 1), 'a seal over /d');
      // The certificate rotates (written aside, renamed over, as cert-manager does): later seals are signed by the new key.
      const next = await pki.issue('rotated', { spiffeId: SERVER_ID, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      await writeFile(`${cert}.tmp`, await readFile(next.cert)); await writeFile(`${key}.tmp`, await readFile(next.key));
      await rename(`${key}.tmp`, key); await rename(`${cert}.tmp`, cert);
      await waitFor(async () => /authproxy_reloads_total\{kind="certificate",result="ok"\} [1-9]/.test(
        await fetch(`http://127.0.0.1:${s.adminPort}/metrics`).then((r) => r.text())), 'the certificate reloaded');
      await get('/e');
      assert.equal(await s.stop(), 0);

      assert.deepEqual((await auditLines(`${file}.1`)).map((l) => l.path), ['/a', '/b', '/c']);
      assert.deepEqual((await auditLines(file)).map((l) => l.path), ['/d', '/e']);
      const rotated = await sealLines(`${file}.1`);
      assert.equal(rotated.at(-1)!.end, 'rotate', 'the rotated file ends with its seal');
      const seals = await sealLines(file);
      assert.equal(seals.at(-1)!.end, 'close', 'the sidecar closed the log with a seal');
      const signers = [...new Set(seals.map((l) => l.signer))];
      assert.equal(signers.length, 2, 'signed by the first certificate, then by the rotated one');
      assert.ok(seals.every((l) => l.principal === SERVER_ID));
      assert.ok(signers.every((signer) => seals.some((l) => l.signer === signer && Array.isArray(l.certs))), 'each signer\'s certificate is in the file');

      const ok = await verify(pki.ca, [`${file}.1`, file]);
      assert.equal(ok.code, 0, ok.stdout);
      assert.match(ok.stdout, /^verified: 5 sealed lines are as the sidecar wrote them/m);
      assert.match(ok.stdout, new RegExp(`signed by ${SERVER_ID.replaceAll('/', '\\/')}; closed by the sidecar`));

      const text = await readFile(`${file}.1`, 'utf8');
      await writeFile(`${file}.1`, text.replace('"path":"/b"', '"path":"/x"'));
      const bad = await verify(pki.ca, [`${file}.1`, file]);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /^PROBLEM .*audit\.log\.1:\d+: lines \d+–\d+: not what this seal covers/m);
    } finally { await s.stop(); await app.close(); await pki.cleanup(); await rm(work, { recursive: true, force: true }); }
  });

  it('verifies and replays the audit log on stdout interleaved with the operational log on stderr, as kubectl logs shows a container\'s', async () => {
    const pki = await makePki(); const app = await startApp();
    const work = await mkdtemp(join(tmpdir(), 'authproxy-seal-k8s-'));
    const policies = await policyDir({ 'policy.yaml': TEST_POLICY });
    const both = join(work, 'container.log');
    // One file for both streams, as a container runtime's log (and kubectl logs) holds them.
    const fd = openSync(both, 'a');
    const proc = spawn(process.execPath, [BIN, '--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-seal-interval', '100ms', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0'],
    { stdio: ['ignore', fd, fd] });
    try {
      await waitFor(async () => /"msg":"ready"/.test(await readFile(both, 'utf8')), 'ready');
      const port = Number(/"inbound":"[^"]*:(\d+)"/.exec(await readFile(both, 'utf8'))![1]);
      assert.equal((await httpsGet(port, '/orders', pki.ca, pki.clients.billing)).status, 200);
      assert.equal((await httpsGet(port, '/orders', pki.ca, pki.clients.shop, { method: 'POST', body: 'x' })).status, 403);
      await waitFor(async () => (await sealLines(both)).length > 0, 'a seal');
      // An operational line between two seals: a policy reload warning would do as well as this.
      assert.equal((await httpsGet(port, '/admin/users', pki.ca, pki.clients.billing)).status, 403);
      proc.kill('SIGTERM');
      await once(proc, 'exit');
      const text = await readFile(both, 'utf8');
      assert.match(text, /"level":"info","msg":"stopped"/);
      const v = await cli(['audit', 'verify', '--ca', pki.ca, '--json', both]);
      assert.equal(v.code, 0, v.stdout);
      const report = JSON.parse(v.stdout) as { files: Array<{ sealed: number; skipped: number }>; problems: unknown[] };
      assert.equal(report.files[0]!.sealed, 3);
      assert.ok(report.files[0]!.skipped >= 3, 'ready, draining and stopped, at least, were skipped');
      const r = await cli(['policy', 'replay', policies, both, '--json']);
      assert.equal(r.code, 0, r.stdout);
      const counts = (JSON.parse(r.stdout) as { counts: Record<string, number> }).counts;
      assert.equal(counts.confirmed, 3);
      assert.equal(counts.log, report.files[0]!.skipped);
      // A record changed in the combined log is still found.
      await writeFile(both, text.replace('"path":"/admin/users","decision":"deny"', '"path":"/admin/users","decision":"allow"'));
      assert.equal((await cli(['audit', 'verify', '--ca', pki.ca, both])).code, 1);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      closeSync(fd); await app.close(); await pki.cleanup(); await rm(work, { recursive: true, force: true }); await rm(policies, { recursive: true, force: true });
    }
  });
});
