// The floor: the least a Node 24 process does to terminate mTLS and forward to the app, for the
// main table to set next to the sidecar. The same listener shape as the sidecar's (node:http2
// secure server with HTTP/1.1 allowed, client certificate required and CA-verified, Nagle off),
// the peer's SAN passed to the app as a header, a small body read whole first (undici keeps a
// streamed one alive past the young GC: src/forward/whole-body.ts), the undici relay of
// undici-bare.ts; no policy, no audit trail, no deadlines or retries. undici's Pool is loaded from
// its own module, as the sidecar loads it: the package index also loads fetch, WebSocket and the
// rest, 12 MB of idle RSS that were the floor's and not the runtime's until 2026-11-25. What the
// sidecar costs beyond this row is its own work; what this row costs beyond nginx is the runtime's.
// argv: APP_PORT CERT KEY CA. Prints {port} when listening.
import { createSecureServer } from 'node:http2';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Pool } from '../../src/forward/undici.ts';
import { passHeaders } from './headers.ts';
import { readWholeBody, smallDeclaredLength } from '../../src/forward/whole-body.ts';
import { Relay } from './undici-bare.ts';

const [appPort, cert, key, ca] = process.argv.slice(2) as [string, string, string, string];
const origin = `http://127.0.0.1:${appPort}`;
const pool = new Pool(origin, { keepAliveTimeout: 30_000 });
const peerSans = new WeakMap<TLSSocket, string | undefined>();
const server = createSecureServer({
  cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca),
  requestCert: true, rejectUnauthorized: true, allowHTTP1: true, noDelay: true,
}, (req, res) => {
  const headers = passHeaders(req.rawHeaders);
  const san = peerSans.get(req.socket as TLSSocket);
  if (san) headers.push('x-client-san', san);
  const send = (body: Buffer | typeof req | null): void => {
    pool.dispatch({ origin, path: req.url ?? '/', method: req.method ?? 'GET', headers, body }, new Relay(res));
  };
  const small = smallDeclaredLength(req);
  if (small < 0) { send(req.headers['content-length'] === '0' ? null : req); return; }
  void readWholeBody(req, small, Date.now() + 30_000).then((body) => {
    if (Buffer.isBuffer(body)) send(body); else res.destroy();
  });
});
// Read once per connection, as the sidecar does: a certificate does not change mid-connection.
server.on('secureConnection', (socket: TLSSocket) => { peerSans.set(socket, socket.getPeerX509Certificate()?.subjectAltName); });
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'));
process.on('SIGTERM', () => process.exit(0));
