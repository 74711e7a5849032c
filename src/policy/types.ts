// The shapes other modules use: a loaded, validated, compiled and frozen policy set, and the
// authorization request/decision values that flow through the inbound path and the audit log.

export type PolicyKind = 'AuthorizationPolicy' | 'OutboundRoute' | 'TrustBoundary';

/** A `from` entry's token requirement: these roles, and with `jit` a recently issued, short-lived token. */
export interface TokenRequirement { readonly roles: readonly string[]; readonly jit: boolean }

/** Claims of a bearer token that someone else has already verified (signature, exp, audience). */
export interface TokenClaims {
  readonly roles: readonly string[];
  /** Issued-at, seconds since the epoch. */
  readonly iat?: number;
  /** Expiry, seconds since the epoch. */
  readonly exp?: number;
}

export interface AuthzRequest {
  /** SPIFFE ID, DNS name, CN, or `boundary:<name>` for plaintext from inside a boundary. */
  readonly principal: string;
  /** Exact request method as received (uppercase). */
  readonly method: string;
  /** `normalizeTarget(target).matchPath`. */
  readonly matchPath: string;
  /** undefined = no valid token was presented. */
  readonly token: TokenClaims | undefined;
  readonly nowSeconds: number;
}

export interface Decision {
  readonly allow: boolean;
  readonly code: 'forbidden' | 'invalid_token' | null;
  /** metadata.name of the AuthorizationPolicy holding the deciding rule. */
  readonly policy: string | null;
  readonly rule: string | null;
  /** Short, human readable, never carries token contents. */
  readonly reason: string;
  readonly policyDigest: string;
  /** The deciding allow rule has `forwardToken: true`: the app also receives the caller's bearer token. */
  readonly forwardToken?: boolean;
}

export type TlsMode = 'auto' | 'tls' | 'mtls' | 'none';

/**
 * What a destination's server certificate must chain to when the sidecar originates TLS:
 * `bundle` the mesh trust bundle (--ca), `system` the system roots, `auto` the bundle for mtls
 * and both for tls.
 */
export type ServerTrust = 'auto' | 'bundle' | 'system';

export interface OutboundRouteSpec {
  readonly name: string;
  /** Lowercase host names, IP literals or host globs (separator '.'). */
  readonly hosts: readonly string[];
  readonly token: {
    readonly audience: string;
    readonly scopes: readonly string[];
    /** Lowercase header name; default `authorization`. */
    readonly header: string;
    /** Default `Bearer`; '' sends the bare token. */
    readonly scheme: string;
  } | null;
  /** Default `auto`. */
  readonly tls: TlsMode;
  /** Default `auto`. */
  readonly trust: ServerTrust;
}

export interface TrustBoundarySpec {
  readonly name: string;
  /** Canonical CIDRs as written (host bits are refused), IPv4 and IPv6. */
  readonly cidrs: readonly string[];
  /** Lowercase host globs (separator '.'). */
  readonly hosts: readonly string[];
}

export interface PolicyDocumentRef {
  /** Path of the file (directory joined with the file name). */
  readonly file: string;
  /** 0-based position of the document in its file's YAML stream (empty documents count too). */
  readonly index: number;
  readonly kind: PolicyKind;
  readonly name: string;
}

export interface PolicySet {
  /** SHA-256 (hex) over the loaded files; see digest.ts for how to reproduce it. */
  readonly digest: string;
  readonly files: readonly string[];
  readonly documents: readonly PolicyDocumentRef[];
  readonly authorizationPolicies: number;
  /** Rules across all AuthorizationPolicies. */
  readonly rules: number;
  readonly routes: readonly OutboundRouteSpec[];
  readonly boundaries: readonly TrustBoundarySpec[];
  /** Some allow rule has a `token:` block, so callers must parse bearer tokens. */
  readonly requiresToken: boolean;
  /** `policy/rule` of the allow rules a federated partner's workloads match too (partners.ts). */
  readonly rulesOpenToAnyTrustDomain: readonly string[];
  /**
   * `policy/rule` of the allow rules with a `token:` requirement → what each of their `from`
   * entries with one asks of a token (audit replay, replay.ts, builds the least such token).
   */
  readonly rulesRequiringToken: ReadonlyMap<string, readonly TokenRequirement[]>;
  authorize(req: AuthzRequest): Decision;
  /**
   * Name of the trust boundary containing `host` (a host name, or an IP literal such as a peer's
   * source address), or null when it is outside every boundary. Compiled once per set.
   */
  boundaryOf(host: string): string | null;
}

export { API_VERSION, POLICY_KINDS } from './kinds.ts';
export { emptyPolicySet } from './set.ts';
