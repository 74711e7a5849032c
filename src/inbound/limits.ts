// What both inbound listeners share: the limits that keep one client from hurting the others,
// and the refusals written when the HTTP parser gives up on a request.
import type { Server as HttpServer, ServerOptions } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.ts';
import type { Runtime } from '../runtime/state.ts';
import { refuseRaw } from '../http/refuse.ts';
import { headersTooLargeMessage } from '../http/header-limit.ts';

export function serverLimits(c: Config): ServerOptions {
  return {
    maxHeaderSize: c.maxHeaderBytes,
    // Slowloris: the whole header block must arrive within the header timeout. Node enforces
    // it on a sweep, so the sweep runs often enough for the bound to mean what it says.
    headersTimeout: c.headerTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(c.headerTimeoutMs / 4))),
    // No cap on a whole request: uploads are streamed and may be long; an idle client is cut
    // by the socket idle timeout instead (set in applyLimits).
    requestTimeout: 0,
    // Idle keep-alive connections from peers are cheap; closing them early costs handshakes.
    keepAliveTimeout: 65_000,
  };
}

/**
 * A connection that sends and receives nothing for `ms` is closed (slow-body clients). For
 * HTTP/2 the idle one is the session, which is ended the same way.
 */
export function cutIdleConnections(server: HttpServer | Http2SecureServer | Http2Server, ms: number): void {
  server.setTimeout(ms);
  (server as HttpServer).on('timeout', (idle: { destroy(): void }) => idle.destroy());
}

export function applyLimits(server: HttpServer | Http2SecureServer, rt: Runtime): void {
  const c = rt.config;
  server.maxConnections = c.maxConnections;
  cutIdleConnections(server, c.clientIdleTimeoutMs);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // https.Server also routes TLS handshake failures (and the handshake timeout) here; a
    // socket that never became secure can carry no HTTP answer, so only parser errors get one.
    const code = err.code ?? '';
    if (!socket.writable || !(code.startsWith('HPE_') || code === 'ERR_HTTP_REQUEST_TIMEOUT')) { socket.destroy(); return; }
    if (code === 'HPE_HEADER_OVERFLOW') {
      refuseRaw(socket, 'headers_too_large', headersTooLargeMessage(c.maxHeaderBytes), randomUUID());
      rt.metrics.request('inbound', 'deny', 431, 0);
    } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      refuseRaw(socket, 'request_timeout', `request headers not received within ${c.headerTimeoutMs} ms (--header-timeout)`, randomUUID());
      rt.metrics.request('inbound', 'deny', 408, 0);
    } else {
      refuseRaw(socket, 'bad_request', 'malformed HTTP request', randomUUID());
      rt.metrics.request('inbound', 'deny', 400, 0);
    }
  });
}
