// Every refusal the sidecar answers itself: the status from the error table, a JSON body with a
// stable code, and the request id so the caller can find the audit line.
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { ERROR_STATUS, errorBody, type ErrorCode } from '../errors.ts';
import { LINGER_MS } from './linger.ts';
import { STATUS_CODES } from './node-http.ts';
import { GRPC_STATUS_FOR, grpcMessage, isGrpc } from './grpc.ts';

/** What a refusal is written on: an HTTP/1.1 response or an HTTP/2 stream's compatibility response. */
export type AnyResponse = ServerResponse | Http2ServerResponse;

export function refuse(res: AnyResponse, code: ErrorCode, message: string, requestId: string): void {
  if (res.headersSent) { res.destroy(); return; }
  if (isGrpc(res.req.headers['content-type'])) { refuseGrpc(res, code, message, requestId); return; }
  const body = errorBody(code, message, requestId);
  (res as ServerResponse).writeHead(ERROR_STATUS[code], {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
  });
  res.end(body);
}

/**
 * A gRPC call's refusal: HTTP 200 with the status in headers and nothing else. Headers set but not
 * written before end() go out as one HEADERS frame that ends the stream (trailers-only).
 */
function refuseGrpc(res: AnyResponse, code: ErrorCode, message: string, requestId: string): void {
  res.statusCode = 200;
  res.setHeader('content-type', 'application/grpc');
  res.setHeader('grpc-status', String(GRPC_STATUS_FOR[code]));
  res.setHeader('grpc-message', grpcMessage(`${code}: ${message}`));
  res.setHeader('x-authproxy-error', code);
  res.setHeader('x-request-id', requestId);
  res.end();
}

/** The same refusal written on a raw socket (Upgrade requests and parser errors have no ServerResponse). */
export function refuseRaw(socket: Duplex, code: ErrorCode, message: string, requestId: string): void {
  // A socket handed to 'upgrade' or 'connect' has lost node:http's error listener: a caller that
  // reset the connection first would make this write an unhandled 'error', and end the process.
  socket.on('error', () => {});
  const status = ERROR_STATUS[code];
  const body = errorBody(code, message, requestId);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
  // Such a socket is outside node:http's timeouts, and end() only shuts our side: a caller that
  // never closes its own would hold it for good. What it still sends is read and dropped (the
  // lingering close of linger.ts, so it reads its answer, not a reset) for at most LINGER_MS.
  socket.resume();
  const cut = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  socket.once('close', () => clearTimeout(cut));
}
