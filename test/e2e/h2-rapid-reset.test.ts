// HTTP/2 rapid reset (CVE-2023-44487) against the inbound listener, with a real node:http2 client:
// a connection whose client opens streams and resets them at once is closed with GOAWAY
// ENHANCE_YOUR_CALM before it can put more than a few hundred requests to the app; a client that
// cancels a share of its requests, as real ones do, keeps its connection.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startPolicedSidecar, type PolicedSidecar } from '../support/policed-sidecar.ts';
import { tlsOptions, h2request } from '../support/clients.ts';
import { waitFor } from '../support/wait.ts';
import { PREMATURE_RESET_STREAMS } from '../../src/http/premature-reset.ts';

describe('HTTP/2 rapid reset on the inbound listener', () => {
  let pki: TestPki; let app: TestApp; let s: PolicedSidecar;
  const sessions: ClientHttp2Session[] = [];
  const connect = async (): Promise<ClientHttp2Session> => {
    const c = h2connect(`https://localhost:${s.sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    sessions.push(c);
    c.on('error', () => { /* the test reads the GOAWAY and the close */ });
    await new Promise((resolve) => c.once('remoteSettings', resolve));
    return c;
  };
  const closes = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${s.sidecar.adminPort}/metrics`)).text();
    return Number(/^authproxy_h2_rapid_reset_closes_total (\d+)$/m.exec(text)?.[1]);
  };

  before(async () => {
    pki = await makePki();
    // Answers after 50 ms, as an app doing some work: a reset stream is still open at the app.
    app = await startApp({ handler: (req, res) => { req.resume(); setTimeout(() => { if (!res.destroyed) res.end('ok'); }, 50); return true; } });
    s = await startPolicedSidecar(pki, app);
  });
  after(async () => {
    for (const c of sessions) c.destroy();
    await s?.close(); await app?.close(); await pki?.cleanup();
  });

  it(`closes a connection whose client resets its streams as it opens them with GOAWAY ENHANCE_YOUR_CALM, before ${PREMATURE_RESET_STREAMS} of them reach the app`, async () => {
    const c = await connect();
    const seenBefore = app.seen.length;
    let goaway: number | null = null;
    c.on('goaway', (code: number) => { goaway = code; });
    let opened = 0;
    // In bursts of 50, letting the client read between them (it would not notice the GOAWAY otherwise).
    while (goaway === null && !c.destroyed && opened < 4 * PREMATURE_RESET_STREAMS) {
      for (let i = 0; i < 50; i++, opened++) {
        const stream = c.request({ ':method': 'GET', ':path': `/orders/${opened}` });
        stream.on('error', () => {});
        stream.close(h2.NGHTTP2_CANCEL);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(() => goaway !== null && c.destroyed, 'the GOAWAY and the close');
    assert.equal(goaway, h2.NGHTTP2_ENHANCE_YOUR_CALM);
    const reached = app.seen.length - seenBefore;
    assert.ok(reached <= PREMATURE_RESET_STREAMS, `${reached} of the ${opened} streams reached the app`);
    assert.equal(await closes(), 1);
    assert.match(s.sidecar.stderr(), /"msg":"closed an HTTP\/2 connection whose client reset most of its streams at once \(rapid reset\)","peer":"spiffe:\/\/example.org\/ns\/billing\/sa\/api"/);
    // The sidecar serves the same client on a new connection.
    assert.equal((await h2request(await connect(), { ':method': 'GET', ':path': '/orders/after' })).status, 200);
  });

  it('keeps the connection of a client that cancels one request in ten before its answer', async () => {
    const before = await closes();
    const c = await connect();
    let goaway = false;
    c.on('goaway', () => { goaway = true; });
    let answered = 0;
    for (let round = 0; round < 30; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => new Promise<void>((resolve) => {
        const stream = c.request({ ':method': 'GET', ':path': `/orders/${round}-${i}` });
        stream.on('error', () => {});
        stream.on('close', () => resolve());
        stream.on('response', () => { answered++; });
        stream.resume();
        stream.end();
        if (i % 10 === 0) stream.close(h2.NGHTTP2_CANCEL);
      })));
    }
    assert.equal(goaway, false);
    assert.equal(c.destroyed, false);
    assert.equal(answered, 30 * 45, 'every request not cancelled was answered');
    assert.equal(await closes(), before);
  });
});
