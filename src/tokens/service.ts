// Wires the token pieces from the Config: one issuer HTTP client and one metadata source shared by
// the outbound token cache and the inbound verifier. The verifier is null without `--issuer`; a
// token endpoint alone gives the cache only.
import type { Config } from '../config/config.ts';
import type { TlsMaterial } from '../identity/material.ts';
import type { Metrics } from '../admin/metrics.ts';
import { log } from '../log.ts';
import { IssuerHttp } from './issuer-http.ts';
import { IssuerMetadata } from './discovery.ts';
import { TokenClient, type TokenRequest } from './client.ts';
import { TokenCache, type CachedToken } from './cache.ts';
import { TokenVerifier } from './verify.ts';

/** A token request with its cache key, computed once per route (and once per JIT approval seen). */
export interface TokenTarget {
  readonly key: string;
  readonly request: TokenRequest;
}

export class OutboundTokens {
  readonly cache: TokenCache;
  readonly #issuerKey: string;

  constructor(cache: TokenCache, issuerKey: string) { this.cache = cache; this.#issuerKey = issuerKey; }

  /** The cache key and request for an audience and scopes (sorted and de-duplicated here). */
  target(audience: string, scopes: readonly string[]): TokenTarget {
    const sorted = Object.freeze([...new Set(scopes)].sort());
    const request: TokenRequest = Object.freeze({ audience, scopes: sorted, approval: null });
    return Object.freeze({ key: `${this.#issuerKey}\n${audience}\n${sorted.join(' ')}\n`, request });
  }

  /** The same target under a JIT approval: a key of its own, so its token is never used for anything else. */
  withApproval(base: TokenTarget, approval: string): TokenTarget {
    return { key: `${base.key}jit:${approval}`, request: { ...base.request, approval } };
  }

  peek(t: TokenTarget): CachedToken | undefined { return this.cache.peek(t.key); }
  obtain(t: TokenTarget): Promise<CachedToken> { return this.cache.obtain(t.key, t.request); }
}

export interface TokenServices {
  readonly outbound: OutboundTokens | null;
  readonly verifier: TokenVerifier | null;
  close(): Promise<void>;
}

/** Called (and this module loaded) only when `--issuer` or `--token-endpoint` is set: see runtime/start.ts. */
export function createTokenServices(config: Config, tls: () => TlsMaterial, metrics: Metrics): TokenServices {
  const canFetch = config.issuer !== null || config.tokenEndpoint !== null;
  const canVerify = config.issuer !== null;

  const http = new IssuerHttp(tls);
  const metadata = new IssuerMetadata(config.issuer, { tokenEndpoint: config.tokenEndpoint, jwksUri: config.jwksUri }, http);
  let outbound: OutboundTokens | null = null;
  if (canFetch) {
    const client = new TokenClient({
      metadata, http,
      // The workload's principal (its SPIFFE ID) is the natural client_id when none is configured.
      clientId: () => config.clientId ?? tls().identity.principal,
      clientAuth: config.clientAuth,
      clientSecretFile: config.clientSecretFile,
      audienceParam: config.audienceParam,
      tls,
    });
    const describe = (r: TokenRequest): Record<string, unknown> => ({
      audience: r.audience, scopes: r.scopes.join(' '), ...(r.approval !== null ? { approval: r.approval } : {}),
    });
    const cache = new TokenCache((req, signal) => client.request(req, signal), {
      max: config.tokenCacheSize,
      refreshFraction: config.tokenRefreshFraction,
      clockSkewMs: config.clockSkewMs,
      onEvent: (e) => metrics.tokenCache(e),
      onFailure: (r, reason) => log.warn('token request failed', { ...describe(r), reason }),
      onFetched: (r, t) => log.info('token obtained', {
        ...describe(r), usableForSeconds: Math.round((t.usableUntil - t.obtainedAt) / 1000),
        ...(t.jit ? {} : { refreshInSeconds: Math.round((t.refreshAt - t.obtainedAt) / 1000) }),
      }),
    });
    outbound = new OutboundTokens(cache, metadata.issuer ?? config.tokenEndpoint ?? '');
  }
  const verifier = canVerify ? new TokenVerifier({
    metadata, http,
    audience: () => config.audience ?? tls().identity.principal,
    algorithms: config.tokenAlgorithms,
    clockSkewSeconds: Math.round(config.clockSkewMs / 1000),
    rolesClaim: config.rolesClaim,
  }) : null;
  return { outbound, verifier, close: () => http.close() };
}
