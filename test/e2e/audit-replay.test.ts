// `authproxy policy replay DIR AUDIT.log`: every decision a real sidecar recorded, asked again of
// the policy set (inbound: decision and rule; outbound: the route), comes out as recorded; a record
// altered afterwards, a line cut short and a record of another policy set are told apart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { readFile, writeFile, rm, mkdtemp, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, BIN, type Sidecar } from '../support/sidecar.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { policyDir, TEST_POLICY, LOOPBACK_BOUNDARY } from '../support/policy-dir.ts';
import { httpsGet } from '../support/clients.ts';
import { waitForAuditLine, auditLines, sealLines } from '../support/audit.ts';

function replay(dir: string, log: string, json = false): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'policy', 'replay', dir, log, ...(json ? ['--json'] : [])], (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

const ROUTE = `apiVersion: authproxy.dev/v1
kind: OutboundRoute
metadata: { name: app-by-address }
spec:
  hosts: ["127.0.0.1"]
  tls: none
`;

describe('authproxy policy replay', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let policies: string; let work: string; let audit: string;

  before(async () => {
    pki = await makePki();
    app = await startApp();
    work = await mkdtemp(join(tmpdir(), 'authproxy-replay-'));
    policies = await policyDir({ 'policy.yaml': TEST_POLICY, 'boundary.yaml': LOOPBACK_BOUNDARY, 'route.yaml': ROUTE });
    audit = join(work, 'audit.log');
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', audit, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
      '--plaintext-listen', '127.0.0.1:0', '--max-body-bytes', '1k']);
    const { billing, shop } = pki.clients;
    const port = sidecar.inboundPort;
    const answers = [
      await httpsGet(port, '/orders', pki.ca, billing),                    // allow billing-everything
      await httpsGet(port, '/orders/%31', pki.ca, shop),                   // allow shop-reads-orders, after normalization
      await httpsGet(port, '/orders/a/../7?x=1', pki.ca, shop),            // the same, dot segments and a query
      await httpsGet(port, '/orders', pki.ca, shop, { method: 'POST', body: 'x' }), // forbidden, no rule
      await httpsGet(port, '/admin/users', pki.ca, billing),               // deny rule nobody-reaches-admin
      await httpsGet(port, '/upload', pki.ca, billing, { method: 'POST', body: 'x'.repeat(4096) }), // allowed, then 413
      await httpsGet(port, '/%2e%2e/%2e%2e/etc', pki.ca, billing),         // bad_path: the normalizer's, not the policy's
    ];
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 403, 403, 413, 400]);
    const plaintextPort = Number(/"plaintext":"[^"]*:(\d+)"/.exec(sidecar.stderr())?.[1]);
    await new Promise<void>((resolve, reject) => httpRequest({ host: '127.0.0.1', port: plaintextPort, path: '/orders' }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject).end());
    // The app's outbound calls: one routed (by address), one not (by name).
    const appPort = Number(new URL(app.upstream).port);
    for (const host of ['127.0.0.1', 'localhost']) {
      const status = await new Promise<number>((resolve, reject) => httpRequest({ host: '127.0.0.1', port: sidecar.outboundPort, path: `http://${host}:${appPort}/out` },
        (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); }).on('error', reject).end());
      assert.equal(status, 200);
    }
    assert.ok(await waitForAuditLine(audit, (l) => l.direction === 'outbound' && String((l.peer as { address: string }).address).startsWith('localhost')), 'all records written');
    assert.equal((await auditLines(audit)).length, 10);
    // And sealed (src/audit/seal.ts): the seal lines are in the log the replay reads.
    const deadline = Date.now() + 5000;
    while ((await sealLines(audit)).reduce((n, l) => n + (l.lines as number), 0) < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  });
  after(async () => {
    await sidecar?.stop();
    await app?.close();
    if (policies) await rm(policies, { recursive: true, force: true });
    if (work) await rm(work, { recursive: true, force: true });
    await pki?.cleanup();
  });

  it('confirms every decision the sidecar recorded, and says which refusals were made before the policy', async () => {
    const r = await replay(policies, audit, true);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.records, 10);
    const seals = (await sealLines(audit)).length;
    assert.ok(seals > 0);
    assert.deepEqual(s.counts, { confirmed: 9, token: 0, mismatch: 0, 'other-set': 0, 'not-policy': 1, handshake: 0, seal: seals, log: 0, unreadable: 0 });
    assert.deepEqual(s.notPolicy, { bad_path: 1 });
  });

  it('finds a record altered after the fact, names its line, and exits 1', async () => {
    const lines = (await readFile(audit, 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes('"path":"/admin/users"'));
    const forged = JSON.parse(lines[at]!);
    Object.assign(forged, { decision: 'allow', status: null, code: null, policy: 'orders', rule: 'billing-everything' });
    lines[at] = JSON.stringify(forged);
    const altered = join(work, 'altered.log');
    await writeFile(altered, lines.join('\n'));
    const r = await replay(policies, altered);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^mismatch +1 /m);
    assert.match(r.stdout, new RegExp(`line ${at + 1} \\(request ${forged.requestId}\\): recorded allow by orders/billing-everything; this set: deny forbidden \\(orders/nobody-reaches-admin\\)`));
  });

  it('finds an outbound record whose route was altered', async () => {
    const lines = (await readFile(audit, 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes('"direction":"outbound"') && l.includes('"policy":"app-by-address"'));
    const forged = JSON.parse(lines[at]!);
    forged.policy = null;
    lines[at] = JSON.stringify(forged);
    const altered = join(work, 'altered-route.log');
    await writeFile(altered, lines.join('\n'));
    const s = JSON.parse((await replay(policies, altered, true)).stdout);
    assert.deepEqual(s.mismatches.map((m: { line: number; recorded: string; replayed: string }) => [m.line, m.recorded, m.replayed]),
      [[at + 1, 'route (none)', 'route app-by-address']]);
  });

  it('reports a line cut short as unreadable and exits 1', async () => {
    const cut = join(work, 'cut.log');
    // Cut inside the last record (seal lines follow it; a seal cut short reads as unreadable too).
    const lines = (await readFile(audit, 'utf8')).split('\n');
    const last = lines.findLastIndex((l) => l.startsWith('{"time"'));
    await writeFile(cut, [...lines.slice(0, last), lines[last]!.slice(0, -20)].join('\n'));
    const r = await replay(policies, cut, true);
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.stdout).unreadableLines, [last + 1]);
  });

  it('does not judge records of another policy set: it names their digest instead', async () => {
    const changed = await policyDir({ 'policy.yaml': TEST_POLICY, 'boundary.yaml': LOOPBACK_BOUNDARY, 'route.yaml': ROUTE, 'more.yaml': '# a comment changes the digest\n' });
    try {
      await copyFile(audit, join(work, 'copy.log'));
      const s = JSON.parse((await replay(changed, join(work, 'copy.log'), true)).stdout);
      const recordedDigest = (await auditLines(audit))[0]!.policyDigest as string;
      assert.deepEqual([s.counts.confirmed, s.counts['other-set'], s.otherSets], [0, 10, { [recordedDigest]: 10 }]);
    } finally { await rm(changed, { recursive: true, force: true }); }
  });
});
