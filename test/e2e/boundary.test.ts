// The inbound plaintext listener: a caller's source address decides. Inside a TrustBoundary it is
// authorized as `boundary:<name>`; outside every boundary it gets 403 boundary_violation, is
// audited, and never reaches the app. Two loopback addresses stand in for two networks.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import { once } from 'node:events';
import { rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, TEST_POLICY } from '../support/policy-dir.ts';
import { waitForAuditLine } from '../support/audit.ts';

const INSIDE = '127.0.0.2';
const OUTSIDE = '127.0.0.3';

const BOUNDARY_POLICY = `${TEST_POLICY}    - name: cluster-reads-orders
      action: allow
      from: [{ principals: ["boundary:cluster"] }]
      to: [{ methods: [GET], paths: ["/orders/**"] }]
---
apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: cluster }
spec:
  cidrs: ["${INSIDE}/32", "10.0.0.0/8"]
`;

interface Reply { status: number; body: string }
function plainGet(port: number, path: string, from: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: from, headers, agent: false }, (res) => {
      let body = ''; res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('inbound plaintext listener and trust boundaries', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let policies: string; let work: string; let audit: string; let port: number;

  before(async () => {
    pki = await makePki(); app = await startApp();
    policies = await policyDir({ 'orders.yaml': BOUNDARY_POLICY });
    work = await mkdtemp(join(tmpdir(), 'authproxy-boundary-')); audit = join(work, 'audit.log');
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', audit, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--plaintext-listen', '127.0.0.1:0']);
    port = Number(String((await sidecar.waitForLog('ready')).plaintext).split(':').at(-1));
  });
  after(async () => {
    await sidecar?.stop(); await app?.close(); await pki?.cleanup();
    await rm(policies, { recursive: true, force: true }); await rm(work, { recursive: true, force: true });
  });

  it('accepts plaintext from inside the boundary as principal boundary:<name>, with no certificate header', async () => {
    const r = await plainGet(port, '/orders/1', INSIDE, { 'x-forwarded-client-cert': 'Hash=00;URI=spiffe://example.org/ns/billing/sa/api' });
    assert.equal(r.status, 200);
    const h = (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
    assert.equal(h['x-authproxy-principal'], 'boundary:cluster');
    assert.equal(h['x-forwarded-client-cert'], undefined, 'a caller-supplied XFCC never survives, and plaintext has none of its own');
  });

  it('refuses plaintext from outside every boundary with 403 boundary_violation, audited, app untouched', async () => {
    const before = app.seen.length;
    const r = await plainGet(port, '/orders/1', OUTSIDE, { 'x-request-id': 'outside-1' });
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'boundary_violation');
    assert.equal(app.seen.length, before);
    const line = await waitForAuditLine(audit, (l) => l.requestId === 'outside-1');
    assert.equal(line?.decision, 'deny');
    assert.equal(line?.boundary, 'outside');
    assert.equal(line?.tls, 'plaintext');
    assert.deepEqual(line?.peer, { principal: null, address: OUTSIDE });
  });

  it('still applies policy inside the boundary: a path no rule allows is 403 forbidden', async () => {
    const before = app.seen.length;
    const r = await plainGet(port, '/payments', INSIDE);
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'forbidden');
    assert.equal(app.seen.length, before);
  });

  it('audits an inside decision with the boundary name', async () => {
    await plainGet(port, '/orders/2', INSIDE, { 'x-request-id': 'inside-1' });
    const line = await waitForAuditLine(audit, (l) => l.requestId === 'inside-1');
    assert.equal(line?.boundary, 'cluster');
    assert.equal(line?.rule, 'cluster-reads-orders');
  });

  it('refuses a CONNECT with 400 bad_request and audits it, instead of dropping the connection', async () => {
    const before = app.seen.length;
    const r = await new Promise<Reply>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'CONNECT', path: 'example.com:443', localAddress: INSIDE, headers: { 'x-request-id': 'connect-1' }, agent: false });
      // node:http hands over any answer to a CONNECT as a tunnel: the body is what follows the head.
      req.on('connect', (res: IncomingMessage, socket: Socket, head: Buffer) => {
        let body = head.toString('utf8');
        socket.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.body), { error: 'bad_request', message: 'CONNECT is accepted only to open a WebSocket over HTTP/2 (RFC 8441, :protocol websocket)', requestId: 'connect-1' });
    assert.equal(app.seen.length, before);
    const line = await waitForAuditLine(audit, (l) => l.requestId === 'connect-1');
    assert.equal(line?.method, 'CONNECT');
    assert.equal(line?.decision, 'deny');
    assert.equal(line?.code, 'bad_request');
    assert.equal(line?.tls, 'plaintext');
    assert.equal(line?.boundary, 'cluster');
  });

  it('opens a WebSocket over h2c (RFC 8441) from inside the boundary, authorized as the GET it stands for', async () => {
    const session = h2connect(`http://127.0.0.1:${port}`, { createConnection: () => tcpConnect({ host: '127.0.0.1', port, localAddress: INSIDE }) });
    try {
      const [settings] = await once(session, 'remoteSettings') as [{ enableConnectProtocol?: boolean }];
      assert.equal(settings.enableConnectProtocol, true);
      const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/orders/live', ':authority': 'localhost',
        'sec-websocket-version': '13', 'x-request-id': 'ws-h2c-1' });
      const [headers] = await once(stream, 'response') as [IncomingHttpHeaders];
      assert.equal(headers[':status'], 200);
      assert.deepEqual(app.seen.at(-1) && { method: app.seen.at(-1)!.method, url: app.seen.at(-1)!.url }, { method: 'WS', url: '/orders/live' });
      const line = await waitForAuditLine(audit, (l) => l.requestId === 'ws-h2c-1');
      assert.equal(line?.method, 'GET');
      assert.equal(line?.decision, 'allow');
      assert.equal(line?.tls, 'plaintext');
      stream.close();
    } finally { session.destroy(); }
  });

  it('is off by default', async () => {
    const s = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      assert.equal((await s.waitForLog('ready')).plaintext, undefined);
    } finally { await s.stop(); }
  });
});
