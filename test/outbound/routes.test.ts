// The pieces of the outbound request path that need no network: reading the target the app named,
// picking the route for a host, and building the destination's headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { outboundTarget } from '../../src/outbound/target.ts';
import { RouteTable } from '../../src/outbound/routes.ts';
import { destinationHeaders } from '../../src/outbound/headers.ts';
import { carriageFor } from '../../src/outbound/transport.ts';
import { OutboundTokens } from '../../src/tokens/service.ts';
import { TokenCache } from '../../src/tokens/cache.ts';
import { RequestRefused } from '../../src/errors.ts';
import type { OutboundRouteSpec } from '../../src/policy/types.ts';

function fakeReq(url: string, rawHeaders: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!;
  return { url, rawHeaders, headers } as unknown as IncomingMessage;
}

test('absolute-form targets name the destination; the authority wins over Host and the path passes unchanged', () => {
  const t = outboundTarget(fakeReq('http://Payments.Example.com.:8080/a/../b?x=%2F', ['Host', 'elsewhere']));
  assert.ok(!(t instanceof RequestRefused));
  assert.equal(t.host, 'payments.example.com');
  assert.equal(t.port, 8080);
  assert.equal(t.path, '/a/../b?x=%2F');
  const q = outboundTarget(fakeReq('http://[::1]?x', []));
  assert.ok(!(q instanceof RequestRefused));
  assert.deepEqual([q.host, q.port, q.path], ['::1', null, '/?x']);
});

test('refuses a request with more than one Host line, in either form, whatever their values', () => {
  for (const url of ['/charge', 'http://payments.svc/charge']) {
    for (const hosts of [['Host', 'payments.svc', 'Host', 'evil.example'], ['Host', 'payments.svc', 'host', 'payments.svc']]) {
      const t = outboundTarget(fakeReq(url, hosts));
      assert.ok(t instanceof RequestRefused, `${url} ${hosts.join(' ')}`);
      assert.equal(t.code, 'bad_request');
    }
  }
});

test('origin-form targets take the destination from Host', () => {
  const t = outboundTarget(fakeReq('/charge', ['Host', 'payments.svc:9000']));
  assert.ok(!(t instanceof RequestRefused));
  assert.deepEqual([t.host, t.port, t.path], ['payments.svc', 9000, '/charge']);
});

test('refuses targets it cannot route: no Host, https://, credentials, bad hosts and ports', () => {
  for (const [url, host] of [['/x', null], ['https://a.example/x', null], ['http://user:pw@a.example/', null], ['http://a..b/', null],
    ['http://a.example:0/', null], ['http://a.example:99999/', null], ['http://a_b$.example/', null], ['ftp://a/', null], ['/x', 'bad host']] as const) {
    const t = outboundTarget(fakeReq(url, host === null ? [] : ['Host', host]));
    assert.ok(t instanceof RequestRefused && t.code === 'bad_request', `${url} ${host ?? ''}`);
  }
});

test('an IP literal in any spelling names its address in canonical form, as the resolver would dial it', () => {
  const cases: Array<[string, string | null, string]> = [
    ['http://127.1:8080/x', null, '127.0.0.1'], ['http://0x7f.1/x', null, '127.0.0.1'], ['http://2130706433/x', null, '127.0.0.1'],
    ['http://[0:0:0:0:0:0:0:1]:8080/x', null, '::1'], ['http://[::FFFF:127.0.0.1]/x', null, '127.0.0.1'], ['http://[::ffff:a00:5]/x', null, '10.0.0.5'],
    ['/x', '127.1:8080', '127.0.0.1'], ['/x', '[0:0::1]:9', '::1'], ['http://127.0.0.1./x', null, '127.0.0.1'],
  ];
  for (const [url, host, canonical] of cases) {
    const t = outboundTarget(fakeReq(url, host === null ? [] : ['Host', host]));
    assert.ok(!(t instanceof RequestRefused), `${url} ${host ?? ''}`);
    assert.equal(t.host, canonical, `${url} ${host ?? ''}`);
  }
  const t = outboundTarget(fakeReq('http://127.1:8080/x', []));
  assert.ok(!(t instanceof RequestRefused));
  assert.equal(t.authority, '127.1:8080', 'the destination\'s Host stays as the app wrote it');
});

test('refuses IPv6 zone IDs, unbracketed IPv6 and IP-like hosts that are no address with 400 bad_request', () => {
  for (const [url, host] of [['http://[fe80::1%25eth0]:8080/x', null], ['/x', '[::1%lo]:9'], ['http://[::1%25lo]/', null]] as const) {
    const t = outboundTarget(fakeReq(url, host === null ? [] : ['Host', host]));
    assert.ok(t instanceof RequestRefused && t.code === 'bad_request', `${url} ${host ?? ''}`);
    assert.match(t.message, /zone ID/);
  }
  for (const [url, host] of [['/x', '::1'], ['http://1.2.3.4.5/', null], ['http://foo.123/', null], ['http://[1::2::3]/', null], ['http://256.1.1.1/', null]] as const) {
    const t = outboundTarget(fakeReq(url, host === null ? [] : ['Host', host]));
    assert.ok(t instanceof RequestRefused && t.code === 'bad_request', `${url} ${host ?? ''}`);
  }
});

const route = (name: string, hosts: string[], token: OutboundRouteSpec['token'] = null): OutboundRouteSpec =>
  ({ name, hosts, token, tls: 'mtls', trust: 'auto' });

test('an exact host wins over a glob, and globs are tried in load order', () => {
  const table = new RouteTable([
    route('wide', ['*.svc.cluster.local']),
    route('exact', ['payments.svc.cluster.local']),
    route('deep', ['**.example.com']),
  ], null);
  assert.equal(table.lookup('payments.svc.cluster.local')?.name, 'exact');
  assert.equal(table.lookup('orders.svc.cluster.local')?.name, 'wide');
  assert.equal(table.lookup('a.b.example.com')?.name, 'deep');
  assert.equal(table.lookup('svc.cluster.local'), null);
  assert.equal(table.lookup('elsewhere.org'), null);
});

test('routes with the same audience and scopes in any order share one token cache key', () => {
  const tokens = new OutboundTokens(new TokenCache(() => Promise.reject(new Error('unused')), { max: 10, refreshFraction: 0.8, clockSkewMs: 0 }), 'https://issuer');
  const token = (scopes: string[]): OutboundRouteSpec['token'] => ({ audience: 'api://p', scopes, header: 'authorization', scheme: 'Bearer' });
  const table = new RouteTable([route('a', ['a.example'], token(['w', 'r', 'w'])), route('b', ['b.example'], token(['r', 'w'])),
    route('c', ['c.example'], token(['r']))], tokens);
  const ka = table.lookup('a.example')!.token!.target!;
  assert.equal(ka.key, table.lookup('b.example')!.token!.target!.key);
  assert.deepEqual(ka.request.scopes, ['r', 'w']);
  assert.notEqual(ka.key, table.lookup('c.example')!.token!.target!.key);
  assert.notEqual(tokens.withApproval(ka, 'apv_1').key, ka.key);
  assert.equal(tokens.withApproval(ka, 'apv_1').request.approval, 'apv_1');
});

test('destination headers drop hop-by-hop and x-authproxy-* headers and replace the token header the route sets', () => {
  const req = fakeReq('http://a.example/x', ['Host', 'a.example', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'Proxy-Authorization', 'Basic x',
    'X-Authproxy-Jit', 'apv_1', 'x-authproxy-principal', 'spoof', 'X-Api-Key', 'app-key', 'Accept', '*/*', 'X-Request-Id', 'r1', 'grpc-timeout', '5S']);
  const h = destinationHeaders(req, 'a.example:80', 'x-api-key', 'tok', 'rid', true);
  const pairs: string[] = [];
  for (let i = 0; i < h.headers.length; i += 2) pairs.push(`${h.headers[i]}: ${h.headers[i + 1]}`);
  assert.deepEqual(pairs, ['Accept: */*', 'host: a.example:80', 'x-api-key: tok', 'x-request-id: rid', 'grpc-timeout: ', 'x-authproxy-deadline: ']);
  assert.equal(h.headers[h.grpcTimeoutValueAt - 1], 'grpc-timeout');
  assert.equal(h.headers[h.deadlineValueAt - 1], 'x-authproxy-deadline');
  const external = destinationHeaders(req, 'a.example', null, null, 'rid', false);
  assert.ok(external.headers.includes('X-Api-Key'), 'without a route token the app\'s headers pass');
  assert.ok(!external.headers.includes('x-authproxy-deadline'), 'only a peer sidecar is sent the sidecar\'s own deadline header');
});

test('the carriage follows the route and, for auto and unrouted hosts, the trust boundary', () => {
  const inside = 'cluster'; const outside = null;
  assert.deepEqual(carriageFor('mtls', null, inside), { transport: 'mtls', trust: 'bundle' });
  assert.deepEqual(carriageFor('tls', null, inside), { transport: 'tls', trust: 'both' });
  assert.deepEqual(carriageFor('none', null, inside), { transport: 'plaintext', trust: 'bundle' });
  assert.equal(carriageFor('auto', null, inside).transport, 'plaintext');
  assert.equal(carriageFor(null, null, inside).transport, 'plaintext');
  assert.deepEqual(carriageFor('auto', null, outside), { transport: 'tls', trust: 'both' }, 'outside: TLS although the app spoke HTTP');
  assert.deepEqual(carriageFor(null, null, outside), { transport: 'tls', trust: 'both' }, 'unrouted outside: TLS too');
  assert.deepEqual(carriageFor('tls', 'system', outside), { transport: 'tls', trust: 'system' });
  assert.deepEqual(carriageFor('mtls', 'system', inside), { transport: 'mtls', trust: 'system' });
  assert.deepEqual(carriageFor('tls', 'bundle', outside), { transport: 'tls', trust: 'bundle' });
  assert.equal(carriageFor('tls', 'bundle', outside), carriageFor('tls', 'bundle', inside), 'carriages are shared values (agent keys)');
});

test('the TLS agents are replaced when the workload certificate rotates, the plaintext agent is kept', async () => {
  const { makePki } = await import('../support/pki.ts');
  const { loadTlsMaterial } = await import('../../src/identity/material.ts');
  const { buildConfig } = await import('../../src/config/config.ts');
  const { OutboundAgents } = await import('../../src/outbound/agents.ts');
  const pki = await makePki();
  try {
    let m = await loadTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: [pki.ca] });
    const { emptyPolicySet } = await import('../../src/policy/set.ts');
    const agents = new OutboundAgents(buildConfig([{ upstream: 'http://127.0.0.1:1' }], '/tmp'), () => m, emptyPolicySet);
    const c = { plaintext: carriageFor('none', null, null), tls: carriageFor('tls', null, null), mtls: carriageFor('mtls', null, null) };
    const [plain, tls, mtls] = [agents.for(c.plaintext), agents.for(c.tls), agents.for(c.mtls)];
    assert.equal(agents.for(c.mtls), mtls, 'reused while the certificate is unchanged');
    m = await loadTlsMaterial({ cert: pki.clients.billing.cert, key: pki.clients.billing.key, ca: [pki.ca] });
    assert.notEqual(agents.for(c.mtls), mtls);
    assert.notEqual(agents.for(c.tls), tls);
    assert.equal(agents.for(c.plaintext), plain);
    await agents.close();
  } finally {
    await pki.cleanup();
  }
});
