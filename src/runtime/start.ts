// Start-up and shutdown of the sidecar. Order matters for readiness: the admin listener comes
// up first (reporting not ready), then certificates and policies load, then traffic listeners;
// only then does /readyz turn 200. On SIGTERM the reverse: not ready, stop accepting, let
// in-flight requests finish within the drain timeout, exit.
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Config } from '../config/config.ts';
import { formatListen, type ListenAddress } from '../config/address.ts';
import { loadTlsMaterial, chainsToBundle } from '../identity/material.ts';
import { openAuditLog } from '../audit/writer.ts';
import { Metrics } from '../admin/metrics.ts';
import { createAdminServer } from '../admin/server.ts';
import { createInboundServer } from '../inbound/listener.ts';
import { trackConnections } from '../http/connections.ts';
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

export async function start(config: Config): Promise<Running> {
  const metrics = new Metrics();
  const tls = await loadTlsMaterial({ cert: config.cert!, key: config.key!, ca: config.ca });
  if (!chainsToBundle(tls)) {
    log.warn('the workload certificate does not chain to the trust bundle; peers using the same bundle will refuse it', { cert: config.cert });
  }
  const policy = await loadPolicies(config.policies);
  // Token services read the certificate through this getter, so a rotated one is used at once.
  // Loaded only when an issuer is configured: the JWT and OAuth client code (jose) costs ~14 MB
  // of resident memory that a sidecar without tokens never needs.
  const tokenServices: TokenServices = config.issuer === null && config.tokenEndpoint === null ? NO_TOKENS
    : (await import('../tokens/service.ts')).createTokenServices(config, () => rt.tls, metrics);
  const rt: Runtime = {
    config, tls, policy, trustDomains: acceptedTrustDomains(config, tls),
    audit: await openAuditLog(config.auditLog, { counter: metrics }), metrics, ready: false, draining: false, inFlight: 0,
    tokens: tokenServices.outbound, verifier: tokenServices.verifier,
  };
  if (policy.requiresToken && !rt.verifier) log.warn('policies require bearer tokens but no --issuer is configured: every request needing a token will be refused with 401');
  if (rt.trustDomains.size === 0) log.warn('no trust domain configured and the workload has no SPIFFE ID: any trust domain the CA bundle signs is accepted');

  const admin = createAdminServer(rt);
  const adminAt = await listen(admin, config.adminListen);
  const upstream = new UpstreamPool(config.upstream, {
    timeoutMs: config.upstreamTimeoutMs, connectTimeoutMs: config.connectTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    maxRetries: config.maxRetries, retryBudget: new RetryBudget(config.retryBudget, config.retryBudgetFloor),
    onRetry: (result) => metrics.retry('inbound', result), ownedTrailer: config.tokenHeader,
  });
  const inbound = createInboundServer(rt, upstream);
  const closeAllInbound = trackConnections(inbound);
  const inboundAt = await listen(inbound, config.listen);
  const plaintext = config.plaintextListen ? createPlaintextServer(rt, upstream) : null;
  const plaintextAt = plaintext && config.plaintextListen ? await listen(plaintext, config.plaintextListen) : null;
  if (plaintext && policy.boundaries.length === 0) log.warn('the plaintext listener is on but no TrustBoundary is loaded: every plaintext request will be refused');
  const outboundAgents = new OutboundAgents(config, () => rt.tls, () => rt.policy);
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
  const watches = watchForReload(rt, [inbound]);
  rt.ready = true;
  log.info('ready', {
    inbound: formatListen(inboundAt), outbound: formatListen(outboundAt), admin: formatListen(adminAt), ...(plaintextAt ? { plaintext: formatListen(plaintextAt) } : {}),
    upstream: config.upstream.display, principal: tls.identity.principal, policyDigest: policy.digest,
  });

  let stopping: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => stopping ??= (async () => {
    log.info('draining', { reason, inFlight: rt.inFlight, graceMs: config.drainTimeoutMs });
    rt.draining = true;
    for (const w of watches) w.close();
    // Closing the HTTP/2 listener also sends GOAWAY on each session: peers open no new streams,
    // and the streams in flight finish.
    const listeners = plaintext ? [inbound, plaintext] : [inbound];
    const closed = Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
    plaintext?.closeIdleConnections();
    // With allowHTTP1, node:http2 also tracks idle HTTP/1.1 connections (untyped in @types/node).
    (inbound as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    const deadline = Date.now() + config.drainTimeoutMs;
    while (rt.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    closeAllInbound();
    plaintext?.closeAllConnections();
    await closed;
    // The outbound listener outlives the drain: the app may need outbound calls to finish its in-flight work.
    await new Promise<void>((resolve) => { outbound.listener.close(() => resolve()); outbound.closeAllConnections(); });
    await outboundAgents.close();
    await tokenServices.close();
    await upstream.close();
    admin.closeAllConnections();
    await new Promise<void>((resolve) => admin.close(() => resolve()));
    await rt.audit.close();
    log.info('stopped', { reason });
  })();

  return { rt, addresses: { inbound: inboundAt, admin: adminAt, plaintext: plaintextAt, outbound: outboundAt }, shutdown };
}
