import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicyDir } from '../../src/policy/load.ts';
import { explainInbound, explainOutbound } from '../../src/policy/explain.ts';
import { runCases, loadCases } from '../../src/policy/cases.ts';
import { loadSet, route } from './helpers.ts';
import { BIN, REPO } from '../support/sidecar.ts';

const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
  execFile(process.execPath, [BIN, ...args], { cwd: REPO }, (e, stdout, stderr) => resolve({ code: e ? Number(e.code) : 0, stdout, stderr }));
});

describe('policy explain', () => {
  it('names the rule and policy that allow a request, with the normalized path', async () => {
    const set = await loadPolicyDir(join(REPO, 'policies'));
    const a = explainInbound(set, { from: 'spiffe://example.org/ns/billing/sa/api', method: 'GET', target: '/orders/./%31' });
    assert.equal(a.allow, true);
    assert.equal(a.rule, 'billing-reads-orders');
    assert.equal(a.policy, 'orders');
    assert.equal(a.path, '/orders/1');
    assert.equal(a.policyDigest, set.digest);
  });

  it('answers invalid_token when only a token-guarded rule could allow, and allow with a fresh JIT token', async () => {
    const set = await loadPolicyDir(join(REPO, 'policies'));
    const q = { from: 'spiffe://example.org/ns/ops/sa/oncall', method: 'GET', target: '/admin/x' };
    assert.equal(explainInbound(set, q).code, 'invalid_token');
    const now = Date.now() / 1000;
    assert.equal(explainInbound(set, { ...q, token: { roles: ['Orders.Admin'], iat: now - 60, exp: now + 600 } }).allow, true);
    const stale = explainInbound(set, { ...q, token: { roles: ['Orders.Admin'], iat: now - 3600, exp: now + 600 } });
    assert.equal(stale.allow, false, 'a token older than the JIT maxAge does not elevate');
  });

  it('judges a plaintext source by its boundary', async () => {
    const set = await loadPolicyDir(join(REPO, 'policies'));
    assert.equal(explainInbound(set, { source: '192.0.2.1', method: 'GET', target: '/' }).code, 'boundary_violation');
    const inside = explainInbound(set, { source: '10.9.8.7', method: 'GET', target: '/' });
    assert.equal(inside.principal, 'boundary:cluster');
    assert.equal(inside.boundary, 'cluster');
  });

  it('runs as a CLI: exit 0 and the rule when allowed, exit 1 when denied, JSON on request', async () => {
    const ok = await run(['policy', 'explain', 'policies', '--from', 'spiffe://example.org/ns/billing/sa/api', '--request', 'GET /orders/7']);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /decision {2}allow by rule billing-reads-orders of AuthorizationPolicy orders/);
    const denied = await run(['policy', 'explain', 'policies', '--from', 'spiffe://example.org/ns/shop/sa/web', '--request', 'GET /orders/7', '--json']);
    assert.equal(denied.code, 1);
    assert.equal((JSON.parse(denied.stdout) as { code: string }).code, 'forbidden');
    const usage = await run(['policy', 'explain', 'policies', '--request', 'GET /']);
    assert.equal(usage.code, 2);
  });
});

describe('policy explain for outbound calls', () => {
  it('shows route, boundary, TLS mode and token for the example policies', async () => {
    const set = await loadPolicyDir(join(REPO, 'policies'));
    const out = await explainOutbound(set, 'http://payments.example.com/charge');
    assert.equal(out.route, 'payments');
    assert.equal(out.boundary, null);
    assert.equal(out.transport, 'tls', 'outside every boundary: TLS although the app spoke HTTP');
    assert.equal(out.port, 443);
    assert.deepEqual(out.token, { audience: 'api://payments', scopes: ['payments.charge'], header: 'authorization', scheme: 'Bearer' });
    const inside = await explainOutbound(set, 'http://payments.prod.svc.cluster.local/charge');
    assert.equal(inside.boundary, 'cluster');
    assert.equal(inside.transport, 'plaintext');
    assert.equal(inside.port, 80);
    const unrouted = await explainOutbound(set, 'http://10.2.3.4:8080/');
    assert.equal(unrouted.route, null);
    assert.equal(unrouted.token, null);
    assert.equal(unrouted.transport, 'plaintext');
  });

  it('reads an IP address in any spelling as the outbound listener does, and finds its route', async () => {
    const set = loadSet({ 'r.yaml': route('ip', '{ hosts: ["10.0.0.5", "::1"], tls: mtls }') });
    for (const url of ['http://[::ffff:10.0.0.5]/', 'http://[::FFFF:a00:5]/', 'http://10.0.5/', 'http://0xa.0.0.5/', 'http://[0:0:0:0:0:0:0:1]/']) {
      const out = await explainOutbound(set, url);
      assert.equal(out.route, 'ip', url);
      assert.equal(out.transport, 'mtls', url);
    }
    assert.equal((await explainOutbound(set, 'http://[::ffff:10.0.0.5]/')).host, '10.0.0.5');
  });

  it('runs as a CLI with --to', async () => {
    const r = await run(['policy', 'explain', 'policies', '--to', 'http://payments.example.com/charge']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /carried {3}TLS originated by the sidecar/);
    assert.match(r.stdout, /token {5}authorization: Bearer <token for api:\/\/payments scopes payments\.charge>/);
    assert.doesNotMatch(r.stdout, /eyJ/, 'explain never obtains or shows a real token');
  });
});

describe('policy test', () => {
  it('passes the example cases shipped with the example policies', async () => {
    const r = await run(['policy', 'test', 'policies', 'policies/tests/cases.yaml']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^7 passed, 0 failed$/m);
  });

  it('fails with exit 1 and says why when a case does not hold', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-cases-'));
    try {
      const file = join(dir, 'cases.yaml');
      await writeFile(file, 'cases:\n  - name: shop may not read orders\n    from: spiffe://example.org/ns/shop/sa/web\n    request: GET /orders/1\n    expect: allow\n');
      const r = await run(['policy', 'test', 'policies', file]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /FAIL {2}shop may not read orders: expected allow, got forbidden/);
      assert.match(r.stdout, /^0 passed, 1 failed$/m);
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  it('refuses a malformed case naming its field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-cases-'));
    try {
      const file = join(dir, 'cases.yaml');
      await writeFile(file, 'cases:\n  - name: x\n    from: a\n    source: 10.0.0.1\n    request: GET /\n    expect: allow\n');
      await assert.rejects(loadCases(file), /cases\[0\]\.from: give exactly one of/);
      await writeFile(file, 'cases:\n  - name: x\n    from: a\n    request: /orders\n    expect: allow\n');
      await assert.rejects(loadCases(file), /cases\[0\]\.request/);
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  it('checks the deciding rule when a case names one', async () => {
    const set = await loadPolicyDir(join(REPO, 'policies'));
    const [r] = runCases(set, [{ name: 'x', question: { from: 'spiffe://example.org/ns/dev/sa/curl', method: 'GET', target: '/orders/1' }, expect: 'allow', rule: 'billing-reads-orders' }]);
    assert.equal(r!.ok, false);
    assert.match(r!.why, /expected rule billing-reads-orders, decided by dev-curl-everything/);
  });
});
