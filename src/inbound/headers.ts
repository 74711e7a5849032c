// What the app receives: the caller's headers minus hop-by-hop headers, minus everything under
// the names the sidecar owns (x-forwarded-client-cert, x-authproxy-*), which a caller could
// otherwise use to claim an identity, and minus the token header while tokens are in play (a raw,
// unverified token must not reach an app that trusts the sidecar to have checked it); then the
// verified identity and token claims, set by the sidecar alone.
import type { IncomingMessage } from 'node:http';
import type { Runtime } from '../runtime/state.ts';
import type { InboundVerdict } from './authorize.ts';
import { HOP_BY_HOP, connectionTokens } from '../http/hop-by-hop.ts';
import { isPseudoHeader, isTeTrailers, h2Authority } from '../http/h2.ts';
import { isSidecarOwned } from '../http/owned.ts';
import { CLAIMS_HEADER, tokenHeaderToDrop } from '../tokens/inbound.ts';

export interface IdentityHeaders {
  xfcc: string | null;
  principal: string;
  requestId: string;
  /** x-authproxy-claims: the verified token's claims; null when no token was verified. */
  claims: string | null;
  /** The token header (lowercase), every line of which is left out; null when it passes as sent. */
  dropHeader: string | null;
}

/** The sidecar's headers for a request `verdict` allowed. */
export function identityHeaders(rt: Runtime, verdict: InboundVerdict, requestId: string): IdentityHeaders {
  const caller = verdict.caller!;
  return {
    xfcc: caller.xfcc, principal: caller.principal, requestId,
    claims: verdict.bearer.claimsHeader, dropHeader: tokenHeaderToDrop(rt, verdict.decision, verdict.bearer),
  };
}

export interface UpstreamHeaders {
  headers: string[];
  /** Index of the x-authproxy-deadline value (-1 when not sent), refreshed at each try. */
  deadlineValueAt: number;
  /** Index of the grpc-timeout value (-1 when the caller sent none), refreshed at each try. */
  grpcTimeoutValueAt: number;
}

/**
 * Headers for the app, with slots for the time left that the forwarder fills in per try
 * (`x-authproxy-deadline` always, `grpc-timeout` when the caller sent one).
 */
export function upstreamRequestHeaders(req: IncomingMessage, id: IdentityHeaders): UpstreamHeaders {
  const headers = upstreamHeaders(req, id, false, true);
  let grpcTimeoutValueAt = -1;
  if (req.headers['grpc-timeout'] !== undefined) { headers.push('grpc-timeout', ''); grpcTimeoutValueAt = headers.length - 1; }
  headers.push('x-authproxy-deadline', '');
  return { headers, deadlineValueAt: headers.length - 1, grpcTimeoutValueAt };
}

/**
 * Flat [name, value, …] list for the upstream request. `keepUpgrade` keeps Connection/Upgrade
 * for WebSocket handshakes, which must reach the app intact; `dropGrpcTimeout` leaves the
 * caller's grpc-timeout out because the forwarder sends the reduced one.
 */
export function upstreamHeaders(req: IncomingMessage, id: IdentityHeaders, keepUpgrade = false, dropGrpcTimeout = false): string[] {
  const raw = req.rawHeaders;
  const extraHop = connectionTokens(req.headers.connection);
  const dropHeader = id.dropHeader;
  const out: string[] = [];
  let host = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (isPseudoHeader(name)) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (isTeTrailers(req, lower, raw[i + 1]!)) { out.push('te', 'trailers'); continue; }
      if (!(keepUpgrade && (lower === 'upgrade' || lower === 'connection'))) continue;
    } else if (lower === 'host') {
      host = true;
    } else if (isSidecarOwned(lower) || lower === dropHeader || (extraHop !== null && extraHop.has(lower)) || (dropGrpcTimeout && lower === 'grpc-timeout')) {
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  // The app sees the authority an HTTP/2 caller addressed as Host, as from an HTTP/1.1 caller.
  if (!host) { const authority = h2Authority(req); if (authority !== undefined) out.push('host', authority); }
  if (id.xfcc !== null) out.push('x-forwarded-client-cert', id.xfcc);
  out.push('x-authproxy-principal', id.principal, 'x-request-id', id.requestId);
  if (id.claims !== null) out.push(CLAIMS_HEADER, id.claims);
  return out;
}
