// The inbound mTLS listener. The TLS stack requires and chain-validates the client certificate
// (a peer without a trusted certificate never completes a handshake); right after the handshake
// the X.509-SVID rules run and a peer that fails them is disconnected before any request is read.
import { createServer, type Server } from 'node:https';
import type { TLSSocket, SecureContextOptions } from 'node:tls';
import type { Runtime } from '../runtime/state.ts';
import type { TlsMaterial } from '../identity/material.ts';
import { checkPeer } from '../identity/peer.ts';
import type { UpstreamPool } from '../forward/upstream.ts';
import { rememberPeer, byCertificate } from './identify.ts';
import { serverLimits, applyLimits } from './limits.ts';
import { inboundHandler } from './handler.ts';
import { inboundUpgradeHandler } from './upgrade.ts';
import { log } from '../log.ts';

export function secureContextOptions(m: TlsMaterial): SecureContextOptions {
  return { cert: m.certPem, key: m.keyPem, ca: m.caPem };
}

export function createInboundServer(rt: Runtime, upstream: UpstreamPool): Server {
  const server = createServer({
    ...secureContextOptions(rt.tls),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    // A client that opens TCP and never finishes the handshake holds a slot: bound it like headers.
    handshakeTimeout: rt.config.headerTimeoutMs,
    ...serverLimits(rt.config),
  });
  applyLimits(server, rt);

  // Runs before the HTTP layer's own listener, so a refused peer's bytes are never parsed.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const cert = socket.getPeerX509Certificate();
    const check = cert ? checkPeer(cert, rt.trustDomains) : { ok: false as const, reason: 'no client certificate', kind: 'no_certificate' };
    if (check.ok) { rememberPeer(socket, check.identity); return; }
    rt.metrics.handshakeRefused(check.kind);
    rt.audit.write({
      time: new Date().toISOString(), requestId: null, direction: 'inbound', event: 'handshake',
      peer: { principal: null, address: socket.remoteAddress ?? null }, method: null, path: null,
      decision: 'deny', status: null, code: null, policy: null, rule: null, reason: check.reason, policyDigest: rt.policy.digest,
      tls: 'mtls', boundary: null,
    });
    socket.destroy();
  });

  server.on('request', inboundHandler(rt, upstream, byCertificate, 'mtls'));
  server.on('upgrade', inboundUpgradeHandler(rt, byCertificate, 'mtls'));
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    // Untrusted, expired or missing client certificates end here; counted, not logged per attempt.
    rt.metrics.handshakeRefused(err.code === 'ECONNRESET' ? 'reset' : 'tls_error');
  });
  return server;
}

export function reloadServerCertificate(server: Server, m: TlsMaterial): void {
  server.setSecureContext(secureContextOptions(m));
  log.info('certificate loaded', { principal: m.identity.principal, notAfter: m.notAfter.toISOString() });
}
