// The open connections of a listener, so a drain can end those still open after its grace
// period: node:http2's server and a plain net.Server have no closeAllConnections() of their own.
import type { Server, Socket } from 'node:net';
import type { Http2SecureServer, Http2Server } from 'node:http2';

/** Starts tracking; the returned function destroys every connection open at the time. */
export function trackConnections(server: Server): () => void {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => { open.add(socket); socket.once('close', () => open.delete(socket)); });
  return () => { for (const socket of open) socket.destroy(); };
}

/**
 * Counts the HTTP/2 sessions open on `server`. Told to close (GOAWAY), a session ends its
 * connection itself once its last stream is done and its last frames are out (node:http2 flushes
 * before it half-closes the socket), so a drain waits for that instead of cutting.
 */
export function countSessions(server: Http2SecureServer | Http2Server): () => number {
  let open = 0;
  server.on('session', (session) => { open++; session.once('close', () => { open--; }); });
  return () => open;
}
