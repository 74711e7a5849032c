// The response relay (src/forward/upstream.ts) when the dispatcher throws instead of reporting
// through the handler: the call fails with 502, and the server goes on serving. Before, the throw
// escaped the request handler and ended the process (an IPv6 zone ID reached H2Dispatcher's
// `new URL(origin)` on a TLS hop: one app request took the sidecar down).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ResponseRelay, type Dispatches, type ForwardOutcome } from '../../src/forward/upstream.ts';
import { H2Dispatcher } from '../../src/forward/h2-dispatcher.ts';
import { RetryBudget } from '../../src/forward/retry.ts';
import { refuse } from '../../src/http/refuse.ts';

const OPTS = { timeoutMs: 5000, connectTimeoutMs: 1000, maxHeaderBytes: 65536, maxRetries: 1, retryBudget: new RetryBudget(0.2, 10) };

/** A server that relays every request through `dispatcher` to `origin`, answering failures as the sidecar does. */
async function relayServer(dispatcher: Dispatches, origin: string, outcomes: ForwardOutcome[]): Promise<Server> {
  const server = createServer((req, res) => {
    new ResponseRelay(dispatcher, origin, {
      req, res, path: '/x', headers: [], deadlineAt: Date.now() + 5000, deadlineValueAt: -1, grpcTimeoutValueAt: -1, grpcDeadlineAt: 0,
      onError: (code, message) => refuse(res, code, message, 'rid'),
      onSettled: (o) => outcomes.push(o),
    }, null, OPTS).start();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function get(server: Server): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/x', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('no answer')));
    req.end();
  });
}

test('an origin H2Dispatcher cannot dial (an IPv6 zone ID, over TLS and h2c) fails the call with 502, twice in a row', async () => {
  for (const [origin, tls] of [['https://[fe80::1%25eth0]:8080', {}], ['http://[fe80::1%25eth0]:8080', null]] as const) {
    const dispatcher = new H2Dispatcher({ tls, connectTimeoutMs: 1000, maxHeaderBytes: 65536, fallback: null });
    const outcomes: ForwardOutcome[] = [];
    const server = await relayServer(dispatcher, origin, outcomes);
    try {
      for (let i = 0; i < 2; i++) {
        const r = await get(server);
        assert.equal(r.status, 502, origin);
        assert.equal(JSON.parse(r.body).error, 'upstream_unavailable');
        assert.match(JSON.parse(r.body).message, /ERR_INVALID_URL/);
      }
      assert.deepEqual(outcomes.map((o) => [o.status, o.error?.code]), [[502, 'upstream_unavailable'], [502, 'upstream_unavailable']]);
    } finally {
      server.close();
      await dispatcher.close();
    }
  }
});

test('any dispatcher that throws synchronously fails the call with 502 instead of the process', async () => {
  let calls = 0;
  const throwing: Dispatches = { dispatch: () => { calls++; throw new TypeError('no way to dispatch this'); }, close: async () => {} };
  const outcomes: ForwardOutcome[] = [];
  const server = await relayServer(throwing, 'http://127.0.0.1:1', outcomes);
  try {
    const r = await get(server);
    assert.equal(r.status, 502);
    assert.equal(JSON.parse(r.body).error, 'upstream_unavailable');
    assert.equal(calls, 1, 'not retried: it would throw the same way again');
    assert.deepEqual(outcomes.map((o) => [o.status, o.error?.code, o.tries]), [[502, 'upstream_unavailable', 1]]);
  } finally {
    server.close();
  }
});
