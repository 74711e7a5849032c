// The outbound listener (default 127.0.0.1:15001): plain HTTP from the app, as an HTTP proxy
// (absolute-form) or by Host (origin-form). The same header limit as inbound applies to what the
// app sends (the token is added after, so a 32 KB token never counts against the app).
// CONNECT tunnels are refused: a tunnel would carry TLS the sidecar cannot put a token into, so
// the app sends http:// and the sidecar originates TLS per route. HTTP/1.1 Upgrade requests
// (WebSocket) are routed, given their token and audited as requests are (handler.ts).
// HTTP/2 with prior knowledge (h2c, what a gRPC client speaks to a plaintext target) is accepted
// on the same port (http/preface.ts); both servers share one handler, which holds h2c requests to
// the header limit (node:http2 does not; see http/header-limit.ts).
import type { Server } from 'node:http';
import { createServer } from '../http/node-http.ts';
import { createServer as createH2cServer } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Runtime } from '../runtime/state.ts';
import { refuseRaw } from '../http/refuse.ts';
import { containFaults } from '../http/fault.ts';
import { trackConnections } from '../http/connections.ts';
import { serveByPreface } from '../http/preface.ts';
import { closeOnPrematureResets } from '../http/premature-reset.ts';
import { log } from '../log.ts';
import { H2_MAX_SESSION_MEMORY_MB, H2_STREAM_WINDOW_BYTES, widenConnectionWindow } from '../http/h2.ts';
import { h2AdvertisedHeaderListSize, headersTooLargeMessage } from '../http/header-limit.ts';
import { serverLimits, cutIdleConnections } from '../inbound/limits.ts';
import { outboundHandler, type OutboundForwarding, type OutboundHandler } from './handler.ts';
import { LoopGuard } from './loop.ts';

/** The listening socket, plus a way to end its connections when the drain is over. */
export interface OutboundServer { listener: NetServer; closeAllConnections(): void }

export function createOutboundServer(rt: Runtime, fwd: OutboundForwarding): OutboundServer {
  // net.Server keeps Nagle on unless told (http.Server turns it off): off, as on every hop.
  const listener = createNetServer({ noDelay: true });
  // One handler, so one loop guard (one hop id) for both protocols.
  const handler = outboundHandler(rt, fwd, new LoopGuard(listener));
  const handle = containFaults(handler.request);
  const server = createHttp1Server(rt, handle, containFaults(handler.upgrade));
  // RFC 8441's extended CONNECT (a WebSocket over HTTP/2) is not offered: node:http2 advertises no
  // SETTINGS_ENABLE_CONNECT_PROTOCOL unless told, so an h2c app opens its WebSocket over HTTP/1.1.
  const h2c = createH2cServer({
    settings: { maxHeaderListSize: h2AdvertisedHeaderListSize(rt.config.maxHeaderBytes), initialWindowSize: H2_STREAM_WINDOW_BYTES },
    maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
  });
  h2c.on('session', widenConnectionWindow);
  cutIdleConnections(h2c, rt.config.clientIdleTimeoutMs);
  // The inbound rule (http/premature-reset.ts) here too: otherwise an app (or whatever has taken it
  // over) could make destinations begin any number of requests it never waits for, each with a
  // token and an audit record, through its own sidecar.
  closeOnPrematureResets(h2c, (session, tally) => {
    rt.metrics.prematureResetClose('outbound');
    log.warn('closed an HTTP/2 connection from the app whose client reset most of its streams at once (rapid reset)', {
      address: session.socket.remoteAddress ?? null, streams: tally.closed, premature: tally.premature,
    });
  });
  h2c.on('request', handle);
  serveByPreface(listener, rt.config.headerTimeoutMs, server, h2c);
  return { listener, closeAllConnections: trackConnections(listener) };
}

function createHttp1Server(rt: Runtime, handle: OutboundHandler['request'], upgrade: OutboundHandler['upgrade']): Server {
  const c = rt.config;
  const server = createServer(serverLimits(c));
  cutIdleConnections(server, c.clientIdleTimeoutMs);
  server.on('request', handle);
  const refuseSocket = (socket: Duplex, message: string): void => {
    // (A CONNECT's socket, like an upgrade's, has lost node:http's error listener.)
    socket.on('error', () => {});
    refuseRaw(socket, 'bad_request', message, randomUUID());
    rt.metrics.request('outbound', 'deny', 400, 0);
  };
  server.on('connect', (_req, socket: Duplex) => refuseSocket(socket,
    'CONNECT tunnels are not supported: send http:// URLs through the proxy; the sidecar originates TLS where the route says so'));
  server.on('upgrade', upgrade);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) { socket.destroy(); return; }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      refuseRaw(socket, 'headers_too_large', headersTooLargeMessage(c.maxHeaderBytes), randomUUID());
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
