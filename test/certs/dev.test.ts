import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { ensureDevPki } from '../../src/certs/dev.ts';
import { loadCa } from '../../src/certs/ca.ts';
import { createCA, issueCertificate } from '../../src/certs/pki.ts';
import { openssl, scratch } from './helpers.ts';

const OPTS = { trustDomain: 'dev.local', workloadId: 'spiffe://dev.local/ns/dev/sa/app', clientId: 'ns/dev/sa/client' };

async function contents(paths: string[]): Promise<string[]> {
  return Promise.all(paths.map((p) => readFile(p, 'utf8')));
}

test('ensureDevPki creates a CA, a workload and a client pair that openssl verifies', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const pki = await ensureDevPki(join(dir, 'certs'), OPTS);
    assert.equal(pki.created, true);
    for (const leaf of [pki.workloadCert, pki.clientCert]) {
      const v = await openssl(dir, ['verify', '-CAfile', pki.caCert, leaf]);
      assert.equal(v.code, 0, v.stderr);
    }
    for (const key of [pki.workloadKey, pki.clientKey, join(dir, 'certs/ca.key')]) {
      assert.equal((await stat(key)).mode & 0o777, 0o600, key);
    }
    const w = (await openssl(dir, ['x509', '-in', pki.workloadCert, '-noout', '-ext', 'subjectAltName'])).stdout;
    assert.match(w, /URI:spiffe:\/\/dev\.local\/ns\/dev\/sa\/app/);
    assert.match(w, /DNS:localhost/);
    assert.match(w, /IP Address:127\.0\.0\.1/);
    const c = (await openssl(dir, ['x509', '-in', pki.clientCert, '-noout', '-ext', 'subjectAltName'])).stdout;
    assert.match(c, /URI:spiffe:\/\/dev\.local\/ns\/dev\/sa\/client/);
  } finally { await cleanup(); }
});

test('ensureDevPki reuses existing files as they are', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const first = await ensureDevPki(dir, OPTS);
    const files = [first.caCert, first.workloadCert, first.workloadKey, first.clientCert, first.clientKey];
    const before = await contents(files);
    const again = await ensureDevPki(dir, OPTS);
    assert.equal(again.created, false);
    assert.deepEqual(await contents(files), before);
  } finally { await cleanup(); }
});

test('ensureDevPki recreates only a missing pair and signs it with the existing CA', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const pki = await ensureDevPki(dir, OPTS);
    const kept = await contents([pki.caCert, pki.workloadCert, pki.workloadKey]);
    const oldClient = await readFile(pki.clientCert, 'utf8');
    await rm(pki.clientKey);
    const again = await ensureDevPki(dir, OPTS);
    assert.equal(again.created, true);
    assert.deepEqual(await contents([pki.caCert, pki.workloadCert, pki.workloadKey]), kept);
    assert.notEqual(await readFile(pki.clientCert, 'utf8'), oldClient);
    assert.equal((await openssl(dir, ['verify', '-CAfile', pki.caCert, pki.clientCert])).code, 0);
    assert.equal((await openssl(dir, ['pkey', '-in', pki.clientKey, '-noout'])).code, 0);
  } finally { await cleanup(); }
});

test('ensureDevPki reissues the leaves when it has to create a new CA', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const pki = await ensureDevPki(dir, OPTS);
    await rm(pki.caCert);
    await ensureDevPki(dir, OPTS);
    for (const leaf of [pki.workloadCert, pki.clientCert]) {
      assert.equal((await openssl(dir, ['verify', '-CAfile', pki.caCert, leaf])).code, 0, leaf);
    }
  } finally { await cleanup(); }
});

test('ensureDevPki reissues a leaf that has expired or is within a week of it, signed by the existing CA', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const pki = await ensureDevPki(dir, OPTS);
    const ca = await loadCa(dir);
    const DAY = 86_400_000;
    const expired = await issueCertificate(ca, { spiffeId: OPTS.workloadId, notBefore: new Date(Date.now() - 91 * DAY), notAfter: new Date(Date.now() - DAY) });
    const ending = await issueCertificate(ca, { spiffeId: 'spiffe://dev.local/ns/dev/sa/client', notAfter: new Date(Date.now() + 3 * DAY) });
    await writeFile(pki.workloadCert, expired.certPem); await writeFile(pki.workloadKey, expired.keyPem);
    await writeFile(pki.clientCert, ending.certPem); await writeFile(pki.clientKey, ending.keyPem);
    const caBefore = await readFile(pki.caCert, 'utf8');
    assert.equal((await ensureDevPki(dir, OPTS)).created, true);
    assert.equal(await readFile(pki.caCert, 'utf8'), caBefore, 'the CA, far from its end, is kept');
    for (const leaf of [pki.workloadCert, pki.clientCert]) {
      const c = new X509Certificate(await readFile(leaf));
      assert.ok(new Date(c.validTo).getTime() > Date.now() + 80 * DAY, `${leaf} renewed`);
      assert.equal((await openssl(dir, ['verify', '-CAfile', pki.caCert, leaf])).code, 0, leaf);
    }
  } finally { await cleanup(); }
});

test('ensureDevPki makes a new CA, and new leaves, when the CA is within a month of its end', async () => {
  const { dir, cleanup } = await scratch();
  try {
    const pki = await ensureDevPki(dir, OPTS);
    const old = await createCA({ trustDomain: OPTS.trustDomain, days: 20 });
    await writeFile(pki.caCert, old.certPem); await writeFile(join(dir, 'ca.key'), old.keyPem);
    assert.equal((await ensureDevPki(dir, OPTS)).created, true);
    const ca = new X509Certificate(await readFile(pki.caCert));
    assert.ok(new Date(ca.validTo).getTime() > Date.now() + 300 * 86_400_000, 'a fresh CA');
    for (const leaf of [pki.workloadCert, pki.clientCert]) assert.equal((await openssl(dir, ['verify', '-CAfile', pki.caCert, leaf])).code, 0, leaf);
  } finally { await cleanup(); }
});

test('ensureDevPki refuses an identity outside the trust domain and writes nothing', async () => {
  const { dir, cleanup } = await scratch();
  try {
    await assert.rejects(ensureDevPki(join(dir, 'c'), { ...OPTS, clientId: 'spiffe://elsewhere.org/x' }), /not in trust domain 'dev\.local'/);
    await assert.rejects(stat(join(dir, 'c')), { code: 'ENOENT' });
  } finally { await cleanup(); }
});

test('curl verifies a server using the dev workload certificate and presents the dev client certificate', async () => {
  const { dir, cleanup } = await scratch();
  const pki = await ensureDevPki(dir, OPTS);
  const [cert, key, ca] = await contents([pki.workloadCert, pki.workloadKey, pki.caCert]);
  const server = createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerX509Certificate();
    res.end(peer?.subjectAltName ?? 'none');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  try {
    for (const host of ['localhost', '127.0.0.1']) {
      const out = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
        execFile('curl', ['-sS', '--resolve', `localhost:${port}:127.0.0.1`, '--cacert', pki.caCert, '--cert', pki.clientCert, '--key', pki.clientKey,
          `https://${host}:${port}/`], { encoding: 'utf8' }, (err, stdout, stderr) => done({ code: err ? 1 : 0, stdout, stderr }));
      });
      assert.equal(out.code, 0, `${host}: ${out.stderr}`);
      assert.equal(out.stdout, 'URI:spiffe://dev.local/ns/dev/sa/client');
    }
  } finally {
    await new Promise((ok) => server.close(ok));
    await cleanup();
  }
});
