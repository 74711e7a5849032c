// The app's side of an upgrade, shared by HTTP/1.1 Upgrade (upgrade.ts) and WebSocket over HTTP/2
// (websocket-h2.ts). The handshake is sent with node:http's client so that the app's answer is
// parsed, not assumed: only a 101 hands over the app's socket to be spliced. Anything else is a
// whole HTTP response to relay, after which the caller must not stay wired to the app: an app
// that ignores an Upgrade it does not speak answers 200 and keeps the connection alive, and would
// parse the caller's next bytes as requests the sidecar never authorized. Envoy waits for the 101
// the same way.
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { request } from '../http/node-http.ts';
import { connectionTokens, isConnectionField } from '../http/hop-by-hop.ts';
import { ERROR_STATUS } from '../errors.ts';
import type { Runtime } from '../runtime/state.ts';

export type HandshakeFailure = 'upstream_unavailable' | 'upstream_timeout';

export interface HandshakeAnswer {
  /** The app answered 101; `head` is what it sent right behind. Returns the status the caller got. */
  upgraded(answer: IncomingMessage, app: Socket, head: Buffer): number;
  /** The app answered anything else: a refusal, or a response that ignored the Upgrade. */
  refused(answer: IncomingMessage): void;
  /** No answer: the app is unreachable, hung up first, or let --request-timeout pass. */
  failed(code: HandshakeFailure, message: string): void;
}

/**
 * Sends the handshake; exactly one of `on`'s callbacks follows. Until then the upgrade is a
 * request in flight (a drain waits for it) bounded by --request-timeout; the open connection that
 * may follow is neither. Destroying the returned request (the caller left) ends in `failed`.
 */
export function handshakeWithApp(rt: Runtime, method: string, path: string, headers: string[], what: string, on: HandshakeAnswer): ClientRequest {
  const start = performance.now();
  const target = rt.config.upstream;
  const appReq = request({
    ...(target.kind === 'unix' ? { socketPath: target.socketPath } : { host: target.host, port: target.port }),
    method, path, headers, setHost: false, agent: false,
  });
  let settled = false;
  let connected = false;
  let timedOut = false;
  const settle = (status: number): void => {
    settled = true;
    rt.inFlight--;
    rt.metrics.request('inbound', 'allow', status, (performance.now() - start) / 1000);
  };
  rt.inFlight++;
  appReq.setTimeout(rt.config.requestTimeoutMs, () => { timedOut = true; appReq.destroy(); });
  appReq.once('socket', (s: Socket) => s.once('connect', () => { connected = true; }));
  appReq.on('upgrade', (answer: IncomingMessage, app: Socket, head: Buffer) => {
    app.setTimeout(0);
    // node:http's client has let go of the socket; an error on it would otherwise be thrown.
    app.on('error', () => app.destroy());
    settle(on.upgraded(answer, app, head));
  });
  appReq.on('response', (answer: IncomingMessage) => {
    appReq.setTimeout(0);
    settle(answer.statusCode!);
    on.refused(answer);
  });
  // 'close' follows every error (and an abort that raises none), so it answers for all of them.
  appReq.on('error', () => {});
  appReq.once('close', () => {
    if (settled) return;
    const code: HandshakeFailure = timedOut ? 'upstream_timeout' : 'upstream_unavailable';
    settle(ERROR_STATUS[code]);
    on.failed(code, timedOut ? `the app did not answer ${what} within ${rt.config.requestTimeoutMs} ms`
      : connected ? `the app closed the connection before answering ${what}` : 'the app is unreachable');
  });
  appReq.end();
  return appReq;
}

/** The app's answer's header fields, as sent ([name, value, …]), minus those that describe its connection. */
export function endToEndFields(answer: IncomingMessage): string[] {
  const raw = answer.rawHeaders;
  const named = connectionTokens(answer.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!isConnectionField(raw[i]!.toLowerCase(), named)) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}
