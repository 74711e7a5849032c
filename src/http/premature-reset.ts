// HTTP/2 "rapid reset" (CVE-2023-44487): a client opens streams and resets each at once. A reset
// stream no longer counts against the concurrent-stream limit, so one connection can make the
// sidecar authorize, audit and forward any number of requests the client never waits for, and
// the app begin each of them (20,000 open-and-reset streams in 2.5 s put 1,100 requests to the app
// and kept the connection open). The rule is Envoy's: a stream the client resets before any
// answer and within a second of opening it is premature, and a connection on which premature
// resets reach half of the streams closed, once there are enough streams to judge (or as soon as
// they alone reach half of that number), is a connection to close. An ordinary client's
// cancellations (a deadline, a user who navigates away) are a small share of its streams.
import { constants, type Http2SecureServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import { openedAt, trackStreams, type StreamTally, type TrackedStream } from './h2-streams.ts';

/** Streams to judge a connection by; premature resets alone reaching half of it end it sooner. */
export const PREMATURE_RESET_STREAMS = 500;
/** A stream reset within this of opening, before any answer, was reset prematurely. */
export const PREMATURE_RESET_MS = 1000;

const { NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = constants;

/**
 * Closes (GOAWAY ENHANCE_YOUR_CALM) each HTTP/2 connection of `server` whose client resets its
 * streams prematurely, after telling `onAbuse` (to log and count it).
 */
export function closeOnPrematureResets(server: Http2SecureServer | Http2Server,
  onAbuse: (session: ServerHttp2Session, tally: Readonly<StreamTally>) => void): void {
  trackStreams(server, (stream: TrackedStream, tally: StreamTally): void => {
    // (Reset before any answer: the sidecar resets only streams it has answered, or that the client left.)
    if (stream.rstCode === NGHTTP2_NO_ERROR || stream.headersSent || Date.now() - openedAt(stream) >= PREMATURE_RESET_MS) return;
    tally.premature++;
    const judged = tally.closed < PREMATURE_RESET_STREAMS ? PREMATURE_RESET_STREAMS : tally.closed;
    if (tally.premature * 2 < judged) return;
    const session = tally.session;
    if (session.closed || session.destroyed) return;
    onAbuse(session, tally);
    // GOAWAY, then a close once the streams open are done: the client reads why. Destroyed at once,
    // the socket would be closed with the client's frames unread, and a reset (RST) lose the GOAWAY.
    session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    session.close();
    setTimeout(() => { if (!session.destroyed) session.destroy(); }, GRACE_MS).unref();
  });
}

/** How long a closed connection's open streams get to end before the connection is cut. */
const GRACE_MS = 1000;
