// Which request trailer fields travel on to the next hop. RFC 9110 §6.5.1: fields that frame,
// route, authenticate or describe the content must be in the header section, because they are
// needed before the content; a recipient must not merge such trailers into the headers, and many
// apps do just that. So those are dropped, with hop-by-hop fields and every name the sidecar owns
// (a caller must not be able to assert an identity in a trailer that it could not in a header).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { HOP_BY_HOP } from './hop-by-hop.ts';
import { isPseudoHeader } from './h2.ts';
import { isSidecarOwned } from './owned.ts';

const NOT_IN_TRAILERS: ReadonlySet<string> = new Set([
  'host', 'content-length', 'content-type', 'content-encoding', 'content-range', 'authorization', 'cookie',
]);

/**
 * The trailers to send on, from a request's received trailers (lowercased names). `owned` is one
 * more name the sidecar owns: the inbound token header when it is not authorization (--token-header).
 */
export function forwardableTrailers(received: IncomingHttpHeaders | undefined, owned: string | null = null): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (!received) return out;
  for (const name in received) {
    if (isPseudoHeader(name) || HOP_BY_HOP.has(name) || NOT_IN_TRAILERS.has(name) || isSidecarOwned(name) || name === owned) continue;
    const value = received[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
