// The policy module's public surface; other modules import from here.
export type {
  AuthzRequest, Decision, OutboundRouteSpec, PolicyDocumentRef, PolicyKind, PolicySet, TlsMode, TokenClaims, TrustBoundarySpec,
} from './types.ts';
export { API_VERSION, POLICY_KINDS } from './kinds.ts';
export { emptyPolicySet } from './set.ts';
export { loadPolicyDir, policySetFromSources, PolicyProblem, PolicySetError } from './load.ts';
export { policyDigest, type PolicySource } from './digest.ts';
export { normalizeTarget, type NormalizedTarget } from './normalize.ts';
export { compileGlob, GlobSyntaxError, type GlobMatcher } from './glob.ts';
export { BoundaryIndex, parseCidr, hostPatternProblem } from './hosts.ts';
export { JIT_CLOCK_SKEW_SECONDS } from './authorize.ts';
