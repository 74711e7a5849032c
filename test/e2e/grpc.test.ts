// gRPC end to end with @grpc/grpc-js on both sides: every call kind (unary, server streaming,
// client streaming, bidi) passes the inbound listener (TLS + ALPN h2 → policy → h2c app) and the
// outbound path (app's h2c → sidecar A → mTLS HTTP/2 → sidecar B → h2c app). Refusals reach the
// gRPC client as gRPC statuses it can read, and a refused call never reaches the server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, SERVER_ID, BILLING_ID, type TestPki, type ClientFiles } from '../support/pki.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, PEER_ROUTES } from '../support/policy-dir.ts';
import { startGrpcServer, grpcClient, unary, serverStream, clientStream, bidiPingPong, grpc, STATUS_DETAILS, type GrpcServer, type EchoClient } from '../support/grpc.ts';

const PAYMENTS_ID = 'spiffe://example.org/ns/prod/sa/payments';
const SHOP_ID = 'spiffe://example.org/ns/shop/sa/web';

const B_POLICY = `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: echo }
spec:
  rules:
    - name: callers-use-echo
      action: allow
      from: [{ principals: ["${SERVER_ID}", "${BILLING_ID}"] }]
      to: [{ methods: [POST], paths: ["/authproxy.test.Echo/*"] }]
    - name: shop-needs-a-token
      action: allow
      from: [{ principals: ["${SHOP_ID}"], token: { roles: [Echo.User] } }]
      to: [{ paths: ["/authproxy.test.Echo/Unary"] }]
`;

describe('gRPC through the sidecar', () => {
  let pki: TestPki; let app: GrpcServer; let a: Sidecar; let b: Sidecar; let bCert: ClientFiles;
  const dirs: string[] = [];
  const clients: EchoClient[] = [];
  let bPolicies: string;
  /** A gRPC client with `who`'s certificate for the inbound port of a B-like sidecar. */
  const tlsClient = (port: number, who: ClientFiles): EchoClient => {
    const c = grpcClient(`127.0.0.1:${port}`, { tls: { ca: readFileSync(pki.ca), cert: readFileSync(who.cert), key: readFileSync(who.key), servername: 'localhost' } });
    clients.push(c);
    return c;
  };
  const toB = (who: ClientFiles): EchoClient => tlsClient(b.inboundPort, who);
  /** Run flags of sidecar B (B's certificate and policies) in front of `upstream`. */
  const bArgs = (upstream: string, ...extra: string[]): string[] => ['--upstream', upstream, '--cert', bCert.cert, '--key', bCert.key, '--ca', pki.ca,
    '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--policies', bPolicies, ...extra];
  const viaA = (): EchoClient => {
    // The app's client dials its sidecar's outbound listener in cleartext and names the service in :authority.
    const c = grpcClient(`127.0.0.1:${a.outboundPort}`, { authority: `localhost:${b.inboundPort}` });
    clients.push(c);
    return c;
  };

  before(async () => {
    pki = await makePki();
    bCert = await pki.issue('payments', { spiffeId: PAYMENTS_ID, dnsNames: ['localhost'] });
    app = await startGrpcServer();
    bPolicies = await policyDir({ 'echo.yaml': B_POLICY });
    const aPolicies = await policyDir({ 'routes.yaml': PEER_ROUTES });
    dirs.push(aPolicies, bPolicies);
    [a, b] = await Promise.all([
      startSidecar(['--upstream', 'http://127.0.0.1:9', '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
        '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--policies', aPolicies]),
      startSidecar(bArgs(`h2c://127.0.0.1:${app.port}`)),
    ]);
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await app?.close();
    await pki?.cleanup();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('passes unary, server-streaming, client-streaming and bidi calls inbound, with identity metadata and trailers', async () => {
    const c = toB(pki.clients.billing);
    const u = await unary(c, 'hello', { 'x-authproxy-principal': 'spiffe://example.org/ns/ops/sa/root' });
    assert.equal(u.reply.text, 'hello');
    assert.equal(u.reply.metadata['x-authproxy-principal'], BILLING_ID, 'the principal comes from the certificate');
    assert.match(u.reply.metadata['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/example\.org\/ns\/billing\/sa\/api/);
    assert.deepEqual(u.trailers['x-echo-trailer'], 'done');

    const s = await serverStream(c, 'item', 5);
    assert.deepEqual(s.replies.map((r) => r.text), ['item#0', 'item#1', 'item#2', 'item#3', 'item#4']);
    assert.equal(s.trailers['x-echo-trailer'], 'done');

    const cs = await clientStream(c, ['a', 'b', 'c']);
    assert.equal(cs.reply.text, 'a,b,c');
    assert.equal(cs.trailers['x-echo-trailer'], 'done');

    const bidi = await bidiPingPong(c, ['one', 'two', 'three']);
    assert.deepEqual(bidi.replies, ['ONE', 'TWO', 'THREE']);
    assert.equal(bidi.trailers['x-echo-trailer'], 'done');
  });

  it('answers a denied call with PERMISSION_DENIED, not an HTTP error, and the server never sees it', async () => {
    const before = app.calls();
    await assert.rejects(unary(toB(pki.clients.dnsOnly), 'let me in'), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.PERMISSION_DENIED);
      assert.match(e.details, /^forbidden: /);
      assert.equal(e.metadata.get('x-authproxy-error')[0], 'forbidden');
      return true;
    });
    await assert.rejects(bidiPingPong(toB(pki.clients.dnsOnly), ['x']), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
    assert.equal(app.calls(), before);
  });

  it('answers a call whose rule needs a token it lacks with UNAUTHENTICATED', async () => {
    const before = app.calls();
    await assert.rejects(unary(toB(pki.clients.shop), 'no token'), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.UNAUTHENTICATED);
      assert.match(e.details, /^invalid_token: /);
      return true;
    });
    assert.equal(app.calls(), before);
  });

  it('relays the server\'s own error status and its metadata unchanged, binary error details included', async () => {
    await assert.rejects(unary(toB(pki.clients.billing), `fail:${grpc.status.NOT_FOUND}`), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.NOT_FOUND);
      assert.equal(e.details, 'failed on purpose');
      assert.equal(e.metadata.get('x-failure')[0], 'on purpose');
      assert.deepEqual(e.metadata.get('grpc-status-details-bin')[0], STATUS_DETAILS, 'binary error details arrive intact');
      return true;
    });
  });

  it('answers UNAVAILABLE when the gRPC app is down', async () => {
    const down = await startSidecar(bArgs('h2c://127.0.0.1:9'));
    try {
      await assert.rejects(unary(tlsClient(down.inboundPort, pki.clients.billing), 'anyone there'), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.UNAVAILABLE);
        assert.match(e.details, /^upstream_unavailable: /);
        return true;
      });
    } finally { await down.stop(); }
  });

  it('passes every call kind to a gRPC app listening on a Unix socket (h2c+unix: upstream)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-grpc-'));
    const socketApp = await startGrpcServer(`unix:${join(dir, 'grpc.sock')}`);
    const sidecar = await startSidecar(bArgs(`h2c+${socketApp.address}`));
    try {
      const c = tlsClient(sidecar.inboundPort, pki.clients.billing);
      const u = await unary(c, 'over a socket');
      assert.equal(u.reply.text, 'over a socket');
      assert.equal(u.reply.metadata['x-authproxy-principal'], BILLING_ID);
      assert.equal(u.trailers['x-echo-trailer'], 'done');
      assert.deepEqual((await serverStream(c, 's', 3)).replies.map((r) => r.text), ['s#0', 's#1', 's#2']);
      assert.equal((await clientStream(c, ['x', 'y'])).reply.text, 'x,y');
      assert.deepEqual((await bidiPingPong(c, ['ping', 'pong'])).replies, ['PING', 'PONG']);
      assert.equal(socketApp.calls(), 4, 'all four calls reached the app through its socket');
      await assert.rejects(unary(tlsClient(sidecar.inboundPort, pki.clients.dnsOnly), 'denied'), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
      assert.equal(socketApp.calls(), 4, 'the denied call never reached the app');
    } finally {
      await sidecar.stop();
      await socketApp.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers DEADLINE_EXCEEDED itself when the gRPC app outlives the request deadline', async () => {
    const slow = await startSidecar(bArgs(`h2c://127.0.0.1:${app.port}`, '--request-timeout', '300ms'));
    try {
      // The client's own deadline is 10 s: the status below can only come from the sidecar.
      await assert.rejects(unary(tlsClient(slow.inboundPort, pki.clients.billing), 'sleep:3000'), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED);
        assert.match(e.details, /^upstream_timeout: /);
        return true;
      });
    } finally { await slow.stop(); }
  });

  it('carries every call kind from the app through the outbound listener to the peer sidecar and its gRPC app', async () => {
    const c = viaA();
    const u = await unary(c, 'outbound');
    assert.equal(u.reply.text, 'outbound');
    assert.equal(u.reply.metadata['x-authproxy-principal'], SERVER_ID, 'B saw A\'s workload certificate');
    assert.equal(u.trailers['x-echo-trailer'], 'done');
    assert.deepEqual((await serverStream(c, 's', 3)).replies.map((r) => r.text), ['s#0', 's#1', 's#2']);
    assert.equal((await clientStream(c, ['x', 'y'])).reply.text, 'x,y');
    const bidi = await bidiPingPong(c, ['ping', 'pong']);
    assert.deepEqual(bidi.replies, ['PING', 'PONG']);
    assert.equal(bidi.trailers['x-echo-trailer'], 'done');
    // The app's own failure, trailers-only, across both sidecars with its binary details.
    await assert.rejects(unary(c, `fail:${grpc.status.NOT_FOUND}`), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.NOT_FOUND);
      assert.deepEqual(e.metadata.get('grpc-status-details-bin')[0], STATUS_DETAILS);
      return true;
    });
  });
});
