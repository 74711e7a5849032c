// Upgrade requests (WebSocket and any other protocol): authorized exactly like any request, then
// the handshake goes to the app (http/upgrade-handshake.ts). Only the app's 101 splices the two
// sockets; any other answer is relayed and both connections are closed, so nothing the caller
// sends after its handshake can reach the app unless the app has switched protocols.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Runtime } from '../runtime/state.ts';
import { refuseRaw } from '../http/refuse.ts';
import { requestIdFrom } from '../http/request-id.ts';
import type { Identify } from './identify.ts';
import { decide, auditRecord } from './authorize.ts';
import { upstreamHeaders, identityHeaders } from './headers.ts';
import { relayUpgrade, type HandshakeTarget } from '../http/upgrade-handshake.ts';
import { bearerOf, afterBearerCheck, type BearerCheck } from '../tokens/inbound.ts';
import { socketFault } from '../http/fault.ts';

export function inboundUpgradeHandler(rt: Runtime, identify: Identify, transport: 'mtls' | 'plaintext'): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return function upgrade(req, socket, head) {
    // node:http has taken its own error listener off this socket: a reset read while the bearer
    // token is checked would be an unhandled 'error' and end the process. 'close' follows.
    socket.on('error', () => {});
    const token = bearerOf(rt, req);
    if (typeof token !== 'string') { proceed(req, socket, head, token); return; }
    afterBearerCheck(rt, token, () => !socket.destroyed, (bearer) => proceed(req, socket, head, bearer), (e) => socketFault(socket, e));
  };

  function proceed(req: IncomingMessage, socket: Duplex, head: Buffer, bearer: BearerCheck): void {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const verdict = decide(rt, identify, req, bearer);
    rt.audit.write(auditRecord(rt, verdict, req, requestId, transport));
    if (verdict.refusal) {
      refuseRaw(socket, verdict.refusal.code, verdict.refusal.message, requestId);
      rt.metrics.request('inbound', 'deny', verdict.refusal.status, 0);
      return;
    }
    const headers = upstreamHeaders(req, identityHeaders(rt, verdict, requestId), true);
    relayUpgrade(rt, socket, head, appHandshakeTarget(rt), { method: req.method ?? 'GET', path: verdict.forwardPath, headers, requestId });
  }
}

/** The app, as the handshake of an upgrade reaches it: within --request-timeout. */
export function appHandshakeTarget(rt: Runtime): HandshakeTarget {
  const upstream = rt.config.upstream;
  return {
    name: 'the app',
    direction: 'inbound',
    connect: upstream.kind === 'unix' ? { socketPath: upstream.socketPath } : { host: upstream.host, port: upstream.port },
    timeoutMs: rt.config.requestTimeoutMs,
  };
}
