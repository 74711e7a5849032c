// Host patterns, CIDRs and trust-boundary containment, as far as validating a policy set needs
// them (the `tls: none` rule). Host globs use '.' as the separator: `*.svc.cluster.local`.
import { BlockList, isIP, isIPv4 } from 'node:net';
import { compileHostGlob, type GlobMatcher } from './glob.ts';
import { canonicalHost } from '../http/ip.ts';
import type { TrustBoundarySpec } from './types.ts';

const LABEL = /^[a-z0-9_*-]+$/;

/**
 * A host pattern as routes and boundaries keep it: an IP literal in the canonical form the
 * outbound listener brings destinations to (http/ip.ts: `127.1` and `0:0:0:0:0:0:0:1` are
 * `127.0.0.1` and `::1`), anything else as written; null for an IP literal that is not valid.
 */
export function canonicalHostPattern(host: string): string | null {
  return host.includes('*') ? host : canonicalHost(host);
}

/** Why `host` is not a valid host pattern, or null when it is. */
export function hostPatternProblem(host: string): string | null {
  const canonical = canonicalHostPattern(host);
  if (canonical === null) {
    return host.includes(':') ? 'is not a valid IP address (IPv6 literals are written without brackets)'
      : 'is not a valid IPv4 address, and a name cannot end in a numeric label';
  }
  if (isIP(canonical) !== 0) return null;
  for (const label of host.split('.')) {
    if (label === '') return 'must not have empty labels (no leading, trailing or doubled dots)';
    if (label.length > 63) return 'has a label longer than 63 characters';
    if (!LABEL.test(label)) return 'labels may only hold lowercase letters, digits, -, _ and the globs * and **';
    if (label.includes('**') && label !== '**') return "has '**' inside a label ('**' must be a whole label)";
  }
  return null;
}

export interface Cidr {
  readonly family: 'ipv4' | 'ipv6';
  readonly address: string;
  readonly prefix: number;
}

/** Parses `address/prefix`; returns an error message for bad syntax or host bits set. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  if (slash === -1) return 'must be a CIDR such as 10.0.0.0/8 or fd00::/8';
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const version = isIP(address);
  if (version === 0) return `'${address}' is not an IPv4 or IPv6 address`;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const bits = version === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]*)$/.test(prefixText) || Number(prefixText) > bits) {
    return `prefix length must be 0 to ${bits} for an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} address`;
  }
  const prefix = Number(prefixText);
  const bytes = ipBytes(address);
  for (let bit = prefix; bit < bits; bit++) {
    if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) {
      return `has host bits set after the /${prefix} prefix (the network address is ${networkAddress(bytes, prefix, family)})`;
    }
  }
  return { family, address, prefix };
}

function networkAddress(bytes: Uint8Array, prefix: number, family: 'ipv4' | 'ipv6'): string {
  const masked = Uint8Array.from(bytes, (b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return b & (0xff << (8 - keep)) & 0xff;
  });
  if (family === 'ipv4') return masked.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((masked[i]! << 8) | masked[i + 1]!).toString(16));
  // The WHATWG URL parser prints the canonical compressed form.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

/** Bytes of a valid IP literal (4 for IPv4, 16 for IPv6, including an embedded IPv4 tail). */
function ipBytes(address: string): Uint8Array {
  if (isIPv4(address)) return Uint8Array.from(address.split('.'), Number);
  const out = new Uint8Array(16);
  let text = address;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const tail = text.slice(lastColon + 1).split('.').map(Number);
    const v4 = ((tail[0]! << 8) | tail[1]!).toString(16) + ':' + ((tail[2]! << 8) | tail[3]!).toString(16);
    text = text.slice(0, lastColon + 1) + v4;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = [...headGroups, ...Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** Containment in the set's trust boundaries, compiled once. */
export class BoundaryIndex {
  readonly #entries: readonly { name: string; list: BlockList; globs: readonly GlobMatcher[] }[];

  constructor(boundaries: readonly TrustBoundarySpec[]) {
    this.#entries = boundaries.map((b) => {
      const list = new BlockList();
      for (const text of b.cidrs) {
        const cidr = parseCidr(text);
        if (typeof cidr !== 'string') list.addSubnet(cidr.address, cidr.prefix, cidr.family);
      }
      return { name: b.name, list, globs: b.hosts.map((h) => compileHostGlob(h)) };
    });
  }

  /**
   * The name of a boundary containing every host `host` can stand for, or null. A host is
   * contained when a boundary host glob matches it, or it is an IP literal inside a boundary
   * CIDR. For a route host that is itself a glob this must hold for every host it matches;
   * it is proven by running the boundary glob over the pattern text, which is sound because a
   * boundary glob can only consume the route's single-label `*` with its own wildcards. A route
   * glob with `**` is never proven contained (refused for `tls: none`).
   */
  containing(host: string): string | null {
    const version = isIP(host);
    if (host.includes('**')) return null;
    for (const entry of this.#entries) {
      if (version !== 0 && entry.list.check(host, version === 4 ? 'ipv4' : 'ipv6')) return entry.name;
      for (const glob of entry.globs) if (glob.matches(host)) return entry.name;
    }
    return null;
  }
}
