// Enforcing --max-body-bytes so that an oversized request never reaches the app. A declared
// Content-Length over the limit is refused before anything is read. A chunked body has no
// declared size, so with a limit set it is read up to the limit first (memory is bounded by the
// limit, as with nginx's client_max_body_size): over it, 413 and the app never saw the request;
// under it, it is forwarded whole with a Content-Length (and can be replayed on a retry); still
// arriving at the request deadline, 408 as for a small declared body (readBody in whole-body.ts).
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { isGrpc } from '../http/grpc.ts';

/**
 * True when the request carries a body of undeclared size that must be checked before forwarding:
 * chunked on HTTP/1.1, or an HTTP/2 body without content-length. gRPC calls are the exception:
 * a streaming call's messages must flow while the call is open, so they are never held back
 * (a gRPC server bounds each message itself; grpc-js defaults to 4 MB).
 */
export function needsBuffering(req: IncomingMessage | Http2ServerRequest, limit: number): boolean {
  if (limit <= 0 || req.headers['content-length'] !== undefined || !hasBody(req)) return false;
  return req.httpVersionMajor !== 2 || !isGrpc(req.headers['content-type']);
}

/**
 * Whether a request body follows the headers. HTTP/1.1 says so with Content-Length or
 * Transfer-Encoding; HTTP/2 needs neither, and a stream whose HEADERS frame did not end it
 * carries a body (a gRPC stream, for instance).
 */
export function hasBody(req: IncomingMessage | Http2ServerRequest): boolean {
  const declared = req.headers['content-length'];
  if (declared !== undefined) return declared !== '0';
  if (req.httpVersionMajor === 2) return !(req as Http2ServerRequest).stream.endAfterHeaders;
  return req.headers['transfer-encoding'] !== undefined;
}

export function declaredTooLarge(req: IncomingMessage | Http2ServerRequest, limit: number): boolean {
  return limit > 0 && Number(req.headers['content-length'] ?? 0) > limit;
}
