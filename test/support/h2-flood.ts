// HTTP/2 rapid reset (CVE-2023-44487) from a real node:http2 client, for the tests of each listener's
// guard (src/http/premature-reset.ts), and the count of connections the guard has closed.
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
