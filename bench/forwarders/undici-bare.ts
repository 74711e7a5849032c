// Forwarding micro-benchmark, contender 2: undici Pool.dispatch with the smallest correct relay
// (backpressure, no retries or deadlines). Against contender 1 it shows what the sidecar's
// wrapper costs on top of the library (loaded as the sidecar loads it). argv: APP_PORT.
import type { ServerResponse, IncomingHttpHeaders } from 'node:http';
import { createServer } from '../../src/http/node-http.ts';
import type { Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { Pool } from '../../src/forward/undici.ts';
import { passHeaders } from './headers.ts';
import { HOP_BY_HOP } from '../../src/http/hop-by-hop.ts';

export class Relay implements Dispatcher.DispatchHandler {
  private readonly res: ServerResponse;
  constructor(res: ServerResponse | Http2ServerResponse) { this.res = res as ServerResponse; }
  // undici requires the full handler shape even when the controller is not kept.
  onRequestStart(): void { /* no abort on client close in this minimal relay */ }
  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    for (const name of Object.keys(headers)) if (HOP_BY_HOP.has(name)) delete headers[name];
    this.res.writeHead(statusCode, headers);
  }
  // 'drain' is listened for only when the socket is full, as the sidecar's relay does: one added
  // to every response kept each exchange alive past its scavenge, and the floor then ran 22–24
  // full GCs in 10 s of saturation against the sidecar's 1–2 (bench/FINDINGS.md, "The Node floor").
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) { controller.pause(); this.res.once('drain', () => controller.resume()); }
  }
  onResponseEnd(): void { this.res.end(); }
  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.res.headersSent) this.res.destroy(err); else this.res.writeHead(502).end(err.message);
  }
}

// Run as a script it serves; imported (by mtls-floor.ts, the floor row) it only lends its relay.
if (import.meta.main) serve(Number(process.argv[2]));

function serve(appPort: number): void {
  const origin = `http://127.0.0.1:${appPort}`;
  const pool = new Pool(origin, { keepAliveTimeout: 30_000 });
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const declared = req.headers['content-length'];
    const body = declared !== undefined && declared !== '0' ? req : null;
    pool.dispatch({ origin, path: req.url ?? '/', method: req.method ?? 'GET', headers: passHeaders(req.rawHeaders), body }, new Relay(res));
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'));
  process.on('SIGTERM', () => process.exit(0));
}
