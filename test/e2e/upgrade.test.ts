// HTTP/1.1 Upgrade requests: the app gets the authorized handshake and nothing more of the caller's
// until it has answered 101. An app that answers anything else (most apps ignore an Upgrade they do
// not speak and answer 200, keeping the connection alive) must not be left wired to the caller:
// the next request on that connection would reach it unauthorized, unaudited and with forged
// identity headers. The app here is a raw keep-alive server that parses request after request on
// one connection, as Python's http.server does; node:http stops parsing after an Upgrade and
// would hide the hole.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, TEST_POLICY } from '../support/policy-dir.ts';
import { boundary } from '../policy/helpers.ts';
import { auditLines, waitForAuditLine } from '../support/audit.ts';
import { tlsOptions, statusOf } from '../support/clients.ts';

const POLICY = `${TEST_POLICY}    - name: loopback-everything
      action: allow
      from: [{ principals: ["boundary:loopback"] }]
      to: [{ paths: ["/**"] }]
---
${boundary('loopback', '{ cidrs: ["127.0.0.0/8"] }')}`;

const HANDSHAKE = (path: string, id: string): string => `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n`
  + `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-request-id: ${id}\r\n\r\n`;
const SMUGGLED = 'GET /admin/secret HTTP/1.1\r\nHost: localhost\r\nx-request-id: smuggled\r\n'
  + 'x-authproxy-principal: spiffe://example.org/ns/ops/sa/admin\r\nx-forwarded-client-cert: Hash=forged;URI=spiffe://example.org/ns/ops/sa/admin\r\n\r\n';

interface AppSaw { line: string; principal: string | undefined; xfcc: string | undefined }

/**
 * A keep-alive app that ignores Upgrade except on /ws: 200 for any request, 403 on /refuse, and on
 * /ws a 101 sent 300 ms late (with bytes of its own right behind it), then an echo. `early` is what
 * reached it after a /ws handshake and before its 101.
 */
function keepAliveApp(): { server: Server; saw: AppSaw[]; early: string[] } {
  const saw: AppSaw[] = []; const early: string[] = [];
  const server = createTcpServer((socket: Socket) => {
    let buffered = ''; let echoing = false;
    socket.setEncoding('latin1').on('error', () => {});
    socket.on('data', (d: string) => {
      if (echoing) { socket.write(`echo:${d}`); return; }
      buffered += d;
      let end: number;
      while (!echoing && (end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const [line = '', ...fields] = buffered.slice(0, end).split('\r\n');
        buffered = buffered.slice(end + 4);
        const field = (name: string): string | undefined => fields.find((f) => f.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
        saw.push({ line, principal: field('x-authproxy-principal'), xfcc: field('x-forwarded-client-cert') });
        const path = line.split(' ')[1] ?? '';
        if (path === '/ws') {
          echoing = true;
          setTimeout(() => {
            early.push(buffered);
            socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
              + 'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-App: kept\r\n\r\napp-first;');
          }, 300);
        } else if (path === '/refuse') {
          socket.write('HTTP/1.1 403 Go Away\r\nContent-Type: text/plain\r\nX-App-Reason: nope\r\nContent-Length: 9\r\n\r\nno socket');
        } else {
          const body = `app answered ${path}`;
          socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        }
      }
    });
  });
  return { server, saw, early };
}

/**
 * Sends `first`, waits until the answer holds `until`, then sends each of `then` (if the connection
 * still takes them); resolves with all the caller received once it holds `last` or, without one,
 * once the sidecar has closed the connection (or 3 s have passed: `closed` says which).
 */
async function converse(socket: Socket, first: string, until: string, then: string[] = [], last?: string): Promise<{ answer: string; closed: boolean }> {
  let answer = ''; let closed = false;
  socket.setEncoding('latin1').on('data', (d: string) => { answer += d; }).on('error', () => {});
  socket.once('close', () => { closed = true; });
  socket.write(first);
  const waitFor = async (done: () => boolean): Promise<void> => {
    const started = Date.now();
    while (!done() && Date.now() - started < 3000) await new Promise((r) => setTimeout(r, 20));
  };
  await waitFor(() => answer.includes(until) || closed);
  for (const part of then) { if (socket.writable) socket.write(part); await new Promise((r) => setTimeout(r, 100)); }
  await waitFor(() => (last === undefined ? closed : answer.includes(last)));
  socket.destroy();
  return { answer, closed };
}

describe('HTTP/1.1 Upgrade requests reach the app as a handshake only', () => {
  let pki: TestPki; let app: ReturnType<typeof keepAliveApp>; let sidecar: Sidecar; let policies: string; let work: string; let audit: string;
  let plaintextPort: number;

  before(async () => {
    pki = await makePki();
    app = keepAliveApp();
    await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
    policies = await policyDir({ 'orders.yaml': POLICY });
    work = await mkdtemp(join(tmpdir(), 'authproxy-upgrade-')); audit = join(work, 'audit.log');
    sidecar = await startSidecar(['--upstream', `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, '--cert', pki.server.cert, '--key', pki.server.key,
      '--ca', pki.ca, '--policies', policies, '--audit-log', audit, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--plaintext-listen', '127.0.0.1:0']);
    plaintextPort = Number(String((await sidecar.waitForLog('ready')).plaintext).split(':').at(-1));
  });
  after(async () => {
    await sidecar?.stop(); app?.server.close(); await pki?.cleanup();
    await rm(policies, { recursive: true, force: true }); await rm(work, { recursive: true, force: true });
  });

  const callers: Record<string, () => Promise<Socket>> = {
    mTLS: async () => { const s = tlsConnect({ host: '127.0.0.1', port: sidecar.inboundPort, ...tlsOptions(pki.ca, pki.clients.billing) }); await once(s, 'secureConnect'); return s; },
    plaintext: async () => { const s = tcpConnect(plaintextPort, '127.0.0.1'); await once(s, 'connect'); return s; },
  };

  for (const [listener, open] of Object.entries(callers)) {
    for (const when of ['after the answer', 'pipelined behind the handshake'] as const) {
      it(`(${listener}) an upgrade the app answers 200 keep-alive is answered with connection: close, and a request sent ${when} never reaches the app`, async () => {
        const before = app.saw.length;
        const id = `upgrade-200-${listener}-${when.split(' ')[0]}`;
        const { answer, closed } = when === 'after the answer'
          ? await converse(await open(), HANDSHAKE('/orders', id), 'app answered /orders', [SMUGGLED])
          : await converse(await open(), HANDSHAKE('/orders', id) + SMUGGLED, 'app answered /orders');
        assert.equal(statusOf(answer), 200, answer);
        assert.match(answer, /\r\nconnection: close\r\n/i);
        assert.match(answer, /\r\n\r\napp answered \/orders$/, 'one response, the app\'s, and nothing after it');
        assert.ok(closed, 'the sidecar closed the connection after relaying the answer');
        const saw = app.saw.slice(before);
        assert.deepEqual(saw.map((s) => s.line), ['GET /orders HTTP/1.1'], 'the app saw the handshake and nothing else');
        assert.equal(saw[0]?.principal, listener === 'mTLS' ? 'spiffe://example.org/ns/billing/sa/api' : 'boundary:loopback');
        assert.ok(await waitForAuditLine(audit, (l) => l.requestId === id), 'the handshake is audited');
        assert.equal((await auditLines(audit)).filter((l) => l.requestId === 'smuggled').length, 0);
      });
    }
  }

  it('a 101 from the app splices the two sockets: bytes the caller sent early reach the app only after its 101, and the app\'s own bytes behind the 101 reach the caller', async () => {
    const before = app.early.length;
    const { answer } = await converse(await callers.mTLS!(), `${HANDSHAKE('/ws', 'upgrade-101')}early;`, 'echo:early;', ['later;'], 'echo:later;');
    assert.equal(statusOf(answer), 101, answer);
    assert.match(answer, /\r\nX-App: kept\r\n/, 'the app\'s 101 headers reach the caller as sent');
    assert.match(answer, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    assert.match(answer, /\r\n\r\napp-first;echo:early;echo:later;$/);
    assert.deepEqual(app.early.slice(before), [''], 'nothing beyond the handshake reached the app before it switched protocols');
  });

  it('a refusal from the app (403) reaches the caller as sent, then the connection is closed', async () => {
    const before = app.saw.length;
    const { answer, closed } = await converse(await callers.mTLS!(), HANDSHAKE('/refuse', 'upgrade-403'), 'no socket', [SMUGGLED]);
    assert.match(answer, /^HTTP\/1\.1 403 Go Away\r\n/);
    assert.match(answer, /\r\nContent-Type: text\/plain\r\n/);
    assert.match(answer, /\r\nX-App-Reason: nope\r\n/);
    assert.match(answer, /\r\nconnection: close\r\n/i);
    assert.match(answer, /\r\n\r\nno socket$/);
    assert.ok(closed);
    assert.deepEqual(app.saw.slice(before).map((s) => s.line), ['GET /refuse HTTP/1.1']);
  });

  // After a 101 the caller would speak HTTP/2 straight to the app; the mTLS listener offers h2 by ALPN.
  it('refuses Upgrade: h2c with 400 bad_request, audited, and the app never sees it', async () => {
    const before = app.saw.length;
    const head = 'GET /orders HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n'
      + 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nx-request-id: upgrade-h2c\r\n\r\n';
    const { answer } = await converse(await callers.mTLS!(), head, 'bad_request');
    assert.equal(statusOf(answer), 400, answer);
    assert.match(answer, /Upgrade: h2c is not accepted/);
    assert.equal(app.saw.length, before);
    assert.equal((await waitForAuditLine(audit, (l) => l.requestId === 'upgrade-h2c'))?.decision, 'deny');
  });

  it('refuses, by default, an Upgrade to anything but websocket, and to anything that carries HTTP: 400 before the app sees it', async () => {
    const before = app.saw.length;
    for (const [offer, why] of [['spdy/3.1', /is not accepted \(--upgrade-protocols: websocket\)/], ['HTTP/2.0', /would pass the sidecar unchecked/], ['websocket, h2c-14', /would pass the sidecar unchecked/]] as const) {
      const head = `GET /orders HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: ${offer}\r\nx-request-id: proto-${offer.length}\r\n\r\n`;
      const { answer } = await converse(await callers.mTLS!(), head, 'bad_request');
      assert.equal(statusOf(answer), 400, answer);
      assert.match(answer, why);
      assert.equal((await waitForAuditLine(audit, (l) => l.requestId === `proto-${offer.length}`))?.decision, 'deny');
    }
    assert.equal(app.saw.length, before);
  });

  // Found by a review: such a socket is outside node:http's timeouts, and end() shuts only our side.
  it('closes a refused upgrade\'s connection that the caller keeps open, within the lingering close\'s 5 s', async () => {
    // allowHalfOpen: the caller keeps its side open after the sidecar's FIN, and never closes it.
    const socket = tcpConnect({ port: plaintextPort, host: '127.0.0.1', allowHalfOpen: true });
    await once(socket, 'connect');
    let answer = '';
    socket.setEncoding('utf8').on('data', (d: string) => { answer += d; });
    const ended = once(socket, 'end');
    socket.write('GET /orders HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    await ended;
    assert.equal(statusOf(answer), 400, answer);
    socket.write('still here');
    await new Promise((r) => setTimeout(r, 6000));
    // Once the sidecar has let the connection go, what the caller sends is answered with a reset.
    const failed = new Promise<string>((resolve) => { socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error')); });
    const outcome = await Promise.race([failed, (async () => {
      for (let i = 0; i < 20; i++) { socket.write('x'); await new Promise((r) => setTimeout(r, 50)); }
      return 'still open';
    })()]);
    socket.destroy();
    assert.match(outcome, /^(?:ECONNRESET|EPIPE)$/);
  });

  // Found by hand: node:http takes its error listener off a socket it hands to 'upgrade'; a refusal
  // written after the caller had reset the connection raised an unhandled 'error' and the process exited.
  it('a caller that resets its connection right behind a refused upgrade does not take the sidecar down', async () => {
    const head = 'GET /orders HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nAuthorization: Bearer a.b.c\r\n\r\n';
    await Promise.all(Array.from({ length: 60 }, async (_, i) => {
      const s = await callers.plaintext!();
      s.on('error', () => {});
      s.write(head);
      await new Promise((r) => setTimeout(r, i % 4));
      s.resetAndDestroy();
    }));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sidecar.proc.exitCode, null, `the sidecar exited; stderr:\n${sidecar.stderr().slice(-1500)}`);
    const { answer } = await converse(await callers.plaintext!(), HANDSHAKE('/orders', 'after-resets'), 'app answered /orders');
    assert.equal(statusOf(answer), 200, answer);
  });

  // RFC 9112 §3.2; the sidecar, undici and the app could each read another one.
  for (const [what, head] of [
    ['a request', 'GET /orders HTTP/1.1\r\nHost: localhost\r\nHost: admin.internal\r\nx-request-id: two-hosts\r\n\r\n'],
    ['an upgrade', 'GET /orders HTTP/1.1\r\nHost: localhost\r\nHost: admin.internal\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nx-request-id: two-hosts-upgrade\r\n\r\n'],
  ] as const) {
    it(`refuses ${what} with two Host lines with 400 bad_request, audited, and the app never sees it`, async () => {
      const before = app.saw.length;
      const { answer } = await converse(await callers.mTLS!(), head, 'bad_request');
      assert.equal(statusOf(answer), 400, answer);
      assert.match(answer, /more than one Host header/);
      assert.equal(app.saw.length, before);
      const id = /x-request-id: ([\w-]+)/.exec(head)![1]!;
      assert.equal((await waitForAuditLine(audit, (l) => l.requestId === id))?.decision, 'deny');
    });
  }
});
