// How the outbound hop is carried, decided in one place for every destination.
//
//   tls: mtls   TLS, presenting the workload certificate.
//   tls: tls    TLS without a client certificate.
//   tls: none   plaintext (policy validation refuses it for hosts outside every boundary).
//   tls: auto   and unrouted hosts: plaintext inside a trust boundary; outside, the sidecar
//               originates TLS itself although the app spoke plain HTTP.
// The destination's server certificate must chain to (`trust`): `bundle` the mesh trust bundle,
// `system` the system roots; `auto` is the bundle for mtls (a peer sidecar) and both for tls.
// Hostnames are verified against the certificate (Node's checkServerIdentity) whenever TLS is used.
import type { ServerTrust, TlsMode } from '../policy/types.ts';

export type Transport = 'plaintext' | 'tls' | 'mtls';
export type Trust = 'bundle' | 'system' | 'both';

export interface Carriage { transport: Transport; trust: Trust }

const PLAINTEXT: Carriage = Object.freeze({ transport: 'plaintext', trust: 'bundle' });
const CARRIAGES: Record<string, Carriage> = {};
function carriage(transport: Transport, trust: Trust): Carriage {
  return CARRIAGES[`${transport}/${trust}`] ??= Object.freeze({ transport, trust });
}

/** `boundary`: the destination's trust boundary, or null when it is outside every one. */
export function carriageFor(mode: TlsMode | null, trust: ServerTrust | null, boundary: string | null): Carriage {
  let transport: Transport;
  switch (mode) {
    case 'mtls': transport = 'mtls'; break;
    case 'tls': transport = 'tls'; break;
    case 'none': return PLAINTEXT;
    default:
      if (boundary !== null) return PLAINTEXT;
      transport = 'tls';
  }
  const t = trust ?? 'auto';
  return carriage(transport, t === 'bundle' ? 'bundle' : t === 'system' ? 'system' : transport === 'mtls' ? 'bundle' : 'both');
}

/** The port when the app named none: the default of the scheme the sidecar speaks on the hop. */
export function defaultPort(t: Transport): number {
  return t === 'plaintext' ? 80 : 443;
}
