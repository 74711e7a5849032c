// Which allow rules a federated partner's workloads can match without the rule naming their
// trust domain. A partner chooses its own SPIFFE ID paths, so a principal glob that leaves the
// trust domain open (`spiffe://*/ns/billing/**`, `**`) or a rule with no `from` admits it as
// readily as our own workloads. Found for a warning, not refused: such rules are legal, and
// sometimes meant (docs/policy.md).
import type { AuthorizationPolicyDoc } from './document-schemas.ts';
import { compileGlob } from './glob.ts';

/**
 * Could this principal glob match a SPIFFE ID of a trust domain it does not name? A SPIFFE ID's
 * segments (separator '/') are `spiffe:`, an empty one, the trust domain, then the path; the glob
 * leaves the domain open when a `**` among its first three segments can absorb it, or when its
 * first two match `spiffe:` and the empty one and its third has a `*` (globs: glob.ts).
 */
export function globLeavesTrustDomainOpen(glob: string): boolean {
  const segs = glob.split('/');
  if (segs.slice(0, 3).includes('**')) return true;
  if (segs.length < 3) return false;
  return segmentMatches(segs[0]!, 'spiffe:') && segmentMatches(segs[1]!, '') && segs[2]!.includes('*');
}

const segmentMatches = (seg: string, text: string): boolean => (seg === '' ? text === '' : compileGlob(seg, '/').matches(text));

/** `policy/rule` of each allow rule open to any trust domain, in load order. */
export function allowRulesOpenToPartners(policies: readonly AuthorizationPolicyDoc[]): string[] {
  const open: string[] = [];
  for (const p of policies) {
    for (const rule of p.spec.rules) {
      if (rule.action !== 'allow') continue;
      const from = rule.from;
      if (!from || from.some((f) => !f.principals || f.principals.some(globLeavesTrustDomainOpen))) open.push(`${p.metadata.name}/${rule.name}`);
    }
  }
  return open;
}
