// "What happens to a request from X to Y?" answered from a policy set alone, with exactly the
// code the sidecar runs (normalizeTarget, boundaryOf, authorize), so a reviewer can check a
// policy set without traffic and a `policy test` table can pin its behaviour.
import { RequestRefused, ERROR_STATUS, type ErrorCode } from '../errors.ts';
import { normalizeTarget } from './normalize.ts';
import { canonicalHost } from '../http/ip.ts';
import type { Decision, PolicySet, TokenClaims } from './types.ts';

export interface InboundQuestion {
  /** The caller's principal (certificate identity). Omit with `source` for a plaintext caller. */
  from?: string;
  /** Source address of a plaintext caller: its boundary decides, as on the plaintext listener. */
  source?: string;
  method: string;
  target: string;
  /** Claims of a valid bearer token the caller presents; omit for none. */
  token?: TokenClaims;
  nowSeconds?: number;
}

export interface InboundAnswer {
  principal: string | null;
  transport: 'mtls' | 'plaintext';
  boundary: string | null;
  path: string | null;
  matchPath: string | null;
  allow: boolean;
  status: number;
  code: ErrorCode | null;
  policy: string | null;
  rule: string | null;
  reason: string;
  policyDigest: string;
}

export function explainInbound(set: PolicySet, q: InboundQuestion): InboundAnswer {
  const plaintext = q.source !== undefined && q.from === undefined;
  const base = { transport: plaintext ? 'plaintext' as const : 'mtls' as const, policyDigest: set.digest, policy: null, rule: null };
  const refused = (code: ErrorCode, reason: string, extra: Partial<InboundAnswer> = {}): InboundAnswer =>
    ({ principal: null, boundary: null, path: null, matchPath: null, ...base, ...extra, allow: false, status: ERROR_STATUS[code], code, reason });

  let principal: string;
  let boundary: string | null = null;
  if (plaintext) {
    boundary = set.boundaryOf(q.source!);
    if (boundary === null) return refused('boundary_violation', `plaintext from ${q.source} is outside every trust boundary`, { boundary: 'outside' });
    principal = `boundary:${boundary}`;
  } else {
    if (!q.from) throw new Error('give the caller: a principal (from) or a plaintext source address (source)');
    principal = q.from;
  }
  let norm;
  try { norm = normalizeTarget(q.target); } catch (e) {
    if (e instanceof RequestRefused) return refused(e.code, e.message, { principal, boundary });
    throw e;
  }
  const d: Decision = set.authorize({ principal, method: q.method, matchPath: norm.matchPath, token: q.token, nowSeconds: q.nowSeconds ?? Date.now() / 1000 });
  const code: ErrorCode | null = d.allow ? null : d.code ?? 'forbidden';
  return {
    ...base, principal, boundary, path: norm.path + norm.query, matchPath: norm.matchPath,
    allow: d.allow, status: code ? ERROR_STATUS[code] : 200, code, policy: d.policy, rule: d.rule, reason: d.reason,
  };
}

export function formatInbound(q: InboundQuestion, a: InboundAnswer): string {
  const who = a.principal ?? (q.source ? `plaintext ${q.source}` : '?');
  const lines = [
    `request   ${q.method} ${q.target} from ${who}${a.boundary ? ` (boundary ${a.boundary})` : ''} over ${a.transport}`,
  ];
  if (a.path !== null) lines.push(`path      ${a.path}${a.matchPath !== a.path ? ` (rules match ${a.matchPath})` : ''}`);
  lines.push(a.allow
    ? `decision  allow${a.rule ? ` by rule ${a.rule} of AuthorizationPolicy ${a.policy}` : ''}`
    : `decision  deny: ${a.status} ${a.code}${a.rule ? ` (rule ${a.rule} of AuthorizationPolicy ${a.policy})` : ''}`);
  lines.push(`reason    ${a.reason}`, `digest    ${a.policyDigest}`);
  return lines.join('\n');
}

export interface OutboundAnswer {
  url: string;
  host: string;
  port: number;
  route: string | null;
  boundary: string | null;
  transport: 'plaintext' | 'tls' | 'mtls';
  trust: 'bundle' | 'system' | 'both' | null;
  token: { audience: string; scopes: readonly string[]; header: string; scheme: string } | null;
  /** What happens to an unrouted host (passthrough without a token, or no_route). */
  note: string;
  policyDigest: string;
}

/**
 * What the outbound listener would do with `url` sent by the app: which route, which boundary
 * (resolving the name as the sidecar would), how the hop is carried, and which token.
 */
export async function explainOutbound(set: PolicySet, url: string, unrouted: 'passthrough' | 'deny' = 'passthrough'): Promise<OutboundAnswer> {
  const [{ RouteTable }, { DestinationClassifier }, { carriageFor, defaultPort }] = await Promise.all([
    import('../outbound/routes.ts'), import('../boundary/classify.ts'), import('../outbound/transport.ts'),
  ]);
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`the app speaks plain http:// to the outbound listener; '${url}' is not`);
  // As the outbound listener reads it: an IPv4-mapped address is its IPv4 address (http/ip.ts).
  const bare = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const host = canonicalHost(bare) ?? bare;
  const route = new RouteTable(set.routes, null).lookup(host);
  const spec = route ? set.routes.find((r) => r.name === route.name)! : null;
  const boundary = await new DestinationClassifier(() => set).classify(host);
  const c = carriageFor(route?.tls ?? null, route?.trust ?? null, boundary);
  const note = route ? `routed by OutboundRoute ${route.name}`
    : unrouted === 'deny' ? 'no OutboundRoute: refused with 403 no_route (--outbound-unrouted deny)' : 'no OutboundRoute: passed through without a token';
  return {
    url, host, port: u.port ? Number(u.port) : defaultPort(c.transport), route: route?.name ?? null, boundary,
    transport: c.transport, trust: c.transport === 'plaintext' ? null : c.trust,
    token: spec?.token ? { audience: spec.token.audience, scopes: spec.token.scopes, header: spec.token.header, scheme: spec.token.scheme } : null,
    note, policyDigest: set.digest,
  };
}

export function formatOutbound(a: OutboundAnswer): string {
  const trust = a.trust === 'both' ? 'system roots or trust bundle' : a.trust === 'system' ? 'system roots' : 'trust bundle';
  return [
    `request   ${a.url} from the app`,
    `route     ${a.note}`,
    `boundary  ${a.boundary ?? 'outside every TrustBoundary'}`,
    `carried   ${a.transport === 'plaintext' ? 'plaintext' : `${a.transport.toUpperCase()} originated by the sidecar, server certificate checked against the ${trust}`} to ${a.host}:${a.port}`,
    `token     ${a.token ? `${a.token.header}: ${a.token.scheme ? `${a.token.scheme} ` : ''}<token for ${a.token.audience}${a.token.scopes.length ? ` scopes ${a.token.scopes.join(' ')}` : ''}>` : 'none'}`,
    `digest    ${a.policyDigest}`,
  ].join('\n');
}
