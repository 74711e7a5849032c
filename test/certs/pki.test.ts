import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCA, createCsr, issueCertificate, signCsr } from '../../src/certs/pki.ts';
import { openssl, scratch } from './helpers.ts';

test('an EC leaf has no keyEncipherment usage while an RSA leaf keeps it', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const ca = await createCA();
    await writeFile(join(dir, 'ec.crt'), (await issueCertificate(ca, { dnsNames: ['ec.example.org'] })).certPem);
    await writeFile(join(dir, 'rsa.crt'), (await issueCertificate(ca, { dnsNames: ['rsa.example.org'], keyType: 'rsa-2048' })).certPem);
    const ec = await openssl(dir, ['x509', '-in', 'ec.crt', '-noout', '-ext', 'keyUsage']);
    const rsa = await openssl(dir, ['x509', '-in', 'rsa.crt', '-noout', '-ext', 'keyUsage']);
    assert.match(ec.stdout, /^\s*Digital Signature\s*$/m);
    assert.match(rsa.stdout, /Digital Signature, Key Encipherment/);
  } finally { await cleanup(); }
});

test('signCsr copies the requested IP SANs into the certificate', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const ca = await createCA();
    const { csrPem } = await createCsr({ dnsNames: ['a.example.org'], ipAddresses: ['10.0.0.7', '::1'] });
    await writeFile(join(dir, 'a.crt'), await signCsr(ca, csrPem));
    const r = await openssl(dir, ['x509', '-in', 'a.crt', '-noout', '-ext', 'subjectAltName']);
    assert.match(r.stdout, /DNS:a\.example\.org, IP Address:10\.0\.0\.7, IP Address:0:0:0:0:0:0:0:1/);
  } finally { await cleanup(); }
});
