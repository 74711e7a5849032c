// Where the app wants to go. Two request forms reach the outbound listener:
//   absolute-form  `GET http://payments.example.com:8080/charge?x=1` (the app uses HTTP_PROXY);
//                  the authority in the target wins over any Host header (RFC 9112 §3.2.2)
//   origin-form    `GET /charge?x=1` with `Host: payments.example.com:8080`
// The path and query are passed on exactly as sent: the destination, not the sidecar, interprets
// them (outbound authorization is by host, not by path).
import { h2Authority, type AnyRequest } from '../http/h2.ts';
import { canonicalHost } from '../http/ip.ts';
import { hasTwoHostLines } from '../http/host-lines.ts';
import { RequestRefused } from '../errors.ts';

export interface OutboundTarget {
  /** Lowercase host name without a trailing dot, or an IP literal in canonical form (http/ip.ts; IPv6 without brackets). */
  readonly host: string;
  /** The port the app named, or null (80 for plaintext, 443 when TLS is originated). */
  readonly port: number | null;
  /** Origin-form path and query, as sent. */
  readonly path: string;
  /** `host[:port]` as named (absolute-form target, else Host or :authority): the destination's one Host header. */
  readonly authority: string;
}

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

export function outboundTarget(req: AnyRequest): OutboundTarget | RequestRefused {
  const url = req.url ?? '';
  // A token could otherwise reach a host the route was not chosen for (host-lines.ts).
  if (hasTwoHostLines(req.rawHeaders)) return new RequestRefused('bad_request', 'more than one Host header');
  if (url.startsWith('/')) {
    // HTTP/2 (h2c from a gRPC client) names the destination in :authority instead of Host.
    const host = req.headers.host ?? h2Authority(req);
    if (!host) return new RequestRefused('bad_request', 'origin-form request without a Host header: name the destination in Host, or send an absolute URL (HTTP_PROXY)');
    return withAuthority(host, url);
  }
  const scheme = url.slice(0, 7).toLowerCase();
  if (scheme !== 'http://') {
    if (url.slice(0, 8).toLowerCase() === 'https://') {
      return new RequestRefused('bad_request', 'send http:// URLs to the outbound listener; the sidecar originates TLS where the route says so');
    }
    return new RequestRefused('bad_request', 'the request target must be an absolute http:// URL or an origin-form path');
  }
  let end = 7;
  while (end < url.length && url[end] !== '/' && url[end] !== '?' && url[end] !== '#') end++;
  const rest = url.slice(end);
  const path = rest === '' ? '/' : rest[0] === '?' ? `/${rest}` : rest;
  return withAuthority(url.slice(7, end), path);
}

/** A destination named as `host[:port]` (an audit record's peer address), read as the listener reads it. */
export function targetOfAuthority(authority: string): OutboundTarget | RequestRefused {
  return withAuthority(authority, '/');
}

function withAuthority(authority: string, path: string): OutboundTarget | RequestRefused {
  if (authority.includes('@')) return new RequestRefused('bad_request', 'credentials in the request URL are not forwarded; remove user:password@');
  let host: string | null;
  let portText = '';
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) return badHost();
    const literal = authority.slice(1, close);
    // fe80::1%25eth0: which interface a zone names is known only on the app's own host; a
    // service-to-service destination never needs one (and net.isIP accepts it, URL does not).
    if (literal.includes('%')) return new RequestRefused('bad_request', 'IPv6 zone IDs (the %25… in [fe80::1%25eth0]) are not accepted in outbound destinations: a zone names a link of this host, never a service');
    host = canonicalHost(literal);
    const after = authority.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) return badHost();
    portText = after.slice(1);
    if (after !== '' && portText === '') return badHost();
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon === -1 ? authority : authority.slice(0, colon);
    if (colon !== -1) { portText = authority.slice(colon + 1); if (portText === '') return badHost(); }
    host = host.toLowerCase();
    if (host.endsWith('.')) host = host.slice(0, -1);
    // A name keeps its text; an IPv4 address in any spelling the resolver would dial (127.1,
    // 0x7f.1) becomes dotted decimal, so routes, boundaries and the loop check see the address.
    host = host.length > 253 || !HOST_NAME.test(host) ? null : canonicalHost(host);
  }
  if (host === null) return badHost();
  let port: number | null = null;
  if (portText !== '') {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return badHost();
    port = Number(portText);
  }
  return { host, port, path, authority };
}

function badHost(): RequestRefused {
  return new RequestRefused('bad_request', 'the destination is not a valid host[:port]');
}
