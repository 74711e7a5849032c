// SPIFFE ID syntax (SPIFFE ID standard §2): spiffe://<trust-domain><path>, no port, userinfo,
// query or fragment; trust domain lowercase; path segments non-empty and not dot-segments.
const SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[A-Za-z0-9._-]+)*)$/;
// Labels of the allowed characters between single dots: `.`, `..`, `a..b` and a leading or
// trailing dot name no domain, and as a directory name (the injector mounts a bundle per domain)
// `..` is the parent directory.
const TRUST_DOMAIN = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

export function isTrustDomainName(name: string): boolean { return TRUST_DOMAIN.test(name); }

/** The rule isTrustDomainName checks, for the messages that refuse a name. */
export const TRUST_DOMAIN_RULE = 'labels of lowercase letters, digits, - and _, between single dots';

export function parseSpiffeId(uri: string): { trustDomain: string; path: string } | null {
  const m = SPIFFE_ID.exec(uri);
  if (!m) return null;
  const path = m[2] ?? '';
  if (path.split('/').some((s) => s === '.' || s === '..')) return null;
  return { trustDomain: m[1]!, path };
}
