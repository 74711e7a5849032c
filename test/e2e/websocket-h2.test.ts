// WebSocket over HTTP/2 (RFC 8441): an extended CONNECT stream is authorized as the GET it stands
// for, reaches the app as an HTTP/1.1 WebSocket handshake, and carries real WebSocket frames both
// ways; a refused one, or a plain CONNECT tunnel, never reaches the app.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { Duplex, Writable } from 'node:stream';
import { makePki, type TestPki, type ClientFiles } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { startPolicedSidecar } from '../support/policed-sidecar.ts';
import { tlsOptions } from '../support/clients.ts';
import { waitForAuditLine } from '../support/audit.ts';

// ws's own framing classes (exported by the package, not typed by @types/ws): the test client
// speaks real, masked WebSocket frames on the HTTP/2 stream.
interface FrameSender { send(data: string, options: { binary: boolean; fin: boolean; mask: boolean; compress: boolean }, cb?: () => void): void }
const ws = createRequire(import.meta.url)('ws') as {
  Sender: new (socket: Duplex) => FrameSender;
  Receiver: new (options: { isServer: boolean }) => Writable;
};

describe('WebSocket over HTTP/2 (RFC 8441)', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let policies: string; let audit: string; let closeSidecar: () => Promise<void>;
  const sessions: ClientHttp2Session[] = [];

  before(async () => {
    pki = await makePki();
    app = await startApp({});
    ({ sidecar, policies, auditFile: audit, close: closeSidecar } = await startPolicedSidecar(pki, app));
  });
  after(async () => {
    for (const s of sessions) s.destroy();
    await closeSidecar?.(); await app?.close(); await pki?.cleanup();
  });

  async function session(client: ClientFiles): Promise<{ s: ClientHttp2Session; connectProtocol: boolean | undefined }> {
    const s = connect(`https://localhost:${sidecar.inboundPort}`, tlsOptions(pki.ca, client));
    sessions.push(s);
    const [settings] = await once(s, 'remoteSettings') as [{ enableConnectProtocol?: boolean }];
    return { s, connectProtocol: settings.enableConnectProtocol };
  }

  async function open(s: ClientHttp2Session, path: string, extra: Record<string, string> = {}): Promise<{ stream: ClientHttp2Stream; headers: IncomingHttpHeaders }> {
    const stream = s.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': path, ':authority': 'localhost',
      'sec-websocket-version': '13', ...extra });
    const [headers] = await once(stream, 'response') as [IncomingHttpHeaders];
    return { stream, headers };
  }

  /** Everything the stream carried back, once it is closed (refusals are short bodies). */
  async function textOf(stream: ClientHttp2Stream): Promise<string> {
    let body = '';
    stream.setEncoding('utf8').on('data', (d: string) => { body += d; });
    await once(stream, 'close');
    return body;
  }

  function echo(stream: ClientHttp2Stream, text: string): Promise<string> {
    const receiver = new ws.Receiver({ isServer: false });
    const reply = new Promise<string>((resolve) => receiver.once('message', (data: Buffer) => resolve(String(data))));
    stream.pipe(receiver);
    new ws.Sender(stream).send(text, { binary: false, fin: true, mask: true, compress: false });
    return reply;
  }

  it('advertises extended CONNECT, and carries a WebSocket to the app with the caller identified and the subprotocol the app chose', async () => {
    const { s, connectProtocol } = await session(pki.clients.billing);
    assert.equal(connectProtocol, true, 'SETTINGS_ENABLE_CONNECT_PROTOCOL');
    const before = app.seen.length;
    const { stream, headers } = await open(s, '/ws/chat?room=1', { 'sec-websocket-protocol': 'chat, superchat', 'x-request-id': 'wsh2-allow' });
    assert.equal(headers[':status'], 200);
    assert.equal(headers['sec-websocket-protocol'], 'chat');
    assert.equal(await echo(stream, 'hello over h2'), 'echo: hello over h2');
    const arrival = app.seen.slice(before).find((x) => x.method === 'WS');
    assert.equal(arrival?.url, '/ws/chat?room=1');
    assert.equal(arrival?.headers['x-authproxy-principal'], 'spiffe://example.org/ns/billing/sa/api');
    assert.equal(arrival?.headers['x-request-id'], 'wsh2-allow');
    stream.close();
    const line = await waitForAuditLine(audit, (l) => l['requestId'] === 'wsh2-allow');
    assert.equal(line?.['decision'], 'allow');
    assert.equal(line?.['method'], 'GET', 'audited as the GET the policy was asked about');
  });

  it('authorizes it as a GET: a caller allowed only to GET /orders may open one there and nowhere else, and the refused one never reaches the app', async () => {
    const { s } = await session(pki.clients.shop);
    const allowed = await open(s, '/orders');
    assert.equal(allowed.headers[':status'], 200);
    assert.equal(await echo(allowed.stream, 'ping'), 'echo: ping');
    allowed.stream.close();

    const before = app.seen.length;
    const denied = await open(s, '/ws/chat', { 'x-request-id': 'wsh2-deny' });
    assert.equal(denied.headers[':status'], 403);
    assert.equal(denied.headers['x-request-id'], 'wsh2-deny');
    denied.stream.resume();
    await once(denied.stream, 'close');
    assert.equal(app.seen.length, before, 'the app saw nothing of the refused WebSocket');
    const line = await waitForAuditLine(audit, (l) => l['requestId'] === 'wsh2-deny');
    assert.equal(line?.['decision'], 'deny');
  });

  it('refuses a plain CONNECT tunnel with 400 bad_request', async () => {
    const { s } = await session(pki.clients.billing);
    const before = app.seen.length;
    const stream = s.request({ ':method': 'CONNECT', ':authority': 'example.com:443' });
    const [headers] = await once(stream, 'response') as [IncomingHttpHeaders];
    const body = await textOf(stream);
    assert.equal(headers[':status'], 400);
    assert.equal((JSON.parse(body) as { error: string }).error, 'bad_request');
    assert.equal(app.seen.length, before);
  });

  it('refuses an HTTP/1.1 CONNECT on the same port with 400 bad_request instead of dropping the connection', async () => {
    const before = app.seen.length;
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ...tlsOptions(pki.ca, pki.clients.billing), ALPNProtocols: ['http/1.1'] });
    await once(socket, 'secureConnect');
    socket.end('CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n');
    let answer = '';
    socket.setEncoding('utf8').on('data', (d: string) => { answer += d; });
    await once(socket, 'close');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /"error":"bad_request"/);
    assert.equal(app.seen.length, before);
  });

  it("answers with the app's own refusal, 502 for a handshake that does not verify, and 504 when the app never answers", async () => {
    // An app that misbehaves on purpose, one way per path: the sidecar's answers to each are the point.
    const handshakes: string[] = [];
    const raw = createTcpServer((socket: Socket) => {
      socket.once('data', (d: Buffer) => {
        const head = d.toString('latin1');
        handshakes.push(head);
        if (head.startsWith('GET /refuse ')) socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nno socket');
        else if (head.startsWith('GET /bad-accept ')) socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: bm90IHRoZSByaWdodCBvbmU=\r\n\r\n');
        // GET /silent: never answered.
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const s2 = await startSidecar(['--upstream', `http://127.0.0.1:${(raw.address() as AddressInfo).port}`, '--cert', pki.server.cert, '--key', pki.server.key,
      '--ca', pki.ca, '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--request-timeout', '400ms']);
    try {
      const s = connect(`https://localhost:${s2.inboundPort}`, tlsOptions(pki.ca, pki.clients.billing));
      sessions.push(s);
      const answer = async (path: string): Promise<{ status: number; body: string }> => {
        const { stream, headers } = await open(s, path);
        return { status: Number(headers[':status']), body: await textOf(stream) };
      };
      assert.deepEqual(await answer('/refuse'), { status: 403, body: 'no socket' });
      const bad = await answer('/bad-accept');
      assert.equal(bad.status, 502);
      assert.equal((JSON.parse(bad.body) as { error: string }).error, 'upstream_unavailable');
      const silent = await answer('/silent');
      assert.equal(silent.status, 504);
      assert.equal((JSON.parse(silent.body) as { error: string }).error, 'upstream_timeout');
      // What the app was sent: an HTTP/1.1 WebSocket handshake with a key of the sidecar's own.
      assert.match(handshakes[0]!, /^GET \/refuse HTTP\/1\.1\r\n/);
      assert.match(handshakes[0]!, /\r\nupgrade: websocket\r\n/i);
      assert.match(handshakes[0]!, /\r\nsec-websocket-key: [A-Za-z0-9+/]{22}==\r\n/i);
      assert.match(handshakes[0]!, /\r\nsec-websocket-version: 13\r\n/i);
    } finally {
      await s2.stop();
      raw.close();
    }
  });
});
