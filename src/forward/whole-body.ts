// Small request bodies are read whole before the request goes to the app, then sent as one buffer.
//
// Why: handed a request stream, undici's HTTP/1.1 writer keeps each exchange (its request, the
// relay, the client's request and response) reachable past the next young-generation GC. At
// 500 req/s with 1 KiB bodies, 18–29% of what a request allocated survived its scavenge and was
// promoted; the old generation then filled every ~2 s, scavenges took 2–14 ms and incremental
// marking steps up to 20 ms, and those pauses were the inbound p99 (11–27 ms). Sent as a buffer,
// about 1% survives, scavenges take ~0.4 ms, the p99 drops to 3.7–5.3 ms (the app's own is 3–4)
// and a request costs ~20% less CPU (bench/FINDINGS.md, "Tail latency, GC and the shared core").
// A buffered body can also be sent again when a retry is safe.
//
// Only a declared length up to SMALL_BODY_BYTES is read first: the size of HTTP/2's default
// stream window, which a client may send before a proxy grants more anyway. nginx reads every
// body whole before proxying by default (`proxy_request_buffering on`); larger and undeclared
// bodies (chunked, gRPC streams) are still streamed with backpressure. A client that stops short
// never reaches the app; one still sending at the request deadline gets 408 request_timeout.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

export const SMALL_BODY_BYTES = 65_535;

/** The declared body length when the body is small enough to read first, else -1. */
export function smallDeclaredLength(req: IncomingMessage | Http2ServerRequest): number {
  const declared = req.headers['content-length'];
  if (declared === undefined) return -1;
  const n = Number(declared);
  return n > 0 && n <= SMALL_BODY_BYTES ? n : -1;
}

/** A body read whole, or why not: the client left or stopped short, the deadline came, the limit was passed. */
export type WholeBody = Buffer | 'closed' | 'timeout' | 'too_large';

/** Reads a body of declared length (see readBody). */
export function readWholeBody(req: IncomingMessage | Http2ServerRequest, length: number, deadlineAt: number): Promise<WholeBody> {
  return readBody(req, length, length, deadlineAt);
}

/**
 * Reads a request body whole. `expected` is its declared length (less than that means the client
 * stopped short: 'closed'), or null for a body of undeclared size, which is read up to `limit`
 * bytes: past it, 'too_large', and the rest is read and discarded so that the refusal can still
 * be written on the connection. 'timeout' when it was not all in by `deadlineAt`, 'closed' when
 * the client went away first. Serves both the small-body path and --max-body-bytes
 * (body-limit.ts), so both answer a stalled body at the request deadline.
 */
export function readBody(req: IncomingMessage | Http2ServerRequest, expected: number | null, limit: number, deadlineAt: number): Promise<WholeBody> {
  return new Promise((resolve) => {
    let first: Buffer | null = null;
    let chunks: Buffer[] | null = null;
    let size = 0;
    const timer = setTimeout(() => done('timeout'), Math.max(0, deadlineAt - Date.now()));
    function onData(c: Buffer): void {
      size += c.length;
      if (size > limit) {
        done('too_large');
        req.resume();
        return;
      }
      // Most small bodies arrive in one chunk: no copy then.
      if (first === null) first = c;
      else (chunks ??= [first]).push(c);
    }
    function onEnd(): void {
      if (expected !== null && size !== expected) { done('closed'); return; }
      done(chunks === null ? (first ?? Buffer.alloc(0)) : Buffer.concat(chunks, size));
    }
    function onClose(): void { done('closed'); }
    function done(r: WholeBody): void {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onClose).off('close', onClose);
      // A stream left unread is never left without an error listener.
      if (!Buffer.isBuffer(r)) req.on('error', ignoreError);
      resolve(r);
    }
    req.on('data', onData).once('end', onEnd).once('error', onClose).once('close', onClose);
  });
}

function ignoreError(): void { /* the refusal (or the client's going away) is already handled */ }
