// The open connections of a listener, so a drain can end those still open after its grace
// period: node:http2's server and a plain net.Server have no closeAllConnections() of their own.
import type { Server, Socket } from 'node:net';

/** Starts tracking; the returned function destroys every connection open at the time. */
export function trackConnections(server: Server): () => void {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => { open.add(socket); socket.once('close', () => open.delete(socket)); });
  return () => { for (const socket of open) socket.destroy(); };
}
