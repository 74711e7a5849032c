// Bearer tokens on the inbound path. Tokens play a part only when the policy set has a rule with
// `token:`; then the token header is the sidecar's: a `Bearer` credential in it is verified, its
// claims reach the app as `x-authproxy-claims`, and every line of the header is removed before the
// app (unless the deciding rule says `forwardToken: true` and the token was verified: then that one
// line passes). A token that fails verification counts as no token: rules that need one answer 401
// invalid_token, and the audit record says why it failed. More than one line of the token header is
// refused (400 bad_request): which line a check reads and which one an app reads may differ
// (Node keeps the first, other stacks the last or all). Without token rules the header is the app's
// business and passes untouched.
// The token is read from `authorization` as `Bearer <token>` by default. `--token-header NAME`
// reads it from another header instead (bare, or with a Bearer prefix): between sidecars over
// HTTP/2 a token outside `authorization` can be indexed by HPACK and sent once per connection
// (docs/tokens.md says when that trade is acceptable).
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Runtime } from '../runtime/state.ts';
import type { Decision, TokenClaims } from '../policy/types.ts';
import { RequestRefused } from '../errors.ts';

export interface BearerCheck {
  /** Verified claims; undefined when none were presented or verification failed. */
  readonly claims: TokenClaims | undefined;
  readonly claimsHeader: string | null;
  /** Why a presented token was not accepted (for the audit record; never quotes the token). */
  readonly problem: string | null;
  /** The credentials cannot be read unambiguously: the request is refused before the policy is asked. */
  readonly refusal: RequestRefused | null;
}

export const NO_BEARER: BearerCheck = Object.freeze({ claims: undefined, claimsHeader: null, problem: null, refusal: null });

export const CLAIMS_HEADER = 'x-authproxy-claims';

/**
 * RFC 9110 §11.4: `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, the scheme
 * case-insensitive. HTAB is accepted as well as SP: refusing it as "no token" would be what lets
 * `Bearer<TAB>token` past a check that an app reading it more leniently then honours.
 */
const BEARER_SCHEME = /^bearer[ \t]+/i;

/**
 * The bearer token to verify, or the check to go on with when there is nothing to verify
 * (NO_BEARER: tokens play no part, or no Bearer credential was sent; or a refusal when the token
 * header has more than one line). A request without the token header costs one property lookup.
 */
export function bearerOf(rt: Runtime, req: IncomingMessage | Http2ServerRequest): string | BearerCheck {
  if (!rt.policy.requiresToken) return NO_BEARER;
  const name = rt.config.tokenHeader;
  if (req.headers[name] === undefined) return NO_BEARER;
  // req.headers keeps the first line of a singleton such as authorization and joins the lines of
  // other names with ", ": the field lines themselves are in rawHeaders (any case; HTTP/2 included).
  const raw = req.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length !== name.length || n.toLowerCase() !== name) continue;
    if (value !== undefined) return ambiguous(name);
    value = raw[i + 1]!;
  }
  if (value === undefined) return NO_BEARER;
  const scheme = BEARER_SCHEME.exec(value);
  // Another scheme (Basic…) in authorization is not a bearer token: the header is removed all the same.
  const token = scheme !== null ? value.slice(scheme[0].length).trim() : name === 'authorization' ? '' : value.trim();
  return token.length === 0 ? NO_BEARER : token;
}

function ambiguous(name: string): BearerCheck {
  const refusal = new RequestRefused('bad_request', `more than one ${name} header: a request carries one credential`);
  return { claims: undefined, claimsHeader: null, problem: refusal.message, refusal };
}

/**
 * The token header to remove from what the app receives: every line of it while tokens are in
 * play, unless the deciding rule forwards the token and the one token sent was verified (more
 * than one line never gets this far: bearerOf refused it). Null when the header passes as sent.
 */
export function tokenHeaderToDrop(rt: Runtime, decision: Decision | null, bearer: BearerCheck): string | null {
  if (!rt.policy.requiresToken) return null;
  return decision?.forwardToken === true && bearer.claims !== undefined ? null : rt.config.tokenHeader;
}

export async function checkBearer(rt: Runtime, token: string): Promise<BearerCheck> {
  if (rt.verifier === null) {
    return { claims: undefined, claimsHeader: null, problem: 'no token issuer is configured (--issuer)', refusal: null };
  }
  let v;
  try { v = await rt.verifier.verify(token); } catch (e) {
    v = { ok: false as const, reason: `verification failed (${(e as Error).name})` };
  }
  rt.metrics.tokenVerified(v.ok ? 'valid' : 'invalid');
  return v.ok
    ? { claims: v.token.claims, claimsHeader: v.token.header, problem: null, refusal: null }
    : { claims: undefined, claimsHeader: null, problem: v.reason, refusal: null };
}

/**
 * Verifies `token`, then calls `then` with the result if the caller is still there to be
 * answered. The request counts as in flight meanwhile, so a drain waits for its decision instead
 * of closing a connection whose request was never answered. (Callers check `bearerOf` first, so
 * a request without a token allocates nothing here.) A fault in `then` goes to `onFault`, not
 * to an unhandled rejection that would end the process (src/http/fault.ts).
 */
export function afterBearerCheck(rt: Runtime, token: string, callerStillThere: () => boolean, then: (bearer: BearerCheck) => void, onFault: (e: unknown) => void): void {
  rt.inFlight++;
  checkBearer(rt, token).then((bearer) => {
    rt.inFlight--;
    if (callerStillThere()) then(bearer);
  }).catch(onFault);
}
