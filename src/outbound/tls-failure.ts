// What a failed TLS hop's refusal adds for whoever reads it: why the hop was TLS (the route's
// `tls`, or the destination being outside every TrustBoundary), or what the destination's
// certificate was checked against. The status and code stay the contract's (502
// upstream_unavailable); the message tells a newcomer whose local plain-HTTP service got a TLS
// handshake what to change.
import type { TlsFailure } from '../forward/errors.ts';
import type { CompiledRoute } from './routes.ts';
import type { Trust } from './transport.ts';

const CHECKED_AGAINST: Record<Trust, string> = {
  bundle: 'the mesh trust bundle (--ca) only',
  system: "the system's root CAs only",
  both: "the system's root CAs and the mesh trust bundle (--ca)",
};

export function tlsFailureHint(kind: TlsFailure, route: CompiledRoute | null, trust: Trust): string {
  const named = route === null ? 'no OutboundRoute' : `OutboundRoute ${route.name}`;
  switch (kind) {
    case 'not_tls':
      return route !== null && (route.tls === 'tls' || route.tls === 'mtls')
        ? `; ${named} says tls: ${route.tls}`
        : `; the sidecar originates TLS to hosts outside every TrustBoundary (${named}, tls: auto), and plain HTTP is allowed only inside one: a TrustBoundary that covers this host sends it plain HTTP`;
    case 'server_certificate':
      return `; checked against ${CHECKED_AGAINST[trust]} (${named})`;
  }
}
