// Upgrade requests (WebSocket): authorized exactly like any request, then the two sockets are
// spliced. The handshake is replayed to the app by hand so any upgrade protocol passes unchanged.
import { connect, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Runtime } from '../runtime/state.ts';
import { refuseRaw } from '../http/refuse.ts';
import { requestIdFrom } from '../http/request-id.ts';
import type { Identify } from './identify.ts';
import { decide, auditRecord } from './authorize.ts';
import { upstreamHeaders } from './headers.ts';
import { bearerOf, afterBearerCheck, applyBearerHeaders, NO_BEARER, type BearerCheck } from '../tokens/inbound.ts';

export function inboundUpgradeHandler(rt: Runtime, identify: Identify, transport: 'mtls' | 'plaintext'): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const target = rt.config.upstream;
  return function upgrade(req, socket, head) {
    const token = bearerOf(rt, req);
    if (token === null) { proceed(req, socket, head, NO_BEARER); return; }
    afterBearerCheck(rt, token, () => !socket.destroyed, (bearer) => proceed(req, socket, head, bearer));
  };

  function proceed(req: IncomingMessage, socket: Duplex, head: Buffer, bearer: BearerCheck): void {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const method = req.method ?? 'GET';
    const verdict = decide(rt, identify, req, bearer);
    rt.audit.write(auditRecord(rt, verdict, req, requestId, transport));
    if (verdict.refusal) {
      refuseRaw(socket, verdict.refusal.code, verdict.refusal.message, requestId);
      rt.metrics.request('inbound', 'deny', verdict.refusal.status, 0);
      return;
    }
    const caller = verdict.caller!;
    let headers = upstreamHeaders(req, { xfcc: caller.xfcc, principal: caller.principal, requestId }, true);
    if (bearer.presented) headers = applyBearerHeaders(headers, bearer, verdict.decision?.forwardToken === true, [], rt.config.tokenHeader).headers;
    let head1 = `${method} ${verdict.forwardPath} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head1 += `${headers[i]}: ${headers[i + 1]}\r\n`;
    head1 += '\r\n';

    const app: Socket = target.kind === 'unix' ? connect({ path: target.socketPath }) : connect({ host: target.host, port: target.port });
    let connected = false;
    // Until the app's first byte (its answer to the handshake) the upgrade is a request in flight:
    // a drain waits for it, and it is bounded like any request's response headers. The open
    // connection that may follow is neither.
    let answered = false;
    let refused = false;
    rt.inFlight++;
    const settle = (): void => { if (!answered) { answered = true; rt.inFlight--; app.setTimeout(0); } };
    const refuse = (code: 'upstream_unavailable' | 'upstream_timeout', message: string): void => {
      settle();
      refused = true;
      // (A caller that left first has nobody to answer.)
      if (!socket.destroyed) refuseRaw(socket, code, message, requestId);
      app.destroy();
    };
    app.setTimeout(rt.config.requestTimeoutMs, () => {
      if (!answered) refuse('upstream_timeout', `the app did not answer the upgrade within ${rt.config.requestTimeoutMs} ms`);
    });
    // The app's side is piped only once it has answered, so an app that hangs up without a word
    // gets the caller a 502 instead of a bare end of the connection.
    app.once('data', (first: Buffer) => {
      settle();
      socket.write(first);
      app.pipe(socket);
    });
    app.once('connect', () => {
      connected = true;
      app.write(head1);
      if (head.length) app.write(head);
      socket.pipe(app);
      rt.metrics.request('inbound', 'allow', 101, 0);
    });
    // Any other failure of the app's socket ends in 'close', which answers for it.
    app.on('error', () => { if (!connected) refuse('upstream_unavailable', 'the app is unreachable'); });
    socket.on('error', () => app.destroy());
    socket.on('close', () => app.destroy());
    app.on('close', () => {
      // A refusal ends the caller's socket itself; destroying it here could cut the refusal short.
      if (refused) return;
      if (answered) socket.destroy();
      else refuse('upstream_unavailable', 'the app closed the connection before answering the upgrade');
    });
  }
}
