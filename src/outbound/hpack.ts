// The HPACK encoder table of the sidecar's HTTP/2 client sessions. nghttp2 encodes with a
// dynamic table of at most 4 KiB unless the session is created with a larger
// maxDeflateDynamicTableSize, and a header that does not fit is sent literally on every request:
// a 16 KB token would cost 16 KB per request on a warm connection. undici creates its HTTP/2
// sessions itself and exposes no option for this, so the one place it calls, http2.connect, is
// given the larger default here (an explicit value from a caller still wins). The peer decides
// how much of it is used: the sidecar's inbound listener advertises a 64 KiB table
// (H2_HEADER_TABLE_BYTES).
//
// nghttp2 never indexes `authorization` (RFC 7541 §7.1.3: a secret in a shared compression
// context can be recovered by an attacker who can add headers and observe sizes), so a token in
// that header is still sent in full; under any other header name it is sent once per connection.
import http2 from 'node:http2';
import { H2_HEADER_TABLE_BYTES } from '../http/h2.ts';

let installed = false;

export function raiseHpackEncoderTable(): void {
  if (installed) return;
  installed = true;
  const connect = http2.connect;
  const wrapped = ((authority: string | URL, options?: http2.SecureClientSessionOptions | ((s: http2.ClientHttp2Session) => void), listener?: (s: http2.ClientHttp2Session) => void) => {
    if (typeof options === 'function') return connect(authority, { maxDeflateDynamicTableSize: H2_HEADER_TABLE_BYTES }, options);
    return connect(authority, { maxDeflateDynamicTableSize: H2_HEADER_TABLE_BYTES, ...options }, listener);
  }) as typeof http2.connect;
  http2.connect = wrapped;
}
