// The outbound path end to end: the real CLI as the sidecar, the real dev issuer as its own
// process over HTTPS (tls_client_auth with the workload certificate), a recording app as the
// destination, and HTTP_PROXY-style clients (Node's http with absolute-form targets, and curl -x).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { SERVER_ID, type TestPki } from '../support/pki.ts';
import type { TestApp } from '../support/app.ts';
import type { Sidecar } from '../support/sidecar.ts';
import { startOutboundFixture, type OutboundFixture } from './fixture.ts';
import { curl } from '../support/clients.ts';
import { auditLines, waitForAuditLine, type AuditLine } from '../support/audit.ts';
import { startHttpsIssuer, viaProxy, echoed, bearer, type IssuerProcess } from '../tokens/support.ts';

const ROUTES = `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: payments }
spec:
  hosts: ["127.0.0.1"]
  token: { audience: "api://payments", scopes: ["payments.charge"] }
  tls: none
---
apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: loopback }
spec:
  cidrs: ["127.0.0.0/8"]
  hosts: ["localhost"]
`;

const CLIENTS = `clients:
  orders:
    auth: tls_client_auth
    spiffeId: ${SERVER_ID}
    audiences:
      api://payments:
        scopes: [payments.charge]
        roles: [Payments.Writer]
`;

const issuerFor = (pki: TestPki, work: string): Promise<IssuerProcess> => startHttpsIssuer(pki, work, CLIENTS);

describe('outbound path with the real issuer', () => {
  let fixture: OutboundFixture; let app: TestApp; let audit: string;
  let issuer: IssuerProcess; let sidecar: Sidecar;
  const tokensSeen = new Set<string>();

  before(async () => {
    fixture = await startOutboundFixture({
      name: 'outbound', policies: { 'routes.yaml': ROUTES }, issuer: issuerFor,
      sidecarArgs: (f) => ['--audit-log', join(f.work, 'audit.log'), '--max-header-bytes', '16k'],
    });
    ({ app, issuer, sidecar } = fixture);
    audit = join(fixture.work, 'audit.log');
  });
  after(() => fixture?.close());

  const appUrl = (path: string, host = '127.0.0.1'): string => `http://${host}:${new URL(app.upstream).port}${path}`;
  const auditLine = (pred: (l: AuditLine) => boolean): Promise<AuditLine | undefined> => waitForAuditLine(audit, pred);

  it('500 concurrent requests through the outbound listener make one token request, and every request carries that token', async () => {
    assert.equal(issuer.issued(), 0);
    const replies = await Promise.all(Array.from({ length: 500 }, (_, i) => viaProxy(sidecar.outboundPort, appUrl(`/orders/${i}`), {
      headers: { authorization: 'Bearer made-up-by-the-app', 'x-authproxy-principal': 'spiffe://evil/sa/root', 'X-Authproxy-Claims': '{}' },
    })));
    assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
    assert.equal(issuer.issued(), 1, 'exactly one token request reached the issuer');
    const tokens = new Set(replies.map((r) => bearer(echoed(r).headers)));
    assert.equal(tokens.size, 1);
    const token = [...tokens][0]!;
    tokensSeen.add(token);
    const claims = decodeJwt(token);
    assert.equal(claims.aud, 'api://payments');
    assert.equal(claims.client_id, 'orders');
    assert.equal(claims.scope, 'payments.charge');
    for (const r of replies) {
      const h = echoed(r).headers;
      assert.equal(h['x-authproxy-principal'], undefined, 'x-authproxy-* from the app never leave the pod');
      assert.equal(h['x-authproxy-claims'], undefined);
      assert.match(h['x-request-id']!, /^[0-9a-f-]{36}$/);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
    assert.match(metrics, /authproxy_token_cache_total\{event="fetch"\} 1\n/);
    assert.match(metrics, /authproxy_requests_total\{direction="outbound",decision="allow",status="200"\} 500/);
  });

  it('curl -x (absolute-form) and a Host-addressed origin-form request both get the token', async () => {
    const c = await curl(['-x', `http://127.0.0.1:${sidecar.outboundPort}`, appUrl('/via-curl?q=1')]);
    assert.equal(c.code, 0, c.stderr);
    const seen = JSON.parse(c.stdout) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/via-curl?q=1');
    assert.ok(tokensSeen.has(bearer(seen.headers)), 'the cached token, not a new one');
    const o = await viaProxy(sidecar.outboundPort, appUrl('/by-host'), { originForm: true });
    assert.equal(o.status, 200);
    assert.ok(tokensSeen.has(bearer(echoed(o).headers)));
    assert.equal(issuer.issued(), 1);
  });

  it('an unrouted host passes through without a token, with the app\'s own Authorization untouched', async () => {
    const r = await viaProxy(sidecar.outboundPort, appUrl('/unrouted', 'localhost'), { headers: { authorization: 'Basic YXBwOmFwcA==', 'x-authproxy-anything': '1' } });
    assert.equal(r.status, 200);
    const h = echoed(r).headers;
    assert.equal(h.authorization, 'Basic YXBwOmFwcA==');
    assert.equal(h['x-authproxy-anything'], undefined);
    const line = await auditLine((l) => l.path === '/unrouted');
    assert.equal(line?.direction, 'outbound');
    assert.equal(line?.decision, 'allow');
    assert.equal(line?.policy, null);
    assert.match(String(line?.reason), /no OutboundRoute for localhost: passed through without a token/);
  });

  it('a routed request is audited with the route, the audience and the transport, and no query string', async () => {
    await viaProxy(sidecar.outboundPort, appUrl('/audited?secret=1'));
    const line = await auditLine((l) => l.path === '/audited');
    assert.ok(line, 'audited without its query');
    assert.equal(line.policy, 'payments');
    assert.equal(line.tls, 'plaintext');
    assert.equal((line.peer as { address: string }).address, `127.0.0.1:${new URL(app.upstream).port}`);
    assert.match(String(line.reason), /routed by OutboundRoute payments: token for api:\/\/payments with scopes payments.charge/);
  });

  it('x-authproxy-jit with an approval gets a token for that approval only, cached under it', async () => {
    const approval = await issuer.approve('orders', 'Payments.Refunder', 60_000);
    const before = issuer.issued();
    const r1 = await viaProxy(sidecar.outboundPort, appUrl('/refund'), { headers: { 'x-authproxy-jit': approval } });
    assert.equal(r1.status, 200);
    const jitToken = bearer(echoed(r1).headers);
    tokensSeen.add(jitToken);
    const claims = decodeJwt(jitToken);
    assert.equal(claims.approval, approval);
    assert.ok((claims.roles as string[]).includes('Payments.Refunder'));
    assert.equal(echoed(r1).headers['x-authproxy-jit'], undefined, 'the approval header is the sidecar\'s, not the destination\'s');
    const r2 = await viaProxy(sidecar.outboundPort, appUrl('/refund'), { headers: { 'x-authproxy-jit': approval } });
    assert.equal(bearer(echoed(r2).headers), jitToken, 'the same approval reuses its token');
    const plain = await viaProxy(sidecar.outboundPort, appUrl('/plain'));
    assert.notEqual(bearer(echoed(plain).headers), jitToken, 'a request without the approval never gets the JIT token');
    assert.equal(issuer.issued(), before + 1);
  });

  it('an unknown or expired approval is refused with 503 token_unavailable and the request never leaves', async () => {
    const arrivals = app.seen.length;
    const unknown = await viaProxy(sidecar.outboundPort, appUrl('/refund'), { headers: { 'x-authproxy-jit': 'apv_unknown' } });
    assert.equal(unknown.status, 503);
    const body = JSON.parse(unknown.body) as { error: string; message: string };
    assert.equal(body.error, 'token_unavailable');
    assert.match(body.message, /invalid_grant \(approval is unknown\)/);
    const short = await issuer.approve('orders', 'Payments.Refunder', 1000);
    await new Promise((r) => setTimeout(r, 1100));
    const expired = await viaProxy(sidecar.outboundPort, appUrl('/refund'), { headers: { 'x-authproxy-jit': short } });
    assert.equal(expired.status, 503);
    assert.match((JSON.parse(expired.body) as { message: string }).message, /approval expired/);
    assert.equal(app.seen.length, arrivals, 'refused requests never reached the destination');
  });

  it('x-authproxy-jit on a host without a token route is refused with 400', async () => {
    const r = await viaProxy(sidecar.outboundPort, appUrl('/x', 'localhost'), { headers: { 'x-authproxy-jit': 'apv_x' } });
    assert.equal(r.status, 400);
    assert.match(r.body, /no OutboundRoute with a token covers localhost/);
  });

  it('headers over the limit get 431 naming the limit and the flag; the token added by the sidecar does not count', async () => {
    const big = await viaProxy(sidecar.outboundPort, appUrl('/big'), { headers: { 'x-big': 'a'.repeat(17 * 1024) } });
    assert.equal(big.status, 431);
    const body = JSON.parse(big.body) as { error: string; message: string };
    assert.equal(body.error, 'headers_too_large');
    assert.match(body.message, /16384 bytes \(--max-header-bytes\)/);
    const fits = await viaProxy(sidecar.outboundPort, appUrl('/fits'), { headers: { 'x-big': 'a'.repeat(15 * 1024) } });
    assert.equal(fits.status, 200);
    assert.ok(tokensSeen.has(bearer(echoed(fits).headers)));
  });

  /** What the listener answers to a raw request head; what came so far (nothing, for a loop) when it has not answered in time. */
  const rawRequest = (head: string, timeoutMs = 3000): Promise<string> => new Promise((resolve, reject) => {
    const s = connect(sidecar.outboundPort, '127.0.0.1', () => s.write(head));
    let out = '';
    const timer = setTimeout(() => { s.destroy(); resolve(out); }, timeoutMs);
    s.setEncoding('utf8').on('data', (d: string) => { out += d; }).on('end', () => { clearTimeout(timer); resolve(out); }).on('error', reject);
  });
  const get = (target: string, requestId: string): Promise<string> =>
    rawRequest(`GET ${target} HTTP/1.1\r\nHost: x\r\nx-request-id: ${requestId}\r\nConnection: close\r\n\r\n`);
  /** Every audit record of one request, once the writer has had time to write them (a loop would keep writing). */
  const recordsOf = async (requestId: string): Promise<AuditLine[]> => {
    await new Promise((r) => setTimeout(r, 300));
    return (await auditLines(audit)).filter((l) => l.requestId === requestId);
  };

  // Over HTTP/2 the second Host would become the :authority of a hop routed, and given its token, by the first.
  it('a request with two Host lines is refused with 400, audited, and never leaves with the route\'s token', async () => {
    const port = new URL(app.upstream).port;
    const raw = await rawRequest(`GET /two-hosts HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nHost: evil.example\r\nx-request-id: two-hosts\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 400/);
    assert.match(raw, /more than one Host header/);
    assert.deepEqual((await recordsOf('two-hosts')).map((l) => [l.decision, l.code]), [['deny', 'bad_request']]);
  });

  it('CONNECT tunnels are refused with 400 and a message saying to send http:// URLs', async () => {
    const raw = await rawRequest('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 400/);
    assert.match(raw, /send http:\/\/ URLs/);
  });

  it('a request addressed to the outbound listener itself is refused instead of looping', async () => {
    const r = await viaProxy(sidecar.outboundPort, `http://127.0.0.1:${sidecar.outboundPort}/loop`);
    assert.equal(r.status, 400);
    assert.match(r.body, /outbound listener itself/);
  });

  it('the outbound listener under any other spelling of a loopback or local address is refused with 400, audited once', async () => {
    const port = sidecar.outboundPort;
    for (const host of [`127.1:${port}`, `[::ffff:127.0.0.1]:${port}`, `0x7f.1:${port}`, `2130706433:${port}`, `0.0.0.0:${port}`, `localhost:${port}`]) {
      const id = randomUUID();
      const raw = await get(`http://${host}/loop`, id);
      assert.match(raw, /^HTTP\/1\.1 400/, `${host}: ${raw.slice(0, 80) || 'no answer (looping)'}`);
      assert.match(raw, /"bad_request".*outbound listener itself/);
      const records = await recordsOf(id);
      assert.deepEqual(records.map((l) => [l.decision, l.code]), [['deny', 'bad_request']], `${host}: ${records.length} records`);
    }
  });

  it('a request that a port redirect brings back to the listener is refused by its hop marker: 400 after one round, not a loop', async () => {
    // Port R forwards every connection to the outbound listener, as a NAT rule could: the
    // address check cannot see that 127.0.0.1:R is this listener; the marker it sent with does.
    const conns = new Set<Socket>();
    const redirect = createNetServer((c) => {
      const s = connect(sidecar.outboundPort, '127.0.0.1');
      for (const x of [c, s]) { conns.add(x); x.on('error', () => { c.destroy(); s.destroy(); }); }
      c.pipe(s).pipe(c);
    });
    await new Promise<void>((resolve) => redirect.listen(0, '127.0.0.1', resolve));
    try {
      const id = randomUUID();
      const raw = await get(`http://127.0.0.1:${(redirect.address() as AddressInfo).port}/redirected`, id);
      assert.match(raw, /^HTTP\/1\.1 400/, raw.slice(0, 80) || 'no answer (looping)');
      assert.match(raw, /came back to it with the x-authproxy-hop/);
      const records = await recordsOf(id);
      assert.deepEqual(records.map((l) => [l.decision, l.code]), [['allow', null], ['deny', 'bad_request']], `${records.length} records`);
    } finally {
      redirect.close();
      for (const c of conns) c.destroy();
    }
  });

  it('an IPv6 zone ID in the destination is refused with 400 bad_request, and the sidecar keeps serving', async () => {
    // fe80::/10 is outside every boundary here, so the hop would be TLS: before, H2Dispatcher's
    // new URL() threw on the zone and the process died.
    for (const head of ['GET http://[fe80::1%25eth0]:8080/x HTTP/1.1\r\nHost: x\r\n', 'GET /x HTTP/1.1\r\nHost: [fe80::1%eth0]:8080\r\n']) {
      const raw = await rawRequest(`${head}Connection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 400/, raw.slice(0, 80) || 'no answer');
      assert.match(raw, /"bad_request".*zone ID/);
    }
    assert.equal(sidecar.proc.exitCode ?? sidecar.proc.signalCode, null, 'the sidecar is still running');
    assert.equal((await viaProxy(sidecar.outboundPort, appUrl('/after-zone'))).status, 200);
  });

  it('an IP address in another spelling gets its route and token: 127.1, 0x7f.1, [::ffff:127.0.0.1]', async () => {
    for (const host of ['127.1', '0x7f.1', '2130706433', '[::ffff:127.0.0.1]', '[::FFFF:7f00:1]']) {
      const r = await viaProxy(sidecar.outboundPort, appUrl('/spelled', host));
      assert.equal(r.status, 200, host);
      const h = echoed(r).headers;
      assert.equal(decodeJwt(bearer(h)).aud, 'api://payments', `${host}: the route's token`);
      // Sent on every plaintext hop: how a request that comes back is recognised.
      assert.match(h['x-authproxy-hop']!, /^[0-9a-f-]{36}$/);
    }
    const line = await auditLine((l) => l.path === '/spelled');
    assert.equal(line?.policy, 'payments');
    assert.equal((line?.peer as { address: string }).address, `127.1:${new URL(app.upstream).port}`, 'audited as the app named it');
  });

  it('no issued token appears in the sidecar\'s stdout, stderr or audit log, nor in the issuer\'s log', async () => {
    assert.ok(tokensSeen.size >= 2);
    const logs = [sidecar.stdout(), sidecar.stderr(), await readFile(audit, 'utf8'), issuer.stderr()];
    for (const token of tokensSeen) {
      // The signature alone is what makes a token usable: it must not appear anywhere either.
      const signature = token.split('.')[2]!;
      for (const text of logs) {
        assert.ok(!text.includes(token) && !text.includes(signature), 'a token leaked into a log');
      }
    }
  });
});

describe('outbound with unrouted hosts refused', () => {
  let fixture: OutboundFixture; let app: TestApp; let sidecar: Sidecar;
  before(async () => {
    fixture = await startOutboundFixture({
      name: 'outbound', policies: { 'routes.yaml': ROUTES }, issuer: issuerFor,
      sidecarArgs: () => ['--outbound-unrouted', 'deny'],
    });
    ({ app, sidecar } = fixture);
  });
  after(() => fixture?.close());

  it('refuses a host no OutboundRoute names with 403 no_route, and still sends routed requests', async () => {
    const port = new URL(app.upstream).port;
    const denied = await viaProxy(sidecar.outboundPort, `http://localhost:${port}/x`);
    assert.equal(denied.status, 403);
    assert.equal((JSON.parse(denied.body) as { error: string }).error, 'no_route');
    assert.equal(app.seen.length, 0);
    const ok = await viaProxy(sidecar.outboundPort, `http://127.0.0.1:${port}/y`);
    assert.equal(ok.status, 200);
    assert.ok(bearer(echoed(ok).headers).length > 100);
  });
});
