// A small request body (declared length up to 64 KiB) is read whole before the request goes to the
// app: a client that stops short never reaches the app, one that is too slow gets 408
// request_timeout at its deadline (audited as that refusal, not as an allow), and bodies of every
// size still arrive intact.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { httpsGet, tlsOptions, replyUntil } from '../support/clients.ts';
import { SMALL_BODY_BYTES } from '../../src/forward/whole-body.ts';
import { auditLines, waitForAuditLine } from '../support/audit.ts';

describe('small request bodies are read whole first', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let work: string; let auditFile: string;

  before(async () => {
    pki = await makePki(); app = await startApp();
    work = await mkdtemp(join(tmpdir(), 'authproxy-whole-body-'));
    auditFile = join(work, 'audit.log');
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', auditFile, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  });
  after(async () => { await sidecar?.stop(); await app?.close(); await pki?.cleanup(); if (work) await rm(work, { recursive: true, force: true }); });

  const arrivals = (path: string): number => app.seen.filter((s) => s.url === path).length;

  /** An mTLS connection speaking raw HTTP/1.1, so a body can be cut short or stalled on purpose. */
  async function rawPost(path: string, declared: number, sent: number, extraHeaders = ''): Promise<TLSSocket> {
    const socket = connect({ host: '127.0.0.1', port: sidecar.inboundPort, ALPNProtocols: ['http/1.1'], ...tlsOptions(pki.ca, pki.clients.billing) });
    await once(socket, 'secureConnect');
    socket.write(`POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: ${declared}\r\n${extraHeaders}\r\n`);
    socket.write(Buffer.alloc(sent, 7));
    return socket;
  }

  it('a client that sends less than it declared and leaves never reaches the app', async () => {
    const socket = await rawPost('/upload/short', 1000, 300);
    await sleep(200);
    socket.destroy();
    await sleep(200);
    assert.equal(arrivals('/upload/short'), 0);
    // The sidecar is unharmed: the next request goes through.
    const ok = await httpsGet(sidecar.inboundPort, '/upload/after-short', pki.ca, pki.clients.billing, { method: 'POST', body: 'x'.repeat(10) });
    assert.equal(ok.status, 200);
  });

  it('a body still incomplete at the request deadline gets 408 request_timeout, audited as that refusal alone, and the app never sees it', async () => {
    const socket = await rawPost('/upload/stalled', 1000, 100, 'x-authproxy-deadline: 300\r\nx-request-id: stalled-small-body\r\n');
    const reply = await replyUntil(socket, 'request_timeout');
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.match(reply, /"error":"request_timeout"/);
    assert.match(reply, /request body not received before the request deadline/);
    assert.equal(arrivals('/upload/stalled'), 0);
    const line = await waitForAuditLine(auditFile, (l) => l.requestId === 'stalled-small-body');
    assert.deepEqual([line?.decision, line?.status, line?.code], ['deny', 408, 'request_timeout'], JSON.stringify(line));
    assert.match(String(line?.reason), /request body not received before the request deadline/);
    assert.equal((await auditLines(auditFile)).filter((l) => l.requestId === 'stalled-small-body').length, 1, 'no allow record besides it');
  });

  it('bodies at, just over and far over the whole-body size arrive intact', async () => {
    for (const size of [1, SMALL_BODY_BYTES, SMALL_BODY_BYTES + 1, 1024 * 1024]) {
      const r = await httpsGet(sidecar.inboundPort, `/upload/size-${size}`, pki.ca, pki.clients.billing, { method: 'POST', body: Buffer.alloc(size, 9) });
      assert.equal(r.status, 200, `size ${size}`);
      assert.deepEqual(JSON.parse(r.body), { bytes: size }, `size ${size}`);
    }
  });
});
