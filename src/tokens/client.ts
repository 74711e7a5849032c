// The OAuth 2.0 client credentials grant against the configured issuer: one call per token the
// cache decides to fetch. The audience is named with `resource` (RFC 8707), `audience`, or both;
// scopes with `scope`; a JIT approval with `approval` (the dev issuer's parameter).
import { decodeJwt } from 'jose';
import type { TlsMaterial } from '../identity/material.ts';
import { clientCredentials, ClientAuthFailed, type ClientAuthMethod } from './client-auth.ts';
import { DiscoveryFailed, type IssuerEndpoint, type IssuerMetadata } from './discovery.ts';
import { IssuerUnreachable, type IssuerHttp } from './issuer-http.ts';

export interface TokenRequest {
  readonly audience: string;
  /** Sorted, de-duplicated. */
  readonly scopes: readonly string[];
  /** JIT approval id, or null. */
  readonly approval: string | null;
}

export interface IssuedToken {
  readonly accessToken: string;
  /** Lifetime as the issuer stated it (expires_in), in milliseconds. */
  readonly lifetimeMs: number;
}

/** No token could be obtained. `message` is safe for logs and the refusal body: never a token or secret. */
export class TokenUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) { super(message, options); this.name = 'TokenUnavailable'; }
}

/** Without expires_in and without a JWT exp, a token is kept this long. */
const DEFAULT_LIFETIME_MS = 60_000;
const MAX_DESCRIPTION = 200;

export interface TokenClientOptions {
  metadata: IssuerMetadata;
  http: IssuerHttp;
  /** Read per request: without --client-id it is the current certificate's principal. */
  clientId: () => string;
  clientAuth: ClientAuthMethod;
  clientSecretFile: string | null;
  audienceParam: 'resource' | 'audience' | 'both';
  tls: () => TlsMaterial;
}

export class TokenClient {
  readonly #o: TokenClientOptions;
  constructor(o: TokenClientOptions) { this.#o = o; }

  async request(req: TokenRequest, signal?: AbortSignal): Promise<IssuedToken> {
    const o = this.#o;
    let endpoint: IssuerEndpoint;
    try { endpoint = await o.metadata.tokenEndpoint(); } catch (e) {
      throw new TokenUnavailable(`issuer discovery failed: ${(e as Error).message}`, { cause: e });
    }
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (o.audienceParam !== 'audience') form.set('resource', req.audience);
    if (o.audienceParam !== 'resource') form.set('audience', req.audience);
    if (req.scopes.length) form.set('scope', req.scopes.join(' '));
    if (req.approval !== null) form.set('approval', req.approval);
    let creds;
    try {
      creds = await clientCredentials({
        method: o.clientAuth, clientId: o.clientId(), secretFile: o.clientSecretFile,
        assertionAudience: endpoint.issuer ?? endpoint.url, tls: o.tls(),
      });
    } catch (e) {
      if (e instanceof ClientAuthFailed) throw new TokenUnavailable(e.message, { cause: e });
      throw e;
    }
    for (const [k, v] of Object.entries(creds.params)) form.set(k, v);

    let res;
    try {
      res = await o.http.postForm(endpoint.url, form, creds.headers, creds.withClientCert, signal);
    } catch (e) {
      if (e instanceof IssuerUnreachable || e instanceof DiscoveryFailed) throw new TokenUnavailable(e.message, { cause: e });
      throw e;
    }
    return parseTokenResponse(res.status, res.body);
  }
}

export function parseTokenResponse(status: number, body: unknown): IssuedToken {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (status !== 200) {
    // RFC 6749 §5.2: error and error_description are the issuer's words for the app and operator.
    const error = typeof b.error === 'string' ? clean(b.error) : `HTTP ${status}`;
    const desc = typeof b.error_description === 'string' ? clean(b.error_description) : '';
    throw new TokenUnavailable(`issuer refused the token request: ${error}${desc ? ` (${desc})` : ''}`);
  }
  const token = b.access_token;
  if (typeof token !== 'string' || token === '' || !/^[\x21-\x7e]+$/.test(token)) {
    throw new TokenUnavailable('issuer response has no usable access_token');
  }
  if (typeof b.token_type !== 'string' || b.token_type.toLowerCase() !== 'bearer') {
    throw new TokenUnavailable(`issuer issued a ${typeof b.token_type === 'string' ? clean(b.token_type) : 'untyped'} token; only Bearer tokens are supported`);
  }
  const stated = typeof b.expires_in === 'number' && Number.isFinite(b.expires_in) && b.expires_in > 0 ? b.expires_in * 1000 : null;
  // A JWT's own exp is what receivers check (and it is whole seconds, so it can end up to a second
  // before expires_in says): the earlier of the two wins.
  const fromJwt = jwtLifetimeMs(token);
  const lifetimeMs = stated !== null && fromJwt !== null ? Math.min(stated, fromJwt) : stated ?? fromJwt ?? DEFAULT_LIFETIME_MS;
  if (lifetimeMs <= 0) throw new TokenUnavailable('issuer issued a token that has already expired (check the clocks)');
  return { accessToken: token, lifetimeMs };
}

function jwtLifetimeMs(token: string): number | null {
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === 'number' ? exp * 1000 - Date.now() : null;
  } catch {
    return null;
  }
}

function clean(s: string): string {
  // Printable ASCII only, bounded: an issuer's text ends up in logs and refusal bodies.
  const t = s.replace(/[^\x20-\x7e]/g, '?');
  return t.length > MAX_DESCRIPTION ? `${t.slice(0, MAX_DESCRIPTION)}…` : t;
}
