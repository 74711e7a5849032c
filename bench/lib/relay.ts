// A TCP relay that counts the bytes it carries each way and the connections it accepts. Put between
// two sidecars it measures what the hop costs on the wire (TLS records and HTTP/2 frames included)
// without looking inside, and shows whether a connection was reused.
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export interface ByteRelay {
  port: number;
  /** Bytes carried client → target. */
  bytesUp(): number;
  /** Bytes carried target → client. */
  bytesDown(): number;
  /** Connections accepted so far. */
  connections(): number;
  /** Stops accepting and destroys the connections still open. */
  close(): Promise<void>;
}

export async function startByteRelay(target: { host: string; port: number }): Promise<ByteRelay> {
  let up = 0; let down = 0; let connections = 0;
  const open = new Set<Socket>();
  // allowHalfOpen on both legs: a FIN from one side is passed on (pipe ends the other leg) instead of
  // closing the whole connection, so the relay behaves like the direct connection it stands in for.
  // noDelay on both legs: with Nagle, each small write waited for the peer's delayed ACK (~25 ms
  // a request in a test that sends requests one after another).
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    connections++;
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    const teardown = (): void => { client.destroy(); upstream.destroy(); };
    for (const s of [client, upstream]) {
      open.add(s);
      s.once('close', () => open.delete(s));
      // A reset or refused leg takes the other down (a clean FIN is passed on by pipe instead).
      s.on('error', teardown);
    }
    client.on('data', (d: Buffer) => { up += d.length; });
    upstream.on('data', (d: Buffer) => { down += d.length; });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  return {
    port: (server.address() as AddressInfo).port,
    bytesUp: () => up, bytesDown: () => down, connections: () => connections,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); for (const s of open) s.destroy(); }),
  };
}
