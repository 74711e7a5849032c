// The app behind the sidecar in end-to-end tests: a real HTTP server that records every request
// it receives (so tests can prove refused requests never arrive), echoes what it saw, streams
// uploads without buffering, and speaks WebSocket.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface Seen {
  method: string; url: string; headers: IncomingMessage['headers'];
  /** The field lines as received: req.headers keeps only the first of a repeated Authorization. */
  rawHeaders: string[];
}

export interface TestApp {
  server: Server;
  /** `http://127.0.0.1:PORT` or `unix:/path` for --upstream. */
  upstream: string;
  seen: Seen[];
  close(): Promise<void>;
}

export async function startApp(opts: { socketPath?: string; handler?: (req: IncomingMessage, res: ServerResponse) => boolean } = {}): Promise<TestApp> {
  const seen: Seen[] = [];
  // Large enough for 32 KB tokens: the app's own header limit is not what these tests measure.
  const server = createServer({ maxHeaderSize: 128 * 1024 }, (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    if (opts.handler?.(req, res)) return;
    if (req.url?.startsWith('/upload')) {
      let bytes = 0;
      req.on('data', (c: Buffer) => { bytes += c.length; });
      req.on('end', () => res.end(JSON.stringify({ bytes })));
      return;
    }
    if (req.url?.startsWith('/slow')) { setTimeout(() => res.end('slow done'), 800); return; }
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    seen.push({ method: 'WS', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo: ${String(data)}`));
  });
  await new Promise<void>((resolve) => {
    if (opts.socketPath) server.listen(opts.socketPath, resolve); else server.listen(0, '127.0.0.1', resolve);
  });
  const upstream = opts.socketPath ? `unix:${opts.socketPath}` : `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server, upstream, seen,
    close: () => new Promise<void>((resolve) => { wss.close(); server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
