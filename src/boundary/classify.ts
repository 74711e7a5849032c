// Inside or outside a trust boundary, for an outbound destination. A destination is inside when
// its host matches a boundary host glob, or it is an IP literal inside a boundary CIDR, or every
// address its name resolves to is inside one; otherwise it is outside.
//
// DNS answers are cached for a few seconds (names change rarely, and classifying must not cost a
// lookup per request). Because an answer can change between classifying and connecting, the
// plaintext connection is checked once more at connect time against the addresses actually
// dialled (`boundaryCheckedLookup`): a name that now points outside fails closed instead of
// carrying plaintext out. A kept-alive connection keeps the address it was checked with, so it
// stays inside for its life; new answers apply to new connections.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { PolicySet } from '../policy/types.ts';

export const OUTSIDE = null;

export class DestinationClassifier {
  readonly #policy: () => PolicySet;
  readonly #answers: LRUCache<string, readonly string[]>;

  constructor(policy: () => PolicySet, ttlMs = 5000, max = 4096) {
    this.#policy = policy;
    this.#answers = new LRUCache<string, readonly string[]>({
      max, ttl: ttlMs,
      // lru-cache's default (1 ms) arms a timer with each fresh clock reading: one more event-loop
      // wake-up per request at any moderate rate (tokens/cache.ts says more). An answer held 100 ms
      // past its 5 s is no different.
      ttlResolution: 100,
      // Single-flight: concurrent first requests to one host make one DNS query.
      fetchMethod: (host) => resolveAll(host),
    });
  }

  /** Boundary name, null for outside, or undefined when the name must be resolved first. */
  peek(host: string): string | null | undefined {
    const set = this.#policy();
    const byName = set.boundaryOf(host);
    if (byName !== null || isIP(host) !== 0) return byName;
    if (set.boundaries.length === 0) return OUTSIDE;
    const addresses = this.#answers.get(host);
    return addresses === undefined ? undefined : addressesBoundary(set, addresses);
  }

  /** The DNS answer held for a name (no lookup is made), or undefined. */
  cachedAddresses(host: string): readonly string[] | undefined {
    return this.#answers.get(host);
  }

  async classify(host: string): Promise<string | null> {
    const known = this.peek(host);
    if (known !== undefined) return known;
    // A name that does not resolve is outside: fail closed (TLS is then attempted and fails).
    const addresses = await this.#answers.fetch(host).catch(() => []);
    return addressesBoundary(this.#policy(), addresses ?? []);
  }
}

/** Inside only when every address is inside some boundary; the first address names it. */
export function addressesBoundary(set: PolicySet, addresses: readonly string[]): string | null {
  if (addresses.length === 0) return OUTSIDE;
  let first: string | null = null;
  for (const a of addresses) {
    const b = set.boundaryOf(a);
    if (b === null) return OUTSIDE;
    first ??= b;
  }
  return first;
}

function resolveAll(host: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(host, { all: true }, (err, answers) => (err ? reject(err) : resolve(answers.map((a) => a.address))));
  });
}

export class OutsideBoundary extends Error {
  readonly code = 'EAUTHPROXY_OUTSIDE_BOUNDARY';
  constructor(host: string, address: string) {
    super(`${host} resolved to ${address}, outside every trust boundary: plaintext refused`);
    this.name = 'OutsideBoundary';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for plaintext connections: resolves as usual, then refuses the connection when the
 * name is not inside by host glob and any address it resolved to lies outside every boundary.
 */
export function boundaryCheckedLookup(policy: () => PolicySet) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, answers) => {
      if (err) { callback(err, []); return; }
      const set = policy();
      if (set.boundaryOf(hostname) === null) {
        const outside = answers.find((a) => set.boundaryOf(a.address) === null);
        if (outside) { callback(new OutsideBoundary(hostname, outside.address), []); return; }
      }
      if (options.all) callback(null, answers);
      else callback(null, answers[0]!.address, answers[0]!.family);
    });
  };
}
