// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus `expect`, which
// the sidecar answers itself. They are never copied from one hop to the next.
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'expect', 'http2-settings',
]);

/**
 * A field (lowercase name) that describes the sender's connection, not the message: hop-by-hop, or
 * named in its Connection header (`named`, from connectionTokens). Never copied to the next hop.
 */
export function isConnectionField(name: string, named: ReadonlySet<string> | null): boolean {
  return HOP_BY_HOP.has(name) || (named !== null && named.has(name));
}

/** Extra hop-by-hop names a sender listed in its Connection header (lowercased), or null. */
export function connectionTokens(value: string | undefined): Set<string> | null {
  if (!value) return null;
  // Nearly every request says just one of these: no split, no Set. This runs for every request
  // (1.9 µs of self time a request in --cpu-prof at saturation, bench/FINDINGS.md).
  if (value.length <= 10) { const v = value.toLowerCase(); if (v === 'keep-alive' || v === 'close') return null; }
  let names: Set<string> | null = null;
  for (const t of value.split(',')) { const n = t.trim().toLowerCase(); if (n && n !== 'close' && n !== 'keep-alive') (names ??= new Set()).add(n); }
  return names;
}
