// Forwarding micro-benchmark, contender 1: the sidecar's own forwarder (src/forward/upstream.ts:
// undici Pool.dispatch with a streaming relay, deadlines and retries) behind a plain HTTP front,
// so neither TLS nor policy is measured: only "take a request, send it to the app, stream the
// answer back". argv: APP_PORT. Prints {port} when listening.
import { createServer } from '../../src/http/node-http.ts';
import type { AddressInfo } from 'node:net';
import { UpstreamPool } from '../../src/forward/upstream.ts';
import { RetryBudget } from '../../src/forward/retry.ts';
import { passHeaders } from './headers.ts';

const appPort = Number(process.argv[2]);
const pool = new UpstreamPool(
  { kind: 'tcp', origin: `http://127.0.0.1:${appPort}`, host: '127.0.0.1', port: appPort, display: `http://127.0.0.1:${appPort}`, h2c: false },
  { timeoutMs: 30_000, connectTimeoutMs: 10_000, maxHeaderBytes: 65_536, maxRetries: 2, retryBudget: new RetryBudget(0.2, 10) },
);
const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  pool.forward({
    req, res, path: req.url ?? '/', headers: passHeaders(req.rawHeaders), deadlineAt: Date.now() + 30_000,
    deadlineValueAt: -1, grpcTimeoutValueAt: -1, grpcDeadlineAt: 0,
    onError: (_code, message) => { res.writeHead(502, { 'content-type': 'text/plain' }).end(message); },
    onSettled: () => { /* settled */ },
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'));
process.on('SIGTERM', () => process.exit(0));
