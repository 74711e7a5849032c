// HTTP/2 on the inbound mTLS port: ALPN picks h2 or http/1.1 on the same port, and an HTTP/2
// request is identified, authorized, audited and forwarded exactly like an HTTP/1.1 one (here to
// an HTTP/1.1 app), with trailers relayed. Real clients: node:http2, curl --http2, TLS sockets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, createSecureServer, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { rm } from 'node:fs/promises';
import { makePki, BILLING_ID, SERVER_ID, type TestPki, type ClientFiles } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, TEST_POLICY, PEER_ROUTES } from '../support/policy-dir.ts';
import { tlsOptions, curl, h2request, httpsGet } from '../support/clients.ts';
import { viaProxy } from '../tokens/support.ts';
import { Pool } from 'undici';
import { startByteRelay } from '../../bench/lib/relay.ts';
import { Agent as HttpAgent } from 'node:http';

describe('HTTP/2 on the inbound listener', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let policies: string;
  const sessions: ClientHttp2Session[] = [];
  const open = (client: ClientFiles): ClientHttp2Session => {
    const s = h2connect(`https://localhost:${sidecar.inboundPort}`, { ...tlsOptions(pki.ca, client), host: '127.0.0.1' });
    sessions.push(s);
    return s;
  };

  before(async () => {
    pki = await makePki();
    app = await startApp({
      handler: (req, res) => {
        if (req.url === '/orders/connection-named') {
          req.resume();
          res.writeHead(200, { connection: 'keep-alive, x-for-this-hop', 'x-for-this-hop': 'secret', 'x-for-the-client': 'ok' });
          res.end('named');
          return true;
        }
        if (req.url !== '/orders/trailers') return false;
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('body then trailers');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end();
        return true;
      },
    });
    policies = await policyDir({ 'orders.yaml': TEST_POLICY });
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  });
  after(async () => {
    for (const s of sessions) s.close();
    await sidecar?.stop();
    await app?.close();
    await pki?.cleanup();
    if (policies) await rm(policies, { recursive: true, force: true });
  });

  it('negotiates h2 or http/1.1 by ALPN on the same port', async () => {
    const negotiated = (protocols: string[]): Promise<string | false | null> => new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ...tlsOptions(pki.ca, pki.clients.billing), ALPNProtocols: protocols }, () => {
        resolve(s.alpnProtocol ?? null); s.end();
      });
      s.on('error', reject);
    });
    assert.equal(await negotiated(['h2', 'http/1.1']), 'h2');
    assert.equal(await negotiated(['http/1.1']), 'http/1.1');
  });

  it('forwards an allowed HTTP/2 request to an HTTP/1.1 app with the verified identity, the body and Host from :authority', async () => {
    const before = app.seen.length;
    const r = await h2request(open(pki.clients.billing), {
      ':method': 'POST', ':path': '/orders/7?x=1', 'content-type': 'text/plain',
      'x-authproxy-principal': 'spiffe://example.org/ns/ops/sa/root', 'x-forwarded-client-cert': 'By=spoofed',
    }, 'seven');
    assert.equal(r.status, 200, r.body);
    const seen = app.seen.slice(before);
    assert.equal(seen.length, 1);
    const h = seen[0]!.headers;
    assert.equal(seen[0]!.method, 'POST');
    assert.equal(seen[0]!.url, '/orders/7?x=1');
    assert.equal(h['x-authproxy-principal'], BILLING_ID, 'the principal comes from the certificate, not the caller');
    assert.match(String(h['x-forwarded-client-cert']), /^Hash=[0-9a-f]{64};URI=spiffe:\/\/example\.org\/ns\/billing\/sa\/api;/);
    assert.equal(h.host, `localhost:${sidecar.inboundPort}`);
    assert.equal(Object.keys(h).some((k) => k.startsWith(':')), false, 'no pseudo-header reaches the app');
  });

  it('refuses an HTTP/2 request the policy denies with 403 forbidden, and the app never sees it', async () => {
    const before = app.seen.length;
    const denied = await h2request(open(pki.clients.shop), { ':method': 'DELETE', ':path': '/orders/7' });
    assert.equal(denied.status, 403);
    assert.equal((JSON.parse(denied.body) as { error: string }).error, 'forbidden');
    const admin = await h2request(open(pki.clients.billing), { ':method': 'GET', ':path': '/orders/..%2Fadmin' });
    assert.equal(admin.status, 400);
    assert.equal((JSON.parse(admin.body) as { error: string }).error, 'bad_path');
    assert.equal(app.seen.length, before);
  });

  // HTTP/1.1's parser refuses such methods; HTTP/2 takes any token, and an app that folds case
  // would run its DELETE handler for a `delete` that a rule denying DELETE did not match.
  it('refuses an HTTP/2 method with lower-case letters with 400 bad_request, and the app never sees it', async () => {
    const before = app.seen.length;
    for (const method of ['delete', 'Delete', 'gEt']) {
      const r = await h2request(open(pki.clients.billing), { ':method': method, ':path': '/orders/7' });
      assert.equal(r.status, 400, method);
      assert.equal((JSON.parse(r.body) as { error: string }).error, 'bad_request', method);
    }
    assert.equal(app.seen.length, before);
    assert.equal((await h2request(open(pki.clients.billing), { ':method': 'DELETE', ':path': '/orders/7' })).status, 200);
  });

  it('drops a response header the app named in its Connection header, over either protocol (RFC 9110 §7.6.1)', async () => {
    const h2 = await h2request(open(pki.clients.billing), { ':method': 'GET', ':path': '/orders/connection-named' });
    const h1 = await httpsGet(sidecar.inboundPort, '/orders/connection-named', pki.ca, pki.clients.billing);
    for (const [r, via] of [[h2, 'h2'], [h1, 'http/1.1']] as const) {
      assert.equal(r.status, 200, via);
      assert.equal(r.headers['x-for-the-client'], 'ok', via);
      assert.equal(r.headers['x-for-this-hop'], undefined, via);
    }
  });

  it('relays the app\'s trailers to an HTTP/2 client', async () => {
    const r = await h2request(open(pki.clients.billing), { ':method': 'GET', ':path': '/orders/trailers' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'body then trailers');
    assert.equal(r.trailers['x-checksum'], 'abc123');
  });

  it('carries a 32 KB header over HTTP/2', async () => {
    const big = 'b'.repeat(32 * 1024);
    const before = app.seen.length;
    const r = await h2request(open(pki.clients.billing), { ':method': 'GET', ':path': '/orders/big', 'x-big': big });
    assert.equal(r.status, 200, r.body);
    assert.equal(app.seen.slice(before)[0]?.headers['x-big'], big);
  });

  it('serves curl --http2 over HTTP/2', async () => {
    const r = await curl(['--http2', '--cacert', pki.ca, '--cert', pki.clients.billing.cert, '--key', pki.clients.billing.key,
      '--resolve', `localhost:${sidecar.inboundPort}:127.0.0.1`, '-w', '\n%{http_version}', `https://localhost:${sidecar.inboundPort}/orders`]);
    assert.equal(r.code, 0, r.stderr);
    const [body, version] = r.stdout.split('\n');
    assert.equal(version, '2');
    assert.equal((JSON.parse(body!) as { headers: Record<string, string> }).headers['x-authproxy-principal'], BILLING_ID);
  });
});

describe('HTTP/2 on the hop to a peer', () => {
  it('reaches an mTLS peer over HTTP/2 (ALPN) although the app spoke HTTP/1.1, presenting the workload certificate, and delivers every concurrent response whole', async () => {
    const pki = await makePki();
    const peerCert = await pki.issue('peer', { spiffeId: 'spiffe://example.org/ns/prod/sa/peer', dnsNames: ['localhost'] });
    // The peer: a plain node:http2 server that prefers h2 like the sidecar's inbound listener, and records what arrived.
    const seen: Array<{ version: string; peer: string | undefined; token: string | undefined }> = [];
    const peer = createSecureServer({ ...tlsOptions(pki.ca, peerCert), requestCert: true, rejectUnauthorized: true, allowHTTP1: true }, (req, res) => {
      const cert = (req.socket as unknown as { getPeerCertificate(): { subjectaltname?: string } }).getPeerCertificate();
      if (req.url === '/echo') {
        let n = 0;
        req.on('data', (d: Buffer) => { n += d.length; });
        req.on('end', () => res.end(`got ${n}`));
        return;
      }
      seen.push({ version: req.httpVersion, peer: cert.subjectaltname, token: req.headers['x-probe'] as string | undefined });
      res.end('ok');
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const peerPort = (peer.address() as AddressInfo).port;
    const routes = await policyDir({ 'routes.yaml': PEER_ROUTES });
    const a = await startSidecar(['--upstream', 'http://127.0.0.1:9', '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', routes, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await viaProxy(a.outboundPort, `http://localhost:${peerPort}/x`, { headers: { 'x-probe': String(i) } });
        assert.equal(r.status, 200, r.body);
      }
      assert.deepEqual(seen.map((s) => s.version), ['2.0', '2.0', '2.0']);
      assert.match(seen[0]!.peer ?? '', new RegExp(SERVER_ID.replace(/[/.]/g, '\\$&')));
      assert.deepEqual(seen.map((s) => s.token), ['0', '1', '2']);

      // 50 concurrent streams with streamed request bodies on the one connection: every
      // response arrives whole (undici's HTTP/2 client lost about one in five here).
      const pool = new Pool(`http://127.0.0.1:${a.outboundPort}`, { connections: 50 });
      try {
        const results = await Promise.all(Array.from({ length: 500 }, async (_, i) => {
          const body = `request ${i} `.repeat(80);
          const r = await pool.request({ path: '/echo', method: 'POST', headers: { host: `localhost:${peerPort}` }, body });
          return { status: r.statusCode, text: await r.body.text(), expected: body.length };
        }));
        assert.deepEqual(results.filter((r) => r.status !== 200 || r.text !== `got ${r.expected}`), []);
      } finally { await pool.close(); }
    } finally {
      await a.stop();
      await new Promise<void>((resolve) => peer.close(() => resolve()));
      await rm(routes, { recursive: true, force: true });
      await pki.cleanup();
    }
  });
});

describe('HPACK between sidecars', () => {
  let pki: TestPki; let app: TestApp; let a: Sidecar; let b: Sidecar;
  let relay: Awaited<ReturnType<typeof startByteRelay>>; let agent: HttpAgent;
  const dirs: string[] = [];
  const big = 'T'.repeat(16 * 1024);
  /** Sends one request through A (to B behind the byte relay) and returns the bytes A sent for it. */
  const send = async (header: string): Promise<number> => {
    const before = relay.bytesUp();
    const r = await viaProxy(a.outboundPort, `http://localhost:${relay.port}/orders/1`, { headers: { [header]: big }, agent });
    assert.equal(r.status, 200, r.body);
    return relay.bytesUp() - before;
  };

  before(async () => {
    pki = await makePki();
    app = await startApp();
    const bCert = await pki.issue('peer', { spiffeId: 'spiffe://example.org/ns/prod/sa/peer', dnsNames: ['localhost'] });
    const bPolicies = await policyDir({ 'orders.yaml': TEST_POLICY.replace('spiffe://example.org/ns/billing/sa/*', SERVER_ID) });
    const aRoutes = await policyDir({ 'routes.yaml': PEER_ROUTES });
    dirs.push(bPolicies, aRoutes);
    const common = ['--ca', pki.ca, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'];
    b = await startSidecar(['--upstream', app.upstream, '--cert', bCert.cert, '--key', bCert.key, ...common, '--policies', bPolicies]);
    relay = await startByteRelay({ host: '127.0.0.1', port: b.inboundPort });
    a = await startSidecar(['--upstream', 'http://127.0.0.1:9', '--cert', pki.server.cert, '--key', pki.server.key, ...common, '--policies', aRoutes]);
    agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
  });

  after(async () => {
    agent.destroy();
    await a.stop(); await relay.close(); await b.stop(); await app.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    await pki.cleanup();
  });

  it('sends a repeated 16 KB header once per connection and then refers to it, except authorization, which is never indexed', async () => {
    /** Bytes A sent to B per request over `n` requests after a warm-up one, with `header` carrying the 16 KB value. */
    const perRequest = async (header: string, n: number): Promise<number> => {
      await send(header);
      let bytes = 0;
      for (let i = 0; i < n; i++) bytes += await send(header);
      return bytes / n;
    };
    const named = await perRequest('x-large-claims', 10);
    assert.ok(named < 2048, `a repeated 16 KB header costs ${named} bytes per request once indexed`);
    const auth = await perRequest('authorization', 10);
    assert.ok(auth > 8192, `authorization is sent literally (Huffman-coded) each time: ${auth} bytes per request`);
    assert.equal(relay.connections(), 1, 'one HTTP/2 connection carried every request');
    assert.equal(app.seen.at(-1)?.headers['x-large-claims'], undefined);
    assert.equal(app.seen.at(-1)?.headers.authorization, big);
  });

  it('keeps the 16 KB header indexed for good: the request id, new on every request, is sent never-indexed and evicts nothing', async () => {
    // Indexed, each request's x-request-id (~80 bytes of table) pushed the oldest entry out of the
    // 64 KiB table: the token, sent again after a few hundred requests (at request 612 here).
    const header = 'x-mesh-claims';
    await send(header);
    const resent: number[] = [];
    for (let i = 1; i <= 1000; i++) if (await send(header) > 8192) resent.push(i);
    assert.deepEqual(resent, [], `the 16 KB value was sent again on requests ${resent.join(', ')}`);
    assert.equal(relay.connections(), 1, 'one HTTP/2 connection carried every request');
    assert.equal(app.seen.at(-1)?.headers['x-mesh-claims'], big);
  });
});
