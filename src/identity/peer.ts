// Who is calling: the verified peer certificate turned into a principal, once per connection.
// Chain validation already happened in the TLS stack (requestCert + rejectUnauthorized); this
// adds the X.509-SVID rules and computes everything the request path needs, so requests on a
// kept-alive connection do no certificate work at all.
import type { X509Certificate } from 'node:crypto';
import { parseSubjectAltName } from './san.ts';
import { parseSpiffeId } from './spiffe.ts';
import { DNS_NAME_RULE, isDnsName, reservedPrefix } from './names.ts';

export interface PeerIdentity {
  /** SPIFFE ID, else first DNS SAN, else subject CN. */
  readonly principal: string;
  /** Which of the three the principal is. */
  readonly source: 'spiffe' | 'dns' | 'cn';
  readonly spiffeId: string | null;
  /** The SPIFFE ID's trust domain. */
  readonly trustDomain: string | null;
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
export type RefusalKind = 'ca_as_leaf' | 'uri_san_count' | 'bad_spiffe_id' | 'trust_domain' | 'bad_dns_san' | 'lookalike_name'
  | 'no_identity' | 'no_certificate' | 'wrong_bundle';

/**
 * Apply the X.509-SVID rules on top of chain validation:
 * the leaf is not a CA; with any spiffe:// URI SAN there is exactly one URI SAN and its trust
 * domain is accepted. `trustDomains` empty means any trust domain the CA bundle vouches for.
 * Then the rules for text names (names.ts): every DNS SAN is a DNS name, and without a SPIFFE ID
 * the CN does not pass for a SPIFFE ID or a boundary principal.
 */
export function checkPeer(cert: X509Certificate, trustDomains: ReadonlySet<string>): PeerCheck {
  if (cert.ca) return { ok: false, kind: 'ca_as_leaf', reason: 'peer certificate is a CA certificate, not a workload leaf' };
  const san = parseSubjectAltName(cert.subjectAltName);
  const spiffe = san.uris.filter((u) => u.toLowerCase().startsWith('spiffe://'));
  let spiffeId: string | null = null;
  let trustDomain: string | null = null;
  if (spiffe.length > 0) {
    if (san.uris.length !== 1) return { ok: false, kind: 'uri_san_count', reason: `X.509-SVID must carry exactly one URI SAN, found ${san.uris.length}` };
    const id = parseSpiffeId(spiffe[0]!);
    if (!id) return { ok: false, kind: 'bad_spiffe_id', reason: 'URI SAN is not a valid SPIFFE ID' };
    if (trustDomains.size > 0 && !trustDomains.has(id.trustDomain)) {
      return { ok: false, kind: 'trust_domain', reason: `trust domain '${id.trustDomain}' is not accepted` };
    }
    spiffeId = spiffe[0]!;
    trustDomain = id.trustDomain;
  }
  for (const d of san.dnsNames) {
    if (isDnsName(d)) continue;
    return reservedPrefix(d) ? lookalike('DNS SAN', d)
      : { ok: false, kind: 'bad_dns_san', reason: `DNS SAN ${JSON.stringify(d)} is not a DNS name (${DNS_NAME_RULE})` };
  }
  const subject = rfc2253(cert.subject);
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
  // Next to a SPIFFE ID the CN is never the principal. Without one it is refused even when a DNS
  // SAN outranks it: the certificate poses as an SVID, whichever name it would end up under.
  if (!spiffeId && reservedPrefix(cn)) return lookalike('subject CN', cn);
  const [principal, source] = spiffeId ? [spiffeId, 'spiffe' as const] : san.dnsNames[0] ? [san.dnsNames[0], 'dns' as const] : [cn, 'cn' as const];
  if (!principal) return { ok: false, kind: 'no_identity', reason: 'peer certificate names no identity (no SPIFFE ID, DNS SAN or CN)' };
  const hash = cert.fingerprint256.replaceAll(':', '').toLowerCase();
  return { ok: true, identity: Object.freeze({ principal, source, spiffeId, trustDomain, dnsNames: san.dnsNames, subject, hash, xfcc: xfcc(hash, spiffeId, subject, san.dnsNames) }) };
}

function lookalike(where: string, name: string): PeerCheck {
  const poses = reservedPrefix(name)!.toLowerCase() === 'spiffe:'
    ? 'a SPIFFE ID, which is only taken from a URI SAN' : "a trust boundary's principal, which only plaintext callers get";
  return { ok: false, kind: 'lookalike_name', reason: `${where} ${JSON.stringify(name)} passes for ${poses}` };
}

/** A distinguished name as Node prints it (one RDN per line) in RFC 2253 order, as Envoy prints it. */
export function rfc2253(nodeSubject: string): string {
  return nodeSubject.split('\n').filter(Boolean).reverse().join(',');
}

/**
 * Envoy's x-forwarded-client-cert element: Hash=…;URI=…;Subject="…";DNS=…. Envoy's rule for values:
 * one holding `,` `;` `=` or `"` is double-quoted, with `"` and `\` backslash-escaped; Subject
 * always is. Safe by itself, whatever the checks before it let through: an unquoted
 * `DNS=a;URI=spiffe://…` would give an XFCC parser a URI the certificate does not have.
 */
export function xfcc(hash: string, uri: string | null, subject: string, dns: readonly string[]): string {
  let v = `Hash=${hash}`;
  if (uri) v += `;URI=${xfccValue(uri)}`;
  v += `;Subject=${quoted(subject)}`;
  for (const d of dns) v += `;DNS=${xfccValue(d)}`;
  return v;
}

function xfccValue(v: string): string {
  return /[,;="]/.test(v) ? quoted(v) : v;
}

function quoted(v: string): string {
  return `"${v.replace(/["\\]/g, '\\$&')}"`;
}
