// Bearer tokens on the inbound path. Tokens play a part only when the policy set has a rule with
// `token:`; then a `Bearer` credential is the sidecar's: it is verified, its claims reach the app
// as `x-authproxy-claims`, and the raw token is removed (unless the deciding rule says
// `forwardToken: true`). A token that fails verification counts as no token: rules that need one
// answer 401 invalid_token, and the audit record says why it failed. Without token rules the
// Authorization header is the app's business and passes untouched.
// The token is read from `authorization` as `Bearer <token>` by default. `--token-header NAME`
// reads it from another header instead (bare, or with a Bearer prefix): between sidecars over
// HTTP/2 a token outside `authorization` can be indexed by HPACK and sent once per connection
// (docs/tokens.md says when that trade is acceptable).
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Runtime } from '../runtime/state.ts';
import type { TokenClaims } from '../policy/types.ts';

export interface BearerCheck {
  /** A bearer token was presented while tokens are in play: the sidecar consumes it. */
  readonly presented: boolean;
  /** Verified claims; undefined when none were presented or verification failed. */
  readonly claims: TokenClaims | undefined;
  readonly claimsHeader: string | null;
  /** Why a presented token was not accepted (for the audit record; never quotes the token). */
  readonly problem: string | null;
}

export const NO_BEARER: BearerCheck = Object.freeze({ presented: false, claims: undefined, claimsHeader: null, problem: null });

export const CLAIMS_HEADER = 'x-authproxy-claims';

/** The bearer token to verify, or null when tokens play no part in this request. */
export function bearerOf(rt: Runtime, req: IncomingMessage | Http2ServerRequest): string | null {
  if (!rt.policy.requiresToken) return null;
  const name = rt.config.tokenHeader;
  const a = req.headers[name];
  if (typeof a !== 'string') return null;
  if (a.length >= 7 && a.slice(0, 7).toLowerCase() === 'bearer ') return a.slice(7).trim();
  return name === 'authorization' || a.length === 0 ? null : a.trim();
}

export async function checkBearer(rt: Runtime, token: string): Promise<BearerCheck> {
  if (rt.verifier === null) {
    return { presented: true, claims: undefined, claimsHeader: null, problem: 'no token issuer is configured (--issuer)' };
  }
  let v;
  try { v = await rt.verifier.verify(token); } catch (e) {
    v = { ok: false as const, reason: `verification failed (${(e as Error).name})` };
  }
  rt.metrics.tokenVerified(v.ok ? 'valid' : 'invalid');
  return v.ok
    ? { presented: true, claims: v.token.claims, claimsHeader: v.token.header, problem: null }
    : { presented: true, claims: undefined, claimsHeader: null, problem: v.reason };
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

/**
 * The app's headers after a bearer token was consumed: the token header removed unless forwarded,
 * `x-authproxy-claims` added when verified. The caller's own x-authproxy-* headers were already
 * dropped. Returns where the slots at `slots` (value indexes) moved to, in the same order.
 */
export function applyBearerHeaders(headers: string[], check: BearerCheck, forward: boolean, slots: readonly number[] = [], tokenHeader = 'authorization'): { headers: string[]; slots: number[] } {
  const out: string[] = [];
  const moved = slots.map(() => -1);
  for (let i = 0; i < headers.length; i += 2) {
    if (!forward && headers[i]!.toLowerCase() === tokenHeader) continue;
    for (let s = 0; s < slots.length; s++) if (slots[s] === i + 1) moved[s] = out.length + 1;
    out.push(headers[i]!, headers[i + 1]!);
  }
  if (check.claimsHeader !== null) out.push(CLAIMS_HEADER, check.claimsHeader);
  return { headers: out, slots: moved };
}
