// One outbound request from the app, top to bottom:
// target → route → (unrouted: pass through or refuse) → JIT approval → token → audit → forward.
// The decision is made once, audited once, and used for the response. A routed request whose
// token cannot be obtained is refused with 503 token_unavailable and never leaves the pod; so is
// one whose deadline passes while it waits for the issuer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Runtime } from '../runtime/state.ts';
import { RequestRefused, type ErrorCode } from '../errors.ts';
import { refuse } from '../http/refuse.ts';
import { answerFault } from '../http/fault.ts';
import { requestIdFrom } from '../http/request-id.ts';
import { h2HeadersOverLimit, headersTooLargeMessage } from '../http/header-limit.ts';
import { incomingBudgetMs } from '../forward/deadline.ts';
import { ResponseRelay, type UpstreamOptions } from '../forward/upstream.ts';
import { hasBody } from '../forward/body-limit.ts';
import type { CachedToken } from '../tokens/cache.ts';
import { outboundTarget, type OutboundTarget } from './target.ts';
import { routeTableFor, type CompiledRoute } from './routes.ts';
import { carriageFor, defaultPort, type Carriage } from './transport.ts';
import type { DestinationClassifier } from '../boundary/classify.ts';
import { destinationHeaders } from './headers.ts';
import { outboundAuditRecord } from './audit.ts';
import type { OutboundAgents } from './agents.ts';
import { HOP_HEADER, type LoopGuard } from './loop.ts';

export const JIT_HEADER = 'x-authproxy-jit';
const APPROVAL_ID = /^[A-Za-z0-9._~:-]{1,256}$/;
// Loops (loop.ts): found before sending, or when the request comes back marked as this sidecar's.
const SELF = 'the destination is this outbound listener itself';
const CAME_BACK = `${SELF}: the request came back to it with the ${HOP_HEADER} it was sent on with`;

export interface OutboundForwarding {
  agents: OutboundAgents;
  options: UpstreamOptions;
  classifier: DestinationClassifier;
}

/**
 * Per request: what every step needs to answer or audit. The deadline (epoch ms) is fixed on
 * arrival, so time spent on DNS and on waiting for a token counts against it.
 */
interface Call { req: IncomingMessage; res: ServerResponse; start: number; requestId: string; deadlineAt: number; budgetMs: number }
/** Where and how the hop goes, once decided. */
interface Hop { target: OutboundTarget; route: CompiledRoute | null; carriage: Carriage; boundary: string | null; port: number }

export function outboundHandler(rt: Runtime, fwd: OutboundForwarding, loop: LoopGuard): (req: IncomingMessage, res: ServerResponse) => void {
  const requestTimeout = rt.config.requestTimeoutMs;
  const denyUnrouted = rt.config.outboundUnrouted === 'deny';
  const maxHeaderBytes = rt.config.maxHeaderBytes;
  const headersTooLarge = headersTooLargeMessage(maxHeaderBytes);

  return function handle(req, res) {
    const start = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const incoming = incomingBudgetMs(req.headers['x-authproxy-deadline'], req.headers['grpc-timeout']);
    const budgetMs = incoming === null ? requestTimeout : Math.min(requestTimeout, incoming);
    const call: Call = { req, res, start, requestId, deadlineAt: Date.now() + budgetMs, budgetMs };
    // The app's h2c requests; HTTP/1.1's parser has refused such a request already (header-limit.ts).
    if (h2HeadersOverLimit(req, maxHeaderBytes)) { refused(call, null, null, 'headers_too_large', headersTooLarge, headersTooLarge); return; }

    const target = outboundTarget(req);
    if (target instanceof RequestRefused) { refused(call, null, null, target.code, target.message, target.message); return; }
    if (loop.cameBack(req.headers)) { refused(call, target, null, 'bad_request', CAME_BACK, CAME_BACK); return; }
    const route = routeTableFor(rt.policy, rt.tokens).lookup(target.host);
    if (route === null && denyUnrouted) {
      const msg = `no OutboundRoute for ${target.host}, and unrouted destinations are refused (--outbound-unrouted deny)`;
      refused(call, target, null, 'no_route', msg, msg);
      return;
    }
    const boundary = fwd.classifier.peek(target.host);
    if (boundary !== undefined) { routed(call, target, route, boundary); return; }
    // First request to a name whose boundary depends on DNS: resolve (single-flight, cached).
    rt.inFlight++;
    fwd.classifier.classify(target.host).then((b) => {
      rt.inFlight--;
      if (!res.destroyed) routed(call, target, route, b);
    }).catch((e: unknown) => answerFault(res, e));
  };

  function refused(call: Call, target: OutboundTarget | null, route: CompiledRoute | null, code: ErrorCode, message: string, reason: string): void {
    const r = new RequestRefused(code, message);
    rt.audit.write(outboundAuditRecord(rt, call.req, call.requestId, target, route, r, reason, null));
    refuse(call.res, code, message, call.requestId);
    rt.metrics.request('outbound', 'deny', r.status, (performance.now() - call.start) / 1000);
  }

  /** The destination is classified: choose how to carry the hop, then the token, then send. */
  function routed(call: Call, target: OutboundTarget, route: CompiledRoute | null, boundary: string | null): void {
    const { req } = call;
    const carriage = carriageFor(route?.tls ?? null, route?.trust ?? null, boundary);
    const port = target.port ?? defaultPort(carriage.transport);
    if (loop.isSelf(target.host, port, fwd.classifier)) { refused(call, target, route, 'bad_request', SELF, SELF); return; }
    const hop: Hop = { target, route, carriage, boundary, port };

    const jit = req.headers[JIT_HEADER];
    let approval: string | null = null;
    if (jit !== undefined) {
      if (typeof jit !== 'string' || !APPROVAL_ID.test(jit)) {
        refused(call, target, route, 'bad_request', `${JIT_HEADER} must be one approval id`, `malformed ${JIT_HEADER}`);
        return;
      }
      if (route?.token == null) {
        const msg = `${JIT_HEADER} names an approval, but no OutboundRoute with a token covers ${target.host}`;
        refused(call, target, route, 'bad_request', msg, msg);
        return;
      }
      approval = jit;
    }

    const token = route?.token ?? null;
    if (token === null) {
      send(call, hop, null, route ? route.reason : `no OutboundRoute for ${target.host}: passed through without a token`);
      return;
    }
    const tokens = rt.tokens;
    if (token.target === null || tokens === null) {
      const msg = `OutboundRoute ${route!.name} needs a token, and no token issuer is configured (--issuer or --token-endpoint)`;
      refused(call, target, route, 'token_unavailable', msg, msg);
      return;
    }
    const tt = approval === null ? token.target : tokens.withApproval(token.target, approval);
    const reason = approval === null ? route!.reason : `${route!.reason}, under JIT approval ${approval}`;
    const cached = tokens.peek(tt);
    if (cached !== undefined) { send(call, hop, cached, reason); return; }
    // Waiting for the issuer counts as in flight, so a drain does not cut it short.
    rt.inFlight++;
    withinDeadline(tokens.obtain(tt), call).then((t) => {
      rt.inFlight--;
      if (!call.res.destroyed) send(call, hop, t, reason);
    }, (e: unknown) => {
      rt.inFlight--;
      const why = (e as Error).message;
      refused(call, target, route, 'token_unavailable', `no token for ${token.audience}: ${why}`, `${reason}; token unavailable: ${why}`);
    }).catch((e: unknown) => answerFault(call.res, e));
  }

  function send(call: Call, hop: Hop, token: CachedToken | null, reason: string): void {
    const { req, res, start, requestId } = call;
    const { target, route, carriage, port } = hop;
    const transport = carriage.transport;
    rt.audit.write(outboundAuditRecord(rt, req, requestId, target, route, null, reason, transport, hop.boundary));
    const rtoken = route?.token ?? null;
    const h = destinationHeaders(req, target.authority, rtoken?.header ?? null,
      token === null || rtoken === null ? null : token.header(rtoken.scheme), requestId, transport === 'mtls');
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    const origin = `${transport === 'plaintext' ? 'http' : 'https'}://${host}:${port}`;
    if (transport === 'plaintext') h.headers.push(HOP_HEADER, loop.hopId);
    const body: Readable | null = hasBody(req) ? req : null;
    const destination = `${host}:${port}`;
    rt.inFlight++;
    fwd.options.retryBudget.recordRequest();
    new ResponseRelay(fwd.agents.for(carriage, req.httpVersionMajor === 2), origin, {
      req, res, path: target.path, headers: h.headers, deadlineAt: call.deadlineAt,
      deadlineValueAt: h.deadlineValueAt, grpcTimeoutValueAt: h.grpcTimeoutValueAt,
      // The forwarder's messages speak of "the app"; on this path the far side is the destination.
      onError: (code, message) => refuse(res, code, message.replace('the app', `destination ${destination}`), requestId),
      onSettled: (outcome) => {
        rt.inFlight--;
        rt.metrics.request('outbound', 'allow', outcome.status, (performance.now() - start) / 1000);
      },
    }, body, fwd.options).start();
  }
}

/**
 * The token, or a refusal reason once the request's deadline has passed. Only this request stops
 * waiting: the issuer call goes on (bounded by its own timeout), and the other requests waiting
 * on it (single flight) still get its token. 503 token_unavailable rather than 504
 * upstream_timeout: no token was obtained and nothing was sent to the destination. (A plain
 * Error: the token modules are loaded only when an issuer is configured, runtime/start.ts.)
 */
function withinDeadline(token: Promise<CachedToken>, call: Call): Promise<CachedToken> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the issuer did not answer within the request's deadline (${call.budgetMs} ms)`)),
      Math.max(0, call.deadlineAt - Date.now()));
  });
  return Promise.race([token, late]).finally(() => clearTimeout(timer));
}
