// gRPC callers cannot read an HTTP error status: a gRPC client maps a bare 403 to UNKNOWN or
// INTERNAL and loses the reason. So a refusal of a gRPC call is a gRPC status instead: HTTP 200,
// `content-type: application/grpc`, and `grpc-status` / `grpc-message` in a trailers-only
// response (one HEADERS frame that ends the stream), as the gRPC HTTP/2 protocol specifies.
import type { ErrorCode } from '../errors.ts';

/** The gRPC status codes the sidecar answers with (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** Every refusal code has one gRPC status; the stable code itself travels in grpc-message. */
export const GRPC_STATUS_FOR: Record<ErrorCode, number> = {
  bad_path: GRPC_STATUS.INVALID_ARGUMENT,
  bad_request: GRPC_STATUS.INVALID_ARGUMENT,
  request_timeout: GRPC_STATUS.DEADLINE_EXCEEDED,
  invalid_token: GRPC_STATUS.UNAUTHENTICATED,
  forbidden: GRPC_STATUS.PERMISSION_DENIED,
  boundary_violation: GRPC_STATUS.PERMISSION_DENIED,
  no_route: GRPC_STATUS.PERMISSION_DENIED,
  body_too_large: GRPC_STATUS.RESOURCE_EXHAUSTED,
  headers_too_large: GRPC_STATUS.RESOURCE_EXHAUSTED,
  upstream_unavailable: GRPC_STATUS.UNAVAILABLE,
  token_unavailable: GRPC_STATUS.UNAVAILABLE,
  not_ready: GRPC_STATUS.UNAVAILABLE,
  upstream_timeout: GRPC_STATUS.DEADLINE_EXCEEDED,
  internal_error: GRPC_STATUS.INTERNAL,
};

/** gRPC (and gRPC-Web, which reads the same status headers) by its content type. */
export function isGrpc(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.startsWith('application/grpc');
}

/** grpc-message is percent-encoded UTF-8; everything outside printable ASCII and `%` is escaped. */
export function grpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
