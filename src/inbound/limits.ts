// What both inbound listeners share: the limits that keep one client from hurting the others,
// and the refusals written (and audited) when the HTTP parser gives up on a request.
import type { IncomingMessage, Server as HttpServer, ServerOptions, ServerResponse } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.ts';
import type { Runtime } from '../runtime/state.ts';
import { refuseRaw } from '../http/refuse.ts';
import { headersTooLargeMessage } from '../http/header-limit.ts';
import { closeOnPrematureResets } from '../http/premature-reset.ts';
import { closeIfIdle, isH2Session, PING_TIMEOUT_MS } from '../http/h2-idle.ts';
import { trackStreams } from '../http/h2-streams.ts';
import { log } from '../log.ts';
import { RequestRefused } from '../errors.ts';
import { auditRecord, refusedBeforePolicy } from './authorize.ts';
import type { Identify } from './identify.ts';

export function serverLimits(c: Config): ServerOptions {
  return {
    maxHeaderSize: c.maxHeaderBytes,
    // Slowloris: the whole header block must arrive within the header timeout. Node enforces
    // it on a sweep, so the sweep runs often enough for the bound to mean what it says.
    headersTimeout: c.headerTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(c.headerTimeoutMs / 4))),
    // No cap on a whole request: uploads are streamed and may be long; an idle client is cut
    // by the socket idle timeout instead (set in applyLimits).
    requestTimeout: 0,
    // Idle keep-alive connections from peers are cheap; closing them early costs handshakes.
    keepAliveTimeout: 65_000,
  };
}

/**
 * A connection that sends and receives nothing for `ms` is closed (slow-body clients). For
 * HTTP/2 the idle one is the session, closed the same way unless a stream is open on it, which
 * is asked for a PING instead (http/h2-idle.ts), answered within `ms` or at most 20 s.
 */
export function cutIdleConnections(server: HttpServer | Http2SecureServer | Http2Server, ms: number): void {
  server.setTimeout(ms);
  if ('updateSettings' in server) trackStreams(server);
  const pingTimeoutMs = Math.min(PING_TIMEOUT_MS, ms);
  (server as HttpServer).on('timeout', (idle: { destroy(): void }) => {
    if (isH2Session(idle)) closeIfIdle(idle, pingTimeoutMs); else idle.destroy();
  });
}

/**
 * `identify` and `transport` are the listener's own, so a request the parser refused is audited
 * with the caller and carriage its other records name.
 */
export function applyLimits(server: HttpServer | Http2SecureServer, rt: Runtime, identify: Identify, transport: 'mtls' | 'plaintext'): void {
  const c = rt.config;
  server.maxConnections = c.maxConnections;
  cutIdleConnections(server, c.clientIdleTimeoutMs);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // https.Server also routes TLS handshake failures (and the handshake timeout) here; a
    // socket that never became secure can carry no HTTP answer, so only parser errors get one.
    const code = err.code ?? '';
    // Refused already, its answer waiting behind an earlier one: node:http reports the same parse
    // error again for every chunk the client sends meanwhile; one refusal, one record.
    if ((socket as Refusing)[REFUSING] === true) return;
    if (!socket.writable || !(code.startsWith('HPE_') || code === 'ERR_HTTP_REQUEST_TIMEOUT')) { socket.destroy(); return; }
    // The connection ended in the middle of a request's body: the client left (or half-closed) with
    // its request unfinished. That request was handed to the handler, which answers and audits it
    // (408, or the allow as decided when the client is gone); the parser has no other request to
    // refuse, and a 400 record here would be a second record for the same request.
    if (code === 'HPE_INVALID_EOF_STATE' && bodyUnfinished(socket)) { socket.destroy(); return; }
    const refusal = code === 'HPE_HEADER_OVERFLOW' ? new RequestRefused('headers_too_large', headersTooLargeMessage(c.maxHeaderBytes))
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new RequestRefused('request_timeout', `request headers not received within ${c.headerTimeoutMs} ms (--header-timeout)`)
        : new RequestRefused('bad_request', 'malformed HTTP request');
    // The parser gave no request, so the record has no method or path (the raw bytes are not
    // read again); it names the caller the connection was identified as, like any other record.
    const requestId = randomUUID();
    const conn = { socket };
    rt.audit.write(auditRecord(rt, refusedBeforePolicy(identify, conn, null, refusal), conn, requestId, transport));
    rt.metrics.request('inbound', 'deny', refusal.status, 0);
    const answer = (): void => refuseRaw(socket, refusal.code, refusal.message, requestId);
    // HTTP/1.1 answers go out in request order, and the refusal must never land inside an answer
    // being written (a pipelined request refused while an earlier one is still being answered).
    const busy = answerInFlight(socket);
    if (busy === null) answer();
    // A later request refused: its answer follows the earlier ones, then the connection closes.
    else if (!bodyUnfinished(socket)) { (socket as Refusing)[REFUSING] = true; whenNoAnswerInFlight(socket, answer); }
    // The refused bytes are the body of the request being answered: answered with the refusal, as
    // long as that answer has not started; once it has, nothing can follow it but the close.
    else if (!busy.headersSent) answer();
    else socket.destroy();
  });
}

const REFUSING = Symbol('authproxy.refusing');
type Refusing = Socket & { [REFUSING]?: boolean };

/** node:http's answer being written on this connection (`_httpMessage`, the one its own parse-error path checks), or null. */
function answerInFlight(socket: Socket): ServerResponse | null {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

/**
 * Runs `then` once no answer is being written on the connection. node:http hands the connection to
 * the next queued (pipelined) answer before the finished one emits 'close', so that is checked
 * again; a connection closed meanwhile has nobody left to answer.
 */
function whenNoAnswerInFlight(socket: Socket, then: () => void): void {
  const busy = answerInFlight(socket);
  if (busy === null) { then(); return; }
  busy.once('close', () => { if (!socket.destroyed) whenNoAnswerInFlight(socket, then); });
}

/**
 * Whether the request node:http is reading on this connection has headers parsed and its body
 * not yet complete. `parser.incoming` is node:http's own reference to the message it is reading
 * (kept until the next one starts), so this costs the request path nothing; a socket without it
 * (none parsed yet) has no unfinished body.
 */
function bodyUnfinished(socket: Socket): boolean {
  const incoming = (socket as Socket & { parser?: { incoming?: IncomingMessage | null } | null }).parser?.incoming;
  return incoming != null && !incoming.complete;
}

/**
 * HTTP/2 rapid reset (http/premature-reset.ts) on an inbound listener: the connection is closed,
 * and the warning names the caller as the listener identifies it.
 */
export function guardRapidResets(server: Http2SecureServer | Http2Server, rt: Runtime, identify: Identify): void {
  closeOnPrematureResets(server, (session, tally) => {
    rt.metrics.prematureResetClose('inbound');
    const caller = identify({ socket: session.socket });
    log.warn('closed an HTTP/2 connection whose client reset most of its streams at once (rapid reset)', {
      peer: caller instanceof RequestRefused ? null : caller.principal, address: session.socket.remoteAddress ?? null,
      streams: tally.closed, premature: tally.premature,
    });
  });
}
