// Waiting for a token is bounded by the request's own deadline (--request-timeout, or less by
// x-authproxy-deadline) and every issuer call by the issuer timeout (10 s), against a token
// endpoint that drips its answer on a real socket: a byte every 500 ms, so no idle timer fires.
// Past its deadline the app gets 503 token_unavailable and nothing leaves the pod; the issuer
// call goes on for the requests still waiting on it (single flight).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, LOOPBACK_BOUNDARY } from '../support/policy-dir.ts';
import { startDripServer, viaProxy, echoed, bearer, type DripServer, type ProxyReply } from '../tokens/support.ts';

// 127.0.0.1 gets its token 2 s after asking; 127.0.0.2's token request would take 30 s.
const ROUTES = `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: slow }
spec:
  hosts: ["127.0.0.1"]
  token: { audience: "api://slow" }
  tls: none
---
apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: stalled }
spec:
  hosts: ["127.0.0.2"]
  token: { audience: "api://stalled" }
  tls: none
`;

type Timed = ProxyReply & { ms: number };

describe('a slow issuer and the request deadline', () => {
  let pki: TestPki; let app: TestApp; let work: string; let policies: string; let drip: DripServer; let sidecar: Sidecar;

  before(async () => {
    pki = await makePki();
    app = await startApp();
    work = await mkdtemp(join(tmpdir(), 'authproxy-token-deadline-'));
    await writeFile(join(work, 'client.secret'), 's3cret\n');
    policies = await policyDir({ 'routes.yaml': ROUTES, 'boundary.yaml': LOOPBACK_BOUNDARY });
    drip = await startDripServer((_path, form) => ({
      body: { access_token: `tok-for-${form.get('resource')}`, token_type: 'Bearer', expires_in: 300 },
      afterMs: form.get('resource') === 'api://slow' ? 2_000 : 30_000,
    }));
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--token-endpoint', `${drip.url}/token`,
      '--client-auth', 'client_secret_basic', '--client-secret-file', join(work, 'client.secret'), '--client-id', 'orders',
      '--request-timeout', '4s']);
  });
  after(async () => {
    await sidecar?.stop(); await drip?.close(); await app?.close(); await pki?.cleanup();
    await rm(work, { recursive: true, force: true }); await rm(policies, { recursive: true, force: true });
  });

  const send = async (host: string, headers: Record<string, string> = {}): Promise<Timed> => {
    const t0 = Date.now();
    const r = await viaProxy(sidecar.outboundPort, `http://${host}:${new URL(app.upstream).port}/pay`, { headers });
    return { ...r, ms: Date.now() - t0 };
  };
  const refusal = (t: Timed): { error: string; message: string } => JSON.parse(t.body) as { error: string; message: string };

  it('a request whose x-authproxy-deadline passes first is refused then; the token still reaches the request with time left', async () => {
    const [short, patient] = await Promise.all([send('127.0.0.1', { 'x-authproxy-deadline': '500' }), send('127.0.0.1')]);
    assert.equal(short.status, 503, short.body);
    assert.equal(refusal(short).error, 'token_unavailable');
    assert.match(refusal(short).message, /^no token for api:\/\/slow: the issuer did not answer within the request's deadline \(500 ms\)$/);
    assert.ok(short.ms >= 400 && short.ms < 5_000, `refused at its deadline, before the token came (${short.ms} ms)`);
    assert.equal(patient.status, 200, patient.body);
    assert.equal(bearer(echoed(patient).headers), 'tok-for-api://slow');
    assert.equal(drip.requests.length, 1, 'one issuer call served both: the refused request did not cancel it');
    assert.equal(app.seen.length, 1, 'the refused request never left the pod');
  });

  it('--request-timeout bounds the wait; the issuer call itself ends at the 10 s issuer timeout', async () => {
    const waited = await send('127.0.0.2');
    assert.equal(waited.status, 503, waited.body);
    assert.equal(refusal(waited).error, 'token_unavailable');
    assert.match(refusal(waited).message, /within the request's deadline \(4000 ms\)/);
    assert.ok(waited.ms >= 3_900 && waited.ms < 9_500, `refused at --request-timeout, not at the issuer timeout (${waited.ms} ms)`);
    const failed = await sidecar.waitForLog(/token request failed/, 20_000);
    assert.equal(failed.audience, 'api://stalled');
    assert.equal(failed.reason, 'issuer did not answer within 10s');
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
    assert.match(metrics, /authproxy_token_cache_total\{event="fetch_failed"\} 1\n/);
    const later = await send('127.0.0.2');
    assert.equal(later.status, 503);
    assert.match(refusal(later).message, /issuer did not answer within 10s; next attempt in \d+s/, 'backoff after the timeout names it');
    assert.equal(app.seen.length, 1);
  });
});
