// Certificates and policies reload live under continuous traffic: good versions take effect,
// broken ones are refused and the running version stays, and no request fails along the way.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import { connect } from 'node:tls';
import { writeFile, rename, rm, mkdtemp, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { makePki, SERVER_ID, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { TEST_POLICY } from '../support/policy-dir.ts';
import { httpsGet, tlsOptions } from '../support/clients.ts';
import { waitFor } from '../support/wait.ts';

/** Replace a file the way Kubernetes and cert-manager do: write aside, then rename over. */
async function atomicWrite(path: string, data: string): Promise<void> {
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}

describe('live reload under traffic', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let dir: string; let cert: string; let key: string; let policies: string;

  before(async () => {
    pki = await makePki();
    app = await startApp();
    dir = await mkdtemp(join(tmpdir(), 'authproxy-reload-'));
    cert = join(dir, 'tls.crt'); key = join(dir, 'tls.key');
    await copyFile(pki.server.cert, cert); await copyFile(pki.server.key, key);
    policies = join(dir, 'policies');
    await import('node:fs/promises').then((fs) => fs.mkdir(policies));
    await writeFile(join(policies, 'orders.yaml'), TEST_POLICY);
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', cert, '--key', key, '--ca', pki.ca, '--policies', policies,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--reload-interval', '300ms']);
  });
  after(async () => {
    await sidecar?.stop(); await app?.close(); await pki?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  /** The serial of the certificate a brand-new connection is served. */
  const servedSerial = (): Promise<string> => new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: sidecar.inboundPort, ...tlsOptions(pki.ca, pki.clients.billing) }, () => {
      resolve(s.getPeerX509Certificate()!.serialNumber); s.end();
    });
    s.on('error', reject);
  });

  it('rotates certificates and policies, refuses broken ones, and fails no request meanwhile', async () => {
    const failures: string[] = [];
    let ok = 0;
    let running = true;
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 2 });
    // Two clients in a loop: one over kept-alive connections, one opening a new connection each time.
    const loop = async (agent: Agent | undefined): Promise<void> => {
      while (running) {
        try {
          const r = await httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.billing, agent ? { agent } : {});
          if (r.status === 200) ok++; else failures.push(`status ${r.status}: ${r.body}`);
        } catch (e) { failures.push((e as Error).message); }
      }
    };
    const loops = [loop(keepAlive), loop(undefined)];

    const original = await servedSerial();
    assert.equal(original, new X509Certificate(readFileSync(pki.server.cert)).serialNumber);

    // 1. A good rotation is picked up for new connections.
    const next = await pki.issue('server-2', { spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    await atomicWrite(key, readFileSync(next.key, 'utf8'));
    await atomicWrite(cert, readFileSync(next.cert, 'utf8'));
    const rotated = new X509Certificate(readFileSync(next.cert)).serialNumber;
    await waitFor(async () => (await servedSerial()) === rotated, 'rotated certificate served');

    // Each refusal step waits for one more refusal line than it saw before, never for an old one.
    const count = (re: RegExp): number => (sidecar.stderr().match(re) ?? []).length;
    const certRefusals = /refused new certificate files; keeping the running certificate/g;

    // 2. A broken certificate is refused; the rotated one stays.
    let seen = count(certRefusals);
    await atomicWrite(cert, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    await waitFor(() => count(certRefusals) > seen, 'broken certificate refused');
    assert.match(sidecar.stderr(), /does not parse/);
    assert.equal(await servedSerial(), rotated);

    // 3. A key that does not match is refused too.
    await atomicWrite(cert, readFileSync(next.cert, 'utf8'));
    await waitFor(async () => (await servedSerial()) === rotated, 'good certificate back');
    seen = count(certRefusals);
    await atomicWrite(key, readFileSync(pki.clients.shop.key, 'utf8'));
    await waitFor(() => count(certRefusals) > seen, 'mismatched key refused');
    assert.match(sidecar.stderr(), /private key does not match the certificate/);
    assert.equal(await servedSerial(), rotated);
    await atomicWrite(key, readFileSync(next.key, 'utf8'));

    // 4. A new policy set takes effect: shop loses access to /orders.
    assert.equal((await httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.shop)).status, 200);
    await atomicWrite(join(policies, 'orders.yaml'), TEST_POLICY.replace(/ {4}- name: shop-reads-orders[\s\S]*?paths: \["\/orders", "\/orders\/\*"\] }\]\n/, ''));
    await waitFor(async () => (await httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.shop)).status === 403, 'new policy in force');

    // 5. A broken policy set is refused whole; the previous set stays in force.
    const policyRefusals = /refused new policy set; keeping the running one/g;
    seen = count(policyRefusals);
    await atomicWrite(join(policies, 'orders.yaml'), 'apiVersion: authproxy.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: orders }\nspec:\n  rules:\n    - name: x\n      action: maybe\n');
    await waitFor(() => count(policyRefusals) > seen, 'broken policy set refused');
    assert.equal((await httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.shop)).status, 403);

    running = false;
    await Promise.all(loops);
    keepAlive.destroy();
    assert.deepEqual(failures, []);
    assert.ok(ok > 20, `traffic kept flowing (${ok} requests)`);
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
    assert.match(metrics, /authproxy_reloads_total\{kind="certificate",result="refused"\} [1-9]/);
    assert.match(metrics, /authproxy_reloads_total\{kind="policy",result="ok"\} [1-9]/);
  });

  const refusals = (): number => (sidecar.stderr().match(/refused new certificate files; keeping the running certificate/g) ?? []).length;
  /** Rotates to `pair` and waits until the sidecar has refused it; the running certificate must still be served. */
  async function rotationRefused(pair: { cert: string; key: string }, reason: RegExp): Promise<void> {
    const running = await servedSerial();
    const seen = refusals();
    await atomicWrite(key, readFileSync(pair.key, 'utf8'));
    await atomicWrite(cert, readFileSync(pair.cert, 'utf8'));
    await waitFor(() => reason.test(sidecar.stderr().split('\n').filter((l) => l.includes('refused new certificate files')).slice(seen).join('\n')), `refused: ${String(reason)}`);
    assert.ok(refusals() > seen);
    assert.equal(await servedSerial(), running);
    assert.equal((await httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.billing)).status, 200, 'peers of the running trust domain are still accepted');
  }
  /** Puts a good pair back (a refused one leaves the files as they were written). */
  async function restoreGoodPair(): Promise<void> {
    const good = await pki.issue(`server-${Date.now()}`, { spiffeId: SERVER_ID, dnsNames: ['localhost'] });
    await atomicWrite(key, readFileSync(good.key, 'utf8'));
    await atomicWrite(cert, readFileSync(good.cert, 'utf8'));
    const serial = new X509Certificate(readFileSync(good.cert)).serialNumber;
    await waitFor(async () => (await servedSerial()) === serial, 'good pair served again');
  }

  // Without --trust-domain, the workload's own SPIFFE ID sets which peers are accepted.
  it('refuses a rotated certificate that would change the trust domain accepted from peers', async () => {
    await rotationRefused(pki.clients.foreignDomain, /would change the trust domains accepted from peers \(example\.org → evil\.example\)/);
    await restoreGoodPair();
    await rotationRefused(pki.clients.dnsOnly, /would change the trust domains accepted from peers \(example\.org → any\)/);
    await restoreGoodPair();
  });

  it('refuses a rotated certificate that does not chain to the trust bundle', async () => {
    await rotationRefused(pki.clients.otherCa, /does not chain to the trust bundle/);
    await restoreGoodPair();
  });

  it('refuses a trust bundle caught half-written instead of loading the whole certificates in it', async () => {
    const seen = refusals();
    await writeFile(pki.ca, pki.caPair.certPem + readFileSync(pki.clients.shop.cert, 'utf8').slice(0, 300));
    await waitFor(() => refusals() > seen, 'half-written bundle refused');
    assert.match(sidecar.stderr(), /incomplete PEM block/);
    await writeFile(pki.ca, pki.caPair.certPem);
    assert.equal((await httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.billing)).status, 200);
  });

  it('refuses a policy reload that would leave no AuthorizationPolicy in force (every caller allowed)', async () => {
    const policyRefusals = (): number => (sidecar.stderr().match(/refused new policy set; keeping the running one/g) ?? []).length;
    const before = await httpsGet(sidecar.inboundPort, '/admin/x', pki.ca, pki.clients.billing);
    assert.equal(before.status, 403);
    const seen = policyRefusals();
    // A file truncated in place, as a writer leaves it between open(O_TRUNC) and its write.
    await writeFile(join(policies, 'orders.yaml'), '');
    await waitFor(() => policyRefusals() > seen, 'emptied policy set refused');
    assert.match(sidecar.stderr(), /has no AuthorizationPolicy, which would allow every caller/);
    assert.equal((await httpsGet(sidecar.inboundPort, '/admin/x', pki.ca, pki.clients.billing)).status, 403);
    await writeFile(join(policies, 'orders.yaml'), TEST_POLICY);
  });
});
