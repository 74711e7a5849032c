// HTTP/2 rapid reset (CVE-2023-44487) against the inbound listener and the outbound one (the app's
// h2c), with a real node:http2 client: a connection whose client opens streams and resets them at
// once is closed with GOAWAY ENHANCE_YOUR_CALM before it can put more than a few hundred requests
// to the app (or, outbound, to the destination); a client that cancels a share of its requests, as
// real ones do, keeps its connection.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, createServer as createH2cServer, constants as h2, type ClientHttp2Session, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, LOOPBACK_BOUNDARY } from '../support/policy-dir.ts';
import { startPolicedSidecar, type PolicedSidecar } from '../support/policed-sidecar.ts';
import { tlsOptions, h2request } from '../support/clients.ts';
import { floodWithResets, rapidResetCloses } from '../support/h2-flood.ts';
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
  const closes = (): Promise<number> => rapidResetCloses(s.sidecar.adminPort, 'inbound');

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
    const { goaway, opened } = await floodWithResets(c, {});
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

describe('HTTP/2 rapid reset on the outbound listener (the app\'s h2c)', () => {
  let pki: TestPki; let destination: Http2Server; let reached = 0; let sidecar: Sidecar; let policies: string;
  const sessions: ClientHttp2Session[] = [];
  const connect = async (): Promise<ClientHttp2Session> => {
    const c = h2connect(`http://127.0.0.1:${sidecar.outboundPort}`);
    sessions.push(c);
    c.on('error', () => { /* the test reads the GOAWAY and the close */ });
    await new Promise((resolve) => c.once('remoteSettings', resolve));
    return c;
  };
  const authority = (): string => `127.0.0.1:${(destination.address() as AddressInfo).port}`;

  before(async () => {
    pki = await makePki();
    // An h2c destination inside the loopback boundary (a plaintext hop keeps the app's HTTP/2) that
    // answers after 50 ms, so a reset stream is still open there.
    destination = createH2cServer((req, res) => {
      reached++;
      req.resume();
      setTimeout(() => { if (!res.destroyed) res.end('ok'); }, 50);
    });
    await new Promise<void>((resolve) => destination.listen(0, '127.0.0.1', resolve));
    policies = await policyDir({ 'boundary.yaml': LOOPBACK_BOUNDARY });
    sidecar = await startSidecar(['--upstream', `http://${authority()}`, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  });
  after(async () => {
    for (const c of sessions) c.destroy();
    await sidecar?.stop();
    destination?.close();
    await pki?.cleanup();
    if (policies) await rm(policies, { recursive: true, force: true });
  });

  it(`closes an app's connection that resets its streams as it opens them with GOAWAY ENHANCE_YOUR_CALM, before ${PREMATURE_RESET_STREAMS} reach the destination`, async () => {
    const c = await connect();
    const reachedBefore = reached;
    const { goaway, opened } = await floodWithResets(c, { ':authority': authority() });
    assert.equal(goaway, h2.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.ok(reached - reachedBefore <= PREMATURE_RESET_STREAMS, `${reached - reachedBefore} of the ${opened} streams reached the destination`);
    assert.equal(await rapidResetCloses(sidecar.adminPort, 'outbound'), 1);
    assert.equal(await rapidResetCloses(sidecar.adminPort, 'inbound'), 0);
    assert.match(sidecar.stderr(), /"msg":"closed an HTTP\/2 connection from the app whose client reset most of its streams at once \(rapid reset\)","address":"127\.0\.0\.1"/);
    // The app's next connection is served.
    const answer = await h2request(await connect(), { ':method': 'GET', ':path': '/orders/after', ':authority': authority() });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'ok');
  });
});
