// Semantic checks a JSON schema cannot express. Per document: durations, globs, normalized path
// patterns, CIDRs, host patterns, duplicate rule names, token requirements on deny rules. Per set
// (run once every document is valid): duplicate names per kind, a host claimed by two routes, and
// `tls: none` on a host that no TrustBoundary contains.
import { RequestRefused } from '../errors.ts';
import { compileGlob, GlobSyntaxError } from './glob.ts';
import { BoundaryIndex, hostPatternProblem, parseCidr } from './hosts.ts';
import { normalizeTarget } from './normalize.ts';
import type { AuthorizationPolicyDoc, OutboundRouteDoc, PolicyDoc, TrustBoundaryDoc } from './document-schemas.ts';
import type { FieldProblem } from './schema.ts';
import type { TrustBoundarySpec } from './types.ts';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** `30s`, `15m`, `1h` -> seconds; null when malformed or zero. */
export function parseDurationSeconds(text: string): number | null {
  const m = /^([0-9]+)(s|m|h)$/.exec(text);
  if (!m) return null;
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : null;
}

/** Why a path pattern can never match a normalized path as written, or null when it is fine. */
export function pathPatternProblem(pattern: string): string | null {
  if (pattern.includes('?') || pattern.includes('#')) return 'must not contain a query or fragment (paths are matched without them)';
  if (pattern.includes(';')) return "must not contain ';' (path parameters are removed before matching)";
  let normalized: string;
  try {
    normalized = normalizeTarget(pattern).matchPath;
  } catch (e) {
    if (e instanceof RequestRefused) return `is not a valid path: ${e.message}`;
    throw e;
  }
  if (normalized !== pattern) {
    return `is not in normalized form and would never match; requests are matched as '${normalized}'`;
  }
  return globProblem(pattern, '/');
}

function globProblem(pattern: string, separator: string): string | null {
  try {
    compileGlob(pattern, separator);
    return null;
  } catch (e) {
    if (e instanceof GlobSyntaxError) return e.message;
    throw e;
  }
}

export function documentProblems(doc: PolicyDoc): FieldProblem[] {
  switch (doc.kind) {
    case 'AuthorizationPolicy': return authorizationPolicyProblems(doc);
    case 'OutboundRoute': return outboundRouteProblems(doc);
    case 'TrustBoundary': return trustBoundaryProblems(doc);
  }
}

function authorizationPolicyProblems(doc: AuthorizationPolicyDoc): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const firstIndex = new Map<string, number>();
  doc.spec.rules.forEach((rule, r) => {
    const at = ['spec', 'rules', r];
    const first = firstIndex.get(rule.name);
    if (first !== undefined) problems.push({ path: [...at, 'name'], message: `duplicate rule name '${rule.name}' (also rules[${first}])` });
    else firstIndex.set(rule.name, r);
    rule.from?.forEach((from, f) => {
      from.principals?.forEach((p, i) => {
        const path = [...at, 'from', f, 'principals', i];
        if (p === '*') {
          problems.push({ path, message: "'*' matches only principals without '/', not SPIFFE IDs; use '**' for any principal, or omit principals" });
          return;
        }
        const problem = globProblem(p, '/');
        if (problem) problems.push({ path, message: problem });
      });
      if (from.token && rule.action === 'deny') {
        problems.push({
          path: [...at, 'from', f, 'token'],
          message: 'a deny rule cannot require a token: a caller could escape the deny by not sending one',
        });
      }
      const maxAge = from.token?.jit?.maxAge;
      if (maxAge !== undefined && parseDurationSeconds(maxAge) === null) {
        problems.push({ path: [...at, 'from', f, 'token', 'jit', 'maxAge'], message: "must be a duration greater than zero such as '15m'" });
      }
    });
    rule.to?.forEach((to, t) => {
      to.paths?.forEach((p, i) => {
        const problem = pathPatternProblem(p);
        if (problem) problems.push({ path: [...at, 'to', t, 'paths', i], message: problem });
      });
    });
  });
  return problems;
}

const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te',
  'trailer', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'cookie']);

function outboundRouteProblems(doc: OutboundRouteDoc): FieldProblem[] {
  const problems = hostListProblems(doc.spec.hosts);
  const header = doc.spec.token?.header?.toLowerCase();
  if (header !== undefined && (RESERVED_HEADERS.has(header) || header.startsWith('x-authproxy-'))) {
    problems.push({
      path: ['spec', 'token', 'header'],
      message: `'${header}' cannot carry the token (it is a connection, framing or sidecar header)`,
    });
  }
  return problems;
}

function trustBoundaryProblems(doc: TrustBoundaryDoc): FieldProblem[] {
  const problems = hostListProblems(doc.spec.hosts ?? []);
  doc.spec.cidrs?.forEach((text, i) => {
    const cidr = parseCidr(text);
    if (typeof cidr === 'string') problems.push({ path: ['spec', 'cidrs', i], message: cidr });
  });
  return problems;
}

function hostListProblems(hosts: readonly string[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const seen = new Map<string, number>();
  hosts.forEach((host, i) => {
    const problem = hostPatternProblem(host);
    if (problem) problems.push({ path: ['spec', 'hosts', i], message: problem });
    const first = seen.get(host);
    if (first !== undefined) problems.push({ path: ['spec', 'hosts', i], message: `duplicate host (also hosts[${first}])` });
    else seen.set(host, i);
  });
  return problems;
}

/** A valid document with where it came from, for set-level problems. */
export interface LocatedDoc {
  readonly doc: PolicyDoc;
  readonly file: string;
  readonly index: number;
}

export interface SetProblem extends FieldProblem {
  readonly at: LocatedDoc;
}

export function setProblems(docs: readonly LocatedDoc[], boundaries: readonly TrustBoundarySpec[]): SetProblem[] {
  const problems: SetProblem[] = [];
  const names = new Map<string, LocatedDoc>();
  for (const at of docs) {
    const key = `${at.doc.kind}/${at.doc.metadata.name}`;
    const first = names.get(key);
    if (first) {
      problems.push({ at, path: ['metadata', 'name'], message: `duplicate ${at.doc.kind} name '${at.doc.metadata.name}' (also ${first.file}, document ${first.index})` });
    } else {
      names.set(key, at);
    }
  }

  const hostOwner = new Map<string, LocatedDoc>();
  const index = new BoundaryIndex(boundaries);
  for (const at of docs) {
    if (at.doc.kind !== 'OutboundRoute') continue;
    const spec = at.doc.spec;
    spec.hosts.forEach((host, i) => {
      const owner = hostOwner.get(host);
      // (The same route may name one address twice, in two spellings: 127.1 and 127.0.0.1.)
      if (owner && owner !== at) {
        problems.push({ at, path: ['spec', 'hosts', i], message: `host '${host}' is already routed by OutboundRoute '${owner.doc.metadata.name}'` });
      } else if (!owner) {
        hostOwner.set(host, at);
      }
      if (spec.tls === 'none' && index.containing(host) === null) {
        problems.push({
          at, path: ['spec', 'hosts', i],
          message: `tls: none would send plaintext to '${host}', which no TrustBoundary contains (use tls: auto, or add the host to a TrustBoundary)`,
        });
      }
    });
  }
  return problems;
}
