// The live state every listener reads: swapped whole on reload (a request sees one consistent
// policy set and one certificate), never mutated in place.
import type { Config } from '../config/config.ts';
import { ConfigError } from '../errors.ts';
import type { TlsMaterial } from '../identity/material.ts';
import type { PolicySet } from '../policy/types.ts';
import type { AuditLog } from '../audit/writer.ts';
import type { Metrics } from '../admin/metrics.ts';
import type { OutboundTokens } from '../tokens/service.ts';
import type { TokenVerifier } from '../tokens/verify.ts';

export interface Runtime {
  readonly config: Config;
  tls: TlsMaterial;
  policy: PolicySet;
  /** Trust domains accepted from peers: configured ones, else the workload's own; and the federated ones. */
  trustDomains: ReadonlySet<string>;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  ready: boolean;
  draining: boolean;
  /** Requests being handled now; drain waits for this to reach zero. */
  inFlight: number;
  /** Outbound token cache; null without --issuer / --token-endpoint. */
  readonly tokens: OutboundTokens | null;
  /** Inbound bearer-token verifier; null without --issuer. */
  readonly verifier: TokenVerifier | null;
}

export function acceptedTrustDomains(config: Config, tls: TlsMaterial): ReadonlySet<string> {
  const own = config.trustDomains.length > 0 ? config.trustDomains : tls.trustDomain ? [tls.trustDomain] : [];
  // Without one, "any trust domain --ca signs" would shrink to "only the federated ones".
  if (own.length === 0 && config.federations.length > 0) {
    throw new ConfigError('--federate needs our own trust domain: give --trust-domain, or a workload certificate with a SPIFFE ID', { field: 'federate' });
  }
  return new Set([...own, ...config.federations.map((f) => f.trustDomain)]);
}
