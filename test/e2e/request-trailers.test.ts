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
  let pki: TestPki; let sidecar: Sidecar; let limited: Sidecar; let meshHeader: Sidecar; let app: Http2Server;
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
    const args = ['--upstream', `h2c://127.0.0.1:${(app.address() as AddressInfo).port}`, '--cert', pki.server.cert, '--key', pki.server.key,
      '--ca', pki.ca, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'];
    // With a body limit, a body of undeclared size is read whole and checked before it is forwarded (src/forward/body-limit.ts).
    [sidecar, limited, meshHeader] = await Promise.all([startSidecar(args), startSidecar([...args, '--max-body-bytes', '10000']), startSidecar([...args, '--token-header', 'x-mesh-token'])]);
  });
  after(async () => { await sidecar?.stop(); await limited?.stop(); await meshHeader?.stop(); app?.close(); await pki?.cleanup(); });

  /** Sends an HTTP/2 POST of 2,000 bytes with trailers, spoofed ones among them, and returns what the app saw. */
  async function h2WithTrailers(path: string, headers: Record<string, string> = {}, via = sidecar, extra: Record<string, string> = {}): Promise<{ bytes: number; trailers: IncomingHttpHeaders | null } | undefined> {
    const session = h2connect(`https://localhost:${via.inboundPort}`, { ...tlsOptions(pki.ca, pki.clients.billing), host: '127.0.0.1' });
    try {
      const stream = session.request({ ':method': 'POST', ':path': path, ...headers }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'sha256=abc', ...SPOOFED, ...extra }));
      stream.end(Buffer.alloc(2000, 1));
      let status = 0;
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.resume();
      await once(stream, 'end');
      assert.equal(status, 200);
    } finally { session.close(); }
    return seen.get(path);
  }

  it('passes an HTTP/2 caller\'s trailers on and drops the ones it must not', async () => {
    const got = await h2WithTrailers('/upload/h2-trailers');
    assert.equal(got?.bytes, 2000);
    assert.equal(got?.trailers?.['x-checksum'], 'sha256=abc');
    for (const name of Object.keys(SPOOFED)) assert.equal(got?.trailers?.[name], undefined, name);
  });

  it('drops a request trailer named as the --token-header, as it drops authorization: a caller cannot assert a token in a trailer', async () => {
    for (const [path, headers] of [['/upload/mesh-streamed', {}], ['/upload/mesh-declared', { 'content-length': '2000' }]] as const) {
      const got = await h2WithTrailers(path, headers, meshHeader, { 'x-mesh-token': 'forged.token.here' });
      assert.equal(got?.trailers?.['x-checksum'], 'sha256=abc', path);
      assert.equal(got?.trailers?.['x-mesh-token'], undefined, path);
    }
  });

  // A declared body of up to 64 KiB is read whole before it is forwarded (src/forward/whole-body.ts).
  it('passes an HTTP/2 caller\'s trailers on when its body\'s length was declared and read whole first', async () => {
    const got = await h2WithTrailers('/upload/h2-declared', { 'content-length': '2000' });
    assert.equal(got?.bytes, 2000);
    assert.equal(got?.trailers?.['x-checksum'], 'sha256=abc');
    for (const name of Object.keys(SPOOFED)) assert.equal(got?.trailers?.[name], undefined, name);
  });

  /** Sends a chunked HTTP/1.1 POST with trailers through `via` and returns what the app saw. */
  async function chunkedWithTrailers(via: Sidecar, path: string): Promise<{ bytes: number; trailers: IncomingHttpHeaders | null } | undefined> {
    const socket = tlsConnect({ host: '127.0.0.1', port: via.inboundPort, ALPNProtocols: ['http/1.1'], ...tlsOptions(pki.ca, pki.clients.billing) });
    await once(socket, 'secureConnect');
    let reply = '';
    socket.setEncoding('utf8').on('data', (d: string) => { reply += d; });
    socket.write(`POST ${path} HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n`
      + '5\r\nhello\r\n0\r\nx-checksum: sha256=def\r\nx-authproxy-principal: spiffe://evil/x\r\n\r\n');
    while (!reply.includes('\r\n\r\n')) await once(socket, 'data');
    socket.destroy();
    assert.match(reply, /^HTTP\/1\.1 200 /);
    return seen.get(path);
  }

  it('passes a chunked HTTP/1.1 caller\'s trailers on', async () => {
    const got = await chunkedWithTrailers(sidecar, '/upload/h1-trailers');
    assert.equal(got?.bytes, 5);
    assert.equal(got?.trailers?.['x-checksum'], 'sha256=def');
    assert.equal(got?.trailers?.['x-authproxy-principal'], undefined);
  });

  it('passes a chunked caller\'s trailers on when --max-body-bytes held its body back to check it', async () => {
    const got = await chunkedWithTrailers(limited, '/upload/h1-limited');
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
