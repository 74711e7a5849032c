// What the destination receives: the app's headers minus hop-by-hop headers, minus every
// `x-authproxy-*` header (they are instructions to this sidecar, such as x-authproxy-jit, or
// identity claims that only an inbound sidecar may set), and minus whatever the app sent under the
// header the route's token goes in; then the Host the route was chosen for (one, whatever the app
// sent: over HTTP/2 a second Host would become the :authority, and a destination that routes by
// it would get the token meant for the first), the token, the request id, and the time left,
// which the forwarder fills in at each try:
// `grpc-timeout` when the app sent one, and `x-authproxy-deadline` on mTLS hops (a peer sidecar
// honours it; external destinations are not sent the sidecar's own headers).
import { connectionTokens, isConnectionField } from '../http/hop-by-hop.ts';
import { isPseudoHeader, isTeTrailers, type AnyRequest } from '../http/h2.ts';
import { OWNED_PREFIX } from '../http/owned.ts';
import { formatGrpcTimeout } from '../forward/deadline.ts';

export interface DestinationHeaders {
  headers: string[];
  deadlineValueAt: number;
  grpcTimeoutValueAt: number;
}

/**
 * `tokenHeader` (lowercase) is removed from the app's headers and, when `tokenValue` is not
 * null, set to it. `host` (the target's authority) replaces every Host line the app sent.
 */
export function destinationHeaders(req: AnyRequest, host: string, tokenHeader: string | null, tokenValue: string | null,
  requestId: string, toSidecar: boolean): DestinationHeaders {
  const raw = req.rawHeaders;
  const extraHop = connectionTokens(req.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (isPseudoHeader(name)) continue;
    const lower = name.toLowerCase();
    if (isTeTrailers(req, lower, raw[i + 1]!)) { out.push('te', 'trailers'); continue; }
    if (isConnectionField(lower, extraHop) || lower === 'x-request-id' || lower === 'grpc-timeout' || lower.startsWith(OWNED_PREFIX)
      || lower === tokenHeader || lower === 'host') continue;
    out.push(name, raw[i + 1]!);
  }
  out.push('host', host);
  if (tokenHeader !== null && tokenValue !== null) out.push(tokenHeader, tokenValue);
  out.push('x-request-id', requestId);
  let grpcTimeoutValueAt = -1;
  if (req.headers['grpc-timeout'] !== undefined) { out.push('grpc-timeout', ''); grpcTimeoutValueAt = out.length - 1; }
  if (!toSidecar) return { headers: out, deadlineValueAt: -1, grpcTimeoutValueAt };
  out.push('x-authproxy-deadline', '');
  return { headers: out, deadlineValueAt: out.length - 1, grpcTimeoutValueAt };
}

/**
 * An Upgrade's handshake: the destination's headers with the time left filled in (`leftMs`, once:
 * there is no retry), plus the Upgrade the app asked for and `connection: upgrade`, the two
 * hop-by-hop fields the handshake needs. Whatever else the app's Connection named stays dropped.
 */
export function withUpgrade(req: AnyRequest, h: DestinationHeaders, leftMs: number): string[] {
  const out = h.headers;
  if (h.deadlineValueAt >= 0) out[h.deadlineValueAt] = String(Math.max(0, Math.floor(leftMs)));
  if (h.grpcTimeoutValueAt >= 0) out[h.grpcTimeoutValueAt] = formatGrpcTimeout(leftMs);
  out.push('upgrade', String(req.headers.upgrade ?? ''), 'connection', 'upgrade');
  return out;
}
