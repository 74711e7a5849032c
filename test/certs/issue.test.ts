import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, openssl, scratch } from './helpers.ts';

let dir: string; let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await scratch());
  const r = await cli(dir, ['certs', 'init', '--trust-domain', 'example.org', '--days', '100']);
  assert.equal(r.code, 0, r.stderr);
});
after(() => cleanup());

const ID = 'spiffe://example.org/ns/default/sa/web';

test('certs issue writes a leaf that openssl verifies against the CA', async () => {
  const r = await cli(dir, ['certs', 'issue', '--spiffe-id', ID, '--out', 'certs/web']);
  assert.equal(r.code, 0, r.stderr);
  const v = await openssl(dir, ['verify', '-CAfile', 'certs/ca.crt', 'certs/web.crt']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /certs\/web\.crt: OK/);
});

test('certs issue puts the SPIFFE ID, DNS and IP SANs and server+client EKU in the leaf', async () => {
  const r = await cli(dir, ['certs', 'issue', '--spiffe-id', ID, '--dns', 'web.local', '--dns', 'web', '--ip', '10.1.2.3', '--out', 'certs/sans']);
  assert.equal(r.code, 0, r.stderr);
  const t = (await openssl(dir, ['x509', '-in', 'certs/sans.crt', '-noout', '-text'])).stdout;
  assert.match(t, /URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web, DNS:web\.local, DNS:web, IP Address:10\.1\.2\.3/);
  assert.match(t, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(t, /CA:FALSE/);
});

test('certs issue writes the leaf key with mode 0600 in the requested key type', async () => {
  const r = await cli(dir, ['certs', 'issue', '--spiffe-id', ID, '--key-type', 'ec-p384', '--out', 'certs/p384']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await stat(join(dir, 'certs/p384.key'))).mode & 0o777, 0o600);
  const k = await openssl(dir, ['pkey', '-in', 'certs/p384.key', '-noout', '-text']);
  assert.match(k.stdout, /NIST CURVE: P-384|ASN1 OID: secp384r1/);
});

test('certs issue sets the lifetime from --days', async () => {
  const r = await cli(dir, ['certs', 'issue', '--spiffe-id', ID, '--days', '7', '--out', 'certs/week']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await openssl(dir, ['x509', '-in', 'certs/week.crt', '-noout', '-checkend', String(6 * 86400)])).code, 0);
  assert.equal((await openssl(dir, ['x509', '-in', 'certs/week.crt', '-noout', '-checkend', String(8 * 86400)])).code, 1);
});

test('certs issue refuses a SPIFFE ID from another trust domain and writes nothing', async () => {
  const r = await cli(dir, ['certs', 'issue', '--spiffe-id', 'spiffe://other.org/x', '--out', 'certs/other']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /trust domain 'other\.org' does not match the CA's trust domain 'example\.org'/);
  assert.deepEqual((await readdir(join(dir, 'certs'))).filter((f) => f.startsWith('other') || f.endsWith('.tmp')), []);
});

test('certs issue refuses a lifetime that outlives the CA', async () => {
  const r = await cli(dir, ['certs', 'issue', '--spiffe-id', ID, '--days', '200', '--out', 'certs/long']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /would outlive the CA .*use --days \d+ or less/);
  await assert.rejects(stat(join(dir, 'certs/long.crt')), { code: 'ENOENT' });
});

test('certs issue treats a malformed SPIFFE ID as a usage error', async () => {
  const r = await cli(dir, ['certs', 'issue', '--spiffe-id', 'spiffe://example.org/a/../b', '--out', 'certs/bad']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('certs issue without any name is a usage error', async () => {
  const r = await cli(dir, ['certs', 'issue', '--out', 'certs/anon']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /give --spiffe-id, --dns or --ip/);
});

test('certs issue refuses when the key file already exists and does not write the certificate', async () => {
  await writeFile(join(dir, 'certs/taken.key'), 'someone else\'s key');
  const r = await cli(dir, ['certs', 'issue', '--spiffe-id', ID, '--out', 'certs/taken']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /certs\/taken\.key already exists/);
  await assert.rejects(stat(join(dir, 'certs/taken.crt')), { code: 'ENOENT' });
  assert.equal(await readFile(join(dir, 'certs/taken.key'), 'utf8'), 'someone else\'s key');
});

test('certs issue reports a missing CA in one line', async () => {
  const r = await cli(dir, ['certs', 'issue', '--ca-dir', 'nowhere', '--spiffe-id', ID, '--out', 'x']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'authproxy certs issue: nowhere/ca.crt: cannot read (ENOENT)\n');
});

test('certs issue names the CA key when the certificate is there and the key is not', async () => {
  await mkdir(join(dir, 'halfca'));
  await copyFile(join(dir, 'certs/ca.crt'), join(dir, 'halfca/ca.crt'));
  const r = await cli(dir, ['certs', 'issue', '--ca-dir', 'halfca', '--spiffe-id', ID, '--out', 'x']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'authproxy certs issue: halfca/ca.key: cannot read (ENOENT)\n');
});

test('certs issue --help documents every flag', async () => {
  const r = await cli(dir, ['certs', 'issue', '--help']);
  assert.equal(r.code, 0);
  for (const f of ['--spiffe-id', '--dns', '--ip', '--cn', '--key-type', '--days', '--ca-dir', '--out', '--force']) assert.ok(r.stdout.includes(f), f);
});
