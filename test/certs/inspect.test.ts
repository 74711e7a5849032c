import { test, describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCA, issueCertificate } from '../../src/certs/pki.ts';
import type { CertificateSummary } from '../../src/certs/inspect.ts';
import { cli, openssl, scratch } from './helpers.ts';

let dir: string; let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await scratch());
  for (const args of [
    ['certs', 'init', '--trust-domain', 'example.org'],
    ['certs', 'issue', '--spiffe-id', 'spiffe://example.org/ns/default/sa/web', '--dns', 'web.local', '--ip', '127.0.0.1', '--days', '30', '--out', 'certs/web'],
  ]) {
    const r = await cli(dir, args);
    assert.equal(r.code, 0, r.stderr);
  }
});
after(() => cleanup());

async function inspectJson(file: string, extra: string[] = []): Promise<CertificateSummary> {
  const r = await cli(dir, ['certs', 'inspect', file, '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as CertificateSummary;
}

/** A self-signed leaf (openssl's req -x509 makes a CA unless told otherwise). */
async function selfSigned(name: string, subj: string, ext: string[]): Promise<void> {
  const r = await openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '5',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', subj, '-addext', 'basicConstraints=critical,CA:FALSE', ...ext]);
  assert.equal(r.code, 0, r.stderr);
}

test('certs inspect --json names the SPIFFE ID as identity and lists SANs, usages and CA flag', async () => {
  const s = await inspectJson('certs/web.crt');
  assert.equal(s.identity, 'spiffe://example.org/ns/default/sa/web');
  assert.equal(s.identitySource, 'spiffe');
  assert.equal(s.refusal, null);
  assert.deepEqual(s.sans, { uris: ['spiffe://example.org/ns/default/sa/web'], dns: ['web.local'], ips: ['127.0.0.1'], emails: [], other: [] });
  assert.deepEqual(s.extendedKeyUsage, ['serverAuth', 'clientAuth']);
  assert.deepEqual(s.keyUsage, ['digitalSignature']);
  assert.equal(s.isCA, false);
  assert.equal(s.issuer, 'CN=authproxy dev CA');
  assert.equal(s.subject, 'CN=web.local');
});

test('certs inspect agrees with openssl on serial, validity and fingerprint', async () => {
  const s = await inspectJson('certs/web.crt');
  const o = (await openssl(dir, ['x509', '-in', 'certs/web.crt', '-noout', '-serial', '-startdate', '-enddate', '-fingerprint', '-sha256'])).stdout;
  assert.equal(s.serial, /serial=(\w+)/.exec(o)?.[1]);
  assert.equal(new Date(s.notBefore).getTime(), new Date(/notBefore=(.*)/.exec(o)![1]!).getTime());
  assert.equal(new Date(s.notAfter).getTime(), new Date(/notAfter=(.*)/.exec(o)![1]!).getTime());
  assert.equal(s.sha256Fingerprint, /Fingerprint=(.*)/.exec(o)?.[1]);
});

test('certs inspect counts whole days left', async () => {
  const s = await inspectJson('certs/web.crt');
  // Issued moments ago for 30 days: 29 full days and most of the 30th remain.
  assert.equal(s.daysLeft, 29);
  assert.equal(s.status, 'valid');
});

test('certs inspect reports a CA as a CA, whose URI SAN is no peer identity', async () => {
  const s = await inspectJson('certs/ca.crt');
  assert.equal(s.isCA, true);
  assert.equal(s.selfSigned, true);
  assert.ok(s.keyUsage.includes('keyCertSign'));
  assert.equal(s.identity, '');
  assert.equal(s.refusal?.kind, 'ca_as_leaf');
});

describe('certs inspect says when the sidecar would refuse a certificate from a peer, and why', () => {
  for (const [what, name, subj, san, kind, reason] of [
    ['two URI SANs', 'twouris', '/CN=two', 'URI:spiffe://example.org/a,URI:spiffe://example.org/b', 'uri_san_count', 'X.509-SVID must carry exactly one URI SAN, found 2'],
    ['an upper-case SPIFFE:// URI SAN', 'upper', '/CN=upper', 'URI:SPIFFE://example.org/a', 'bad_spiffe_id', 'URI SAN is not a valid SPIFFE ID'],
    ['a CN spelled like a SPIFFE ID', 'cnspiffe', '/CN=spiffe:\\/\\/example.org\\/ns\\/ops\\/sa\\/admin', null, 'lookalike_name',
      'subject CN "spiffe://example.org/ns/ops/sa/admin" passes for a SPIFFE ID, which is only taken from a URI SAN'],
    ['a DNS SAN carrying XFCC syntax', 'dnsinject', '/CN=legacy', 'DNS:legacy.internal;URI=spiffe://example.org/ns/ops/sa/admin', 'bad_dns_san',
      'DNS SAN "legacy.internal;URI=spiffe://example.org/ns/ops/sa/admin" is not a DNS name (letters, digits, \'-\', \'_\' and \'.\', optionally under a leading \'*.\')'],
  ] as const) {
    it(`reports ${what} as refused (${kind})`, async () => {
      await selfSigned(name, subj, san ? ['-addext', `subjectAltName=${san}`] : []);
      const s = await inspectJson(`${name}.crt`);
      assert.deepEqual([s.identity, s.identitySource, s.refusal], ['', 'none', { kind, reason }]);
      const text = await cli(dir, ['certs', 'inspect', `${name}.crt`]);
      assert.ok(text.stdout.includes(`identity: ${' '.repeat(10)}(none: authproxy refuses this certificate from a peer: ${reason})\n`), text.stdout);
    });
  }
});

test('certs inspect falls back to the DNS SAN when there is no SPIFFE ID', async () => {
  await selfSigned('dnsonly', '/CN=ignored', ['-addext', 'subjectAltName=DNS:api.example.com,URI:https://example.com/x']);
  const s = await inspectJson('dnsonly.crt');
  assert.equal(s.identity, 'api.example.com');
  assert.equal(s.identitySource, 'dns');
});

test('certs inspect falls back to the subject CN when there are no SANs', async () => {
  await selfSigned('cnonly', '/O=Acme/CN=legacy-service', []);
  const s = await inspectJson('cnonly.crt');
  assert.equal(s.identity, 'legacy-service');
  assert.equal(s.identitySource, 'cn');
});

test('certs inspect reports an expired certificate with negative days left', async () => {
  const ca = await createCA();
  const old = await issueCertificate(ca, { dnsNames: ['old.example.org'], notBefore: new Date(Date.now() - 20 * 86_400_000), notAfter: new Date(Date.now() - 3.5 * 86_400_000) });
  await writeFile(join(dir, 'old.crt'), old.certPem);
  const s = await inspectJson('old.crt');
  assert.equal(s.status, 'expired');
  assert.equal(s.daysLeft, -4);
  const text = await cli(dir, ['certs', 'inspect', 'old.crt']);
  assert.match(text.stdout, /expired 4 days ago/);
});

test('certs inspect reads DER as well as PEM', async () => {
  assert.equal((await openssl(dir, ['x509', '-in', 'certs/web.crt', '-outform', 'DER', '-out', 'web.der'])).code, 0);
  const s = await inspectJson('web.der');
  assert.equal(s.identity, 'spiffe://example.org/ns/default/sa/web');
});

test('certs inspect --all --json summarizes every certificate of a chain file in order', async () => {
  await writeFile(join(dir, 'chain.pem'), (await readFile(join(dir, 'certs/web.crt'), 'utf8')) + (await readFile(join(dir, 'certs/ca.crt'), 'utf8')));
  const r = await cli(dir, ['certs', 'inspect', 'chain.pem', '--all', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const all = JSON.parse(r.stdout) as CertificateSummary[];
  assert.deepEqual(all.map((s) => s.isCA), [false, true]);
});

test('certs inspect prints a readable summary with every field labelled', async () => {
  const r = await cli(dir, ['certs', 'inspect', 'certs/web.crt']);
  assert.equal(r.code, 0, r.stderr);
  for (const label of ['identity', 'subject', 'issuer', 'serial', 'not before', 'not after', 'CA', 'SANs', 'key usage', 'extended key usage']) {
    assert.match(r.stdout, new RegExp(`^${label}:`, 'm'), label);
  }
  assert.match(r.stdout, /^identity: +spiffe:\/\/example\.org\/ns\/default\/sa\/web \(SPIFFE ID\)$/m);
  assert.match(r.stdout, /\(29 days left\)/);
});

test('certs inspect refuses a file that holds a key, without printing it', async () => {
  const r = await cli(dir, ['certs', 'inspect', 'certs/web.key']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "authproxy certs inspect: certs/web.key: holds a PEM 'PRIVATE KEY' block, not a certificate\n");
});
