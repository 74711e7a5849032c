// Sidecar to sidecar: the app behind A calls B's service through A's outbound listener; A fetches
// a (32 KB, padded) token from the real dev issuer and sends it over mTLS to B's inbound listener,
// which validates it against the issuer's JWKS and authorizes with roles and JIT rules. Forged and
// misdirected tokens sent straight to B are refused. Nobody's logs ever contain a token.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, decodeJwt, base64url } from 'jose';
import { request } from 'undici';
import { makePki, SERVER_ID, BILLING_ID, type TestPki, type ClientFiles } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir } from '../support/policy-dir.ts';
import { httpsGet } from '../support/clients.ts';
import { waitForAuditLine, type AuditLine } from '../support/audit.ts';
import { startByteRelay } from '../../bench/lib/relay.ts';
import { Agent as HttpAgent } from 'node:http';
import { startIssuer, type RunningIssuer } from '../../src/issuer/server.ts';
import { clientAssertion, postToken } from '../issuer/helpers.ts';
import { startIssuerProcess, viaProxy, echoed, bearer, type IssuerProcess } from '../tokens/support.ts';
import { connect } from 'node:net';
import { once } from 'node:events';
import { Received, acceptFor, newKey, textFrame } from '../support/raw-websocket.ts';

const PAYMENTS_ID = 'spiffe://example.org/ns/prod/sa/payments';

const A_ROUTES = `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: payments }
spec:
  hosts: ["localhost"]
  token: { audience: "api://payments" }
  tls: mtls
`;

const B_POLICY = `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: payments }
spec:
  rules:
    - name: writers-charge
      action: allow
      from: [{ principals: ["${SERVER_ID}", "${BILLING_ID}"], token: { roles: [Payments.Writer] } }]
      to: [{ paths: ["/charge", "/charge/**"] }]
    - name: writers-echo-token
      action: allow
      forwardToken: true
      from: [{ principals: ["${SERVER_ID}"], token: { roles: [Payments.Writer] } }]
      to: [{ paths: ["/echo-token"] }]
    - name: admin-just-in-time
      action: allow
      from: [{ principals: ["${SERVER_ID}"], token: { roles: [Payments.Admin], jit: { maxAge: 1m } } }]
      to: [{ paths: ["/admin/**"] }]
`;

describe('sidecar to sidecar with tokens', () => {
  let pki: TestPki; let appA: TestApp; let appB: TestApp; let work: string;
  let issuer: IssuerProcess; let foreign: RunningIssuer; let a: Sidecar; let b: Sidecar; let bCert: ClientFiles;
  const dirs: string[] = [];
  const tokens = new Set<string>();

  before(async () => {
    pki = await makePki();
    bCert = await pki.issue('payments', { spiffeId: PAYMENTS_ID, dnsNames: ['localhost'] });
    appA = await startApp(); appB = await startApp();
    work = await mkdtemp(join(tmpdir(), 'authproxy-mesh-'));
    const clients = { clients: { orders: { auth: 'private_key_jwt' as const, certificate: pki.server.cert, audiences: {
      'api://payments': { roles: ['Payments.Writer'] }, 'api://other': { roles: ['Payments.Writer'] },
    } } } };
    await writeFile(join(work, 'clients.json'), JSON.stringify(clients));
    issuer = await startIssuerProcess(['--clients', join(work, 'clients.json'), '--pad-tokens', '32k']);
    foreign = await startIssuer({ listen: '127.0.0.1:0', clients, quiet: true });
    const aPolicies = await policyDir({ 'routes.yaml': A_ROUTES });
    const bPolicies = await policyDir({ 'payments.yaml': B_POLICY });
    dirs.push(aPolicies, bPolicies);
    // The issuer as operators may well write it, with a trailing slash its own identifier lacks:
    // A's assertions and B's `iss` check both use the identifier the discovered metadata names.
    const common = ['--ca', pki.ca, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--issuer', `${issuer.url}/`];
    [a, b] = await Promise.all([
      startSidecar(['--upstream', appA.upstream, '--cert', pki.server.cert, '--key', pki.server.key, ...common, '--policies', aPolicies,
        '--client-id', 'orders', '--client-auth', 'private_key_jwt', '--audit-log', join(work, 'a-audit.log')]),
      startSidecar(['--upstream', appB.upstream, '--cert', bCert.cert, '--key', bCert.key, ...common, '--policies', bPolicies,
        '--audience', 'api://payments', '--clock-skew', '1s', '--client-auth', 'private_key_jwt', '--audit-log', join(work, 'b-audit.log')]),
    ]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await issuer?.stop();
    await foreign?.close();
    await appA?.close(); await appB?.close();
    await pki?.cleanup();
    for (const d of [...dirs, work]) await rm(d, { recursive: true, force: true });
  });

  const toB = (path: string, headers?: Record<string, string>) => viaProxy(a.outboundPort, `http://localhost:${b.inboundPort}${path}`, headers ? { headers } : {});
  const direct = (token: string | null, path = '/charge') =>
    httpsGet(b.inboundPort, path, pki.ca, pki.clients.billing, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
  const bAuditLine = (pred: (l: AuditLine) => boolean): Promise<AuditLine | undefined> => waitForAuditLine(join(work, 'b-audit.log'), pred);

  /** A real token from the real issuer, as client orders, for an audience. */
  const issued = async (audience: string, extra: Record<string, string> = {}): Promise<string> => {
    const res = await postToken(`${issuer.url}/token`, { ...await clientAssertion('orders', await readFile(pki.server.key, 'utf8'), issuer.url), resource: audience, ...extra });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const t = res.body.access_token as string;
    tokens.add(t);
    return t;
  };

  it('a 32 KB token passes the outbound hop of A and the inbound hop of B over mTLS', async () => {
    const r = await toB('/echo-token');
    assert.equal(r.status, 200, r.body);
    const h = echoed(r).headers;
    const token = bearer(h);
    tokens.add(token);
    assert.ok(token.length >= 32 * 1024 - 4, `token is ${token.length} bytes`);
    assert.equal(h['x-authproxy-principal'], SERVER_ID, 'B saw A\'s workload certificate');
    const claims = JSON.parse(h['x-authproxy-claims']!) as Record<string, unknown>;
    assert.deepEqual(claims.roles, ['Payments.Writer']);
    assert.equal(claims.aud, 'api://payments');
    assert.equal(claims.client_id, 'orders');
    assert.equal(claims.pad, undefined, 'only the standard claims reach the app');
  });

  it('B\'s app gets the verified claims and not the raw token unless the rule forwards it', async () => {
    const r = await toB('/charge/1');
    assert.equal(r.status, 200, r.body);
    const h = echoed(r).headers;
    assert.equal(h.authorization, undefined);
    assert.deepEqual((JSON.parse(h['x-authproxy-claims']!) as { roles: string[] }).roles, ['Payments.Writer']);
    const line = await bAuditLine((l) => l.path === '/charge/1');
    assert.equal(line?.rule, 'writers-charge');
  });

  it('refuses forged and misdirected tokens with 401 invalid_token, and the app never sees them', async () => {
    const good = await issued('api://payments');
    assert.equal((await direct(good)).status, 200, 'control: a real token for B\'s audience is accepted');
    const arrivals = appB.seen.length;
    const payload = decodeJwt(good);
    const b64 = (o: object): string => base64url.encode(JSON.stringify(o));

    const jwks = await (await request(`${issuer.url}/jwks`)).body.json() as { keys: Array<Record<string, unknown>> };
    const publicJwk = jwks.keys[0]!;
    const { createPublicKey } = await import('node:crypto');
    const publicPem = createPublicKey({ key: publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    const rogue = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const now = Math.floor(Date.now() / 1000);

    const approval = await issuer.approve('orders', 'Payments.Writer', 2000, 'api://payments');
    const shortLived = await issued('api://payments', { approval });
    const foreignRes = await postToken(`${foreign.url}/token`, { ...await clientAssertion('orders', await readFile(pki.server.key, 'utf8'), foreign.url), resource: 'api://payments' });
    const foreignToken = foreignRes.body.access_token as string;

    const attacks: Array<[string, string | null, RegExp]> = [
      ['no token', null, /requires a valid bearer token/],
      ['alg none', `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(payload)}.`, /ERR_JOSE_ALG_NOT_ALLOWED/],
      ['HS256 signed with the issuer\'s public key (PEM)', await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: publicJwk.kid as string }).sign(Buffer.from(publicPem)), /ERR_JOSE_ALG_NOT_ALLOWED/],
      ['HS256 signed with the issuer\'s public JWK', await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: publicJwk.kid as string }).sign(Buffer.from(JSON.stringify(publicJwk))), /ERR_JOSE_ALG_NOT_ALLOWED/],
      ['wrong audience', await issued('api://other'), /aud/],
      ['unknown kid', await new SignJWT({ ...payload, iat: now, exp: now + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'rogue-key' }).sign(rogue), /ERR_JWKS_NO_MATCHING_KEY/],
      ['right kid, wrong key', await new SignJWT({ ...payload, iat: now, exp: now + 60 }).setProtectedHeader({ alg: 'ES256', kid: publicJwk.kid as string }).sign(rogue), /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/],
      ['foreign issuer', foreignToken, /ERR_JWKS_NO_MATCHING_KEY/],
      ['not a JWT', 'not-a-token', /ERR_JWS_INVALID|ERR_JWT_INVALID/],
    ];
    tokens.add(foreignToken);
    for (const [name, token, why] of attacks) {
      const r = await direct(token);
      assert.equal(r.status, 401, `${name}: ${r.body}`);
      assert.equal((JSON.parse(r.body) as { error: string }).error, 'invalid_token', name);
      const line = await bAuditLine((l) => l.requestId === r.headers['x-request-id']);
      assert.match(String(line?.reason), why, `${name}: audit reason ${String(line?.reason)}`);
    }
    // Expired: the approval-bound token lives at most 2 s; wait out its expiry and B's 1 s leeway.
    const exp = decodeJwt(shortLived).exp! * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, exp + 1100 - Date.now())));
    const expired = await direct(shortLived);
    assert.equal(expired.status, 401);
    assert.match(String((await bAuditLine((l) => l.requestId === expired.headers['x-request-id']))?.reason), /ERR_JWT_EXPIRED/);
    assert.equal(appB.seen.length, arrivals, 'no refused request reached the app');
  });

  it('a JIT rule is satisfied only by a token from a fresh, short approval', async () => {
    const none = await toB('/admin/rotate');
    assert.equal(none.status, 401, 'without an approval the token lacks the role');
    const long = await issuer.approve('orders', 'Payments.Admin', 10 * 60_000, 'api://payments');
    const tooLong = await toB('/admin/rotate', { 'x-authproxy-jit': long });
    assert.equal(tooLong.status, 401, 'a token living longer than maxAge is not an elevation');
    const fresh = await issuer.approve('orders', 'Payments.Admin', 50_000, 'api://payments');
    const ok = await toB('/admin/rotate', { 'x-authproxy-jit': fresh });
    assert.equal(ok.status, 200, ok.body);
    const claims = JSON.parse(echoed(ok).headers['x-authproxy-claims']!) as { roles: string[]; approval: string };
    assert.ok(claims.roles.includes('Payments.Admin'));
    assert.equal(claims.approval, fresh);
    const expiring = await issuer.approve('orders', 'Payments.Admin', 1000, 'api://payments');
    await new Promise((r) => setTimeout(r, 1100));
    const expired = await toB('/admin/rotate', { 'x-authproxy-jit': expiring });
    assert.equal(expired.status, 503, 'an expired approval yields no token, so the request never leaves A');
    assert.equal((JSON.parse(expired.body) as { error: string }).error, 'token_unavailable');
  });

  it('with the token in another header (route header on A, --token-header on B) a 32 KB token crosses the warm HTTP/2 hop once per connection', async () => {
    const routes = await policyDir({ 'routes.yaml': A_ROUTES.replace('token: { audience: "api://payments" }', 'token: { audience: "api://payments", header: "x-mesh-token", scheme: "" }') });
    dirs.push(routes);
    const bPolicies = await policyDir({ 'payments.yaml': B_POLICY });
    dirs.push(bPolicies);
    const common = ['--ca', pki.ca, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--issuer', issuer.url];
    const b2 = await startSidecar(['--upstream', appB.upstream, '--cert', bCert.cert, '--key', bCert.key, ...common, '--policies', bPolicies,
      '--audience', 'api://payments', '--client-auth', 'private_key_jwt', '--token-header', 'x-mesh-token']);
    const relay = await startByteRelay({ host: '127.0.0.1', port: b2.inboundPort });
    const a2 = await startSidecar(['--upstream', appA.upstream, '--cert', pki.server.cert, '--key', pki.server.key, ...common, '--policies', routes,
      '--client-id', 'orders', '--client-auth', 'private_key_jwt']);
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const send = async (): Promise<Record<string, string>> => {
        const r = await viaProxy(a2.outboundPort, `http://localhost:${relay.port}/charge/1`, { agent });
        assert.equal(r.status, 200, r.body);
        return echoed(r).headers;
      };
      const first = await send();
      assert.deepEqual((JSON.parse(first['x-authproxy-claims']!) as { roles: string[] }).roles, ['Payments.Writer'], 'B verified the token from x-mesh-token');
      assert.equal(first['x-mesh-token'], undefined, 'the token header is consumed, like authorization');
      const before = relay.bytesUp();
      for (let i = 0; i < 10; i++) await send();
      const perRequest = (relay.bytesUp() - before) / 10;
      assert.ok(perRequest < 4096, `a 32 KB token costs ${perRequest} bytes per request on the warm hop`);
      assert.equal(relay.connections(), 1);
      for (const s of [a2, b2]) for (const text of [s.stdout(), s.stderr()]) assert.doesNotMatch(text, /eyJ[\w-]{20,}\.[\w-]{20,}/, 'no token in the logs');
    } finally {
      agent.destroy();
      await a2.stop(); await relay.close(); await b2.stop();
    }
  });

  // A's outbound upgrade offers only http/1.1 by ALPN, so B's inbound listener (which prefers h2)
  // takes it as an HTTP/1.1 Upgrade and decides on it with its own policy and token check.
  it('a WebSocket from A\'s app reaches B\'s app through both sidecars, over mTLS with the 32 KB token, which B verifies', async () => {
    const arrivals = appB.seen.length;
    const socket = connect(a.outboundPort, '127.0.0.1');
    await once(socket, 'connect');
    const conn = new Received(socket);
    const key = newKey();
    socket.write(`GET http://localhost:${b.inboundPort}/charge/ws HTTP/1.1\r\nHost: localhost:${b.inboundPort}\r\nUpgrade: websocket\r\n`
      + `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nx-request-id: mesh-ws\r\n\r\n`);
    try {
      const answer = await conn.head();
      assert.equal(answer.status, 101, answer.raw);
      assert.equal(answer.headers['sec-websocket-accept'], acceptFor(key));
      socket.write(textFrame('over two sidecars', true));
      assert.equal(await conn.frame(), 'echo: over two sidecars');
    } finally { socket.destroy(); }
    const seen = appB.seen.slice(arrivals).find((r) => r.method === 'WS');
    assert.equal(seen?.url, '/charge/ws');
    assert.equal(seen?.headers['x-authproxy-principal'], SERVER_ID, 'B saw A\'s workload certificate');
    assert.deepEqual((JSON.parse(String(seen?.headers['x-authproxy-claims'])) as { roles: string[] }).roles, ['Payments.Writer']);
    const line = await bAuditLine((l) => l.requestId === 'mesh-ws');
    assert.equal(line?.rule, 'writers-charge');
    assert.equal(line?.decision, 'allow');
  });

  it('no token appears in either sidecar\'s stdout, stderr or audit log, nor in the issuer\'s log', async () => {
    const logs = [a.stdout(), a.stderr(), b.stdout(), b.stderr(), issuer.stderr(),
      await readFile(join(work, 'a-audit.log'), 'utf8'), await readFile(join(work, 'b-audit.log'), 'utf8')];
    assert.ok(tokens.size >= 4);
    for (const t of tokens) {
      const signature = t.split('.')[2]!;
      for (const text of logs) assert.ok(!text.includes(signature), 'a token signature leaked into a log');
    }
  });
});
