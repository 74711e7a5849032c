// `Expect: 100-continue`: the sidecar sends the 100 only once the request is allowed, so a refused
// caller never uploads its body. Before, Node answered 100 on arrival, before authorization, and a
// request the policy denied still sent its whole body across the network to be thrown away.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type TestPki, type ClientFiles } from '../support/pki.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { policyDir, TEST_POLICY, LOOPBACK_BOUNDARY } from '../support/policy-dir.ts';
import { tlsOptions, curl } from '../support/clients.ts';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { waitForAuditLine } from '../support/audit.ts';

const BOUNDARY_UPLOADS = `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: boundary-uploads }
spec:
  rules:
    - name: loopback-uploads
      action: allow
      from: [{ principals: ["boundary:loopback"] }]
      to: [{ methods: [POST], paths: ["/upload"] }]
`;

interface Outcome { continued: boolean; status: number; connection: string | undefined; body: string }

/** A POST that sends its body only after a 100 Continue; a final answer first ends it unsent. */
function expectingPost(send: (onContinue: () => void, onResponse: (res: IncomingMessage) => void) => { end(b: Buffer): void; destroy(): void }, body: Buffer): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = send(() => { continued = true; req.end(body); }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => {
        resolve({ continued, status: res.statusCode ?? 0, connection: res.headers.connection, body: text });
        if (!continued) req.destroy();
      }).on('error', reject);
    });
  });
}

describe('Expect: 100-continue is answered after authorization', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let policies: string; let audit: string;
  const body = Buffer.alloc(20_000, 'b');

  before(async () => {
    pki = await makePki();
    app = await startApp();
    policies = await policyDir({ 'policy.yaml': TEST_POLICY, 'boundary.yaml': LOOPBACK_BOUNDARY, 'uploads.yaml': BOUNDARY_UPLOADS });
    audit = join(policies, 'audit.log');
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', audit, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
      '--plaintext-listen', '127.0.0.1:0', '--max-body-bytes', '64k']);
  });
  after(async () => {
    await sidecar?.stop();
    await app?.close();
    if (policies) await rm(policies, { recursive: true, force: true });
    await pki?.cleanup();
  });

  const h1 = (path: string, client: ClientFiles, length = body.length): Promise<Outcome> => expectingPost((onContinue, onResponse) => {
    const req = httpsRequest({ host: '127.0.0.1', port: sidecar.inboundPort, path, method: 'POST', agent: false, ...tlsOptions(pki.ca, client),
      headers: { expect: '100-continue', 'content-length': String(length) } }, onResponse);
    req.on('continue', onContinue);
    return req;
  }, body);

  const h2 = (path: string, client: ClientFiles): Promise<Outcome> => {
    const session = http2Connect(`https://localhost:${sidecar.inboundPort}`, tlsOptions(pki.ca, client));
    return new Promise<Outcome>((resolve, reject) => {
      let continued = false;
      const stream = session.request({ ':method': 'POST', ':path': path, expect: '100-continue', 'content-length': String(body.length) }, { endStream: false });
      stream.on('continue', () => { continued = true; stream.end(body); });
      let status = 0; let text = '';
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.setEncoding('utf8').on('data', (d: string) => { text += d; });
      stream.on('end', () => resolve({ continued, status, connection: undefined, body: text }));
      stream.on('error', reject);
    }).finally(() => session.close());
  };

  it('an allowed HTTP/1.1 request gets its 100 Continue, and the app gets the body', async () => {
    const r = await h1('/upload/h1', pki.clients.billing);
    assert.deepEqual([r.continued, r.status, JSON.parse(r.body)], [true, 200, { bytes: body.length }]);
  });

  it('a denied HTTP/1.1 request gets 403 without a 100 Continue, on a connection that closes, and nothing reaches the app', async () => {
    const r = await h1('/admin/upload', pki.clients.billing);
    assert.deepEqual([r.continued, r.status, r.connection, JSON.parse(r.body).error], [false, 403, 'close', 'forbidden']);
    assert.ok(!app.seen.some((s) => s.url === '/admin/upload'));
    const record = await waitForAuditLine(audit, (l) => l.path === '/admin/upload');
    assert.equal(record?.decision, 'deny');
  });

  it('a request whose declared body is over --max-body-bytes gets 413 without a 100 Continue', async () => {
    const r = await h1('/upload/big', pki.clients.billing, 100_000);
    assert.deepEqual([r.continued, r.status, r.connection, JSON.parse(r.body).error], [false, 413, 'close', 'body_too_large']);
    assert.ok(!app.seen.some((s) => s.url === '/upload/big'));
  });

  it('an allowed HTTP/2 request gets its 100 Continue, and the app gets the body', async () => {
    const r = await h2('/upload/h2', pki.clients.billing);
    assert.deepEqual([r.continued, r.status, JSON.parse(r.body)], [true, 200, { bytes: body.length }]);
  });

  it('a denied HTTP/2 request gets 403 without a 100 Continue', async () => {
    const r = await h2('/orders/1', pki.clients.shop);
    assert.deepEqual([r.continued, r.status, JSON.parse(r.body).error], [false, 403, 'forbidden']);
    assert.ok(!app.seen.some((s) => s.url === '/orders/1' && s.method === 'POST'));
  });

  it('the plaintext listener inside a boundary answers 100 Continue only to an allowed request', async () => {
    const plain = (path: string): Promise<Outcome> => expectingPost((onContinue, onResponse) => {
      const req = httpRequest({ host: '127.0.0.1', port: Number(/"plaintext":"[^"]*:(\d+)"/.exec(sidecar.stderr())?.[1]), path, method: 'POST', agent: false,
        headers: { expect: '100-continue', 'content-length': String(body.length) } }, onResponse);
      req.on('continue', onContinue);
      return req;
    }, body);
    const allowed = await plain('/upload');
    const denied = await plain('/orders');
    assert.deepEqual([allowed.continued, allowed.status, JSON.parse(allowed.body)], [true, 200, { bytes: body.length }]);
    assert.deepEqual([denied.continued, denied.status, denied.connection], [false, 403, 'close']);
  });

  for (const listener of ['mTLS', 'plaintext'] as const) {
    it(`a denied client on the ${listener} listener that sends 10 MB without waiting for the 100 reads its whole 403, not a reset; a request it pipelines behind is dropped`, async () => {
      const big = 10 * 1024 * 1024;
      const socket = listener === 'mTLS'
        ? tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ...tlsOptions(pki.ca, pki.clients.billing) })
        : netConnect({ host: '127.0.0.1', port: Number(/"plaintext":"[^"]*:(\d+)"/.exec(sidecar.stderr())?.[1]) });
      let text = '';
      socket.setEncoding('latin1').on('data', (d: string) => { text += d; });
      const closed = new Promise<string | null>((resolve) => { socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message)); socket.on('close', () => resolve(null)); });
      const path = listener === 'mTLS' ? '/admin/eager' : '/orders/eager';
      socket.write(`POST ${path} HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: ${big}\r\n\r\n`);
      socket.write(Buffer.alloc(big, 'b'));
      socket.end(`GET /orders/behind-${listener} HTTP/1.1\r\nHost: a\r\n\r\n`);
      assert.equal(await closed, null, 'no reset');
      assert.deepEqual([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1])), [403], text.slice(0, 300));
      assert.match(text, /"error":"forbidden"[^]*\}$/, 'the whole answer');
      assert.ok(!app.seen.some((s) => s.url === path || s.url === `/orders/behind-${listener}`), 'neither reached the app');
    });
  }

  it('curl sees 100 Continue before an allowed upload and a bare 403 for a denied one', async () => {
    const file = join(policies, 'upload.bin');
    await writeFile(file, body);
    const run = (path: string) => curl(['-sv', '--http1.1', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, '-o', '/dev/null', '-w', '%{http_code}',
      '--cacert', pki.ca, '--cert', pki.clients.billing.cert, '--key', pki.clients.billing.key, `https://localhost:${sidecar.inboundPort}${path}`]);
    const allowed = await run('/upload/curl');
    const denied = await run('/admin/curl');
    assert.equal(allowed.stdout, '200');
    assert.match(allowed.stderr, /< HTTP\/1\.1 100 Continue/);
    assert.equal(denied.stdout, '403');
    assert.doesNotMatch(denied.stderr, /100 Continue/);
    assert.ok(!app.seen.some((s) => s.url === '/admin/curl'));
  });
});
