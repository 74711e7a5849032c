// RFC 9112 §3.2: a request with more than one Host line gets 400. Hops disagree on which one
// counts (Node keeps the first, node:http2 lets the last become :authority, undici refuses), so
// what was authorized or routed and what the next hop reads could differ.
export function hasTwoHostLines(rawHeaders: readonly string[]): boolean {
  let hosts = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return true;
  }
  return false;
}
