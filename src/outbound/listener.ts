// The outbound listener (default 127.0.0.1:15001): plain HTTP from the app, as an HTTP proxy
// (absolute-form) or by Host (origin-form). The same header limit as inbound applies to what the
// app sends (the token is added after, so a 32 KB token never counts against the app).
// CONNECT tunnels and Upgrade requests are refused: a tunnel would carry TLS the sidecar cannot
// put a token into, so the app sends http:// and the sidecar originates TLS per route.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Runtime } from '../runtime/state.ts';
import { refuseRaw } from '../http/refuse.ts';
import { serverLimits } from '../inbound/limits.ts';
import { outboundHandler, type OutboundForwarding } from './handler.ts';

export function createOutboundServer(rt: Runtime, fwd: OutboundForwarding): Server {
  const c = rt.config;
  const server = createServer(serverLimits(c));
  server.setTimeout(c.clientIdleTimeoutMs, (socket: Socket) => socket.destroy());
  server.on('request', outboundHandler(rt, fwd));
  const refuseSocket = (socket: Duplex, message: string): void => {
    refuseRaw(socket, 'bad_request', message, randomUUID());
    rt.metrics.request('outbound', 'deny', 400, 0);
  };
  server.on('connect', (_req, socket: Duplex) => refuseSocket(socket,
    'CONNECT tunnels are not supported: send http:// URLs through the proxy; the sidecar originates TLS where the route says so'));
  server.on('upgrade', (_req, socket: Duplex) => refuseSocket(socket, 'Upgrade requests are not supported on the outbound listener yet'));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) { socket.destroy(); return; }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      refuseRaw(socket, 'headers_too_large', `request headers exceed ${c.maxHeaderBytes} bytes (--max-header-bytes)`, randomUUID());
      rt.metrics.request('outbound', 'deny', 431, 0);
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      refuseRaw(socket, 'request_timeout', `request headers not received within ${c.headerTimeoutMs} ms (--header-timeout)`, randomUUID());
      rt.metrics.request('outbound', 'deny', 408, 0);
    } else {
      refuseSocket(socket, 'malformed HTTP request');
    }
  });
  return server;
}
