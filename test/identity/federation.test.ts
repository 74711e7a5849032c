// Whose CA vouches for whom once trust domains are federated: each federated domain's IDs only
// from its own bundle, our IDs and peers without a SPIFFE ID only from --ca. Real certificates,
// real signatures; no TLS here (test/e2e/federation.test.ts drives the sidecar).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueCertificate, type PemPair } from '../../src/certs/pki.ts';
import { outsideItsBundle, federationProblem, type Bundles } from '../../src/identity/federation.ts';
import { loadTlsMaterial } from '../../src/identity/material.ts';

const x509 = (p: PemPair): X509Certificate => new X509Certificate(p.certPem);

describe('federated trust domains', () => {
  let own: PemPair; let partner: PemPair; let partnerIntermediate: PemPair; let bundles: Bundles;
  before(async () => {
    [own, partner] = await Promise.all([createCA({ trustDomain: 'example.org', commonName: 'example root' }), createCA({ trustDomain: 'partner.org', commonName: 'partner root' })]);
    partnerIntermediate = await issueCertificate(partner, { isCA: true, commonName: 'partner issuing CA' });
    bundles = { own: [x509(own)], federated: new Map([['partner.org', [x509(partner), x509(partnerIntermediate)]]]) };
  });

  const leaf = async (ca: PemPair, opts: Parameters<typeof issueCertificate>[1]) => x509(await issueCertificate(ca, opts));

  it("accepts a partner's ID issued by its own root, and one issued by an intermediate listed in its bundle", async () => {
    assert.equal(outsideItsBundle(await leaf(partner, { spiffeId: 'spiffe://partner.org/ns/a/sa/b' }), 'partner.org', bundles), null);
    assert.equal(outsideItsBundle(await leaf(partnerIntermediate, { spiffeId: 'spiffe://partner.org/ns/a/sa/b' }), 'partner.org', bundles), null);
  });

  it('accepts our own IDs and certificates without a SPIFFE ID when --ca issued them', async () => {
    assert.equal(outsideItsBundle(await leaf(own, { spiffeId: 'spiffe://example.org/ns/a/sa/b' }), 'example.org', bundles), null);
    assert.equal(outsideItsBundle(await leaf(own, { dnsNames: ['legacy.internal'] }), null, bundles), null);
  });

  it("refuses our own ID minted by a partner's CA, naming the CA that really issued it", async () => {
    const minted = await leaf(partner, { spiffeId: 'spiffe://example.org/ns/ops/sa/admin' });
    assert.match(outsideItsBundle(minted, 'example.org', bundles)!, /an ID of trust domain 'example\.org' must be issued by a CA in the --ca bundle; this one was issued by 'CN=partner root', a CA of trust domain 'partner\.org'/);
  });

  it("refuses a partner's ID minted by our CA, and a certificate without a SPIFFE ID from a partner's CA", async () => {
    assert.match(outsideItsBundle(await leaf(own, { spiffeId: 'spiffe://partner.org/ns/a/sa/b' }), 'partner.org', bundles)!,
      /trust domain 'partner\.org' must be issued by a CA in its bundle \(--federate partner\.org=…\); this one was issued by 'CN=example root', a CA of the --ca bundle/);
    assert.match(outsideItsBundle(await leaf(partnerIntermediate, { dnsNames: ['legacy.internal'] }), null, bundles)!, /a certificate without a SPIFFE ID must be issued by a CA in the --ca bundle/);
  });

  it('refuses an ID issued by an intermediate its bundle does not list, saying to list it', async () => {
    const unlisted = await issueCertificate(partner, { isCA: true, commonName: 'partner unlisted CA' });
    const bare = { own: bundles.own, federated: new Map([['partner.org', [x509(partner)]]]) };
    assert.match(outsideItsBundle(await leaf(unlisted, { spiffeId: 'spiffe://partner.org/x' }), 'partner.org', bare)!, /'CN=partner unlisted CA', which no bundle lists \(an intermediate: list it/);
  });

  it('refuses an ID whose issuing CA in the bundle has expired', async () => {
    const old = await issueCertificate(partner, { isCA: true, commonName: 'partner old CA', notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 60_000) });
    const withOld = { own: bundles.own, federated: new Map([['partner.org', [x509(partner), x509(old)]]]) };
    const issued = await leaf(old, { spiffeId: 'spiffe://partner.org/x' });
    assert.equal(outsideItsBundle(issued, 'partner.org', withOld), null);
    assert.notEqual(outsideItsBundle(issued, 'partner.org', withOld, Date.now() + 120_000), null);
  });

  it('finds a configuration that undoes the isolation: our own domain federated, or one CA key in two bundles', async () => {
    assert.match(federationProblem(bundles, 'partner.org')!, /'partner\.org' is the workload's own/);
    assert.equal(federationProblem(bundles, 'example.org'), null);
    assert.match(federationProblem({ own: [x509(own)], federated: new Map([['partner.org', [x509(partner), x509(own)]]]) }, 'example.org')!,
      /'CN=example root' \(or its key\) is in both the --ca bundle and trust domain 'partner\.org'/);
  });

  it("refuses a partner's intermediate in --ca, and an intermediate of ours in a partner's bundle: a CA another domain issued is that domain's", async () => {
    assert.match(federationProblem({ own: [x509(own), x509(partnerIntermediate)], federated: new Map([['partner.org', [x509(partner)]]]) }, 'example.org')!,
      /the CA 'CN=partner issuing CA' in the --ca bundle was issued by 'CN=partner root' of trust domain 'partner\.org'/);
    const ours = await issueCertificate(own, { isCA: true, commonName: 'example issuing CA' });
    assert.match(federationProblem({ own: [x509(own)], federated: new Map([['partner.org', [x509(partner), x509(ours)]]]) }, 'example.org')!,
      /the CA 'CN=example issuing CA' in trust domain 'partner\.org' was issued by 'CN=example root' of the --ca bundle/);
    assert.equal(federationProblem({ own: [x509(own), x509(ours)], federated: new Map([['partner.org', [x509(partner), x509(partnerIntermediate)]]]) }, 'example.org'), null,
      'each domain listing its own intermediates is fine');
  });
});

describe('loading federated bundles with the workload certificate', () => {
  let dir: string; let files: { cert: string; key: string; ca: string[] }; let partnerFile: string; let ownCa: PemPair;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'authproxy-fed-'));
    ownCa = await createCA({ trustDomain: 'example.org' });
    const [partner, workload] = await Promise.all([createCA({ trustDomain: 'partner.org' }), issueCertificate(ownCa, { spiffeId: 'spiffe://example.org/ns/a/sa/w' })]);
    const path = (n: string) => join(dir, n);
    await Promise.all([writeFile(path('ca.crt'), ownCa.certPem), writeFile(path('w.crt'), workload.certPem), writeFile(path('w.key'), workload.keyPem), writeFile(path('partner.pem'), partner.certPem)]);
    files = { cert: path('w.crt'), key: path('w.key'), ca: [path('ca.crt')] };
    partnerFile = path('partner.pem');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('verifies inbound peers against every bundle but trusts only --ca outbound', async () => {
    const m = await loadTlsMaterial({ ...files, federations: [{ trustDomain: 'partner.org', bundle: partnerFile }] });
    assert.deepEqual([...m.bundles.federated.keys()], ['partner.org']);
    const partnerPem = (await readFile(partnerFile, 'utf8')).trim();
    assert.ok(m.peerCaPem.includes(m.caPem) && m.peerCaPem.includes(partnerPem), 'the inbound store holds --ca and the partner bundle');
    assert.ok(!m.caPem.includes(partnerPem), 'the --ca bundle does not');
    const plain = await loadTlsMaterial(files);
    assert.equal(m.caPem, plain.caPem, 'what outbound hops and the issuer client trust is unchanged');
    assert.notEqual(m.version, plain.version, 'a change to a federated bundle is a change to reload');
  });

  it('refuses federating our own trust domain, and a bundle file that holds a non-CA certificate', async () => {
    await assert.rejects(loadTlsMaterial({ ...files, federations: [{ trustDomain: 'example.org', bundle: partnerFile }] }), /'example\.org' is the workload's own/);
    await writeFile(join(dir, 'leaf.pem'), (await issueCertificate(ownCa, { spiffeId: 'spiffe://partner.org/x' })).certPem);
    await assert.rejects(loadTlsMaterial({ ...files, federations: [{ trustDomain: 'partner.org', bundle: join(dir, 'leaf.pem') }] }), /leaf\.pem: trust bundle certificate #1 .* is not a CA/);
  });
});
