import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, openssl, scratch } from './helpers.ts';

const PASSWORD = 'correct horse battery staple';
let dir: string; let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await scratch());
  for (const args of [
    ['certs', 'init', '--trust-domain', 'example.org'],
    ['certs', 'issue', '--spiffe-id', 'spiffe://example.org/ns/default/sa/web', '--out', 'certs/web'],
    ['certs', 'issue', '--spiffe-id', 'spiffe://example.org/ns/default/sa/rsa', '--key-type', 'rsa-2048', '--out', 'certs/rsa'],
  ]) {
    const r = await cli(dir, args);
    assert.equal(r.code, 0, r.stderr);
  }
  await writeFile(join(dir, 'pw'), `${PASSWORD}\n`);
});
after(() => cleanup());

const bundle = (out: string, extra: string[] = []): string[] =>
  ['certs', 'pfx', '--cert', 'certs/web.crt', '--key', 'certs/web.key', '--chain', 'certs/ca.crt', '--out', out, ...extra];

test('certs pfx writes a bundle openssl 3 opens without -legacy, with AES-256 and SHA-256', async () => {
  const r = await cli(dir, bundle('a.p12', ['--password-file', 'pw']));
  assert.equal(r.code, 0, r.stderr);
  const info = await openssl(dir, ['pkcs12', '-in', 'a.p12', '-info', '-passin', 'file:pw', '-noenc']);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stderr, /MAC: sha256/);
  assert.match(info.stderr, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256/);
  assert.match(info.stderr, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC/);
  assert.doesNotMatch(info.stderr, /RC2|3DES|sha1/i);
});

test('certs pfx bundles the leaf and the chain in order', async () => {
  assert.equal((await cli(dir, bundle('b.p12', ['--password-file', 'pw']))).code, 0);
  const certs = await openssl(dir, ['pkcs12', '-in', 'b.p12', '-nokeys', '-passin', 'file:pw']);
  assert.equal(certs.code, 0, certs.stderr);
  const subjects = [...certs.stdout.matchAll(/^subject=(.*)$/gm)].map((m) => m[1]);
  assert.deepEqual(subjects, ['CN = web', 'CN = authproxy dev CA']);
});

test('certs pfx bundles the very key it was given', async () => {
  assert.equal((await cli(dir, bundle('c.p12', ['--password-file', 'pw']))).code, 0);
  const keys = await openssl(dir, ['pkcs12', '-in', 'c.p12', '-nocerts', '-noenc', '-passin', 'file:pw', '-out', 'c.key.pem']);
  assert.equal(keys.code, 0, keys.stderr);
  const fromBundle = await openssl(dir, ['pkey', '-in', 'c.key.pem', '-pubout']);
  const original = await openssl(dir, ['pkey', '-in', 'certs/web.key', '-pubout']);
  assert.equal(fromBundle.stdout, original.stdout);
  assert.match(fromBundle.stdout, /BEGIN PUBLIC KEY/);
});

test('certs pfx handles RSA keys as well as EC keys', async () => {
  const r = await cli(dir, ['certs', 'pfx', '--cert', 'certs/rsa.crt', '--key', 'certs/rsa.key', '--out', 'rsa.p12', '--password-file', 'pw']);
  assert.equal(r.code, 0, r.stderr);
  const k = await openssl(dir, ['pkcs12', '-in', 'rsa.p12', '-nocerts', '-noenc', '-passin', 'file:pw']);
  assert.equal(k.code, 0, k.stderr);
  assert.match(k.stdout, /BEGIN PRIVATE KEY/);
});

test('certs pfx reads the password from AUTHPROXY_PFX_PASSWORD', async () => {
  const r = await cli(dir, bundle('d.p12'), { AUTHPROXY_PFX_PASSWORD: PASSWORD });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await openssl(dir, ['pkcs12', '-in', 'd.p12', '-nokeys', '-passin', 'file:pw'])).code, 0);
});

test('certs pfx output is only readable with the password', async () => {
  assert.equal((await cli(dir, bundle('e.p12', ['--password-file', 'pw']))).code, 0);
  await writeFile(join(dir, 'wrong'), 'not the password\n');
  const r = await openssl(dir, ['pkcs12', '-in', 'e.p12', '-nokeys', '-passin', 'file:wrong']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Mac verify error/);
});

test('certs pfx writes the bundle with mode 0600', async () => {
  assert.equal((await cli(dir, bundle('f.p12', ['--password-file', 'pw']))).code, 0);
  assert.equal((await stat(join(dir, 'f.p12'))).mode & 0o777, 0o600);
});

test('certs pfx refuses a password given as a flag without echoing it', async () => {
  for (const args of [['--password', 'hunter2-secret'], ['--password=hunter2-secret']]) {
    const r = await cli(dir, bundle('g.p12', args));
    assert.equal(r.code, 2);
    assert.doesNotMatch(r.stdout + r.stderr, /hunter2-secret/);
    assert.match(r.stderr, /--password-file FILE or AUTHPROXY_PFX_PASSWORD/);
  }
  await assert.rejects(stat(join(dir, 'g.p12')), { code: 'ENOENT' });
});

test('certs pfx without any password is a usage error', async () => {
  const r = await cli(dir, bundle('h.p12'));
  assert.equal(r.code, 2);
  await assert.rejects(stat(join(dir, 'h.p12')), { code: 'ENOENT' });
});

test('certs pfx refuses an empty password', async () => {
  await writeFile(join(dir, 'empty'), '\n');
  const r = await cli(dir, bundle('i.p12', ['--password-file', 'empty']));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /empty/);
  await assert.rejects(stat(join(dir, 'i.p12')), { code: 'ENOENT' });
});

test('certs pfx refuses a key that does not belong to the certificate', async () => {
  const r = await cli(dir, ['certs', 'pfx', '--cert', 'certs/web.crt', '--key', 'certs/rsa.key', '--out', 'j.p12', '--password-file', 'pw']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /private key does not belong to certs\/web\.crt/);
  assert.doesNotMatch(r.stderr, /PRIVATE KEY|MII/);
  await assert.rejects(stat(join(dir, 'j.p12')), { code: 'ENOENT' });
});

test('certs pfx refuses a chain that does not contain the issuer', async () => {
  const r = await cli(dir, ['certs', 'pfx', '--cert', 'certs/web.crt', '--key', 'certs/web.key', '--chain', 'certs/rsa.crt', '--out', 'k.p12', '--password-file', 'pw']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /chain does not contain the issuer/);
});
