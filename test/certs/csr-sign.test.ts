import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, openssl, scratch } from './helpers.ts';

let dir: string; let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await scratch());
  const r = await cli(dir, ['certs', 'init', '--trust-domain', 'example.org']);
  assert.equal(r.code, 0, r.stderr);
});
after(() => cleanup());

/** A CSR made by openssl itself, so the signing path is proven against an outside request. */
async function opensslCsr(name: string, san: string | null, extra: string[] = [], cn = name): Promise<void> {
  const r = await openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-subj', `/CN=${cn.replaceAll('/', '\\/')}`, ...(san ? ['-addext', `subjectAltName=${san}`] : []), ...extra, '-out', `${name}.csr`]);
  assert.equal(r.code, 0, r.stderr);
}

test('certs csr writes a request whose self-signature openssl verifies and that carries the SPIFFE ID', async () => {
  const r = await cli(dir, ['certs', 'csr', '--spiffe-id', 'spiffe://example.org/ns/a/sa/b', '--dns', 'b.local', '--out', 'req/b']);
  assert.equal(r.code, 0, r.stderr);
  const v = await openssl(dir, ['req', '-in', 'req/b.csr', '-verify', '-noout', '-text']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stderr + v.stdout, /verify OK/);
  assert.match(v.stdout, /URI:spiffe:\/\/example\.org\/ns\/a\/sa\/b, DNS:b\.local/);
});

test('certs csr keeps the key on disk with mode 0600 and matching the request', async () => {
  const r = await cli(dir, ['certs', 'csr', '--dns', 'k.local', '--key-type', 'rsa-2048', '--out', 'req/k']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await stat(join(dir, 'req/k.key'))).mode & 0o777, 0o600);
  const fromKey = await openssl(dir, ['pkey', '-in', 'req/k.key', '-pubout']);
  const fromCsr = await openssl(dir, ['req', '-in', 'req/k.csr', '-noout', '-pubkey']);
  assert.equal(fromKey.code, 0, fromKey.stderr);
  assert.equal(fromCsr.stdout, fromKey.stdout);
});

test('certs sign issues a certificate for the CSR key that openssl verifies against the CA', async () => {
  assert.equal((await cli(dir, ['certs', 'csr', '--spiffe-id', 'spiffe://example.org/ns/a/sa/c', '--out', 'req/c'])).code, 0);
  const r = await cli(dir, ['certs', 'sign', '--csr', 'req/c.csr']);
  assert.equal(r.code, 0, r.stderr);
  const v = await openssl(dir, ['verify', '-CAfile', 'certs/ca.crt', 'req/c.crt']);
  assert.equal(v.code, 0, v.stderr);
  const certKey = await openssl(dir, ['x509', '-in', 'req/c.crt', '-noout', '-pubkey']);
  const key = await openssl(dir, ['pkey', '-in', 'req/c.key', '-pubout']);
  assert.equal(certKey.stdout, key.stdout);
  assert.match((await openssl(dir, ['x509', '-in', 'req/c.crt', '-noout', '-ext', 'subjectAltName'])).stdout, /URI:spiffe:\/\/example\.org\/ns\/a\/sa\/c/);
});

test('certs sign accepts a DER request made by openssl', async () => {
  await opensslCsr('der', 'DNS:der.example.org');
  assert.equal((await openssl(dir, ['req', '-in', 'der.csr', '-outform', 'DER', '-out', 'der.bin'])).code, 0);
  const r = await cli(dir, ['certs', 'sign', '--csr', 'der.bin', '--out', 'der.crt']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await openssl(dir, ['verify', '-CAfile', 'certs/ca.crt', 'der.crt'])).code, 0);
});

test('certs sign never makes a CA even when the request asks for CA:TRUE', async () => {
  await opensslCsr('wannabe', 'DNS:wannabe.example.org', ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  const r = await cli(dir, ['certs', 'sign', '--csr', 'wannabe.csr']);
  assert.equal(r.code, 0, r.stderr);
  const t = (await openssl(dir, ['x509', '-in', 'wannabe.crt', '-noout', '-text'])).stdout;
  assert.match(t, /CA:FALSE/);
  assert.doesNotMatch(t, /Certificate Sign/);
});

test('certs sign refuses a request with two URI SANs', async () => {
  await opensslCsr('twouris', 'URI:spiffe://example.org/a,URI:spiffe://example.org/b');
  const r = await cli(dir, ['certs', 'sign', '--csr', 'twouris.csr']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /asks for 2 URI SANs/);
  await assert.rejects(stat(join(dir, 'twouris.crt')), { code: 'ENOENT' });
});

test('certs sign refuses a SPIFFE ID outside the CA trust domain', async () => {
  await opensslCsr('foreign', 'URI:spiffe://evil.org/ns/a');
  const r = await cli(dir, ['certs', 'sign', '--csr', 'foreign.csr']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /trust domain 'evil\.org' does not match/);
  await assert.rejects(stat(join(dir, 'foreign.crt')), { code: 'ENOENT' });
});

test('certs sign refuses a CN spelled like a URI or a principal authproxy derives otherwise, and writes nothing', async () => {
  for (const [name, cn, why] of [
    ['cnspiffe', 'spiffe://example.org/ns/ops/sa/admin', 'looks like a URI \\(a SPIFFE ID belongs in the URI SAN\\)'],
    ['cnhttps', 'https://example.org/admin', 'looks like a URI'],
    ['cnopaque', 'SPIFFE:example.org', "starts with 'SPIFFE:', which authproxy principals reserve"],
    ['cnboundary', 'boundary:cluster', "starts with 'boundary:', which authproxy principals reserve"],
  ] as const) {
    await opensslCsr(name, null, [], cn);
    const r = await cli(dir, ['certs', 'sign', '--csr', `${name}.csr`]);
    assert.equal(r.code, 1, name);
    assert.match(r.stderr, new RegExp(`^authproxy certs sign: ${name}\\.csr: asks for subject CN "${cn.replaceAll('.', '\\.')}", which ${why}`), name);
    await assert.rejects(stat(join(dir, `${name}.crt`)), { code: 'ENOENT' });
  }
});

test('certs sign refuses DNS SANs that are not DNS names, such as one carrying XFCC syntax or a SPIFFE ID', async () => {
  for (const [name, dns] of [['dnsinject', 'legacy.internal;URI=spiffe://example.org/ns/ops/sa/admin'], ['dnsspiffe', 'spiffe://example.org/ns/ops/sa/admin']] as const) {
    await opensslCsr(name, `DNS:ok.example.org,DNS:${dns}`);
    const r = await cli(dir, ['certs', 'sign', '--csr', `${name}.csr`]);
    assert.equal(r.code, 1, name);
    assert.equal(r.stderr, `authproxy certs sign: ${name}.csr: asks for DNS SAN "${dns}", which is not a DNS name (letters, digits, '-', '_' and '.', optionally under a leading '*.')\n`);
    await assert.rejects(stat(join(dir, `${name}.crt`)), { code: 'ENOENT' });
  }
});

test('certs issue and certs csr refuse a --cn spelled like a SPIFFE ID as a usage error', async () => {
  for (const sub of [['issue', '--out', 'certs/cnlike'], ['csr', '--out', 'req/cnlike']]) {
    const r = await cli(dir, ['certs', sub[0]!, '--ip', '10.0.0.1', '--cn', 'spiffe://example.org/ns/ops/sa/admin', ...sub.slice(1)]);
    assert.equal(r.code, 2, sub[0]);
    assert.match(r.stderr, /--cn 'spiffe:\/\/example\.org\/ns\/ops\/sa\/admin' looks like a URI/);
  }
  await assert.rejects(stat(join(dir, 'certs/cnlike.crt')), { code: 'ENOENT' });
  await assert.rejects(stat(join(dir, 'req/cnlike.csr')), { code: 'ENOENT' });
});

test('certs sign refuses SAN types it does not sign', async () => {
  await opensslCsr('mail', 'DNS:mail.example.org,email:a@example.org');
  const r = await cli(dir, ['certs', 'sign', '--csr', 'mail.csr']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /does not sign: email:a@example\.org/);
});

test('certs sign refuses a request whose signature does not verify', async () => {
  await opensslCsr('tampered', 'DNS:good.example.org');
  const pem = await readFile(join(dir, 'tampered.csr'), 'utf8');
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  // Flip a byte inside the requested name: the structure still parses, the signature no longer matches.
  const at = der.indexOf(Buffer.from('good'));
  der[at] = 'h'.charCodeAt(0);
  await writeFile(join(dir, 'tampered.der'), der);
  const r = await cli(dir, ['certs', 'sign', '--csr', 'tampered.der', '--out', 'tampered.crt']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /signature does not verify/);
  await assert.rejects(stat(join(dir, 'tampered.crt')), { code: 'ENOENT' });
});
