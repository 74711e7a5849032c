// What the app learns about a verified token: `x-authproxy-claims`, compact JSON of the standard
// claims an app decides on (who, for whom, which roles and scopes, when), and nothing else. Other
// claims (padding, issuer-specific extras) are left out so the header stays small and predictable.
import type { JWTPayload } from 'jose';

const FORWARDED_CLAIMS = ['iss', 'sub', 'aud', 'client_id', 'azp', 'scope', 'scp', 'iat', 'nbf', 'exp', 'jti', 'approval'] as const;

/** Roles from the configured claim: an array of strings, or one space-separated string (`scope`, `scp`). */
export function rolesFrom(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((s) => s !== '');
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

export function claimsHeader(payload: JWTPayload, roles: readonly string[]): string {
  const out: Record<string, unknown> = {};
  for (const name of FORWARDED_CLAIMS) {
    const v = payload[name];
    if (typeof v === 'string' || typeof v === 'number' || (Array.isArray(v) && v.every((x) => typeof x === 'string'))) out[name] = v;
  }
  out.roles = roles;
  // JSON escapes control characters; escaping non-ASCII too keeps the value a valid header byte string.
  return JSON.stringify(out).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
