// Reading PEM certificate files: whole blocks are certificates, text around them is tolerated,
// and a piece of a block (a file read while it was being written) refuses the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCA } from '../../src/certs/pki.ts';
import { splitPemCertificates } from '../../src/identity/material.ts';

const [one, two] = await Promise.all([createCA({ trustDomain: 'example.org' }), createCA({ commonName: 'second', trustDomain: 'example.org' })]);

test('a bundle with text around its blocks, as `openssl x509 -text` writes it, yields every certificate', () => {
  const certs = splitPemCertificates(`Certificate:\n    Data: ...\n${one.certPem}\nsubject=CN = second\n${two.certPem}`, 'bundle.pem');
  assert.deepEqual(certs.map((c) => c.subject.includes('second')), [false, true]);
});

test('a bundle that ends in part of a block is refused, not read as the whole blocks before it', () => {
  for (const cut of [10, 200, two.certPem.length - 5]) {
    assert.throws(() => splitPemCertificates(one.certPem + two.certPem.slice(0, cut), 'bundle.pem'), /bundle\.pem.*incomplete PEM block/);
  }
});
