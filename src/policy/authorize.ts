// RBAC decisions, compiled once per policy set. Semantics (DESIGN.md "Policy documents"):
//
// - A rule matches when one of its `from` entries matches (absent `from` = any caller) and one of
//   its `to` entries matches (absent `to` = any request).
// - A `from` entry matches when one of its `principals` globs matches (absent = any principal)
//   and its `token` requirement holds: a verified token is present, it carries ALL listed roles,
//   and with `jit.maxAge` it has `iat` no more than maxAge ago (and not more than
//   JIT_CLOCK_SKEW_SECONDS in the future) and `exp` with `exp - iat <= maxAge`.
// - A `to` entry matches when the method is one of `methods` (exact, uppercase; absent = any)
//   and `matchPath` matches one of `paths` (absent = any).
// - Any matching deny wins (deny rules cannot carry token requirements; validate.ts refuses it).
//   Otherwise the first matching allow, in load order (files by name, documents, rules), allows.
//   Otherwise, if some allow rule failed only on its token requirement, the answer is
//   `invalid_token` (401) naming the first such rule; else `forbidden` (403) with no rule.
// - With no AuthorizationPolicy loaded every request is allowed.
//
// Every possible Decision is built at compile time, so authorize() allocates nothing.
import { compileGlob, type GlobMatcher } from './glob.ts';
import type { AuthorizationPolicyDoc, FromEntry, ToEntry } from './document-schemas.ts';
import type { AuthzRequest, Decision, TokenClaims } from './types.ts';
import { parseDurationSeconds } from './validate.ts';

/** Tolerated issuer-ahead clock skew for a JIT token's `iat`. */
export const JIT_CLOCK_SKEW_SECONDS = 30;

interface CompiledFrom {
  /** null = any principal */
  readonly principals: readonly GlobMatcher[] | null;
  /** null = no token requirement */
  readonly token: { readonly roles: readonly string[]; readonly maxAge: number | null } | null;
}

interface CompiledTo {
  readonly methods: ReadonlySet<string> | null;
  readonly paths: readonly GlobMatcher[] | null;
}

const TOKEN_MISSING = 0;
const TOKEN_ROLES = 1;
const TOKEN_TOO_OLD = 2;
const TOKEN_TOO_LONG = 3;
type TokenFailure = typeof TOKEN_MISSING | typeof TOKEN_ROLES | typeof TOKEN_TOO_OLD | typeof TOKEN_TOO_LONG;
const TOKEN_OK = -1;

interface CompiledRule {
  readonly from: readonly CompiledFrom[] | null;
  readonly to: readonly CompiledTo[] | null;
  /** The decision when this rule decides (allow, or deny forbidden). */
  readonly decision: Decision;
  /** invalid_token decisions by TokenFailure. */
  readonly tokenDecisions: readonly Decision[];
}

export interface Authorizer {
  readonly requiresToken: boolean;
  readonly rules: number;
  authorize(req: AuthzRequest): Decision;
}

export function compileAuthorizer(policies: readonly AuthorizationPolicyDoc[], policyDigest: string): Authorizer {
  if (policies.length === 0) {
    const allowAll: Decision = Object.freeze({
      allow: true, code: null, policy: null, rule: null, policyDigest,
      reason: 'no AuthorizationPolicy is loaded, so every caller is allowed',
    });
    return Object.freeze({ requiresToken: false, rules: 0, authorize: () => allowAll });
  }

  const deny: CompiledRule[] = [];
  const allow: CompiledRule[] = [];
  let requiresToken = false;
  for (const policy of policies) {
    const policyName = policy.metadata.name;
    for (const rule of policy.spec.rules) {
      const from = rule.from?.map(compileFrom) ?? null;
      if (from?.some((f) => f.token !== null)) requiresToken = true;
      const at = `rule ${rule.name} of policy ${policyName}`;
      const decide = (allowIt: boolean, code: Decision['code'], reason: string): Decision =>
        Object.freeze({ allow: allowIt, code, policy: policyName, rule: rule.name, reason, policyDigest });
      const compiled: CompiledRule = {
        from,
        to: rule.to?.map(compileTo) ?? null,
        decision: rule.action === 'allow'
          ? Object.freeze({ ...decide(true, null, `allowed by ${at}`), ...(rule.forwardToken === true ? { forwardToken: true } : {}) })
          : decide(false, 'forbidden', `denied by ${at}`),
        tokenDecisions: tokenFailureReasons(rule.from ?? []).map((r) => decide(false, 'invalid_token', `${at} ${r}`)),
      };
      (rule.action === 'allow' ? allow : deny).push(compiled);
    }
  }
  const defaultDeny: Decision = Object.freeze({
    allow: false, code: 'forbidden', policy: null, rule: null, policyDigest,
    reason: 'no allow rule matches this caller and request',
  });
  const rules = allow.length + deny.length;

  function authorize(req: AuthzRequest): Decision {
    for (const rule of deny) {
      // Deny rules carry no token requirement, so the token never changes whether they match.
      if (toMatches(rule.to, req) && fromMatches(rule.from, req) === TOKEN_OK) return rule.decision;
    }
    let tokenFailed: Decision | null = null;
    for (const rule of allow) {
      if (!toMatches(rule.to, req)) continue;
      const result = fromMatches(rule.from, req);
      if (result === TOKEN_OK) return rule.decision;
      if (result !== NO_PRINCIPAL && tokenFailed === null) tokenFailed = rule.tokenDecisions[result]!;
    }
    return tokenFailed ?? defaultDeny;
  }
  return Object.freeze({ requiresToken, rules, authorize });
}

function compileFrom(from: FromEntry): CompiledFrom {
  const token = from.token;
  return {
    principals: from.principals?.map((p) => compileGlob(p, '/')) ?? null,
    token: token
      ? { roles: token.roles ?? [], maxAge: token.jit ? parseDurationSeconds(token.jit.maxAge) : null }
      : null,
  };
}

function compileTo(to: ToEntry): CompiledTo {
  return {
    methods: to.methods ? new Set(to.methods) : null,
    paths: to.paths?.map((p) => compileGlob(p, '/')) ?? null,
  };
}

/** Reasons indexed by TokenFailure; roles and ages come from the policy, never from the token. */
function tokenFailureReasons(from: readonly FromEntry[]): string[] {
  const roles = [...new Set(from.flatMap((f) => f.token?.roles ?? []))];
  const ages = [...new Set(from.flatMap((f) => (f.token?.jit ? [f.token.jit.maxAge] : [])))];
  return [
    'requires a valid bearer token',
    `requires a token carrying ${roles.length > 1 ? 'roles' : 'role'} ${roles.join(', ')}`,
    `requires a token issued within the last ${ages.join(' or ')}`,
    `requires a token that lives at most ${ages.join(' or ')}`,
  ];
}

function toMatches(to: readonly CompiledTo[] | null, req: AuthzRequest): boolean {
  if (to === null) return true;
  for (const entry of to) {
    if (entry.methods !== null && !entry.methods.has(req.method)) continue;
    if (entry.paths === null || anyMatches(entry.paths, req.matchPath)) return true;
  }
  return false;
}

const NO_PRINCIPAL = -2;

/**
 * TOKEN_OK when an entry matches; NO_PRINCIPAL when no entry's principals match; otherwise the
 * TokenFailure of the first entry whose principals matched but whose token requirement failed.
 */
function fromMatches(from: readonly CompiledFrom[] | null, req: AuthzRequest): number {
  if (from === null) return TOKEN_OK;
  let failure = NO_PRINCIPAL;
  for (const entry of from) {
    if (entry.principals !== null && !anyMatches(entry.principals, req.principal)) continue;
    const result = entry.token === null ? TOKEN_OK : tokenCheck(entry.token, req.token, req.nowSeconds);
    if (result === TOKEN_OK) return TOKEN_OK;
    if (failure === NO_PRINCIPAL) failure = result;
  }
  return failure;
}

function tokenCheck(
  need: { readonly roles: readonly string[]; readonly maxAge: number | null },
  token: TokenClaims | undefined,
  now: number,
): TokenFailure | typeof TOKEN_OK {
  if (token === undefined) return TOKEN_MISSING;
  for (const role of need.roles) if (!token.roles.includes(role)) return TOKEN_ROLES;
  if (need.maxAge !== null) {
    const { iat, exp } = token;
    if (typeof iat !== 'number' || !Number.isFinite(iat)) return TOKEN_TOO_OLD;
    if (now - iat > need.maxAge || iat - now > JIT_CLOCK_SKEW_SECONDS) return TOKEN_TOO_OLD;
    if (typeof exp !== 'number' || !Number.isFinite(exp) || exp - iat > need.maxAge) return TOKEN_TOO_LONG;
  }
  return TOKEN_OK;
}

function anyMatches(globs: readonly GlobMatcher[], input: string): boolean {
  for (const glob of globs) if (glob.matches(input)) return true;
  return false;
}
