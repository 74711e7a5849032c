// Request trailers reach an HTTP/2 (h2c) app, from an HTTP/2 caller and from a chunked HTTP/1.1
// one, minus the fields that must not be trailers (authentication, framing) and the names the
// sidecar owns, so a caller cannot assert an identity in a trailer either.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, createServer as createH2cServer, type Http2Server, type IncomingHttpHeaders } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { tlsOptions } from '../support/clients.ts';

const SPOOFED = { 'x-authproxy-principal': 'spiffe://evil/x', 'x-forwarded-client-cert': 'By=evil', authorization: 'Bearer stolen', cookie: 'session=stolen' };

describe('request trailers to an HTTP/2 app', () => {
  let pki: TestPki; let sidecar: Sidecar; let app: Http2Server;
  const seen = new Map<string, { bytes: number; trailers: IncomingHttpHeaders | null }>();

  before(async () => {
    pki = await makePki();
    app = createH2cServer();
    app.on('stream', (stream, headers) => {
      const entry = { bytes: 0, trailers: null as IncomingHttpHeaders | null };
      seen.set(String(headers[':path']), entry);
      stream.on('trailers', (t: IncomingHttpHeaders) => { entry.trailers = t; });
      stream.on('data', (c: Buffer) => { entry.bytes += c.length; });
      stream.on('end', () => { stream.respond({ ':status': 200 }); stream.end('ok'); });
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    sidecar = await startSidecar(['--upstream', `h2c://127.0.0.1:${(app.address() as AddressInfo).port}`, '--cert', pki.server.cert, '--key', pki.server.key,
      '--ca', pki.ca, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  });
  after(async () => { await sidecar?.stop(); app?.close(); await pki?.cleanup(); });

  it('passes an HTTP/2 caller\'s trailers on and drops the ones it must not', async () => {
    const session = h2connect(`https://localhost:${sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/upload/h2-trailers' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'sha256=abc', ...SPOOFED }));
      stream.end(Buffer.alloc(2000, 1));
      let status = 0;
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.resume();
      await once(stream, 'end');
      assert.equal(status, 200);
    } finally { session.close(); }
    const got = seen.get('/upload/h2-trailers');
    assert.equal(got?.bytes, 2000);
    assert.equal(got?.trailers?.['x-checksum'], 'sha256=abc');
    for (const name of Object.keys(SPOOFED)) assert.equal(got?.trailers?.[name], undefined, name);
  });

  it('passes a chunked HTTP/1.1 caller\'s trailers on', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ALPNProtocols: ['http/1.1'], ...tlsOptions(pki.ca, pki.clients.billing) });
    await once(socket, 'secureConnect');
    let reply = '';
    socket.setEncoding('utf8').on('data', (d: string) => { reply += d; });
    socket.write('POST /upload/h1-trailers HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n'
      + '5\r\nhello\r\n0\r\nx-checksum: sha256=def\r\nx-authproxy-principal: spiffe://evil/x\r\n\r\n');
    while (!reply.includes('\r\n\r\n')) await once(socket, 'data');
    socket.destroy();
    assert.match(reply, /^HTTP\/1\.1 200 /);
    const got = seen.get('/upload/h1-trailers');
    assert.equal(got?.bytes, 5);
    assert.equal(got?.trailers?.['x-checksum'], 'sha256=def');
    assert.equal(got?.trailers?.['x-authproxy-principal'], undefined);
  });

  it('ends a streamed request without trailers cleanly (the app sees the whole body and no trailers)', async () => {
    const session = h2connect(`https://localhost:${sidecar.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/upload/h2-plain' });
      stream.end(Buffer.alloc(3000, 2));
      stream.resume();
      await once(stream, 'end');
    } finally { session.close(); }
    assert.equal(seen.get('/upload/h2-plain')?.bytes, 3000);
    assert.equal(seen.get('/upload/h2-plain')?.trailers, null);
  });
});
