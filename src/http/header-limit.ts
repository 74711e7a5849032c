// --max-header-bytes on both protocols, with one refusal: 431 headers_too_large naming the limit
// and its flag (a gRPC call gets RESOURCE_EXHAUSTED from the same refusal, see refuse.ts).
//
// HTTP/1.1's parser enforces the limit itself (HPE_HEADER_OVERFLOW, answered in the listeners'
// clientError handlers). node:http2 does not, in two ways: it applies SETTINGS_MAX_HEADER_LIST_SIZE
// only once the peer has acknowledged the SETTINGS frame, so the first request of a connection got
// through unchecked (a 60 KB header with an 8 KB limit reached the app); and past it a stream is
// reset (RST_STREAM ENHANCE_YOUR_CALM), which tells a caller nothing readable (no status, no
// RESOURCE_EXHAUSTED). So an HTTP/2 request's field section is measured by the handlers, and the
// setting advertised is larger than the limit, so that a request a little over the limit reaches
// the handler and can be answered. RFC 9113 §6.5.2 lets a server enforce a lower limit than it
// advertises ("For any given request, a lower limit than what is advertised MAY be enforced"), and
// §10.5.1 names 431 as the answer.
//
// What node:http2 still does before a handler sees the request (no option of its own reaches it):
// - a field section over the advertised size, once SETTINGS are acknowledged: RST_STREAM
//   ENHANCE_YOUR_CALM (the advertised size is capped at Node's own 16 MiB ceiling);
// - more than maxHeaderListPairs fields (Node's default, 128, pseudo-header fields included):
//   RST_STREAM ENHANCE_YOUR_CALM;
// - one field whose name or value is longer than 64 KiB as HPACK encodes it (nghttp2's literal
//   limit; 'a' × 70,000 passes Huffman-coded, '~' × 65,537 does not): GOAWAY COMPRESSION_ERROR,
//   which ends the whole connection.
import type { AnyRequest } from './h2.ts';

/** How far past the limit a field section still reaches the handler to be answered 431. */
export const H2_HEADER_LIST_HEADROOM = 65_536;

/** Node's own cap on a stream's field section (MAX_MAX_HEADER_LIST_SIZE, src/node_http_common.h). */
const NODE_MAX_HEADER_LIST = 16_777_215;

/** The refusal's message, the same on both protocols and both listeners. */
export function headersTooLargeMessage(maxHeaderBytes: number): string {
  return `request headers exceed ${maxHeaderBytes} bytes (--max-header-bytes)`;
}

/** SETTINGS_MAX_HEADER_LIST_SIZE to advertise: the point past which the stream is reset. */
export function h2AdvertisedHeaderListSize(maxHeaderBytes: number): number {
  return Math.min(maxHeaderBytes + H2_HEADER_LIST_HEADROOM, NODE_MAX_HEADER_LIST);
}

/**
 * True for an HTTP/2 request whose field section is over the limit. Measured as RFC 9113 §6.5.2
 * measures SETTINGS_MAX_HEADER_LIST_SIZE: each field line's name and value in octets plus 32.
 * Pseudo-header fields count: they are field lines of the section, nghttp2 counts them against
 * the setting, and HTTP/1.1's parser counts the request target against the same limit, so a long
 * `:path` is bounded on both protocols. node:http2 hands field names and values over as one-byte
 * (latin1) strings, so a string's length is its octet count; rawHeaders is the list as received,
 * repeated fields (cookie crumbs) one by one, and reading it allocates nothing.
 */
export function h2HeadersOverLimit(req: AnyRequest, maxHeaderBytes: number): boolean {
  if (req.httpVersionMajor !== 2) return false;
  const raw = req.rawHeaders;
  // 32 per field line, 16 per entry of the flat name/value list.
  let size = raw.length * 16;
  for (let i = 0; i < raw.length; i++) size += raw[i]!.length;
  return size > maxHeaderBytes;
}
