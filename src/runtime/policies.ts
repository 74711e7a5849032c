// Loading the policy set for the runtime, with the warning operators need when nothing restricts access.
import { loadPolicyDir } from '../policy/load.ts';
import { emptyPolicySet } from '../policy/types.ts';
import type { PolicySet } from '../policy/types.ts';
import { log } from '../log.ts';

/** Reads the set; `warnIfOpen` is for the caller to call once the set is actually in force. */
export async function readPolicies(dir: string | null): Promise<PolicySet> {
  return dir ? await loadPolicyDir(dir) : emptyPolicySet();
}

/** `federated`: partner trust domains are accepted (--federate), so rules open to any trust domain admit them. */
export function warnIfOpen(set: PolicySet, dir: string | null, federated: boolean): void {
  if (set.authorizationPolicies === 0) {
    log.warn('no AuthorizationPolicy loaded: every peer with a trusted certificate is allowed', { policies: dir });
    return;
  }
  const open = federated ? set.rulesOpenToAnyTrustDomain : [];
  if (open.length > 0) {
    log.warn('these allow rules match federated partners\' workloads too: their principals leave the trust domain open, or they have no from; '
      + 'name the trust domain (spiffe://example.org/...) in each rule not meant for partners', { rules: open, policies: dir });
  }
}

export async function loadPolicies(dir: string | null, federated: boolean): Promise<PolicySet> {
  const set = await readPolicies(dir);
  warnIfOpen(set, dir, federated);
  return set;
}
