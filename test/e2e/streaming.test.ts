// Bodies stream through both ways with flat memory; WebSocket upgrades pass; the app can sit
// behind a Unix socket.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { makePki, type TestPki } from '../support/pki.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { startSidecar, memoryOf, type Sidecar } from '../support/sidecar.ts';
import { policyDir, TEST_POLICY } from '../support/policy-dir.ts';
import { httpsGet, tlsOptions, rawTls, statusOf } from '../support/clients.ts';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { connect } from 'node:tls';
import { once } from 'node:events';

const GiB = 1024 ** 3;

/** Streaming means memory grows by buffers, not by the body: a buffered body would add its whole size. */
const FLAT_GROWTH = 128 * 1024 ** 2;
const MiB = (n: number): number => Math.round(n / 1024 ** 2);

describe('streaming, upgrades and Unix-socket upstreams', () => {
  let pki: TestPki; let app: TestApp; let sidecar: Sidecar; let policies: string;

  before(async () => {
    pki = await makePki();
    app = await startApp({
      handler: (req, res) => {
        if (!req.url?.startsWith('/download')) return false;
        const total = Number(new URL(req.url, 'http://x').searchParams.get('bytes'));
        const chunk = Buffer.alloc(64 * 1024, 7);
        let sent = 0;
        const pump = (): void => {
          while (sent < total) { sent += chunk.length; if (!res.write(chunk)) { res.once('drain', pump); return; } }
          res.end();
        };
        res.writeHead(200, { 'content-length': String(total) });
        pump();
        return true;
      },
    });
    policies = await policyDir({ 'orders.yaml': TEST_POLICY });
    sidecar = await startSidecar(['--upstream', app.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
  });
  after(async () => {
    await sidecar?.stop(); await app?.close(); await pki?.cleanup();
    await rm(policies, { recursive: true, force: true });
  });

  it('streams a 1 GiB upload to the app without buffering it', async () => {
    const chunk = Buffer.alloc(256 * 1024, 1);
    const total = GiB;
    const before = await memoryOf(sidecar.proc.pid!);
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: sidecar.inboundPort, path: '/upload', method: 'POST', agent: false,
        headers: { 'content-length': String(total) }, ...tlsOptions(pki.ca, pki.clients.billing) }, (res) => {
        let b = ''; res.setEncoding('utf8').on('data', (d: string) => { b += d; }).on('end', () => resolve(b));
      });
      req.on('error', reject);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) { sent += chunk.length; if (!req.write(chunk)) { req.once('drain', pump); return; } }
        req.end();
      };
      pump();
    });
    assert.deepEqual(JSON.parse(body), { bytes: total });
    const { peak } = await memoryOf(sidecar.proc.pid!);
    assert.ok(peak - before.rss < FLAT_GROWTH, `sidecar RSS grew from ${MiB(before.rss)} to a peak of ${MiB(peak)} MiB while a 1 GiB body passed`);
  });

  it('streams a 256 MiB response to a slow reader without buffering it', async () => {
    const total = 256 * 1024 ** 2;
    const before = await memoryOf(sidecar.proc.pid!);
    const received = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: sidecar.inboundPort, path: `/download?bytes=${total}`, agent: false, ...tlsOptions(pki.ca, pki.clients.billing) }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => { n += d.length; if (n % (32 * 1024 ** 2) < d.length) { res.pause(); setTimeout(() => res.resume(), 50); } });
        res.on('end', () => resolve(n));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(received, total);
    const { peak } = await memoryOf(sidecar.proc.pid!);
    assert.ok(peak - before.peak < FLAT_GROWTH, `sidecar peak RSS went from ${MiB(before.peak)} to ${MiB(peak)} MiB while 256 MiB streamed to a slow reader`);
  });

  it('passes a WebSocket upgrade through and echoes messages both ways', async () => {
    const ws = new WebSocket(`wss://localhost:${sidecar.inboundPort}/ws/chat`, { ...tlsOptions(pki.ca, pki.clients.billing) });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
    ws.send('hello');
    assert.equal(await reply, 'echo: hello');
    ws.close();
    const arrival = app.seen.find((s) => s.method === 'WS');
    assert.equal(arrival?.headers['x-authproxy-principal'], 'spiffe://example.org/ns/billing/sa/api');
  });

  it('refuses a WebSocket upgrade the policy denies, before the app sees it', async () => {
    const before = app.seen.length;
    const ws = new WebSocket(`wss://localhost:${sidecar.inboundPort}/ws/chat`, { ...tlsOptions(pki.ca, pki.clients.shop) });
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', () => resolve(-1));
    });
    assert.equal(status, 403);
    assert.equal(app.seen.length, before);
  });

  it("relays the app's own answer to an upgrade, 504 when the app never answers and 502 when it hangs up without one", async () => {
    // An app that misbehaves on purpose, one way per path.
    const raw = createTcpServer((socket: Socket) => {
      socket.once('data', (d: Buffer) => {
        const head = d.toString('latin1');
        if (head.startsWith('GET /refuse ')) socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 9\r\n\r\nno socket');
        else if (head.startsWith('GET /hang-up ')) socket.end();
        // GET /silent: never answered.
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const s = await startSidecar(['--upstream', `http://127.0.0.1:${(raw.address() as AddressInfo).port}`, '--cert', pki.server.cert, '--key', pki.server.key,
      '--ca', pki.ca, '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--request-timeout', '400ms']);
    // Given up on after 5 s, so that a sidecar that never answers fails the test instead of hanging it.
    const upgrade = (path: string): Promise<string> => Promise.race([
      rawTls(s.inboundPort, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n` +
        'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', pki.ca, pki.clients.billing),
      new Promise<string>((resolve) => setTimeout(() => resolve('no answer within 5 s'), 5000).unref()),
    ]);
    try {
      const refused = await upgrade('/refuse');
      assert.equal(statusOf(refused), 403);
      assert.match(refused, /\r\n\r\nno socket$/);
      const started = Date.now();
      const silent = await upgrade('/silent');
      assert.equal(statusOf(silent), 504, silent);
      assert.match(silent, /"error":"upstream_timeout"/);
      assert.ok(Date.now() - started < 3000, 'answered at --request-timeout, not whenever the app gives up');
      const hungUp = await upgrade('/hang-up');
      assert.equal(statusOf(hungUp), 502);
      assert.match(hungUp, /"error":"upstream_unavailable"/);
      // A caller that leaves before the app answers is no longer in flight: the drain does not wait for it.
      const leaving = connect({ host: '127.0.0.1', port: s.inboundPort, ...tlsOptions(pki.ca, pki.clients.billing) });
      await once(leaving, 'secureConnect');
      leaving.write('GET /silent HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      await new Promise((r) => setTimeout(r, 100));
      leaving.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const stopping = Date.now();
      s.proc.kill('SIGTERM');
      assert.equal(await s.exited(), 0);
      assert.ok(Date.now() - stopping < 3000, 'exited without waiting out the 15 s drain timeout');
    } finally {
      await s.stop();
      raw.close();
    }
  });

  it('forwards to an app listening on a Unix socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'authproxy-sock-'));
    const unixApp = await startApp({ socketPath: join(dir, 'app.sock') });
    const s = await startSidecar(['--upstream', unixApp.upstream, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      const r = await httpsGet(s.inboundPort, '/orders?via=unix', pki.ca, pki.clients.billing, { method: 'POST', body: 'x'.repeat(1024), headers: { 'content-type': 'text/plain' } });
      assert.equal(r.status, 200);
      assert.equal(unixApp.seen.at(-1)?.url, '/orders?via=unix');
      assert.equal(unixApp.seen.at(-1)?.method, 'POST');
    } finally {
      await s.stop(); await unixApp.close(); await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers 502 upstream_unavailable when the app is down, and the refusal is JSON', async () => {
    const s = await startSidecar(['--upstream', 'http://127.0.0.1:1', '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    try {
      const r = await httpsGet(s.inboundPort, '/x', pki.ca, pki.clients.billing, { headers: { 'x-request-id': 'down-1' } });
      assert.equal(r.status, 502);
      assert.deepEqual(Object.keys(JSON.parse(r.body) as object), ['error', 'message', 'requestId']);
      assert.equal((JSON.parse(r.body) as { error: string }).error, 'upstream_unavailable');
    } finally { await s.stop(); }
  });
});
