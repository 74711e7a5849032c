// One tally of each HTTP/2 connection's streams, shared by the rules that judge a connection by
// its streams: the idle timeout reads how many are open (h2-idle.ts), and the rapid-reset guard
// judges each stream as it closes (premature-reset.ts). Each rule used to keep its own, with its
// own 'stream' and 'close' listener on every request; one tally takes one of each, whichever
// rules a server has.
import type { Http2SecureServer, Http2Server, Http2Session, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';

export interface StreamTally {
  readonly session: ServerHttp2Session;
  /** Streams open now. */
  open: number;
  /** Streams closed so far. */
  closed: number;
  /** Of those, the ones the rapid-reset guard judged premature (it alone counts them). */
  premature: number;
}

/** Called as each stream closes, after the tally has counted it. */
export type OnStreamClose = (stream: TrackedStream, tally: StreamTally) => void;

// On the server, the session and the stream, not in closures: streams are per request, and the
// listeners are shared.
const CLOSE_HOOK = Symbol('h2 stream close hook');
const TALLY = Symbol('h2 stream tally');
const OPENED = Symbol('h2 stream opened at');

interface Hook { onClose: OnStreamClose | null }
type Server = (Http2SecureServer | Http2Server) & { [CLOSE_HOOK]?: Hook };
type TrackedSession = ServerHttp2Session & { [TALLY]?: StreamTally & { readonly hook: Hook } };
export type TrackedStream = ServerHttp2Stream & { [TALLY]?: StreamTally & { readonly hook: Hook }; [OPENED]?: number };

/**
 * Keeps the tally on every session `server` accepts from now on. Called by each rule; the
 * listeners are added once per server. `onClose`, when given, is the server's one close hook.
 */
export function trackStreams(server: Http2SecureServer | Http2Server, onClose?: OnStreamClose): void {
  const s = server as Server;
  let hook = s[CLOSE_HOOK];
  if (hook === undefined) {
    const created: Hook = { onClose: null };
    hook = s[CLOSE_HOOK] = created;
    server.on('session', (session: TrackedSession) => {
      session[TALLY] = { session, open: 0, closed: 0, premature: 0, hook: created };
      session.on('stream', onStream);
    });
  }
  if (onClose) {
    if (hook.onClose !== null) throw new Error('this server already has a stream close hook');
    hook.onClose = onClose;
  }
}

function onStream(this: TrackedSession, stream: TrackedStream): void {
  const tally = this[TALLY]!;
  tally.open++;
  stream[TALLY] = tally;
  stream[OPENED] = Date.now();
  stream.on('close', onStreamClose);
}

function onStreamClose(this: TrackedStream): void {
  const tally = this[TALLY]!;
  tally.open--;
  tally.closed++;
  tally.hook.onClose?.(this, tally);
}

/** Streams open on `session`: 0 for a session of a server that keeps no tally. */
export function openStreams(session: Http2Session): number {
  return (session as TrackedSession)[TALLY]?.open ?? 0;
}

/** When `stream` opened (Date.now()), for a stream of a tracked session. */
export function openedAt(stream: TrackedStream): number { return stream[OPENED]!; }
