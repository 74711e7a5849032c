import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildPkcs12 } from '../../src/certs/pkcs12.ts';
import { createCA, issueCertificate } from '../../src/certs/pki.ts';
import { openssl, scratch } from './helpers.ts';

test('a PKCS#12 bundle with a non-ASCII password opens in openssl with the same UTF-8 password', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const ca = await createCA();
    const leaf = await issueCertificate(ca, { dnsNames: ['svc.example.org'] });
    const password = 'pässwörd € 🔑';
    await writeFile(join(dir, 'b.p12'), buildPkcs12({ keyPem: leaf.keyPem, certificates: [new X509Certificate(leaf.certPem).raw], password, iterations: 2048 }));
    await writeFile(join(dir, 'pw'), `${password}\n`);
    const r = await openssl(dir, ['pkcs12', '-in', 'b.p12', '-nocerts', '-noenc', '-passin', 'file:pw']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /BEGIN PRIVATE KEY/);
  } finally { await cleanup(); }
});

test('a PKCS#12 bundle carries the friendly name on the leaf', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const ca = await createCA();
    const leaf = await issueCertificate(ca, { dnsNames: ['svc.example.org'] });
    await writeFile(join(dir, 'n.p12'), buildPkcs12({ keyPem: leaf.keyPem, certificates: [new X509Certificate(leaf.certPem).raw], password: 'pw', friendlyName: 'orders-api' }));
    await writeFile(join(dir, 'pw'), 'pw\n');
    const r = await openssl(dir, ['pkcs12', '-in', 'n.p12', '-nokeys', '-passin', 'file:pw']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /friendlyName: orders-api/);
  } finally { await cleanup(); }
});
