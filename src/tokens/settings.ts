// The token and outbound settings of the one Config: parsed and validated here so config.ts only
// has to merge them. Each key is also a run flag (kebab-case), like every other config key.
import { ConfigError } from '../errors.ts';
import { parseDuration } from '../config/duration.ts';
import { issuerUrlProblem } from './issuer-url.ts';

export interface TokenSettings {
  /** Explicit token endpoint; null = discovered from `issuer`. */
  readonly tokenEndpoint: string | null;
  /** Explicit JWKS URL for inbound validation; null = discovered from `issuer`. */
  readonly jwksUri: string | null;
  /** This workload's audience: inbound tokens must name it in `aud`. null = the workload's principal. */
  readonly audience: string | null;
  /** Claim holding the caller's roles: `roles`, or `scp` / `scope` (space-separated strings are split). */
  readonly rolesClaim: string;
  /** Lowercase header inbound bearer tokens are read from (`authorization`: `Bearer <token>`). */
  readonly tokenHeader: string;
  /** JWS algorithms accepted on inbound tokens (asymmetric only). */
  readonly tokenAlgorithms: readonly string[];
  /** How the audience is named in token requests: RFC 8707 `resource`, `audience`, or both. */
  readonly audienceParam: 'resource' | 'audience' | 'both';
  /** A cached token is refreshed once this fraction of its usable life (lifetime minus clock skew) has passed (minus jitter). */
  readonly tokenRefreshFraction: number;
  /** Most tokens kept (one per issuer, audience, scopes and JIT approval). */
  readonly tokenCacheSize: number;
  /** Tolerated clock difference: inbound exp/nbf leeway, and how long before expiry a cached token is no longer sent. */
  readonly clockSkewMs: number;
  /** A request to a host no OutboundRoute names: sent on without a token, or refused with 403 no_route. */
  readonly outboundUnrouted: 'passthrough' | 'deny';
}

export const TOKEN_KEYS = ['tokenEndpoint', 'jwksUri', 'audience', 'rolesClaim', 'tokenHeader', 'tokenAlgorithm', 'audienceParam',
  'tokenRefreshFraction', 'tokenCacheSize', 'clockSkew', 'outboundUnrouted'] as const;
export type TokenKey = typeof TOKEN_KEYS[number];

export const TOKEN_DEFAULTS = {
  rolesClaim: 'roles',
  tokenHeader: 'authorization',
  tokenAlgorithms: ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519'],
  audienceParam: 'resource',
  tokenRefreshFraction: 0.8,
  tokenCacheSize: 1024,
  clockSkew: '30s',
  outboundUnrouted: 'passthrough',
} as const;

const ASYMMETRIC = new Set<string>(TOKEN_DEFAULTS.tokenAlgorithms);

type Get = (k: TokenKey) => unknown;

export function parseTokenSettings(get: Get, issuer: string | null, clientAuth: string): TokenSettings {
  const str = (k: TokenKey): string | null => {
    const v = get(k);
    if (v === undefined || v === null || v === '') return null;
    if (typeof v !== 'string') throw new ConfigError('must be a string', { field: k });
    return v;
  };
  const oneOf = <T extends string>(k: TokenKey, allowed: readonly T[], dflt: T): T => {
    const v = str(k) ?? dflt;
    if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(`'${v}' is not one of ${allowed.join(', ')}`, { field: k });
    return v as T;
  };

  if (issuer !== null) checkIssuerUrl(issuer, 'issuer', clientAuth);
  const tokenEndpoint = str('tokenEndpoint');
  if (tokenEndpoint !== null) checkIssuerUrl(tokenEndpoint, 'tokenEndpoint', clientAuth);
  const jwksUri = str('jwksUri');
  if (jwksUri !== null) checkIssuerUrl(jwksUri, 'jwksUri', '');

  const algs = get('tokenAlgorithm');
  const tokenAlgorithms = algs === undefined || algs === null ? [...TOKEN_DEFAULTS.tokenAlgorithms] : (Array.isArray(algs) ? algs : [algs]);
  for (const a of tokenAlgorithms) {
    // `none` and HMAC are refused outright: with a public JWKS, HS256 would let anyone who has the
    // public key mint tokens (the classic algorithm-confusion attack).
    if (typeof a !== 'string' || !ASYMMETRIC.has(a)) {
      throw new ConfigError(`'${String(a)}' is not an accepted algorithm (asymmetric only: ${[...ASYMMETRIC].join(', ')})`, { field: 'tokenAlgorithm' });
    }
  }

  const fraction = Number(get('tokenRefreshFraction') ?? TOKEN_DEFAULTS.tokenRefreshFraction);
  if (!(fraction >= 0.1 && fraction <= 0.95)) throw new ConfigError('must be a number from 0.1 to 0.95', { field: 'tokenRefreshFraction' });
  const size = Number(get('tokenCacheSize') ?? TOKEN_DEFAULTS.tokenCacheSize);
  if (!Number.isSafeInteger(size) || size < 1) throw new ConfigError('must be a whole number of at least 1', { field: 'tokenCacheSize' });
  const rolesClaim = str('rolesClaim') ?? TOKEN_DEFAULTS.rolesClaim;
  if (!/^[\x21-\x7e]{1,128}$/.test(rolesClaim)) throw new ConfigError('must be a claim name', { field: 'rolesClaim' });
  const tokenHeader = (str('tokenHeader') ?? TOKEN_DEFAULTS.tokenHeader).toLowerCase();
  // The sidecar's own names (identity, claims) can never carry a caller's token.
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]{1,128}$/.test(tokenHeader) || tokenHeader.startsWith('x-authproxy-') || tokenHeader === 'x-forwarded-client-cert') {
    throw new ConfigError('must be an HTTP header name outside x-authproxy-* and x-forwarded-client-cert', { field: 'tokenHeader' });
  }
  const audience = str('audience');
  if (audience !== null && !/^[\x21-\x7e]{1,2048}$/.test(audience)) throw new ConfigError('must be an audience without spaces', { field: 'audience' });

  return {
    tokenEndpoint, jwksUri, audience, rolesClaim, tokenHeader,
    tokenAlgorithms: Object.freeze([...new Set(tokenAlgorithms as string[])]),
    audienceParam: oneOf('audienceParam', ['resource', 'audience', 'both'], TOKEN_DEFAULTS.audienceParam),
    tokenRefreshFraction: fraction,
    tokenCacheSize: size,
    clockSkewMs: parseDuration(get('clockSkew') as string ?? TOKEN_DEFAULTS.clockSkew, 'clockSkew'),
    outboundUnrouted: oneOf('outboundUnrouted', ['passthrough', 'deny'], TOKEN_DEFAULTS.outboundUnrouted),
  };
}

/** The shared token-URL check (src/tokens/issuer-url.ts), as a ConfigError naming the field. */
function checkIssuerUrl(value: string, field: string, clientAuth: string): void {
  const problem = issuerUrlProblem(value, clientAuth);
  if (problem) throw new ConfigError(problem, { field });
}
