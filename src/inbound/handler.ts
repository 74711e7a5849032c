// One inbound request, top to bottom: identify → normalize → authorize → audit → decorate → forward.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Runtime } from '../runtime/state.ts';
import { ERROR_STATUS, RequestRefused, type ErrorCode } from '../errors.ts';
import type { UpstreamPool } from '../forward/upstream.ts';
import { refuse } from '../http/refuse.ts';
import { answerFault } from '../http/fault.ts';
import { lingerOnClose } from '../http/linger.ts';
import { requestIdFrom } from '../http/request-id.ts';
import { decide, auditRecord, refusedBeforePolicy } from './authorize.ts';
import { refusedAfterAllow, type AuditRecord } from '../audit/record.ts';
import { h2HeadersOverLimit, headersTooLargeMessage } from '../http/header-limit.ts';
import { upstreamRequestHeaders, identityHeaders } from './headers.ts';
import { grpcDeadlineAt, incomingBudgetMs, parseGrpcTimeout } from '../forward/deadline.ts';
import { declaredTooLarge, needsBuffering } from '../forward/body-limit.ts';
import { readBody, readWholeBody, smallDeclaredLength } from '../forward/whole-body.ts';
import { BODY_NOT_RECEIVED } from '../forward/errors.ts';
import type { Identify } from './identify.ts';
import { bearerOf, afterBearerCheck, type BearerCheck } from '../tokens/inbound.ts';

/**
 * `owesContinue`: the request came through 'checkContinue' (it sent `Expect: 100-continue`), so
 * the caller waits for a 100 before it sends its body. The 100 goes out only once the request is
 * allowed: a refused caller never uploads a body that would be thrown away. node:http answers a
 * refusal sent without the 100 with `connection: close` and closes the HTTP/1.1 connection, since
 * whether the body follows is then the client's choice and the next request could not be told
 * from it (RFC 9110 §10.1.1). The close lingers (linger.ts), so a client still sending a body it
 * did not wait to send reads its answer, not a reset.
 */
export type InboundHandler = (req: IncomingMessage, res: ServerResponse, owesContinue?: boolean) => void;

export function inboundHandler(rt: Runtime, upstream: UpstreamPool, identify: Identify, transport: 'mtls' | 'plaintext'): InboundHandler {
  const maxBody = rt.config.maxBodyBytes;
  const requestTimeout = rt.config.requestTimeoutMs;
  const maxHeaderBytes = rt.config.maxHeaderBytes;
  const tooLargeMessage = `request body exceeds ${maxBody} bytes (--max-body-bytes)`;
  const headersTooLarge = new RequestRefused('headers_too_large', headersTooLargeMessage(maxHeaderBytes));
  /** A refusal of the sidecar's own, answered and counted. */
  const deny = (res: ServerResponse, requestId: string, start: number, code: ErrorCode, message: string): void => {
    refuse(res, code, message, requestId);
    rt.metrics.request('inbound', 'deny', ERROR_STATUS[code], (performance.now() - start) / 1000);
  };
  /** A request the policy allowed, refused by a limit after all: its audit record says what the caller got. */
  const denyAllowed = (res: ServerResponse, record: AuditRecord, start: number, code: ErrorCode, message: string): void => {
    rt.audit.write(refusedAfterAllow(record, code, message));
    deny(res, record.requestId!, start, code, message);
  };
  return function handle(req, res, owesContinue = false) {
    const start = performance.now();
    if (owesContinue && req.httpVersionMajor === 1) lingerOnClose(req.socket);
    const requestId = requestIdFrom(req.headers['x-request-id']);
    // HTTP/1.1's parser has refused such a request already; HTTP/2's is measured here (header-limit.ts).
    if (h2HeadersOverLimit(req, maxHeaderBytes)) {
      rt.audit.write(auditRecord(rt, refusedBeforePolicy(identify, req, req.method ?? 'GET', headersTooLarge), req, requestId, transport));
      deny(res, requestId, start, headersTooLarge.code, headersTooLarge.message);
      return;
    }
    const grpcMs = parseGrpcTimeout(req.headers['grpc-timeout']);
    const budget = incomingBudgetMs(req.headers['x-authproxy-deadline'], grpcMs);
    const now = Date.now();
    const deadlineAt = now + (budget === null ? requestTimeout : Math.min(requestTimeout, budget));
    const grpcAt = grpcDeadlineAt(grpcMs, now);
    // Bearer tokens are verified (asynchronously) only when a rule needs one and one was sent.
    const token = bearerOf(rt, req);
    if (typeof token !== 'string') { proceed(req, res, start, deadlineAt, grpcAt, requestId, token, owesContinue); return; }
    afterBearerCheck(rt, token, () => !res.destroyed, (bearer) => proceed(req, res, start, deadlineAt, grpcAt, requestId, bearer, owesContinue), (e) => answerFault(res, e));
  };

  function proceed(req: IncomingMessage, res: ServerResponse, start: number, deadlineAt: number, grpcAt: number, requestId: string, bearer: BearerCheck, owesContinue: boolean): void {
    const verdict = decide(rt, identify, req, bearer);
    // Built at decision time, written once the caller's answer is known: a body refused for its
    // size or lateness must not leave an allow behind.
    const record = auditRecord(rt, verdict, req, requestId, transport);
    if (verdict.refusal) { rt.audit.write(record); deny(res, requestId, start, verdict.refusal.code, verdict.refusal.message); return; }
    if (declaredTooLarge(req, maxBody)) { denyAllowed(res, record, start, 'body_too_large', tooLargeMessage); return; }
    if (owesContinue) res.writeContinue();
    const up = upstreamRequestHeaders(req, identityHeaders(rt, verdict, requestId));
    rt.inFlight++;
    // One object shape for every call (bufferedBody undefined when there is none), not a
    // conditional spread that gives the relay two shapes to read.
    const forward = (bufferedBody: Buffer | undefined): void => upstream.forward({
      req, res, path: verdict.forwardPath, headers: up.headers, deadlineAt, bufferedBody,
      deadlineValueAt: up.deadlineValueAt, grpcTimeoutValueAt: up.grpcTimeoutValueAt, grpcDeadlineAt: grpcAt,
      onError: (code, message) => refuse(res, code, message, requestId),
      onSettled: (outcome) => {
        rt.inFlight--;
        rt.metrics.request('inbound', 'allow', outcome.status, (performance.now() - start) / 1000);
      },
    });
    // A body read before forwarding: a small declared one (whole-body.ts says why), or one held
    // back by --max-body-bytes. Read here rather than by the forwarder, so that the record is
    // written once it is known whether the request goes to the app after all.
    const small = smallDeclaredLength(req);
    if (small < 0 && !needsBuffering(req, maxBody)) { rt.audit.write(record); forward(undefined); return; }
    const body = small < 0 ? readBody(req, null, maxBody, deadlineAt) : readWholeBody(req, small, deadlineAt);
    body.then((body) => {
      if (Buffer.isBuffer(body)) {
        rt.audit.write(record);
        if (small < 0) up.headers.push('content-length', String(body.length));
        forward(body);
        return;
      }
      rt.inFlight--;
      // More bytes than a declared length is the client's own framing broken: as good as gone.
      if (body === 'too_large' && small < 0) denyAllowed(res, record, start, 'body_too_large', tooLargeMessage);
      else if (body === 'timeout') denyAllowed(res, record, start, 'request_timeout', BODY_NOT_RECEIVED);
      // 'closed': the client went away; there is nobody to answer, and the decision stands as made.
      else rt.audit.write(record);
    }).catch((e: unknown) => answerFault(res, e));
  }
}
