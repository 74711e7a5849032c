// Interim (1xx) answers from the app or a destination: 102 Processing and 103 Early Hints are
// not relayed, and the final answer reaches the caller over HTTP/2 and HTTP/1.1, inbound and
// outbound. Before, the first interim answer was written as if final: HTTP/2 callers got 502
// (the status is invalid there) and HTTP/1.1 callers a cut connection.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { makePki, type TestPki } from '../support/pki.ts';
import { startSidecar, type Sidecar } from '../support/sidecar.ts';
import { policyDir, LOOPBACK_BOUNDARY } from '../support/policy-dir.ts';
import { curl } from '../support/clients.ts';

describe('interim answers from the app', () => {
  let pki: TestPki; let app: Server; let sidecar: Sidecar; let policies: string; let port: number;

  before(async () => {
    pki = await makePki();
    app = createServer((req, res) => {
      if (req.url === '/hints') res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      if (req.url === '/processing') { res.writeProcessing(); res.writeEarlyHints({ link: '</a.js>; rel=preload; as=script' }); }
      if (req.url === '/drip') {
        // 102 every 200 ms, well within --upstream-timeout each, and never a final answer.
        const drip = setInterval(() => res.writeProcessing(), 200);
        res.on('close', () => clearInterval(drip));
        return;
      }
      req.resume();
      req.on('end', () => res.end(`final ${req.url}`));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    port = (app.address() as AddressInfo).port;
    policies = await policyDir({ 'boundary.yaml': LOOPBACK_BOUNDARY });
    sidecar = await startSidecar(['--upstream', `http://127.0.0.1:${port}`, '--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca,
      '--policies', policies, '--audit-log', '/dev/null', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
      '--upstream-timeout', '1s', '--request-timeout', '2s', '--client-idle-timeout', '20s']);
  });
  after(async () => {
    await sidecar?.stop();
    app?.close();
    if (policies) await rm(policies, { recursive: true, force: true });
    await pki?.cleanup();
  });

  const inbound = (path: string, version: '--http2' | '--http1.1') => curl([version, '-w', ' %{http_code} %{http_version}', '--cacert', pki.ca,
    '--cert', pki.clients.billing.cert, '--key', pki.clients.billing.key, `https://localhost:${sidecar.inboundPort}${path}`]);

  for (const path of ['/hints', '/processing']) {
    it(`relays the final answer after ${path === '/hints' ? '103 Early Hints' : '102 Processing and 103'} to an HTTP/2 caller`, async () => {
      assert.equal((await inbound(path, '--http2')).stdout, `final ${path} 200 2`);
    });
    it(`relays the final answer after ${path === '/hints' ? '103 Early Hints' : '102 Processing and 103'} to an HTTP/1.1 caller`, async () => {
      assert.equal((await inbound(path, '--http1.1')).stdout, `final ${path} 200 1.1`);
    });
  }

  // undici restarts its per-try headers timeout at each interim answer: without a timer of the
  // relay's own, an app dripping 102s held the caller until it stopped (or forever).
  for (const version of ['--http2', '--http1.1'] as const) {
    it(`an app that keeps sending 102 Processing gets the ${version.slice(2)} caller 504 at the request deadline`, async () => {
      const started = Date.now();
      const r = await inbound('/drip', version);
      assert.match(r.stdout, /"error":"upstream_timeout".* 504 /);
      const took = Date.now() - started;
      assert.ok(took >= 1900 && took < 4000, `answered at the 2 s deadline, took ${took} ms`);
    });
  }

  it('a destination that keeps sending 102 Processing gets the app 504 at the request deadline on the outbound listener', async () => {
    const started = Date.now();
    const r = await curl(['-w', ' %{http_code}', '-x', `http://127.0.0.1:${sidecar.outboundPort}`, `http://127.0.0.1:${port}/drip`]);
    assert.match(r.stdout, /"error":"upstream_timeout".* 504$/);
    assert.ok(Date.now() - started < 4000);
  });

  it('relays the final answer after 103 Early Hints from a destination on the outbound listener', async () => {
    const r = await curl(['-w', ' %{http_code}', '-x', `http://127.0.0.1:${sidecar.outboundPort}`, `http://127.0.0.1:${port}/hints`]);
    assert.equal(r.stdout, 'final /hints 200');
  });
});
