// IP literals in one spelling. One IPv4 address has many spellings that every resolver dials
// alike (getaddrinfo's inet_aton reads 127.1, 0x7f.1, 0177.0.0.1 and 2130706433 as 127.0.0.1),
// and one IPv6 address many cases and compressions (0:0:0:0:0:0:0:1, ::FFFF:127.0.0.1). Routes,
// trust boundaries and the loop check compare host text, so the app's destination and the hosts of
// policy documents are both brought to the form the WHATWG URL host parser prints (127.0.0.1,
// ::1, fe80::1), by that parser: the platform's, not one written here; an IPv4-mapped IPv6
// address (::ffff:127.0.0.1) is brought to its IPv4 address.
import { BlockList, isIP, isIPv4 } from 'node:net';

// WHATWG "ends in a number": a host whose last label is decimal digits or 0x-hex is parsed as
// IPv4 (or refused), never looked up as a name.
const ENDS_IN_NUMBER = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$/;
// The only characters an IPv4 spelling can hold (decimal, octal, 0x-hex parts), and an IPv6 one.
// Checked before the URL parser sees the text, so that nothing in it ('@', '/', '#'…) can make
// the parser read a different host out of it.
const IPV4_CHARS = /^[0-9a-fx.]+$/;
const IPV6_CHARS = /^[0-9a-f:.]+$/i;
// How the URL parser prints an IPv4-mapped IPv6 address.
const MAPPED = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/;

/**
 * `host` (unbracketed, without a trailing dot; a name in lowercase) in canonical form: an IP
 * literal as the URL parser prints it (IPv6 without brackets), a name unchanged (the same string:
 * no work and no allocation for names, or for an IPv4 address already in dotted decimal), or null
 * for text that parses as neither (`1.2.3.4.5`, `foo.123`, `1::2::3`, an IPv6 zone ID).
 * `127.1`, `0x7f.1`, `::ffff:127.0.0.1` → `127.0.0.1`; `0:0:0:0:0:0:0:1`, `::1` → `::1`.
 */
export function canonicalHost(host: string): string | null {
  if (host.includes(':')) {
    if (!IPV6_CHARS.test(host)) return null;
    const h = URL.parse(`http://[${host}]/`)?.hostname;
    if (h === undefined) return null;
    // An IPv4-mapped address is dialled as the IPv4 address it maps (::ffff:10.0.0.5 reaches
    // 10.0.0.5), so it is that address: written the mapped way, a destination would otherwise
    // miss the route of its IPv4 address (and so its token and `tls: mtls`). The parser reads the
    // 32 bits back as an IPv4 number (0x0a000005 is 10.0.0.5).
    const mapped = MAPPED.exec(h);
    return mapped === null ? h.slice(1, -1) : URL.parse(`http://0x${mapped[1]!.padStart(4, '0')}${mapped[2]!.padStart(4, '0')}/`)!.hostname;
  }
  // (A name fails the first test, and dotted decimal the second: neither is parsed.)
  if (!ENDS_IN_NUMBER.test(host) || isIPv4(host)) return host;
  if (!IPV4_CHARS.test(host)) return null;
  return URL.parse(`http://${host}/`)?.hostname ?? null;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** `ip` names this host (BlockList also matches the IPv4-mapped form, ::ffff:127.0.0.1). */
export function isLoopbackIp(ip: string): boolean {
  return LOOPBACK.check(ip, ipFamily(ip));
}

/**
 * A URL's hostname (as URL prints it: canonical, IPv6 in brackets) names this host: `localhost`
 * or a loopback address. Where a plain-http:// URL is allowed, nobody else can read or answer it.
 */
export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || (isIP(h) !== 0 && isLoopbackIp(h));
}

/** 'ipv6' for any text with a colon (the caller passes valid IP literals only). */
export function ipFamily(ip: string): 'ipv4' | 'ipv6' {
  return ip.includes(':') ? 'ipv6' : 'ipv4';
}
