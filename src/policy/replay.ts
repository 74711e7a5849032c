// Replaying an audit log against a policy set: each inbound record the policy decided is asked
// again of the set (explainInbound, the sidecar's own normalization and decision code), and the
// recorded decision and rule are compared with the answer; each outbound record's route is looked
// up again for its destination (the listener's own host parsing and route table). A security
// reviewer gets from "the log names a rule" to "this policy set, at this digest, decides exactly
// that", record by record.
//
// What a log cannot settle is said, not guessed: a record decided by another policy set (its
// digest differs), a refusal made before the policy was asked (a malformed request, a header
// block over the limit), and an allow by a rule that requires a bearer token, since records carry
// no claims (the set is asked again with the least token the recorded rule accepts, which that
// rule must then be the one to allow).
import { explainInbound, type InboundAnswer } from './explain.ts';
import type { PolicySet } from './types.ts';
import { RouteTable } from '../outbound/routes.ts';
import { targetOfAuthority } from '../outbound/target.ts';
import { RequestRefused } from '../errors.ts';

/** The fields of an audit record (audit/record.ts) a replay reads; anything else is ignored. */
export interface RecordedDecision {
  direction?: unknown; event?: unknown; level?: unknown; msg?: unknown; requestId?: unknown; peer?: { principal?: unknown; address?: unknown } | null;
  method?: unknown; path?: unknown; decision?: unknown; code?: unknown; policy?: unknown; rule?: unknown; policyDigest?: unknown; tls?: unknown;
}

export type ReplayKind = 'confirmed' | 'token' | 'mismatch' | 'other-set' | 'not-policy' | 'handshake' | 'seal' | 'log' | 'unreadable';

export interface Replayed { kind: ReplayKind; recorded?: string; replayed?: string; digest?: string; code?: string }

// Codes the policy (or the boundary check in front of it, for plaintext) decides. A bad_path
// refusal is the normalizer's, and its record has no path to ask again with.
const POLICY_CODES = new Set(['forbidden', 'invalid_token', 'boundary_violation']);

const LOWER_CASE = /[a-z]/;

const ruleOf = (policy: unknown, rule: unknown): string | null => (typeof rule === 'string' ? `${String(policy)}/${rule}` : null);
const describe = (allow: boolean, code: string | null, rule: string | null): string =>
  (allow ? `allow${rule ? ` by ${rule}` : ''}` : `deny ${code}${rule ? ` (${rule})` : ''}`);

/** `routes`: the set's route table, built once per log (outbound records). */
export function replayRecord(set: PolicySet, r: RecordedDecision, routes = new RouteTable(set.routes, null)): Replayed {
  if (r.event === 'handshake') return { kind: 'handshake' };
  // A seal (audit/seal.ts) records no decision; `authproxy audit verify` checks it.
  if (r.event === 'seal') return { kind: 'seal' };
  // The sidecar's operational log (stderr), which `kubectl logs` interleaves with the audit log on stdout.
  if (r.direction === undefined && typeof r.level === 'string' && typeof r.msg === 'string') return { kind: 'log' };
  if ((r.direction !== 'inbound' && r.direction !== 'outbound') || (r.decision !== 'allow' && r.decision !== 'deny')) return { kind: 'unreadable' };
  if (r.policyDigest !== set.digest) return { kind: 'other-set', digest: String(r.policyDigest) };
  if (r.direction === 'outbound') return replayRoute(routes, r);
  const code = typeof r.code === 'string' ? r.code : null;
  const rule = ruleOf(r.policy, r.rule);
  // A deny that names an allow rule was allowed by the policy, then refused by a limit (413, 408).
  const allowed = r.decision === 'allow' || (rule !== null && !POLICY_CODES.has(code ?? ''));
  if (!allowed && !POLICY_CODES.has(code ?? '')) return { kind: 'not-policy', code: code ?? 'none' };
  // Outside every boundary the source address alone decides, before the target is read.
  const path = typeof r.path === 'string' ? r.path : code === 'boundary_violation' ? '/' : null;
  // The sidecar writes `tls` on every inbound record; read any other value as mTLS and a plaintext
  // caller outside every boundary would be judged by the principal its record claims instead.
  if (typeof r.method !== 'string' || path === null || (r.tls !== 'mtls' && r.tls !== 'plaintext')) return { kind: 'unreadable' };
  const plaintext = r.tls === 'plaintext';
  const address = typeof r.peer?.address === 'string' ? r.peer.address : null;
  const principal = typeof r.peer?.principal === 'string' ? r.peer.principal : null;
  if (plaintext ? address === null : principal === null) return { kind: 'unreadable' };
  const recorded = describe(allowed, code, rule);
  // A method with lower-case letters is refused before the policy is asked (inbound/authorize.ts).
  if (LOWER_CASE.test(r.method)) return { kind: 'mismatch', recorded, replayed: 'deny bad_request' };
  const question = { method: r.method, target: path, ...(plaintext ? { source: address! } : { from: principal! }) };
  const a: InboundAnswer = explainInbound(set, question);
  const replayed = describe(a.allow, a.code, ruleOf(a.policy, a.rule));
  if (recorded === replayed) return { kind: 'confirmed' };
  // Allowed with a token: the log has no claims, so the set is asked again with the least token
  // each of the rule's token requirements accepts (its roles; with jit, issued and expiring now).
  // Consistent when one of them is allowed by that very rule: it matches this caller, method and
  // path, and neither a deny rule nor an allow rule before it decides otherwise. A token with
  // more roles could only have made an earlier rule match instead, never this one. (The fresh jit
  // token can err the other way only: an earlier rule with a shorter jit.maxAge that the real
  // token was too old for reads as a mismatch, to be looked at, never as a confirmation.)
  const needs = allowed && rule !== null ? set.rulesRequiringToken.get(rule) : undefined;
  if (needs) {
    const nowSeconds = Date.now() / 1000;
    for (const need of needs) {
      const token = { roles: need.roles, ...(need.jit ? { iat: nowSeconds, exp: nowSeconds } : {}) };
      const t = explainInbound(set, { ...question, token, nowSeconds });
      if (describe(t.allow, t.code, ruleOf(t.policy, t.rule)) === recorded) return { kind: 'token', recorded, replayed };
    }
  }
  return { kind: 'mismatch', recorded, replayed };
}

/**
 * An outbound record names the OutboundRoute chosen for its destination (`policy`, null when
 * unrouted). What became of the request after that (the boundary, which depends on DNS at the
 * time; the token; the destination's answer) is not the route table's to say.
 */
function replayRoute(routes: RouteTable, r: RecordedDecision): Replayed {
  const code = typeof r.code === 'string' ? r.code : null;
  // No destination, or one the listener could not read: refused before a route was looked up.
  const target = typeof r.peer?.address === 'string' ? targetOfAuthority(r.peer.address) : null;
  if (target === null || target instanceof RequestRefused) return { kind: 'not-policy', code: code ?? 'none' };
  const recorded = `route ${typeof r.policy === 'string' ? r.policy : '(none)'}`;
  const replayed = `route ${routes.lookup(target.host)?.name ?? '(none)'}`;
  return recorded === replayed ? { kind: 'confirmed' } : { kind: 'mismatch', recorded, replayed };
}

export interface ReplaySummary {
  records: number;
  counts: Record<ReplayKind, number>;
  /** Digest → records decided by that other policy set. */
  otherSets: Record<string, number>;
  /** Code → records refused before the policy was asked. */
  notPolicy: Record<string, number>;
  mismatches: Array<{ line: number; requestId: string | null; recorded: string; replayed: string }>;
  unreadableLines: number[];
}

/** Replays every line of an audit log (JSON lines, as the sidecar writes them). */
export async function replayLog(set: PolicySet, lines: AsyncIterable<string>): Promise<ReplaySummary> {
  const routes = new RouteTable(set.routes, null);
  const s: ReplaySummary = {
    records: 0, otherSets: {}, notPolicy: {}, mismatches: [], unreadableLines: [],
    counts: { confirmed: 0, token: 0, mismatch: 0, 'other-set': 0, 'not-policy': 0, handshake: 0, seal: 0, log: 0, unreadable: 0 },
  };
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    s.records++;
    let r: Replayed;
    try {
      const parsed: unknown = JSON.parse(text);
      r = parsed !== null && typeof parsed === 'object' ? replayRecord(set, parsed as RecordedDecision, routes) : { kind: 'unreadable' };
      if (r.kind === 'mismatch') {
        const id = (parsed as RecordedDecision).requestId;
        s.mismatches.push({ line, requestId: typeof id === 'string' ? id : null, recorded: r.recorded!, replayed: r.replayed! });
      }
    } catch { r = { kind: 'unreadable' }; }
    s.counts[r.kind]++;
    if (r.kind === 'seal' || r.kind === 'log') s.records--;
    if (r.kind === 'other-set') s.otherSets[r.digest!] = (s.otherSets[r.digest!] ?? 0) + 1;
    if (r.kind === 'not-policy') s.notPolicy[r.code!] = (s.notPolicy[r.code!] ?? 0) + 1;
    if (r.kind === 'unreadable') s.unreadableLines.push(line);
  }
  return s;
}
