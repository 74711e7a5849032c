// Loading the policy set for the runtime, with the warning operators need when nothing restricts access.
import { loadPolicyDir } from '../policy/load.ts';
import { emptyPolicySet } from '../policy/types.ts';
import type { PolicySet } from '../policy/types.ts';
import { log } from '../log.ts';

/** Reads the set; `warnIfOpen` is for the caller to call once the set is actually in force. */
export async function readPolicies(dir: string | null): Promise<PolicySet> {
  return dir ? await loadPolicyDir(dir) : emptyPolicySet();
}

export function warnIfOpen(set: PolicySet, dir: string | null): void {
  if (set.authorizationPolicies === 0) {
    log.warn('no AuthorizationPolicy loaded: every peer with a trusted certificate is allowed', { policies: dir });
  }
}

export async function loadPolicies(dir: string | null): Promise<PolicySet> {
  const set = await readPolicies(dir);
  warnIfOpen(set, dir);
  return set;
}
