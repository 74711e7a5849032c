// Mapping transport failures to the contract's refusals: the app could not be reached (502) or
// did not answer in time (504). Callers branch on undici's stable error codes, never messages.
import type { ErrorCode } from '../errors.ts';

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** The request's deadline passed while waiting for the app (our timer, not undici's). */
export class DeadlineExceeded extends Error {
  constructor() { super('deadline exceeded'); this.name = 'DeadlineExceeded'; }
}

/**
 * The code of an HTTP/2 stream the peer refused before processing it (RST_STREAM REFUSED_STREAM,
 * RFC 9113 §8.7): like a refused connection, safe to try again for any method (retry.ts).
 */
export const H2_REFUSED_STREAM = 'H2_REFUSED_STREAM';

/**
 * The code of a cleartext HTTP/2 (h2c) connection the peer closed before sending its SETTINGS,
 * which every HTTP/2 server sends first: the peer does not speak h2c (an HTTP/1.1 server reads the
 * preface as a bad request and closes). No request was sent on it (h2-dispatcher.ts waits for the
 * SETTINGS), so it is as safe to retry as a refused connection.
 */
export const H2_NO_SETTINGS = 'H2_NO_SETTINGS';

/**
 * A refused stream. `replayBody` is its streamed request body, kept as it went out, when it ended
 * within SMALL_BODY_BYTES (a unary gRPC call's, say): it can be sent again like a body read whole.
 * A server draining its connection (GOAWAY, as grpc-js and grpc-go do at a maximum connection age)
 * refuses the streams that crossed its GOAWAY; a gRPC client retries those transparently, and a
 * proxy in its place must too.
 */
export class StreamRefused extends Error {
  readonly code = H2_REFUSED_STREAM;
  readonly replayBody: Buffer | null;
  constructor(replayBody: Buffer | null) {
    super('the peer refused the stream before processing it (REFUSED_STREAM)');
    this.name = 'StreamRefused';
    this.replayBody = replayBody;
  }
}

export const BODY_NOT_RECEIVED = 'request body not received before the request deadline';

/** The client had not sent its whole (declared) body by the request deadline. */
export class BodyNotReceived extends Error {
  constructor() { super(BODY_NOT_RECEIVED); this.name = 'BodyNotReceived'; }
}

/**
 * Why a TLS hop failed, when the handshake tells: the far side does not speak TLS on that port, or
 * its certificate was not accepted. The outbound listener adds why the hop was TLS and what the
 * certificate was checked against (outbound/tls-failure.ts). A far side that refuses the sidecar's
 * own certificate is not told apart: it closes or resets the connection (over TLS 1.3 after the
 * client's handshake is done), which reaches undici as ECONNRESET or UND_ERR_SOCKET.
 */
export type TlsFailure = 'not_tls' | 'server_certificate';

export interface UpstreamFailure { code: ErrorCode; message: string; tls?: TlsFailure }

export function classifyUpstreamError(err: Error): UpstreamFailure {
  const cause = (err as { cause?: unknown }).cause;
  if (err instanceof BodyNotReceived) return { code: 'request_timeout', message: err.message };
  if (err instanceof DeadlineExceeded || cause instanceof DeadlineExceeded) return { code: 'upstream_timeout', message: 'the app did not answer before the request deadline' };
  const code = (err as NodeJS.ErrnoException).code ?? '';
  // A plaintext connection refused at connect time because its address is outside every boundary.
  const outside = code === 'EAUTHPROXY_OUTSIDE_BOUNDARY' ? err
    : (cause as NodeJS.ErrnoException | undefined)?.code === 'EAUTHPROXY_OUTSIDE_BOUNDARY' ? cause as Error : null;
  if (outside) return { code: 'boundary_violation', message: outside.message };
  if (TIMEOUT_CODES.has(code)) return { code: 'upstream_timeout', message: 'the app did not answer in time' };
  // Same status either way; the message tells an operator whether to look at the app's socket or at its answers.
  if (UNREACHABLE_CODES.has(code)) return { code: 'upstream_unavailable', message: `the app is unreachable (${code})` };
  if (code === H2_REFUSED_STREAM) return { code: 'upstream_unavailable', message: 'the app refused the request before processing it (HTTP/2 REFUSED_STREAM)' };
  if (code === H2_NO_SETTINGS) {
    return { code: 'upstream_unavailable', message: 'the app closed the connection without the HTTP/2 settings an h2c server sends first: it does not speak cleartext HTTP/2 there (an HTTP/1.1-only server closes this way)' };
  }
  const tls = tlsFailureOf(code, err.message);
  if (tls !== null) return { code: 'upstream_unavailable', message: `${TLS_FAILURE_TEXT[tls.kind]} (${tls.detail})`, tls: tls.kind };
  return { code: 'upstream_unavailable', message: `the app's connection failed or its answer was malformed (${code || err.name})` };
}

// Connecting failed: nothing was sent to the app.
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

// OpenSSL read the far side's answer to its ClientHello as a TLS record and found none: a plain
// HTTP server answers "HTTP/1.1 400", whose first bytes are no TLS version.
const NOT_TLS_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);
// X.509 verification of the far side's chain and name (Node's codes for OpenSSL's verify results).
const SERVER_CERTIFICATE_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID']);

const TLS_FAILURE_TEXT: Record<TlsFailure, string> = {
  not_tls: "the app does not speak TLS there: its answer to the TLS handshake was not TLS",
  server_certificate: "the app's certificate was not accepted",
};

function tlsFailureOf(code: string, message: string): { kind: TlsFailure; detail: string } | null {
  if (NOT_TLS_CODES.has(code)) return { kind: 'not_tls', detail: code };
  // A node:tls socket under node:http (an upgrade's handshake) reports the same as a failed write,
  // EPROTO, with only OpenSSL's reason, which is stable, in the message.
  const reason = code === 'EPROTO' ? /:(wrong version number|packet length too long):/.exec(message)?.[1] : undefined;
  if (reason !== undefined) return { kind: 'not_tls', detail: `EPROTO, ${reason}` };
  if (SERVER_CERTIFICATE_CODES.has(code)) return { kind: 'server_certificate', detail: code };
  return null;
}
