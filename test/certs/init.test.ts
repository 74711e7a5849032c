import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, openssl, scratch } from './helpers.ts';

let dir: string; let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await scratch()));
after(() => cleanup());

test('certs init writes a CA that openssl reads as a CA carrying the trust-domain URI', async () => {
  const r = await cli(dir, ['certs', 'init', '--dir', 'a', '--trust-domain', 'example.org']);
  assert.equal(r.code, 0, r.stderr);
  const text = await openssl(dir, ['x509', '-in', 'a/ca.crt', '-noout', '-text']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /CA:TRUE/);
  assert.match(text.stdout, /Certificate Sign/);
  assert.match(text.stdout, /URI:spiffe:\/\/example\.org\b/);
  const key = await openssl(dir, ['pkey', '-in', 'a/ca.key', '-noout']);
  assert.equal(key.code, 0, key.stderr);
});

test('certs init writes the CA key with mode 0600', async () => {
  const r = await cli(dir, ['certs', 'init', '--dir', 'b']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await stat(join(dir, 'b/ca.key'))).mode & 0o777, 0o600);
});

test('certs init honours --key-type and --days', async () => {
  const r = await cli(dir, ['certs', 'init', '--dir', 'c', '--key-type', 'rsa-3072', '--days', '10']);
  assert.equal(r.code, 0, r.stderr);
  const text = await openssl(dir, ['x509', '-in', 'c/ca.crt', '-noout', '-text']);
  assert.match(text.stdout, /Public-Key: \(3072 bit\)/);
  const end = await openssl(dir, ['x509', '-in', 'c/ca.crt', '-noout', '-checkend', String(11 * 86400)]);
  assert.equal(end.code, 1, 'a 10-day CA is gone in 11 days');
  const soon = await openssl(dir, ['x509', '-in', 'c/ca.crt', '-noout', '-checkend', String(9 * 86400)]);
  assert.equal(soon.code, 0, 'a 10-day CA is still valid in 9 days');
});

test('certs init refuses to replace an existing CA and leaves both files untouched', async () => {
  assert.equal((await cli(dir, ['certs', 'init', '--dir', 'd'])).code, 0);
  const before = [await readFile(join(dir, 'd/ca.crt'), 'utf8'), await readFile(join(dir, 'd/ca.key'), 'utf8')];
  const r = await cli(dir, ['certs', 'init', '--dir', 'd']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^authproxy certs init: d\/ca\.crt already exists \(use --force to replace it\)\n$/);
  assert.deepEqual([await readFile(join(dir, 'd/ca.crt'), 'utf8'), await readFile(join(dir, 'd/ca.key'), 'utf8')], before);
});

test('certs init refuses when only the key exists and writes no certificate', async () => {
  await mkdir(join(dir, 'e'));
  await writeFile(join(dir, 'e/ca.key'), 'existing key');
  const r = await cli(dir, ['certs', 'init', '--dir', 'e']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /e\/ca\.key already exists/);
  await assert.rejects(stat(join(dir, 'e/ca.crt')), { code: 'ENOENT' });
  assert.equal(await readFile(join(dir, 'e/ca.key'), 'utf8'), 'existing key');
});

test('certs init --force replaces an existing CA', async () => {
  assert.equal((await cli(dir, ['certs', 'init', '--dir', 'f'])).code, 0);
  const old = await readFile(join(dir, 'f/ca.crt'), 'utf8');
  const r = await cli(dir, ['certs', 'init', '--dir', 'f', '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.notEqual(await readFile(join(dir, 'f/ca.crt'), 'utf8'), old);
  assert.equal((await stat(join(dir, 'f/ca.key'))).mode & 0o777, 0o600);
});

test('certs init rejects an invalid trust domain as a usage error', async () => {
  const r = await cli(dir, ['certs', 'init', '--dir', 'g', '--trust-domain', 'Example.ORG/x']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  await assert.rejects(stat(join(dir, 'g')), { code: 'ENOENT' });
});
