// What copying headers from an HTTP/2 request needs beyond the HTTP/1.1 rules (RFC 9113 §8.2–8.3):
// pseudo-headers describe the request line and are never copied as headers; `te` is hop-by-hop
// except for `te: trailers`, which is how a gRPC client says it reads trailers (and gRPC servers
// expect to see it); and the authority travels as `:authority`, which an HTTP/1.1 hop needs as Host.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest, Http2Session } from 'node:http2';

/** HPACK dynamic table, both ways between sidecars: one 16–32 KB token plus the ordinary headers. */
export const H2_HEADER_TABLE_BYTES = 65_536;

/**
 * Request headers whose value is new on every request (the request id, trace ids), sent as
 * never-indexed literals (RFC 7541 §6.2.3). nghttp2 indexes every other field it may, and the table
 * is FIFO: indexed, each request's id (~80 bytes of table) pushed the oldest entry out, and the
 * oldest is the token, which was then sent in full again every few hundred requests on a busy hop.
 * Indexing a value that never repeats also cost the encoder a table insert and a search along the
 * same name's ever longer chain of entries (memcmp under nghttp2_frame_pack_headers: ~7% of the
 * outbound sidecar's CPU at saturation, perf, 2026-11-24). The time left (x-authproxy-deadline,
 * grpc-timeout) stays indexed: on a hop that answers fast it is the same few values, each a
 * one-byte index once in the table. Lowercase, as node:http2 compares them.
 */
export const NEVER_INDEXED: readonly string[] = Object.freeze(['x-request-id', 'traceparent', 'b3', 'x-b3-traceid', 'x-b3-spanid',
  'x-b3-parentspanid']);

/**
 * nghttp2's memory bound per session, in MB: it counts the header tables and queued frames, and
 * its default (10) is reached by a few hundred concurrent streams with 32 KB headers.
 */
export const H2_MAX_SESSION_MEMORY_MB = 64;

/**
 * HTTP/2 flow-control windows on every session the sidecar opens or accepts: how much a peer may
 * send, per stream and per connection, before the sidecar has read it. nghttp2's default is 64 KiB
 * for both, and one connection carries every call between two sidecars, so at most 64 KiB could be
 * in flight on it per round trip: a hop with a round trip is bound by flow control, not by CPU.
 * bench/probes/h2-hop-throughput.ts, 32 MiB through both sidecars, each chunk held ~1 ms each way
 * on the hop: 14–15 MiB/s down and up with 64 KiB, 69–108 with these. With the test sidecars,
 * 4 and 16 MiB gave little more (131 and 115 MiB/s against 128 and 102), 256 KiB and 1 MiB half
 * (63 and 49). The windows also bound what a peer can make the sidecar hold when the far side
 * stops reading: a stream's window, and the connection's across all its streams. Envoy's defaults
 * are far larger (256 MiB); gRPC-Go grows its windows up to 16 MiB.
 */
export const H2_STREAM_WINDOW_BYTES = 1 << 20;
export const H2_CONNECTION_WINDOW_BYTES = 4 << 20;

/** The connection window of `session` widened to H2_CONNECTION_WINDOW_BYTES (the stream window is a SETTINGS value). */
export function widenConnectionWindow(session: Http2Session): void {
  // (A session torn down before this runs has no window left to widen.)
  if (!session.destroyed) session.setLocalWindowSize(H2_CONNECTION_WINDOW_BYTES);
}

export type AnyRequest = IncomingMessage | Http2ServerRequest;

/** `:method`, `:path`, `:authority`, `:scheme`, `:protocol`. */
export function isPseudoHeader(name: string): boolean {
  return name.charCodeAt(0) === 58;
}

/** True for an HTTP/2 request's `te: trailers`, the one `te` passed on. */
export function isTeTrailers(req: AnyRequest, lowerName: string, value: string): boolean {
  return req.httpVersionMajor === 2 && lowerName === 'te' && value.trim().toLowerCase() === 'trailers';
}

/** The authority an HTTP/2 caller addressed (`:authority`), or undefined for HTTP/1.1. */
export function h2Authority(req: AnyRequest): string | undefined {
  if (req.httpVersionMajor !== 2) return undefined;
  const a = req.headers[':authority'];
  return typeof a === 'string' ? a : undefined;
}
