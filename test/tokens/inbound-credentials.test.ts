// The token header while token rules are loaded (docs/tokens.md §5): the sidecar reads one
// credential from it in RFC 9110's grammar (the scheme in any case, then spaces or tabs), and the
// app never gets a raw token the sidecar did not verify: every line of the header is removed, more
// than one line is refused, and a forwardToken rule passes only the one token that was verified.
// Real sidecar processes, real clients (Node https, raw TLS, curl over HTTP/2, ws, node:http2) and
// tokens from the real dev issuer.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import { decodeJwt, base64url } from 'jose';
import WebSocket from 'ws';
import { makePki, BILLING_ID, type TestPki } from '../support/pki.ts';
import { startApp, type Seen, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir } from '../support/policy-dir.ts';
import { httpsGet, rawTls, statusOf, curl, tlsOptions } from '../support/clients.ts';
import { waitForAuditLine } from '../support/audit.ts';
import { startIssuer, type RunningIssuer } from '../../src/issuer/server.ts';
import { clientAssertion, postToken } from '../issuer/helpers.ts';

const AUDIENCE = 'api://orders';
const POLICY = `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: orders }
spec:
  rules:
    - name: billing-reads
      action: allow
      from: [{ principals: ["${BILLING_ID}"] }]
      to: [{ paths: ["/orders", "/orders/*", "/ws"] }]
    - name: admin-needs-token
      action: allow
      from: [{ principals: ["${BILLING_ID}"], token: { roles: [Orders.Admin] } }]
      to: [{ paths: ["/admin/**"] }]
    - name: echo-verified-token
      action: allow
      forwardToken: true
      from: [{ principals: ["${BILLING_ID}"], token: { roles: [Orders.Admin] } }]
      to: [{ paths: ["/echo-token"] }]
    - name: forward-without-token-rule
      action: allow
      forwardToken: true
      from: [{ principals: ["${BILLING_ID}"] }]
      to: [{ paths: ["/forward"] }]
`;

/** The values of every line of `name` the app received (any case). */
function lines(seen: Seen | undefined, name: string): string[] {
  const raw = seen?.rawHeaders ?? [];
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

describe('the inbound token header while token rules are loaded', () => {
  let pki: TestPki; let app: TestApp; let issuer: RunningIssuer; let work: string; let policies: string;
  let sidecar: Sidecar; let custom: Sidecar;
  /** A token the issuer signed, with the role the token rules ask for; and the same claims unsigned. */
  let valid: string; let forged: string;

  before(async () => {
    pki = await makePki();
    app = await startApp();
    work = await mkdtemp(join(tmpdir(), 'authproxy-credentials-'));
    issuer = await startIssuer({ listen: '127.0.0.1:0', quiet: true, clients: { clients: { orders: {
      auth: 'private_key_jwt', certificate: pki.server.cert, audiences: { [AUDIENCE]: { roles: ['Orders.Admin'] } },
    } } } });
    policies = await policyDir({ 'orders.yaml': POLICY });
    const common = ['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca, '--listen', '127.0.0.1:0',
      '--admin-listen', '127.0.0.1:0', '--policies', policies, '--issuer', issuer.url, '--audience', AUDIENCE, '--client-auth', 'private_key_jwt'];
    [sidecar, custom] = await Promise.all([
      startSidecar([...common, '--audit-log', join(work, 'audit.log')]),
      startSidecar([...common, '--token-header', 'x-orders-token', '--audit-log', join(work, 'custom-audit.log')]),
    ]);
    const res = await postToken(`${issuer.url}/token`, { ...await clientAssertion('orders', await readFile(pki.server.key, 'utf8'), issuer.url), resource: AUDIENCE });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    valid = res.body.access_token as string;
    forged = `${base64url.encode(JSON.stringify({ alg: 'none' }))}.${base64url.encode(JSON.stringify(decodeJwt(valid)))}.`;
  });
  after(async () => {
    await Promise.all([sidecar?.stop(), custom?.stop()]);
    await issuer?.close();
    await app?.close();
    await pki?.cleanup();
    for (const d of [policies, work]) if (d) await rm(d, { recursive: true, force: true });
  });

  const get = (s: Sidecar, path: string, headers: Record<string, string>) => httpsGet(s.inboundPort, path, pki.ca, pki.clients.billing, { headers });
  /** Exactly these header lines, over HTTP/1.1 on mTLS (no client library merges or refuses them). */
  const raw = async (s: Sidecar, path: string, fields: string[], id: string): Promise<{ status: number; text: string }> => {
    const text = await rawTls(s.inboundPort, `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${fields.map((f) => `${f}\r\n`).join('')}x-request-id: ${id}\r\nConnection: close\r\n\r\n`,
      pki.ca, pki.clients.billing);
    return { status: statusOf(text), text };
  };
  /** The one request the app received during `send`, or undefined when none reached it. */
  const arrival = async <T>(send: () => Promise<T>): Promise<[T, Seen | undefined]> => {
    const before = app.seen.length;
    const r = await send();
    assert.ok(app.seen.length - before <= 1, 'one request reaches the app at most once');
    return [r, app.seen[before]];
  };
  const claimsOf = (seen: Seen | undefined): { roles: string[] } => JSON.parse(String(seen?.headers['x-authproxy-claims'])) as { roles: string[] };
  /** A refusal: 400 bad_request, audited with its reason, and nothing reached the app. */
  const assertAmbiguousRefused = async (r: { status: number; text: string }, seen: Seen | undefined, id: string, auditLog = 'audit.log'): Promise<void> => {
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /"error":"bad_request"/);
    assert.match(r.text, /a request carries one credential/);
    assert.equal(seen, undefined, 'the app never saw the request');
    const line = await waitForAuditLine(join(work, auditLog), (l) => l.requestId === id);
    assert.equal(line?.decision, 'deny');
    assert.equal(line?.code, 'bad_request');
  };

  it('reads a Bearer credential whose scheme is in any case and followed by spaces or tabs, and gives the app its claims, not the token', async () => {
    for (const prefix of ['Bearer\t', 'bearer ', 'bearer\t', 'BEARER \t ', 'bEaReR\t\t']) {
      const [r, seen] = await arrival(() => get(sidecar, '/admin/rotate', { authorization: `${prefix}${valid}` }));
      assert.equal(r.status, 200, `${JSON.stringify(prefix)}: ${r.body}`);
      assert.deepEqual(claimsOf(seen).roles, ['Orders.Admin'], JSON.stringify(prefix));
      assert.deepEqual(lines(seen, 'authorization'), [], `${JSON.stringify(prefix)}: the raw token is removed`);
    }
  });

  it('removes a forged token sent after a tab from a request the policy allows without a token', async () => {
    const [r, seen] = await arrival(() => get(sidecar, '/orders', { authorization: `Bearer\t${forged}` }));
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(lines(seen, 'authorization'), []);
    assert.equal(seen?.headers['x-authproxy-claims'], undefined);
    const [admin, adminSeen] = await arrival(() => get(sidecar, '/admin/rotate', { authorization: `Bearer\t${forged}` }));
    assert.equal(admin.status, 401, 'and counts as an invalid token where one is needed');
    assert.equal(adminSeen, undefined);
  });

  it('removes a credential of another scheme before the app: the header is the sidecar\'s while token rules are loaded', async () => {
    const [r, seen] = await arrival(() => get(sidecar, '/orders', { authorization: 'Basic eDp5' }));
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(lines(seen, 'authorization'), []);
  });

  it('refuses a Basic line followed by a Bearer line over HTTP/1.1 with 400 bad_request, and the app never sees either', async () => {
    const [r, seen] = await arrival(() => raw(sidecar, '/orders', ['Authorization: Basic eDp5', `Authorization: Bearer ${forged}`], 'h1-basic-bearer'));
    await assertAmbiguousRefused(r, seen, 'h1-basic-bearer');
  });

  it('refuses a Basic line followed by a Bearer line over HTTP/2 with 400 bad_request', async () => {
    const [r, seen] = await arrival(async () => {
      const c = await curl(['--http2', '--cacert', pki.ca, '--cert', pki.clients.billing.cert, '--key', pki.clients.billing.key,
        '-H', 'Authorization: Basic eDp5', '-H', `Authorization: Bearer ${forged}`, '-H', 'x-request-id: h2-basic-bearer',
        '-w', '\n%{http_code} %{http_version}', `https://localhost:${sidecar.inboundPort}/orders`]);
      assert.equal(c.code, 0, c.stderr);
      const [status, version] = c.stdout.slice(c.stdout.lastIndexOf('\n') + 1).split(' ');
      assert.equal(version, '2', 'the request went over HTTP/2');
      return { status: Number(status), text: c.stdout };
    });
    await assertAmbiguousRefused(r, seen, 'h2-basic-bearer');
  });

  it('refuses two Bearer lines whatever the case of the header name, and an empty line before a Bearer line', async () => {
    const cases: Array<[string, string[]]> = [
      ['dup-bearer', [`authorization: Bearer ${forged}`, `Authorization: Bearer ${forged}`]],
      ['dup-bearer-admin', [`Authorization: Bearer ${valid}`, `AUTHORIZATION: Bearer ${valid}`]],
      ['empty-then-bearer', ['Authorization:', `Authorization: Bearer ${forged}`]],
    ];
    for (const [id, fields] of cases) {
      const [r, seen] = await arrival(() => raw(sidecar, id === 'dup-bearer-admin' ? '/admin/rotate' : '/orders', fields, id));
      await assertAmbiguousRefused(r, seen, id);
    }
  });

  it('a forwardToken rule passes the one verified token, and refuses a verified token followed by a forged one', async () => {
    const [ok, seen] = await arrival(() => get(sidecar, '/echo-token', { authorization: `Bearer ${valid}` }));
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(lines(seen, 'authorization'), [`Bearer ${valid}`]);
    assert.deepEqual(claimsOf(seen).roles, ['Orders.Admin']);
    const [r, refusedSeen] = await arrival(() => raw(sidecar, '/echo-token', [`Authorization: Bearer ${valid}`, `Authorization: Bearer ${forged}`], 'forward-valid-forged'));
    await assertAmbiguousRefused(r, refusedSeen, 'forward-valid-forged');
  });

  it('a forwardToken rule passes no token that failed verification', async () => {
    const [r, seen] = await arrival(() => get(sidecar, '/forward', { authorization: `Bearer ${forged}` }));
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(lines(seen, 'authorization'), [], 'the forged token is not passed on');
    const [ok, okSeen] = await arrival(() => get(sidecar, '/forward', { authorization: `Bearer ${valid}` }));
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(lines(okSeen, 'authorization'), [`Bearer ${valid}`], 'a verified one is');
  });

  it('--token-header: the other header is read and removed the same way, and authorization is then the app\'s', async () => {
    const [admin, adminSeen] = await arrival(() => get(custom, '/admin/rotate', { 'x-orders-token': `bearer\t${valid}`, authorization: 'Basic eDp5' }));
    assert.equal(admin.status, 200, admin.body);
    assert.deepEqual(claimsOf(adminSeen).roles, ['Orders.Admin']);
    assert.deepEqual(lines(adminSeen, 'x-orders-token'), []);
    assert.deepEqual(lines(adminSeen, 'authorization'), ['Basic eDp5']);
    const [echo, echoSeen] = await arrival(() => get(custom, '/echo-token', { 'x-orders-token': valid }));
    assert.equal(echo.status, 200, echo.body);
    assert.deepEqual(lines(echoSeen, 'x-orders-token'), [valid], 'a bare verified token is forwarded as sent');
    const [r, seen] = await arrival(() => raw(custom, '/orders', [`x-orders-token: ${valid}`, `X-Orders-Token: ${forged}`], 'custom-dup'));
    await assertAmbiguousRefused(r, seen, 'custom-dup', 'custom-audit.log');
  });

  it('a WebSocket handshake over HTTP/1.1: two Authorization lines are refused, a forged token after a tab is removed', async () => {
    const open = (headers: Record<string, string | string[]>): Promise<{ status: number; ws: WebSocket | null }> => new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://localhost:${sidecar.inboundPort}/ws`, { ...tlsOptions(pki.ca, pki.clients.billing), headers: headers as Record<string, string> });
      ws.once('open', () => resolve({ status: 101, ws }));
      ws.once('unexpected-response', (_req, res) => { res.resume(); resolve({ status: res.statusCode ?? 0, ws: null }); });
      ws.once('error', reject);
    });
    const [refused, refusedSeen] = await arrival(() => open({ authorization: ['Basic eDp5', `Bearer ${forged}`] }));
    assert.equal(refused.status, 400);
    assert.equal(refusedSeen, undefined);
    const [opened, seen] = await arrival(() => open({ authorization: `Bearer\t${forged}` }));
    assert.equal(opened.status, 101);
    opened.ws!.close();
    assert.equal(seen?.method, 'WS');
    assert.deepEqual(lines(seen, 'authorization'), []);
  });

  it('a WebSocket over HTTP/2 (RFC 8441): a forged token after a tab is removed, a verified one gives the app its claims', async () => {
    const session = h2connect(`https://localhost:${sidecar.inboundPort}`, tlsOptions(pki.ca, pki.clients.billing));
    try {
      await once(session, 'remoteSettings');
      const open = async (authorization: string): Promise<number> => {
        const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/ws', ':authority': 'localhost',
          'sec-websocket-version': '13', authorization });
        const [headers] = await once(stream, 'response') as [IncomingHttpHeaders];
        // The app's socket is spliced to the stream once it answered: its arrival is recorded by then.
        stream.close();
        return Number(headers[':status']);
      };
      const [status, seen] = await arrival(() => open(`Bearer\t${forged}`));
      assert.equal(status, 200);
      assert.equal(seen?.method, 'WS');
      assert.deepEqual(lines(seen, 'authorization'), []);
      assert.equal(seen?.headers['x-authproxy-claims'], undefined);
      const [verified, verifiedSeen] = await arrival(() => open(`bearer\t${valid}`));
      assert.equal(verified, 200);
      assert.deepEqual(claimsOf(verifiedSeen).roles, ['Orders.Admin']);
      assert.deepEqual(lines(verifiedSeen, 'authorization'), []);
    } finally {
      session.destroy();
    }
  });
});
