// Upgrade requests (WebSocket and any other protocol): authorized exactly like any request, then
// the handshake goes to the app (app-handshake.ts). Only the app's 101 splices the two sockets;
// any other answer is relayed and both connections are closed, so nothing the caller sends after
// its handshake can reach the app unless the app has switched protocols.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline, type Duplex } from 'node:stream';
import type { Runtime } from '../runtime/state.ts';
import { refuseRaw } from '../http/refuse.ts';
import { requestIdFrom } from '../http/request-id.ts';
import type { Identify } from './identify.ts';
import { decide, auditRecord } from './authorize.ts';
import { upstreamHeaders, identityHeaders } from './headers.ts';
import { handshakeWithApp, endToEndFields } from './app-handshake.ts';
import { bearerOf, afterBearerCheck, type BearerCheck } from '../tokens/inbound.ts';
import { socketFault } from '../http/fault.ts';

/**
 * How much a caller may send ahead of the app's answer before the sidecar stops reading it (TCP
 * then holds the rest back): enough for a WebSocket client's first frames, not a way to make the
 * sidecar buffer a body.
 */
const EARLY_BYTES_LIMIT = 64 * 1024;

export function inboundUpgradeHandler(rt: Runtime, identify: Identify, transport: 'mtls' | 'plaintext'): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return function upgrade(req, socket, head) {
    const token = bearerOf(rt, req);
    if (typeof token !== 'string') { proceed(req, socket, head, token); return; }
    afterBearerCheck(rt, token, () => !socket.destroyed, (bearer) => proceed(req, socket, head, bearer), (e) => socketFault(socket, e));
  };

  function proceed(req: IncomingMessage, socket: Duplex, head: Buffer, bearer: BearerCheck): void {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const verdict = decide(rt, identify, req, bearer);
    rt.audit.write(auditRecord(rt, verdict, req, requestId, transport));
    if (verdict.refusal) {
      refuseRaw(socket, verdict.refusal.code, verdict.refusal.message, requestId);
      rt.metrics.request('inbound', 'deny', verdict.refusal.status, 0);
      return;
    }
    const headers = upstreamHeaders(req, identityHeaders(rt, verdict, requestId), true);

    // What the caller sends behind its handshake (a WebSocket frame sent ahead, or a pipelined
    // request) is held until the app has answered, and passed on only if that answer is 101.
    // Reading it, rather than leaving it in the socket, is also how a caller that leaves is noticed.
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

    const appReq = handshakeWithApp(rt, req.method ?? 'GET', verdict.forwardPath, headers, 'the upgrade', {
      upgraded(answer, app, appHead) {
        answered();
        if (socket.destroyed) { app.destroy(); return 101; }
        spliced = app;
        socket.write(responseHead(answer, answer.rawHeaders));
        if (appHead.length > 0) socket.write(appHead);
        for (const chunk of early) app.write(chunk);
        app.once('close', () => socket.destroy());
        socket.pipe(app);
        app.pipe(socket);
        return 101;
      },
      refused(answer) {
        answered();
        socket.resume();
        if (socket.destroyed) { appReq.destroy(); return; }
        const fields = endToEndFields(answer);
        fields.push('connection', 'close');
        socket.write(responseHead(answer, fields));
        // Both connections end with the answer: the caller's next bytes have nowhere to go.
        pipeline(answer, socket, () => { socket.destroy(); appReq.destroy(); });
      },
      failed(code, message) {
        answered();
        socket.resume();
        // (A caller that left first has nobody to answer.)
        if (!socket.destroyed) refuseRaw(socket, code, message, requestId);
      },
    });

    socket.on('data', hold);
    // A caller that half-closes before the answer will not speak the new protocol: it has left.
    socket.once('end', () => { if (waiting) socket.destroy(); });
    // 'close' follows an error and answers for it.
    socket.on('error', () => {});
    socket.once('close', () => { if (spliced) spliced.destroy(); else appReq.destroy(); });
  }
}

/** An HTTP/1.1 status line and header block for the app's answer, with `fields` ([name, value, …]). */
function responseHead(answer: IncomingMessage, fields: readonly string[]): string {
  let text = `HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
  return `${text}\r\n`;
}
