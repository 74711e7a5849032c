// Dev mode's embedded token issuer: the dev workload is its only client (private_key_jwt with the
// workload certificate's key, so nothing secret is configured), allowed the audiences the loaded
// OutboundRoutes name plus its own, so the outbound path and inbound token rules work out of
// the box. JIT approvals: `authproxy issuer approve --client <workload id> --role ROLE --for 15m`.
import { loadPolicyDir } from '../policy/load.ts';
import { startIssuer, DEFAULT_ISSUER_LISTEN, type RunningIssuer } from '../issuer/server.ts';
import type { ClientsDocument } from '../issuer/clients.ts';
import type { RawConfig } from '../config/config.ts';

export interface DevIssuer {
  readonly issuer: RunningIssuer;
  /** Config layer pointing the sidecar at it (flags and the config file still win). */
  readonly layer: RawConfig;
}

export async function startDevIssuer(opts: { workloadId: string; workloadCert: string; policies: string | null; audience: string | null }): Promise<DevIssuer> {
  const audiences: Record<string, null> = { [opts.audience ?? opts.workloadId]: null };
  if (opts.policies) {
    // A broken policy directory is reported by start-up itself; here it only means fewer audiences.
    try {
      const set = await loadPolicyDir(opts.policies);
      for (const r of set.routes) if (r.token && URL.parse(r.token.audience) && !r.token.audience.includes('#')) audiences[r.token.audience] = null;
    } catch { /* reported by start() */ }
  }
  const clients: ClientsDocument = {
    clients: { [opts.workloadId]: { auth: 'private_key_jwt', certificate: opts.workloadCert, audiences } },
  };
  let issuer: RunningIssuer;
  try {
    issuer = await startIssuer({ listen: DEFAULT_ISSUER_LISTEN, clients });
  } catch {
    // The usual port is taken (another dev sidecar): any free one will do, the banner names it.
    issuer = await startIssuer({ listen: '127.0.0.1:0', clients });
  }
  return { issuer, layer: { issuer: issuer.url, clientAuth: 'private_key_jwt' } };
}
