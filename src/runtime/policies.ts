// Loading the policy set for the runtime, with the warning operators need when nothing restricts access.
import { loadPolicyDir } from '../policy/load.ts';
import { emptyPolicySet } from '../policy/types.ts';
import type { PolicySet } from '../policy/types.ts';
import { log } from '../log.ts';

export async function loadPolicies(dir: string | null): Promise<PolicySet> {
  const set = dir ? await loadPolicyDir(dir) : emptyPolicySet();
  if (set.authorizationPolicies === 0) {
    log.warn('no AuthorizationPolicy loaded: every peer with a trusted certificate is allowed', { policies: dir });
  }
  return set;
}
