// Live reload of certificates and policies. A new version is loaded and validated completely
// before it replaces the running one; anything broken is refused, logged, counted, and the
// previous version stays in force.
import type { Runtime } from './state.ts';
import { acceptedTrustDomains } from './state.ts';
import { loadTlsMaterial } from '../identity/material.ts';
import { reloadServerCertificate, type InboundServer } from '../inbound/listener.ts';
import { loadPolicies } from './policies.ts';
import { watchPaths, type Watch } from '../reload/watch.ts';
import { log } from '../log.ts';

export async function reloadCertificates(rt: Runtime, servers: InboundServer[]): Promise<boolean> {
  const c = rt.config;
  try {
    const next = await loadTlsMaterial({ cert: c.cert!, key: c.key!, ca: c.ca });
    if (next.version === rt.tls.version) return true;
    for (const s of servers) reloadServerCertificate(s, next);
    rt.tls = next;
    rt.trustDomains = acceptedTrustDomains(c, next);
    rt.metrics.reload('certificate', 'ok');
    return true;
  } catch (e) {
    rt.metrics.reload('certificate', 'refused');
    log.error('refused new certificate files; keeping the running certificate', { error: (e as Error).message });
    return false;
  }
}

export async function reloadPolicies(rt: Runtime): Promise<boolean> {
  if (!rt.config.policies) return true;
  try {
    const next = await loadPolicies(rt.config.policies);
    if (next.digest === rt.policy.digest) return true;
    rt.policy = next;
    rt.metrics.reload('policy', 'ok');
    log.info('policy set loaded', { digest: next.digest, documents: next.documents.length });
    return true;
  } catch (e) {
    rt.metrics.reload('policy', 'refused');
    log.error('refused new policy set; keeping the running one', { error: (e as Error).message, digest: rt.policy.digest });
    return false;
  }
}

export function watchForReload(rt: Runtime, servers: InboundServer[]): Watch[] {
  const c = rt.config;
  const watches = [watchPaths([c.cert!, c.key!, ...c.ca], c.reloadIntervalMs, () => { void reloadCertificates(rt, servers); })];
  if (c.policies) watches.push(watchPaths([c.policies], c.reloadIntervalMs, () => { void reloadPolicies(rt); }));
  return watches;
}
