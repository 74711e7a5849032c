// Start-up and shutdown of the sidecar. Order matters for readiness: the admin listener comes
// up first (reporting not ready), then certificates and policies load, then traffic listeners;
// only then does /readyz turn 200. On SIGTERM the reverse: not ready, stop accepting, let
// in-flight requests finish within the drain timeout, exit.
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Config } from '../config/config.ts';
import { formatListen, type ListenAddress } from '../config/address.ts';
import { loadTlsMaterial, chainsToBundle, type TlsMaterial } from '../identity/material.ts';
import { openAuditLog } from '../audit/writer.ts';
import { Sealer, sealKeyFrom } from '../audit/seal.ts';
import { Metrics } from '../admin/metrics.ts';
import { createAdminServer } from '../admin/server.ts';
import { createInboundServer } from '../inbound/listener.ts';
import { trackConnections, countSessions } from '../http/connections.ts';
import { createPlaintextServer } from '../inbound/plaintext.ts';
import { UpstreamPool } from '../forward/upstream.ts';
import { RetryBudget } from '../forward/retry.ts';
import type { TokenServices } from '../tokens/service.ts';
import { createOutboundServer } from '../outbound/listener.ts';
import { DestinationClassifier } from '../boundary/classify.ts';
import { OutboundAgents } from '../outbound/agents.ts';
import { acceptedTrustDomains, type Runtime } from './state.ts';
import { loadPolicies } from './policies.ts';
import { watchForReload } from './reload.ts';
import { isLoopbackIp } from '../http/ip.ts';
import { log } from '../log.ts';

export interface Running {
  readonly rt: Runtime;
  /** Actual bound addresses (port 0 in config becomes the OS-chosen port). */
  readonly addresses: { inbound: ListenAddress; admin: ListenAddress; plaintext: ListenAddress | null; outbound: ListenAddress };
  /** Drain and stop; resolves when every listener is closed. */
  shutdown(reason: string): Promise<void>;
}

function listen(server: NetServer, at: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({ host: at.host, port: a.port });
    });
  });
}

const NO_TOKENS: TokenServices = { outbound: null, verifier: null, close: async () => {} };

/** Resolves once the server is closed; a server that never listened (or is closed already) counts as closed. */
function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => { server.close(() => resolve()); });
}

/**
 * What start() has opened, each registered with its close the moment it is open. If a later step
 * throws (a port in use, a name that does not resolve), unwind() closes them, newest first: a
 * listener left open would keep the failed process alive, serving traffic, with the SIGTERM
 * listener already installed so Kubernetes could only SIGKILL it. The normal shutdown drains
 * first and then unwinds the same stack, so there is one list of what to close.
 */
class Closers {
  readonly #stack: Array<{ what: string; close: () => void | Promise<void> }> = [];
  add(what: string, close: () => void | Promise<void>): void { this.#stack.push({ what, close }); }
  /** Closes everything, newest first; one close failing does not keep the others open. */
  async unwind(): Promise<void> {
    for (let c = this.#stack.pop(); c; c = this.#stack.pop()) {
      try { await c.close(); } catch (e) { log.error('closing failed', { what: c.what, error: (e as Error).message }); }
    }
  }
}

export async function start(config: Config): Promise<Running> {
  const closers = new Closers();
  try {
    return await open(config, closers);
  } catch (e) {
    await closers.unwind();
    throw e;
  }
}

async function open(config: Config, closers: Closers): Promise<Running> {
  const metrics = new Metrics();
  const tls = await loadTlsMaterial({ cert: config.cert!, key: config.key!, ca: config.ca, federations: config.federations });
  if (!chainsToBundle(tls)) {
    log.warn('the workload certificate does not chain to the trust bundle; peers using the same bundle will refuse it', { cert: config.cert });
  }
  const policy = await loadPolicies(config.policies, config.federations.length > 0);
  // Seals are signed with the workload's key as it is when each is made (a rotated certificate
  // signs the next one); until the runtime exists (a start failing before it does still closes
  // the log, with a seal) that is the material loaded above.
  let currentTls = (): TlsMaterial => tls;
  const sealer = config.auditSealIntervalMs > 0 ? new Sealer(sealKeyFrom(() => currentTls())) : null;
  // Opened before the token services so that it is closed after them (the stack unwinds newest first).
  const audit = await openAuditLog(config.auditLog, { counter: metrics, sealer, sealIntervalMs: config.auditSealIntervalMs });
  closers.add('audit log', () => audit.close());
  // Token services read the certificate through this getter, so a rotated one is used at once.
  // Loaded only when an issuer is configured: the JWT and OAuth client code (jose) costs ~14 MB
  // of resident memory that a sidecar without tokens never needs.
  const tokenServices: TokenServices = config.issuer === null && config.tokenEndpoint === null ? NO_TOKENS
    : (await import('../tokens/service.ts')).createTokenServices(config, () => rt.tls, metrics);
  closers.add('token services', () => tokenServices.close());
  const rt: Runtime = {
    config, tls, policy, trustDomains: acceptedTrustDomains(config, tls),
    audit, metrics, ready: false, draining: false, inFlight: 0,
    tokens: tokenServices.outbound, verifier: tokenServices.verifier,
  };
  currentTls = () => rt.tls;
  if (policy.requiresToken && !rt.verifier) log.warn('policies require bearer tokens but no --issuer is configured: every request needing a token will be refused with 401');
  if (rt.trustDomains.size === 0) log.warn('no trust domain configured and the workload has no SPIFFE ID: any trust domain the CA bundle signs is accepted');

  const admin = createAdminServer(rt);
  const adminAt = await listen(admin, config.adminListen);
  closers.add('admin listener', () => { admin.closeAllConnections(); return closeServer(admin); });
  const upstream = new UpstreamPool(config.upstream, {
    timeoutMs: config.upstreamTimeoutMs, connectTimeoutMs: config.connectTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    maxRetries: config.maxRetries, retryBudget: new RetryBudget(config.retryBudget, config.retryBudgetFloor),
    onRetry: (result) => metrics.retry('inbound', result), ownedTrailer: config.tokenHeader,
  });
  closers.add('upstream pool', () => upstream.close());
  const inbound = createInboundServer(rt, upstream);
  const closeAllInbound = trackConnections(inbound);
  const openSessions = countSessions(inbound);
  const inboundAt = await listen(inbound, config.listen);
  // By the time this runs a shutdown has drained (see below); at a failed start it cuts at once.
  closers.add('inbound listener', () => { const closed = closeServer(inbound); closeAllInbound(); return closed; });
  const plaintext = config.plaintextListen ? createPlaintextServer(rt, upstream) : null;
  const plaintextAt = plaintext && config.plaintextListen ? await listen(plaintext.listener, config.plaintextListen) : null;
  if (plaintext && plaintextAt) closers.add('plaintext listener', () => { const closed = closeServer(plaintext.listener); plaintext.closeAllConnections(); return closed; });
  if (plaintext && policy.boundaries.length === 0) log.warn('the plaintext listener is on but no TrustBoundary is loaded: every plaintext request will be refused');
  const outboundAgents = new OutboundAgents(config, () => rt.tls, () => rt.policy);
  closers.add('outbound agents', () => outboundAgents.close());
  const outbound = createOutboundServer(rt, {
    agents: outboundAgents,
    classifier: new DestinationClassifier(() => rt.policy),
    options: {
      timeoutMs: config.upstreamTimeoutMs, connectTimeoutMs: config.connectTimeoutMs, maxHeaderBytes: config.maxHeaderBytes,
      maxRetries: config.maxRetries, retryBudget: new RetryBudget(config.retryBudget, config.retryBudgetFloor),
      onRetry: (result) => metrics.retry('outbound', result),
    },
  });
  const outboundAt = await listen(outbound.listener, config.outboundListen);
  closers.add('outbound listener', () => { const closed = closeServer(outbound.listener); outbound.closeAllConnections(); return closed; });
  warnIfOutboundReachable(outbound.listener, outboundAt);
  const watches = watchForReload(rt, [inbound]);
  closers.add('reload watchers', () => { for (const w of watches) w.close(); });
  rt.ready = true;
  log.info('ready', {
    inbound: formatListen(inboundAt), outbound: formatListen(outboundAt), admin: formatListen(adminAt), ...(plaintextAt ? { plaintext: formatListen(plaintextAt) } : {}),
    upstream: config.upstream.display, principal: tls.identity.principal, policyDigest: policy.digest,
  });

  let stopping: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => stopping ??= (async () => {
    log.info('draining', { reason, inFlight: rt.inFlight, graceMs: config.drainTimeoutMs });
    rt.draining = true;
    // The drain: stop accepting inbound connections and let the requests in flight finish. Closing
    // the HTTP/2 listener also sends GOAWAY on each session: peers open no new streams, and the
    // streams in flight finish. The outbound listener stays open meanwhile: the app may need
    // outbound calls to finish its in-flight work.
    inbound.close();
    if (plaintext) { plaintext.listener.close(); plaintext.drain(); }
    // With allowHTTP1, node:http2 also tracks idle HTTP/1.1 connections (untyped in @types/node).
    (inbound as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    const deadline = Date.now() + config.drainTimeoutMs;
    while (rt.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    // A request is done once its answer is handed to its stream, not once it is sent. The HTTP/2
    // sessions, each sent GOAWAY above, end their connections themselves when their frames are
    // out; cut before that, a gRPC call could lose its final status (with the CPU busy, 3 runs in 10
    // of the drain test through a peer got their last reply and then RST_STREAM, not trailers).
    const sessionsOpen = (): number => openSessions() + (plaintext?.openSessions() ?? 0);
    while (sessionsOpen() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    // Then everything start() opened, newest first: watchers, outbound, the inbound connections
    // still open after the grace period, the upstream pool, admin, token services, audit log.
    await closers.unwind();
    log.info('stopped', { reason });
  })();

  return { rt, addresses: { inbound: inboundAt, admin: adminAt, plaintext: plaintextAt, outbound: outboundAt }, shutdown };
}

/**
 * The outbound listener adds the workload's tokens to what it forwards: reachable from the
 * network, it lends them to anyone who can reach the pod. Envoy and Linkerd bind their outbound
 * proxies on loopback; a non-loopback address is allowed (a shared network namespace may need
 * it) but never silently.
 */
function warnIfOutboundReachable(server: NetServer, at: ListenAddress): void {
  const bound = (server.address() as AddressInfo).address;
  if (isLoopbackIp(bound)) return;
  log.warn('the outbound listener is not on loopback: anyone who can reach this address can send requests through it with the workload\'s identity and bearer tokens; bind it to 127.0.0.1 unless the network around it is trusted',
    { outbound: formatListen(at) });
}
