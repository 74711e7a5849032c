// What a 502 says about the app: unreachable (nothing was sent) or a connection that failed or an
// answer that could not be read. Same status and code; the message points the operator at the
// app's socket or at its answers. Real undici errors from real sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { request } from 'undici';
import { classifyUpstreamError } from '../../src/forward/errors.ts';

async function undiciError(url: string): Promise<Error> {
  try { await request(url); } catch (e) { return e as Error; }
  assert.fail('the request should have failed');
}

test('a refused connection is reported as the app being unreachable', async () => {
  const closed = createTcpServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const { port } = closed.address() as AddressInfo;
  await new Promise<void>((r) => closed.close(() => r()));
  assert.deepEqual(classifyUpstreamError(await undiciError(`http://127.0.0.1:${port}/`)), { code: 'upstream_unavailable', message: 'the app is unreachable (ECONNREFUSED)' });
});

test('a malformed answer (101 to a plain GET) is reported as such, not as the app being unreachable', async () => {
  const app = createTcpServer((s) => s.once('data', () => s.end('HTTP/1.1 101 Switching Protocols\r\n\r\n')));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  try {
    const got = classifyUpstreamError(await undiciError(`http://127.0.0.1:${(app.address() as AddressInfo).port}/`));
    assert.equal(got.code, 'upstream_unavailable');
    assert.match(got.message, /^the app's connection failed or its answer was malformed \(\S+\)$/);
  } finally { app.close(); }
});
