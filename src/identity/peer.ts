// Who is calling: the verified peer certificate turned into a principal, once per connection.
// Chain validation already happened in the TLS stack (requestCert + rejectUnauthorized); this
// adds the X.509-SVID rules and computes everything the request path needs, so requests on a
// kept-alive connection do no certificate work at all.
import type { X509Certificate } from 'node:crypto';
import { parseSubjectAltName } from './san.ts';
import { parseSpiffeId } from './spiffe.ts';

export interface PeerIdentity {
  /** SPIFFE ID, else first DNS SAN, else subject CN. */
  readonly principal: string;
  readonly spiffeId: string | null;
  readonly dnsNames: readonly string[];
  /** RFC 2253 order, as Envoy prints it. */
  readonly subject: string;
  /** SHA-256 of the DER certificate, lowercase hex. */
  readonly hash: string;
  /** Envoy-format x-forwarded-client-cert value, precomputed. */
  readonly xfcc: string;
}

/** `kind` is a fixed category (a metric label); `reason` is the human sentence for the audit log. */
export type PeerCheck = { ok: true; identity: PeerIdentity } | { ok: false; reason: string; kind: RefusalKind };
export type RefusalKind = 'ca_as_leaf' | 'uri_san_count' | 'bad_spiffe_id' | 'trust_domain' | 'no_identity' | 'no_certificate';

/**
 * Apply the X.509-SVID rules on top of chain validation:
 * the leaf is not a CA; with any spiffe:// URI SAN there is exactly one URI SAN and its trust
 * domain is accepted. `trustDomains` empty means any trust domain the CA bundle vouches for.
 */
export function checkPeer(cert: X509Certificate, trustDomains: ReadonlySet<string>): PeerCheck {
  if (cert.ca) return { ok: false, kind: 'ca_as_leaf', reason: 'peer certificate is a CA certificate, not a workload leaf' };
  const san = parseSubjectAltName(cert.subjectAltName);
  const spiffe = san.uris.filter((u) => u.toLowerCase().startsWith('spiffe://'));
  let spiffeId: string | null = null;
  if (spiffe.length > 0) {
    if (san.uris.length !== 1) return { ok: false, kind: 'uri_san_count', reason: `X.509-SVID must carry exactly one URI SAN, found ${san.uris.length}` };
    const id = parseSpiffeId(spiffe[0]!);
    if (!id) return { ok: false, kind: 'bad_spiffe_id', reason: 'URI SAN is not a valid SPIFFE ID' };
    if (trustDomains.size > 0 && !trustDomains.has(id.trustDomain)) {
      return { ok: false, kind: 'trust_domain', reason: `trust domain '${id.trustDomain}' is not accepted` };
    }
    spiffeId = spiffe[0]!;
  }
  const subject = rfc2253(cert.subject);
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
  const principal = spiffeId ?? san.dnsNames[0] ?? cn;
  if (!principal) return { ok: false, kind: 'no_identity', reason: 'peer certificate names no identity (no SPIFFE ID, DNS SAN or CN)' };
  const hash = cert.fingerprint256.replaceAll(':', '').toLowerCase();
  return { ok: true, identity: Object.freeze({ principal, spiffeId, dnsNames: san.dnsNames, subject, hash, xfcc: xfcc(hash, spiffeId, subject, san.dnsNames) }) };
}

function rfc2253(nodeSubject: string): string {
  return nodeSubject.split('\n').filter(Boolean).reverse().join(',');
}

/** Envoy's x-forwarded-client-cert element: Hash=…;URI=…;Subject="…";DNS=… */
export function xfcc(hash: string, uri: string | null, subject: string, dns: readonly string[]): string {
  let v = `Hash=${hash}`;
  if (uri) v += `;URI=${uri}`;
  v += `;Subject="${subject.replace(/["\\]/g, '\\$&')}"`;
  for (const d of dns) v += `;DNS=${d}`;
  return v;
}
