// HTTP/2 frame floods against the inbound listener, written frame by frame over a real mTLS
// connection (ALPN h2, a client certificate the policy allows): the connection is cut after a
// bounded number of frames, nothing reaches the app, and the sidecar goes on serving others.
// These are cut by node:http2 (nghttp2) under the limits the listener sets (header list size,
// session memory); the tests keep them cut if a limit or the runtime changes.
//   - CONTINUATION flood (CVE-2024-27316, CVE-2024-27983): a header block that never ends, with
//     or without bytes in each frame.
//   - PING and SETTINGS floods (CVE-2019-9512, CVE-2019-9515), sent by a client that never reads
//     the acknowledgements, so the queued answers would grow without end. nghttp2 ends a session
//     with more than 1,000 of them queued, which a client that reads but sends faster than they
//     can be written also reaches (3,400 and 7,300 frames in a trial).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { tlsOptions, httpsGet } from '../support/clients.ts';
import { within } from '../support/wait.ts';
import { PREFACE, Type, frame, literal } from '../support/h2-flood.ts';

/** GET https://localhost/orders/1: indexed :method GET, :scheme https, then :path and :authority. */
const REQUEST_HEADERS = Buffer.concat([Buffer.from([0x82, 0x87]), literal(':path', '/orders/1'), literal(':authority', 'localhost')]);

interface FloodResult { closed: boolean; framesSent: number }

/**
 * Writes `next()`'s frames in batches of 100 until the sidecar closes the connection, `cap` frames
 * have gone or 10 s have passed. A client that does not read (`read: false`) leaves every answer in
 * the sidecar's queue.
 */
async function flood(socket: TLSSocket, next: () => Buffer, cap: number): Promise<FloodResult> {
  let closed = false;
  socket.on('close', () => { closed = true; });
  socket.on('error', () => { /* the close is what is checked */ });
  let framesSent = 0;
  const until = Date.now() + 10_000;
  while (!closed && framesSent < cap && Date.now() < until) {
    const batch: Buffer[] = [];
    for (let i = 0; i < 100; i++) batch.push(next());
    framesSent += 100;
    if (!socket.write(Buffer.concat(batch))) await new Promise((resolve) => { socket.once('drain', resolve); setTimeout(resolve, 200); });
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (!closed) await within(new Promise((resolve) => socket.once('close', resolve)), 2000, 'the connection closed').catch(() => {});
  return { closed, framesSent };
}

describe('HTTP/2 frame floods on the inbound listener', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar;
  const sockets: TLSSocket[] = [];

  const open = async (read: boolean): Promise<TLSSocket> => {
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ALPNProtocols: ['h2'], ...tlsOptions(pki.ca, pki.clients.billing) });
    sockets.push(socket);
    await within(new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject)), 5000, 'the handshake');
    assert.equal(socket.alpnProtocol, 'h2');
    if (read) socket.resume(); else socket.pause();
    socket.write(Buffer.concat([PREFACE, frame(Type.SETTINGS, 0, 0, Buffer.alloc(0))]));
    return socket;
  };

  /** The sidecar is still serving: a new client's request is answered by the app. */
  const stillServes = async (): Promise<void> => {
    const r = await httpsGet(sidecar.inboundPort, '/orders/after', pki.ca, pki.clients.billing);
    assert.equal(r.status, 200);
  };

  before(async () => {
    pki = await makePki();
    app = await startApp();
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await sidecar?.stop(); await app?.close(); await pki?.cleanup();
  });

  for (const [what, fragment] of [['header bytes', literal('x-flood', 'x'.repeat(100))], ['no bytes', Buffer.alloc(0)]] as const) {
    it(`cuts a header block that never ends (CONTINUATION frames with ${what}) within 10,000 frames; the app sees nothing and others are served`, async () => {
      const seenBefore = app.seen.length;
      const socket = await open(true);
      // HEADERS without END_HEADERS (flag 0x4), then CONTINUATION without it, for ever.
      socket.write(frame(Type.HEADERS, 0, 1, REQUEST_HEADERS));
      const r = await flood(socket, () => frame(Type.CONTINUATION, 0, 1, fragment), 100_000);
      assert.ok(r.closed, `still open after ${r.framesSent} CONTINUATION frames`);
      assert.ok(r.framesSent <= 10_000, `cut only after ${r.framesSent} frames`);
      assert.equal(app.seen.length, seenBefore);
      await stillServes();
    });
  }

  for (const [what, next] of [
    ['PING', () => frame(Type.PING, 0, 0, Buffer.alloc(8))],
    // SETTINGS_MAX_CONCURRENT_STREAMS = 100, over and over: each must be acknowledged.
    ['SETTINGS', () => frame(Type.SETTINGS, 0, 0, Buffer.from([0x00, 0x03, 0x00, 0x00, 0x00, 0x64]))],
  ] as const) {
    it(`cuts a ${what} flood from a client that never reads the acknowledgements within 100,000 frames, and serves others`, async () => {
      const socket = await open(false);
      const r = await flood(socket, next, 1_000_000);
      assert.ok(r.closed, `still open after ${r.framesSent} ${what} frames`);
      assert.ok(r.framesSent <= 100_000, `cut only after ${r.framesSent} frames`);
      await stillServes();
    });
  }
});
