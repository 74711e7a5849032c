// Live reload of certificates and policies. A new version is loaded and validated completely
// before it replaces the running one; anything broken is refused, logged, counted, and the
// previous version stays in force.
import type { Runtime } from './state.ts';
import { acceptedTrustDomains } from './state.ts';
import { chainsToBundle, loadTlsMaterial, type TlsMaterial } from '../identity/material.ts';
import { ConfigError } from '../errors.ts';
import { reloadServerCertificate, type InboundServer } from '../inbound/listener.ts';
import { readPolicies, warnIfOpen } from './policies.ts';
import { watchPaths, type Watch } from '../reload/watch.ts';
import { log } from '../log.ts';

export async function reloadCertificates(rt: Runtime, servers: InboundServer[]): Promise<boolean> {
  const c = rt.config;
  try {
    const next = await loadTlsMaterial({ cert: c.cert!, key: c.key!, ca: c.ca, federations: c.federations });
    if (next.version === rt.tls.version) return true;
    const problem = rotationProblem(rt, next);
    if (problem) throw new ConfigError(problem, { file: c.cert! });
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

/**
 * Why a certificate that is valid by itself must still not replace the running one, or null.
 * A rotation renews the workload's certificate; it must not quietly change whom the sidecar
 * trusts, nor leave it with a certificate its peers refuse.
 */
function rotationProblem(rt: Runtime, next: TlsMaterial): string | null {
  // Without --trust-domain the workload's own SPIFFE ID sets the trust domain accepted from peers.
  const accepted = acceptedTrustDomains(rt.config, next);
  if (accepted.size !== rt.trustDomains.size || [...accepted].some((td) => !rt.trustDomains.has(td))) {
    const names = (s: ReadonlySet<string>): string => (s.size === 0 ? 'any' : [...s].join(', '));
    return `the new certificate would change the trust domains accepted from peers (${names(rt.trustDomains)} → ${names(accepted)}); `
      + 'a trust-domain change takes a restart, or --trust-domain naming the domains to accept';
  }
  if (chainsToBundle(rt.tls) && !chainsToBundle(next)) {
    return 'the new certificate does not chain to the trust bundle, as the running one does: peers using the bundle would refuse it';
  }
  return null;
}

export async function reloadPolicies(rt: Runtime): Promise<boolean> {
  if (!rt.config.policies) return true;
  try {
    const next = await readPolicies(rt.config.policies);
    if (next.digest === rt.policy.digest) return true;
    // With no AuthorizationPolicy every verified peer is allowed. A reload never opens that
    // door: the likeliest cause is a file caught mid-write or a ConfigMap emptied by mistake.
    if (rt.policy.authorizationPolicies > 0 && next.authorizationPolicies === 0) {
      throw new ConfigError('the new policy set has no AuthorizationPolicy, which would allow every caller; '
        + 'turning authorization off takes a restart', { file: rt.config.policies });
    }
    rt.policy = next;
    rt.metrics.reload('policy', 'ok');
    log.info('policy set loaded', { digest: next.digest, documents: next.documents.length });
    warnIfOpen(next, rt.config.policies, rt.config.federations.length > 0);
    return true;
  } catch (e) {
    rt.metrics.reload('policy', 'refused');
    log.error('refused new policy set; keeping the running one', { error: (e as Error).message, digest: rt.policy.digest });
    return false;
  }
}

export function watchForReload(rt: Runtime, servers: InboundServer[]): Watch[] {
  const c = rt.config;
  const watches = [watchPaths([c.cert!, c.key!, ...c.ca, ...c.federations.map((f) => f.bundle)], c.reloadIntervalMs, () => { void reloadCertificates(rt, servers); })];
  if (c.policies) watches.push(watchPaths([c.policies], c.reloadIntervalMs, () => { void reloadPolicies(rt); }));
  return watches;
}
