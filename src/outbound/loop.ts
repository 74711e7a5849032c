// A request addressed to the outbound listener itself would be sent back into it, and from there
// again, without end: before these checks `127.1:<outbound port>` made about 4,100 audit records
// in 2 s from one request, and kept going after the client gave up. Refused with 400 bad_request
// by two checks (Linkerd's outbound proxy refuses its own address and port the same way; Envoy
// and RFC 8586's CDN-Loop mark what they send, as the second check does):
//
// 1. Before anything is sent or audited as allowed: the destination is the listener's own port at
//    one of its own addresses: any loopback address, 0.0.0.0 or :: (which the kernel dials as this
//    host), the address the listener is bound to, or, when it is bound to every interface, any
//    address of this host. The host is an IP literal in canonical form (http/ip.ts, so 127.1 and
//    [::ffff:127.0.0.1] are 127.0.0.1), `localhost`, or a name whose DNS answer the boundary
//    classifier already holds.
// 2. What gets past that (a name with no answer held yet, a NAT or a port redirect that leads
//    back here): each request sent on a plaintext hop carries x-authproxy-hop with this listener's
//    random id, and a request that arrives with that id has come back. Plaintext hops only: the
//    outbound listener speaks plain HTTP, so no TLS hop can ever reach it.
import { randomUUID } from 'node:crypto';
import { BlockList, isIP, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { IncomingHttpHeaders } from 'node:http';
import { ipFamily, isLoopbackIp } from '../http/ip.ts';

export const HOP_HEADER = 'x-authproxy-hop';

const UNSPECIFIED = new BlockList();
UNSPECIFIED.addAddress('0.0.0.0', 'ipv4');
UNSPECIFIED.addAddress('::', 'ipv6');

/** The listener's port, and its own address (null when it listens on every interface). */
interface Bound { port: number; own: BlockList | null }

export class LoopGuard {
  /** Sent on every plaintext hop; a request that arrives with it went round. */
  readonly hopId = randomUUID();
  readonly #listener: Server;
  #bound: Bound | null = null;

  constructor(listener: Server) { this.#listener = listener; }

  /** The request was sent on by this listener and has come back to it. */
  cameBack(headers: IncomingHttpHeaders): boolean {
    return headers[HOP_HEADER] === this.hopId;
  }

  /**
   * `host:port` (host canonical, as OutboundTarget has it) is this listener. `answers` gives
   * the DNS answer held for a name, if any (no lookup is made here).
   */
  isSelf(host: string, port: number, answers: { cachedAddresses(name: string): readonly string[] | undefined }): boolean {
    // (Read once: the listener is bound before the first request, and stays so.)
    const bound = this.#bound ??= boundOf(this.#listener);
    if (port !== bound.port) return false;
    if (isIP(host) !== 0) return isOwnAddress(host, bound);
    if (host === 'localhost' || host.endsWith('.localhost')) return true;
    return answers.cachedAddresses(host)?.some((a) => isOwnAddress(a, bound)) ?? false;
  }
}

function boundOf(listener: Server): Bound {
  const a = listener.address();
  if (a === null || typeof a === 'string') return { port: -1, own: null };
  if (UNSPECIFIED.check(a.address, ipFamily(a.address))) return { port: a.port, own: null };
  const own = new BlockList();
  own.addAddress(a.address, ipFamily(a.address));
  return { port: a.port, own };
}

function isOwnAddress(ip: string, bound: Bound): boolean {
  const family = ipFamily(ip);
  if (isLoopbackIp(ip) || UNSPECIFIED.check(ip, family)) return true;
  // Bound to every interface: any address of this host. Read afresh (interfaces come and go), and
  // only for a destination on the listener's own port, which no ordinary request has.
  return (bound.own ?? interfaceAddresses()).check(ip, family);
}

function interfaceAddresses(): BlockList {
  const list = new BlockList();
  for (const infos of Object.values(networkInterfaces())) {
    for (const i of infos ?? []) list.addAddress(i.address, i.family === 'IPv6' ? 'ipv6' : 'ipv4');
  }
  return list;
}
