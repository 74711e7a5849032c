// --max-body-bytes: an oversized body, declared or streamed, gets 413 body_too_large and never
// reaches the app; a body within the limit passes whole, chunked or not; a chunked one still
// arriving at the request deadline gets 408 request_timeout. The audit line says what the caller
// got: a deny with the refusal's status and code, though the policy allowed the request.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { once } from 'node:events';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import type { Sidecar } from '../support/sidecar.ts';
import { startPolicedSidecar, type PolicedSidecar } from '../support/policed-sidecar.ts';
import { tlsOptions, replyUntil } from '../support/clients.ts';
import { waitForAuditLine } from '../support/audit.ts';

describe('request body limit', () => {
  let pki: TestPki; let app: TestApp; let policed: PolicedSidecar; let sidecar: Sidecar;

  before(async () => {
    pki = await makePki(); app = await startApp();
    policed = await startPolicedSidecar(pki, app, ['--max-body-bytes', '4k']);
    sidecar = policed.sidecar;
  });
  after(async () => { await policed?.close(); await app?.close(); await pki?.cleanup(); });

  /** POSTs `chunks` (each written separately); `declare` sends a Content-Length, else chunked. The path is also the request id. */
  const post = (path: string, chunks: Buffer[], declare: boolean): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const req = request({ host: '127.0.0.1', port: sidecar.inboundPort, path, method: 'POST', agent: false,
      headers: { 'x-request-id': requestIdOf(path), ...(declare ? { 'content-length': String(total) } : {}) }, ...tlsOptions(pki.ca, pki.clients.billing) }, (res) => {
      let body = ''; res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
  const arrivals = (path: string): number => app.seen.filter((s) => s.url === path).length;
  const requestIdOf = (path: string): string => path.replaceAll('/', '.');
  /** The audit line of the request to `path` says what its caller got, under the rule that allowed it. */
  const assertAuditedRefusal = async (path: string, status: number, code: string): Promise<void> => {
    const line = await waitForAuditLine(policed.auditFile, (l) => l['requestId'] === requestIdOf(path));
    assert.deepEqual([line?.['decision'], line?.['status'], line?.['code']], ['deny', status, code], JSON.stringify(line));
    assert.equal(line?.['rule'], 'billing-everything');
  };

  it('refuses a declared body over the limit with 413 before reading it, and audits the 413, not an allow', async () => {
    const r = await post('/upload/declared', [Buffer.alloc(5000, 1)], true);
    assert.equal(r.status, 413);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'body_too_large');
    assert.match(r.body, /4096 bytes \(--max-body-bytes\)/);
    assert.equal(arrivals('/upload/declared'), 0);
    await assertAuditedRefusal('/upload/declared', 413, 'body_too_large');
  });

  it('refuses a streamed (chunked) body over the limit with 413, audited as such, and the app never sees the request', async () => {
    const r = await post('/upload/chunked-big', Array.from({ length: 6 }, () => Buffer.alloc(1000, 2)), false);
    assert.equal(r.status, 413);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'body_too_large');
    assert.equal(arrivals('/upload/chunked-big'), 0);
    await assertAuditedRefusal('/upload/chunked-big', 413, 'body_too_large');
  });

  it('passes bodies within the limit whole, chunked or declared', async () => {
    const chunked = await post('/upload/chunked-ok', [Buffer.alloc(1500, 3), Buffer.alloc(1500, 4)], false);
    assert.equal(chunked.status, 200);
    assert.deepEqual(JSON.parse(chunked.body), { bytes: 3000 });
    const declared = await post('/upload/declared-ok', [Buffer.alloc(4096, 5)], true);
    assert.deepEqual(JSON.parse(declared.body), { bytes: 4096 });
    const line = await waitForAuditLine(policed.auditFile, (l) => l['requestId'] === requestIdOf('/upload/chunked-ok'));
    assert.deepEqual([line?.['decision'], line?.['status']], ['allow', null]);
  });

  it('answers a chunked body still arriving at the request deadline with 408 request_timeout, audited as such, and the app never sees it', async () => {
    const socket = connect({ host: '127.0.0.1', port: sidecar.inboundPort, ALPNProtocols: ['http/1.1'], ...tlsOptions(pki.ca, pki.clients.billing) });
    await once(socket, 'secureConnect');
    // One 100-byte chunk of a body that is never finished, with a 300 ms deadline.
    socket.write(`POST /upload/chunked-stalled HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\nx-authproxy-deadline: 300\r\nx-request-id: ${requestIdOf('/upload/chunked-stalled')}\r\n\r\n`);
    socket.write(`64\r\n${'x'.repeat(100)}\r\n`);
    const reply = await replyUntil(socket, 'request_timeout');
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.match(reply, /"error":"request_timeout"/);
    assert.equal(arrivals('/upload/chunked-stalled'), 0);
    await assertAuditedRefusal('/upload/chunked-stalled', 408, 'request_timeout');
  });
});
