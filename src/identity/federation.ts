// SPIFFE federation: each federated trust domain's IDs are vouched for by that domain's own bundle,
// and every other peer by the --ca bundle, as Envoy's SPIFFE validator isolates its trust domains.
// The TLS stack has to trust every bundle at once (it cannot know a client's trust domain before
// verifying it), so without this a partner's CA, trusted to accept the partner's workloads, could
// mint `spiffe://<our domain>/…` and pass for any of our workloads, or we for theirs.
//
// Checked once per connection after the handshake, only when federation is configured: the CA
// that signed the peer's certificate must be in the bundle of the peer's trust domain. The chain
// cannot be followed beyond that CA: Node 24's TLS server does not show the intermediates a client
// sent (getPeerCertificate(true) ends at the leaf; nodejs/node#65579). So with federation each
// bundle must list the CA that issues its domain's certificates: the root when it signs them itself
// (SPIRE's default), or the issuing intermediate together with its root.
import type { X509Certificate } from 'node:crypto';
import { rfc2253 } from './peer.ts';

export interface Bundles {
  /** --ca: our own trust domains, and peers without a SPIFFE ID. */
  readonly own: readonly X509Certificate[];
  /** --federate: trust domain → the only CAs that may issue its IDs. */
  readonly federated: ReadonlyMap<string, readonly X509Certificate[]>;
}

/** Why `leaf` (trust domain `trustDomain`, null without a SPIFFE ID) is not vouched for by its own domain's bundle, or null. */
export function outsideItsBundle(leaf: X509Certificate, trustDomain: string | null, b: Bundles, now = Date.now()): string | null {
  const federated = trustDomain === null ? undefined : b.federated.get(trustDomain);
  if ((federated ?? b.own).some((ca) => signedBy(leaf, ca, now))) return null;
  const whose = trustDomain === null ? 'a certificate without a SPIFFE ID' : `an ID of trust domain '${trustDomain}'`;
  const needed = federated ? `its bundle (--federate ${trustDomain}=…)` : 'the --ca bundle';
  return `${whose} must be issued by a CA in ${needed}; this one was issued by ${issuerOf(leaf, b, now)}`;
}

function signedBy(leaf: X509Certificate, ca: X509Certificate, now: number): boolean {
  return leaf.checkIssued(ca) && Date.parse(ca.validFrom) <= now && now <= Date.parse(ca.validTo) && leaf.verify(ca.publicKey);
}

/** Where the certificate really came from, for the audit line (the failure path only). */
function issuerOf(leaf: X509Certificate, b: Bundles, now: number): string {
  const name = `'${rfc2253(leaf.issuer)}'`;
  if (b.own.some((ca) => signedBy(leaf, ca, now))) return `${name}, a CA of the --ca bundle`;
  for (const [td, cas] of b.federated) if (cas.some((ca) => signedBy(leaf, ca, now))) return `${name}, a CA of trust domain '${td}'`;
  return `${name}, which no bundle lists (an intermediate: list it in its trust domain's bundle file)`;
}

/**
 * A configuration that would undo the isolation, or null: our own trust domain federated, one CA
 * key in two trust domains' bundles (it would vouch for both), or a CA in one domain's bundle that
 * a CA of another domain's bundle issued (a partner's intermediate left in --ca: whoever runs the
 * partner's CA holds its key, and could mint our IDs with it).
 */
export function federationProblem(b: Bundles, ownTrustDomain: string | null): string | null {
  if (ownTrustDomain !== null && b.federated.has(ownTrustDomain)) {
    return `trust domain '${ownTrustDomain}' is the workload's own: its IDs are vouched for by --ca, it cannot also be federated`;
  }
  const seen = new Map<string, string>();
  const domains: Array<[string, readonly X509Certificate[]]> = [['the --ca bundle', b.own], ...[...b.federated].map(([td, cas]): [string, readonly X509Certificate[]] => [`trust domain '${td}'`, cas])];
  for (const [where, cas] of domains) {
    for (const ca of cas) {
      const key = ca.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
      const first = seen.get(key);
      if (first !== undefined && first !== where) {
        return `the CA '${rfc2253(ca.subject)}' (or its key) is in both ${first} and ${where}; each trust domain needs CAs of its own`;
      }
      seen.set(key, where);
    }
  }
  for (const [where, cas] of domains) {
    for (const ca of cas) {
      for (const [other, issuers] of domains) {
        const issuer = other === where ? undefined : issuers.find((i) => ca.checkIssued(i) && ca.verify(i.publicKey));
        if (issuer) {
          return `the CA '${rfc2253(ca.subject)}' in ${where} was issued by '${rfc2253(issuer.subject)}' of ${other}; `
            + 'each trust domain needs CAs of its own, and a CA another domain issued is that domain\'s';
        }
      }
    }
  }
  return null;
}
