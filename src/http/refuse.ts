// Every refusal the sidecar answers itself: the status from the error table, a JSON body with a
// stable code, and the request id so the caller can find the audit line.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_STATUS, errorBody, type ErrorCode } from '../errors.ts';
import { STATUS_CODES } from 'node:http';

export function refuse(res: ServerResponse, code: ErrorCode, message: string, requestId: string): void {
  if (res.headersSent) { res.destroy(); return; }
  const body = errorBody(code, message, requestId);
  res.writeHead(ERROR_STATUS[code], {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
  });
  res.end(body);
}

/** The same refusal written on a raw socket (Upgrade requests and parser errors have no ServerResponse). */
export function refuseRaw(socket: Duplex, code: ErrorCode, message: string, requestId: string): void {
  const status = ERROR_STATUS[code];
  const body = errorBody(code, message, requestId);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
}
