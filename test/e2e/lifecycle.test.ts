// Process lifecycle: readiness, graceful drain on SIGTERM, configuration errors, and dev mode's
// promise that a newcomer's first curl works.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, cp, stat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { makePki } from '../support/pki.ts';
import { startApp } from '../support/app.ts';
import { startSidecar, REPO, BIN } from '../support/sidecar.ts';
import { httpsGet, rawTls, statusOf } from '../support/clients.ts';
import { policyDir } from '../support/policy-dir.ts';

async function waitUntil(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs the banner's curl line as printed (in the dev cwd) and checks that it reached the app as the dev client. */
async function assertPrintedCurlWorks(command: string, cwd: string): Promise<void> {
  const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
    const p = spawn('sh', ['-c', `${command} --silent --show-error --max-time 10`], { cwd });
    let stdout = ''; p.stdout.on('data', (d: Buffer) => { stdout += String(d); });
    p.on('exit', (code) => resolve({ code: code ?? -1, stdout }));
  });
  assert.equal(out.code, 0);
  assert.equal((JSON.parse(out.stdout) as { headers: Record<string, string> }).headers['x-authproxy-principal'], 'spiffe://example.org/ns/dev/sa/curl');
}

describe('lifecycle', () => {
  it('with no AuthorizationPolicy loaded, warns at start-up and allows every trusted peer', async () => {
    const pki = await makePki(); const app = await startApp();
    const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      assert.match(s.stderr(), /"level":"warn","msg":"no AuthorizationPolicy loaded: every peer with a trusted certificate is allowed"/);
      assert.equal((await httpsGet(s.inboundPort, '/anything', pki.ca, pki.clients.shop)).status, 200);
      assert.equal((await httpsGet(s.inboundPort, '/else', pki.ca, pki.clients.dnsOnly)).status, 200);
    } finally { await s.stop(); await app.close(); await pki.cleanup(); }
  });

  it('on SIGTERM turns unready, finishes the in-flight request, then exits 0', async () => {
    const pki = await makePki(); const app = await startApp();
    const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      const slow = httpsGet(s.inboundPort, '/slow', pki.ca, pki.clients.billing);
      await new Promise((r) => setTimeout(r, 200));
      s.proc.kill('SIGTERM');
      await s.waitForLog('draining');
      const ready = await fetch(`http://127.0.0.1:${s.adminPort}/readyz`).then((r) => r.status, () => 0);
      assert.equal(ready, 503);
      const r = await slow;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'slow done');
      assert.equal(await s.exited(), 0);
    } finally { await s.stop(); await app.close(); await pki.cleanup(); }
  });

  it('a SIGTERM sent the moment the ready line is out still drains and exits 0', async () => {
    const pki = await makePki(); const app = await startApp();
    try {
      // startSidecar resolves on the `ready` line and stop() signals at once; before the stop
      // listener was added ahead of start-up, Node's default SIGTERM action could win that race.
      for (let i = 0; i < 5; i++) {
        const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
          '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
        assert.equal(await s.stop(), 0, `start ${i + 1}: ${s.stderr()}`);
        assert.match(s.stderr(), /"msg":"stopped","reason":"SIGTERM"/);
      }
    } finally { await app.close(); await pki.cleanup(); }
  });

  it('on SIGTERM during concurrent traffic, completes every in-flight request', async () => {
    const pki = await makePki(); const app = await startApp();
    const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      const inFlight = Array.from({ length: 12 }, (_, i) => httpsGet(s.inboundPort, `/slow/${i}`, pki.ca, pki.clients.billing));
      await waitUntil(() => app.seen.filter((x) => x.url.startsWith('/slow/')).length === 12);
      s.proc.kill('SIGTERM');
      const replies = await Promise.all(inFlight);
      assert.deepEqual(replies.map((r) => r.status), Array(12).fill(200));
      assert.equal(await s.exited(), 0);
    } finally { await s.stop(); await app.close(); await pki.cleanup(); }
  });

  it('cuts requests still running when the drain timeout ends, then exits', async () => {
    const pki = await makePki();
    const app = await startApp({ handler: (req) => { if (req.url === '/forever') { req.resume(); return true; } return false; } });
    const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--drain-timeout', '300ms']);
    try {
      const stuck = httpsGet(s.inboundPort, '/forever', pki.ca, pki.clients.billing).then(() => 'answered', () => 'cut');
      await waitUntil(() => app.seen.some((x) => x.url === '/forever'));
      const started = Date.now();
      s.proc.kill('SIGTERM');
      assert.equal(await s.exited(), 0);
      assert.ok(Date.now() - started < 3000, 'exited soon after the 300 ms grace period');
      assert.equal(await stuck, 'cut');
    } finally { await s.stop(); await app.close(); await pki.cleanup(); }
  });

  it('on SIGTERM, waits for a WebSocket upgrade whose bearer token is still being verified and answers it', async () => {
    // An issuer that takes 1.5 s to answer (and then fails): the token check is pending when the drain starts.
    const issuerHits: string[] = [];
    const issuer = createServer((req, res) => { issuerHits.push(req.url ?? ''); setTimeout(() => res.writeHead(503).end(), 1500); });
    await new Promise<void>((r) => issuer.listen(0, '127.0.0.1', r));
    const issuerUrl = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}`;
    const policies = await policyDir({ 'tokens.yaml': `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: tokens }
spec:
  rules:
    - name: billing-with-a-reader-token
      action: allow
      from: [{ principals: ["spiffe://example.org/ns/billing/sa/*"], token: { roles: [Orders.Reader] } }]
      to: [{ paths: ["/**"] }]
` });
    const pki = await makePki(); const app = await startApp();
    const closeIssuer = (): Promise<unknown> => { issuer.closeAllConnections(); return new Promise((r) => issuer.close(r)); };
    const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--issuer', issuerUrl, '--client-id', 'orders', '--client-auth', 'private_key_jwt',
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'])
      .catch(async (e: unknown) => { await closeIssuer(); await app.close(); await pki.cleanup(); throw e; });
    try {
      // Well-formed and signed, so verification goes as far as fetching the issuer's keys.
      const token = await new SignJWT({ roles: ['Orders.Reader'] }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(issuerUrl)
        .setIssuedAt().setExpirationTime('5m').sign(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
      const upgrade = rawTls(s.inboundPort, `GET /ws/chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n\r\n`, pki.ca, pki.clients.billing)
        .catch((e: Error) => `cut: ${e.message}`);
      await waitUntil(() => issuerHits.length > 0);
      s.proc.kill('SIGTERM');
      const answer = await upgrade;
      assert.equal(statusOf(answer), 401, `answered, not cut: ${answer.slice(0, 80)}`);
      assert.match(answer, /"error":"invalid_token"/);
      assert.equal(app.seen.length, 0, 'the app never saw it');
      assert.equal(await s.exited(), 0);
    } finally {
      await s.stop(); await app.close(); await pki.cleanup(); await closeIssuer();
      await rm(policies, { recursive: true, force: true });
    }
  });

  it('refuses to start with a clear message when --cert is given without --key and --ca', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, '--upstream', 'http://127.0.0.1:3000', '--cert', 'x.crt'], { cwd: REPO }, (e, _o, stderr) =>
        resolve({ code: e ? Number(e.code) : 0, stderr }));
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--cert, --key and --ca go together \(missing: key, ca\)/);
  });

  it('refuses to start when the key does not match the certificate, naming the file', async () => {
    const pki = await makePki();
    try {
      const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(process.execPath, [BIN, '--upstream', 'http://127.0.0.1:3000', '--cert', pki.server.cert, '--key', pki.clients.billing.key, '--ca', pki.ca,
          '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { cwd: REPO }, (e, _o, stderr) => resolve({ code: e ? Number(e.code) : 0, stderr }));
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /billing\.key: private key does not match the certificate/);
      assert.doesNotMatch(r.stderr, /PRIVATE KEY/);
    } finally { await pki.cleanup(); }
  });

  it('dev mode generates certificates, loads ./policies and prints a curl command that works as printed', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'authproxy-dev-'));
    await cp(join(REPO, 'policies'), join(cwd, 'policies'), { recursive: true });
    const app = await startApp();
    const s = await startSidecar(['--upstream', app.upstream, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { cwd });
    try {
      const files = await readdir(join(cwd, 'certs'));
      for (const f of ['ca.crt', 'workload.crt', 'workload.key', 'client.crt', 'client.key']) assert.ok(files.includes(f), `${f} generated`);
      assert.equal((await stat(join(cwd, 'certs', 'workload.key'))).mode & 0o077, 0, 'keys are private to the user');
      const command = (await s.waitForStdout(/^\s+(curl .*)$/m))[1]!;
      await assertPrintedCurlWorks(command, cwd);
    } finally { await s.stop(); await app.close(); await rm(cwd, { recursive: true, force: true }); }
  });

  it('dev mode with --listen [::1]:PORT prints bracketed URLs, and the printed curl works as printed', async () => {
    // formatListen in the banner: it printed https://::1:PORT/, which curl cannot use.
    const cwd = await mkdtemp(join(tmpdir(), 'authproxy-dev6-'));
    await cp(join(REPO, 'policies'), join(cwd, 'policies'), { recursive: true });
    const app = await startApp();
    const s = await startSidecar(['--upstream', app.upstream, '--listen', '[::1]:0', '--admin-listen', '127.0.0.1:0'], { cwd });
    try {
      const command = (await s.waitForStdout(/^\s+(curl .*)$/m))[1]!;
      assert.match(command, new RegExp(`https://\\[::1\\]:${s.inboundPort}/$`));
      assert.match(s.stdout(), new RegExp(`inbound mTLS  https://\\[::1\\]:${s.inboundPort}  ->`));
      await assertPrintedCurlWorks(command, cwd);
    } finally { await s.stop(); await app.close(); await rm(cwd, { recursive: true, force: true }); }
  });
});
