// The outbound listener takes HTTP/1.1 and cleartext HTTP/2 (h2c, prior knowledge) on one port,
// told apart by the first bytes of a connection; a plaintext hop keeps the app's HTTP version.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { createServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir } from '../support/policy-dir.ts';
import { curl } from '../support/clients.ts';

const LOOPBACK = `apiVersion: authproxy.dev/v1
kind: TrustBoundary
metadata: { name: loopback }
spec:
  cidrs: ["127.0.0.0/8"]
`;

describe('HTTP versions on the outbound listener', () => {
  let pki: TestPki; let app: TestApp; let h2app: Http2Server; let h2port: number; let sidecar: Sidecar; let policies: string;

  before(async () => {
    pki = await makePki();
    app = await startApp();
    // A cleartext HTTP/2 destination (what a gRPC server is) that reports the version it saw.
    h2app = createServer((req, res) => { req.resume(); req.on('end', () => res.end(`h2app saw HTTP/${req.httpVersion} ${req.method} ${req.url}`)); });
    await new Promise<void>((resolve) => h2app.listen(0, '127.0.0.1', resolve));
    h2port = (h2app.address() as AddressInfo).port;
    policies = await policyDir({ 'boundary.yaml': LOOPBACK });
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  });
  after(async () => {
    await sidecar?.stop();
    await app?.close();
    await new Promise<void>((resolve) => h2app.close(() => resolve()));
    await pki?.cleanup();
    if (policies) await rm(policies, { recursive: true, force: true });
  });

  it('carries an h2c request from the app to an h2c destination as HTTP/2, named by :authority', async () => {
    const r = await curl(['--http2-prior-knowledge', '-d', 'x', '-H', `host: 127.0.0.1:${h2port}`, `http://127.0.0.1:${sidecar.outboundPort}/rpc`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'h2app saw HTTP/2.0 POST /rpc');
  });

  it('answers an h2c request to an HTTP/1.1-only destination 502 upstream_unavailable, saying the destination does not speak h2c', async () => {
    // A plaintext hop keeps the app's HTTP version: the destination is sent the HTTP/2 preface.
    const appPort = new URL(app.upstream).port;
    const seenBefore = app.seen.length;
    const r = await curl(['--http2-prior-knowledge', '-d', 'x', '-H', `host: 127.0.0.1:${appPort}`, `http://127.0.0.1:${sidecar.outboundPort}/rpc`]);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as { error: string; message: string };
    assert.equal(body.error, 'upstream_unavailable');
    assert.match(body.message, new RegExp(`^destination 127\\.0\\.0\\.1:${appPort} closed the connection without the HTTP/2 settings an h2c server sends first: it does not speak cleartext HTTP/2 there`));
    assert.equal(app.seen.length, seenBefore);
  });

  it('carries an HTTP/1.1 request on the same port to an HTTP/1.1 destination as HTTP/1.1', async () => {
    const r = await curl(['--http1.1', '-x', `http://127.0.0.1:${sidecar.outboundPort}`, `http://127.0.0.1:${new URL(app.upstream).port}/plain`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { url: string }).url, '/plain');
  });

  it('waits for more bytes when the first segment could still be the HTTP/2 preface, then reads HTTP/1.1', async () => {
    const appPort = new URL(app.upstream).port;
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(sidecar.outboundPort, '127.0.0.1', () => {
        // "P" is how both "POST" and the preface "PRI" start.
        s.write('P');
        setTimeout(() => s.write(`OST /split HTTP/1.1\r\nhost: 127.0.0.1:${appPort}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`), 100);
      });
      let out = '';
      s.setEncoding('utf8').on('data', (d: string) => { out += d; }).on('end', () => resolve(out)).on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 200 /);
    assert.match(reply, /"method":"POST","url":"\/split"/);
  });

  it('answers a header block trickled past --header-timeout 408 request_timeout (slowloris)', async () => {
    const quick = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--header-timeout', '500ms']);
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = connect(quick.outboundPort, '127.0.0.1', () => s.write(`GET /drip HTTP/1.1\r\nhost: 127.0.0.1:${new URL(app.upstream).port}\r\n`));
        const drip = setInterval(() => { if (s.writable) s.write('x-drip: 1\r\n'); }, 100);
        let out = '';
        s.setEncoding('utf8').on('data', (d: string) => { out += d; });
        s.on('close', () => { clearInterval(drip); resolve(out); }).on('error', reject);
        setTimeout(() => s.destroy(), 5000).unref();
      });
      assert.match(reply, /^HTTP\/1\.1 408 /);
      assert.match(reply, /"error":"request_timeout"/);
    } finally { await quick.stop(); }
  });

  it('closes a connection that sends nothing within --header-timeout', async () => {
    const quick = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--header-timeout', '300ms']);
    try {
      const closedAfter = await new Promise<number>((resolve, reject) => {
        const started = Date.now();
        const s = connect(quick.outboundPort, '127.0.0.1');
        s.on('close', () => resolve(Date.now() - started)).on('error', reject);
        setTimeout(() => { s.destroy(); reject(new Error('still open after 5 s')); }, 5000).unref();
      });
      assert.ok(closedAfter < 5000);
    } finally { await quick.stop(); }
  });
});
