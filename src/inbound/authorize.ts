// The inbound decision for one request: identify the caller, normalize the target, then ask the
// policy set. Produces the decision value once; it is audited once and used for the response.
import type { IncomingMessage } from 'node:http';
import type { Runtime } from '../runtime/state.ts';
import type { Decision } from '../policy/types.ts';
import { normalizeTarget } from '../policy/normalize.ts';
import { RequestRefused } from '../errors.ts';
import type { AuditRecord } from '../audit/record.ts';
import type { Caller, Identify } from './identify.ts';
import { sourceAddress } from './identify.ts';
import { NO_BEARER, type BearerCheck } from '../tokens/inbound.ts';
import { isoTime } from '../audit/time.ts';
import { hasTwoHostLines } from '../http/host-lines.ts';
import { upgradesToH2c, upgradeRefusal } from '../http/upgrade-handshake.ts';

const LOWER_CASE = /[a-z]/;
const LOWER_CASE_METHOD = new RequestRefused('bad_request', 'the method has lower-case letters; HTTP methods are case-sensitive and policy rules name them in upper case');
const TWO_HOSTS = new RequestRefused('bad_request', 'more than one Host header');
const H2C_UPGRADE = new RequestRefused('bad_request', 'Upgrade: h2c is not accepted; connect with HTTP/2 over TLS (ALPN h2) instead');

/**
 * What no rule should be asked about:
 * - a method with lower-case letters: rules name methods in upper case and match them exactly, as
 *   methods are case-sensitive, but many app frameworks fold case, so a `delete` would pass a rule
 *   that denies DELETE and reach the DELETE handler (HTTP/1.1's parser refuses such methods;
 *   HTTP/2 takes any token);
 * - two Host lines (host-lines.ts);
 * - an h2c upgrade: after the app's 101 the caller would speak HTTP/2 straight to the app, past the
 *   sidecar (the mTLS listener offers h2 by ALPN instead);
 * - an Upgrade to a protocol --upgrade-protocols does not list, or one that carries HTTP.
 */
function malformedRequest(req: IncomingMessage, method: string, upgrades: ReadonlySet<string> | null): RequestRefused | null {
  if (LOWER_CASE.test(method)) return LOWER_CASE_METHOD;
  if (hasTwoHostLines(req.rawHeaders)) return TWO_HOSTS;
  if (upgradesToH2c(req.headers.upgrade)) return H2C_UPGRADE;
  // node:http marks the requests it hands to 'upgrade' (untyped in @types/node).
  if ((req as { upgrade?: boolean }).upgrade === true) {
    const why = upgradeRefusal(req.headers.upgrade, upgrades);
    if (why) return new RequestRefused('bad_request', why);
  }
  return null;
}

export interface InboundVerdict {
  /**
   * The method the policy was asked about (GET for a WebSocket over HTTP/2: see websocket-h2.ts);
   * null for a request the HTTP parser refused, which has none.
   */
  method: string | null;
  caller: Caller | null;
  decision: Decision | null;
  /** The normalized path (with query) the app receives when allowed. */
  forwardPath: string;
  refusal: RequestRefused | null;
  path: string | null;
  /** The caller's bearer token as verified (see tokens/inbound.ts); NO_BEARER when tokens played no part. */
  bearer: BearerCheck;
}

/**
 * `bearer` is the verified bearer token, when the policy set needs tokens and one was presented
 * (or the refusal of a token header with more than one line).
 * `method` is what the policy is asked about: the request's own unless a caller translates it.
 */
export function decide(rt: Runtime, identify: Identify, req: IncomingMessage, bearer: BearerCheck = NO_BEARER, method = req.method ?? 'GET'): InboundVerdict {
  const caller = identify(req);
  if (caller instanceof RequestRefused) return { method, caller: null, decision: null, forwardPath: '', refusal: caller, path: null, bearer };
  const malformed = malformedRequest(req, method, rt.config.upgradeProtocols);
  if (malformed !== null) return { method, caller, decision: null, forwardPath: '', refusal: malformed, path: null, bearer };
  let norm;
  try {
    norm = normalizeTarget(req.url ?? '');
  } catch (e) {
    if (e instanceof RequestRefused) return { method, caller, decision: null, forwardPath: '', refusal: e, path: null, bearer };
    throw e;
  }
  // Credentials that cannot be read unambiguously are refused whatever the policy would say.
  if (bearer.refusal) return { method, caller, decision: null, forwardPath: '', refusal: bearer.refusal, path: norm.path, bearer };
  const decision = rt.policy.authorize({ principal: caller.principal, method, matchPath: norm.matchPath, token: bearer.claims, nowSeconds: Date.now() / 1000 });
  const forwardPath = norm.path + norm.query;
  if (decision.allow) return { method, caller, decision, forwardPath, refusal: null, path: norm.path, bearer };
  const code = decision.code ?? 'forbidden';
  const message = code === 'invalid_token' ? 'a valid bearer token is required' : 'denied by policy';
  return { method, caller, decision, forwardPath, refusal: new RequestRefused(code, message), path: norm.path, bearer };
}

/**
 * The verdict on a request refused before the policy is asked (a CONNECT tunnel, headers over the
 * limit, a request the HTTP parser refused): the caller as identified, for the audit record, and
 * no decision.
 */
export function refusedBeforePolicy(identify: Identify, req: Pick<IncomingMessage, 'socket'>, method: string | null, refusal: RequestRefused): InboundVerdict {
  const caller = identify(req);
  return { method, caller: caller instanceof RequestRefused ? null : caller, decision: null, forwardPath: '', refusal, path: null, bearer: NO_BEARER };
}

export function auditRecord(rt: Runtime, v: InboundVerdict, req: Pick<IncomingMessage, 'socket'>, requestId: string, transport: 'mtls' | 'plaintext'): AuditRecord {
  const d = v.decision;
  return {
    time: isoTime(Date.now()),
    requestId,
    direction: 'inbound',
    event: 'request',
    peer: { principal: v.caller?.principal ?? null, address: sourceAddress(req.socket.remoteAddress) || null },
    method: v.method,
    path: v.path,
    decision: v.refusal ? 'deny' : 'allow',
    status: v.refusal ? v.refusal.status : null,
    code: v.refusal ? v.refusal.code : null,
    policy: d?.policy ?? null,
    rule: d?.rule ?? null,
    reason: (d?.reason ?? v.refusal?.message ?? '') + (v.refusal?.code === 'invalid_token' && v.bearer.problem ? `; token rejected: ${v.bearer.problem}` : ''),
    policyDigest: rt.policy.digest,
    tls: transport,
    boundary: transport === 'plaintext' ? (v.caller?.boundary ?? 'outside') : null,
  };
}
