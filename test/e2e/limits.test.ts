// Limits that keep one client from hurting the others: slowloris clients are cut off at the
// header timeout (on the TLS handshake and on the HTTP headers) while others keep being served,
// and connections beyond the configured maximum are dropped.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { httpsGet, tlsOptions } from '../support/clients.ts';

describe('client limits', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar;

  before(async () => {
    pki = await makePki(); app = await startApp();
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--header-timeout', '1s', '--max-connections', '20']);
  });
  after(async () => { await sidecar?.stop(); await app?.close(); await pki?.cleanup(); });

  it('cuts off a client that dribbles its headers, with 408 request_timeout, while others are served', async () => {
    const started = Date.now();
    const slow = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ...tlsOptions(pki.ca, pki.clients.billing) });
    await once(slow, 'secureConnect');
    let received = '';
    slow.setEncoding('utf8').on('data', (d: string) => { received += d; });
    const closed = once(slow, 'close');
    slow.write('GET /orders HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => { if (!slow.destroyed) slow.write('x-a: b\r\n'); }, 200);
    // Meanwhile a well-behaved client is served promptly.
    const ok = await httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.billing);
    assert.equal(ok.status, 200);
    await closed;
    clearInterval(drip);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 5000, `slow client cut after ${elapsed} ms (header timeout 1 s)`);
    assert.match(received, /^HTTP\/1\.1 408/);
    assert.match(received, /"error":"request_timeout"/);
  });

  it('closes a connection that never completes the TLS handshake', async () => {
    const started = Date.now();
    const s = tcpConnect({ host: '127.0.0.1', port: sidecar.inboundPort });
    await once(s, 'connect');
    s.on('error', () => {});
    await once(s, 'close');
    assert.ok(Date.now() - started < 5000, 'stalled handshake is closed near the header timeout');
  });

  it('drops connections beyond --max-connections and serves again once they close', async () => {
    const held: Socket[] = [];
    for (let i = 0; i < 20; i++) {
      const s = tcpConnect({ host: '127.0.0.1', port: sidecar.inboundPort });
      s.on('error', () => {});
      await once(s, 'connect');
      held.push(s);
    }
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.billing), 'the 21st connection is dropped');
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await httpsGet(sidecar.inboundPort, '/orders', pki.ca, pki.clients.billing)).status, 200);
  });
});
