// One cleartext port for HTTP/1.1 and HTTP/2 with prior knowledge (h2c, what a gRPC client speaks
// to a plaintext target): the first bytes of a connection tell the HTTP/2 preface from an HTTP/1.1
// request line, and the connection goes to the matching server. Envoy's and Linkerd's cleartext
// listeners detect the protocol the same way.
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';

// "PRI * HTTP/2.0\r\n…": no HTTP/1.1 method starts with PRI, so three bytes decide.
const PREFACE_START = Buffer.from('PRI');

/**
 * Reads the first bytes of `socket` and calls `to` with whether they start the HTTP/2 preface.
 * The bytes read are put back in front of the stream, and the socket is left paused: the server
 * that takes the connection reads them (an HTTP/1.1 server once the socket is resumed; an HTTP/2
 * session takes the buffered bytes itself).
 */
export function dispatchByPreface(socket: Socket, to: (isH2: boolean) => void): void {
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
 * Readies an HTTP/1.1 server that is handed its connections and never listens itself. node:http
 * starts the sweep that enforces headersTimeout (a slow header block, slowloris) and
 * requestTimeout when its server starts listening; without it a client could trickle header lines
 * for ever. close() stops the sweep again.
 */
export function handedConnections(server: HttpServer): HttpServer {
  server.emit('listening');
  return server;
}
