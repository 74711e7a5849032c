// Lingering close for an HTTP/1.1 connection node:http is about to close while the client may
// still be sending. A request that expected `100 Continue` and was refused gets its answer without
// the 100, and node:http then closes the connection (the client may or may not send its body).
// Closing a socket with unread bytes makes the kernel send a reset, and a client still uploading
// (one that did not wait for the 100) could lose the answer to it. So, as nginx (lingering_close)
// and Envoy (delayed close) do: the answer goes out, then our side of the connection is shut,
// then what the client still sends is read and thrown away until it closes, for at most
// LINGER_MS. Requests it pipelines meanwhile are read and dropped, never handled: the answer
// said the connection closes.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

export const LINGER_MS = 5000;

/** node:http's parser on its socket (`socket.parser`, as node:http's own upgrade path uses it). */
interface ServerParser { onIncoming: (req: IncomingMessage, keepAlive: boolean) => number }
type HttpSocket = Socket & { parser?: ServerParser | null };

/** Arms the lingering close on this connection, used if node:http closes it after an answer. */
export function lingerOnClose(socket: Socket): void {
  const s = socket as HttpSocket;
  if (!s.parser) return;
  s.destroySoon = function lingeringClose(this: HttpSocket): void {
    // Later requests are read (so their bytes are consumed) and dropped.
    if (this.parser) {
      this.parser.onIncoming = (req: IncomingMessage): number => {
        (req as IncomingMessage & { upgrade: boolean }).upgrade = false;
        req.resume();
        return 0;
      };
    }
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
    // node:http stops reading when its writes back up; with nothing more to write, read on.
    this.resume();
  };
}
