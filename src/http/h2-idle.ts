// An HTTP/2 connection with nothing on the wire for the idle timeout is closed, like an idle
// HTTP/1.1 one, but only when no stream is open on it. A gRPC watch or subscription may be quiet
// for longer than any idle timeout while its caller waits for the next event (closed at 90 s,
// such a call failed UNAVAILABLE "Connection dropped"). Envoy keeps a connection with active
// streams past its idle_timeout too. An open connection that is idle gets a PING instead, as gRPC
// keepalive does: the answer is traffic, so the idle clock starts again, and a peer that does not
// answer within PING_TIMEOUT_MS is gone (a host that vanished leaves no FIN), so the connection is
// closed.
import type { Http2Session } from 'node:http2';
import { openStreams } from './h2-streams.ts';

/** gRPC's keepalive timeout: how long a PING may go unanswered. */
export const PING_TIMEOUT_MS = 20_000;

/** Whether `idle` (what a server's 'timeout' event carries) is an HTTP/2 session rather than a socket. */
export function isH2Session(idle: unknown): idle is Http2Session {
  return typeof (idle as Partial<Http2Session>).ping === 'function' && typeof (idle as Partial<Http2Session>).goaway === 'function';
}

/**
 * Called when `session` has been idle for the timeout: closed when no stream is open on it,
 * asked for a PING otherwise (and closed if the PING goes unanswered for `pingTimeoutMs`). The
 * open streams are counted by h2-streams.ts, which the server must keep (`trackStreams`).
 */
export function closeIfIdle(session: Http2Session, pingTimeoutMs = PING_TIMEOUT_MS): void {
  if (session.destroyed) return;
  if (openStreams(session) === 0) { session.destroy(); return; }
  const timer = setTimeout(() => session.destroy(), pingTimeoutMs);
  timer.unref();
  try {
    // (The callback gets an error when the session ends first, which ends the wait as well.)
    session.ping((err) => { clearTimeout(timer); if (err && !session.destroyed) session.destroy(); });
  } catch {
    // Too many PINGs outstanding, or the session is closing: nothing left to wait for.
    clearTimeout(timer);
    session.destroy();
  }
}
