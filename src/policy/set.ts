// Assembles the frozen PolicySet the rest of the sidecar reads; nothing in it changes after load.
import { compileAuthorizer } from './authorize.ts';
import { policyDigest } from './digest.ts';
import { BoundaryIndex } from './hosts.ts';
import { allowRulesOpenToPartners } from './partners.ts';
import type { AuthorizationPolicyDoc } from './document-schemas.ts';
import type { OutboundRouteSpec, PolicyDocumentRef, PolicySet, TrustBoundarySpec } from './types.ts';

export interface PolicySetParts {
  readonly digest: string;
  readonly files: readonly string[];
  readonly documents: readonly PolicyDocumentRef[];
  readonly policies: readonly AuthorizationPolicyDoc[];
  readonly routes: readonly OutboundRouteSpec[];
  readonly boundaries: readonly TrustBoundarySpec[];
}

export function buildPolicySet(parts: PolicySetParts): PolicySet {
  const authorizer = compileAuthorizer(parts.policies, parts.digest);
  const boundaries = new BoundaryIndex(parts.boundaries);
  return Object.freeze({
    digest: parts.digest,
    files: Object.freeze([...parts.files]),
    documents: Object.freeze(parts.documents.map((d) => Object.freeze({ ...d }))),
    authorizationPolicies: parts.policies.length,
    rules: authorizer.rules,
    routes: Object.freeze(parts.routes.map(deepFreeze)),
    boundaries: Object.freeze(parts.boundaries.map(deepFreeze)),
    requiresToken: authorizer.requiresToken,
    rulesOpenToAnyTrustDomain: Object.freeze(allowRulesOpenToPartners(parts.policies)),
    rulesRequiringToken: new Map(parts.policies.flatMap((p) => p.spec.rules
      .filter((r) => r.from?.some((f) => f.token !== undefined))
      .map((r) => [`${p.metadata.name}/${r.name}`, Object.freeze(r.from!.flatMap((f) => (f.token
        ? [Object.freeze({ roles: Object.freeze([...(f.token.roles ?? [])]), jit: f.token.jit !== undefined })] : [])))] as const))),
    authorize: authorizer.authorize,
    boundaryOf: (host: string) => boundaries.containing(host),
  });
}

/** The set in force when no policy directory is configured: no rules, so every caller is allowed. */
export function emptyPolicySet(): PolicySet {
  return buildPolicySet({ digest: policyDigest([]), files: [], documents: [], policies: [], routes: [], boundaries: [] });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
