// Upgrade requests (WebSocket) on the outbound listener, end to end: the real CLI as the sidecar,
// the real dev issuer as its own process (tokens by tls_client_auth with the workload
// certificate), and two WebSocket destinations on node:http 'upgrade': one in plain HTTP inside a
// trust boundary (127.0.0.2), one over TLS outside every boundary (127.0.0.3) that requires a
// client certificate from the mesh CA. The app is a raw socket speaking RFC 6455 by hand.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttp, request, type IncomingMessage, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import { createServer as createHttps, type Server as HttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { connect as h2connect } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { issueCertificate } from '../../src/certs/pki.ts';
import { SERVER_ID, type TestPki } from '../support/pki.ts';
import type { Sidecar } from '../support/sidecar.ts';
import { auditLines, waitForAuditLine, type AuditLine } from '../support/audit.ts';
import { route, boundary } from '../policy/helpers.ts';
import { startOutboundFixture, type OutboundFixture } from '../outbound/fixture.ts';
import { startHttpsIssuer, bearer, type IssuerProcess } from '../tokens/support.ts';
import { Received, acceptFor, newKey, readTextFrame, textFrame } from '../support/raw-websocket.ts';

const POLICIES = [
  route('chat', '{ hosts: ["127.0.0.2"], token: { audience: "api://chat", scopes: ["chat.talk"] } }'),
  route('feed', '{ hosts: ["127.0.0.3"], token: { audience: "api://chat" }, tls: mtls }'),
  boundary('near', '{ cidrs: ["127.0.0.2/32"] }'),
].join('---\n');

const CLIENTS = `clients:
  orders:
    auth: tls_client_auth
    spiffeId: ${SERVER_ID}
    audiences:
      api://chat:
        scopes: [chat.talk]
`;

const issuerFor = (pki: TestPki, work: string): Promise<IssuerProcess> => startHttpsIssuer(pki, work, CLIENTS);

/** One upgrade as a destination received it. */
interface Arrival {
  path: string;
  headers: IncomingHttpHeaders;
  /** The client certificate's SANs, on the TLS destination. */
  peerSan: string | undefined;
  /** Bytes that reached the destination after its answer to a handshake it refused. */
  after: Buffer[];
}

/**
 * A WebSocket destination: /refuse answers 403 and /ignore 200 (both keeping the connection open
 * and recording what still arrives on it), /hang never answers; any other path switches protocols
 * and echoes each text frame as `echo: <text>`. Plain requests are answered with the
 * Authorization they carried.
 */
function wsDestination(server: HttpServer | HttpsServer): Arrival[] {
  const arrivals: Arrival[] = [];
  server.on('request', (req: IncomingMessage, res) => { res.end(JSON.stringify({ authorization: req.headers.authorization ?? null })); });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tls = (socket as TLSSocket).encrypted === true ? socket as TLSSocket : null;
    const a: Arrival = { path: req.url ?? '', headers: req.headers, peerSan: tls?.getPeerCertificate().subjectaltname, after: [] };
    arrivals.push(a);
    socket.on('error', () => {});
    const path = a.path.split('?')[0];
    if (path === '/refuse' || path === '/ignore') {
      if (head.length > 0) a.after.push(head);
      socket.on('data', (d: Buffer) => a.after.push(d));
      socket.write(path === '/refuse'
        ? 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Destination: refused\r\nContent-Length: 6\r\n\r\nno way'
        : 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok');
      return;
    }
    if (path === '/hang') return;
    if (path === '/trickle') {
      // An answer that never ends: a byte of one header line every 100 ms.
      socket.write('HTTP/1.1 101 Switching Protocols\r\nX-Slow: ');
      const t = setInterval(() => socket.write('a'), 100);
      socket.on('close', () => clearInterval(t));
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
    let buf = head;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let f = readTextFrame(buf); f !== null; f = readTextFrame(buf)) { buf = f.rest; socket.write(textFrame(`echo: ${f.text}`, false)); }
    });
  });
  return arrivals;
}

async function listen(server: HttpServer | HttpsServer, host: string): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

describe('Upgrade requests on the outbound listener', () => {
  let fixture: OutboundFixture; let sidecar: Sidecar; let audit: string;
  const servers: Array<HttpServer | HttpsServer> = [];
  let plain: Arrival[]; let secure: Arrival[]; let plainPort: number; let securePort: number;
  const tokensSeen = new Set<string>();

  before(async () => {
    fixture = await startOutboundFixture({
      name: 'outbound-upgrade', policies: { 'routes.yaml': POLICIES }, issuer: issuerFor,
      sidecarArgs: (f) => ['--audit-log', join(f.work, 'audit.log'), '--upgrade-protocols', 'websocket,spdy'],
    });
    sidecar = fixture.sidecar;
    audit = join(fixture.work, 'audit.log');
    const inside = createHttp(); servers.push(inside);
    plain = wsDestination(inside);
    plainPort = await listen(inside, '127.0.0.2');
    const pair = await issueCertificate(fixture.pki.caPair, { ipAddresses: ['127.0.0.3'] });
    const outside = createHttps({ cert: pair.certPem, key: pair.keyPem, ca: fixture.pki.caPair.certPem, requestCert: true, rejectUnauthorized: true });
    servers.push(outside);
    secure = wsDestination(outside);
    securePort = await listen(outside, '127.0.0.3');
  });
  after(async () => {
    for (const s of servers) { s.closeAllConnections(); s.close(); }
    await fixture?.close();
  });

  /**
   * Opens a connection to the outbound listener and sends a WebSocket handshake for `url`:
   * absolute-form, or origin-form with Host naming the destination; `then` goes right behind it.
   */
  async function handshake(url: string, opts: { originForm?: boolean; id?: string; headers?: string; then?: Buffer } = {}): Promise<{ conn: Received; key: string }> {
    const u = new URL(url);
    const socket: Socket = connect(sidecar.outboundPort, '127.0.0.1');
    await once(socket, 'connect');
    const conn = new Received(socket);
    const key = newKey();
    socket.write(`GET ${opts.originForm ? `${u.pathname}${u.search}` : url} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
      + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${opts.id ? `x-request-id: ${opts.id}\r\n` : ''}${opts.headers ?? ''}\r\n`);
    if (opts.then) socket.write(opts.then);
    return { conn, key };
  }

  /** Two text frames each way through an upgraded connection. */
  async function echoes(conn: Received): Promise<void> {
    conn.socket.write(textFrame('hello', true));
    assert.equal(await conn.frame(), 'echo: hello');
    conn.socket.write(textFrame('second', true));
    assert.equal(await conn.frame(), 'echo: second');
  }

  /** A plain GET through the outbound listener (absolute-form): the Authorization the destination saw. */
  const plainGet = (url: string): Promise<string | null> => new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: sidecar.outboundPort, path: url, agent: false }, (res) => {
      let body = ''; res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve((JSON.parse(body) as { authorization: string | null }).authorization));
    });
    req.on('error', reject);
    req.end();
  });

  const recordsOf = async (requestId: string): Promise<AuditLine[]> => {
    await waitForAuditLine(audit, (l) => l.requestId === requestId);
    await new Promise((r) => setTimeout(r, 200));
    return (await auditLines(audit)).filter((l) => l.requestId === requestId);
  };

  it('a WebSocket to a plaintext destination inside the boundary switches protocols, echoes, and carries the route\'s token, which the app never sent', async () => {
    const before = plain.length;
    // A first frame sent right behind the handshake, before any answer, is delivered after the 101.
    const { conn, key } = await handshake(`http://127.0.0.2:${plainPort}/chat?room=1`, { id: 'ws-plain', then: textFrame('early', true) });
    const answer = await conn.head();
    assert.equal(answer.status, 101, answer.raw);
    assert.equal(answer.headers['sec-websocket-accept'], acceptFor(key), 'the destination\'s own accept, for the app\'s key');
    assert.equal(await conn.frame(), 'echo: early');
    await echoes(conn);
    conn.socket.destroy();

    assert.equal(plain.length, before + 1);
    const h = plain.at(-1)!.headers;
    assert.equal(plain.at(-1)!.path, '/chat?room=1');
    assert.equal(h.upgrade, 'websocket');
    assert.equal(h.connection, 'upgrade');
    assert.equal(h['sec-websocket-key'], key);
    assert.equal(h.host, `127.0.0.2:${plainPort}`);
    assert.equal(h['x-request-id'], 'ws-plain');
    assert.match(String(h['x-authproxy-hop']), /^[0-9a-f-]{36}$/, 'marked as every plaintext hop is (loop check)');
    const token = bearer(h as Record<string, string>);
    tokensSeen.add(token);
    const claims = decodeJwt(token);
    assert.equal(claims.aud, 'api://chat');
    assert.equal(claims.client_id, 'orders');
    assert.equal(claims.scope, 'chat.talk');
    assert.equal(await plainGet(`http://127.0.0.2:${plainPort}/plain`), `Bearer ${token}`, 'the same token a plain request on the route gets');
  });

  it('a WebSocket to a destination outside every boundary goes over mTLS with the workload certificate (origin-form, by Host), and echoes', async () => {
    const before = secure.length;
    const { conn } = await handshake(`http://127.0.0.3:${securePort}/feed`, { originForm: true, id: 'ws-mtls' });
    const answer = await conn.head();
    assert.equal(answer.status, 101, answer.raw);
    await echoes(conn);
    conn.socket.destroy();
    assert.equal(secure.length, before + 1);
    const arrival = secure.at(-1)!;
    assert.match(String(arrival.peerSan), new RegExp(`URI:${SERVER_ID}`), 'the destination verified the sidecar\'s client certificate');
    assert.equal(decodeJwt(bearer(arrival.headers as Record<string, string>)).aud, 'api://chat');
    assert.equal(arrival.headers['x-authproxy-hop'], undefined, 'TLS hops carry no loop marker');
    const line = (await recordsOf('ws-mtls'))[0];
    assert.equal(line?.tls, 'mtls');
    assert.equal(line?.boundary, 'outside');
    tokensSeen.add(bearer(arrival.headers as Record<string, string>));
  });

  for (const [path, status] of [['/refuse', 403], ['/ignore', 200]] as const) {
    it(`a destination that answers ${status} instead of 101: the app gets that answer, the connection closes, and nothing the app sends afterwards reaches the destination`, async () => {
      const before = plain.length;
      const { conn } = await handshake(`http://127.0.0.2:${plainPort}${path}`, { then: Buffer.concat([textFrame('pipelined', true), Buffer.from('GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n')]) });
      const answer = await conn.head();
      assert.equal(answer.status, status, answer.raw);
      assert.equal(answer.headers.connection, 'close');
      if (status === 403) assert.equal(answer.headers['x-destination'], 'refused', 'the destination\'s headers, as sent');
      if (conn.socket.writable) conn.socket.write(Buffer.concat([textFrame('after', true), Buffer.from('GET /smuggled-after HTTP/1.1\r\nHost: x\r\n\r\n')]));
      assert.equal(await conn.rest(), status === 403 ? 'no way' : 'ok', 'the destination\'s body, then nothing');
      assert.ok(conn.closed, 'the sidecar closed the app\'s connection');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(plain.length, before + 1);
      assert.deepEqual(plain.at(-1)!.after.map((b) => b.toString('latin1')), [], 'nothing past the handshake reached the destination');
    });
  }

  it('a destination that cannot be reached: 502 upstream_unavailable naming it; one that does not answer within the deadline: 504 upstream_timeout', async () => {
    const closed = createHttp();
    const port = await listen(closed, '127.0.0.2');
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { conn } = await handshake(`http://127.0.0.2:${port}/chat`, { id: 'ws-unreachable' });
    const answer = await conn.head();
    assert.equal(answer.status, 502, answer.raw);
    const body = JSON.parse(await conn.rest()) as { error: string; message: string; requestId: string };
    assert.equal(body.error, 'upstream_unavailable');
    assert.equal(body.message, `destination 127.0.0.2:${port} is unreachable (ECONNREFUSED)`);
    assert.equal(body.requestId, 'ws-unreachable');

    const started = Date.now();
    const slow = await handshake(`http://127.0.0.2:${plainPort}/hang`, { headers: 'x-authproxy-deadline: 400\r\n' });
    const late = await slow.conn.head();
    assert.equal(late.status, 504, late.raw);
    assert.equal((JSON.parse(await slow.conn.rest()) as { error: string }).error, 'upstream_timeout');
    assert.ok(Date.now() - started < 3000, 'within the deadline the app gave, not the sidecar\'s default');
  });

  it('a destination that does not speak the TLS its route asks for: 502 saying so and naming the route', async () => {
    const plainOutside = createHttp(); servers.push(plainOutside);
    const port = await listen(plainOutside, '127.0.0.3');
    const { conn } = await handshake(`http://127.0.0.3:${port}/feed`, { id: 'ws-not-tls' });
    const answer = await conn.head();
    assert.equal(answer.status, 502, answer.raw);
    const body = JSON.parse(await conn.rest()) as { error: string; message: string };
    assert.equal(body.error, 'upstream_unavailable');
    assert.equal(body.message, `destination 127.0.0.3:${port} does not speak TLS there: its answer to the TLS handshake was not TLS (EPROTO, wrong version number); OutboundRoute feed says tls: mtls`);
  });

  // Found by hand: the deadline was the socket's idle timeout, so an answer that kept coming never timed out.
  it('a destination that trickles its answer is cut at the request\'s deadline: 504 upstream_timeout', async () => {
    const started = Date.now();
    const { conn } = await handshake(`http://127.0.0.2:${plainPort}/trickle`, { headers: 'x-authproxy-deadline: 600\r\n' });
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([conn.head(), new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer 4 s after a 600 ms deadline')), 4000);
    })]).finally(() => clearTimeout(timer));
    assert.equal(late.status, 504, late.raw);
    assert.equal((JSON.parse(await conn.rest()) as { error: string }).error, 'upstream_timeout');
    assert.ok(Date.now() - started < 3000);
  });

  it('an upgrade addressed to the outbound listener itself is refused with 400 bad_request, audited once', async () => {
    const { conn } = await handshake(`http://127.0.0.1:${sidecar.outboundPort}/loop`, { id: 'ws-loop' });
    const answer = await conn.head();
    assert.equal(answer.status, 400, answer.raw);
    assert.match(await conn.rest(), /"bad_request".*outbound listener itself/);
    assert.deepEqual((await recordsOf('ws-loop')).map((l) => [l.decision, l.code]), [['deny', 'bad_request']]);
  });

  it('Upgrade: h2c is refused with 400 bad_request and never reaches the destination', async () => {
    const before = plain.length;
    const u = `http://127.0.0.2:${plainPort}/h2c`;
    const socket = connect(sidecar.outboundPort, '127.0.0.1');
    await once(socket, 'connect');
    const conn = new Received(socket);
    socket.write(`GET ${u} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`);
    const answer = await conn.head();
    assert.equal(answer.status, 400, answer.raw);
    assert.match(await conn.rest(), /Upgrade: h2c is not accepted/);
    assert.equal(plain.length, before);
  });

  // Envoy upgrades only to the types its upgrade_configs name; --upgrade-protocols is that list.
  it('upgrades only to protocols --upgrade-protocols lists, and never to one that carries HTTP, listed or not', async () => {
    const ask = async (offer: string): Promise<{ status: number; body: string }> => {
      const socket = connect(sidecar.outboundPort, '127.0.0.1');
      await once(socket, 'connect');
      const conn = new Received(socket);
      socket.write(`GET http://127.0.0.2:${plainPort}/proto HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${offer}\r\n\r\n`);
      const answer = await conn.head();
      const body = answer.status === 400 ? await conn.rest() : '';
      socket.destroy();
      return { status: answer.status, body };
    };
    const before = plain.length;
    for (const offer of ['foo', 'websocket, foo']) {
      const r = await ask(offer);
      assert.equal(r.status, 400, offer);
      assert.match(r.body, /is not accepted \(--upgrade-protocols: websocket,spdy\)/);
    }
    for (const offer of ['h2c-14', 'HTTP/2.0', 'h2']) {
      const r = await ask(offer);
      assert.equal(r.status, 400, offer);
      assert.match(r.body, /every request on the connection would pass the sidecar unchecked/);
    }
    assert.equal(plain.length, before, 'none reached the destination');
    await ask('SPDY/3.1');
    assert.equal(plain.length, before + 1, 'a listed protocol, any case and version, goes to the destination');
  });

  // docs/outbound.md §7: what an HTTP/2 app gets, unchanged by HTTP/1.1 upgrades.
  it('the h2c side offers no WebSocket over HTTP/2 (no SETTINGS_ENABLE_CONNECT_PROTOCOL), and a plain HTTP/2 CONNECT goes nowhere', async () => {
    const before = plain.length;
    const session = h2connect(`http://127.0.0.1:${sidecar.outboundPort}`);
    try {
      await once(session, 'remoteSettings');
      assert.equal(session.remoteSettings.enableConnectProtocol, false);
      const stream = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.2:${plainPort}` }, { endStream: false });
      const [headers] = await once(stream, 'response') as [Record<string, unknown>];
      assert.equal(headers[':status'], 405);
      stream.close();
    } finally { session.close(); }
    assert.equal(plain.length, before);
  });

  it('an allowed upgrade is audited once, as a request on its route, without its query', async () => {
    const records = await recordsOf('ws-plain');
    assert.equal(records.length, 1, JSON.stringify(records));
    const line = records[0]!;
    assert.equal(line.direction, 'outbound');
    assert.equal(line.decision, 'allow');
    assert.equal(line.policy, 'chat');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/chat');
    assert.equal(line.tls, 'plaintext');
    assert.equal(line.boundary, 'near');
    assert.equal((line.peer as { address: string }).address, `127.0.0.2:${plainPort}`);
    assert.match(String(line.reason), /routed by OutboundRoute chat: token for api:\/\/chat with scopes chat\.talk/);
  });

  // Found by hand: node:http takes its error listener off a socket it hands to 'upgrade', so a
  // reset read while the upgrade waited (DNS, the issuer) was an unhandled 'error': the process exited.
  it('an app that resets its connection while its upgrade waits for DNS or for a token does not take the sidecar down', async () => {
    for (let i = 0; i < 20; i++) {
      const { conn } = i % 2 === 0
        ? await handshake(`http://127.0.0.2:${plainPort}/chat`, { headers: `x-authproxy-jit: reset-${i}-${Date.now()}\r\n` })
        : await handshake(`http://reset-${i}-${Date.now()}.invalid:${plainPort}/chat`);
      (conn.socket as Socket).resetAndDestroy();
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sidecar.proc.exitCode, null, `the sidecar exited; stderr:\n${sidecar.stderr().slice(-2000)}`);
    const { conn } = await handshake(`http://127.0.0.2:${plainPort}/chat`);
    assert.equal((await conn.head()).status, 101);
    conn.socket.destroy();
  });

  it('no token appears in the sidecar\'s stdout, stderr or audit log', async () => {
    assert.ok(tokensSeen.size >= 1);
    const logs = [sidecar.stdout(), sidecar.stderr(), await readFile(audit, 'utf8')];
    for (const token of tokensSeen) {
      const signature = token.split('.')[2]!;
      for (const text of logs) assert.ok(!text.includes(token) && !text.includes(signature), 'a token leaked into a log');
    }
  });
});
