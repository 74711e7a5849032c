// SPIFFE federation end to end: a sidecar of example.org that also accepts partner.org's workloads
// (--federate partner.org=FILE). Real mTLS handshakes with curl and Node clients, certificates
// generated here. Each trust domain's IDs pass only when its own bundle issued them: the partner's
// CA, trusted by the TLS stack so that partner workloads get in, cannot mint example.org IDs (which
// the policy would let through), nor example.org's CA partner IDs. Federated bundles reload like
// --ca, and never extend what the sidecar trusts for its outbound hops.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rename, rm, readFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueCertificate, type PemPair } from '../../src/certs/pki.ts';
import { makePki, BILLING_ID, type TestPki, type ClientFiles } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, TEST_POLICY, PEER_ROUTES } from '../support/policy-dir.ts';
import { curl, httpsGet } from '../support/clients.ts';
import { waitForAuditLine } from '../support/audit.ts';

const PARTNER_ID = 'spiffe://partner.org/ns/pay/sa/api';
const PARTNER_BATCH_ID = 'spiffe://partner.org/ns/pay/sa/batch';

const PARTNER_POLICY = `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: partner }
spec:
  rules:
    - name: partner-reads-orders
      action: allow
      from: [{ principals: ["spiffe://partner.org/ns/pay/**"] }]
      to: [{ methods: [GET], paths: ["/orders", "/orders/*"] }]
`;

describe('federated trust domains', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let work: string; let policies: string;
  let partnerRoot: PemPair; let partnerIssuing: PemPair; let bundleFile: string; let auditFile: string;
  const clients: Record<string, ClientFiles> = {};

  before(async () => {
    pki = await makePki();
    app = await startApp();
    work = await mkdtemp(join(tmpdir(), 'authproxy-federation-'));
    partnerRoot = await createCA({ trustDomain: 'partner.org', commonName: 'partner root' });
    partnerIssuing = await issueCertificate(partnerRoot, { isCA: true, commonName: 'partner issuing CA' });
    bundleFile = join(work, 'partner-bundle.pem');
    await writeFile(bundleFile, partnerRoot.certPem + partnerIssuing.certPem);
    const save = async (name: string, p: PemPair, chain = ''): Promise<void> => {
      const cert = join(work, `${name}.crt`); const key = join(work, `${name}.key`);
      await writeFile(cert, p.certPem + chain); await writeFile(key, p.keyPem, { mode: 0o600 });
      clients[name] = { cert, key };
    };
    await Promise.all([
      issueCertificate(partnerRoot, { spiffeId: PARTNER_ID }).then((p) => save('partner', p)),
      // Sent with its chain, as SPIRE agents send SVIDs signed by an intermediate.
      issueCertificate(partnerIssuing, { spiffeId: PARTNER_BATCH_ID }).then((p) => save('partnerBatch', p, partnerIssuing.certPem)),
      // The attack: the partner's CA minting one of our IDs, which TEST_POLICY lets do anything.
      issueCertificate(partnerRoot, { spiffeId: BILLING_ID }).then((p) => save('mintedByPartner', p)),
      issueCertificate(pki.caPair, { spiffeId: PARTNER_ID }).then((p) => save('partnerIdFromOurCa', p)),
      issueCertificate(partnerRoot, { dnsNames: ['legacy.internal'] }).then((p) => save('dnsFromPartner', p)),
    ]);
    policies = await policyDir({ 'orders.yaml': TEST_POLICY, 'partner.yaml': PARTNER_POLICY, 'routes.yaml': PEER_ROUTES });
    auditFile = join(work, 'audit.log');
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--federate', `partner.org=${bundleFile}`, '--policies', policies, '--audit-log', auditFile,
      '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--reload-interval', '200ms']);
  });
  after(async () => {
    await sidecar?.stop();
    await app?.close();
    await rm(work, { recursive: true, force: true });
    if (policies) await rm(policies, { recursive: true, force: true });
    await pki?.cleanup();
  });

  const get = (who: string, path = '/orders') => httpsGet(sidecar.inboundPort, path, pki.ca, clients[who] ?? pki.clients[who as keyof TestPki['clients']]);
  const curlAs = (who: ClientFiles) => curl(['--cacert', pki.ca, '--cert', who.cert, '--key', who.key, `https://localhost:${sidecar.inboundPort}/orders`]);
  const metric = async (re: RegExp): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
    return Number(re.exec(text)?.[1] ?? 0);
  };
  const wrongBundle = () => metric(/^authproxy_tls_handshake_refusals_total\{reason="wrong_bundle"\} (\d+)$/m);
  const refused = async (who: string, reason: RegExp): Promise<void> => {
    const arrivals = app.seen.length; const before = await wrongBundle();
    const r = await curlAs(clients[who]!);
    assert.notEqual(r.code, 0, `the handshake should be refused, got: ${r.stdout}`);
    assert.equal(app.seen.length, arrivals, 'the app is never reached');
    assert.equal(await wrongBundle(), before + 1, 'counted as wrong_bundle');
    assert.ok(await waitForAuditLine(auditFile, (l) => l.event === 'handshake' && reason.test(String(l.reason))), `audited with ${String(reason)}`);
  };

  it("lets a partner workload in under its own SPIFFE ID when the partner's root issued it", async () => {
    const r = await curlAs(clients.partner!);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { headers: Record<string, string> }).headers['x-authproxy-principal'], PARTNER_ID);
  });

  it("lets a partner workload in when an intermediate listed in the partner's bundle issued it", async () => {
    const r = await get('partnerBatch');
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-authproxy-principal'], PARTNER_BATCH_ID);
  });

  it('still lets our own workloads in, issued by --ca', async () => {
    assert.equal((await get('billing', '/payments')).status, 200);
  });

  it("refuses one of our IDs minted by the partner's CA at the handshake, counts and audits it", () =>
    refused('mintedByPartner', /an ID of trust domain 'example\.org' must be issued by a CA in the --ca bundle; this one was issued by 'CN=partner root', a CA of trust domain 'partner\.org'/));

  it('refuses a partner ID issued by our own CA', () =>
    refused('partnerIdFromOurCa', /an ID of trust domain 'partner\.org' must be issued by a CA in its bundle/));

  it("refuses a certificate without a SPIFFE ID from the partner's CA (only --ca vouches for those)", () =>
    refused('dnsFromPartner', /a certificate without a SPIFFE ID must be issued by a CA in the --ca bundle/));

  it('shows the federated bundles in /config', async () => {
    const config = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/config`)).json() as { federatedBundles: Record<string, Array<{ subject: string }>>; trustDomains: string[] };
    assert.deepEqual(config.federatedBundles['partner.org']!.map((c) => c.subject), ['CN=partner root', 'CN=partner issuing CA']);
    assert.deepEqual(config.trustDomains.sort(), ['example.org', 'partner.org']);
  });

  it("does not trust the partner's CA for outbound hops: a destination with a partner certificate is refused, one with ours is reached", async () => {
    const serve = async (pair: PemPair): Promise<HttpsServer> => {
      const s = createHttpsServer({ cert: pair.certPem, key: pair.keyPem }, (_req, res) => res.end('reached'));
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      return s;
    };
    const [theirs, ours] = await Promise.all([
      issueCertificate(partnerRoot, { spiffeId: PARTNER_ID, dnsNames: ['localhost'] }).then(serve),
      issueCertificate(pki.caPair, { spiffeId: 'spiffe://example.org/ns/prod/sa/inventory', dnsNames: ['localhost'] }).then(serve),
    ]);
    try {
      const via = (s: HttpsServer) => curl(['-o', '/dev/null', '-w', '%{http_code}', '-x', `http://127.0.0.1:${sidecar.outboundPort}`, `http://localhost:${(s.address() as AddressInfo).port}/`]);
      assert.equal((await via(ours)).stdout, '200');
      assert.equal((await via(theirs)).stdout, '502');
    } finally { theirs.close(); ours.close(); }
  });

  it("refuses to start with the partner's intermediate left in --ca, which would let the partner mint our IDs", async () => {
    const mixed = join(work, 'ca-with-partner-intermediate.pem'); const rootOnly = join(work, 'partner-root-only.pem');
    await Promise.all([writeFile(mixed, pki.caPair.certPem + partnerIssuing.certPem), writeFile(rootOnly, partnerRoot.certPem)]);
    const started = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', mixed,
      '--federate', `partner.org=${rootOnly}`, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']).catch((e: Error) => e);
    if (!(started instanceof Error)) { await started.stop(); assert.fail('the sidecar started'); }
    assert.match(started.message, /the CA 'CN=partner issuing CA' in the --ca bundle was issued by 'CN=partner root' of trust domain 'partner\.org'/);
  });

  it("reloads the partner's bundle: a half-written file is refused and the running one kept; a new partner root replaces the old", async () => {
    const reloads = (result: string) => metric(new RegExp(`^authproxy_reloads_total\\{kind="certificate",result="${result}"\\} (\\d+)$`, 'm'));
    const until = async (what: () => Promise<boolean>, label: string): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!(await what())) { if (Date.now() > deadline) throw new Error(`timed out: ${label}`); await new Promise((r) => setTimeout(r, 50)); }
    };
    const replace = async (text: string): Promise<void> => { await writeFile(`${bundleFile}.tmp`, text); await rename(`${bundleFile}.tmp`, bundleFile); };
    const original = await readFile(bundleFile, 'utf8');

    const refusedBefore = await reloads('refused');
    await replace(original + partnerRoot.certPem.slice(0, 200));
    await until(async () => (await reloads('refused')) > refusedBefore, 'half-written bundle refused');
    assert.equal((await get('partner')).status, 200, 'the running bundle stays in force');

    const newRoot = await createCA({ trustDomain: 'partner.org', commonName: 'partner root 2' });
    const fromNewRoot = await issueCertificate(newRoot, { spiffeId: PARTNER_ID });
    await writeFile(join(work, 'partner2.crt'), fromNewRoot.certPem); await writeFile(join(work, 'partner2.key'), fromNewRoot.keyPem, { mode: 0o600 });
    clients.partner2 = { cert: join(work, 'partner2.crt'), key: join(work, 'partner2.key') };
    const okBefore = await reloads('ok');
    await replace(newRoot.certPem);
    await until(async () => (await reloads('ok')) > okBefore, 'new partner bundle loaded');
    assert.equal((await get('partner2')).status, 200, 'issued by the new root: accepted');
    await assert.rejects(get('partner'), 'issued by the old root, no longer in the bundle: refused by the TLS stack');
  });

  it('warns when a loaded allow rule would match partner workloads without naming their trust domain', async () => {
    const warning = /these allow rules match federated partners' workloads too/;
    assert.doesNotMatch(sidecar.stderr(), warning, 'every rule loaded at start names its trust domain');
    await writeFile(join(policies, 'ops.yaml'), `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: ops }
spec:
  rules:
    - name: oncall-anywhere
      action: allow
      from: [{ principals: ["spiffe://*/ns/ops/**"] }]
`);
    const line = await sidecar.waitForLog(warning);
    assert.deepEqual(line.rules, ['ops/oncall-anywhere']);
  });
});
