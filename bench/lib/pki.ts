// Certificates and policies for one benchmark run, generated into a temp dir: a CA, the
// sidecar's workload pair (also used by nginx and haproxy, so every proxy presents the same
// certificate), the load generator's client pair, and a second workload pair for the
// sidecar → sidecar hop. Removed at the end of the run.
import { mkdtemp, writeFile, mkdir, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueCertificate } from '../../src/certs/pki.ts';

export const SERVER_ID = 'spiffe://example.org/ns/prod/sa/orders';
export const CLIENT_ID = 'spiffe://example.org/ns/billing/sa/api';
export const PEER_SIDECAR_ID = 'spiffe://example.org/ns/billing/sa/sidecar';

export interface Pair { cert: string; key: string }
export interface BenchPki {
  dir: string;
  ca: string;
  server: Pair;
  /** server certificate and key in one file (haproxy's `crt`). */
  serverCombined: string;
  client: Pair;
  peerSidecar: Pair;
  policies: string;
  cleanup(): Promise<void>;
}

/**
 * A policy set of realistic size: the allowing rule is not the first one checked, and a deny
 * rule is evaluated on every request, as in a real deployment.
 */
export const BENCH_POLICY = `apiVersion: authproxy.dev/v1
kind: AuthorizationPolicy
metadata: { name: orders }
spec:
  rules:
    - name: nobody-reaches-admin
      action: deny
      to: [{ paths: ["/admin/**"] }]
    - name: shop-reads-orders
      action: allow
      from: [{ principals: ["spiffe://example.org/ns/shop/**"] }]
      to: [{ methods: [GET], paths: ["/orders", "/orders/*"] }]
    - name: reporting-reads-everything
      action: allow
      from: [{ principals: ["spiffe://example.org/ns/reporting/sa/*"] }]
      to: [{ methods: [GET, HEAD] }]
    - name: legacy-dns-client
      action: allow
      from: [{ principals: ["legacy.internal"] }]
      to: [{ paths: ["/legacy", "/legacy/**"] }]
    - name: billing-writes-orders
      action: allow
      from: [{ principals: ["spiffe://example.org/ns/billing/sa/*"] }]
      to: [{ methods: [GET, POST, PUT], paths: ["/orders", "/orders/**"] }]
    - name: bench-handshakes
      action: allow
      from: [{ principals: ["spiffe://example.org/ns/billing/**"] }]
      to: [{ paths: ["/hs"] }]
`;

export async function makeBenchPki(): Promise<BenchPki> {
  const dir = await mkdtemp(join(tmpdir(), 'authproxy-bench-'));
  // nginx workers drop privileges; they only read what the master opened, but need to traverse.
  await chmod(dir, 0o755);
  const ca = await createCA({ trustDomain: 'example.org', commonName: 'authproxy bench CA' });
  const [server, client, peer] = await Promise.all([
    issueCertificate(ca, { spiffeId: SERVER_ID, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }),
    issueCertificate(ca, { spiffeId: CLIENT_ID }),
    issueCertificate(ca, { spiffeId: PEER_SIDECAR_ID, dnsNames: ['localhost'] }),
  ]);
  const path = (n: string): string => join(dir, n);
  await writeFile(path('ca.crt'), ca.certPem);
  const save = async (name: string, p: { certPem: string; keyPem: string }): Promise<Pair> => {
    await writeFile(path(`${name}.crt`), p.certPem);
    await writeFile(path(`${name}.key`), p.keyPem, { mode: 0o600 });
    return { cert: path(`${name}.crt`), key: path(`${name}.key`) };
  };
  await writeFile(path('server.pem'), server.certPem + server.keyPem, { mode: 0o600 });
  const policies = path('policies');
  await mkdir(policies);
  await writeFile(join(policies, 'orders.yaml'), BENCH_POLICY);
  return {
    dir, ca: path('ca.crt'), server: await save('server', server), serverCombined: path('server.pem'),
    client: await save('client', client), peerSidecar: await save('peer-sidecar', peer), policies,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
