// Issuer metadata: the token endpoint (outbound) and the JWKS URL (inbound), either configured
// explicitly or discovered from the issuer: OpenID Connect Discovery first, then RFC 8414
// (OAuth 2.0 Authorization Server Metadata). The document's `issuer` must be the configured issuer
// (a trailing slash aside), so a document served elsewhere cannot redirect tokens or keys (mix-up
// defence). Where discovery is used, the document's `issuer` is then the issuer identifier: the
// `aud` of client assertions and the `iss` inbound tokens must carry.
// Discovery happens on first use and is retried after a failure, never at start-up: the sidecar
// is ready (and serves inbound traffic) while the issuer is still coming up.
import type { IssuerHttp } from './issuer-http.ts';

export interface IssuerEndpoints {
  /** The issuer identifier as the metadata states it. */
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
}

/** An endpoint and the issuer identifier that goes with it (null: no --issuer, token endpoint only). */
export interface IssuerEndpoint<I extends string | null = string | null> {
  readonly url: string;
  readonly issuer: I;
}

/** Discovery failed or the metadata is unusable; the message names what is wrong, never a secret. */
export class DiscoveryFailed extends Error {
  constructor(message: string, options?: { cause?: unknown }) { super(message, options); this.name = 'DiscoveryFailed'; }
}

export function wellKnownUrls(issuer: string): string[] {
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/$/, '');
  return [
    // OIDC Discovery 1.0 §4: appended to the issuer, path included.
    `${u.origin}${path}/.well-known/openid-configuration`,
    // RFC 8414 §3.1: inserted between the host and the issuer's path.
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
  ];
}

export class IssuerMetadata {
  readonly issuer: string | null;
  readonly #explicit: { tokenEndpoint: string | null; jwksUri: string | null };
  readonly #http: IssuerHttp;
  #pending: Promise<IssuerEndpoints> | null = null;

  constructor(issuer: string | null, explicit: { tokenEndpoint: string | null; jwksUri: string | null }, http: IssuerHttp) {
    // As configured: where an endpoint is given explicitly (no metadata to consult), it is also
    // the issuer identifier for that endpoint's use.
    this.issuer = issuer;
    this.#explicit = explicit;
    this.#http = http;
  }

  /**
   * The token endpoint, and the identifier client assertions are addressed to: the metadata's
   * `issuer` when discovered, --issuer as written with an explicit --token-endpoint.
   */
  async tokenEndpoint(): Promise<IssuerEndpoint> {
    if (this.#explicit.tokenEndpoint !== null) return { url: this.#explicit.tokenEndpoint, issuer: this.issuer };
    const d = await this.#discover();
    return { url: d.tokenEndpoint, issuer: d.issuer };
  }

  /** The JWKS URL, and the `iss` inbound tokens must carry (as for tokenEndpoint()). Needs --issuer. */
  async jwksUri(): Promise<IssuerEndpoint<string>> {
    if (this.issuer === null) throw new DiscoveryFailed('no issuer configured (--issuer)');
    if (this.#explicit.jwksUri !== null) return { url: this.#explicit.jwksUri, issuer: this.issuer };
    const d = await this.#discover();
    return { url: d.jwksUri, issuer: d.issuer };
  }

  #discover(): Promise<IssuerEndpoints> {
    if (this.#pending) return this.#pending;
    const p = this.#fetch();
    this.#pending = p;
    // A failed discovery is forgotten, so the next caller tries again (callers back off).
    p.catch(() => { if (this.#pending === p) this.#pending = null; });
    return p;
  }

  async #fetch(): Promise<IssuerEndpoints> {
    const issuer = this.issuer;
    if (issuer === null) throw new DiscoveryFailed('no issuer configured (--issuer)');
    const problems: string[] = [];
    for (const url of wellKnownUrls(issuer)) {
      let res;
      try {
        res = await this.#http.getJson(url);
      } catch (e) {
        // Unreachable is unreachable for both documents: do not wait twice.
        throw new DiscoveryFailed((e as Error).message, { cause: e });
      }
      if (res.status !== 200) { problems.push(`${new URL(url).pathname}: HTTP ${res.status}`); continue; }
      return validate(res.body, issuer, url);
    }
    throw new DiscoveryFailed(`issuer metadata not found (${problems.join('; ')})`);
  }
}

function validate(body: unknown, issuer: string, url: string): IssuerEndpoints {
  const meta = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const where = new URL(url).pathname;
  // RFC 8414 §3.3 and OIDC Discovery §4.3 want the two identical. A trailing slash is let through
  // because both spellings name the same place (the well-known URLs are the same) and operators
  // write either (some issuers' identifiers end in '/', most do not); the metadata's spelling is
  // then the one used, so assertions and inbound `iss` match what the issuer itself says.
  if (typeof meta.issuer !== 'string' || meta.issuer.replace(/\/$/, '') !== issuer.replace(/\/$/, '')) {
    throw new DiscoveryFailed(`${where}: metadata names issuer ${JSON.stringify(meta.issuer)}, not the configured ${issuer}`);
  }
  const endpoint = (name: string): string => {
    const v = meta[name];
    const u = typeof v === 'string' ? URL.parse(v) : null;
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw new DiscoveryFailed(`${where}: ${name} is missing or not an http(s) URL`);
    // An https issuer must not send tokens or keys over plain http.
    if (new URL(issuer).protocol === 'https:' && u.protocol !== 'https:') throw new DiscoveryFailed(`${where}: ${name} must be https like the issuer`);
    return u.href;
  };
  return { issuer: meta.issuer, tokenEndpoint: endpoint('token_endpoint'), jwksUri: endpoint('jwks_uri') };
}
