// WebSocket over HTTP/2 (RFC 8441). The listener advertises SETTINGS_ENABLE_CONNECT_PROTOCOL; a
// caller opens a WebSocket as an extended CONNECT stream (`:protocol: websocket`). It is authorized
// as the GET it stands for, so one policy rule covers a WebSocket over either protocol. The app
// gets an ordinary HTTP/1.1 WebSocket handshake (the sidecar's own Sec-WebSocket-Key, whose
// Accept it checks); once the app answers 101 the stream is answered 200 and spliced to the app's
// socket. Frames pass end to end, so extensions and subprotocols are whatever the app agreed to.
// Envoy does the same translation for an HTTP/1.1 upstream (upgrade_configs). Any other CONNECT
// (a tunnel to an authority) is refused: the sidecar is not a forward proxy inbound.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import type { Runtime } from '../runtime/state.ts';
import { ERROR_STATUS, RequestRefused } from '../errors.ts';
import { refuse, refuseRaw } from '../http/refuse.ts';
import { answerFault } from '../http/fault.ts';
import { requestIdFrom } from '../http/request-id.ts';
import { h2HeadersOverLimit, headersTooLargeMessage } from '../http/header-limit.ts';
import { sendHandshake, endToEndFields, type HandshakeFailure } from '../http/upgrade-handshake.ts';
import { appHandshakeTarget } from './upgrade.ts';
import type { Identify } from './identify.ts';
import { decide, auditRecord, refusedBeforePolicy } from './authorize.ts';
import { upstreamHeaders, identityHeaders } from './headers.ts';
import { bearerOf, afterBearerCheck, type BearerCheck } from '../tokens/inbound.ts';

/** RFC 6455 §1.3: the GUID the Sec-WebSocket-Accept hash is taken over. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** The app's handshake answer headers the caller is told; the rest are HTTP/1.1 handshake detail. */
const ANSWER_HEADERS = ['sec-websocket-protocol', 'sec-websocket-extensions'];
const TUNNEL_REFUSED = new RequestRefused('bad_request', 'CONNECT is accepted only to open a WebSocket over HTTP/2 (RFC 8441, :protocol websocket)');

/**
 * The inbound listeners' 'connect' listener. node:http2 emits it for an HTTP/2 CONNECT stream; with
 * allowHTTP1 the same server emits it, with a raw socket, for an HTTP/1.1 CONNECT request, as the
 * plaintext listener's node:http server does.
 */
export function inboundConnectHandler(rt: Runtime, identify: Identify, transport: 'mtls' | 'plaintext'):
  (req: Http2ServerRequest | IncomingMessage, resOrSocket: Http2ServerResponse | Duplex) => void {
  const headersTooLarge = new RequestRefused('headers_too_large', headersTooLargeMessage(rt.config.maxHeaderBytes));
  return function connect(req, resOrSocket) {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const h2 = req.httpVersionMajor === 2;
    const websocket = h2 && req.headers[':protocol'] === 'websocket';
    const refusal = !websocket ? TUNNEL_REFUSED : h2HeadersOverLimit(req, rt.config.maxHeaderBytes) ? headersTooLarge : null;
    if (refusal) {
      rt.audit.write(auditRecord(rt, refusedBeforePolicy(identify, req as IncomingMessage, websocket ? 'GET' : 'CONNECT', refusal), req as IncomingMessage, requestId, transport));
      if (h2) refuse(resOrSocket as Http2ServerResponse, refusal.code, refusal.message, requestId);
      else refuseRaw(resOrSocket as Duplex, refusal.code, refusal.message, requestId);
      rt.metrics.request('inbound', 'deny', refusal.status, 0);
      return;
    }
    const res = resOrSocket as Http2ServerResponse;
    const token = bearerOf(rt, req as IncomingMessage);
    if (typeof token !== 'string') { proceed(req as Http2ServerRequest, res, requestId, token); return; }
    afterBearerCheck(rt, token, () => !res.stream.destroyed, (bearer) => proceed(req as Http2ServerRequest, res, requestId, bearer), (e) => answerFault(res, e));
  };

  function proceed(req: Http2ServerRequest, res: Http2ServerResponse, requestId: string, bearer: BearerCheck): void {
    const start = performance.now();
    const asHttp1 = req as unknown as IncomingMessage;
    const verdict = decide(rt, identify, asHttp1, bearer, 'GET');
    rt.audit.write(auditRecord(rt, verdict, asHttp1, requestId, transport));
    if (verdict.refusal) {
      refuse(res, verdict.refusal.code, verdict.refusal.message, requestId);
      rt.metrics.request('inbound', 'deny', verdict.refusal.status, (performance.now() - start) / 1000);
      return;
    }
    const headers = withoutKey(upstreamHeaders(asHttp1, identityHeaders(rt, verdict, requestId)));
    const key = randomBytes(16).toString('base64');
    headers.push('connection', 'Upgrade', 'upgrade', 'websocket', 'sec-websocket-key', key);
    if (req.headers['sec-websocket-version'] === undefined) headers.push('sec-websocket-version', '13');

    const fail = (code: HandshakeFailure, message: string): number => {
      // (A caller that left first has nobody to answer.)
      if (!res.stream.destroyed) { if (!res.headersSent) refuse(res, code, message, requestId); else res.stream.close(); }
      return ERROR_STATUS[code];
    };
    const appReq = sendHandshake(rt, appHandshakeTarget(rt), 'GET', verdict.forwardPath, headers, 'the WebSocket handshake', {
      upgraded(answer, socket, head) {
        const expected = createHash('sha1').update(key + WS_GUID).digest('base64');
        if (answer.headers['sec-websocket-accept'] !== expected || res.stream.destroyed) {
          socket.destroy();
          return fail('upstream_unavailable', 'the app answered the WebSocket handshake with a wrong Sec-WebSocket-Accept');
        }
        const answered: Record<string, string | string[]> = {};
        for (const name of ANSWER_HEADERS) { const v = answer.headers[name]; if (v !== undefined) answered[name] = v; }
        res.writeHead(200, answered);
        if (head.length > 0) res.write(head);
        // The compatibility request and response are the stream's two directions.
        req.pipe(socket);
        socket.pipe(res);
        socket.on('error', () => res.stream.close());
        socket.once('close', () => { if (!res.stream.destroyed) res.stream.close(); });
        res.stream.once('close', () => socket.destroy());
        return 200;
      },
      // The app refused the upgrade (400, 403, 404…): the caller gets its answer as it was.
      refused(answer) {
        if (res.stream.destroyed) { answer.resume(); return; }
        res.writeHead(answer.statusCode!, endToEndFields(answer));
        answer.pipe(res);
      },
      failed(code, message) { fail(code, message); },
    });
    // A caller that goes away before the app answers takes the handshake with it.
    res.stream.once('close', () => appReq.destroy());
  }
}

/** An RFC 8441 caller sends no Sec-WebSocket-Key (RFC 8441 §5); one that does must not pick the app's. */
function withoutKey(headers: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() !== 'sec-websocket-key') out.push(headers[i]!, headers[i + 1]!);
  return out;
}
