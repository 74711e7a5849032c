// One cleartext port for HTTP/1.1 and HTTP/2 with prior knowledge (h2c, what a gRPC client speaks
// to a plaintext target): the first bytes of a connection tell the HTTP/2 preface from an HTTP/1.1
// request line, and the connection goes to the matching server. Envoy's and Linkerd's cleartext
// listeners detect the protocol the same way.
import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';

// "PRI * HTTP/2.0\r\n…": no HTTP/1.1 method starts with PRI, so three bytes decide.
const PREFACE_START = Buffer.from('PRI');

/**
 * Reads the first bytes of `socket` and calls `to` with whether they start the HTTP/2 preface.
 * The bytes read are put back in front of the stream, and the socket is left paused: the server
 * that takes the connection reads them (an HTTP/1.1 server once the socket is resumed; an HTTP/2
 * session takes the buffered bytes itself).
 */
function dispatchByPreface(socket: Socket, to: (isH2: boolean) => void): void {
  let head: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    if (head.length < PREFACE_START.length && PREFACE_START.subarray(0, head.length).equals(head)) return;
    socket.off('data', onData);
    socket.pause();
    socket.unshift(head);
    to(head.subarray(0, PREFACE_START.length).equals(PREFACE_START));
  };
  socket.on('data', onData);
}

/**
 * Serves `listener`'s connections with `http1` or `h2c`, by their first bytes. A connection that
 * sends nothing within `headerTimeoutMs` is cut, like a slow header block (slowloris).
 */
export function serveByPreface(listener: NetServer, headerTimeoutMs: number, http1: HttpServer, h2c: Http2Server): void {
  // node:http starts the sweep that enforces headersTimeout (a header block trickled line by line)
  // and requestTimeout when its server starts listening; one that is handed its connections never
  // does, unless told it is. Its close() stops the sweep again.
  http1.emit('listening');
  listener.on('connection', (socket: Socket) => {
    socket.setTimeout(headerTimeoutMs, () => socket.destroy());
    dispatchByPreface(socket, (isH2) => {
      socket.setTimeout(0);
      if (isH2) { h2c.emit('connection', socket); return; }
      http1.emit('connection', socket);
      // The HTTP/1.1 parser reads what was put back only once the socket flows again (the HTTP/2
      // session takes its buffered bytes itself).
      socket.resume();
    });
  });
}
