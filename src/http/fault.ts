// A fault in the sidecar's own code while it handles one request costs that request, never the
// process. node:http and node:http2 let an exception thrown by a 'request' listener end the
// process, as does a promise rejection nobody handles; in a sidecar that is every other caller's
// requests and the pod's readiness with it, for one bug on one path (an IPv6 zone ID in an
// outbound target did just that, before the target parser refused it). Nothing a caller sends
// should reach here: the request is answered 500 internal_error if nothing was sent yet (cut
// otherwise), and the fault logged with its stack, to be fixed.
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { refuse } from './refuse.ts';
import { requestIdFrom } from './request-id.ts';
import { log } from '../log.ts';

type Res = ServerResponse | Http2ServerResponse;

/** Answers a request whose handling failed inside the sidecar. */
export function answerFault(res: Res, e: unknown): void {
  const requestId = requestIdFrom(res.req.headers['x-request-id']);
  log.error('internal error while handling a request; the request was answered 500', { requestId, ...faultFields(e) });
  try {
    if (!res.destroyed) refuse(res, 'internal_error', 'the sidecar failed to handle this request', requestId);
  } catch { res.destroy(); }
}

// The stack names our code; the message of an error from our own code carries no request data.
function faultFields(e: unknown): { error: string; stack: string | undefined } {
  return e instanceof Error ? { error: e.message, stack: e.stack } : { error: String(e), stack: undefined };
}

/** A request whose handling failed before it became a response: an Upgrade's socket. Nothing to answer on safely. */
export function socketFault(socket: Duplex, e: unknown): void {
  log.error('internal error while handling an upgrade; the connection was closed', faultFields(e));
  socket.destroy();
}

/**
 * A server listener ('request', 'upgrade', 'connect') whose exceptions end that request instead of
 * the process. Its second argument is what the request is answered on: a response, or for an
 * HTTP/1.1 upgrade or CONNECT, the raw socket.
 */
export function containFaults<Args extends [unknown, Res | Duplex, ...unknown[]]>(listener: (...args: Args) => void): (...args: Args) => void {
  return function contained(...args) {
    try { listener(...args); } catch (e) {
      const on = args[1];
      if ('writeHead' in on) answerFault(on, e); else socketFault(on, e);
    }
  };
}
