// The inbound plaintext listener (off by default): for callers inside a trust boundary that have
// no certificate. The source address decides: inside a boundary the request is authorized as
// principal `boundary:<name>`; outside every boundary it is refused with 403
// `boundary_violation` and audited, and never reaches the app.
//
// HTTP/1.1 and HTTP/2 with prior knowledge (h2c: a gRPC client with an insecure channel) share the
// port, told apart by a connection's first bytes (http/preface.ts), as on the outbound listener
// and as Envoy's and Linkerd's cleartext ports do. Both go to the one handler; the HTTP/2 side has
// the mTLS listener's settings (header table, header list, WebSocket over HTTP/2) and rapid-reset
// guard.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createH2cServer, type Http2Server } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer } from '../http/node-http.ts';
import type { Runtime } from '../runtime/state.ts';
import type { UpstreamPool } from '../forward/upstream.ts';
import { byBoundary } from './identify.ts';
import { serverLimits, applyLimits, cutIdleConnections, guardRapidResets } from './limits.ts';
import { widenConnectionWindow } from '../http/h2.ts';
import { inboundHandler } from './handler.ts';
import { inboundUpgradeHandler } from './upgrade.ts';
import { inboundConnectHandler } from './websocket-h2.ts';
import { h2Settings } from './listener.ts';
import { containFaults } from '../http/fault.ts';
import { serveByPreface } from '../http/preface.ts';
import { trackConnections, countSessions } from '../http/connections.ts';

export interface PlaintextServer {
  /** The listening socket, which hands each connection to the HTTP/1.1 or the h2c server. */
  listener: NetServer;
  /** The drain: idle HTTP/1.1 keep-alives closed, GOAWAY on each HTTP/2 session. */
  drain(): void;
  /** HTTP/2 sessions still open: each ends its connection itself once its last stream is done. */
  openSessions(): number;
  closeAllConnections(): void;
}

export function createPlaintextServer(rt: Runtime, upstream: UpstreamPool): PlaintextServer {
  const c = rt.config;
  const identify = byBoundary(rt);
  const handle = containFaults(inboundHandler(rt, upstream, identify, 'plaintext'));
  const connect = containFaults(inboundConnectHandler(rt, identify, 'plaintext'));

  const http1: Server = createServer(serverLimits(c));
  applyLimits(http1, rt, identify, 'plaintext');
  http1.on('request', handle);
  // Expect: 100-continue: the 100 is the handler's to send, once the request is allowed.
  http1.on('checkContinue', (req, res) => handle(req, res, true));
  http1.on('upgrade', containFaults(inboundUpgradeHandler(rt, identify, 'plaintext')));
  // Without a listener node:http drops a CONNECT unanswered and unaudited.
  http1.on('connect', connect);

  const h2c: Http2Server = createH2cServer(h2Settings(c.maxHeaderBytes));
  h2c.on('session', widenConnectionWindow);
  cutIdleConnections(h2c, c.clientIdleTimeoutMs);
  guardRapidResets(h2c, rt, identify);
  h2c.on('request', handle);
  h2c.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handle(req, res, true));
  h2c.on('connect', connect);
  const openSessions = countSessions(h2c);

  // net.Server keeps Nagle on unless told (http.Server turns it off): off, as on every hop.
  const listener = createNetServer({ noDelay: true });
  serveByPreface(listener, c.headerTimeoutMs, http1, h2c);
  listener.maxConnections = c.maxConnections;
  return {
    listener,
    // (close() on servers that never listened: it closes idle keep-alives and sends GOAWAY.)
    drain: () => { http1.close(); h2c.close(); },
    openSessions,
    closeAllConnections: trackConnections(listener),
  };
}
