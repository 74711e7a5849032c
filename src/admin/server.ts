// Admin listener: liveness, readiness, Prometheus metrics and the running configuration.
// Bound to loopback by default; it shows paths, names and digests, never key material or tokens.
import type { Server } from 'node:http';
import type { X509Certificate } from 'node:crypto';
import { createServer } from '../http/node-http.ts';
import type { Runtime } from '../runtime/state.ts';
import { redactedConfig } from '../config/config.ts';

export function createAdminServer(rt: Runtime): Server {
  rt.metrics.addGauge(() => [
    '# HELP authproxy_certificate_expiry_seconds Seconds until the workload certificate expires.',
    '# TYPE authproxy_certificate_expiry_seconds gauge',
    `authproxy_certificate_expiry_seconds{principal=${JSON.stringify(rt.tls.identity.principal)}} ${Math.round((rt.tls.notAfter.getTime() - Date.now()) / 1000)}`,
    '# HELP authproxy_policy_info The loaded policy set (value is always 1).',
    '# TYPE authproxy_policy_info gauge',
    `authproxy_policy_info{digest="${rt.policy.digest}",documents="${rt.policy.documents.length}"} 1`,
    '# HELP authproxy_ready 1 when serving traffic, 0 while starting or draining.',
    '# TYPE authproxy_ready gauge',
    `authproxy_ready ${rt.ready && !rt.draining ? 1 : 0}`,
  ].join('\n'));

  return createServer((req, res) => {
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') { send(405, 'text/plain', 'method not allowed\n'); return; }
    switch (req.url?.split('?')[0]) {
      case '/healthz': send(200, 'text/plain', 'ok\n'); return;
      case '/readyz':
        if (rt.ready && !rt.draining) send(200, 'text/plain', 'ready\n');
        else send(503, 'text/plain', rt.draining ? 'draining\n' : 'starting\n');
        return;
      case '/metrics': send(200, 'text/plain; version=0.0.4', rt.metrics.render()); return;
      case '/config': send(200, 'application/json', JSON.stringify(configView(rt), null, 2) + '\n'); return;
      default: send(404, 'text/plain', 'not found: try /healthz /readyz /metrics /config\n');
    }
  });
}

function configView(rt: Runtime): unknown {
  const t = rt.tls;
  return {
    config: redactedConfig(rt.config),
    certificate: {
      principal: t.identity.principal,
      subject: t.identity.subject,
      sha256: t.identity.hash,
      notAfter: t.notAfter.toISOString(),
      trustBundle: t.cas.map(bundleEntry),
    },
    federatedBundles: Object.fromEntries([...t.bundles.federated].map(([td, cas]) => [td, cas.map(bundleEntry)])),
    trustDomains: [...rt.trustDomains],
    policy: {
      digest: rt.policy.digest,
      files: rt.policy.files,
      documents: rt.policy.documents,
    },
    ready: rt.ready && !rt.draining,
  };
}

function bundleEntry(c: X509Certificate): { subject: string; notAfter: string } {
  return { subject: c.subject.replaceAll('\n', ','), notAfter: new Date(c.validTo).toISOString() };
}
