// The inbound plaintext listener (off by default): for callers inside a trust boundary that have
// no certificate. The source address decides: inside a boundary the request is authorized as
// principal `boundary:<name>`; outside every boundary it is refused with 403
// `boundary_violation` and audited, and never reaches the app.
import type { Server } from 'node:http';
import { createServer } from '../http/node-http.ts';
import type { Runtime } from '../runtime/state.ts';
import type { UpstreamPool } from '../forward/upstream.ts';
import { byBoundary } from './identify.ts';
import { serverLimits, applyLimits } from './limits.ts';
import { inboundHandler } from './handler.ts';
import { inboundUpgradeHandler } from './upgrade.ts';
import { inboundConnectHandler } from './websocket-h2.ts';
import { containFaults } from '../http/fault.ts';

export function createPlaintextServer(rt: Runtime, upstream: UpstreamPool): Server {
  const server = createServer(serverLimits(rt.config));
  const identify = byBoundary(rt);
  applyLimits(server, rt, identify, 'plaintext');
  const handle = containFaults(inboundHandler(rt, upstream, identify, 'plaintext'));
  server.on('request', handle);
  // Expect: 100-continue: the 100 is the handler's to send, once the request is allowed.
  server.on('checkContinue', (req, res) => handle(req, res, true));
  server.on('upgrade', containFaults(inboundUpgradeHandler(rt, identify, 'plaintext')));
  // Without a listener node:http drops a CONNECT unanswered and unaudited.
  server.on('connect', containFaults(inboundConnectHandler(rt, identify, 'plaintext')));
  return server;
}
