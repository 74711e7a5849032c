// OutboundRoutes compiled for the request path, once per loaded policy set: an exact-host map,
// then host globs ('.' separator) in load order. The first match wins; an exact host always wins
// over a glob. Everything a request needs from its route (token cache key, header name and
// scheme, audit reason) is computed here, so a routed request with a cached token does no string
// work beyond its header list.
import type { OutboundRouteSpec, PolicySet, ServerTrust, TlsMode } from '../policy/types.ts';
import { compileHostGlob, type GlobMatcher } from '../policy/glob.ts';
import type { OutboundTokens, TokenTarget } from '../tokens/service.ts';

export interface RouteToken {
  /** null when no issuer is configured: requests on this route are refused with token_unavailable. */
  readonly target: TokenTarget | null;
  readonly audience: string;
  /** Lowercase header name. */
  readonly header: string;
  readonly scheme: string;
}

export interface CompiledRoute {
  readonly name: string;
  readonly tls: TlsMode;
  readonly trust: ServerTrust;
  readonly token: RouteToken | null;
  /** Audit reason for an allowed request on this route. */
  readonly reason: string;
}

export class RouteTable {
  readonly #exact = new Map<string, CompiledRoute>();
  readonly #globs: { matcher: GlobMatcher; route: CompiledRoute }[] = [];

  constructor(routes: readonly OutboundRouteSpec[], tokens: OutboundTokens | null) {
    for (const spec of routes) {
      const route = compileRoute(spec, tokens);
      for (const host of spec.hosts) {
        if (host.includes('*')) this.#globs.push({ matcher: compileHostGlob(host), route });
        else if (!this.#exact.has(host)) this.#exact.set(host, route);
      }
    }
  }

  lookup(host: string): CompiledRoute | null {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    for (const g of this.#globs) if (g.matcher.matches(host)) return g.route;
    return null;
  }
}

function compileRoute(spec: OutboundRouteSpec, tokens: OutboundTokens | null): CompiledRoute {
  const t = spec.token;
  const token: RouteToken | null = t ? Object.freeze({
    target: tokens ? tokens.target(t.audience, t.scopes) : null,
    audience: t.audience,
    header: t.header.toLowerCase(),
    scheme: t.scheme,
  }) : null;
  const scopes = t && t.scopes.length ? ` with scopes ${[...t.scopes].sort().join(' ')}` : '';
  return Object.freeze({
    name: spec.name,
    tls: spec.tls,
    trust: spec.trust,
    token,
    reason: t ? `routed by OutboundRoute ${spec.name}: token for ${t.audience}${scopes}` : `routed by OutboundRoute ${spec.name}: no token`,
  });
}

const tables = new WeakMap<PolicySet, RouteTable>();

/** The compiled table for a policy set (built on first use after each load; a policy set never changes). */
export function routeTableFor(policy: PolicySet, tokens: OutboundTokens | null): RouteTable {
  let t = tables.get(policy);
  if (t === undefined) { t = new RouteTable(policy.routes, tokens); tables.set(policy, t); }
  return t;
}
