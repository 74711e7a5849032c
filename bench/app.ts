// The app behind every measured path: the same handler on TCP and on a Unix socket. It drains the
// request body and answers 200 with a fixed 1 KB body, so each request is a 1 KB ping-pong as in
// the IPC latency study. Prints one JSON line {port, socketPath} once both are listening.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';

const RESPONSE = Buffer.alloc(1024, 'y');

function handle(req: IncomingMessage, res: ServerResponse): void {
  req.on('data', noop);
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': RESPONSE.length });
    res.end(RESPONSE);
  });
}
function noop(): void { /* drain */ }

const socketPath = process.argv[2];
if (!socketPath) throw new Error('usage: app.ts SOCKET_PATH');
rmSync(socketPath, { force: true });
// Keep-alive longer than any proxy's idle pool timeout, so proxies never race a closing socket.
// Header limit above Node's 16 KB default: the header-bytes run sends 16 KB tokens that the
// benchmark policy (no token rules) lets through to the app.
const opts = { keepAliveTimeout: 120_000, maxHeaderSize: 128 * 1024 };
const tcp = createServer(opts, handle);
const unix = createServer(opts, handle);
await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
await new Promise<void>((resolve) => unix.listen(socketPath, resolve));
process.stdout.write(JSON.stringify({ port: (tcp.address() as AddressInfo).port, socketPath }) + '\n');
process.on('SIGTERM', () => process.exit(0));
