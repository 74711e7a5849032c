// What a 502 says about the app: unreachable (nothing was sent) or a connection that failed or an
// answer that could not be read. Same status and code; the message points the operator at the
// app's socket or at its answers. Real undici errors from real sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTlsServer } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { classifyUpstreamError } from '../../src/forward/errors.ts';
import { makePki } from '../support/pki.ts';

async function undiciError(url: string, dispatcher?: Agent): Promise<Error> {
  try { await request(url, dispatcher ? { dispatcher } : {}); } catch (e) { return e as Error; }
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

// TLS hops (the outbound listener's tls/mtls carriages): which of three things went wrong, so the
// refusal can say what to change. Real handshakes with generated certificates.
test('a TLS hop to a plain HTTP server is reported as not speaking TLS', async () => {
  const plain = createHttpServer((_req, res) => res.end('plain'));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  try {
    const got = classifyUpstreamError(await undiciError(`https://127.0.0.1:${(plain.address() as AddressInfo).port}/`));
    assert.deepEqual(got, { code: 'upstream_unavailable', tls: 'not_tls',
      message: 'the app does not speak TLS there: its answer to the TLS handshake was not TLS (ERR_SSL_WRONG_VERSION_NUMBER)' });
  } finally { plain.close(); }
});

test('a server certificate that does not chain to the trusted CA, or names another host, is reported as not accepted', async () => {
  const pki = await makePki();
  const server = createTlsServer({ cert: await readFile(pki.server.cert), key: await readFile(pki.server.key) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const untrusting = new Agent({ connect: { ca: [] } });
  const trusting = new Agent({ connect: { ca: await readFile(pki.ca), servername: 'other.example' } });
  try {
    const chain = classifyUpstreamError(await undiciError(`https://127.0.0.1:${port}/`, untrusting));
    assert.equal(chain.tls, 'server_certificate');
    assert.match(chain.message, /^the app's certificate was not accepted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)$/);
    const name = classifyUpstreamError(await undiciError(`https://other.example:${port}/`, new Agent({
      connect: { ca: await readFile(pki.ca), lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]) } })));
    assert.deepEqual(name, { code: 'upstream_unavailable', tls: 'server_certificate', message: "the app's certificate was not accepted (ERR_TLS_CERT_ALTNAME_INVALID)" });
  } finally {
    await untrusting.close(); await trusting.close(); server.close(); await pki.cleanup();
  }
});
