// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus `expect`, which
// the sidecar answers itself. They are never copied from one hop to the next.
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'expect', 'http2-settings',
]);

/** Extra hop-by-hop names a sender listed in its Connection header (lowercased), or null. */
export function connectionTokens(value: string | undefined): Set<string> | null {
  if (!value) return null;
  // Nearly every request says just one of these: no split, no Set. This runs for every request;
  // with the closure once() made (upstream.ts), it was 4.4% of the main thread's instructions a
  // request (bench/probes/instructions-per-request.ts: 352,500 → 337,000).
  if (value.length <= 10) { const v = value.toLowerCase(); if (v === 'keep-alive' || v === 'close') return null; }
  let names: Set<string> | null = null;
  for (const t of value.split(',')) { const n = t.trim().toLowerCase(); if (n && n !== 'close' && n !== 'keep-alive') (names ??= new Set()).add(n); }
  return names;
}
