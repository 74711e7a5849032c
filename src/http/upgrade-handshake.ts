// An upgrade's far side, for both directions: the app answering a caller's upgrade (inbound), and
// a destination answering the app's (outbound). The handshake is sent with node:http's client so
// that the answer is parsed, not assumed: only a 101 hands over the far side's socket to be
// spliced. Anything else is a whole HTTP response to relay, after which the near side must not
// stay wired to the far one: a server that ignores an Upgrade it does not speak answers 200 and
// keeps the connection alive, and would parse the near side's next bytes as requests nobody
// decided on (inbound: past policy and with forged identity headers; outbound: on a connection
// carrying the workload's identity). Envoy waits for the 101 the same way.
//
// relayUpgrade is the HTTP/1.1 Upgrade from end to end (the near side a raw socket); a WebSocket
// over HTTP/2 (inbound/websocket-h2.ts) uses sendHandshake alone and answers on its stream.
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline, type Duplex } from 'node:stream';
import { request } from './node-http.ts';
import { connectionTokens, isConnectionField } from './hop-by-hop.ts';
import { refuseRaw } from './refuse.ts';
import { ERROR_STATUS, type ErrorCode } from '../errors.ts';
import { classifyUpstreamError, type TlsFailure } from '../forward/errors.ts';
import type { Runtime } from '../runtime/state.ts';

export type HandshakeFailure = Extract<ErrorCode, 'upstream_unavailable' | 'upstream_timeout' | 'boundary_violation'>;

/** Who answers the handshake, and how it is reached. */
export interface HandshakeTarget {
  /** As messages name it: "the app", "destination payments.example.com:443". */
  name: string;
  /** Whose metrics the handshake counts in. */
  direction: 'inbound' | 'outbound';
  /**
   * How node:http reaches it: a host and port or a Unix socket (the app), or a connection made by
   * the caller (a destination: TLS, boundary-checked lookup). A connection ready means TCP
   * connected, or for TLS the TLS handshake done.
   */
  connect: { host: string; port: number } | { socketPath: string } | { createConnection: () => Socket };
  /** No answer within this: upstream_timeout. */
  timeoutMs: number;
  /** What a failed TLS connection's message adds (the outbound listener's: why TLS, checked against what). */
  tlsHint?: (kind: TlsFailure) => string;
}

export interface HandshakeAnswer {
  /** The far side answered 101; `head` is what it sent right behind. Returns the status the caller got. */
  upgraded(answer: IncomingMessage, far: Socket, head: Buffer): number;
  /** The far side answered anything else: a refusal, or a response that ignored the Upgrade. */
  refused(answer: IncomingMessage): void;
  /** No answer: unreachable, outside the boundary, hung up first, or let `timeoutMs` pass. */
  failed(code: HandshakeFailure, message: string): void;
}

/**
 * Sends the handshake; exactly one of `on`'s callbacks follows. Until then the upgrade is a
 * request in flight (a drain waits for it) bounded by `target.timeoutMs`; the open connection that
 * may follow is neither. Destroying the returned request (the caller left) ends in `failed`.
 */
export function sendHandshake(rt: Runtime, target: HandshakeTarget, method: string, path: string, headers: string[], what: string,
  on: HandshakeAnswer): ClientRequest {
  const start = performance.now();
  // No agent: a connection that may be handed over for good is never pooled (an agent would also
  // ignore createConnection).
  const farReq = request({ ...target.connect, method, path, headers, setHost: false, ...('createConnection' in target.connect ? {} : { agent: false }) });
  let settled = false;
  let connected = false;
  let timedOut = false;
  let error: Error | null = null;
  const settle = (status: number): void => {
    settled = true;
    rt.inFlight--;
    rt.metrics.request(target.direction, 'allow', status, (performance.now() - start) / 1000);
  };
  rt.inFlight++;
  // The whole answer's time, not the socket's idle time: a far side that trickles its answer a
  // byte at a time would otherwise hold the handshake (and a drain) past the deadline for good.
  const deadline = setTimeout(() => { timedOut = true; farReq.destroy(); }, target.timeoutMs);
  farReq.once('socket', (s: Socket) => s.once('encrypted' in s ? 'secureConnect' : 'connect', () => { connected = true; }));
  farReq.on('upgrade', (answer: IncomingMessage, far: Socket, head: Buffer) => {
    clearTimeout(deadline);
    // node:http's client has let go of the socket; an error on it would otherwise be thrown.
    far.on('error', () => far.destroy());
    settle(on.upgraded(answer, far, head));
  });
  farReq.on('response', (answer: IncomingMessage) => {
    clearTimeout(deadline);
    settle(answer.statusCode!);
    on.refused(answer);
  });
  // 'close' follows every error (and an abort that raises none), so it answers for all of them.
  farReq.on('error', (e) => { error ??= e; });
  farReq.once('close', () => {
    clearTimeout(deadline);
    if (settled) return;
    const f = failure();
    settle(ERROR_STATUS[f.code]);
    on.failed(f.code, f.message);
  });
  farReq.end();
  return farReq;

  function failure(): { code: HandshakeFailure; message: string } {
    if (timedOut) return { code: 'upstream_timeout', message: `${target.name} did not answer ${what} within ${target.timeoutMs} ms` };
    if (connected) return { code: 'upstream_unavailable', message: `${target.name} closed the connection before answering ${what}` };
    if (error === null) return { code: 'upstream_unavailable', message: `${target.name} is unreachable` };
    // Connecting failed (refused, a connect timeout, TLS verification, an address outside every
    // boundary): read as the forwarder reads it, so an upgrade fails with a request's code.
    const c = classifyUpstreamError(error);
    const hint = c.tls !== undefined && target.tlsHint ? target.tlsHint(c.tls) : '';
    return { code: c.code as HandshakeFailure, message: c.message.replace('the app', target.name) + hint };
  }
}

/** The far side's answer's header fields, as sent ([name, value, …]), minus those that describe its connection. */
export function endToEndFields(answer: IncomingMessage): string[] {
  const raw = answer.rawHeaders;
  const named = connectionTokens(answer.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!isConnectionField(raw[i]!.toLowerCase(), named)) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/**
 * After its 101 the caller would speak HTTP/2 straight to the far side, every request past the
 * sidecar; both listeners offer HTTP/2 another way (inbound by ALPN, outbound with prior knowledge).
 */
export function upgradesToH2c(value: string | undefined): boolean {
  return value !== undefined && /(?:^|,)\s*h2c\s*(?:,|$)/i.test(value);
}

// A protocol that carries HTTP itself after the 101 (h2c and its drafts, h2, HTTP/x): every
// request on the connection would then pass the sidecar unchecked, so none is ever accepted.
const CARRIES_HTTP = /^(?:h2|http$)/;

/**
 * Why an Upgrade request is refused, or null: every protocol it offers must be one of `allowed`
 * (--upgrade-protocols, names compared without case or version; null = any), and none may carry
 * HTTP. Envoy, likewise, upgrades only to the types its upgrade_configs name.
 */
export function upgradeRefusal(value: string | undefined, allowed: ReadonlySet<string> | null): string | null {
  const offers = (value ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  if (offers.length === 0) return 'an Upgrade request must name the protocol it upgrades to';
  for (const offer of offers) {
    const name = offer.split('/')[0]!.trim().toLowerCase();
    const shown = JSON.stringify(offer.length > 40 ? `${offer.slice(0, 40)}…` : offer);
    if (CARRIES_HTTP.test(name)) return `Upgrade: ${shown} is not accepted: after the 101 every request on the connection would pass the sidecar unchecked`;
    if (allowed !== null && !allowed.has(name)) return `Upgrade: ${shown} is not accepted (--upgrade-protocols: ${[...allowed].join(',')})`;
  }
  return null;
}

/**
 * How much a caller may send ahead of the far side's answer before the sidecar stops reading it
 * (TCP then holds the rest back): enough for a WebSocket client's first frames, not a way to make
 * the sidecar buffer a body.
 */
const EARLY_BYTES_LIMIT = 64 * 1024;

/**
 * An HTTP/1.1 Upgrade, decided and allowed: sends the handshake to `target` and answers `socket`
 * (the caller's connection, `head` what it sent behind its request) with what comes back. What
 * the caller sends behind its handshake (a WebSocket frame sent ahead, or a pipelined request) is
 * held until the far side has answered, and passed on only if that answer is 101. Reading it,
 * rather than leaving it in the socket, is also how a caller that leaves is noticed.
 */
export function relayUpgrade(rt: Runtime, socket: Duplex, head: Buffer, target: HandshakeTarget,
  handshake: { method: string; path: string; headers: string[]; requestId: string }): void {
  const early: Buffer[] = head.length > 0 ? [head] : [];
  let earlyBytes = head.length;
  const hold = (chunk: Buffer): void => {
    early.push(chunk);
    earlyBytes += chunk.length;
    if (earlyBytes > EARLY_BYTES_LIMIT) socket.pause();
  };
  let waiting = true;
  let spliced: Socket | null = null;
  /** Whatever the answer, nothing more of the caller's is held; unless spliced, it is read and dropped. */
  const answered = (): void => {
    waiting = false;
    socket.off('data', hold);
  };

  const farReq = sendHandshake(rt, target, handshake.method, handshake.path, handshake.headers, 'the upgrade', {
    upgraded(answer, far, farHead) {
      answered();
      if (socket.destroyed) { far.destroy(); return 101; }
      spliced = far;
      socket.write(responseHead(answer, answer.rawHeaders));
      if (farHead.length > 0) socket.write(farHead);
      for (const chunk of early) far.write(chunk);
      far.once('close', () => socket.destroy());
      socket.pipe(far);
      far.pipe(socket);
      return 101;
    },
    refused(answer) {
      answered();
      socket.resume();
      if (socket.destroyed) { farReq.destroy(); return; }
      const fields = endToEndFields(answer);
      fields.push('connection', 'close');
      socket.write(responseHead(answer, fields));
      // Both connections end with the answer: the caller's next bytes have nowhere to go.
      pipeline(answer, socket, () => { socket.destroy(); farReq.destroy(); });
    },
    failed(code, message) {
      answered();
      socket.resume();
      // (A caller that left first has nobody to answer.)
      if (!socket.destroyed) refuseRaw(socket, code, message, handshake.requestId);
    },
  });

  socket.on('data', hold);
  // A caller that half-closes before the answer will not speak the new protocol: it has left.
  socket.once('end', () => { if (waiting) socket.destroy(); });
  // 'close' follows an error and answers for it.
  socket.on('error', () => {});
  socket.once('close', () => { if (spliced) spliced.destroy(); else farReq.destroy(); });
}

/** An HTTP/1.1 status line and header block for the far side's answer, with `fields` ([name, value, …]). */
function responseHead(answer: IncomingMessage, fields: readonly string[]): string {
  let text = `HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
  return `${text}\r\n`;
}
