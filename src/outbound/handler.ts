// One outbound request from the app, top to bottom:
// target → route → (unrouted: pass through or refuse) → JIT approval → token → audit → forward.
// The decision is made once, audited once, and used for the response. A routed request whose
// token cannot be obtained is refused with 503 token_unavailable and never leaves the pod; so is
// one whose deadline passes while it waits for the issuer.
// An HTTP/1.1 Upgrade (WebSocket…) takes the same steps with the same refusals, token and audit
// record; only the last differs: the handshake goes on a connection of its own, spliced to the
// app's on a 101 (http/upgrade-handshake.ts), and refusals are written on the raw socket.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { Runtime } from '../runtime/state.ts';
import { RequestRefused, type ErrorCode } from '../errors.ts';
import { refuse, refuseRaw } from '../http/refuse.ts';
import { answerFault, socketFault } from '../http/fault.ts';
import { relayUpgrade, upgradesToH2c, upgradeRefusal } from '../http/upgrade-handshake.ts';
import { requestIdFrom } from '../http/request-id.ts';
import { h2HeadersOverLimit, headersTooLargeMessage } from '../http/header-limit.ts';
import { grpcDeadlineAt, incomingBudgetMs, parseGrpcTimeout } from '../forward/deadline.ts';
import { ResponseRelay, type UpstreamOptions } from '../forward/upstream.ts';
import { hasBody } from '../forward/body-limit.ts';
import type { CachedToken } from '../tokens/cache.ts';
import { outboundTarget, type OutboundTarget } from './target.ts';
import { routeTableFor, type CompiledRoute } from './routes.ts';
import { carriageFor, defaultPort, type Carriage } from './transport.ts';
import type { DestinationClassifier } from '../boundary/classify.ts';
import { destinationHeaders, withUpgrade, type DestinationHeaders } from './headers.ts';
import { outboundAuditRecord } from './audit.ts';
import { tlsFailureHint } from './tls-failure.ts';
import type { OutboundAgents } from './agents.ts';
import { HOP_HEADER, type LoopGuard } from './loop.ts';

export const JIT_HEADER = 'x-authproxy-jit';
const APPROVAL_ID = /^[A-Za-z0-9._~:-]{1,256}$/;
// Loops (loop.ts): found before sending, or when the request comes back marked as this sidecar's.
const SELF = 'the destination is this outbound listener itself';
const CAME_BACK = `${SELF}: the request came back to it with the ${HOP_HEADER} it was sent on with`;
const H2C_UPGRADE = 'Upgrade: h2c is not accepted: after the 101 every request would pass the sidecar without its token; '
  + 'send HTTP/2 with prior knowledge (h2c) to the outbound listener instead';

export interface OutboundForwarding {
  agents: OutboundAgents;
  options: UpstreamOptions;
  classifier: DestinationClassifier;
}

/** The listeners' two entry points: a request, and an HTTP/1.1 Upgrade, whose answer goes on the raw socket. */
export interface OutboundHandler {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/**
 * Per request: what every step needs to answer or audit. The deadline (epoch ms) is fixed on
 * arrival, so time spent on DNS and on waiting for a token counts against it. The answer goes on
 * `res`, or for an Upgrade (`res` null) on `upgrade.socket`.
 */
interface Call {
  req: IncomingMessage; res: ServerResponse | null; upgrade: Upgrading | null;
  start: number; requestId: string; deadlineAt: number; budgetMs: number;
  /** The caller's own gRPC deadline (forward/deadline.ts), 0 when it set none. */
  grpcDeadlineAt: number;
}
/** An Upgrade's connection, as node:http hands it over: the socket, and what was read past the request. */
interface Upgrading { socket: Duplex; head: Buffer }
/** Where and how the hop goes, once decided. */
interface Hop { target: OutboundTarget; route: CompiledRoute | null; carriage: Carriage; boundary: string | null; port: number }

export function outboundHandler(rt: Runtime, fwd: OutboundForwarding, loop: LoopGuard): OutboundHandler {
  const requestTimeout = rt.config.requestTimeoutMs;
  const denyUnrouted = rt.config.outboundUnrouted === 'deny';
  const maxHeaderBytes = rt.config.maxHeaderBytes;
  const headersTooLarge = headersTooLargeMessage(maxHeaderBytes);
  const upgradeProtocols = rt.config.upgradeProtocols;

  return {
    request(req, res) { handle(req, res, null); },
    upgrade(req, socket, head) {
      // node:http has taken its own error listener off the socket it hands over: a reset read
      // while the upgrade waits (DNS, the issuer) would be an unhandled 'error' and end the
      // process. 'close' follows; gone() then sees the socket destroyed.
      socket.on('error', () => {});
      handle(req, null, { socket, head });
    },
  };

  function handle(req: IncomingMessage, res: ServerResponse | null, upgrade: Upgrading | null): void {
    const start = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const grpcMs = parseGrpcTimeout(req.headers['grpc-timeout']);
    const incoming = incomingBudgetMs(req.headers['x-authproxy-deadline'], grpcMs);
    const budgetMs = incoming === null ? requestTimeout : Math.min(requestTimeout, incoming);
    const now = Date.now();
    const call: Call = { req, res, upgrade, start, requestId, deadlineAt: now + budgetMs, budgetMs, grpcDeadlineAt: grpcDeadlineAt(grpcMs, now) };
    // The app's h2c requests; HTTP/1.1's parser has refused such a request already (header-limit.ts).
    if (h2HeadersOverLimit(req, maxHeaderBytes)) { refused(call, null, null, 'headers_too_large', headersTooLarge, headersTooLarge); return; }

    const target = outboundTarget(req);
    if (target instanceof RequestRefused) { refused(call, null, null, target.code, target.message, target.message); return; }
    if (loop.cameBack(req.headers)) { refused(call, target, null, 'bad_request', CAME_BACK, CAME_BACK); return; }
    if (upgrade !== null) {
      const why = upgradesToH2c(req.headers.upgrade) ? H2C_UPGRADE : upgradeRefusal(req.headers.upgrade, upgradeProtocols);
      if (why) { refused(call, target, null, 'bad_request', why, why); return; }
    }
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
      if (!gone(call)) routed(call, target, route, b);
    }).catch((e: unknown) => fault(call, e));
  }

  function refused(call: Call, target: OutboundTarget | null, route: CompiledRoute | null, code: ErrorCode, message: string, reason: string): void {
    const r = new RequestRefused(code, message);
    rt.audit.write(outboundAuditRecord(rt, call.req, call.requestId, target, route, r, reason, null));
    if (call.res !== null) refuse(call.res, code, message, call.requestId);
    else refuseRaw(call.upgrade!.socket, code, message, call.requestId);
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
      if (!gone(call)) send(call, hop, t, reason);
    }, (e: unknown) => {
      rt.inFlight--;
      const why = (e as Error).message;
      refused(call, target, route, 'token_unavailable', `no token for ${token.audience}: ${why}`, `${reason}; token unavailable: ${why}`);
    }).catch((e: unknown) => fault(call, e));
  }

  function send(call: Call, hop: Hop, token: CachedToken | null, reason: string): void {
    const { req, start, requestId } = call;
    const { target, route, carriage, port } = hop;
    const transport = carriage.transport;
    rt.audit.write(outboundAuditRecord(rt, req, requestId, target, route, null, reason, transport, hop.boundary));
    const rtoken = route?.token ?? null;
    const h = destinationHeaders(req, target.authority, rtoken?.header ?? null,
      token === null || rtoken === null ? null : token.header(rtoken.scheme), requestId, transport === 'mtls');
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    if (transport === 'plaintext') h.headers.push(HOP_HEADER, loop.hopId);
    const destination = `${host}:${port}`;
    if (call.upgrade !== null) { upgradeTo(call, call.upgrade, hop, h, destination); return; }
    const res = call.res!;
    const origin = `${transport === 'plaintext' ? 'http' : 'https'}://${destination}`;
    const body: Readable | null = hasBody(req) ? req : null;
    rt.inFlight++;
    fwd.options.retryBudget.recordRequest();
    new ResponseRelay(fwd.agents.for(carriage, req.httpVersionMajor === 2), origin, {
      req, res, path: target.path, headers: h.headers, deadlineAt: call.deadlineAt,
      deadlineValueAt: h.deadlineValueAt, grpcTimeoutValueAt: h.grpcTimeoutValueAt, grpcDeadlineAt: call.grpcDeadlineAt,
      // The forwarder's messages speak of "the app"; on this path the far side is the destination.
      onError: (code, message, tls) => refuse(res, code,
        message.replace('the app', `destination ${destination}`) + (tls ? tlsFailureHint(tls, route, carriage.trust) : ''), requestId),
      onSettled: (outcome) => {
        rt.inFlight--;
        rt.metrics.request('outbound', 'allow', outcome.status, (performance.now() - start) / 1000);
      },
    }, body, fwd.options).start();
  }

  /**
   * The handshake, on a connection of its own, with the request's headers plus the Upgrade it
   * asks for, and the time left filled in once (there is no retry: an upgrade is not idempotent).
   */
  function upgradeTo(call: Call, upgrade: Upgrading, hop: Hop, h: DestinationHeaders, destination: string): void {
    const { req } = call;
    const headers = withUpgrade(req, h, call.deadlineAt - Date.now());
    relayUpgrade(rt, upgrade.socket, upgrade.head, {
      name: `destination ${destination}`,
      direction: 'outbound',
      connect: { createConnection: () => fwd.agents.upgradeConnection(hop.carriage, hop.target.host, hop.port) },
      timeoutMs: Math.max(1, call.deadlineAt - Date.now()),
      tlsHint: (kind) => tlsFailureHint(kind, hop.route, hop.carriage.trust),
    }, { method: req.method ?? 'GET', path: hop.target.path, headers, requestId: call.requestId });
  }

  /** The caller has gone: nobody is left to answer. */
  function gone(call: Call): boolean {
    return call.res !== null ? call.res.destroyed : call.upgrade!.socket.destroyed;
  }

  function fault(call: Call, e: unknown): void {
    if (call.res !== null) answerFault(call.res, e); else socketFault(call.upgrade!.socket, e);
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
