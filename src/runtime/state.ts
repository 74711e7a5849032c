// The live state every listener reads: swapped whole on reload (a request sees one consistent
// policy set and one certificate), never mutated in place.
import type { Config } from '../config/config.ts';
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
  /** Trust domains accepted from peers: configured ones, else the workload's own. */
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
  if (config.trustDomains.length > 0) return new Set(config.trustDomains);
  return new Set(tls.trustDomain ? [tls.trustDomain] : []);
}
