// Forwarding to one upstream (the app) over a keep-alive pool, streaming both bodies: HTTP/1.1,
// or HTTP/2 with prior knowledge for an `h2c://` or `h2c+unix:` app (one multiplexed connection,
// as gRPC wants; h2-dispatcher.ts, behind the same dispatch interface).
// Built on undici's dispatch API: the response is relayed chunk by chunk with backpressure
// (pause the upstream when the client's socket is full), trailers included, with no
// intermediate Readable per request. A try that fails before any response byte may be tried
// again (retry.ts decides), within the request's deadline and the pool's retry budget.
import type { IncomingMessage, ServerResponse, IncomingHttpHeaders } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Pool } from './undici.ts';
import type { Upstream as UpstreamTarget } from '../config/address.ts';
import { connectionTokens, isConnectionField } from '../http/hop-by-hop.ts';
import { BodyNotReceived, DeadlineExceeded, StreamRefused, classifyUpstreamError, type TlsFailure } from './errors.ts';
import { backoffMs, isRetryable, type RetryBudget } from './retry.ts';
import { formatGrpcTimeout } from './deadline.ts';
import { H2Dispatcher, type H2DispatchOptions } from './h2-dispatcher.ts';
import { hasBody } from './body-limit.ts';
import { readWholeBody, smallDeclaredLength } from './whole-body.ts';
import type { ErrorCode } from '../errors.ts';

export interface ForwardOutcome {
  /** Status sent to the client (the app's, or the refusal's). */
  status: number;
  /** Set when the sidecar answered itself because forwarding failed. */
  error: { code: ErrorCode; message: string } | null;
  /** Tries made (1 = no retry). */
  tries: number;
}

export interface ForwardCall {
  req: IncomingMessage | Http2ServerRequest;
  res: ServerResponse | Http2ServerResponse;
  /** Origin-form target sent to the app. */
  path: string;
  /** Flat [name, value, …] request headers for the app. */
  headers: string[];
  /** Epoch ms: no try starts after it, and a try still waiting for headers is cut at it. */
  deadlineAt: number;
  /** Indexes in `headers` of values to refresh with the time left at each try (-1 = none). */
  deadlineValueAt: number;
  grpcTimeoutValueAt: number;
  /** Epoch ms: the caller's own gRPC deadline (deadline.ts), whose time left `grpc-timeout` carries. */
  grpcDeadlineAt: number;
  /** A body already read in full (a chunked body checked against --max-body-bytes). */
  bufferedBody?: Buffer | undefined;
  /** A failure before any response byte: the caller writes the refusal (`tls`: why a TLS hop failed). */
  onError(code: ErrorCode, message: string, tls?: TlsFailure): void;
  onSettled(o: ForwardOutcome): void;
}

export interface UpstreamOptions {
  /** Per try: the app must send response headers (and each body chunk) within this. */
  timeoutMs: number;
  connectTimeoutMs: number;
  maxHeaderBytes: number;
  maxRetries: number;
  retryBudget: RetryBudget;
  onRetry?: (result: 'attempted' | 'budget_exhausted') => void;
  /** Inbound: the token header (--token-header), which a caller may not send on in a request trailer either. */
  ownedTrailer?: string;
}

/** What the relay needs of a connection pool: undici's dispatch (a Pool, an Agent, or H2Dispatcher). */
export interface Dispatches {
  dispatch(opts: H2DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
}

export class UpstreamPool {
  readonly pool: Dispatches;
  readonly origin: string;
  readonly opts: UpstreamOptions;

  constructor(target: UpstreamTarget, opts: UpstreamOptions) {
    this.origin = target.kind === 'tcp' ? target.origin : 'http://localhost';
    this.opts = opts;
    const socket = target.kind === 'unix' ? { socketPath: target.socketPath } : {};
    this.pool = target.h2c
      ? new H2Dispatcher({ tls: null, connectTimeoutMs: opts.connectTimeoutMs, maxHeaderBytes: opts.maxHeaderBytes, fallback: null, ownedTrailer: opts.ownedTrailer ?? null, ...socket })
      : new Pool(this.origin, {
        ...socket,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        connectTimeout: opts.connectTimeoutMs,
        keepAliveTimeout: 30_000,
        // Response headers from the app may carry large cookies; keep the same bound as requests.
        maxHeaderSize: opts.maxHeaderBytes,
      });
  }

  forward(call: ForwardCall): void {
    const body: Readable | Buffer | null = call.bufferedBody ?? (hasBody(call.req) ? call.req : null);
    this.opts.retryBudget.recordRequest();
    new ResponseRelay(this.pool, this.origin, call, body, this.opts).start();
  }

  close(): Promise<void> { return this.pool.close(); }
}

/** Relays one request's response into the client's ServerResponse, across tries. */
export class ResponseRelay implements Dispatcher.DispatchHandler {
  private readonly dispatcher: Dispatches;
  private readonly origin: string;
  private readonly call: ForwardCall;
  private body: Readable | Buffer | null;
  private readonly opts: UpstreamOptions;
  private controller: Dispatcher.DispatchController | null = null;
  private settled = false;
  private tries = 0;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private awaitingDrain = false;

  constructor(dispatcher: Dispatches, origin: string, call: ForwardCall, body: Readable | Buffer | null, opts: UpstreamOptions) {
    this.dispatcher = dispatcher; this.origin = origin; this.call = call; this.body = body; this.opts = opts;
    // A client that goes away aborts the upstream request instead of leaving it running. (on, not
    // once: settle() takes it off, and once() would wrap it in a closure for every request.)
    call.res.on('close', this.onClientClose);
  }

  // Taken off again once the exchange is settled: an HTTP/2 response lives until the next full GC
  // (see H2Call in h2-dispatcher.ts), and through this listener so would the whole exchange.
  private readonly onClientClose = (): void => { if (!this.settled) this.controller?.abort(new Error('client closed the connection')); };

  start(): void {
    const call = this.call;
    if (this.tries === 0 && this.body === call.req) {
      const length = smallDeclaredLength(call.req);
      if (length > 0) { this.readBodyFirst(length); return; }
    }
    const left = call.deadlineAt - Date.now();
    if (left <= 0) { this.fail(new DeadlineExceeded()); return; }
    this.tries++;
    // undici's timers are coarse (about a second) by design; a deadline shorter than the per-try
    // timeout gets a precise timer of its own, so a caller's 200 ms means 200 ms.
    if (left < this.opts.timeoutMs) this.armDeadline(left);
    if (call.deadlineValueAt >= 0) call.headers[call.deadlineValueAt] = String(Math.floor(left));
    if (call.grpcTimeoutValueAt >= 0) call.headers[call.grpcTimeoutValueAt] = formatGrpcTimeout(call.grpcDeadlineAt - Date.now());
    try {
      this.dispatcher.dispatch({
        origin: this.origin, path: call.path, method: call.req.method ?? 'GET', headers: call.headers, body: this.body,
        headersTimeout: Math.min(this.opts.timeoutMs, left),
        // A body read whole was read to its end, trailers included (an HTTP/2 hop sends them on).
        requestTrailers: Buffer.isBuffer(this.body) ? call.req.trailers : undefined,
      }, this);
    } catch (e) {
      // A dispatcher that throws instead of reporting through the handler fails this call (502),
      // not the process: thrown here it would be uncaught, and take every other request down with
      // it. Not retried: the same request would throw the same way.
      this.clearDeadline();
      if (!this.settled) this.fail(e as Error);
    }
  }

  /** A small body is read whole, then sent as one buffer (whole-body.ts says why). */
  private readBodyFirst(length: number): void {
    readWholeBody(this.call.req, length, this.call.deadlineAt).then((body) => {
      // (As when the client leaves mid-request on a streamed body: the try fails, nothing is sent.)
      // ('too_large' would be more bytes than the client declared: its own framing broken, as good as gone.)
      if (body === 'closed' || body === 'too_large') { this.fail(new Error('client closed the connection')); return; }
      if (body === 'timeout') { this.fail(new BodyNotReceived()); return; }
      this.body = body;
      this.start();
    }, (err: unknown) => this.fail(err as Error));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void { this.controller = controller; }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    // An interim answer (102 Processing, 103 Early Hints) is not relayed, as Envoy and nginx do by
    // default: the final answer follows, and written now it would take its place (HTTP/2 refuses
    // the status outright). The deadline keeps running until that final answer: undici restarts
    // its per-try headers timeout at each interim answer, so an app sending 102 every few seconds
    // would otherwise hold the caller past --request-timeout; the deadline gets its own timer then.
    if (statusCode < 200) {
      if (this.deadlineTimer === null) this.armDeadline(Math.max(0, this.call.deadlineAt - Date.now()));
      return;
    }
    this.clearDeadline();
    // Hop-by-hop, and whatever the app named in its Connection header (RFC 9110 §7.6.1): a header
    // the app meant for this hop only (a secret for its proxy, say) goes no further.
    const named = connectionTokens(headers.connection as string | undefined);
    for (const name of Object.keys(headers)) if (isConnectionField(name, named)) delete headers[name];
    const res = this.call.res;
    if (headers['grpc-status'] !== undefined) {
      // A gRPC status in the headers is a trailers-only response (an error, usually). Held back
      // and written by end(), it leaves as one HEADERS frame that ends the stream, which is the
      // only form a gRPC client reads a status from; written now, it would be taken for metadata.
      res.statusCode = statusCode;
      for (const name in headers) res.setHeader(name, headers[name]!);
      return;
    }
    // HTTP/2 has no reason phrase.
    if (statusMessage && this.call.req.httpVersionMajor !== 2) (res as ServerResponse).writeHead(statusCode, statusMessage, headers);
    else (res as ServerResponse).writeHead(statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    // Backpressure: the app is paused while the client's socket is full. The 'drain' listener is
    // added only then, not for every response (most never fill the socket).
    if (!(this.call.res as ServerResponse).write(chunk) && !this.awaitingDrain) {
      this.awaitingDrain = true;
      controller.pause();
      this.call.res.once('drain', () => { this.awaitingDrain = false; controller.resume(); });
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    const res = this.call.res;
    for (const _ in trailers) { res.addTrailers(trailers as Record<string, string>); break; }
    // (end() also writes held-back trailers-only headers; see onResponseStart.)
    res.end();
    this.settle(null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.clearDeadline();
    if (this.settled) return;
    const res = this.call.res;
    if (res.headersSent) {
      // Bytes already went out: never retried; the only honest signal left is to cut the client.
      res.destroy(err);
      this.settle(null);
      return;
    }
    if (this.mayRetry(err)) {
      const wait = backoffMs(this.tries - 1);
      if (Date.now() + wait < this.call.deadlineAt) { setTimeout(() => this.start(), wait); return; }
    }
    this.fail(err);
  }

  /** Aborts the try in flight when the request's deadline passes, `ms` from now. */
  private armDeadline(ms: number): void {
    this.deadlineTimer = setTimeout(() => { this.deadlineTimer = null; this.controller?.abort(new DeadlineExceeded()); }, ms);
  }

  private clearDeadline(): void {
    if (this.deadlineTimer) { clearTimeout(this.deadlineTimer); this.deadlineTimer = null; }
  }

  private mayRetry(err: Error): boolean {
    if (this.tries > this.opts.maxRetries || clientGone(this.call.res)) return false;
    const body = this.body;
    // A buffer can be sent again; a stream only if not a byte of it was read yet, or if the
    // refused try kept all it sent (h2-dispatcher.ts).
    const replay = err instanceof StreamRefused ? err.replayBody : null;
    const intact = body === null || Buffer.isBuffer(body) || replay !== null || (body === this.call.req && !this.call.req.readableDidRead);
    if (!isRetryable(err, this.call.req.method ?? 'GET', intact)) return false;
    if (!this.opts.retryBudget.tryAcquire()) { this.opts.onRetry?.('budget_exhausted'); return false; }
    this.opts.onRetry?.('attempted');
    // (Sent as a body read whole, with the request's trailers: the stream has ended.)
    if (replay !== null) this.body = replay;
    return true;
  }

  private fail(err: Error): void {
    const failure = classifyUpstreamError(err);
    this.call.onError(failure.code, failure.message, failure.tls);
    this.settle(failure);
  }

  private settle(error: ForwardOutcome['error']): void {
    if (this.settled) return;
    this.settled = true;
    this.call.res.off('close', this.onClientClose);
    this.call.onSettled({ status: this.call.res.statusCode, error, tries: this.tries });
  }
}

function clientGone(res: ServerResponse | Http2ServerResponse): boolean { return res.destroyed || res.writableEnded; }
