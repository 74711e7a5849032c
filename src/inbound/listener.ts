// The inbound mTLS listener. The TLS stack requires and chain-validates the client certificate
// (a peer without a trusted certificate never completes a handshake); right after the handshake
// the X.509-SVID rules run and a peer that fails them is disconnected before any request is read.
// One port speaks both HTTP/2 and HTTP/1.1, chosen by ALPN (`h2`, `http/1.1`): node:http2's
// secure server with allowHTTP1 hands HTTP/1.1 connections to the ordinary node:http machinery
// (same limits, parser errors, Upgrade), and HTTP/2 streams to the same request handler through
// the compatibility API, so both are authorized and forwarded by one code path.
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { TLSSocket, SecureContextOptions } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Runtime } from '../runtime/state.ts';
import { containFaults } from '../http/fault.ts';
import type { TlsMaterial } from '../identity/material.ts';
import { checkPeer, type PeerCheck } from '../identity/peer.ts';
import { outsideItsBundle } from '../identity/federation.ts';
import type { UpstreamPool } from '../forward/upstream.ts';
import { rememberPeer, byCertificate } from './identify.ts';
import { serverLimits, applyLimits, guardRapidResets } from './limits.ts';
import { inboundHandler } from './handler.ts';
import { inboundUpgradeHandler } from './upgrade.ts';
import { inboundConnectHandler } from './websocket-h2.ts';
import { log } from '../log.ts';
import { isoTime } from '../audit/time.ts';
import { H2_HEADER_TABLE_BYTES, H2_MAX_SESSION_MEMORY_MB, H2_STREAM_WINDOW_BYTES, widenConnectionWindow } from '../http/h2.ts';
import { h2AdvertisedHeaderListSize } from '../http/header-limit.ts';

export function secureContextOptions(m: TlsMaterial): SecureContextOptions {
  return { cert: m.certPem, key: m.keyPem, ca: m.peerCaPem };
}

export type InboundServer = Http2SecureServer;

export function createInboundServer(rt: Runtime, upstream: UpstreamPool): InboundServer {
  const server = createSecureServer({
    ...secureContextOptions(rt.tls),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    // A client that opens TCP and never finishes the handshake holds a slot: bound it like headers.
    handshakeTimeout: rt.config.headerTimeoutMs,
    allowHTTP1: true,
    // https.Server turns Nagle off by default, node:http2's server does not: small writes
    // (headers, short bodies, gRPC messages) would otherwise wait for the peer's delayed ACK.
    noDelay: true,
    ...serverLimits(rt.config),
    ...h2Settings(rt.config.maxHeaderBytes),
  });
  applyLimits(server, rt, byCertificate, 'mtls');
  server.on('session', widenConnectionWindow);

  // Runs before the HTTP layer's own listener, so a refused peer's bytes are never parsed.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const check = peerOf(socket, rt);
    if (check.ok) { rememberPeer(socket, check.identity); return; }
    rt.metrics.handshakeRefused(check.kind);
    rt.audit.write({
      time: isoTime(Date.now()), requestId: null, direction: 'inbound', event: 'handshake',
      peer: { principal: null, address: socket.remoteAddress ?? null }, method: null, path: null,
      decision: 'deny', status: null, code: null, policy: null, rule: null, reason: check.reason, policyDigest: rt.policy.digest,
      tls: 'mtls', boundary: null,
    });
    socket.destroy();
  });

  guardRapidResets(server, rt, byCertificate);

  const handle = containFaults(inboundHandler(rt, upstream, byCertificate, 'mtls'));
  server.on('request', handle);
  // Expect: 100-continue: the 100 is the handler's to send, once the request is allowed.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handle(req, res, true));
  server.on('upgrade', containFaults(inboundUpgradeHandler(rt, byCertificate, 'mtls')));
  server.on('connect', containFaults(inboundConnectHandler(rt, byCertificate, 'mtls')));
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    // Untrusted, expired or missing client certificates end here; counted, not logged per attempt.
    rt.metrics.handshakeRefused(err.code === 'ECONNRESET' ? 'reset' : 'tls_error');
  });
  return server;
}

function peerOf(socket: TLSSocket, rt: Runtime): PeerCheck {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return { ok: false, reason: 'no client certificate', kind: 'no_certificate' };
  const check = checkPeer(cert, rt.trustDomains);
  if (!check.ok || rt.tls.bundles.federated.size === 0) return check;
  const outside = outsideItsBundle(cert, check.identity.trustDomain, rt.tls.bundles);
  return outside ? { ok: false, kind: 'wrong_bundle', reason: outside } : check;
}

/**
 * HTTP/2 settings. The header list advertised is --max-header-bytes plus headroom, so a request
 * over the limit is answered 431 by the handler rather than reset (header-limit.ts); a 32 KB token
 * fits on either protocol. The HPACK table a peer may fill is large enough to hold a 16 KB token
 * header: a peer sidecar (which raises its encoder table to match) then sends a repeated token
 * once per connection and refers to it afterwards, instead of sending it with every request.
 * enableConnectProtocol lets callers open WebSockets over HTTP/2 (RFC 8441; websocket-h2.ts).
 */
export function h2Settings(maxHeaderBytes: number): { settings: { headerTableSize: number; maxHeaderListSize: number; enableConnectProtocol: boolean; initialWindowSize: number }; maxSessionMemory: number } {
  return {
    settings: { headerTableSize: H2_HEADER_TABLE_BYTES, maxHeaderListSize: h2AdvertisedHeaderListSize(maxHeaderBytes), enableConnectProtocol: true, initialWindowSize: H2_STREAM_WINDOW_BYTES },
    maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
  };
}

export function reloadServerCertificate(server: InboundServer, m: TlsMaterial): void {
  server.setSecureContext(secureContextOptions(m));
  log.info('certificate loaded', { principal: m.identity.principal, notAfter: m.notAfter.toISOString() });
}
