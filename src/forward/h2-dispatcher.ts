// HTTP/2 client hops on node:http2, behind undici's dispatch interface so the response relay
// (upstream.ts) drives it exactly like an undici pool. One multiplexed session per origin: over
// TLS, where ALPN decides (a destination that picks http/1.1 is remembered and its requests go to
// the HTTP/1.1 fallback), or cleartext with prior knowledge (h2c: gRPC apps, gRPC destinations).
//
// Response bodies have no per-chunk timeout here (a gRPC stream may rightly stay quiet for
// minutes); the header timeout, the request deadline and the client's idle timeout still apply.
//
// Why not undici's own HTTP/2 client: with a streamed request body (every proxied request
// body is one) it loses response bodies under concurrency: about one response in five at 50
// concurrent streams ended with UND_ERR_RES_CONTENT_LENGTH_MISMATCH and zero body bytes read
// (undici 8.12.4; node:http2 against the same server: 10 000 of 10 000 intact). It also creates
// its sessions itself, with no way to size the HPACK encoder table, which large tokens need.
import { connect as http2Connect, constants, sensitiveHeaders, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers, type OutgoingHttpHeaders } from 'node:http2';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { connect as netConnect, isIP, type LookupFunction, type Socket } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { H2_HEADER_TABLE_BYTES, H2_MAX_SESSION_MEMORY_MB, H2_STREAM_WINDOW_BYTES, NEVER_INDEXED, isPseudoHeader, widenConnectionWindow } from '../http/h2.ts';
import { forwardableTrailers } from '../http/trailers.ts';
import { H2_NO_SETTINGS, StreamRefused } from './errors.ts';
import { SMALL_BODY_BYTES } from './whole-body.ts';

export interface H2DispatcherOptions {
  /** TLS settings (trust, client certificate) for https:// origins; null for h2c. */
  tls: ConnectionOptions | null;
  connectTimeoutMs: number;
  maxHeaderBytes: number;
  /** Resolves destination names (the boundary-checked lookup on plaintext hops). */
  lookup?: LookupFunction;
  /** Cleartext only: every origin is reached through this Unix socket (an h2c+unix: app). */
  socketPath?: string;
  /** Where requests go for a TLS origin that does not choose h2 by ALPN; null = h2 only. */
  fallback: Dispatcher | null;
  /** A session without traffic for this long takes no new requests and closes once its streams end. */
  idleTimeoutMs?: number;
  /** A request trailer name dropped besides those trailers.ts drops: the inbound --token-header. */
  ownedTrailer?: string | null;
}

/**
 * undici's request options, plus the request trailers of a body read whole before it was sent
 * (a streamed body carries its own, known at its end). undici's HTTP/1.1 client ignores them.
 */
export interface H2DispatchOptions extends Dispatcher.DispatchOptions {
  requestTrailers: IncomingHttpHeaders | undefined;
}

type Pending = () => void;
/** `session` is set once connected; `ready` once the peer's SETTINGS came, and requests may go. */
interface OriginState { session: ClientHttp2Session | null; ready: boolean; http1: boolean; waiting: Pending[]; failed: Error | null }

const { HTTP2_HEADER_STATUS, NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = constants;

export class H2Dispatcher {
  readonly #o: H2DispatcherOptions;
  readonly #origins = new Map<string, OriginState>();
  #closed = false;

  constructor(o: H2DispatcherOptions) { this.#o = o; }

  dispatch(opts: H2DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = String(opts.origin);
    let state = this.#origins.get(origin);
    if (state?.http1) return this.#o.fallback!.dispatch(opts, handler);
    const call = new H2Call(opts, handler, this.#o.ownedTrailer ?? null);
    if (this.#closed) { call.fail(new Error('dispatcher closed')); return false; }
    if (state?.ready && !state.session!.closed && !state.session!.destroyed) { call.send(state.session!); return true; }
    // No state, a failed attempt, or a session that is closing: connect afresh.
    if (!state || state.failed || state.ready) {
      state = { session: null, ready: false, http1: false, waiting: [], failed: null };
      // What cannot even be dialled (an origin URL cannot parse, connect options node refuses)
      // throws here, on the request path: it fails this call, as a refused connection would.
      try { this.#connect(origin, state); } catch (e) { call.fail(e as Error); return false; }
      this.#origins.set(origin, state);
    }
    const s = state;
    s.waiting.push(() => {
      if (s.http1) this.#o.fallback!.dispatch(opts, handler);
      else if (s.ready) call.send(s.session!);
      else call.fail(s.failed ?? new Error('no session'));
    });
    return true;
  }

  #connect(origin: string, state: OriginState): void {
    const url = new URL(origin);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const secure = url.protocol === 'https:';
    const port = Number(url.port || (secure ? 443 : 80));
    const o = this.#o;
    let socket: Socket;
    if (secure) {
      socket = tlsConnect({
        ...o.tls, host, port, ...(o.lookup ? { lookup: o.lookup } : {}),
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ALPNProtocols: o.fallback ? ['h2', 'http/1.1'] : ['h2'],
      });
    } else if (o.socketPath) {
      socket = netConnect({ path: o.socketPath });
    } else {
      socket = netConnect({ host, port, ...(o.lookup ? { lookup: o.lookup } : {}) });
    }
    // (A no-op on a Unix socket, which has no Nagle to turn off.)
    socket.setNoDelay(true);
    const settle = (): void => { const w = state.waiting; state.waiting = []; for (const run of w) run(); };
    // The first failure is the one reported (a timeout, then the close it causes).
    const fail = (err: Error): void => {
      if (state.failed) return;
      clearTimeout(timer);
      state.failed = err;
      if (this.#origins.get(origin) === state) this.#origins.delete(origin);
      settle();
    };
    // Until the peer's SETTINGS: a connection that takes longer has not been set up in time.
    const timer = setTimeout(() => {
      fail(Object.assign(new Error(`connect timeout (${o.connectTimeoutMs} ms)`), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
      socket.destroy();
    }, o.connectTimeoutMs);
    socket.once('error', fail);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.off('error', fail);
      if (secure && (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol !== 'h2') {
        // The destination speaks HTTP/1.1 only: remembered, and served by the fallback pool.
        clearTimeout(timer);
        socket.destroy();
        state.http1 = true;
        settle();
        return;
      }
      const session = http2Connect(origin, {
        createConnection: () => socket,
        // The encoder may use up to what the peer advertises, up to 64 KiB: a large token that
        // repeats on every request is then sent once per connection (never for `authorization`,
        // which nghttp2 does not index).
        maxDeflateDynamicTableSize: H2_HEADER_TABLE_BYTES,
        maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
        settings: { enablePush: false, maxHeaderListSize: o.maxHeaderBytes, initialWindowSize: H2_STREAM_WINDOW_BYTES },
      });
      session.on('error', () => { /* each open stream gets its own error */ });
      const forget = (): void => { if (this.#origins.get(origin) === state) this.#origins.delete(origin); };
      // No request goes out before the peer's SETTINGS: until then nghttp2 assumes no limit on
      // concurrent streams, and a server that allows fewer than the requests waiting for this
      // connection refuses the rest (REFUSED_STREAM). With the peer's limit known, nghttp2 holds
      // the streams beyond it until one ends. (gRPC-Go's client waits the same way.)
      // Over TLS (h2 agreed by ALPN) such a close is the far side's TLS 1.3 refusal of our
      // certificate as often as anything, and stays a socket failure; in cleartext it says the
      // peer does not speak h2c.
      const lost = (): void => {
        fail(Object.assign(new Error('the connection closed before the peer sent its HTTP/2 settings'), { code: secure ? 'UND_ERR_SOCKET' : H2_NO_SETTINGS }));
      };
      session.once('close', lost);
      state.session = session;
      session.once('remoteSettings', () => {
        clearTimeout(timer);
        widenConnectionWindow(session);
        session.off('close', lost);
        session.once('close', forget);
        session.once('goaway', forget);
        // Quiet for a while: new requests get a new session, open streams finish on this one.
        session.setTimeout(o.idleTimeoutMs ?? 30_000, () => { forget(); session.close(); });
        state.ready = true;
        settle();
      });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const sessions = [...this.#origins.values()].map((s) => s.session).filter((s): s is ClientHttp2Session => s !== null);
    this.#origins.clear();
    await Promise.all([
      ...sessions.map((s) => new Promise<void>((resolve) => { if (s.closed) { resolve(); return; } s.close(() => resolve()); })),
      this.#o.fallback?.close(),
    ]);
  }
}

/**
 * One request on a session, reporting to an undici-style handler through a controller.
 *
 * Its listeners come off the stream when the call is over. A finished node:http2 client stream
 * is never freed by a young-generation GC, only by the next full one, so whatever its listeners
 * held (this call, the relay, the client's request and response) was promoted with it. Forwarding
 * to an h2c app at 500 req/s, 26.6 MB of ~115 MB allocated survived scavenges; unhooked, 13.6 MB,
 * all of it node:http2's own (bench/FINDINGS.md, "What the GC had to collect").
 */
class H2Call implements Dispatcher.DispatchController {
  readonly #opts: H2DispatchOptions;
  readonly #handler: Dispatcher.DispatchHandler;
  #stream: ClientHttp2Stream | null = null;
  #done = false;
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  #headersTimer: NodeJS.Timeout | null = null;
  /** The response headers came: the headers timeout no longer applies. */
  #answered = false;
  #trailers: IncomingHttpHeaders = {};
  /** The request body when it is streamed (not a buffer): piped in, and its trailers sent on. */
  #bodyStream: (Readable & { trailers?: IncomingHttpHeaders }) | null = null;
  /** What of it went out, while no more than SMALL_BODY_BYTES: sent again if the peer refuses the stream. */
  #sent: Buffer[] | null = null;
  #sentBytes = 0;

  readonly #ownedTrailer: string | null;

  constructor(opts: H2DispatchOptions, handler: Dispatcher.DispatchHandler, ownedTrailer: string | null) {
    this.#opts = opts; this.#handler = handler; this.#ownedTrailer = ownedTrailer;
    // The handler may abort while the session is still being set up.
    handler.onRequestStart?.(this, {});
  }

  get aborted(): boolean { return this.#aborted; }
  get paused(): boolean { return this.#paused; }
  get reason(): Error | null { return this.#reason; }

  abort(reason: Error): void {
    if (this.#done) return;
    this.#aborted = true; this.#reason = reason;
    this.#stream?.close(NGHTTP2_CANCEL);
    this.fail(reason);
  }
  pause(): void { this.#paused = true; this.#stream?.pause(); }
  resume(): void { this.#paused = false; this.#stream?.resume(); }

  fail(err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    if (this.#bodyStream && this.#stream) this.#bodyStream.unpipe(this.#stream);
    this.#unhook();
    this.#handler.onResponseError?.(this, err);
  }

  send(session: ClientHttp2Session): void {
    if (this.#done) return;
    const opts = this.#opts;
    const body = opts.body as Readable | Buffer | null | undefined;
    const noBody = body === null || body === undefined;
    const bodyStream = noBody || Buffer.isBuffer(body) ? null : body;
    // A streamed body may end with trailers (known only at its end): the stream stays open for
    // them. A body read whole first came with its trailers, if it had any.
    const trailing = bodyStream !== null || (!noBody && hasFields(opts.requestTrailers));
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(requestHeaders(opts), { endStream: noBody, waitForTrailers: trailing });
    } catch (e) { this.fail(e as Error); return; }
    this.#stream = stream;
    if (trailing) stream.once('wantTrailers', this.#onWantTrailers);
    // The wait for the answer starts once the request is all sent, as undici's headersTimeout does
    // on the HTTP/1.1 path (and Envoy's per-try timeout): a client-streaming call that uploads for
    // longer than --upstream-timeout, and is answered at its end, is not cut while it uploads.
    if (opts.headersTimeout) {
      if (noBody) this.#armHeadersTimer(); else stream.once('finish', this.#armHeadersTimer);
    }
    // Body and end listeners are attached once the response headers were handed over: node:http2
    // emits 'response' on the next tick, while DATA already flows into the stream, so a 'data'
    // listener attached up front could see body bytes before the headers.
    stream.once('response', this.#onResponse);
    stream.on('error', this.#onError);
    stream.on('close', this.#onClose);
    if (bodyStream) {
      this.#bodyStream = bodyStream;
      bodyStream.on('error', this.#onBodyError);
      this.#sent = [];
      bodyStream.on('data', this.#onBodyData);
      bodyStream.pipe(stream);
    } else if (body) stream.end(body);
  }

  readonly #armHeadersTimer = (): void => {
    if (this.#done || this.#answered) return;
    this.#headersTimer = setTimeout(() => this.abort(Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' })), this.#opts.headersTimeout!);
  };

  readonly #onResponse = (h: H2Headers): void => {
    this.#answered = true;
    this.#clearTimer();
    if (this.#done) return;
    // The peer answers: it took the stream, which it can no longer refuse. A long call (a bidi
    // stream of small messages) would otherwise hold up to 64 KiB of copies for its whole life.
    this.#stopKeeping();
    const stream = this.#stream!;
    const status = Number(h[HTTP2_HEADER_STATUS]);
    const headers: IncomingHttpHeaders = {};
    for (const name in h) if (!isPseudoHeader(name)) headers[name] = h[name];
    this.#handler.onResponseStart?.(this, status, headers, '');
    if (this.#done) return;
    stream.on('trailers', this.#onTrailers);
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    if (this.#paused) stream.pause();
  };

  readonly #onTrailers = (t: H2Headers): void => { this.#trailers = t as IncomingHttpHeaders; };
  // The request body has been sent: its trailers (none is an empty DATA frame that ends the stream).
  readonly #onWantTrailers = (): void => {
    try {
      this.#stream!.sendTrailers(forwardableTrailers(this.#bodyStream ? this.#bodyStream.trailers : this.#opts.requestTrailers, this.#ownedTrailer));
    } catch (e) { this.fail(e as Error); }
  };
  readonly #onData = (chunk: Buffer): void => { if (!this.#done) this.#handler.onResponseData?.(this, chunk); };
  readonly #onEnd = (): void => {
    if (this.#done) return;
    // node:http2 ends the readable side of a stream whose connection was lost, too (it closes such
    // streams with CANCEL, then pushes the end): no END_STREAM came, the answer was cut short.
    // Relayed as an end, a truncated body would reach the client as a complete one.
    const code = this.#stream!.rstCode;
    if (code !== undefined && code !== NGHTTP2_NO_ERROR) { this.#onClose(); return; }
    this.#done = true;
    this.#unhook();
    this.#handler.onResponseEnd?.(this, this.#trailers);
  };
  readonly #onError = (err: Error): void => this.#failStream(err);
  readonly #onBodyData = (chunk: Buffer): void => {
    this.#sentBytes += chunk.length;
    if (this.#sentBytes <= SMALL_BODY_BYTES) { this.#sent!.push(chunk); return; }
    // Too large to keep: a refusal now is answered, not retried.
    this.#stopKeeping();
  };
  #stopKeeping(): void {
    if (this.#sent === null) return;
    this.#sent = null;
    this.#bodyStream!.off('data', this.#onBodyData);
  }
  /**
   * Fails the call with `err`, or, for a stream the peer refused, with the refusal and the body to
   * send again when it was streamed, has ended, and was all kept.
   */
  #failStream(err: Error): void {
    if (this.#stream!.rstCode !== NGHTTP2_REFUSED_STREAM) { this.fail(err); return; }
    const body = this.#bodyStream;
    this.fail(new StreamRefused(body && body.readableEnded && this.#sent ? Buffer.concat(this.#sent, this.#sentBytes) : null));
  }
  readonly #onBodyError = (err: Error): void => this.abort(err);
  readonly #onClose = (): void => {
    if (this.#done) return;
    this.#failStream(Object.assign(new Error(`stream closed by the peer (HTTP/2 error code ${this.#stream!.rstCode ?? 'unknown'})`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
  };

  // ('wantTrailers' stays: an app may answer before the request body is all sent, and the stream
  // ends only with the trailers. It fires once, when the body is done, and is gone after that.)
  #unhook(): void {
    const stream = this.#stream;
    if (!stream) return;
    stream.off('response', this.#onResponse).off('trailers', this.#onTrailers).off('data', this.#onData)
      .off('end', this.#onEnd).off('close', this.#onClose).off('error', this.#onError).off('finish', this.#armHeadersTimer);
    // Never without an error listener: a late stream error would otherwise be thrown.
    stream.on('error', ignoreError);
    this.#stopKeeping();
    this.#bodyStream?.off('error', this.#onBodyError).on('error', ignoreError);
    // Unread DATA still flows out of the window (a response cut short by a failure).
    stream.resume();
  }

  #clearTimer(): void { if (this.#headersTimer) { clearTimeout(this.#headersTimer); this.#headersTimer = null; } }
}

function ignoreError(): void { /* the call is over; its outcome was already reported */ }

function hasFields(h: IncomingHttpHeaders | undefined): boolean {
  for (const _ in h) return true;
  return false;
}

/** undici-style request options → HTTP/2 request headers (Host becomes :authority). */
function requestHeaders(opts: Dispatcher.DispatchOptions): OutgoingHttpHeaders {
  const url = new URL(String(opts.origin));
  const out: OutgoingHttpHeaders = {
    ':method': opts.method, ':path': opts.path, ':scheme': url.protocol === 'https:' ? 'https' : 'http', ':authority': url.host,
    [sensitiveHeaders]: NEVER_INDEXED,
  };
  const flat = opts.headers as string[] | null | undefined;
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    if (name === 'host') { out[':authority'] = value; continue; }
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (name === 'cookie') out[name] = `${String(prev)}; ${value}`;
    else out[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  return out;
}
