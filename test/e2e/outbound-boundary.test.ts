// Outbound and the trust boundary: inside, plaintext is fine; the moment traffic leaves it the
// sidecar originates TLS itself, although the app spoke plain HTTP. Two loopback addresses stand
// in for two networks: 127.0.0.2 inside, 127.0.0.3 outside.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttps, type Server as HttpsServer } from 'node:https';
import { createServer as createHttp, request, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { rm, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createCA, issueCertificate } from '../../src/certs/pki.ts';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, BIN, REPO, type Sidecar } from '../support/sidecar.ts';
import { policyDir } from '../support/policy-dir.ts';
import { waitForAuditLine } from '../support/audit.ts';
import { execFile } from 'node:child_process';

const POLICY = `apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: near }
spec:
  cidrs: ["127.0.0.2/32", "127.0.0.1/32", "::1/128"]
---
apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: system-roots-only }
spec:
  hosts: ["127.0.0.4"]
  trust: system
---
apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: bundle-only }
spec:
  hosts: ["127.0.0.5"]
  trust: bundle
`;

interface Seen { tls: boolean; url: string }

async function listen(server: HttpServer | HttpsServer, host: string): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

/** A plain GET through the outbound listener in absolute form, as an app with HTTP_PROXY sends it. */
function viaProxy(proxyPort: number, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers, agent: false }, (res) => {
      let body = ''; res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('outbound trust boundaries and TLS origination', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let policies: string; let work: string; let audit: string;
  const seen: Seen[] = [];
  const servers: Array<HttpServer | HttpsServer> = [];
  let insidePort: number; let outsidePort: number; let foreignPort: number; let systemOnlyPort: number; let bundleOnlyPort: number; let localhostPort: number;

  const record = (tls: boolean) => (req: IncomingMessage, res: ServerResponse): void => {
    seen.push({ tls, url: req.url ?? '' });
    res.end(JSON.stringify({ tls, authorization: req.headers.authorization ?? null }));
  };

  before(async () => {
    pki = await makePki(); app = await startApp();
    // Inside, plain HTTP only.
    const inside = createHttp(record(false)); servers.push(inside);
    insidePort = await listen(inside, '127.0.0.2');
    const local = createHttp(record(false)); servers.push(local);
    localhostPort = await listen(local, '127.0.0.1');
    // Outside, HTTPS only, certificates from the mesh CA (so the bundle verifies them).
    const tlsServer = async (ip: string, ca = pki.caPair): Promise<number> => {
      const pair = await issueCertificate(ca, { ipAddresses: [ip], dnsNames: ['outside.test'] });
      const s = createHttps({ cert: pair.certPem, key: pair.keyPem }, record(true)); servers.push(s);
      return listen(s, ip);
    };
    outsidePort = await tlsServer('127.0.0.3');
    foreignPort = await tlsServer('127.0.0.3', await createCA({ commonName: 'nobody trusts me' }));
    systemOnlyPort = await tlsServer('127.0.0.4');
    bundleOnlyPort = await tlsServer('127.0.0.5');
    policies = await policyDir({ 'routes.yaml': POLICY });
    work = await mkdtemp(join(tmpdir(), 'authproxy-obound-')); audit = join(work, 'audit.log');
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', audit, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  });
  after(async () => {
    await sidecar?.stop(); await app?.close(); await pki?.cleanup();
    for (const s of servers) { s.closeAllConnections(); s.close(); }
    await rm(policies, { recursive: true, force: true }); await rm(work, { recursive: true, force: true });
  });

  it('sends plaintext to a destination inside the boundary, and audits the boundary', async () => {
    const r = await viaProxy(sidecar.outboundPort, `http://127.0.0.2:${insidePort}/in`, { 'x-request-id': 'ob-in' });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { tls: false, authorization: null });
    const line = await waitForAuditLine(audit, (l) => l.requestId === 'ob-in');
    assert.equal(line?.boundary, 'near');
    assert.equal(line?.tls, 'plaintext');
  });

  it('originates TLS to a destination outside every boundary, although the app spoke plain HTTP', async () => {
    const r = await viaProxy(sidecar.outboundPort, `http://127.0.0.3:${outsidePort}/out`, { 'x-request-id': 'ob-out' });
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as Seen).tls, true);
    const line = await waitForAuditLine(audit, (l) => l.requestId === 'ob-out');
    assert.equal(line?.boundary, 'outside');
    assert.equal(line?.tls, 'tls');
  });

  it('verifies the server certificate it originates TLS to: an untrusted one fails with 502, nothing sent', async () => {
    const before = seen.length;
    const r = await viaProxy(sidecar.outboundPort, `http://127.0.0.3:${foreignPort}/foreign`);
    assert.equal(r.status, 502);
    const refusal = JSON.parse(r.body) as { error: string; message: string };
    assert.equal(refusal.error, 'upstream_unavailable');
    assert.match(refusal.message, new RegExp(`^destination 127\\.0\\.0\\.3:${foreignPort}'s certificate was not accepted \\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\\); `
      + `checked against the system's root CAs and the mesh trust bundle \\(--ca\\) \\(no OutboundRoute\\)$`));
    assert.equal(seen.length, before);
  });

  it('tells a plain-HTTP destination outside every boundary apart: 502 saying it does not speak TLS and that a TrustBoundary would let it go plain', async () => {
    const plain = createHttp(record(false)); servers.push(plain);
    const port = await listen(plain, '127.0.0.3');
    const before = seen.length;
    const r = await viaProxy(sidecar.outboundPort, `http://127.0.0.3:${port}/plain-outside`);
    assert.equal(r.status, 502, r.body);
    const refusal = JSON.parse(r.body) as { error: string; message: string };
    assert.equal(refusal.error, 'upstream_unavailable');
    assert.match(refusal.message, /^destination 127\.0\.0\.3:\d+ does not speak TLS there: its answer to the TLS handshake was not TLS \(ERR_SSL_WRONG_VERSION_NUMBER\); the sidecar originates TLS to hosts outside every TrustBoundary \(no OutboundRoute, tls: auto\)/);
    assert.match(refusal.message, /a TrustBoundary that covers this host sends it plain HTTP$/);
    assert.equal(seen.length, before, 'the plain server answered the handshake bytes with a 400, never a request');
  });

  it('verifies against the system roots or the trust bundle as the route says', async () => {
    const system = await viaProxy(sidecar.outboundPort, `http://127.0.0.4:${systemOnlyPort}/sys`);
    assert.equal(system.status, 502, 'a mesh-CA certificate is not trusted by trust: system');
    assert.match((JSON.parse(system.body) as { message: string }).message, /checked against the system's root CAs only \(OutboundRoute system-roots-only\)$/);
    const bundle = await viaProxy(sidecar.outboundPort, `http://127.0.0.5:${bundleOnlyPort}/bun`);
    assert.equal(bundle.status, 200);
    assert.equal((JSON.parse(bundle.body) as Seen).tls, true);
  });

  it('classifies a name by every address it resolves to: localhost is inside when 127.0.0.1 and ::1 are', async () => {
    const r = await viaProxy(sidecar.outboundPort, `http://localhost:${localhostPort}/by-dns`, { 'x-request-id': 'ob-dns' });
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as Seen).tls, false);
    assert.equal((await waitForAuditLine(audit, (l) => l.requestId === 'ob-dns'))?.boundary, 'near');
  });

  it('refuses a reload that adds tls: none outside every boundary, and keeps the running set', async () => {
    const seenBefore = (sidecar.stderr().match(/refused new policy set/g) ?? []).length;
    await writeFile(join(policies, 'zz-leak.yaml'), 'apiVersion: authproxy.dev/v1\nkind: OutboundRoute\nmetadata: { name: leaky }\nspec:\n  hosts: ["127.0.0.3"]\n  tls: none\n');
    try {
      const deadline = Date.now() + 10_000;
      while ((sidecar.stderr().match(/refused new policy set/g) ?? []).length === seenBefore) {
        assert.ok(Date.now() < deadline, 'reload refusal logged');
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(sidecar.stderr(), /zz-leak\.yaml.*leaky.*tls: none would send plaintext to '127\.0\.0\.3'/);
      const r = await viaProxy(sidecar.outboundPort, `http://127.0.0.3:${outsidePort}/still-tls`);
      assert.equal((JSON.parse(r.body) as Seen).tls, true, 'the running set stays in force: still TLS outside');
    } finally { await rm(join(policies, 'zz-leak.yaml'), { force: true }); }
  });

  it('refuses to start with tls: none for a host outside every boundary, naming the document', async () => {
    const bad = await policyDir({ 'leak.yaml': 'apiVersion: authproxy.dev/v1\nkind: OutboundRoute\nmetadata: { name: leaky }\nspec:\n  hosts: ["api.example.com"]\n  tls: none\n' });
    try {
      const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(process.execPath, [BIN, '--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
          '--policies', bad, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--outbound-listen', '127.0.0.1:0'],
        { cwd: REPO }, (e, _o, stderr) => resolve({ code: e ? Number(e.code) : 0, stderr }));
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /leak\.yaml/);
      assert.match(r.stderr, /leaky/);
      assert.match(r.stderr, /tls: none would send plaintext to 'api\.example\.com'/);
    } finally { await rm(bad, { recursive: true, force: true }); }
  });
});
