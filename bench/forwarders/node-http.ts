// Forwarding micro-benchmark, contender 2: node:http.request with a keep-alive Agent and stream
// pipes both ways — the approach of http-proxy 1.18 (which is not installed here, so this stands
// in for it: http-proxy's web path is this plus option handling). argv: APP_PORT.
import type { AddressInfo } from 'node:net';
import { passHeaders, responseHeaders } from './headers.ts';

// node:http without the ESM import that loads Node's bundled undici (src/http/node-http.ts), as
// the sidecar and the other forwarders take it.
const { createServer, request, Agent } = process.getBuiltinModule('node:http');

const appPort = Number(process.argv[2]);
const agent = new Agent({ keepAlive: true, scheduling: 'lifo', keepAliveMsecs: 30_000 });
const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const up = request({ host: '127.0.0.1', port: appPort, method: req.method, path: req.url, headers: passHeaders(req.rawHeaders), agent }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, responseHeaders(ur.rawHeaders));
    ur.pipe(res);
  });
  up.on('error', (e) => { if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(e.message); else res.destroy(); });
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'));
process.on('SIGTERM', () => process.exit(0));
