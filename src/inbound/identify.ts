// Who is calling, for each kind of inbound listener. The mTLS listener knows the caller from its
// certificate (computed once per connection at handshake); the plaintext listener knows only a
// source address, which is accepted when it lies inside a trust boundary and then stands for
// the principal `boundary:<name>`.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { RequestRefused } from '../errors.ts';
import type { Runtime } from '../runtime/state.ts';
import type { PeerIdentity } from '../identity/peer.ts';

export interface Caller {
  readonly principal: string;
  /** Envoy-format client certificate header value; null without a certificate. */
  readonly xfcc: string | null;
  /** Trust boundary the caller's source address lies in (plaintext listener only). */
  readonly boundary: string | null;
  /** How the caller reached the sidecar, for the audit record. */
  readonly transport: 'mtls' | 'plaintext';
}

/**
 * Only the connection is read, so a request the HTTP parser refused (which has no IncomingMessage)
 * is identified the same way, as `{ socket }` (limits.ts).
 */
export type Identify = (req: Pick<IncomingMessage, 'socket'>) => Caller | RequestRefused;

// Kept on the TLS socket under a private symbol rather than in a WeakMap: an HTTP/2 request's
// `req.socket` is a proxy object that forwards property reads to the session's socket, so a
// property is found from both protocols while an identity-keyed map would miss HTTP/2.
const CALLER = Symbol('authproxy.caller');
type WithCaller = { [CALLER]?: Caller };

/** Called at handshake with the verified certificate identity. */
export function rememberPeer(socket: Socket, id: PeerIdentity): void {
  (socket as WithCaller)[CALLER] = Object.freeze({ principal: id.principal, xfcc: id.xfcc, boundary: null, transport: 'mtls' });
}

const UNKNOWN_PEER = new RequestRefused('forbidden', 'peer identity unknown');

export function byCertificate(req: Pick<IncomingMessage, 'socket'>): Caller | RequestRefused {
  // A socket without an entry never passed the handshake checks; refuse rather than guess.
  return (req.socket as WithCaller)[CALLER] ?? UNKNOWN_PEER;
}

/** IPv4 peers on a dual-stack socket appear as ::ffff:a.b.c.d; boundaries are written as a.b.c.d. */
export function sourceAddress(remote: string | undefined): string {
  if (!remote) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

export function byBoundary(rt: Runtime): Identify {
  return (req) => {
    const source = sourceAddress(req.socket.remoteAddress);
    const boundary = rt.policy.boundaryOf(source);
    if (boundary === null) return new RequestRefused('boundary_violation', `plaintext from ${source} is outside every trust boundary; use mTLS`);
    return { principal: `boundary:${boundary}`, xfcc: null, boundary, transport: 'plaintext' };
  };
}
