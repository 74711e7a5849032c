// Inbound bearer-token validation: a JWT signed by a key in the issuer's JWKS, with `iss` the
// issuer identifier (the discovered metadata's, discovery.ts), `aud` this workload's audience, `exp` (required) and `nbf` checked with the
// clock skew as leeway, and the JWS algorithm in an asymmetric allow-list (so `none` and
// HS256-signed-with-the-public-key are refused before any key is looked at). jose's remote JWKS
// caches the keys, refetches on an unknown `kid`, and rate-limits refetches (cooldown), so a flood
// of tokens with made-up kids costs at most one JWKS request per cooldown.
import { createRemoteJWKSet, customFetch, jwtVerify, errors as joseErrors, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { fetch as undiciFetch } from 'undici';
import type { TokenClaims } from '../policy/types.ts';
import type { IssuerMetadata } from './discovery.ts';
import type { IssuerHttp } from './issuer-http.ts';
import { claimsHeader, rolesFrom } from './claims.ts';

export interface VerifiedToken {
  readonly claims: TokenClaims;
  /** Compact JSON for `x-authproxy-claims`. */
  readonly header: string;
}

export type Verification = { readonly ok: true; readonly token: VerifiedToken } | { readonly ok: false; readonly reason: string };

export interface VerifierOptions {
  metadata: IssuerMetadata;
  http: IssuerHttp;
  /** This workload's audience (resolved lazily: it may default to the current certificate's principal). */
  audience: () => string;
  algorithms: readonly string[];
  clockSkewSeconds: number;
  rolesClaim: string;
  /** JWKS refetch rate limit; jose's default is 30 s. */
  cooldownMs?: number;
}

export class TokenVerifier {
  readonly #o: VerifierOptions;
  /** The key set and the expected `iss`, both from the issuer's metadata (once it is found). */
  #keys: Promise<{ keys: JWTVerifyGetKey; iss: string }> | null = null;

  constructor(o: VerifierOptions) { this.#o = o; }

  /** Never throws: an unusable token is `{ ok: false, reason }`, with a reason that never quotes the token. */
  async verify(token: string): Promise<Verification> {
    let keys: JWTVerifyGetKey; let iss: string;
    try { ({ keys, iss } = await this.#keySet()); } catch (e) {
      return { ok: false, reason: `issuer keys unavailable: ${(e as Error).message}` };
    }
    const o = this.#o;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: iss,
        audience: o.audience(),
        algorithms: [...o.algorithms],
        clockTolerance: o.clockSkewSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (e) {
      return { ok: false, reason: describe(e) };
    }
    const claims: TokenClaims = Object.freeze({
      roles: Object.freeze(rolesFrom(payload[o.rolesClaim])),
      ...(typeof payload.iat === 'number' ? { iat: payload.iat } : {}),
      ...(typeof payload.exp === 'number' ? { exp: payload.exp } : {}),
    });
    return { ok: true, token: { claims, header: claimsHeader(payload, claims.roles) } };
  }

  #keySet(): Promise<{ keys: JWTVerifyGetKey; iss: string }> {
    if (this.#keys) return this.#keys;
    const p = this.#o.metadata.jwksUri().then((jwks) => ({ iss: jwks.issuer, keys: createRemoteJWKSet(new URL(jwks.url), {
      cooldownDuration: this.#o.cooldownMs ?? 30_000,
      timeoutDuration: 5_000,
      // The issuer may be signed by the mesh CA: fetch through the issuer agent, which trusts it.
      [customFetch]: (url, init) => undiciFetch(url, {
        method: init.method, redirect: init.redirect, signal: init.signal,
        headers: Object.fromEntries(init.headers.entries()), dispatcher: this.#o.http.dispatcher(false),
      }) as unknown as Promise<Response>,
    }) }));
    this.#keys = p;
    p.catch(() => { if (this.#keys === p) this.#keys = null; });
    return p;
  }
}

/** A short reason for the audit log: the jose error code and the claim, never the token. */
function describe(e: unknown): string {
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `${e.code}: ${e.claim} ${e.reason}`;
  if (e instanceof joseErrors.JOSEError) return e.code;
  return 'token could not be verified';
}
