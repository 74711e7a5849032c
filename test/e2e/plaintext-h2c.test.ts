// The inbound plaintext listener speaks HTTP/2 with prior knowledge (h2c) as well as HTTP/1.1 on
// one port: a gRPC client with an insecure channel inside a trust boundary calls through it, with
// the same boundary rule, policy, gRPC refusals, rapid-reset guard and drain as everywhere else.
// Real grpc-js client and server, curl, and raw node:http2 and TCP clients from two loopback
// addresses standing in for two networks.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, constants as h2, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { rm } from 'node:fs/promises';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, TEST_POLICY } from '../support/policy-dir.ts';
import { curl } from '../support/clients.ts';
import { waitFor, within } from '../support/wait.ts';
import { floodWithResets, rapidResetCloses } from '../support/h2-flood.ts';
import { startGrpcServer, grpcClient, unary, serverStream, bidiPingPong, echoFrame, grpc, type GrpcServer, type EchoClient } from '../support/grpc.ts';

const INSIDE = '127.0.0.1';
const OUTSIDE = '127.0.0.3';

const POLICY = `${TEST_POLICY}    - name: cluster-calls-echo
      action: allow
      from: [{ principals: ["boundary:cluster"] }]
      to: [{ methods: [POST], paths: ["/authproxy.test.Echo/Unary", "/authproxy.test.Echo/ServerStream"] }]
---
apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: cluster }
spec:
  cidrs: ["${INSIDE}/32"]
`;

const HEADER_TIMEOUT_MS = 500;

describe('h2c on the inbound plaintext listener', () => {
  let pki: TestPki; let app: GrpcServer; let policies: string; let sidecar: Sidecar; let port: number;
  const clients: EchoClient[] = [];
  const sessions: ClientHttp2Session[] = [];

  const startPlaintextSidecar = async (extra: string[] = []): Promise<[Sidecar, number]> => {
    const s = await startSidecar(['--upstream', `h2c://${app.address}`, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
      '--plaintext-listen', '127.0.0.1:0', '--header-timeout', `${HEADER_TIMEOUT_MS}ms`, ...extra]);
    return [s, Number(String((await s.waitForLog('ready')).plaintext).split(':').at(-1))];
  };
  /** A node:http2 client over cleartext from `from` (the address the boundary judges). */
  const h2cSession = (at: number, from: string): ClientHttp2Session => {
    const session = h2connect(`http://127.0.0.1:${at}`, { createConnection: () => tcpConnect({ host: '127.0.0.1', port: at, localAddress: from }) });
    session.on('error', () => { /* the tests read GOAWAYs and closes */ });
    sessions.push(session);
    return session;
  };

  before(async () => {
    pki = await makePki();
    app = await startGrpcServer();
    policies = await policyDir({ 'orders.yaml': POLICY });
    [sidecar, port] = await startPlaintextSidecar();
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of sessions) s.destroy();
    await sidecar?.stop(); await app?.close(); await pki?.cleanup();
    if (policies) await rm(policies, { recursive: true, force: true });
  });

  it('carries a gRPC client\'s insecure channel from inside the boundary as principal boundary:<name>', async () => {
    const c = grpcClient(`127.0.0.1:${port}`);
    clients.push(c);
    const u = await unary(c, 'plain');
    assert.equal(u.reply.text, 'plain');
    assert.equal(u.reply.metadata['x-authproxy-principal'], 'boundary:cluster');
    assert.equal(u.trailers['x-echo-trailer'], 'done');
    assert.deepEqual((await serverStream(c, 's', 3)).replies.map((r) => r.text), ['s#0', 's#1', 's#2']);
  });

  it('answers a gRPC call the policy does not allow PERMISSION_DENIED, and the app never sees it', async () => {
    const c = grpcClient(`127.0.0.1:${port}`);
    clients.push(c);
    const calls = app.calls();
    await assert.rejects(bidiPingPong(c, ['ping']), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.PERMISSION_DENIED);
      assert.match(e.details, /^forbidden: /);
      return true;
    });
    assert.equal(app.calls(), calls);
  });

  it('answers a gRPC call from outside every boundary with a gRPC status for boundary_violation, and the app never sees it', async () => {
    const calls = app.calls();
    const stream = h2cSession(port, OUTSIDE).request({ ':method': 'POST', ':path': '/authproxy.test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' });
    stream.end(echoFrame('from outside'));
    const [headers] = await within(new Promise<[IncomingHttpHeaders]>((resolve) => stream.once('response', (h) => resolve([h]))), 5000, 'an answer');
    stream.resume();
    assert.equal(headers[':status'], 200);
    assert.equal(headers['grpc-status'], String(grpc.status.PERMISSION_DENIED));
    assert.equal(headers['x-authproxy-error'], 'boundary_violation');
    assert.equal(app.calls(), calls);
  });

  it('speaks HTTP/1.1 on the same port, and h2c to curl --http2-prior-knowledge', async () => {
    for (const flag of ['--http1.1', '--http2-prior-knowledge']) {
      const r = await curl([flag, '-w', '\n%{http_code} %{http_version}', `http://127.0.0.1:${port}/not-a-service`]);
      assert.equal(r.code, 0, r.stderr);
      const [body, status] = r.stdout.split('\n');
      assert.equal(status, flag === '--http1.1' ? '403 1.1' : '403 2');
      assert.equal((JSON.parse(body!) as { error: string }).error, 'forbidden');
    }
  });

  it(`answers a header block trickled past --header-timeout 408 over HTTP/1.1, as on the mTLS listener (${HEADER_TIMEOUT_MS} ms here)`, async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = tcpConnect({ host: '127.0.0.1', port }, () => socket.write('GET /orders/1 HTTP/1.1\r\nhost: x\r\n'));
      const drip = setInterval(() => { if (socket.writable) socket.write('x-drip: 1\r\n'); }, 100);
      let out = '';
      socket.setEncoding('utf8').on('data', (d: string) => { out += d; });
      socket.on('close', () => { clearInterval(drip); resolve(out); }).on('error', reject);
      setTimeout(() => { socket.destroy(); }, 5000).unref();
    });
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.match(reply, /"error":"request_timeout"/);
  });

  it('closes an h2c connection whose client resets its streams as it opens them with GOAWAY ENHANCE_YOUR_CALM (rapid reset), as on the mTLS listener', async () => {
    const session = h2cSession(port, INSIDE);
    await within(new Promise((resolve) => session.once('remoteSettings', resolve)), 5000, 'the sidecar\'s HTTP/2 settings');
    // A call the policy allows, so each stream is forwarded, not refused at once.
    const { goaway } = await floodWithResets(session, { ':method': 'POST', ':path': '/authproxy.test.Echo/Unary', 'content-type': 'application/grpc' });
    assert.equal(goaway, h2.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(await rapidResetCloses(sidecar.adminPort, 'inbound'), 1);
    assert.match(sidecar.stderr(), /"msg":"closed an HTTP\/2 connection whose client reset most of its streams at once \(rapid reset\)","peer":"boundary:cluster"/);
    // A new connection from the same caller is served.
    const c = grpcClient(`127.0.0.1:${port}`);
    clients.push(c);
    assert.equal((await unary(c, 'after')).reply.text, 'after');
  });

  it('sends GOAWAY on an h2c connection when it drains, and exits 0', async () => {
    const [d, dPort] = await startPlaintextSidecar();
    try {
      const session = h2cSession(dPort, INSIDE);
      await within(new Promise((resolve) => session.once('remoteSettings', resolve)), 5000, 'the sidecar\'s HTTP/2 settings');
      const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
      d.proc.kill('SIGTERM');
      assert.equal(await within(goaway, 5000, 'GOAWAY on the plaintext h2c connection'), 0);
      await waitFor(() => session.closed || session.destroyed, 'the connection closed');
      assert.equal(await d.exited(), 0);
    } finally { await d.stop(); }
  });
});
