// HTTP/2 abuse for the tests: rapid reset (CVE-2023-44487) from a real node:http2 client, for the
// tests of each listener's guard (src/http/premature-reset.ts), and the count of connections the
// guard has closed; and raw frames, for peers no real client would be (floods, a silent peer).
import { constants as h2, type ClientHttp2Session } from 'node:http2';
import { PREMATURE_RESET_STREAMS } from '../../src/http/premature-reset.ts';
import { waitFor } from './wait.ts';

/**
 * Opens streams and resets each at once, in bursts of 50 with a pause to read between them (the
 * client would not notice the GOAWAY otherwise), until the connection is told to go away and closed.
 * `extra` adds to or replaces each request's headers (an :authority, a :path the policy allows).
 */
export async function floodWithResets(c: ClientHttp2Session, extra: Record<string, string>): Promise<{ goaway: number | null; opened: number }> {
  let goaway: number | null = null;
  c.on('goaway', (code: number) => { goaway = code; });
  let opened = 0;
  while (goaway === null && !c.destroyed && opened < 4 * PREMATURE_RESET_STREAMS) {
    for (let i = 0; i < 50; i++, opened++) {
      const stream = c.request({ ':method': 'GET', ':path': `/orders/${opened}`, ...extra });
      stream.on('error', () => {});
      stream.close(h2.NGHTTP2_CANCEL);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await waitFor(() => goaway !== null && c.destroyed, 'the GOAWAY and the close');
  return { goaway, opened };
}

export async function rapidResetCloses(adminPort: number, direction: 'inbound' | 'outbound'): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return Number(new RegExp(`^authproxy_h2_rapid_reset_closes_total\\{direction="${direction}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
}

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const Type = { HEADERS: 1, SETTINGS: 4, PING: 6, CONTINUATION: 9 } as const;
export type FrameType = typeof Type[keyof typeof Type];

export function frame(type: FrameType, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type; head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK literal field without indexing, new name (RFC 7541 §6.2.2); names and values under 128 bytes. */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** The type of each whole frame in `bytes` (what a server sent, read from its first frame on). */
export function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) types.push(bytes[at + 3]!);
  return types;
}
