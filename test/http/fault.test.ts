// A fault in a request listener ends that request with 500 internal_error, never the server:
// real node:http and node:http2 servers, real clients, a listener that throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as h2connect, createServer as createH2cServer } from 'node:http2';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { containFaults } from '../../src/http/fault.ts';

/** Throws for /boom, answers 200 otherwise. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/boom') throw new TypeError('a bug in the sidecar');
  res.end('fine');
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ port, path, headers: { 'x-request-id': 'req-1' } }, (res) => {
      let body = ''; res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject).end();
  });
}

test('a request listener that throws answers 500 internal_error, and the server goes on serving', async () => {
  const server = createServer(containFaults(handler)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const boom = await get(port, '/boom');
    assert.equal(boom.status, 500);
    assert.deepEqual(JSON.parse(boom.body), { error: 'internal_error', message: 'the sidecar failed to handle this request', requestId: 'req-1' });
    assert.equal((await get(port, '/fine')).status, 200);
  } finally { server.close(); }
});

test('a gRPC call whose listener throws gets grpc-status 13 INTERNAL in a trailers-only response', async () => {
  const server = createH2cServer();
  server.on('request', containFaults(() => { throw new Error('a bug in the sidecar'); }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const session = h2connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/pkg.Svc/Call', 'content-type': 'application/grpc' });
    stream.end();
    const [headers] = await once(stream, 'response') as [Record<string, string>];
    assert.equal(headers[':status'], 200);
    assert.equal(headers['grpc-status'], '13');
    assert.equal(headers['x-authproxy-error'], 'internal_error');
  } finally { session.close(); server.close(); }
});

test('an upgrade listener that throws closes that connection only', async () => {
  const server = createServer(handler);
  server.on('upgrade', containFaults((_req: IncomingMessage, _socket: Duplex) => { throw new Error('a bug in the sidecar'); }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const socket = connect(port, '127.0.0.1');
    socket.end('GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
    socket.resume();
    await once(socket, 'close');
    assert.equal((await get(port, '/fine')).status, 200);
  } finally { server.close(); }
});
